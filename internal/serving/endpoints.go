package serving

// The feature-aware endpoints: predict (entity keys in, predictions out),
// rank (a context and candidates in, candidates in score order out) and
// rankers (several models scored on the same rows, combined by an
// expression). The server fetches the models' features itself.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/data/ondemand"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

// EndpointOptions configure the feature-aware endpoints.
type EndpointOptions struct {
	// Online reads the models' features: the online retrieval of the
	// applied feature definitions. Nil: no definitions; models then take
	// request values only, and a version naming a feature service serves
	// OIP infer only (its predict and rank answer 503), as when the
	// definitions define no feature service.
	Online *retrieval.Online
	// StoreTimeout bounds each request's online store read (within the
	// request's own deadline). Default 500ms.
	StoreTimeout time.Duration
	// MaxCandidates bounds the candidates of a rank request (and the rows
	// of a predict request); more are refused (ErrTooMany, 413). Default
	// 1000.
	MaxCandidates int
	// Rankers combine models scored on the same rows (serving.rankers).
	Rankers []RankerConfig
	// Logger receives server-side errors. Default: discard.
	Logger *slog.Logger
}

// Defaults of EndpointOptions.
const (
	DefaultStoreTimeout  = 500 * time.Millisecond
	DefaultMaxCandidates = 1000
)

// RankerConfig is a ranker: models scored on the same feature rows (the
// union of their features, fetched once), ordered by Score, a CEL
// expression over the models' scores (a variable per model, named after
// it, a double; null when the model's score is missing).
type RankerConfig struct {
	Name   string
	Models []RankerModel
	Score  string
}

// RankerModel is a model of a ranker. Alias is the alias it follows: ""
// for the model's own (its serving.models entry's, else the default), with
// its canary split if it has one.
type RankerModel struct {
	Name, Alias string
}

// ErrTooMany means a request holds more candidates (or rows) than allowed
// (413).
var ErrTooMany = errors.New("too many candidates")

// Endpoints serve predict, rank and rankers over a Service's models. They
// are safe for concurrent use.
type Endpoints struct {
	svc     *Service
	opts    EndpointOptions
	f       *fetcher
	m       *endpointMetrics
	rankers map[string]*ranker
}

// ranker is a RankerConfig with its expression compiled.
type ranker struct {
	RankerConfig
	score *ondemand.Program
}

// NewEndpoints returns the endpoints of svc. Rankers are checked here: a
// score expression that does not compile, over variables other than its
// models' names, is an error naming the ranker. From then on svc refuses a
// version whose feature service is not defined in opts.Online (when it
// defines any) or provides none of its inputs, as it refuses a corrupt file
// (the previous version keeps serving), and logs the inputs the service
// does not provide; the versions it loaded already are checked now. One
// Endpoints per Service.
func NewEndpoints(svc *Service, opts EndpointOptions) (*Endpoints, error) {
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = DefaultStoreTimeout
	}
	if opts.MaxCandidates <= 0 {
		opts.MaxCandidates = DefaultMaxCandidates
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Endpoints{svc: svc, opts: opts, f: &fetcher{online: opts.Online, timeout: opts.StoreTimeout},
		m: newEndpointMetrics(), rankers: map[string]*ranker{}}
	var errs []error
	for _, rc := range opts.Rankers {
		vars := make([]ondemand.Var, len(rc.Models))
		for i, m := range rc.Models {
			vars[i] = ondemand.Var{Name: m.Name, Kind: online.KindFloat64}
		}
		prg, err := ondemand.Compile(vars, []ondemand.Expr{{Name: "score", Kind: online.KindFloat64, Source: rc.Score}})
		if err != nil {
			errs = append(errs, fmt.Errorf("ranker %s: score %q: %w", rc.Name, rc.Score, err))
			continue
		}
		e.rankers[rc.Name] = &ranker{RankerConfig: rc, score: prg}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// The service serves no version these endpoints cannot fetch the
	// features of: checked when it loads, not at every request.
	svc.vetWith(e.f.vet)
	return e, nil
}

// Describe implements prometheus.Collector.
func (e *Endpoints) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range e.m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (e *Endpoints) Collect(ch chan<- prometheus.Metric) {
	for _, c := range e.m.collectors() {
		c.Collect(ch)
	}
}

// PredictRequest asks for predictions of entities.
type PredictRequest struct {
	// Entities are the entity keys, a column per join key (one value per
	// row, or one for every row).
	Entities map[string]Column
	// Features are request values: those the model's on-demand features
	// read, or model inputs given directly (they win over the store's).
	Features map[string]Column
	// ReturnFeatures asks for the feature values the model scored.
	ReturnFeatures bool
	// Version pins a version number; "" follows the model's alias (and
	// canary split).
	Version string
	// RoutingKey chooses between the alias's version and a canary's; ""
	// uses the request id.
	RoutingKey string
	RequestID  string
	// Time is when the request arrived (the prediction log's time). Zero:
	// now.
	Time time.Time
}

// PredictResponse is the answer to a PredictRequest.
type PredictResponse struct {
	Model, Version string
	// Outputs is the number of predictions per row; Predictions holds them,
	// row-major.
	Outputs     int
	Predictions []float64
	// Missing counts the missing values of each input (inputs with none
	// are left out).
	Missing map[string]int
	// Features are the values scored, when asked (ReturnFeatures).
	Features *ml.Dataset
}

// Predict fetches the features of req's entities for the model's version
// and scores them.
func (e *Endpoints) Predict(ctx context.Context, name string, req *PredictRequest) (resp *PredictResponse, err error) {
	start := now(req.Time)
	defer func() { e.failed("predict", name, err) }()
	rows, err := rowsOf(req.Entities, req.Features, "entities", e.opts.MaxCandidates)
	if err != nil {
		return nil, err
	}
	key := cmp.Or(req.RoutingKey, req.RequestID)
	d, err := e.svc.Resolve(ctx, name, req.Version, key)
	if err != nil {
		return nil, err
	}
	p, err := e.f.planFor(d.FeatureService)
	if err != nil {
		return nil, err
	}
	if err := checkFeatures(p, req.Features, d); err != nil {
		return nil, err
	}
	er := &entityRequest{rows: rows, columns: map[string]Column{}, context: map[string]any{}, part: "entities", features: req.Features}
	for n, c := range req.Entities {
		if c.Broadcast {
			er.context[n] = c.Values[0]
		} else {
			er.columns[n] = c
		}
	}
	fr, err := e.f.fetch(ctx, p, er)
	if err != nil {
		return nil, err
	}
	defer fr.release()
	sc, err := e.score(ctx, d, fr, req.Version == "", predlog.RoutePredict, start, req.RequestID, req.RoutingKey)
	if err != nil {
		return nil, err
	}
	e.m.scored("predict", name, d.Version, start)
	resp = &PredictResponse{Model: name, Version: d.Version, Outputs: d.NumOutputs(), Predictions: sc.preds,
		Missing: missingMap(d, sc.missing)}
	if req.ReturnFeatures {
		resp.Features = sc.ds // the response owns it: not released
	} else {
		d.ReleaseDataset(sc.ds)
	}
	return resp, nil
}

// scored is one model's scoring of a frame.
type scored struct {
	d       *Deployed
	ds      *ml.Dataset
	preds   []float64
	missing []int
	model   time.Duration
}

// score lays fr out for d, predicts, logs, and scores in shadow when the
// request followed the alias (shadow).
func (e *Endpoints) score(ctx context.Context, d *Deployed, fr *frame, shadow bool, route predlog.Route, start time.Time, requestID, routingKey string) (*scored, error) {
	ds, missing, err := e.f.dataset(d, fr, e.m)
	if err != nil {
		return nil, err
	}
	var sh *Deployed
	var shRows *ml.Dataset
	if shadow {
		// The shadow's rows are laid out now: fr's memory goes back to a
		// pool when the request ends.
		if sh = e.svc.ShadowOf(d); sh != nil {
			if shRows, _, err = e.f.dataset(sh, fr, e.m); err != nil {
				sh = nil
			}
		}
	}
	mstart := time.Now()
	preds, err := d.Predict(ctx, ds)
	if err != nil {
		return nil, err
	}
	mt := time.Since(mstart)
	if fr.plan != nil {
		e.m.fetch.WithLabelValues(d.Name, d.Version).Observe(fr.fetch.Seconds())
	}
	rec := predlog.Record{RequestID: requestID, Time: start, Route: route, RoutingKey: routingKey,
		Latency: predlog.Latency{Total: time.Since(start), Fetch: fr.fetch, Model: mt}}
	for _, kv := range fr.context {
		rec.Context = append(rec.Context, predlog.Field{Name: kv.name, Value: kv.value})
	}
	for _, kc := range fr.entities {
		rec.Entities = append(rec.Entities, predlog.Column{Name: kc.name, Values: kc.values})
	}
	if sh != nil {
		e.svc.shadowLogged(d, preds, sh, shRows, rec)
	}
	e.svc.logPredictions(d, ds, preds, rec, requestValues(d, fr.req, fr.rows)...)
	return &scored{d: d, ds: ds, preds: preds, missing: missing, model: mt}, nil
}

// RankRequest asks for candidates in score order.
type RankRequest struct {
	// Context are the request's own entity keys (the user), one value each.
	Context map[string]any
	// Candidates are the candidates' keys, a column per key, one value per
	// candidate.
	Candidates map[string]Column
	// Features are request values, as PredictRequest's.
	Features map[string]Column
	// TopK bounds the candidates returned (0: all).
	TopK int
	// Version, RoutingKey, RequestID and Time are PredictRequest's; the
	// routing key defaults to the context's values (the same user, the same
	// version), then the request id.
	Version, RoutingKey, RequestID string
	Time                           time.Time
}

// Ranked is a candidate with its score: Row is its index in the request.
type Ranked struct {
	Row   int
	Score float64
	// Scores are each model's score (rankers only), in the ranker's order.
	Scores []float64
}

// RankResponse is the answer to a RankRequest.
type RankResponse struct {
	// Model is the model (or ranker) name; Version the model's version
	// (rankers: Models).
	Model, Version string
	// Models are the ranker's models and the versions that scored.
	Models []ModelVersion
	Ranked []Ranked
	// Missing counts missing values by input (of every model, for rankers).
	Missing map[string]int
}

// ModelVersion names a model version.
type ModelVersion struct{ Name, Version string }

// Rank scores req's candidates with a model and orders them by score,
// highest first (missing scores last).
func (e *Endpoints) Rank(ctx context.Context, name string, req *RankRequest) (resp *RankResponse, err error) {
	start := now(req.Time)
	defer func() { e.failed("rank", name, err) }()
	er, err := e.rankEntities(req)
	if err != nil {
		return nil, err
	}
	d, err := e.svc.Resolve(ctx, name, req.Version, rankRoutingKey(req))
	if err != nil {
		return nil, err
	}
	if d.NumOutputs() != 1 {
		return nil, errInput("model %s version %s has %d outputs (%s): rank needs one score per candidate", d.Name, d.Version, d.NumOutputs(), d.Task)
	}
	p, err := e.f.planFor(d.FeatureService)
	if err != nil {
		return nil, err
	}
	if err := checkFeatures(p, req.Features, d); err != nil {
		return nil, err
	}
	fr, err := e.f.fetch(ctx, p, er)
	if err != nil {
		return nil, err
	}
	defer fr.release()
	sc, err := e.score(ctx, d, fr, req.Version == "", predlog.RouteRank, start, req.RequestID, req.RoutingKey)
	if err != nil {
		return nil, err
	}
	d.ReleaseDataset(sc.ds) // logged (copied) by score; only preds are kept
	ranked := make([]Ranked, len(sc.preds))
	for i, s := range sc.preds {
		ranked[i] = Ranked{Row: i, Score: s}
	}
	e.m.scored("rank", name, d.Version, start)
	return &RankResponse{Model: name, Version: d.Version, Ranked: topK(ranked, req.TopK), Missing: missingMap(d, sc.missing)}, nil
}

// RankWith scores req's candidates with a ranker's models on the same rows
// (their features fetched once) and orders them by the ranker's score.
func (e *Endpoints) RankWith(ctx context.Context, name string, req *RankRequest) (resp *RankResponse, err error) {
	start := now(req.Time)
	defer func() { e.failed("ranker", name, err) }()
	rk := e.rankers[name]
	if rk == nil {
		return nil, fmt.Errorf("%w: no ranker %q in serving.rankers of atrium.yaml%s", ErrNotFound, name, e.rankerList())
	}
	er, err := e.rankEntities(req)
	if err != nil {
		return nil, err
	}
	key := rankRoutingKey(req)
	ds := make([]*Deployed, len(rk.Models))
	services := make([]string, len(rk.Models))
	for i, m := range rk.Models {
		d, err := e.svc.ResolveAlias(ctx, m.Name, m.Alias, key)
		if err != nil {
			return nil, fmt.Errorf("ranker %s: %w", name, err)
		}
		if d.NumOutputs() != 1 {
			return nil, errInput("ranker %s: model %s version %s has %d outputs (%s): a ranker needs one score per candidate", name, d.Name, d.Version, d.NumOutputs(), d.Task)
		}
		ds[i], services[i] = d, d.FeatureService
	}
	p, err := e.f.planForAll(services)
	if err != nil {
		return nil, fmt.Errorf("ranker %s: %w", name, err)
	}
	if err := checkFeatures(p, req.Features, ds...); err != nil {
		return nil, err
	}
	fr, err := e.f.fetch(ctx, p, er)
	if err != nil {
		return nil, err
	}
	defer fr.release()
	resp = &RankResponse{Model: name, Models: make([]ModelVersion, len(ds)), Missing: map[string]int{}}
	scores := make(ondemand.Columns, len(ds))
	for i, d := range ds {
		sc, err := e.score(ctx, d, fr, rk.Models[i].Alias == "", predlog.RouteRank, start, req.RequestID, req.RoutingKey)
		if err != nil {
			return nil, fmt.Errorf("ranker %s: %w", name, err)
		}
		d.ReleaseDataset(sc.ds) // logged (copied) by score; only preds are kept
		resp.Models[i] = ModelVersion{d.Name, d.Version}
		for k, n := range missingMap(d, sc.missing) {
			resp.Missing[k] = n // the same feature, the same rows: the same count
		}
		col := make([]online.Value, len(sc.preds))
		for r, s := range sc.preds {
			col[r] = online.Float64(s)
			if math.IsNaN(s) {
				col[r] = online.Null
			}
		}
		scores[i] = col
	}
	combined := make([]online.Value, er.rows)
	if err := rk.score.Eval(scores, er.rows, combined); err != nil {
		e.opts.Logger.Warn("serving: ranker score", "ranker", name, "request_id", req.RequestID, "err", err)
	}
	ranked := make([]Ranked, er.rows)
	for r := range er.rows {
		s := math.NaN()
		if combined[r].Kind() == online.KindFloat64 {
			s = combined[r].Float64()
		}
		per := make([]float64, len(ds))
		for i := range ds {
			per[i] = math.NaN()
			if v := scores[i][r]; v.Kind() == online.KindFloat64 {
				per[i] = v.Float64()
			}
		}
		ranked[r] = Ranked{Row: r, Score: s, Scores: per}
	}
	resp.Ranked = topK(ranked, req.TopK)
	versions := make([]string, len(ds))
	for i, d := range ds {
		versions[i] = d.Name + "=" + d.Version
	}
	e.m.scored("ranker", name, strings.Join(versions, ","), start)
	return resp, nil
}

func (e *Endpoints) rankerList() string {
	if len(e.rankers) == 0 {
		return " (it declares none)"
	}
	return " (it declares " + strings.Join(sortedKeys(e.rankers), ", ") + ")"
}

// rankEntities checks a rank request's shape: candidates as equal columns,
// no more than MaxCandidates, and context keys that are single values.
func (e *Endpoints) rankEntities(req *RankRequest) (*entityRequest, error) {
	if len(req.Candidates) == 0 {
		return nil, errInput("candidates: missing; send the candidates' keys, a list per key: {\"listing_id\": [\"l1\", \"l2\"]}")
	}
	for n, c := range req.Candidates {
		if c.Broadcast {
			return nil, errInput("candidates.%s: a single value; send a list, one value per candidate (or put it in context)", n)
		}
	}
	if req.TopK < 0 {
		return nil, errInput("top_k: %d, want a number of candidates, or 0 (or leave it out) for all", req.TopK)
	}
	for _, n := range sortedKeys(req.Context) {
		if _, dup := req.Candidates[n]; dup {
			return nil, errInput("context.%s: also in candidates; a key is either the request's (context) or each candidate's", n)
		}
	}
	rows, err := rowsOf(req.Candidates, req.Features, "candidates", e.opts.MaxCandidates)
	if err != nil {
		return nil, err
	}
	return &entityRequest{rows: rows, columns: req.Candidates, context: req.Context, part: "candidates", features: req.Features}, nil
}

// rowsOf is the number of rows of a request: the length of its per-row key
// columns (all equal), else of its per-row feature values, else 1.
func rowsOf(keys, features map[string]Column, part string, limit int) (int, error) {
	rows, first := -1, ""
	check := func(what string, cols map[string]Column) error {
		for _, n := range sortedKeys(cols) {
			c := cols[n]
			if c.Broadcast {
				continue
			}
			if rows >= 0 && len(c.Values) != rows {
				return errInput("%s.%s has %d values but %s has %d: send one value per row (or a single value for all)", what, n, len(c.Values), first, rows)
			}
			rows, first = len(c.Values), what+"."+n
		}
		return nil
	}
	if err := check(part, keys); err != nil {
		return 0, err
	}
	if err := check("features", features); err != nil {
		return 0, err
	}
	if rows < 0 {
		rows = 1
	}
	if rows > limit {
		return 0, fmt.Errorf("%w: %d %s, at most %d per request (serving.max_candidates)", ErrTooMany, rows, part, limit)
	}
	return rows, nil
}

// rankRoutingKey is the key that chooses a canary: the request's, else its
// context's values (the user), else its id.
func rankRoutingKey(req *RankRequest) string {
	if req.RoutingKey != "" {
		return req.RoutingKey
	}
	if len(req.Context) > 0 {
		parts := make([]string, 0, len(req.Context))
		for _, n := range sortedKeys(req.Context) {
			parts = append(parts, keyText(req.Context[n]))
		}
		return strings.Join(parts, "\x00")
	}
	return req.RequestID
}

// topK orders candidates by score, highest first, missing (NaN) scores
// last, ties in request order; and keeps the first k (0: all). r's order
// is not kept.
func topK(r []Ranked, k int) []Ranked {
	// The sort is on 24-byte keys compared as integers, not on the
	// candidates with a comparison of floats that checks for NaN
	// (BenchmarkTopK: 0.58x the time on 200 candidates).
	type sortKey struct {
		key uint64 // ascending: score descending, NaN last
		row int    // rows are distinct: the order is total, so the unstable sort gives the stable order
		at  int    // the candidate's index in r
	}
	var buf [256]sortKey
	keys := buf[:0]
	if len(r) > len(buf) {
		keys = make([]sortKey, 0, len(r))
	}
	for i, c := range r {
		keys = append(keys, sortKey{key: descendingKey(c.Score), row: c.Row, at: i})
	}
	slices.SortFunc(keys, func(a, b sortKey) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.row, b.row)
	})
	if k <= 0 || k > len(r) {
		k = len(r)
	}
	out := make([]Ranked, k)
	for j, sk := range keys[:k] {
		out[j] = r[sk.at]
		// A non-finite score (a model's ±Inf) is no score: NaN, ranked
		// last; ±Inf would rank first or last yet be written as null.
		if math.IsInf(out[j].Score, 0) {
			out[j].Score = math.NaN()
		}
	}
	return out
}

// descendingKey maps scores to integers in the opposite order: higher
// scores to lower keys, -0 and 0 to one key, and NaN and ±Inf to the
// highest (last; see topK).
func descendingKey(s float64) uint64 {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return math.MaxUint64
	}
	if s == 0 {
		s = 0 // -0 ties with 0, as the scores compare
	}
	b := math.Float64bits(s)
	// Ascending order of doubles as unsigned integers: negative ones have
	// every bit flipped, positive ones the sign bit set.
	if b>>63 == 1 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	return ^b
}

// missingMap names the inputs with missing values.
func missingMap(d *Deployed, missing []int) map[string]int {
	m := map[string]int{}
	for j, n := range missing {
		if n > 0 {
			m[d.Inputs[j].Name] = n
		}
	}
	return m
}

// failed counts a failed request by reason.
func (e *Endpoints) failed(route, name string, err error) {
	if err == nil {
		return
	}
	// Only names in use label the series (a model the service has loaded,
	// a declared ranker): any client could otherwise mint series without
	// bound by naming models that do not exist.
	known := e.svc.lookup(name) != nil
	if route == "ranker" {
		known = e.rankers[name] != nil
	}
	if !known {
		name = ""
	}
	e.m.errors.WithLabelValues(route, name, reason(err)).Inc()
}

// reason classifies an error for metrics and status codes.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrInvalidInput), errors.Is(err, ErrTooMany), errors.Is(err, ErrTooLarge):
		return "input"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrNotReady), errors.Is(err, ErrFeatureStore), errors.Is(err, ErrModelFormat),
		errors.Is(err, ErrUnsupportedFlavor), errors.Is(err, context.DeadlineExceeded):
		return "unavailable"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "internal"
}

func now(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
