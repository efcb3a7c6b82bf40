package tune

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestDefaultGamma(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 1, 10: 1, 11: 2, 100: 10, 101: 11, 249: 25, 250: 25, 1000: 25} {
		if got := DefaultGamma(n); got != want {
			t.Errorf("gamma(%d) = %d, want min(ceil(0.1 n), 25) = %d", n, got, want)
		}
	}
}

func TestDefaultWeights(t *testing.T) {
	if w := DefaultWeights(24); len(w) != 24 || slices.ContainsFunc(w, func(x float64) bool { return x != 1 }) {
		t.Errorf("weights(24) = %v, want 24 ones", w)
	}
	// n = 30: numpy.linspace(1/30, 1, 5) then 25 ones.
	w := DefaultWeights(30)
	want := []float64{1.0 / 30, 1.0/30 + (29.0/30)/4, 1.0/30 + 2*(29.0/30)/4, 1.0/30 + 3*(29.0/30)/4, 1}
	for i, x := range want {
		if math.Abs(w[i]-x) > 1e-12 {
			t.Errorf("weights(30)[%d] = %v, want %v", i, w[i], x)
		}
	}
	for i := 5; i < 30; i++ {
		if w[i] != 1 {
			t.Errorf("weights(30)[%d] = %v, want 1", i, w[i])
		}
	}
}

func numbers(ts []*FrozenTrial) []int {
	var out []int
	for _, t := range ts {
		out = append(out, t.Number)
	}
	return out
}

// Optuna's _split_trials: the best complete trials first, then pruned
// trials by furthest step and best last value; running trials go above.
func TestSplitTrials(t *testing.T) {
	c := func(n int, v float64) *FrozenTrial { return &FrozenTrial{Number: n, State: Complete, Value: v} }
	p := func(n int, iv map[int]float64) *FrozenTrial {
		return &FrozenTrial{Number: n, State: Pruned, Intermediate: iv}
	}
	r := func(n int) *FrozenTrial { return &FrozenTrial{Number: n, State: Running} }
	trials := []*FrozenTrial{
		c(0, 5), c(1, 1), c(2, 3), c(3, 1), // ties keep number order
		p(4, map[int]float64{0: 0.1}),        // stopped at step 0
		p(5, map[int]float64{0: 9, 3: 7}),    // got to step 3
		p(6, map[int]float64{3: 2}),          // step 3, better value
		p(7, nil),                            // never reported
		p(8, map[int]float64{3: math.NaN()}), // step 3, NaN ranks last among step 3
		r(9),
	}
	cases := []struct {
		dir          Direction
		nBelow       int
		below, above []int
	}{
		{Minimize, 0, nil, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{Minimize, 1, []int{1}, []int{0, 2, 3, 4, 5, 6, 7, 8, 9}},
		{Minimize, 2, []int{1, 3}, []int{0, 2, 4, 5, 6, 7, 8, 9}},
		{Minimize, 5, []int{0, 1, 2, 3, 6}, []int{4, 5, 7, 8, 9}},
		{Minimize, 8, []int{0, 1, 2, 3, 4, 5, 6, 8}, []int{7, 9}},
		{Maximize, 1, []int{0}, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{Maximize, 5, []int{0, 1, 2, 3, 5}, []int{4, 6, 7, 8, 9}},
	}
	for _, tc := range cases {
		below, above := splitTrials(tc.dir, trials, tc.nBelow)
		if !slices.Equal(numbers(below), tc.below) || !slices.Equal(numbers(above), tc.above) {
			t.Errorf("%s n_below=%d: below %v above %v, want %v and %v", tc.dir, tc.nBelow, numbers(below), numbers(above), tc.below, tc.above)
		}
	}
}

// Kernel widths: the larger gap to a neighbour, the outermost ones using
// their inner gap only (consider_endpoints off), clipped to
// [range/min(100, n+2), range].
func TestSigmas(t *testing.T) {
	s := NewTPESampler(TPEOptions{})
	got := s.sigmas([]float64{0.5, 0.1, 0.2, 0.9}, 0, 1)
	// sorted 0.1 0.2 0.5 0.9: gaps .1 .1 .3 .4 .1; min sigma 1/6.
	want := []float64{0.4, 1.0 / 6, 0.3, 0.4}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("sigmas = %v, want %v", got, want)
		}
	}
	e := NewTPESampler(TPEOptions{ConsiderEndpoints: true, NoMagicClip: true})
	got = e.sigmas([]float64{0.5, 0.1, 0.2, 0.9}, 0, 1)
	want = []float64{0.4, 0.1, 0.3, 0.4} // 0.1: max(0.1-0, 0.2-0.1)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("sigmas with endpoints, no clip = %v, want %v", got, want)
		}
	}
}

func TestLogNdtr(t *testing.T) {
	// The two branches meet at -20.
	if a, b := math.Log(ndtr(-19.999999)), logNdtr(-20.000001); math.Abs(a-b) > 1e-4 {
		t.Errorf("logNdtr discontinuous at -20: %v vs %v", a, b)
	}
	// log Φ(-30) = -454.3212... (scipy.special.log_ndtr(-30) = -454.32124....)
	if got := logNdtr(-30); math.Abs(got-(-454.3212439)) > 1e-5 {
		t.Errorf("logNdtr(-30) = %v", got)
	}
	if got := logNdtr(10); got >= 0 || got < -1e-20 {
		t.Errorf("logNdtr(10) = %v, want a tiny negative number", got)
	}
}

// truncPPF inverts the truncated CDF, in the centre and far in both tails.
func TestTruncPPF(t *testing.T) {
	for _, ab := range [][2]float64{{-2, 3}, {-1, 1}, {30, 40}, {-40, -30}, {-0.5, 80}, {-100, 0.1}} {
		a, b := ab[0], ab[1]
		mass := logGaussMass(a, b)
		for _, q := range []float64{1e-9, 0.01, 0.3, 0.5, 0.77, 0.999} {
			x := truncPPF(q, a, b)
			if x < a || x > b {
				t.Fatalf("ppf(%v; %v, %v) = %v outside the range", q, a, b, x)
			}
			// CDF(x) = mass of [a, x] / mass of [a, b].
			var got float64
			if x <= a {
				got = 0
			} else {
				got = math.Exp(logGaussMass(a, x) - mass)
			}
			if math.Abs(got-q) > 1e-6*math.Max(q, 1e-3) {
				t.Errorf("cdf(ppf(%v; %v, %v)) = %v", q, a, b, got)
			}
		}
	}
}

// The study memo's sorted index must give every kernel the width a sort of
// the observations gives: the same estimator, to the bit, with ties (int and
// stepped values repeat), log scales, trials missing a parameter, and
// trials indexed in another order than their numbers (parallel workers).
func TestIndexedOrderMatchesSort(t *testing.T) {
	space := Space{
		{Name: "a", Dist: FloatDist{Low: 0, High: 1, Step: 0.25}},
		{Name: "b", Dist: IntDist{Low: 1, High: 300, Log: true}},
		{Name: "c", Dist: FloatDist{Low: 1e-3, High: 10, Log: true}},
		{Name: "d", Dist: FloatDist{Low: -5, High: 5}},
		{Name: "e", Dist: CategoricalDist{Choices: []string{"x", "y", "z"}}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var trials []FrozenTrial
	for i := range 300 {
		ft := FrozenTrial{ID: int64(1000 + i), Number: i, State: Complete, Value: rng.Float64(), Params: map[string]any{}, Distributions: map[string]Distribution{}}
		for j, p := range space {
			x := sampleUniform(p.Dist, rng)
			if j == 3 && i%5 == 0 {
				x = float64(i % 3) // exact ties in a continuous dimension too
			}
			ft.Params[p.Name], ft.Distributions[p.Name] = p.Dist.ToExternal(x), p.Dist
		}
		if i%17 == 0 {
			delete(ft.Params, "c") // no row: in neither fit
		}
		trials = append(trials, ft)
	}
	memo := &History{Direction: Minimize, Trials: trials, memo: &historyMemo{}}
	indexed := internalValues(memo, space)
	// Index the trials out of number order first, as parallel workers may.
	for i := len(trials) - 1; i >= 0; i -= 2 {
		indexed.row(&trials[i])
	}
	plain := internalValues(&History{}, space)
	s := NewTPESampler(TPEOptions{})
	var ptrs []*FrozenTrial
	for i := range trials {
		ptrs = append(ptrs, &trials[i])
	}
	below, above := splitTrials(Minimize, ptrs, DefaultGamma(len(ptrs)))
	for _, set := range [][]*FrozenTrial{below, above, ptrs} {
		want, got := s.fit(set, space, plain), s.fit(set, space, indexed)
		if _, ok := indexed.order(nil, 3, []int32{}, 0); !ok {
			t.Fatal("the memo's index is not in use")
		}
		for i := range space {
			w, g := want.dims[i], got.dims[i]
			if !slices.Equal(w.mu, g.mu) || !slices.Equal(w.sigma, g.sigma) || !slices.Equal(w.logC, g.logC) {
				t.Fatalf("dimension %s: indexed kernels differ from sorted ones", space[i].Name)
			}
		}
		x := make([]float64, len(space))
		for range 50 {
			for i, p := range space {
				x[i] = sampleUniform(p.Dist, rng)
			}
			if a, b := want.logPDF(x), got.logPDF(x); a != b {
				t.Fatalf("logPDF(%v) = %v indexed, %v sorted", x, b, a)
			}
		}
	}
}
