package spec

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/data/ondemand"
	"github.com/atrium-ml/atrium/internal/data/online"
)

// Serving configures model serving in `atrium serve` (docs/serving.md). Any
// registered model is served without being listed here; models are listed
// to change how (another alias, a canary, a shadow, loading at start).
type Serving struct {
	// DefaultAlias is the alias a model name resolves through when a request
	// names no version and the model's entry names none. Default "champion".
	DefaultAlias string `yaml:"default_alias"`
	// PollInterval is how often the server reads the aliases of the models
	// it serves from the metadata database, to follow deploys (other
	// replicas sharing the database follow too). Default 2s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// GRPCAddr is the listen address of the Open Inference Protocol over
	// gRPC (host:port). Default empty: no gRPC listener.
	GRPCAddr string `yaml:"grpc_addr"`
	// MaxCandidates bounds the candidates of one rank request; more are
	// refused with 413. Default 1000.
	MaxCandidates int `yaml:"max_candidates"`
	// Models configure registered models by name.
	Models []ServedModel `yaml:"models"`
	// Rankers combine models scored on the same feature rows with an
	// expression, served at /v1/rankers/{name}/rank.
	Rankers []Ranker `yaml:"rankers"`
	// PredictionLog configures the log of scored requests.
	PredictionLog PredictionLog `yaml:"prediction_log"`
}

// ServedModel is one entry of serving.models.
type ServedModel struct {
	// Name of the registered model. Required, unique.
	Name string `yaml:"name"`
	// Alias the model's name resolves through. Default serving.default_alias.
	Alias string `yaml:"alias"`
	// FeatureService names the feature service predict and rank fetch the
	// model's features from, overriding the version's atrium.feature_service
	// tag. Default: the tag.
	FeatureService string `yaml:"feature_service"`
	// LoadAtStart loads the model when the server starts rather than on the
	// first request. Default false.
	LoadAtStart bool `yaml:"load_at_start"`
	// Canary sends a share of the requests, chosen by a hash of the
	// request's routing key (the same user, the same version), to the
	// version another alias points at.
	Canary *ServingCanary `yaml:"canary"`
	// Shadow scores every request through the alias with another alias's
	// version too, off the response path, and logs both.
	Shadow *ServingShadow `yaml:"shadow"`
}

// ServingCanary is a model's canary: weight (0 to 1) of the traffic to alias.
type ServingCanary struct {
	Alias  string  `yaml:"alias"`
	Weight float64 `yaml:"weight"`
}

// ServingShadow names the alias whose version scores in shadow.
type ServingShadow struct {
	Alias string `yaml:"alias"`
}

// Ranker is one entry of serving.rankers: models scored on the same rows,
// combined by Score, a CEL expression over the models' scores (by model
// name) and the request's features.
type Ranker struct {
	// Name of the ranker. Required, unique.
	Name string `yaml:"name"`
	// Models scored; each follows its own alias. At least one.
	Models []RankerModel `yaml:"models"`
	// Score is the expression the candidates are ordered by. Required.
	Score string `yaml:"score"`
}

// RankerModel is a model of a ranker.
type RankerModel struct {
	// Name of the registered model. Required.
	Name string `yaml:"name"`
	// Alias the model resolves through. Default: the model's own (its
	// serving.models entry, else serving.default_alias).
	Alias string `yaml:"alias"`
}

// PredictionLog configures the log of scored requests (written to the
// offline store as Parquet, by hour).
type PredictionLog struct {
	// Enabled turns the log on. Default true (never nil after LoadProject).
	Enabled *bool `yaml:"enabled"`
	// SampleRate is the share of requests logged, 0 to 1. Default 1 (never
	// nil after LoadProject).
	SampleRate *float64 `yaml:"sample_rate"`
	// FlushInterval is how often buffered rows are written: a crash loses at
	// most this much. Default 10s.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// BufferRows bounds the rows waiting to be written; past it rows are
	// dropped and counted (requests never wait). Default 100000.
	BufferRows int `yaml:"buffer_rows"`
}

// Defaults of the serving block.
const (
	DefaultServingAlias        = "champion"
	DefaultServingPollInterval = 2 * time.Second
	DefaultMaxCandidates       = 1000
	DefaultLogFlushInterval    = 10 * time.Second
	DefaultLogBufferRows       = 100_000
)

func (s *Serving) ensureDefaults() {
	if s.DefaultAlias == "" {
		s.DefaultAlias = DefaultServingAlias
	}
	if s.PollInterval == 0 {
		s.PollInterval = DefaultServingPollInterval
	}
	if s.MaxCandidates == 0 {
		s.MaxCandidates = DefaultMaxCandidates
	}
	l := &s.PredictionLog
	if l.Enabled == nil {
		on := true
		l.Enabled = &on
	}
	if l.SampleRate == nil {
		one := 1.0
		l.SampleRate = &one
	}
	if l.FlushInterval == 0 {
		l.FlushInterval = DefaultLogFlushInterval
	}
	if l.BufferRows == 0 {
		l.BufferRows = DefaultLogBufferRows
	}
}

// aliasName is MLflow's alias rule (registry.ValidateAlias).
var aliasName = regexp.MustCompile(`^[\w\-]{1,255}$`)

// rankerName is a ranker name a URL reaches unescaped: it is a path
// segment of /v1/rankers/{name}/rank ("a/b" would be two, "." and ".."
// are folded away by clients).
var rankerName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$`)

// celReserved are CEL's reserved words: no variable may be named so, and a
// ranker's score names each model's score by the model's name.
var celReserved = map[string]bool{
	"true": true, "false": true, "null": true, "in": true, "as": true, "break": true, "const": true, "continue": true,
	"else": true, "for": true, "function": true, "if": true, "import": true, "let": true, "loop": true, "package": true,
	"namespace": true, "return": true, "var": true, "void": true, "while": true,
}

// Lower bounds of the serving block's intervals: below them an idle server
// spends its time polling the metadata database (1ms is 1000 queries a
// second) or writing the prediction log in files of a few rows each.
const (
	MinServingPollInterval = 100 * time.Millisecond
	MinLogFlushInterval    = time.Second
)

// validate adds the serving block's problems to ps. line finds the line of
// a field (serving.grpc_addr), or of its nearest enclosing one; present
// tells a field left out from one written as its zero value.
func (s *Serving) validate(ps *Problems, file string, line func(path string) int, present func(path string) bool) {
	add := func(path, format string, args ...any) {
		ps.Add(file, line(path), path+": "+format, args...)
	}
	alias := func(path, a string) {
		if a != "" && !aliasName.MatchString(a) {
			add(path, "%q is not an alias name: letters, digits, '_' and '-' only", a)
		}
	}
	// unique checks that an entry has a name no earlier entry has.
	unique := func(path, kind, name string, seen map[string]bool) {
		switch {
		case name == "":
			add(path, "name is required")
		case seen[name]:
			add(path+".name", "%s %q is listed twice", kind, name)
		}
		seen[name] = true
	}
	alias("serving.default_alias", s.DefaultAlias)
	if s.PollInterval < MinServingPollInterval {
		add("serving.poll_interval", "%s, expected a duration of at least %s such as 2s: each poll reads the metadata database", s.PollInterval, MinServingPollInterval)
	}
	if s.GRPCAddr != "" {
		if msg := checkListenAddr(s.GRPCAddr); msg != "" {
			add("serving.grpc_addr", "%q: %s", s.GRPCAddr, msg)
		}
	}
	if s.MaxCandidates < 0 {
		add("serving.max_candidates", "%d, expected a positive number of candidates", s.MaxCandidates)
	}
	seen := map[string]bool{}
	for i, m := range s.Models {
		p := fmt.Sprintf("serving.models[%d]", i)
		unique(p, "model", m.Name, seen)
		alias(p+".alias", m.Alias)
		primary := m.Alias
		if primary == "" {
			primary = s.DefaultAlias
		}
		if c := m.Canary; c != nil {
			switch {
			case c.Alias == "":
				add(p+".canary.alias", "required: the alias whose version takes the canary's share")
			case c.Alias == primary:
				add(p+".canary.alias", "%q is the model's own alias: name another (challenger, say)", c.Alias)
			}
			alias(p+".canary.alias", c.Alias)
			switch {
			case c.Weight == 0 && !present(p+".canary.weight"):
				add(p+".canary.weight", "required: the share of traffic above 0 and at most 1 the canary takes (0.1 for 10%%)")
			case !(c.Weight > 0 && c.Weight <= 1):
				add(p+".canary.weight", "%v, expected a share of traffic above 0 and at most 1 (0.1 for 10%%)", c.Weight)
			}
		}
		if sh := m.Shadow; sh != nil {
			switch {
			case sh.Alias == "":
				add(p+".shadow.alias", "required: the alias whose version scores in shadow")
			case sh.Alias == primary:
				add(p+".shadow.alias", "%q is the model's own alias: name another (challenger, say)", sh.Alias)
			}
			alias(p+".shadow.alias", sh.Alias)
		}
	}
	rankers := map[string]bool{}
	for i, r := range s.Rankers {
		p := fmt.Sprintf("serving.rankers[%d]", i)
		unique(p, "ranker", r.Name, rankers)
		if r.Name != "" && !rankerName.MatchString(r.Name) {
			add(p+".name", "%q, expected letters, digits, '_', '-' and '.', not starting with '.' or '-': the name is a segment of the URL /v1/rankers/{name}/rank", r.Name)
		}
		if len(r.Models) == 0 {
			add(p+".models", "required: the models the ranker scores")
		}
		// The score reads each model's score by the model's name: names
		// that are not CEL identifiers, or twice the same, could not be
		// told apart (the expression is compiled only without them: CEL
		// would report them again, less clearly).
		compile := len(r.Models) > 0
		models := map[string]bool{}
		var vars []ondemand.Var
		var names []string
		for j, m := range r.Models {
			mp := fmt.Sprintf("%s.models[%d]", p, j)
			alias(mp+".alias", m.Alias)
			switch {
			case m.Name == "":
				add(mp+".name", "required: the registered model's name")
			case !identRE.MatchString(m.Name) || celReserved[m.Name]:
				add(mp+".name", "%q is not a CEL identifier (letters, digits and _, not starting with a digit, not a reserved word): "+
					"the score names the model's score by its name, so a ranker's models need such names", m.Name)
			case models[m.Name]:
				add(mp+".name", "model %q is listed twice: the score could not tell them apart", m.Name)
			default:
				models[m.Name] = true
				vars = append(vars, ondemand.Var{Name: m.Name, Kind: online.KindFloat64})
				names = append(names, m.Name)
				continue
			}
			compile = false
		}
		switch {
		case strings.TrimSpace(r.Score) == "":
			add(p+".score", "required: an expression over the models' scores, such as click * 0.3 + visit")
		case compile:
			// The serving layer compiles it again, with the same
			// evaluator (internal/data/ondemand), when the server starts.
			if _, err := ondemand.Compile(vars, []ondemand.Expr{{Name: "score", Kind: online.KindFloat64, Source: r.Score}}); err != nil {
				msg := err.Error()
				var ce *ondemand.CompileError
				if errors.As(err, &ce) {
					msg = ce.Msg
				}
				if strings.Contains(msg, "undeclared reference") {
					msg += fmt.Sprintf(" (the variables are the ranker's models: %s)", strings.Join(names, ", "))
				}
				add(p+".score", "%q: %s", r.Score, msg)
			}
		}
	}
	l := s.PredictionLog
	if r := l.SampleRate; r != nil && !(*r >= 0 && *r <= 1) {
		add("serving.prediction_log.sample_rate", "%v, expected a share from 0 to 1", *r)
	}
	if l.FlushInterval < MinLogFlushInterval {
		add("serving.prediction_log.flush_interval", "%s, expected a duration of at least %s such as 10s: each flush writes a file", l.FlushInterval, MinLogFlushInterval)
	}
	if l.BufferRows < 0 {
		add("serving.prediction_log.buffer_rows", "%d, expected a positive number of rows", l.BufferRows)
	}
}

// checkListenAddr returns what is wrong with a listen address and what was
// expected, or "".
func checkListenAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "expected host:port such as 127.0.0.1:8081"
	}
	n, err := strconv.ParseUint(port, 10, 64)
	switch {
	case err != nil && strings.Trim(port, "0123456789") != "":
		return fmt.Sprintf("port %q is not a number, expected a port from 0 to 65535", port)
	case err != nil || n > 65535:
		return fmt.Sprintf("port %s is out of range, expected a port from 0 to 65535", port)
	}
	// A host of digits and dots is meant as an IPv4 address; 256.1.1.1
	// would otherwise be looked up as a host name.
	if host != "" && strings.Trim(host, "0123456789.") == "" && net.ParseIP(host) == nil {
		return fmt.Sprintf("host %q is not an IP address, expected an IPv4 or IPv6 address or a host name", host)
	}
	return ""
}

// ListenersCollide reports whether two listen addresses (host:port) would
// take the same port: the same port (not 0, which the system chooses) on
// the same host, or on all interfaces for either. Addresses that do not
// parse do not collide (they are refused on their own).
func ListenersCollide(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false
	}
	na, errA := strconv.ParseUint(pa, 10, 16)
	nb, errB := strconv.ParseUint(pb, 10, 16)
	if errA != nil || errB != nil || na == 0 || na != nb {
		return false
	}
	host := func(h string) string {
		switch h {
		case "", "0.0.0.0", "::":
			return "*"
		case "localhost":
			return "127.0.0.1"
		}
		if ip := net.ParseIP(h); ip != nil {
			return ip.String()
		}
		return h
	}
	ha, hb = host(ha), host(hb)
	return ha == hb || ha == "*" || hb == "*"
}
