package tune

import (
	"math"
	"math/rand/v2"
	"sort"
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
	var space map[string]Distribution
	for i := range h.Trials {
		t := &h.Trials[i]
		if t.State != Complete && t.State != Pruned {
			continue
		}
		if space == nil {
			space = cloneMap(t.Distributions)
			continue
		}
		for name, d := range space {
			if o, ok := t.Distributions[name]; !ok || !DistEqual(o, d) {
				delete(space, name)
			}
		}
	}
	var out Space
	for _, name := range sortedNames(space) {
		if !space[name].Single() {
			out = append(out, Param{Name: name, Dist: space[name]})
		}
	}
	return out
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
	var complete, pruned, running []*FrozenTrial
	for _, t := range trials {
		switch t.State {
		case Complete:
			complete = append(complete, t)
		case Pruned:
			pruned = append(pruned, t)
		default:
			running = append(running, t)
		}
	}
	sort.SliceStable(complete, func(i, j int) bool {
		if dir == Maximize {
			return complete[i].Value > complete[j].Value
		}
		return complete[i].Value < complete[j].Value
	})
	k := min(nBelow, len(complete))
	below = append(below, complete[:k]...)
	above = append(above, complete[k:]...)
	nBelow = max(0, nBelow-k)
	sort.SliceStable(pruned, func(i, j int) bool {
		si, vi := prunedScore(dir, pruned[i])
		sj, vj := prunedScore(dir, pruned[j])
		if si != sj {
			return si < sj
		}
		return vi < vj
	})
	k = min(nBelow, len(pruned))
	below = append(below, pruned[:k]...)
	above = append(above, pruned[k:]...)
	above = append(above, running...)
	byNumber := func(ts []*FrozenTrial) {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Number < ts[j].Number })
	}
	byNumber(below)
	byNumber(above)
	return below, above
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
