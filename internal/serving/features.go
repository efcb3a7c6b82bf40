package serving

// Features of served models fetched from the online store: the feature
// service a version names (its atrium.feature_service tag, or
// serving.models[].feature_service) read through online retrieval, its
// on-demand features computed from the read values and the request's, and
// the result laid out in the model's input order.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// Column is a column of request values: Values[r] is row r's, or, when
// Broadcast, Values[0] is every row's (a scalar in the request). A value is
// nil (missing), float64, int64, string or bool.
type Column struct {
	Values    []any
	Broadcast bool
}

// at is row r's value.
func (c Column) at(r int) any {
	if c.Broadcast {
		return c.Values[0]
	}
	return c.Values[r]
}

// fetchPlan is what a request for one feature list needs, resolved once:
// the list (a service, or the union of several services' features), what it
// asks of a request, and where each feature lands among the read columns.
type fetchPlan struct {
	features []string // Request.Features; nil when service is set
	service  string
	shape    retrieval.Shape
	// cols maps a feature name to its column in the read Vectors.
	cols map[string]int
	// request are the kinds of the request values its on-demand features read.
	request map[string]online.Kind
	// keys are the join keys' names, for messages.
	keys string
}

// fetcher reads the features of served models. It is safe for concurrent
// use.
type fetcher struct {
	online  *retrieval.Online // nil: no feature definitions; models take request values only
	timeout time.Duration

	plans    sync.Map // plan key -> *fetchPlan
	bindings sync.Map // bindingKey -> *binding
}

// planFor returns the plan of one feature service ("" for none: nil plan).
// Versions are vetted when they load (vet), which resolves and caches their
// service's plan: a request finds it cached. The error is for a version
// served without definitions to check it against (vetResult.unchecked): it
// cannot be served here until the definitions are applied and the server
// restarted, so it is no transient ErrNotReady (no Retry-After).
func (f *fetcher) planFor(service string) (*fetchPlan, error) {
	if service == "" {
		return nil, nil
	}
	p, err := f.servicePlan(service)
	if err != nil {
		return nil, unservableError{fmt.Errorf("feature service %q: %w", service, err)}
	}
	return p, nil
}

func (f *fetcher) servicePlan(service string) (*fetchPlan, error) {
	return f.plan(service, func() (*fetchPlan, error) { return f.newPlan(nil, service) })
}

// vetResult is what vet found in a version it does not refuse.
type vetResult struct {
	// unprovided are the inputs its feature service does not provide: each
	// request must send them, else they are missing.
	unprovided []string
	// unchecked: the version names a feature service, but the server has no
	// feature service defined to check it against (no definitions applied).
	// Its OIP infer serves; its predict and rank cannot.
	unchecked bool
}

// vet checks, when a version loads, that its feature service can serve it:
// the service is defined (its plan, resolved here, is then cached for the
// requests) and provides at least one of the version's inputs, as a feature
// or as a request value of its on-demand features. An error refuses the
// version. A server without any feature service defined does not refuse:
// a version registered with a service name (atrium fit --feature-service)
// still serves OIP infer there, as it did.
func (f *fetcher) vet(d *Deployed) (vetResult, error) {
	if d.FeatureService == "" {
		return vetResult{}, nil
	}
	var defined []string
	if f.online != nil {
		defined = f.online.Services()
	}
	if len(defined) == 0 {
		return vetResult{unchecked: true}, nil
	}
	p, err := f.servicePlan(d.FeatureService)
	if err != nil {
		if !slices.Contains(defined, d.FeatureService) {
			return vetResult{}, fmt.Errorf("%w; defined services: %s", err, fewNames(defined))
		}
		return vetResult{}, err
	}
	var r vetResult
	for _, in := range d.Inputs {
		if !p.provides(in.Name) {
			r.unprovided = append(r.unprovided, in.Name)
		}
	}
	if len(d.Inputs) > 0 && len(r.unprovided) == len(d.Inputs) {
		// Every value would be missing: each candidate would get the same
		// score, answered 200. The usual cause is a model trained on an
		// array, whose inputs are named by position.
		return vetResult{}, fmt.Errorf("none of the version's %d inputs (%s) is a feature of the service (%s) or a request value of its on-demand features: "+
			"was the model trained without feature names (LightGBM names them Column_0..., XGBoost f0...)? "+
			"Train and log it from a pandas DataFrame, or log it with a signature naming the features",
			len(d.Inputs), fewNames(r.unprovided), fewNames(p.provided()))
	}
	return r, nil
}

// provides reports whether the plan gives a model input of that name: a
// feature it reads or computes, or a request value its on-demand features
// read (which the request sends). bind maps inputs to the same columns.
func (p *fetchPlan) provides(name string) bool {
	if _, ok := p.cols[name]; ok {
		return true
	}
	_, ok := p.request[name]
	return ok
}

// provided lists the names the plan provides (provides), its features in
// order, then its request values sorted.
func (p *fetchPlan) provided() []string {
	out := slices.Clone(p.shape.Names[len(p.shape.JoinKeys):])
	return append(out, sortedKeys(p.request)...)
}

// fewNames lists the first names of a list, for a message.
func fewNames(names []string) string {
	const few = 3
	if len(names) == 0 {
		return "none"
	}
	if len(names) <= few {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, ... %d in all", strings.Join(names[:few], ", "), len(names))
}

// planForAll returns the plan fetching the features of several services
// once: the service itself when they all name the same one, else the union
// of their features.
func (f *fetcher) planForAll(services []string) (*fetchPlan, error) {
	var distinct []string
	for _, s := range services {
		if s != "" && !slices.Contains(distinct, s) {
			distinct = append(distinct, s)
		}
	}
	switch len(distinct) {
	case 0:
		return nil, nil
	case 1:
		return f.planFor(distinct[0])
	}
	sort.Strings(distinct)
	return f.plan("\x00"+strings.Join(distinct, "\x00"), func() (*fetchPlan, error) {
		// As planFor's, errors are of versions served unchecked: permanent.
		if f.online == nil {
			return nil, unservableError{fmt.Errorf("feature services %s: no feature definitions are applied (atrium apply, then restart the server)", strings.Join(distinct, ", "))}
		}
		var refs []string
		for _, s := range distinct {
			rs, err := f.online.ServiceFeatures(s)
			if err != nil {
				return nil, unservableError{fmt.Errorf("%w (atrium apply, then restart the server)", err)}
			}
			for _, r := range rs {
				if !slices.Contains(refs, r) {
					refs = append(refs, r)
				}
			}
		}
		p, err := f.newPlan(refs, "")
		if err != nil {
			return nil, unservableError{fmt.Errorf("features %s: %w", strings.Join(refs, ", "), err)}
		}
		return p, nil
	})
}

func (f *fetcher) plan(key string, build func() (*fetchPlan, error)) (*fetchPlan, error) {
	if p, ok := f.plans.Load(key); ok {
		return p.(*fetchPlan), nil
	}
	p, err := build()
	if err != nil {
		// Not cached: definitions do not change while the server runs, but
		// an error costs nothing to rebuild and may be a transient one.
		return nil, err
	}
	got, _ := f.plans.LoadOrStore(key, p)
	return got.(*fetchPlan), nil
}

// newPlan resolves a feature list or service. Its error is the cause alone:
// a service that is not defined is a problem of the model's configuration
// (its tag or atrium.yaml), which the caller names.
func (f *fetcher) newPlan(features []string, service string) (*fetchPlan, error) {
	if f.online == nil {
		return nil, errors.New("no feature definitions are applied (atrium apply, then restart the server)")
	}
	sh, err := f.online.Shape(features, service)
	if err != nil {
		if errors.Is(err, retrieval.ErrUnknownFeature) {
			// The server reads the definitions once, at start.
			return nil, fmt.Errorf("%w (the server reads the applied feature definitions at start: atrium apply, then restart it)", err)
		}
		return nil, err
	}
	p := &fetchPlan{features: features, service: service, shape: sh, cols: map[string]int{}, request: map[string]online.Kind{}}
	for i, n := range sh.Names[len(sh.JoinKeys):] {
		p.cols[n] = len(sh.JoinKeys) + i
	}
	for _, v := range sh.Request {
		p.request[v.Name] = v.Kind
	}
	keys := make([]string, len(sh.JoinKeys))
	for i, k := range sh.JoinKeys {
		keys[i] = k.Name + " (" + k.Type.String() + ")"
	}
	p.keys = strings.Join(keys, ", ")
	return p, nil
}

// binding maps a model version's inputs to a plan's columns, with the
// version's metrics; built once per version and plan.
type binding struct {
	// cols[j] is input j's column in the plan's Vectors, -1 when the plan
	// has no such feature (the request may send it).
	cols []int
	// missing[j] counts input j's missing values.
	missing []prometheus.Counter
}

type bindingKey struct {
	d *Deployed
	p *fetchPlan
}

// bind returns the binding of d's inputs to p (nil p: no fetched columns).
// Bindings of unloaded versions stay cached: a few ints per input and
// version, bounded by the versions a server loads in its life.
func (f *fetcher) bind(d *Deployed, p *fetchPlan, m *endpointMetrics) *binding {
	k := bindingKey{d, p}
	if b, ok := f.bindings.Load(k); ok {
		return b.(*binding)
	}
	b := &binding{cols: make([]int, len(d.Inputs)), missing: make([]prometheus.Counter, len(d.Inputs))}
	for j, in := range d.Inputs {
		b.cols[j] = -1
		if p != nil {
			if c, ok := p.cols[in.Name]; ok {
				b.cols[j] = c
			}
		}
		b.missing[j] = m.missing.WithLabelValues(d.Name, d.Version, in.Name)
	}
	got, _ := f.bindings.LoadOrStore(k, b)
	return got.(*binding)
}

// frame is the feature rows of one request: the values read from the
// online store (nil without a plan) and the request's own values.
type frame struct {
	rows  int
	plan  *fetchPlan
	vec   *retrieval.Vectors
	req   map[string]Column // request features, by name
	fetch time.Duration
	// keys are the entity keys of the rows, for the prediction log.
	context  []keyValue
	entities []keyColumn
	// col holds one read column at a time while a dataset is built.
	col []online.Value
}

type keyValue struct{ name, value string }

type keyColumn struct {
	name   string
	values []string
}

// release returns the read vectors' memory.
func (fr *frame) release() {
	if fr.vec != nil {
		fr.vec.Release()
		fr.vec = nil
	}
}

// entityRequest is what a request names its entities and values with.
type entityRequest struct {
	rows int
	// columns are per-row key columns (predict's entities, rank's
	// candidates), context keys of one value for every row (rank's context,
	// a scalar in predict's entities).
	columns map[string]Column
	context map[string]any
	// part names where the keys come from, for messages.
	part string
	// features are the request's values by name: on-demand features' request
	// values, or model inputs given directly.
	features map[string]Column
}

// ErrFeatureStore means the online store did not answer (in time): the
// request may be retried (503).
var ErrFeatureStore = errors.New("online store unavailable")

// fetch reads plan p's features for the request's entities (nil p: no
// read), under the store timeout within the request's deadline, and
// computes p's on-demand features from the read values and the request's.
// A missing entity or feature is a missing value, never an error; a
// request that does not name a join key p needs is ErrInvalidInput.
func (f *fetcher) fetch(ctx context.Context, p *fetchPlan, er *entityRequest) (*frame, error) {
	start := time.Now()
	fr := &frame{rows: er.rows, plan: p, req: er.features}
	for _, n := range sortedKeys(er.context) {
		fr.context = append(fr.context, keyValue{n, keyText(er.context[n])})
	}
	for _, n := range sortedKeys(er.columns) {
		c := er.columns[n]
		kc := keyColumn{name: n, values: make([]string, er.rows)}
		for r := range er.rows {
			kc.values[r] = keyText(c.at(r))
		}
		fr.entities = append(fr.entities, kc)
	}
	if p == nil {
		return fr, nil
	}
	req := &retrieval.Request{Features: p.features, FeatureService: p.service}
	// The store answers one row when every join key is a single value, but
	// the request may still have several rows (a single user and listing
	// with several values of a request feature, or candidates that differ
	// only in request values): then the first key becomes a per-row column
	// so the store answers one row per request row.
	perRow := false
	for _, k := range p.shape.JoinKeys {
		if c, ok := er.columns[k.Name]; ok && !c.Broadcast {
			perRow = true
		}
	}
	for i, k := range p.shape.JoinKeys {
		c, ok := er.columns[k.Name]
		if !ok {
			v, isContext := er.context[k.Name]
			if !isContext {
				where := "entities"
				if er.part == "candidates" {
					where = "context (one value for the request) or candidates (one per candidate)"
				}
				return nil, errInput("missing %s: the features need %s; send it in %s", k.Name, p.keys, where)
			}
			c = Column{Values: []any{v}, Broadcast: true}
		}
		part := er.part
		if c.Broadcast && er.part == "candidates" {
			part = "context"
		}
		if i == 0 && !perRow && er.rows != 1 {
			c = Column{Values: slices.Repeat(c.Values[:1], er.rows)}
		}
		if err := addKey(&req.Entities, k, part, c); err != nil {
			return nil, err
		}
	}
	if len(p.request) > 0 {
		req.Context = make(map[string][]online.Value, len(p.request))
		for name, kind := range p.request {
			c, ok := er.features[name]
			if !ok {
				continue // missing: the on-demand features reading it are null
			}
			vals := make([]online.Value, er.rows)
			for r := range er.rows {
				v, err := contextValue(c.at(r), kind, name)
				if err != nil {
					return nil, err
				}
				vals[r] = v
			}
			req.Context[name] = vals
		}
	}
	rctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	vec, err := f.online.Get(rctx, req)
	switch {
	case err == nil:
	case errors.Is(err, retrieval.ErrInvalidRequest):
		return nil, errInput("%v", err)
	case errors.Is(err, retrieval.ErrUnknownFeature):
		return nil, fmt.Errorf("%w: %v", ErrNotReady, err)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return nil, err // the client went away
	case errors.Is(err, context.DeadlineExceeded) || rctx.Err() != nil:
		return nil, fmt.Errorf("%w: no answer within %s: %v", ErrFeatureStore, f.timeout, err)
	default:
		return nil, fmt.Errorf("%w: %v", ErrFeatureStore, err)
	}
	if vec.Rows() != fr.rows {
		// dataset reads fr.rows rows of vec: never index past its end.
		return nil, fmt.Errorf("%w: asked for %d rows, answered %d", ErrFeatureStore, fr.rows, vec.Rows())
	}
	fr.vec = vec
	fr.fetch = time.Since(start)
	return fr, nil
}

// checkFeatures refuses request values that neither the plan's on-demand
// features read nor any of the models takes as an input: a misspelled name
// would otherwise be silently ignored.
func checkFeatures(p *fetchPlan, features map[string]Column, models ...*Deployed) error {
	for _, name := range sortedKeys(features) {
		if p != nil {
			if _, ok := p.request[name]; ok {
				continue
			}
		}
		used := false
		for _, d := range models {
			used = used || d.InputIndex(name) >= 0
		}
		if !used {
			var known []string
			if p != nil {
				for n := range p.request {
					known = append(known, n)
				}
			}
			sort.Strings(known)
			hint := "none"
			if len(known) > 0 {
				hint = strings.Join(known, ", ")
			}
			return errInput("features.%s: not a request value of the model's on-demand features (those are: %s) nor a feature of the model", name, hint)
		}
	}
	return nil
}

// dataset lays the frame's rows out in d's input order. An input takes the
// request's value when the request names it, else the read column of its
// name, else it is missing. missing[j] counts input j's missing values
// (NaN), also added to the version's metric.
func (f *fetcher) dataset(d *Deployed, fr *frame, m *endpointMetrics) (ds *ml.Dataset, missing []int, err error) {
	b := f.bind(d, fr.plan, m)
	ds = d.NewDataset(fr.rows)
	missing = make([]int, len(d.Inputs))
	for j := range d.Inputs {
		c := &ds.Columns[j]
		if rc, ok := fr.req[d.Inputs[j].Name]; ok {
			if err := requestColumn(d, j, c, rc, fr.rows); err != nil {
				return nil, nil, err
			}
		} else if col := b.cols[j]; col >= 0 && fr.vec != nil {
			fr.col = fr.vec.AppendColumn(fr.col[:0], col)
			for r, v := range fr.col {
				setValue(d, j, c, r, v)
			}
		}
		n := 0
		if c.Kind == ml.Numeric {
			for _, v := range c.Float64 {
				if math.IsNaN(v) {
					n++
				}
			}
		} else {
			for _, v := range c.Values {
				if v != v {
					n++
				}
			}
		}
		missing[j] = n
		if n > 0 {
			b.missing[j].Add(float64(n))
		}
	}
	return ds, missing, nil
}

// setValue sets row r of input j from a read value: numbers (and booleans
// as 0/1) for numeric inputs; category text, or a category code, for
// categorical ones. Anything else is missing (it stays NaN).
func setValue(d *Deployed, j int, c *ml.Column, r int, v online.Value) {
	var x float64
	switch v.Kind() {
	case online.KindFloat64:
		x = v.Float64()
	case online.KindInt64:
		x = float64(v.Int64())
	case online.KindBool:
		if v.Bool() {
			x = 1
		}
	case online.KindString:
		if c.Kind == ml.Categorical {
			c.Values[r], _ = d.CategoryCode(j, v.Str())
		}
		return
	default:
		return
	}
	setNumber(d, j, c, r, x)
}

// setNumber sets row r of input j to a number: the value of a numeric
// input, the code of a categorical one (a number that is no code of the
// input is missing).
func setNumber(d *Deployed, j int, c *ml.Column, r int, x float64) {
	if c.Kind == ml.Numeric {
		c.Float64[r] = x
		return
	}
	cats := d.Inputs[j].Categories
	if x >= 0 && x == math.Trunc(x) && x < 1<<24 && (cats == nil || int(x) < len(cats)) {
		c.Values[r] = float32(x)
	}
}

// requestColumn sets input j from a request's values.
func requestColumn(d *Deployed, j int, c *ml.Column, rc Column, rows int) error {
	if !rc.Broadcast && len(rc.Values) != rows {
		return errInput("features.%s: %d values for %d rows: send one per row, or one value for all", d.Inputs[j].Name, len(rc.Values), rows)
	}
	for r := range rows {
		switch x := rc.at(r).(type) {
		case nil:
		case float64:
			setNumber(d, j, c, r, x)
		case int64:
			setNumber(d, j, c, r, float64(x))
		case bool:
			if x {
				setNumber(d, j, c, r, 1)
			} else {
				setNumber(d, j, c, r, 0)
			}
		case string:
			if c.Kind != ml.Categorical {
				return errInput("features.%s: %q is text, but feature %s of model %s version %s is numeric", d.Inputs[j].Name, x, d.Inputs[j].Name, d.Name, d.Version)
			}
			c.Values[r], _ = d.CategoryCode(j, x)
		default:
			return errInput("features.%s: %s is not a number, a category or null", d.Inputs[j].Name, describeValue(x))
		}
	}
	return nil
}

// sortedKeys returns a map's keys in order (deterministic messages and logs).
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// errInput builds an ErrInvalidInput error.
func errInput(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidInput}, args...)...)
}

// keyText is an entity key as the prediction log records it.
func keyText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// addKey adds a request's key column to a retrieval request, typed as
// the join key wants it.
func addKey(e *retrieval.Entities, k retrieval.JoinKeyDef, part string, c Column) error {
	n := len(c.Values)
	allInt, allStr := true, true
	for _, v := range c.Values {
		switch x := v.(type) {
		case string:
			allInt = false
		case int64:
			allStr = false
		case float64:
			allStr = false
			if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				allInt = false
			}
		default:
			allInt, allStr = false, false
		}
	}
	want := k.Type
	if want == retrieval.KeyAny {
		switch {
		case n > 0 && allStr:
			want = retrieval.KeyString
		case allInt:
			want = retrieval.KeyInt64
		default:
			want = retrieval.KeyString
		}
	}
	switch want {
	case retrieval.KeyString:
		if !allStr {
			return errInput("%s.%s: want strings (the join key %s is a string), not numbers or nulls", part, k.Name, k.Name)
		}
		strs := make([]string, n)
		for i, v := range c.Values {
			strs[i] = v.(string)
		}
		if c.Broadcast {
			e.BroadcastString(k.Name, strs[0])
		} else {
			e.String(k.Name, strs...)
		}
	default:
		if !allInt {
			return errInput("%s.%s: want integers (the join key %s is an int64), not strings, fractions or nulls", part, k.Name, k.Name)
		}
		ints := make([]int64, n)
		for i, v := range c.Values {
			switch x := v.(type) {
			case int64:
				ints[i] = x
			case float64:
				ints[i] = int64(x)
			}
		}
		if c.Broadcast {
			e.BroadcastInt64(k.Name, ints[0])
		} else {
			e.Int64(k.Name, ints...)
		}
	}
	return nil
}

// contextValue converts a request value to the kind an on-demand feature
// reads; name says where it is for the message.
func contextValue(v any, k online.Kind, name string) (online.Value, error) {
	if v == nil {
		return online.Null, nil
	}
	bad := func() error {
		return errInput("features.%s: %s is not a %s (the request value %s of on-demand features is %s)", name, describeValue(v), k, name, k)
	}
	switch k {
	case online.KindFloat64:
		switch x := v.(type) {
		case float64:
			return online.Float64(x), nil
		case int64:
			return online.Float64(float64(x)), nil
		}
	case online.KindInt64:
		switch x := v.(type) {
		case int64:
			return online.Int64(x), nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
				return online.Int64(int64(x)), nil
			}
		}
	case online.KindString:
		if x, ok := v.(string); ok {
			return online.String(x), nil
		}
	case online.KindBool:
		if x, ok := v.(bool); ok {
			return online.Bool(x), nil
		}
	case online.KindTime:
		if x, ok := v.(string); ok {
			t, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return online.Null, errInput("features.%s: %q is not an RFC 3339 time (2026-12-05T07:00:00Z)", name, x)
			}
			return online.Time(t.UTC()), nil
		}
	}
	return online.Null, bad()
}

func describeValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
