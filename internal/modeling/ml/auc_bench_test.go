package ml

import (
	"math"
	"math/rand/v2"
	"testing"
)

// BenchmarkAUC is the metric a binary tuning trial computes on its
// validation rows every boosting iteration (150,000 rows in bench/tune/e2e).
func BenchmarkAUC(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	label, score := make([]float64, 150_000), make([]float64, 150_000)
	for i := range label {
		score[i] = rng.NormFloat64()
		if rng.Float64() < 1/(1+math.Exp(-2*score[i])) {
			label[i] = 1
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := AUC(label, score, nil); err != nil {
			b.Fatal(err)
		}
	}
}
