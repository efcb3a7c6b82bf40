package tune

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
)

// TPEOptions configures the TPE sampler. Zero values are Optuna's defaults.
type TPEOptions struct {
	// StartupTrials are drawn at random before TPE starts: until this many
	// trials are complete or pruned. Default 10; NoStartup for none.
	StartupTrials int
	// EICandidates is how many points are drawn from the good trials'
	// density per parameter set; the best by l(x)/g(x) wins. Default 24.
	EICandidates int
	// PriorWeight is the weight of the prior kernel (uniform-ish over the
	// range) next to the observations'. Default 1.0.
	PriorWeight float64
	// ConsiderEndpoints lets the outermost kernels' widths depend on the
	// distance to the range's ends (Optuna's default: false).
	ConsiderEndpoints bool
	// NoMagicClip turns off the lower bound on kernel widths,
	// range / min(100, kernels+1) (on by default, as in Optuna).
	NoMagicClip bool
	// Independent samples each parameter on its own (Optuna's
	// multivariate=False). By default parameters present in every finished
	// trial are sampled jointly (multivariate), the others independently.
	Independent bool
	// ConstantLiar counts running trials as bad ones so parallel workers
	// spread out (Optuna's constant_liar). Off by default: running trials
	// are ignored.
	ConstantLiar bool
	// Gamma gives the number of "good" trials among n; default
	// min(ceil(0.1 n), 25).
	Gamma func(n int) int
	// Weights gives the n observations' weights, oldest first; default 1
	// each up to 25, older ones ramping down from 1 to 1/n beyond.
	Weights func(n int) []float64
}

// TPESampler is Optuna's tree-structured Parzen estimator sampler.
type TPESampler struct {
	o TPEOptions
	// defaultWeights is set when o.Weights is DefaultWeights (the caller
	// gave none): fit then writes the weights into its scratch instead of
	// allocating them.
	defaultWeights bool
	// work holds *tpeWork scratch: one per concurrent sample call, so a
	// step of a long study allocates almost nothing (allocation and GC were
	// a fifth of a step at 1,000 trials).
	work sync.Pool
}

// NewTPESampler returns a TPE sampler with o's settings.
func NewTPESampler(o TPEOptions) *TPESampler {
	switch {
	case o.StartupTrials == 0:
		o.StartupTrials = 10
	case o.StartupTrials < 0:
		o.StartupTrials = 0
	}
	if o.EICandidates <= 0 {
		o.EICandidates = 24
	}
	if o.PriorWeight <= 0 {
		o.PriorWeight = 1
	}
	if o.Gamma == nil {
		o.Gamma = DefaultGamma
	}
	s := &TPESampler{}
	if o.Weights == nil {
		o.Weights = DefaultWeights
		s.defaultWeights = true
	}
	s.o = o
	return s
}

// DefaultGamma is Optuna's default_gamma: min(ceil(0.1 n), 25).
func DefaultGamma(n int) int { return min((n+9)/10, 25) }

// DefaultWeights is Optuna's default_weights.
func DefaultWeights(n int) []float64 { return defaultWeightsInto(make([]float64, n)) }

// defaultWeightsInto writes DefaultWeights(len(w)) into w and returns it.
func defaultWeightsInto(w []float64) []float64 {
	n := len(w)
	for i := range w {
		w[i] = 1
	}
	if n >= 25 {
		ramp := n - 25
		for i := range ramp {
			// numpy.linspace(1/n, 1, ramp)
			if ramp == 1 {
				w[i] = 1 / float64(n)
			} else {
				w[i] = 1/float64(n) + (1-1/float64(n))*float64(i)/float64(ramp-1)
			}
		}
	}
	return w
}

// finished appends to dst the trials TPE learns from (complete and pruned,
// and running ones with ConstantLiar) and returns them and how many are not
// running.
func (s *TPESampler) finished(dst []*FrozenTrial, h *History) (trials []*FrozenTrial, n int) {
	trials = dst[:0]
	for i := range h.Trials {
		t := &h.Trials[i]
		switch t.State {
		case Complete, Pruned:
			trials = append(trials, t)
			n++
		case Running:
			if s.o.ConstantLiar {
				trials = append(trials, t)
			}
		}
	}
	return trials, n
}

// getWork takes a scratch workspace from the pool; putWork returns it,
// dropping its trial pointers so the pool does not keep a study alive.
func (s *TPESampler) getWork() *tpeWork {
	if w, ok := s.work.Get().(*tpeWork); ok {
		return w
	}
	return &tpeWork{}
}

func (s *TPESampler) putWork(w *tpeWork) {
	clear(w.trials[:cap(w.trials)])
	clear(w.below[:cap(w.below)])
	clear(w.above[:cap(w.above)])
	clear(w.fit.rows[:cap(w.fit.rows)])
	s.work.Put(w)
}

// SampleRelative implements Sampler: the parameters every complete or
// pruned trial has with the same distribution are sampled jointly.
func (s *TPESampler) SampleRelative(h *History, _ int, rng *rand.Rand) map[string]Relative {
	if s.o.Independent {
		return nil
	}
	w := s.getWork()
	defer s.putWork(w)
	var n int
	w.trials, n = s.finished(w.trials, h)
	if n < s.o.StartupTrials || n == 0 {
		return nil
	}
	space := intersection(h)
	if len(space) == 0 {
		return nil
	}
	vals := s.sample(w, h, n, space, rng)
	out := make(map[string]Relative, len(space))
	for i, p := range space {
		out[p.Name] = Relative{Dist: p.Dist, Value: vals[i]}
	}
	return out
}

// intersection is Optuna's IntersectionSearchSpace(include_pruned=True)
// without single-valued distributions, ordered by name.
func intersection(h *History) Space {
	m := h.memo
	if m == nil {
		m = &historyMemo{}
	} else {
		m.mu.Lock()
		defer m.mu.Unlock()
	}
	for i := range h.Trials {
		t := &h.Trials[i]
		if t.State != Complete && t.State != Pruned || m.interSeen.has(t.Number) {
			continue
		}
		m.interSeen.add(t.Number)
		if !m.interInit {
			for _, name := range sortedNames(t.Distributions) {
				m.inter = append(m.inter, Param{Name: name, Dist: t.Distributions[name]})
			}
			m.interInit = true
			continue
		}
		m.inter = slices.DeleteFunc(m.inter, func(p Param) bool {
			o, ok := t.Distributions[p.Name]
			return !ok || !DistEqual(o, p.Dist)
		})
	}
	var out Space
	for _, p := range m.inter {
		if !p.Dist.Single() {
			out = append(out, p)
		}
	}
	return out
}

// SampleIndependent implements Sampler.
func (s *TPESampler) SampleIndependent(h *History, _ int, name string, d Distribution, rng *rand.Rand) float64 {
	w := s.getWork()
	defer s.putWork(w)
	var n int
	w.trials, n = s.finished(w.trials, h)
	if n < s.o.StartupTrials || n == 0 {
		return sampleUniform(d, rng)
	}
	return s.sample(w, h, n, Space{{Name: name, Dist: d}}, rng)[0]
}

// tpeWork is the scratch of one TPE step, reused from step to step (see
// TPESampler.work). Nothing in it outlives the step but what sample returns
// (a fresh slice).
type tpeWork struct {
	trials, below, above []*FrozenTrial
	top                  []splitKey
	isBelow              []bool
	l, g                 parzen
	fit                  fitWork
	x                    []float64
}

// fitWork is the scratch of fitting one estimator.
type fitWork struct {
	obs     []float64   // observations, dimension after dimension
	rows    [][]float64 // each trial's values (nil: not observed)
	nums    []int       // trial number of each observation
	pos     []int32     // observation index by trial number, -1 if none
	weights []float64
	order   []int32 // one dimension's observations in (value, index) order
	sortBuf []sortObs
	ends    []float64
}

// sortObs is a transformed observation and its index, for sorting.
type sortObs struct {
	mu float64
	i  int
}

// grow returns s resized to n, reallocated only when its capacity is short
// (its contents are then undefined).
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// sample runs one TPE step over space: split the trials into good (below)
// and bad (above), fit a Parzen estimator to each, draw EICandidates from
// the good one and return the candidate maximizing log l(x) - log g(x).
func (s *TPESampler) sample(w *tpeWork, h *History, n int, space Space, rng *rand.Rand) []float64 {
	w.below, w.above = splitInto(w, h.Direction, w.trials, s.o.Gamma(n))
	vec := internalValues(h, space)
	pl, pg := &w.l, &w.g
	s.fitInto(pl, &w.fit, w.below, space, vec)
	s.fitInto(pg, &w.fit, w.above, space, vec)
	best, bestScore := []float64(nil), math.Inf(-1)
	w.x = grow(w.x, len(space))
	x := w.x
	for range s.o.EICandidates {
		pl.sample(rng, x)
		score := pl.logPDF(x) - pg.logPDF(x)
		if best == nil || score > bestScore {
			best, bestScore = append(best[:0], x...), score
		}
	}
	return best
}

// splitKey orders trials for splitTrials: by step (pruned trials: furthest
// first, as a negative number), value (best first), then position.
type splitKey struct {
	step, value float64
	i           int
}

func (a splitKey) less(b splitKey) bool {
	if c := compareFloat(a.step, b.step); c != 0 {
		return c < 0
	}
	if c := compareFloat(a.value, b.value); c != 0 {
		return c < 0
	}
	return a.i < b.i
}

// compareFloat is cmp.Compare (NaN first) with the common case, two
// numbers that differ, decided by two comparisons.
func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return cmp.Compare(a, b)
}

// splitTrials is Optuna's _split_trials for one objective: the nBelow best
// complete trials are good; when fewer are complete, pruned trials that got
// furthest (then with the best last value) fill up; running trials are bad.
// Both halves come back in number order.
func splitTrials(dir Direction, trials []*FrozenTrial, nBelow int) (below, above []*FrozenTrial) {
	return splitInto(&tpeWork{}, dir, trials, nBelow)
}

// splitInto is splitTrials with w's scratch; below and above reuse
// w.below and w.above.
func splitInto(w *tpeWork, dir Direction, trials []*FrozenTrial, nBelow int) (below, above []*FrozenTrial) {
	w.isBelow = grow(w.isBelow, len(trials))
	clear(w.isBelow)
	// Only the nBelow smallest keys matter: keep them in a sorted array of
	// at most nBelow (25 by default) instead of sorting every trial. The
	// keys are a strict total order (ties fall back on position, which
	// makes the selection stable: trials come in number order), so the
	// chosen set is exactly the first nBelow of a full sort.
	// Newest first: a study's later trials tend to be its better ones, so
	// the top fills with keys that later ones rarely displace (the set
	// chosen does not depend on the order of the scan).
	w.top = w.top[:0]
	k := 0
	for i := len(trials) - 1; i >= 0; i-- {
		if t := trials[i]; t.State == Complete {
			v := t.Value
			if dir == Maximize {
				v = -v
			}
			w.top = keepSmallest(w.top, splitKey{value: v, i: i}, nBelow)
			k++
		}
	}
	for _, c := range w.top {
		w.isBelow[c.i] = true
	}
	if rest := nBelow - min(nBelow, k); rest > 0 {
		w.top = w.top[:0]
		for i, t := range trials {
			if t.State == Pruned {
				st, v := prunedScore(dir, t)
				w.top = keepSmallest(w.top, splitKey{step: st, value: v, i: i}, rest)
			}
		} // running trials are above: isBelow stays false
		for _, c := range w.top {
			w.isBelow[c.i] = true
		}
	}
	// Both halves in number order, as Optuna sorts them.
	below, above = w.below[:0], w.above[:0]
	for i, t := range trials {
		if w.isBelow[i] {
			below = append(below, t)
		} else {
			above = append(above, t)
		}
	}
	if !sorted(below) || !sorted(above) {
		byNumber := func(a, b *FrozenTrial) int { return a.Number - b.Number }
		slices.SortFunc(below, byNumber)
		slices.SortFunc(above, byNumber)
	}
	return below, above
}

// keepSmallest inserts key into top (sorted, at most k long) when it is
// among the k smallest seen.
func keepSmallest(top []splitKey, key splitKey, k int) []splitKey {
	if k <= 0 {
		return top
	}
	n := len(top)
	if n == k && !key.less(top[n-1]) {
		return top
	}
	j := n
	for j > 0 && key.less(top[j-1]) {
		j--
	}
	if n < k {
		top = append(top, splitKey{})
	}
	copy(top[j+1:], top[j:len(top)-1])
	top[j] = key
	return top
}

func sorted(ts []*FrozenTrial) bool {
	return slices.IsSortedFunc(ts, func(a, b *FrozenTrial) int { return a.Number - b.Number })
}

// prunedScore ranks pruned trials: furthest step first, then best last value.
func prunedScore(dir Direction, t *FrozenTrial) (float64, float64) {
	step, ok := t.LastStep()
	if !ok {
		return 1, 0
	}
	v := t.Intermediate[step]
	switch {
	case math.IsNaN(v):
		return -float64(step), math.Inf(1)
	case dir == Maximize:
		return -float64(step), -v
	}
	return -float64(step), v
}

// spaceValues gives trials' internal values of one space's parameters
// (nil for a trial lacking one or holding one out of range). With a study's
// memo it remembers them for finished trials and keeps, per numerical
// dimension, every remembered value in sorted order: fitting an estimator
// then takes its kernels' order from that index in one pass instead of
// sorting them at every step.
type spaceValues struct {
	space Space
	m     *historyMemo // nil: nothing is remembered
	c     *spaceCache
}

// spaceCache is what a study's memo keeps for one space; guarded by the memo's mu.
type spaceCache struct {
	// rows[n] holds the values of finished trial number n when have has n
	// (nil: unusable); numbers identify trials within a study.
	rows [][]float64
	have numberSet
	// sorted[i] holds dimension i's transformed values (log for a log
	// scale, as the kernels' means) of the trials in rows, ordered by
	// (value, trial number); nil for a categorical dimension.
	sorted [][]sortedObs
}

type sortedObs struct {
	mu     float64
	number int
}

// internalValues returns the values of space's parameters, remembered in
// the study's memo when h has one.
func internalValues(h *History, space Space) *spaceValues {
	v := &spaceValues{space: space, m: h.memo}
	if h.memo == nil {
		return v
	}
	var key strings.Builder
	for _, p := range space {
		b, _ := MarshalDistribution(p.Dist)
		key.WriteString(p.Name)
		key.Write(b)
	}
	m := h.memo
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.vecs == nil || len(m.vecs) > 64 {
		m.vecs = map[string]*spaceCache{}
	}
	v.c = m.vecs[key.String()]
	if v.c == nil {
		v.c = &spaceCache{sorted: make([][]sortedObs, len(space))}
		m.vecs[key.String()] = v.c
	}
	return v
}

func (v *spaceValues) compute(t *FrozenTrial) []float64 {
	row := make([]float64, len(v.space))
	for i, p := range v.space {
		x, has := t.Params[p.Name]
		if !has {
			return nil
		}
		y, err := p.Dist.ToInternal(x)
		if err != nil || !p.Dist.Contains(y) {
			return nil
		}
		row[i] = y
	}
	return row
}

// row returns t's values, remembering those of a finished trial.
func (v *spaceValues) row(t *FrozenTrial) []float64 {
	return v.rowsOf([]*FrozenTrial{t}, nil)[0]
}

// rowsOf appends to dst the values of each of trials (under one lock: a
// fit asks for a thousand), remembering those of finished trials.
func (v *spaceValues) rowsOf(trials []*FrozenTrial, dst [][]float64) [][]float64 {
	if v.m == nil {
		for _, t := range trials {
			dst = append(dst, v.compute(t))
		}
		return dst
	}
	v.m.mu.Lock()
	defer v.m.mu.Unlock()
	for _, t := range trials {
		switch {
		case !t.State.Finished() || t.Number < 0: // only finished trials' values never change
			dst = append(dst, v.compute(t))
		case v.c.have.has(t.Number):
			dst = append(dst, v.c.rows[t.Number])
		default:
			dst = append(dst, v.remember(t))
		}
	}
	return dst
}

// remember computes finished trial t's values and adds them to the cache
// and the sorted index; the caller holds the memo's mu.
func (v *spaceValues) remember(t *FrozenTrial) []float64 {
	r := v.compute(t)
	v.c.have.add(t.Number)
	if t.Number >= len(v.c.rows) {
		v.c.rows = append(v.c.rows, make([][]float64, len(v.c.have)-len(v.c.rows))...)
	}
	v.c.rows[t.Number] = r
	if r == nil {
		return nil
	}
	for i, p := range v.space {
		if _, cat := p.Dist.(CategoricalDist); cat {
			continue
		}
		o := sortedObs{mu: transformed(p.Dist, r[i]), number: t.Number}
		s := v.c.sorted[i]
		j, _ := slices.BinarySearchFunc(s, o, func(a, b sortedObs) int {
			if c := cmp.Compare(a.mu, b.mu); c != 0 {
				return c
			}
			return a.number - b.number
		})
		v.c.sorted[i] = slices.Insert(s, j, o)
	}
	return r
}

// transformed is a numerical value as a kernel mean: its log on a log scale.
func transformed(d Distribution, x float64) float64 {
	switch d := d.(type) {
	case FloatDist:
		if d.Log {
			return math.Log(x)
		}
	case IntDist:
		if d.Log {
			return math.Log(x)
		}
	}
	return x
}

// order writes into dst the observations of dimension i in (value, index)
// order, where pos maps a trial number to its observation index (-1: not
// observed) and n observations exist, and reports whether the index held
// them all (when not, for running trials or without a memo, the caller sorts).
func (v *spaceValues) order(dst []int32, i int, pos []int32, n int) ([]int32, bool) {
	dst = dst[:0]
	if v.m == nil {
		return dst, false
	}
	v.m.mu.Lock()
	defer v.m.mu.Unlock()
	for _, o := range v.c.sorted[i] {
		if o.number < len(pos) {
			if j := pos[o.number]; j >= 0 {
				dst = append(dst, j)
			}
		}
	}
	return dst, len(dst) == n
}
