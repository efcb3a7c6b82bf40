package tune

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// State is a trial's life-cycle state.
type State int

const (
	// Running: the trial was started and has not finished (or its process died
	// and no one has noticed yet; see StudyOptions.Heartbeat).
	Running State = iota
	// Complete: the objective returned a value.
	Complete
	// Pruned: the objective stopped early on ShouldPrune (returned ErrPruned).
	Pruned
	// Failed: the objective returned an error or NaN, or its process died.
	Failed
)

func (s State) String() string {
	switch s {
	case Running:
		return "RUNNING"
	case Complete:
		return "COMPLETE"
	case Pruned:
		return "PRUNED"
	case Failed:
		return "FAIL"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ParseState reads what State.String wrote.
func ParseState(s string) (State, error) {
	for st := Running; st <= Failed; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown trial state %q", s)
}

// Finished reports a state that never changes again.
func (s State) Finished() bool { return s != Running }

// ErrPruned, returned by an objective (or wrapped in its error), marks the
// trial pruned rather than failed.
var ErrPruned = errors.New("trial pruned")

// SystemAttrStale is the system attribute set on a trial failed because its
// process stopped sending heartbeats. Such trials do not count towards the
// trial budget: a resumed study runs them again (under new numbers).
const SystemAttrStale = "atrium.stale"

// FrozenTrial is a snapshot of a trial.
type FrozenTrial struct {
	// ID is the storage's identifier of the trial; Number is its 0-based
	// position in the study, unique within the study.
	ID     int64
	Number int
	State  State
	// Value is the objective's value (Complete), or the last intermediate
	// value (Pruned, as Optuna does); NaN otherwise.
	Value float64
	// Params holds external values: float64, int or string.
	Params        map[string]any
	Distributions map[string]Distribution
	// Intermediate maps a step to the value reported at it.
	Intermediate map[int]float64
	Start, End   time.Time
	// Err is a failed trial's reason.
	Err         string
	UserAttrs   map[string]string
	SystemAttrs map[string]string
}

// LastStep returns the largest reported step, or -1 and false.
func (f *FrozenTrial) LastStep() (int, bool) {
	last, ok := -1, false
	for s := range f.Intermediate {
		if s > last {
			last, ok = s, true
		}
	}
	return last, ok
}

// Trial is a running trial handed to the Objective. Its methods are safe for
// concurrent use.
type Trial struct {
	study  *Study
	ctx    context.Context
	id     int64
	number int
	rng    *rand.Rand
	hist   *History
	rel    map[string]Relative
	// stopBeat ends the trial's heartbeats.
	stopBeat func()

	mu       sync.Mutex
	frozen   FrozenTrial
	firstErr error
}

// SuggestOption modifies a suggestion: Log or Step.
type SuggestOption func(*suggestOpts)

type suggestOpts struct {
	log  bool
	step float64
}

// Log samples the parameter on a log scale.
func Log() SuggestOption { return func(o *suggestOpts) { o.log = true } }

// Step restricts the parameter to low + k*step.
func Step(step float64) SuggestOption { return func(o *suggestOpts) { o.step = step } }

func collect(opts []SuggestOption) suggestOpts {
	var o suggestOpts
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Number is the trial's 0-based number in the study.
func (t *Trial) Number() int { return t.number }

// Params returns the parameters suggested so far.
func (t *Trial) Params() map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]any, len(t.frozen.Params))
	for k, v := range t.frozen.Params {
		out[k] = v
	}
	return out
}

// SuggestFloat returns a float in [low, high]. An invalid range (low > high,
// log with low <= 0) returns low and fails the trial with the reason when the
// objective returns; use Suggest to get the error at once.
func (t *Trial) SuggestFloat(name string, low, high float64, opts ...SuggestOption) float64 {
	o := collect(opts)
	v, err := t.Suggest(name, FloatDist{Low: low, High: high, Log: o.log, Step: o.step})
	if err != nil {
		return low
	}
	return v.(float64)
}

// SuggestInt returns an int in [low, high] (see SuggestFloat for errors).
func (t *Trial) SuggestInt(name string, low, high int, opts ...SuggestOption) int {
	o := collect(opts)
	v, err := t.Suggest(name, IntDist{Low: low, High: high, Log: o.log, Step: int(o.step)})
	if err != nil {
		return low
	}
	return v.(int)
}

// SuggestCategorical returns one of choices (see SuggestFloat for errors;
// an invalid list returns "").
func (t *Trial) SuggestCategorical(name string, choices []string) string {
	v, err := t.Suggest(name, CategoricalDist{Choices: choices})
	if err != nil {
		return ""
	}
	return v.(string)
}

// Suggest returns a value for the parameter drawn from d: float64 for a
// FloatDist, int for an IntDist, string for a CategoricalDist. Suggesting a
// name again returns the same value; with another distribution it is an
// error. A parameter suggested in some trials only (a conditional
// parameter) is fine. Errors are also recorded and fail the trial.
func (t *Trial) Suggest(name string, d Distribution) (any, error) {
	v, err := t.suggest(name, d)
	if err != nil {
		err = fmt.Errorf("trial %d: parameter %q: %w", t.number, name, err)
		t.mu.Lock()
		if t.firstErr == nil {
			t.firstErr = err
		}
		t.mu.Unlock()
	}
	return v, err
}

func (t *Trial) suggest(name string, d Distribution) (any, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.frozen.Distributions[name]; ok {
		if !DistEqual(old, d) {
			return nil, fmt.Errorf("suggested again with another range")
		}
		return t.frozen.Params[name], nil
	}
	var x float64
	switch {
	case d.Single():
		x = singleValue(d)
	default:
		if r, ok := t.rel[name]; ok && DistEqual(r.Dist, d) && d.Contains(r.Value) {
			x = r.Value
		} else {
			x = t.study.sampler.SampleIndependent(t.hist, t.number, name, d, t.rng)
		}
	}
	if err := t.study.storage.SetParam(t.ctx, t.id, name, x, d); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	v := d.ToExternal(x)
	t.frozen.Params[name] = v
	t.frozen.Distributions[name] = d
	return v, nil
}

func singleValue(d Distribution) float64 {
	switch x := d.(type) {
	case FloatDist:
		return x.Low
	case IntDist:
		return float64(x.Low)
	}
	return 0
}

// Report records the objective's intermediate value at step (a boosting
// iteration, an epoch). A step reported twice keeps its first value, as in
// Optuna.
func (t *Trial) Report(ctx context.Context, step int, value float64) error {
	if step < 0 {
		return fmt.Errorf("trial %d: report step %d: steps start at 0", t.number, step)
	}
	t.mu.Lock()
	if _, ok := t.frozen.Intermediate[step]; ok {
		t.mu.Unlock()
		return nil
	}
	t.frozen.Intermediate[step] = value
	t.mu.Unlock()
	if err := t.study.storage.SetIntermediate(ctx, t.id, step, value); err != nil {
		return fmt.Errorf("trial %d: report step %d: %w", t.number, step, err)
	}
	return nil
}

// ShouldPrune asks the study's pruner whether to stop the trial at its last
// reported step. A storage error is logged by the study and answers false.
func (t *Trial) ShouldPrune() bool {
	if _, isNop := t.study.pruner.(NopPruner); isNop {
		return false
	}
	hist, err := t.study.history(t.ctx, t.id)
	if err != nil {
		t.study.log.Warn("tune: read trials for pruning", "study", t.study.name, "trial", t.number, "err", err)
		return false
	}
	t.mu.Lock()
	snap := t.frozen.clone()
	t.mu.Unlock()
	prune, attrs := t.study.pruner.Prune(hist, snap)
	for k, v := range attrs {
		t.mu.Lock()
		t.frozen.SystemAttrs[k] = v
		t.mu.Unlock()
		if err := t.study.storage.SetAttr(t.ctx, t.id, SystemAttr, k, v); err != nil {
			t.study.log.Warn("tune: store pruner attribute", "study", t.study.name, "trial", t.number, "err", err)
		}
	}
	return prune
}

// SetUserAttr records a string attribute on the trial (a child run id, a
// note); it is kept in the storage.
func (t *Trial) SetUserAttr(key, value string) error {
	t.mu.Lock()
	t.frozen.UserAttrs[key] = value
	t.mu.Unlock()
	if err := t.study.storage.SetAttr(t.ctx, t.id, UserAttr, key, value); err != nil {
		return fmt.Errorf("trial %d: set user attribute %q: %w", t.number, key, err)
	}
	return nil
}

func (f FrozenTrial) clone() FrozenTrial {
	c := f
	c.Params = cloneMap(f.Params)
	c.Distributions = cloneMap(f.Distributions)
	c.Intermediate = cloneMap(f.Intermediate)
	c.UserAttrs = cloneMap(f.UserAttrs)
	c.SystemAttrs = cloneMap(f.SystemAttrs)
	return c
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
