package spec

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
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

// validate adds the serving block's problems to ps; line finds the line of a
// field (serving.grpc_addr) in the file (0 when unknown).
func (s *Serving) validate(ps *Problems, file string, line func(path string) int) {
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
	if s.PollInterval < 0 {
		add("serving.poll_interval", "%s, expected a positive duration such as 2s", s.PollInterval)
	}
	if s.GRPCAddr != "" && !strings.Contains(s.GRPCAddr, ":") {
		add("serving.grpc_addr", "%q, expected host:port", s.GRPCAddr)
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
				add(p+".canary", "alias is required: the alias whose version takes the canary's share")
			case c.Alias == primary:
				add(p+".canary.alias", "%q is the model's own alias: name another (challenger, say)", c.Alias)
			}
			alias(p+".canary.alias", c.Alias)
			if !(c.Weight > 0 && c.Weight <= 1) {
				add(p+".canary.weight", "%v, expected a share of traffic above 0 and at most 1 (0.1 for 10%%)", c.Weight)
			}
		}
		if sh := m.Shadow; sh != nil {
			switch {
			case sh.Alias == "":
				add(p+".shadow", "alias is required: the alias whose version scores in shadow")
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
		if len(r.Models) == 0 {
			add(p, "models is required: the models the ranker scores")
		}
		for j, m := range r.Models {
			if m.Name == "" {
				add(fmt.Sprintf("%s.models[%d]", p, j), "name is required")
			}
			alias(fmt.Sprintf("%s.models[%d].alias", p, j), m.Alias)
		}
		if strings.TrimSpace(r.Score) == "" {
			add(p, "score is required: an expression over the models' scores, such as click * 0.3 + visit")
		}
	}
	l := s.PredictionLog
	if r := l.SampleRate; r != nil && !(*r >= 0 && *r <= 1) {
		add("serving.prediction_log.sample_rate", "%v, expected a share from 0 to 1", *r)
	}
	if l.FlushInterval < 0 {
		add("serving.prediction_log.flush_interval", "%s, expected a positive duration such as 10s", l.FlushInterval)
	}
	if l.BufferRows < 0 {
		add("serving.prediction_log.buffer_rows", "%d, expected a positive number of rows", l.BufferRows)
	}
}

// yamlLines returns a function finding the line of a YAML path
// ("$.serving.models[1].canary") in data; 0 when data does not parse or has
// no such path.
func yamlLines(data []byte) func(path string) int {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return func(string) int { return 0 }
	}
	return func(path string) int {
		p, err := yaml.PathString(path)
		if err != nil {
			return 0
		}
		n, err := p.FilterFile(f)
		if err != nil || n == nil {
			return 0
		}
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			return tk.Position.Line
		}
		return 0
	}
}
