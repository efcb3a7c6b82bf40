package floatsort

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Sort must order exactly as slices.Sort (up to -0 and +0, which
// compare equal), on both sides of radixMin and on the shapes the radix
// passes treat specially: all keys sharing bytes, negatives, infinities.
func TestSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	gen := func(n int, f func(i int) float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	tests := []struct {
		name string
		x    []float64
	}{
		{"small normal", gen(100, func(int) float64 { return rng.NormFloat64() })},
		{"one value", gen(1, func(int) float64 { return rng.NormFloat64() })},
		{"radixMin values", gen(radixMin, func(int) float64 { return rng.NormFloat64() })},
		{"positive, one exponent (high passes skipped)", gen(20_000, func(int) float64 { return 1 + rng.Float64() })},
		{"wide exponents", gen(20_000, func(int) float64 { return math.Ldexp(rng.NormFloat64(), rng.IntN(2000)-1000) })},
		{"large normal", gen(50_000, func(int) float64 { return rng.NormFloat64() * 1e3 })},
		{"large integers with ties", gen(50_000, func(int) float64 { return float64(rng.IntN(40) - 20) })},
		{"large constant", gen(radixMin, func(int) float64 { return 3.5 })},
		{"signed zeros, infinities, extremes", gen(20_000, func(i int) float64 {
			return []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.MaxFloat64, -math.MaxFloat64,
				math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, rng.ExpFloat64(), -rng.ExpFloat64()}[i%10]
		})},
		{"already sorted, descending", gen(10_000, func(i int) float64 { return float64(-i) / 7 })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := slices.Clone(tc.x)
			slices.Sort(want)
			got := slices.Clone(tc.x)
			Sort(got)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("value %d: got %g, want %g", i, got[i], want[i])
				}
				if i > 0 && math.Signbit(got[i-1]) == false && got[i-1] == 0 && got[i] == 0 && math.Signbit(got[i]) {
					t.Fatalf("value %d: +0 sorted before -0", i)
				}
			}
		})
	}
}

func BenchmarkSort(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, 1_000_000)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	for _, bc := range []struct {
		name string
		sort func([]float64)
	}{{"radix", Sort}, {"slices.Sort", slices.Sort[[]float64]}} {
		b.Run(bc.name, func(b *testing.B) {
			y := make([]float64, len(x))
			for b.Loop() {
				copy(y, x)
				bc.sort(y)
			}
		})
	}
}
