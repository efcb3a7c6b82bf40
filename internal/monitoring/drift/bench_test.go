package drift

import (
	"math/rand/v2"
	"testing"
)

func normals(n int, mu float64, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float64, n)
	for i := range x {
		x[i] = r.NormFloat64() + mu
	}
	return x
}

// 1M reference rows against 1M current rows, one column: the per-column
// cost of the 1M x 50 drift report.
func BenchmarkWasserstein1M(b *testing.B) {
	ref, cur := normals(1_000_000, 0, 1), normals(1_000_000, 0.05, 2)
	b.ResetTimer()
	for b.Loop() {
		if _, err := CompareNumeric("x", ref, cur, Options{Method: MethodWasserstein}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKS1M(b *testing.B) {
	ref, cur := normals(1_000_000, 0, 1), normals(1_000_000, 0.05, 2)
	b.ResetTimer()
	for b.Loop() {
		if _, err := CompareNumeric("x", ref, cur, Options{Method: MethodKS}); err != nil {
			b.Fatal(err)
		}
	}
}

// The largest exact KS p-value scipy's "auto" mode computes: 10,000 x 10,000.
func BenchmarkKSExact10k(b *testing.B) {
	ref, cur := normals(10_000, 0, 1), normals(10_000, 0.05, 2)
	for b.Loop() {
		KS(ref, cur)
	}
}

// The largest matrix kolmogorovCDF builds (k = 100, 199 x 199), as met by
// an asymptotic KS p-value just above 10,000 values.
func BenchmarkKolmogorovMatrixMaxK(b *testing.B) {
	for b.Loop() {
		if _, ok := kolmogorovCDF(10_001, 99.5/10_001); !ok {
			b.Fatal("k above mtwMaxK")
		}
	}
}
