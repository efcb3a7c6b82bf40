package tune

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
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
	if o.Weights == nil {
		o.Weights = DefaultWeights
	}
	return &TPESampler{o: o}
}

// DefaultGamma is Optuna's default_gamma: min(ceil(0.1 n), 25).
func DefaultGamma(n int) int { return min((n+9)/10, 25) }

// DefaultWeights is Optuna's default_weights.
func DefaultWeights(n int) []float64 {
	w := make([]float64, n)
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

// finished returns the trials TPE learns from (complete and pruned, and
// running ones with ConstantLiar) and how many are not running.
func (s *TPESampler) finished(h *History) (trials []*FrozenTrial, n int) {
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

// SampleRelative implements Sampler: the parameters every complete or
// pruned trial has with the same distribution are sampled jointly.
func (s *TPESampler) SampleRelative(h *History, _ int, rng *rand.Rand) map[string]Relative {
	if s.o.Independent {
		return nil
	}
	trials, n := s.finished(h)
	if n < s.o.StartupTrials || n == 0 {
		return nil
	}
	space := intersection(h)
	if len(space) == 0 {
		return nil
	}
	vals := s.sample(h.Direction, trials, n, space, rng)
	out := make(map[string]Relative, len(space))
	for i, p := range space {
		out[p.Name] = Relative{Dist: p.Dist, Value: vals[i]}
	}
	return out
}

// intersection is Optuna's IntersectionSearchSpace(include_pruned=True)
// without single-valued distributions, ordered by name.
func intersection(h *History) Space {
	var space Space // sorted by name
	first := true
	for i := range h.Trials {
		t := &h.Trials[i]
		if t.State != Complete && t.State != Pruned {
			continue
		}
		if first {
			for _, name := range sortedNames(t.Distributions) {
				space = append(space, Param{Name: name, Dist: t.Distributions[name]})
			}
			first = false
			continue
		}
		space = slices.DeleteFunc(space, func(p Param) bool {
			o, ok := t.Distributions[p.Name]
			return !ok || !DistEqual(o, p.Dist)
		})
		if len(space) == 0 {
			return nil
		}
	}
	return slices.DeleteFunc(space, func(p Param) bool { return p.Dist.Single() })
}

// SampleIndependent implements Sampler.
func (s *TPESampler) SampleIndependent(h *History, _ int, name string, d Distribution, rng *rand.Rand) float64 {
	trials, n := s.finished(h)
	if n < s.o.StartupTrials || n == 0 {
		return sampleUniform(d, rng)
	}
	return s.sample(h.Direction, trials, n, Space{{Name: name, Dist: d}}, rng)[0]
}

// sample runs one TPE step over space: split the trials into good (below)
// and bad (above), fit a Parzen estimator to each, draw EICandidates from
// the good one and return the candidate maximizing log l(x) - log g(x).
func (s *TPESampler) sample(dir Direction, trials []*FrozenTrial, n int, space Space, rng *rand.Rand) []float64 {
	below, above := splitTrials(dir, trials, s.o.Gamma(n))
	pl := s.fit(below, space)
	pg := s.fit(above, space)
	best, bestScore := []float64(nil), math.Inf(-1)
	x := make([]float64, len(space))
	for range s.o.EICandidates {
		pl.sample(rng, x)
		score := pl.logPDF(x) - pg.logPDF(x)
		if best == nil || score > bestScore {
			best, bestScore = append(best[:0], x...), score
		}
	}
	return best
}

// splitTrials is Optuna's _split_trials for one objective: the nBelow best
// complete trials are good; when fewer are complete, pruned trials that got
// furthest (then with the best last value) fill up; running trials are bad.
// Both halves come back in number order.
func splitTrials(dir Direction, trials []*FrozenTrial, nBelow int) (below, above []*FrozenTrial) {
	// Sort keys, not pointers: one pass over a slice of small structs is
	// several times faster than a stable sort of a pointer slice at 1,000
	// trials. Ties fall back on trial order, which makes the unstable sort
	// stable (trials come in number order).
	type key struct {
		step, value float64
		i           int
	}
	var complete, pruned []key
	for i, t := range trials {
		switch t.State {
		case Complete:
			v := t.Value
			if dir == Maximize {
				v = -v
			}
			complete = append(complete, key{value: v, i: i})
		case Pruned:
			st, v := prunedScore(dir, t)
			pruned = append(pruned, key{step: st, value: v, i: i})
		} // running trials are above: isBelow stays false

	}
	byKey := func(a, b key) int {
		if c := cmp.Compare(a.step, b.step); c != 0 {
			return c
		}
		if c := cmp.Compare(a.value, b.value); c != 0 {
			return c
		}
		return a.i - b.i
	}
	slices.SortFunc(complete, byKey)
	slices.SortFunc(pruned, byKey)
	isBelow := make([]bool, len(trials))
	k := min(nBelow, len(complete))
	for _, c := range complete[:k] {
		isBelow[c.i] = true
	}
	nBelow = max(0, nBelow-k)
	for _, c := range pruned[:min(nBelow, len(pruned))] {
		isBelow[c.i] = true
	}
	// Both halves in number order, as Optuna sorts them.
	for i, t := range trials {
		if isBelow[i] {
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
