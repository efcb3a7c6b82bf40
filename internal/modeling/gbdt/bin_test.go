package gbdt

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// The branch-free search finds the same bin as sort.SearchFloat64s.
func TestBoundSearch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 7, 8, 9, 100, 255} {
		upper := make([]float64, n)
		for i := range upper {
			upper[i] = r.NormFloat64()
		}
		sort.Float64s(upper)
		upper[n-1] = math.Inf(1)
		s := newBoundSearch(upper)
		probes := append([]float64{math.Inf(-1), math.Inf(1), -1e300, 1e300}, upper...)
		for i := 0; i < 1000; i++ {
			probes = append(probes, r.NormFloat64()*2)
		}
		for _, v := range probes {
			if got, want := s.find(v), sort.SearchFloat64s(upper, v); got != want {
				t.Fatalf("n=%d: find(%v) = %d, want %d", n, v, got, want)
			}
			four := [4]float64{v, -v, v / 2, 0}
			got := s.find4(&four)
			for k, w := range four {
				if want := sort.SearchFloat64s(upper, w); got[k] != want {
					t.Fatalf("n=%d: find4 value %v = %d, want %d", n, w, got[k], want)
				}
			}
		}
	}
}
