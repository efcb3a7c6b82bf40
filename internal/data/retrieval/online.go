package retrieval

// Online feature vectors: the latest feature values of a batch of entities,
// read from the online store for serving. Definitions are resolved once into
// plans (one per distinct feature list, cached), so a request costs a JSON
// decode, one online.Store.Read and a JSON encode, with pooled buffers.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/atrium-ml/atrium/internal/data/ondemand"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/platform/jsonw"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// Sentinel errors of online retrieval; the HTTP API maps them to status codes
// in one place (httpStatus).
var (
	// ErrInvalidRequest: the request is malformed (bad JSON, ragged entity
	// columns, a key of the wrong type, a missing join key, ...).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrUnknownFeature: a feature, feature set or feature service is not defined.
	ErrUnknownFeature = errors.New("unknown feature")
	// ErrNotSupported: the request is well-formed but this server cannot do it
	// (a push to the offline store when it has none).
	ErrNotSupported = errors.New("not supported")
	// ErrCheckFailed: pushed rows fail an error-level data-quality check of
	// their feature set; nothing was written.
	ErrCheckFailed = errors.New("data-quality check failed")
)

// KeyType is the type of a join key: online keys are strings or int64s.
// Feature definitions do not declare join-key types (they come from the
// source data), so a key's type may be unknown until rows were materialized
// or pushed; a request may then send either, each column typed by its values.
type KeyType uint8

const (
	KeyAny KeyType = iota
	KeyString
	KeyInt64
)

func (t KeyType) String() string {
	switch t {
	case KeyAny:
		return "string or int64"
	case KeyString:
		return "string"
	case KeyInt64:
		return "int64"
	}
	return "invalid"
}

// Definitions are the feature sets and services online retrieval serves. They
// are loaded once when the server starts (from the catalog `atrium apply`
// writes) and never looked up per request.
type Definitions struct {
	Sets     []SetDef
	Services []ServiceDef
	// OnDemand are the on-demand sets: features computed from the fetched
	// features of other sets (and request values) after the read.
	OnDemand []OnDemandDef
}

// OnDemandDef is an on-demand set as online retrieval sees it: a compiled
// program and where each of its variables comes from.
type OnDemandDef struct {
	Name    string
	Program *ondemand.Program
	// Inputs[v] is the "set:feature" variable v reads, or "" for a request
	// value (named Program.Vars()[v].Name, sent in request_context).
	Inputs []string
}

// SetDef is a feature set as online retrieval sees it.
type SetDef struct {
	Name     string
	JoinKeys []JoinKeyDef
	// TTL bounds how old a served row may be: an older one is reported as
	// OUTSIDE_MAX_AGE. 0 means no bound.
	TTL      time.Duration
	Features []FeatureDef
	// Checks are the data-quality checks POST /push applies to pushed rows
	// (those of them that judge single rows: not_null, between, in_set).
	Checks []FeatureCheck
}

// JoinKeyDef is one join key of a set.
type JoinKeyDef struct {
	Name string
	Type KeyType
}

// FeatureDef is one output column of a set. Type is the kind of its values
// (online.KindInt64, KindFloat64, KindString, KindBool or KindTime).
type FeatureDef struct {
	Name string
	Type online.Kind
}

// ServiceDef is a named list of feature references ("set" for all of a set's
// features, or "set:feature").
type ServiceDef struct {
	Name     string
	Features []string
}

// Status is the status of one served value, with Feast's numbering
// (feast.serving.FieldStatus).
type Status uint8

const (
	StatusInvalid       Status = 0
	StatusPresent       Status = 1
	StatusNullValue     Status = 2
	StatusNotFound      Status = 3
	StatusOutsideMaxAge Status = 4
)

var statusNames = [...]string{"INVALID", "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "INVALID"
}

// ParseStatus parses a status name.
func ParseStatus(name string) (Status, error) {
	for i, n := range statusNames {
		if n == name {
			return Status(i), nil
		}
	}
	return StatusInvalid, fmt.Errorf("unknown field status %q", name)
}

// catalog is Definitions indexed for lookups.
type catalog struct {
	sets     map[string]*setInfo
	order    []*setInfo // sets in definition order
	services map[string][]ref
	onDemand map[string]*odInfo
}

// odInfo is an on-demand set with its inputs resolved.
type odInfo struct {
	OnDemandDef
	inputs []ref // [v]: the stored feature variable v reads (set nil: a request value)
}

type setInfo struct {
	SetDef
	features map[string]int // name -> index in Features
}

// ref is a resolved feature reference: a stored feature (set, feature) or
// an on-demand one (od, feature: its expression).
type ref struct {
	set     *setInfo
	feature int
	od      *odInfo
}

func newCatalog(defs Definitions) (*catalog, error) {
	c := &catalog{sets: map[string]*setInfo{}, services: map[string][]ref{}}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, s := range defs.Sets {
		if s.Name == "" || strings.ContainsAny(s.Name, ":\x00") {
			bad("feature set %q: want a non-empty name without ':'", s.Name)
			continue
		}
		if c.sets[s.Name] != nil {
			bad("feature set %s: defined twice", s.Name)
			continue
		}
		si := &setInfo{SetDef: s, features: map[string]int{}}
		if len(s.JoinKeys) == 0 {
			bad("feature set %s: no join keys", s.Name)
		}
		for _, k := range s.JoinKeys {
			if k.Type > KeyInt64 {
				bad("feature set %s: join key %s has type %s, want string or int64", s.Name, k.Name, k.Type)
			}
		}
		if s.TTL < 0 {
			bad("feature set %s: negative ttl %s", s.Name, s.TTL)
		}
		for i, f := range s.Features {
			if _, dup := si.features[f.Name]; dup {
				bad("feature set %s: feature %s defined twice", s.Name, f.Name)
			}
			switch f.Type {
			case online.KindInt64, online.KindFloat64, online.KindString, online.KindBool, online.KindTime:
			default:
				bad("feature set %s: feature %s has type %s", s.Name, f.Name, f.Type)
			}
			si.features[f.Name] = i
		}
		for _, fc := range s.Checks {
			if _, ok := si.features[fc.Feature]; !ok || fc.Check == nil {
				bad("feature set %s: a check of %q, which is not one of its features", s.Name, fc.Feature)
			}
		}
		c.sets[s.Name] = si
		c.order = append(c.order, si)
	}
	c.onDemand = map[string]*odInfo{}
	for _, od := range defs.OnDemand {
		if c.sets[od.Name] != nil || c.onDemand[od.Name] != nil || od.Program == nil || len(od.Inputs) != len(od.Program.Vars()) {
			bad("on-demand set %s: defined twice, named like a feature set, or without a program for its inputs", od.Name)
			continue
		}
		info := &odInfo{OnDemandDef: od, inputs: make([]ref, len(od.Inputs))}
		for v, in := range od.Inputs {
			if in == "" {
				continue
			}
			rs, err := c.resolve(in, false)
			if err != nil {
				bad("on-demand set %s: input %s: %v", od.Name, od.Program.Vars()[v].Name, err)
				continue
			}
			info.inputs[v] = rs[0]
		}
		c.onDemand[od.Name] = info
	}
	for _, svc := range defs.Services {
		if _, dup := c.services[svc.Name]; dup {
			bad("feature service %s: defined twice", svc.Name)
			continue
		}
		var refs []ref
		for _, r := range svc.Features {
			rs, err := c.resolve(r, true)
			if err != nil {
				bad("feature service %s: %v", svc.Name, err)
				continue
			}
			refs = append(refs, rs...)
		}
		c.services[svc.Name] = refs
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("online feature definitions:\n  %s", strings.Join(problems, "\n  "))
	}
	return c, nil
}

// resolve turns "set:feature" (or, with wholeSets, "set") into refs.
func (c *catalog) resolve(r string, wholeSets bool) ([]ref, error) {
	setName, feature, hasFeature := strings.Cut(r, ":")
	if od := c.onDemand[setName]; od != nil {
		var out []ref
		for i, x := range od.Program.Exprs() {
			if !hasFeature || x.Name == feature {
				out = append(out, ref{od: od, feature: i})
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: %q: on-demand set %s has no feature %q", ErrUnknownFeature, r, setName, feature)
		}
		return out, nil
	}
	s := c.sets[setName]
	if s == nil {
		return nil, fmt.Errorf("%w: %q: no feature set %q", ErrUnknownFeature, r, setName)
	}
	if !hasFeature {
		if !wholeSets {
			return nil, fmt.Errorf("%w: feature reference %q: want set:feature", ErrInvalidRequest, r)
		}
		out := make([]ref, len(s.Features))
		for i := range s.Features {
			out[i] = ref{set: s, feature: i}
		}
		return out, nil
	}
	i, ok := s.features[feature]
	if !ok {
		return nil, fmt.Errorf("%w: %q: feature set %s has no feature %q", ErrUnknownFeature, r, setName, feature)
	}
	return []ref{{set: s, feature: i}}, nil
}

// plan is everything a request for one feature list needs, resolved once.
type plan struct {
	// joinKeys are the entity columns the request must hold, in output order:
	// the join keys of the sets in the order the sets are first referenced.
	joinKeys []JoinKeyDef
	// queries are the online reads, one per set, Keys left empty.
	queries []online.Query
	sets    []*setInfo
	// setKeys[q] are the indexes into joinKeys of query q's set's join keys.
	setKeys [][]int
	// keyGroup[q] is the first query whose keys query q shares (same join keys).
	keyGroup []int
	// outputs are the feature columns after the join keys.
	outputs []output
	// od are the on-demand sets the outputs name, computed after the read.
	od []odPlan
	// names are the response's feature_names: join keys, then outputs.
	names []string
	// header is the JSON response up to the first result, pre-encoded.
	header []byte
}

// output is a stored feature (query, feature) or, with query < 0, the
// expression feature of on-demand plan od.
type output struct {
	query, feature int
	od             int
}

// odPlan computes an on-demand set's expressions: variable v reads feature
// inputs[v].feature of query inputs[v].query, or the request value of its
// name when query < 0.
type odPlan struct {
	info   *odInfo
	inputs []output
}

func (c *catalog) newPlan(features []string, service string, fullNames bool) (*plan, error) {
	var refs []ref
	switch {
	case service != "" && len(features) > 0:
		return nil, fmt.Errorf("%w: features and feature_service are both set: name one", ErrInvalidRequest)
	case service != "":
		rs, ok := c.services[service]
		if !ok {
			return nil, fmt.Errorf("%w: feature_service %q is not defined", ErrUnknownFeature, service)
		}
		refs = rs
	case len(features) == 0:
		return nil, fmt.Errorf("%w: features: empty; name features as \"set:feature\" or a feature_service", ErrInvalidRequest)
	default:
		for i, f := range features {
			rs, err := c.resolve(f, false)
			if err != nil {
				return nil, fmt.Errorf("features[%d]: %w", i, err)
			}
			refs = append(refs, rs...)
		}
	}

	p := &plan{}
	querySet := map[*setInfo]int{}
	keyIndex := map[string]int{}
	seen := map[string]string{} // output name -> reference, to report collisions
	// answer names the next answered feature, set:feature, in p.names.
	answer := func(set, feature string) error {
		name := feature
		if fullNames {
			name = set + "__" + feature
		}
		refName := set + ":" + feature
		if prev, dup := seen[name]; dup {
			if prev == refName {
				return fmt.Errorf("%w: feature %s is requested twice", ErrInvalidRequest, refName)
			}
			return fmt.Errorf("%w: features %s and %s are both named %s in the response: set full_feature_names to tell them apart",
				ErrInvalidRequest, prev, refName, name)
		}
		seen[name] = refName
		p.names = append(p.names, name)
		return nil
	}
	odIndex := map[*odInfo]int{}
	// query returns the query of set s, adding it (and its join keys) first.
	query := func(s *setInfo) (int, error) {
		q, ok := querySet[s]
		if ok {
			return q, nil
		}
		q = len(p.queries)
		querySet[s] = q
		p.queries = append(p.queries, online.Query{Set: s.Name})
		p.sets = append(p.sets, s)
		var idx []int
		for _, k := range s.JoinKeys {
			i, ok := keyIndex[k.Name]
			if !ok {
				i = len(p.joinKeys)
				keyIndex[k.Name] = i
				p.joinKeys = append(p.joinKeys, k)
			} else if have := p.joinKeys[i].Type; have == KeyAny {
				p.joinKeys[i].Type = k.Type
			} else if k.Type != KeyAny && k.Type != have {
				return 0, fmt.Errorf("%w: join key %s is %s in feature set %s but %s in another requested set",
					ErrInvalidRequest, k.Name, k.Type, s.Name, have)
			}
			idx = append(idx, i)
		}
		p.setKeys = append(p.setKeys, idx)
		group := q
		for prev := range q {
			if equalInts(p.setKeys[prev], idx) {
				group = prev
				break
			}
		}
		p.keyGroup = append(p.keyGroup, group)
		return q, nil
	}
	for _, r := range refs {
		if r.od != nil {
			i, ok := odIndex[r.od]
			if !ok {
				i = len(p.od)
				odIndex[r.od] = i
				p.od = append(p.od, odPlan{info: r.od})
			}
			if err := answer(r.od.Name, r.od.Program.Exprs()[r.feature].Name); err != nil {
				return nil, err
			}
			p.outputs = append(p.outputs, output{query: -1, feature: r.feature, od: i})
			continue
		}
		q, err := query(r.set)
		if err != nil {
			return nil, err
		}
		fname := r.set.Features[r.feature].Name
		if err := answer(r.set.Name, fname); err != nil {
			return nil, err
		}
		p.queries[q].Features = append(p.queries[q].Features, fname)
		p.outputs = append(p.outputs, output{query: q, feature: len(p.queries[q].Features) - 1})
	}
	// The stored inputs of on-demand sets are read with the requested
	// features (once, when also requested), not answered.
	for i := range p.od {
		od := &p.od[i]
		for v, in := range od.info.inputs {
			if in.set == nil {
				od.inputs = append(od.inputs, output{query: -1, feature: v})
				continue
			}
			q, err := query(in.set)
			if err != nil {
				return nil, err
			}
			fname := in.set.Features[in.feature].Name
			f := slices.Index(p.queries[q].Features, fname)
			if f < 0 {
				f = len(p.queries[q].Features)
				p.queries[q].Features = append(p.queries[q].Features, fname)
			}
			od.inputs = append(od.inputs, output{query: q, feature: f})
		}
	}
	for _, k := range p.joinKeys {
		if _, clash := seen[k.Name]; clash {
			return nil, fmt.Errorf("%w: feature %s has the name of join key %s: set full_feature_names", ErrInvalidRequest, seen[k.Name], k.Name)
		}
	}
	names := make([]string, 0, len(p.joinKeys)+len(p.names))
	for _, k := range p.joinKeys {
		names = append(names, k.Name)
	}
	p.names = append(names, p.names...)
	p.header = appendHeader(nil, p.names)
	return p, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Options configure an Online.
type Options struct {
	// MaxEntities bounds the entity rows of one request. Default 10,000.
	MaxEntities int
	// MaxPlans bounds the cache of resolved feature lists; distinct lists past
	// it are resolved per request. Default 4096.
	MaxPlans int
	// Now returns the current time, for max-age checks. Default time.Now.
	Now func() time.Time
	// Metrics, when set, receives per-set lookup counts and row ages.
	Metrics *Metrics
}

func (o *Options) ensureDefaults() {
	if o.MaxEntities <= 0 {
		o.MaxEntities = 10_000
	}
	if o.MaxPlans <= 0 {
		o.MaxPlans = 4096
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Online serves feature vectors from an online store. It is safe for
// concurrent use.
type Online struct {
	store online.Store
	cat   *catalog
	opts  Options

	plansMu sync.RWMutex
	plans   map[string]*plan
}

// NewOnline checks defs and returns an Online reading from store.
func NewOnline(store online.Store, defs Definitions, opts Options) (*Online, error) {
	cat, err := newCatalog(defs)
	if err != nil {
		return nil, err
	}
	opts.ensureDefaults()
	return &Online{store: store, cat: cat, opts: opts, plans: map[string]*plan{}}, nil
}

// Store is the online store o reads from.
func (o *Online) Store() online.Store { return o.store }

// plan returns the cached plan of a feature list, building it on first use.
// key is scratch memory for the cache key, returned for reuse.
func (o *Online) plan(features []string, service string, fullNames bool, key []byte) (*plan, []byte, error) {
	key = planKeyPrefix(key[:0], 'l', service, fullNames)
	for _, f := range features {
		key = append(key, 0)
		key = append(key, f...)
	}
	p, err := o.cachedPlan(key, func() (*plan, error) { return o.cat.newPlan(features, service, fullNames) })
	return p, key, err
}

// planJSON is plan for the raw JSON of a request's "features" list: a cached
// plan is found by the bytes alone, without decoding the list.
func (o *Online) planJSON(rawFeatures []byte, service string, fullNames bool, key []byte) (*plan, []byte, error) {
	key = append(planKeyPrefix(key[:0], 'j', service, fullNames), rawFeatures...)
	p, err := o.cachedPlan(key, func() (*plan, error) {
		var features []string
		if len(rawFeatures) > 0 {
			if err := json.Unmarshal(rawFeatures, &features); err != nil {
				return nil, fmt.Errorf("%w: features: want a list of strings (\"set:feature\")", ErrInvalidRequest)
			}
		}
		return o.cat.newPlan(features, service, fullNames)
	})
	return p, key, err
}

func planKeyPrefix(key []byte, kind byte, service string, fullNames bool) []byte {
	key = append(key, kind)
	if fullNames {
		key = append(key, 'F')
	} else {
		key = append(key, 'f')
	}
	key = append(key, service...)
	return append(key, 0)
}

func (o *Online) cachedPlan(key []byte, build func() (*plan, error)) (*plan, error) {
	o.plansMu.RLock()
	p := o.plans[string(key)] // no allocation: the compiler converts for the lookup only
	o.plansMu.RUnlock()
	if p != nil {
		return p, nil
	}
	p, err := build()
	if err != nil {
		return nil, err
	}
	o.plansMu.Lock()
	if len(o.plans) < o.opts.MaxPlans {
		o.plans[string(key)] = p
	}
	o.plansMu.Unlock()
	return p, nil
}

// Entities are the entity columns of a request: one column per join key, all
// of the same length, except broadcast columns (one value for every row).
type Entities struct {
	cols []entityCol
}

type entityCol struct {
	name string
	typ  KeyType
	ints []int64
	strs []string
	// broadcast: the column's one value is every row's (BroadcastString).
	broadcast bool
}

// Int64 adds (or replaces) an int64 join-key column.
func (e *Entities) Int64(name string, values ...int64) {
	c := e.col(name)
	c.typ, c.ints, c.strs, c.broadcast = KeyInt64, append(c.ints[:0], values...), c.strs[:0], false
}

// String adds (or replaces) a string join-key column.
func (e *Entities) String(name string, values ...string) {
	c := e.col(name)
	c.typ, c.strs, c.ints, c.broadcast = KeyString, append(c.strs[:0], values...), c.ints[:0], false
}

// BroadcastInt64 adds (or replaces) a join-key column whose one value is
// every row's: the user of a ranking request, next to a column of candidate
// listings. A feature set whose join keys are all broadcast is read once,
// with one key, whatever the number of rows (Vectors answer its row for
// every row); a set keyed by a broadcast and a per-row column (user x
// listing) is read per row. Without per-row columns the request has one row.
func (e *Entities) BroadcastInt64(name string, value int64) {
	e.Int64(name, value)
	e.col(name).broadcast = true
}

// BroadcastString is BroadcastInt64 for a string key.
func (e *Entities) BroadcastString(name string, value string) {
	e.String(name, value)
	e.col(name).broadcast = true
}

func (e *Entities) col(name string) *entityCol {
	for i := range e.cols {
		if e.cols[i].name == name {
			return &e.cols[i]
		}
	}
	if len(e.cols) < cap(e.cols) {
		e.cols = e.cols[:len(e.cols)+1]
	} else {
		e.cols = append(e.cols, entityCol{})
	}
	c := &e.cols[len(e.cols)-1]
	c.name = name
	return c
}

// rows is the length of the first column (0 without columns).
func (e *Entities) rows() int {
	if len(e.cols) == 0 {
		return 0
	}
	return e.cols[0].len()
}

// requestKind is the kind of request value name of the plan's on-demand
// sets; false when none declares it.
func (p *plan) requestKind(name string) (online.Kind, bool) {
	for i := range p.od {
		for v, in := range p.od[i].inputs {
			if vr := p.od[i].info.Program.Vars()[v]; in.query < 0 && vr.Name == name {
				return vr.Kind, true
			}
		}
	}
	return online.KindMissing, false
}

// reset empties e, keeping its memory.
func (e *Entities) reset() {
	for i := range e.cols {
		e.cols[i].ints = e.cols[i].ints[:0]
		e.cols[i].strs = e.cols[i].strs[:0]
	}
	e.cols = e.cols[:0]
}

func (c *entityCol) len() int {
	if c.typ == KeyInt64 {
		return len(c.ints)
	}
	return len(c.strs)
}

// at is the index of row r's value: 0 for a broadcast column.
func (c *entityCol) at(r int) int {
	if c.broadcast {
		return 0
	}
	return r
}

// Request asks for features of entities.
type Request struct {
	// Features are "set:feature" references; or name a FeatureService instead.
	Features       []string
	FeatureService string
	Entities       Entities
	// FullFeatureNames names features "set__feature" in the response.
	FullFeatureNames bool
	// Context are request values of on-demand features (Feast's
	// request_context): a column of one value per entity row by name. A
	// value an on-demand set declares and the request lacks is null.
	Context map[string][]online.Value
}

// Vectors are the answer to a Request, column-major like Feast's response:
// column c is Names()[c] (join keys first), row r is the request's entity row r.
// Release returns a Vectors' memory to a pool once it is not used any more.
type Vectors struct {
	plan    *plan
	rows    int
	now     time.Time
	keyCols []*entityCol // the request's column of each plan join key
	keys    [][]online.Key
	keyOwn  [][]online.Key // the memory of the keys each query encodes itself
	keyEnds []int          // scratch: where each encoded key ends
	queries []online.Query
	results []online.Result
	scratch []byte
	// rowMeta[q*rows+r] and tsJSON: see prepareRows.
	rowMeta []rowMeta
	tsJSON  []byte
	// od[i] are the values of on-demand plan i, row-major (rows x exprs).
	od [][]online.Value
	// single[q]: query q's set is keyed by broadcast columns only; it read
	// one key, whose result row answers every row.
	single []bool
}

// row is the row of query q's result that answers row r.
func (v *Vectors) row(q, r int) int {
	if v.single[q] {
		return 0
	}
	return r
}

// rowMeta is what a response needs of one set's row: whether it is older than
// the set's ttl, and its event time as JSON (tsJSON[start:end]).
type rowMeta struct {
	stale      bool
	start, end int32
}

// prepareRows fills rowMeta and tsJSON. Rows materialized together share an
// event time, so consecutive equal times are formatted once.
func (v *Vectors) prepareRows() {
	nq := len(v.plan.queries)
	v.rowMeta = slices.Grow(v.rowMeta[:0], nq*v.rows)[:nq*v.rows]
	v.tsJSON = v.tsJSON[:0]
	for q := range nq {
		res := &v.results[q]
		ttl := v.plan.sets[q].TTL
		var last time.Time
		var lastStart, lastEnd int32 = 0, -1
		for r := range v.rows {
			m := &v.rowMeta[q*v.rows+r]
			rr := v.row(q, r)
			if !res.Found[rr] {
				*m = rowMeta{}
				continue
			}
			ts := res.TS[rr]
			m.stale = ttl > 0 && v.now.Sub(ts) > ttl
			if lastEnd < 0 || !ts.Equal(last) {
				lastStart = int32(len(v.tsJSON))
				v.tsJSON = jsonw.AppendTimestamp(v.tsJSON, ts)
				lastEnd, last = int32(len(v.tsJSON)), ts
			}
			m.start, m.end = lastStart, lastEnd
		}
	}
}

// cellStatus is the status of a value of a found or missing row.
func cellStatus(val online.Value, stale bool) Status {
	switch {
	case val.IsMissing():
		return StatusNotFound
	case stale:
		return StatusOutsideMaxAge
	case val.IsNull():
		return StatusNullValue
	}
	return StatusPresent
}

var vectorsPool = sync.Pool{New: func() any { return new(Vectors) }}

// Release returns v's memory for reuse; v must not be used afterwards.
func (v *Vectors) Release() {
	v.plan = nil
	clear(v.keyCols)
	vectorsPool.Put(v)
}

// Names are the column names: join keys, then features.
func (v *Vectors) Names() []string { return v.plan.names }

// Rows is the number of entity rows.
func (v *Vectors) Rows() int { return v.rows }

// Get returns the value, status and event time of column c, row r. Join-key
// columns are PRESENT with the zero time; a feature that is not found has a
// Missing value and the zero time; an on-demand feature is PRESENT, or
// NULL_VALUE when it could not be computed, with the zero time.
func (v *Vectors) Get(c, r int) (online.Value, Status, time.Time) {
	nk := len(v.plan.joinKeys)
	if c < nk {
		col := v.keyCols[c]
		if col.typ == KeyInt64 {
			return online.Int64(col.ints[col.at(r)]), StatusPresent, time.Time{}
		}
		return online.String(col.strs[col.at(r)]), StatusPresent, time.Time{}
	}
	out := v.plan.outputs[c-nk]
	if out.query < 0 {
		val := v.odValue(out, r)
		if val.IsNull() {
			return val, StatusNullValue, time.Time{}
		}
		return val, StatusPresent, time.Time{}
	}
	res := &v.results[out.query]
	r = v.row(out.query, r)
	if !res.Found[r] {
		return online.Missing, StatusNotFound, time.Time{}
	}
	val := res.Values[r*len(v.plan.queries[out.query].Features)+out.feature]
	ttl := v.plan.sets[out.query].TTL
	st := cellStatus(val, ttl > 0 && v.now.Sub(res.TS[r]) > ttl)
	if st == StatusNotFound {
		return val, st, time.Time{}
	}
	return val, st, res.TS[r]
}

// AppendColumn appends column c's value in every row to dst: Get's values
// without their status and time, and missing for a row past its set's ttl
// (as the point-in-time join leaves such a row out offline, and as on-demand
// features see it). What a model reads, a column at a time: the per-cell
// work of Get (status, time) is left out of a request's thousands of cells.
func (v *Vectors) AppendColumn(dst []online.Value, c int) []online.Value {
	nk := len(v.plan.joinKeys)
	if c < nk {
		for r := range v.rows {
			val, _, _ := v.Get(c, r)
			dst = append(dst, val)
		}
		return dst
	}
	out := v.plan.outputs[c-nk]
	if out.query < 0 {
		for r := range v.rows {
			dst = append(dst, v.odValue(out, r))
		}
		return dst
	}
	res := &v.results[out.query]
	nf := len(v.plan.queries[out.query].Features)
	ttl := v.plan.sets[out.query].TTL
	value := func(r int) online.Value {
		if !res.Found[r] || ttl > 0 && v.now.Sub(res.TS[r]) > ttl {
			return online.Missing
		}
		return res.Values[r*nf+out.feature]
	}
	dst = slices.Grow(dst, v.rows)
	if v.single[out.query] { // one result row answers every row
		if v.rows == 0 { // and there is none: nothing was read
			return dst
		}
		val := value(0)
		for range v.rows {
			dst = append(dst, val)
		}
		return dst
	}
	for r := range v.rows {
		dst = append(dst, value(r))
	}
	return dst
}

// Get reads the features of req's entities. Errors wrap ErrInvalidRequest or
// ErrUnknownFeature for a request's mistakes; others come from the store.
func (o *Online) Get(ctx context.Context, req *Request) (*Vectors, error) {
	v := vectorsPool.Get().(*Vectors)
	if err := o.get(ctx, req, v); err != nil {
		v.Release()
		return nil, err
	}
	return v, nil
}

func (o *Online) get(ctx context.Context, req *Request, v *Vectors) error {
	p, scratch, err := o.plan(req.Features, req.FeatureService, req.FullFeatureNames, v.scratch)
	v.scratch = scratch
	if err != nil {
		return err
	}
	return o.read(ctx, p, req, v)
}

// read answers req, whose features p resolves, into v.
func (o *Online) read(ctx context.Context, p *plan, req *Request, v *Vectors) error {
	v.plan, v.now = p, o.opts.Now()

	// Match the request's columns to the plan's join keys.
	v.keyCols = slices.Grow(v.keyCols[:0], len(p.joinKeys))[:len(p.joinKeys)]
	clear(v.keyCols)
	rows, first, broadcast := -1, "", false
	for i := range req.Entities.cols {
		c := &req.Entities.cols[i]
		k := -1
		for j := range p.joinKeys {
			if p.joinKeys[j].Name == c.name {
				k = j
				break
			}
		}
		if k < 0 {
			return fmt.Errorf("%w: entities: %s is not a join key of the requested features (want %s)", ErrInvalidRequest, server.Quote(c.name), p.joinKeyList())
		}
		if want := p.joinKeys[k].Type; want != KeyAny && c.typ != want {
			return fmt.Errorf("%w: entities: %s: want %s values, got %s", ErrInvalidRequest, c.name, p.joinKeys[k].Type, c.typ)
		}
		v.keyCols[k] = c
		if c.broadcast {
			broadcast = true
			continue
		}
		if rows >= 0 && c.len() != rows {
			return fmt.Errorf("%w: entities: %s has %d values but %s has %d: every entity column needs one value per row",
				ErrInvalidRequest, c.name, c.len(), first, rows)
		}
		rows, first = c.len(), c.name
	}
	if rows < 0 && broadcast {
		rows = 1
	}
	for k, c := range v.keyCols {
		if c == nil {
			return fmt.Errorf("%w: entities: missing join key %s (the requested features need %s)", ErrInvalidRequest, p.joinKeys[k].Name, p.joinKeyList())
		}
	}
	if rows > o.opts.MaxEntities {
		return fmt.Errorf("%w: entities: %d rows, at most %d per request", ErrInvalidRequest, rows, o.opts.MaxEntities)
	}
	v.rows = max(rows, 0)

	// Encode each distinct key tuple once; sets with the same join keys share it.
	nq := len(p.queries)
	v.single = slices.Grow(v.single[:0], nq)[:nq]
	for q := range nq {
		v.single[q] = true
		for _, k := range p.setKeys[q] {
			v.single[q] = v.single[q] && v.keyCols[k].broadcast
		}
	}
	v.keys = slices.Grow(v.keys[:0], nq)[:nq]
	v.keyOwn = slices.Grow(v.keyOwn[:0], nq)[:nq]
	queries := slices.Grow(v.queries[:0], nq)[:nq]
	v.queries = queries
	for q := range nq {
		queries[q] = p.queries[q]
		if g := p.keyGroup[q]; g != q {
			v.keys[q] = v.keys[g]
		} else {
			// All keys are encoded into one buffer and made one string, which
			// the keys are slices of: one allocation per set, not per key.
			// Encoded into q's own memory, never into v.keys[q]: in a pooled
			// Vectors that may still alias another query's keys (shared by
			// an earlier request's plan), which this would overwrite.
			n := v.rows
			if v.single[q] {
				n = min(n, 1)
			}
			keys := slices.Grow(v.keyOwn[q][:0], n)[:n]
			v.keyOwn[q] = keys
			ends := slices.Grow(v.keyEnds[:0], n)[:n]
			b := v.scratch[:0]
			for r := range keys {
				for _, k := range p.setKeys[q] {
					if c := v.keyCols[k]; c.typ == KeyInt64 {
						b = online.AppendIntKey(b, c.ints[c.at(r)])
					} else {
						b = online.AppendStringKey(b, c.strs[c.at(r)])
					}
				}
				ends[r] = len(b)
			}
			v.scratch, v.keyEnds = b, ends
			all, start := string(b), 0
			for r := range keys {
				keys[r] = online.Key(all[start:ends[r]])
				start = ends[r]
			}
			v.keys[q] = keys
		}
		queries[q].Keys = v.keys[q]
	}
	v.results = slices.Grow(v.results[:0], nq)[:nq]
	if err := o.store.Read(ctx, queries, v.results); err != nil {
		return fmt.Errorf("read online store: %w", err)
	}
	if m := o.opts.Metrics; m != nil {
		for q, s := range p.sets {
			m.observe(s.Name, s.TTL, &v.results[q], v.now)
		}
	}
	v.computeOnDemand(req.Context, o.opts.Metrics)
	return nil
}

// odValue is the value of on-demand output out at row r.
func (v *Vectors) odValue(out output, r int) online.Value {
	ne := v.plan.od[out.od].info.Program.Len()
	return v.od[out.od][r*ne+out.feature]
}

// computeOnDemand evaluates the plan's on-demand sets over the read rows. A
// row past its set's ttl is missing to them, as the point-in-time join
// leaves it out offline. A value an expression cannot compute is null.
func (v *Vectors) computeOnDemand(ctx map[string][]online.Value, m *Metrics) {
	p := v.plan
	v.od = slices.Grow(v.od[:0], len(p.od))[:len(p.od)]
	for i := range p.od {
		od := &p.od[i]
		ne := od.info.Program.Len()
		v.od[i] = slices.Grow(v.od[i][:0], v.rows*ne)[:v.rows*ne]
		in := odInput{v: v, plan: od, ctx: ctx}
		var failed *ondemand.EvalError
		if err := od.info.Program.Eval(&in, v.rows, v.od[i]); errors.As(err, &failed) && m != nil {
			for e, n := range failed.Failed {
				if n > 0 {
					m.onDemandFailed.WithLabelValues(od.info.Name, od.info.Program.Exprs()[e].Name).Add(float64(n))
				}
			}
		}
	}
}

// odInput is the ondemand.Input of an on-demand plan over read rows.
type odInput struct {
	v    *Vectors
	plan *odPlan
	ctx  map[string][]online.Value
}

func (in *odInput) Value(vr, r int) online.Value {
	o := in.plan.inputs[vr]
	if o.query < 0 {
		col := in.ctx[in.plan.info.Program.Vars()[vr].Name]
		if r >= len(col) {
			return online.Missing
		}
		return col[r]
	}
	v := in.v
	res := &v.results[o.query]
	r = v.row(o.query, r)
	if !res.Found[r] {
		return online.Missing
	}
	if ttl := v.plan.sets[o.query].TTL; ttl > 0 && v.now.Sub(res.TS[r]) > ttl {
		return online.Missing
	}
	return res.Values[r*len(v.plan.queries[o.query].Features)+o.feature]
}

func (p *plan) joinKeyList() string {
	names := make([]string, len(p.joinKeys))
	for i, k := range p.joinKeys {
		names[i] = k.Name + " (" + k.Type.String() + ")"
	}
	return strings.Join(names, ", ")
}

// Services returns the names of the defined feature services, sorted: none
// when no definitions are applied. The model server checks the service a
// model version names against them when it loads the version.
func (o *Online) Services() []string {
	out := make([]string, 0, len(o.cat.services))
	for name := range o.cat.services {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// ServiceFeatures returns the feature references of a feature service, in
// its order: "set:feature" for stored features, "on_demand_set:feature" for
// on-demand ones. Callers combining services (a ranker scoring several
// models on one read) pass their union as Request.Features.
func (o *Online) ServiceFeatures(service string) ([]string, error) {
	refs, ok := o.cat.services[service]
	if !ok {
		return nil, fmt.Errorf("%w: feature_service %q is not defined", ErrUnknownFeature, service)
	}
	out := make([]string, len(refs))
	for i, r := range refs {
		if r.od != nil {
			out[i] = r.od.Name + ":" + r.od.Program.Exprs()[r.feature].Name
		} else {
			out[i] = r.set.Name + ":" + r.set.Features[r.feature].Name
		}
	}
	return out, nil
}

// Shape describes what a feature list (or service) needs from a request:
// its join keys, and the request values its on-demand features read, with
// their kinds (Request.Context values of another kind are null).
type Shape struct {
	JoinKeys []JoinKeyDef
	Request  []ondemand.Var
	// Names are the columns of the Vectors Get answers: join keys, then
	// features (Vectors.Names).
	Names []string
}

// Shape resolves a feature list or service like Get does (cached) and
// returns what a request for it must carry.
func (o *Online) Shape(features []string, service string) (Shape, error) {
	p, _, err := o.plan(features, service, false, nil)
	if err != nil {
		return Shape{}, err
	}
	sh := Shape{JoinKeys: slices.Clone(p.joinKeys), Names: slices.Clone(p.names)}
	seen := map[string]bool{}
	for i := range p.od {
		for v, in := range p.od[i].inputs {
			if vr := p.od[i].info.Program.Vars()[v]; in.query < 0 && !seen[vr.Name] {
				seen[vr.Name] = true
				sh.Request = append(sh.Request, vr)
			}
		}
	}
	return sh, nil
}
