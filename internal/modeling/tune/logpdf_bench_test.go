package tune

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// BenchmarkLogPDF evaluates a 1,000-kernel, 5-d estimator (the "above" one
// late in a 1,000-trial study) at 24 candidates (ns/op is per step).
func BenchmarkLogPDF(b *testing.B) {
	var space Space
	for i := range 5 {
		space = append(space, Param{Name: "x" + strconv.Itoa(i), Dist: FloatDist{Low: -5, High: 5}})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var trials []*FrozenTrial
	for i := range 1000 {
		ft := &FrozenTrial{ID: int64(i), Number: i, State: Complete, Params: map[string]any{}}
		for _, p := range space {
			ft.Params[p.Name] = sampleUniform(p.Dist, rng)
		}
		trials = append(trials, ft)
	}
	s := NewTPESampler(TPEOptions{})
	p := s.fit(trials, space, internalValues(&History{}, space))
	cands := make([][]float64, 24)
	for i := range cands {
		for _, prm := range space {
			cands[i] = append(cands[i], sampleUniform(prm.Dist, rng))
		}
	}
	for b.Loop() {
		for _, c := range cands {
			p.logPDF(c)
		}
	}
}
