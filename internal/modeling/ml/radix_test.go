package ml

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortFloats: the radix sort orders like slices.Sort on inputs that
// exercise every byte of the keys (both signs, zeros of both signs,
// infinities, subnormals, ties, a shared exponent that skips passes) and on
// sizes either side of the insertion-sort cutoff.
func TestSortFloats(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gens := map[string]func() float64{
		"normal":   rng.NormFloat64,
		"positive": func() float64 { return 1 + rng.Float64() }, // one exponent: high passes skipped
		"ties":     func() float64 { return math.Round(rng.NormFloat64() * 3) },
		"special": func() float64 {
			return []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), 5e-324, -5e-324,
				math.MaxFloat64, -math.MaxFloat64, 1, -1}[rng.IntN(10)]
		},
		"wide": func() float64 { return math.Ldexp(rng.NormFloat64(), rng.IntN(2000)-1000) },
	}
	for name, gen := range gens {
		for _, n := range []int{0, 1, 2, 255, 256, 257, 5000} {
			v := make([]float64, n)
			for i := range v {
				v[i] = gen()
			}
			want := slices.Clone(v)
			slices.Sort(want)
			SortFloats(v)
			for i := range v {
				// -0 comes back as +0; compare as numbers, then the order.
				if v[i] != want[i] || (i > 0 && v[i] < v[i-1]) {
					t.Fatalf("%s, %d values: at %d got %v, want %v", name, n, i, v[i], want[i])
				}
			}
		}
	}
}
