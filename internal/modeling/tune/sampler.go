package tune

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
)

// History is what a sampler or pruner sees of the study: every other trial
// (running ones included) in number order, shared and read-only.
type History struct {
	Direction Direction
	Trials    []FrozenTrial

	// memo, set by the Study, keeps what TPE derives from finished trials
	// (they never change) from one trial to the next.
	memo *historyMemo
}

// historyMemo is a study's cache for TPE: the intersection search space of
// its finished trials and their parameters' internal values per space.
type historyMemo struct {
	mu        sync.Mutex
	interInit bool
	inter     Space
	interSeen numberSet
	vecs      map[string]*spaceCache // by space key
}

// numberSet is a set of trial numbers: numbers are small, dense and unique
// within a study, so a slice indexed by number answers without hashing
// (once per trial per step at 1,000 trials, a map's lookups showed).
type numberSet []bool

func (s numberSet) has(n int) bool { return n >= 0 && n < len(s) && s[n] }

// add puts n in the set; a negative n (not a trial number) is ignored, so
// has keeps answering false for it.
func (s *numberSet) add(n int) {
	if n < 0 {
		return
	}
	if n >= len(*s) {
		*s = append(*s, make([]bool, n+1-len(*s)+len(*s)/4)...)
	}
	(*s)[n] = true
}

// Relative is a value the sampler chose for a parameter ahead of the
// objective asking for it (a jointly sampled parameter).
type Relative struct {
	Dist  Distribution
	Value float64 // internal representation
}

// Sampler proposes parameter values, in two parts as in Optuna: relative
// sampling once when a trial starts (the parameters it draws jointly), then
// independent sampling of each parameter the objective asks for that the
// relative part did not cover (conditional parameters, first trials).
//
// Samplers must be safe for concurrent use by Parallel trials, and must take
// randomness from rng only (it is seeded by study seed and trial number), so
// a seed reproduces a study.
type Sampler interface {
	SampleRelative(h *History, number int, rng *rand.Rand) map[string]Relative
	SampleIndependent(h *History, number int, name string, d Distribution, rng *rand.Rand) float64
}

// Exhauster is an optional Sampler capability: a sampler with a finite set
// of points (grid) says when it has none left. A running trial holds its
// point, so Optimize stops there only once no trial of another process is
// running: one that dies is failed as stale and its point run again.
type Exhauster interface {
	Exhausted(h *History) bool
}

// Finite is an optional Sampler capability: a sampler with Size points
// (grid) caps the study's trial budget at Size.
type Finite interface {
	Size() int
}

// RandomSampler draws every parameter uniformly (on the log scale when the
// distribution is log; steps and ints rounded as Optuna's RandomSampler).
type RandomSampler struct{}

// SampleRelative implements Sampler: random sampling is all independent.
func (RandomSampler) SampleRelative(*History, int, *rand.Rand) map[string]Relative { return nil }

// SampleIndependent implements Sampler.
func (RandomSampler) SampleIndependent(_ *History, _ int, _ string, d Distribution, rng *rand.Rand) float64 {
	return sampleUniform(d, rng)
}

// sampleUniform draws one internal value uniformly from d, transformed as
// Optuna's _SearchSpaceTransform does: a stepped or integer range is widened by
// half a step each side, then rounded, so the end values are as likely as the others.
func sampleUniform(d Distribution, rng *rand.Rand) float64 {
	uniform := func(lo, hi float64) float64 { return lo + rng.Float64()*(hi-lo) }
	switch x := d.(type) {
	case FloatDist:
		switch {
		case x.Log:
			return clamp(math.Exp(uniform(math.Log(x.Low), math.Log(x.High))), x.Low, x.High)
		case x.Step > 0:
			hi := x.high()
			v := uniform(x.Low-x.Step/2, hi+x.Step/2)
			return roundStep(v, x.Low, hi, x.Step)
		default:
			return uniform(x.Low, x.High)
		}
	case IntDist:
		lo, hi, step := float64(x.Low), float64(x.high()), float64(x.step())
		if x.Log {
			v := math.Exp(uniform(math.Log(lo-0.5), math.Log(hi+0.5)))
			return roundStep(v, lo, hi, 1)
		}
		return roundStep(uniform(lo-step/2, hi+step/2), lo, hi, step)
	case CategoricalDist:
		return float64(rng.IntN(len(x.Choices)))
	}
	panic(fmt.Sprintf("tune: unknown distribution %T", d))
}

func roundStep(v, lo, hi, step float64) float64 {
	return clamp(lo+math.Round((v-lo)/step)*step, lo, hi)
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// GridSampler runs every combination of a space's values once, in an order
// shuffled by the study seed. Categoricals contribute their choices, ints
// every value of their step, floats every value of their step; a float
// without a step has no grid and NewGridSampler refuses it.
//
// Trial number n runs grid point perm[n mod size]: numbers are unique in a
// study, so processes sharing one never run a point twice before all have
// run. The study stops when the grid is exhausted (Exhauster), after the
// trials of other processes ended: the point of one whose process died is
// run again (as Optuna's GridSampler does), once it is failed as stale.
type GridSampler struct {
	space Space
	// values[i] are the internal values of space[i].
	values [][]float64
	size   int
	perm   []int
}

// NewGridSampler builds the grid of space, shuffled with seed.
func NewGridSampler(space Space, seed int64) (*GridSampler, error) {
	if err := space.Validate(); err != nil {
		return nil, err
	}
	g := &GridSampler{space: space, size: 1}
	for _, p := range space {
		var vals []float64
		switch x := p.Dist.(type) {
		case CategoricalDist:
			for i := range x.Choices {
				vals = append(vals, float64(i))
			}
		case IntDist:
			for v := x.Low; v <= x.High; v += x.step() {
				vals = append(vals, float64(v))
			}
		case FloatDist:
			if x.Step <= 0 {
				return nil, fmt.Errorf("grid: parameter %q is a continuous float range [%v, %v]: give it a step or a list of values", p.Name, x.Low, x.High)
			}
			n := int(math.Floor((x.High-x.Low)/x.Step+1e-9)) + 1
			for i := range n {
				vals = append(vals, x.Low+float64(i)*x.Step)
			}
		}
		if len(vals) > 1_000_000 || g.size > 10_000_000/len(vals) {
			return nil, fmt.Errorf("grid: more than 10,000,000 points at parameter %q", p.Name)
		}
		g.values = append(g.values, vals)
		g.size *= len(vals)
	}
	g.perm = rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)).Perm(g.size)
	return g, nil
}

// Size is the number of grid points.
func (g *GridSampler) Size() int { return g.size }

// point returns the internal values of grid point i.
func (g *GridSampler) point(i int) []float64 {
	out := make([]float64, len(g.values))
	for d := len(g.values) - 1; d >= 0; d-- {
		out[d] = g.values[d][i%len(g.values[d])]
		i /= len(g.values[d])
	}
	return out
}

// SampleRelative implements Sampler.
func (g *GridSampler) SampleRelative(h *History, number int, _ *rand.Rand) map[string]Relative {
	idx := g.perm[number%g.size]
	if number >= g.size {
		// A wrap-around (a resumed study re-running the points of trials that
		// died): take the first point in shuffled order no live trial holds.
		taken := g.taken(h)
		for _, i := range g.perm {
			if !taken[i] {
				idx = i
				break
			}
		}
	}
	vals := g.point(idx)
	out := make(map[string]Relative, len(vals))
	for i, p := range g.space {
		out[p.Name] = Relative{Dist: p.Dist, Value: vals[i]}
	}
	return out
}

// taken returns the grid points held by trials that count towards the budget.
func (g *GridSampler) taken(h *History) map[int]bool {
	taken := make(map[int]bool, len(h.Trials))
	for _, t := range h.Trials {
		if !CountsTowardBudget(t.State, t.SystemAttrs) {
			continue
		}
		idx, ok := 0, true
		for d, p := range g.space {
			v, has := t.Params[p.Name]
			if !has {
				ok = false
				break
			}
			x, err := p.Dist.ToInternal(v)
			if err != nil {
				ok = false
				break
			}
			j := slices.IndexFunc(g.values[d], func(y float64) bool { return math.Abs(x-y) < 1e-9*math.Max(1, math.Abs(y)) })
			if j < 0 {
				ok = false
				break
			}
			idx = idx*len(g.values[d]) + j
		}
		if ok {
			taken[idx] = true
		}
	}
	return taken
}

// SampleIndependent implements Sampler: a parameter outside the grid is drawn at random.
func (g *GridSampler) SampleIndependent(_ *History, _ int, _ string, d Distribution, rng *rand.Rand) float64 {
	return sampleUniform(d, rng)
}

// Exhausted implements Exhauster: every point is held by a trial that
// counts towards the budget (trials that died are re-run).
func (g *GridSampler) Exhausted(h *History) bool {
	return len(g.taken(h)) >= g.size
}

// sortedNames returns a map's keys in order (Optuna orders search spaces by name).
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
