package linear

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// benchData is n rows of 20 numeric columns and one 10-level categorical, with
// a logistic label.
func benchData(n int) *ml.Dataset {
	r := rand.New(rand.NewPCG(1, 1))
	ds := &ml.Dataset{Label: make([]float64, n)}
	margin := make([]float64, n)
	for j := range 20 {
		c := ml.Column{Name: string(rune('a' + j)), Values: make([]float32, n)}
		beta := r.NormFloat64() * 0.3
		for i := range c.Values {
			c.Values[i] = float32(r.NormFloat64())
			margin[i] += beta * float64(c.Values[i])
		}
		ds.Columns = append(ds.Columns, c)
	}
	cat := ml.Column{Name: "cat", Kind: ml.Categorical, Values: make([]float32, n), Categories: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}}
	for i := range cat.Values {
		k := r.IntN(10)
		cat.Values[i] = float32(k)
		margin[i] += float64(k-5) * 0.1
		if r.Float64() < 1/(1+math.Exp(-margin[i])) {
			ds.Label[i] = 1
		}
	}
	ds.Columns = append(ds.Columns, cat)
	return ds
}

// BenchmarkTrainBinary reports logistic-regression fit throughput in rows x
// iterations per second (go test -bench TrainBinary ./internal/modeling/linear).
func BenchmarkTrainBinary(b *testing.B) {
	ds := benchData(200_000)
	p := DefaultParams(Binary)
	iters := 0
	for b.Loop() {
		m, err := Train(context.Background(), ds, p, TrainOptions{})
		if err != nil {
			b.Fatal(err)
		}
		iters += m.Iterations
	}
	b.ReportMetric(float64(ds.NumRows())*float64(iters)/b.Elapsed().Seconds(), "rows*iter/s")
}
