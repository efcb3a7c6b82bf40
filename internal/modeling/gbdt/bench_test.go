package gbdt

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// BenchmarkTrainBinary trains on 200k rows of the benchmark data (see
// bench/gbdt for the comparison with LightGBM).
func BenchmarkTrainBinary(b *testing.B) {
	ds := gbdttest.BenchBinary(200_000, 1)
	p, _ := ParseParams(map[string]string{"objective": "binary", "num_iterations": "20"})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Train(context.Background(), ds, nil, p, TrainOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHistRows builds the histograms of a leaf holding a random 10% of
// 1M rows (sorted, as the partition keeps them), one thread; the reported
// ns/op divided by rows*features is the cost of one bin update.
func BenchmarkHistRows(b *testing.B) {
	const n, width = 1_000_000, 50
	r := rand.New(rand.NewPCG(1, 1))
	mat := make([]uint8, n*64)
	adviseHugePages(mat)
	for i := range mat {
		mat[i] = uint8(r.IntN(255))
	}
	gh := make([]gradPair, n)
	adviseHugePages(gh)
	var rows []int32
	for i := 0; i < n; i++ {
		if r.Float64() < 0.1 {
			rows = append(rows, int32(i))
		}
	}
	slices.Sort(rows)
	hist := make([]histBin, width*256)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(hist)
		histRows(hist, mat, width, 64, gh, rows)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rows)*width), "ns/update")
}

// BenchmarkHistRowsDirect: the same update count over consecutive rows.
func BenchmarkHistRowsDirect(b *testing.B) {
	const n, width = 100_000, 50
	r := rand.New(rand.NewPCG(1, 1))
	mat := make([]uint8, n*64)
	for i := range mat {
		mat[i] = uint8(r.IntN(255))
	}
	gh := make([]gradPair, n)
	hist := make([]histBin, width*256)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(hist)
		histRowsDirect(hist, mat, width, 64, gh, 0, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n*width), "ns/update")
}

// BenchmarkPredict predicts 100k rows with a 100-tree binary model.
func BenchmarkPredict(b *testing.B) {
	p, _ := ParseParams(map[string]string{"objective": "binary", "num_iterations": "100"})
	m, err := Train(context.Background(), gbdttest.BenchBinary(50_000, 1), nil, p, TrainOptions{})
	if err != nil {
		b.Fatal(err)
	}
	test := gbdttest.BenchBinary(100_000, 2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Predict(test); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*test.NumRows())/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkPredictSmall is the serving hot path: one row, and a batch of 200
// rows, with a 300-tree binary model (num_leaves 31) of the benchmark data,
// one goroutine (ns/op per call). Predict allocates its result; PredictInto
// writes into the caller's slice. bench/serving/trees compares the same
// shape with LightGBM and XGBoost.
func BenchmarkPredictSmall(b *testing.B) {
	p, _ := ParseParams(map[string]string{"objective": "binary", "num_iterations": "300", "num_leaves": "31"})
	m, err := Train(context.Background(), gbdttest.BenchBinary(20_000, 1), nil, p, TrainOptions{})
	if err != nil {
		b.Fatal(err)
	}
	all := gbdttest.BenchBinary(200, 2)
	for _, rows := range []int{1, 200} {
		test := all
		if rows < all.NumRows() {
			test = &ml.Dataset{Columns: slices.Clone(all.Columns)}
			for i := range test.Columns {
				test.Columns[i].Values = test.Columns[i].Values[:rows]
			}
		}
		// As serving builds a request's dataset: numeric columns with the
		// doubles as sent.
		exact := &ml.Dataset{Columns: slices.Clone(test.Columns)}
		for i := range exact.Columns {
			if c := &exact.Columns[i]; c.Kind == ml.Numeric {
				c.Float64 = make([]float64, len(c.Values))
				for r, v := range c.Values {
					c.Float64[r] = float64(v)
				}
			}
		}
		b.Run(fmt.Sprintf("rows=%d/Predict", rows), func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Predict(exact); err != nil {
					b.Fatal(err)
				}
			}
		})
		out := make([]float64, rows)
		b.Run(fmt.Sprintf("rows=%d/PredictInto", rows), func(b *testing.B) {
			for b.Loop() {
				if err := m.PredictInto(exact, out); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("rows=%d/PredictInto/float32", rows), func(b *testing.B) {
			for b.Loop() {
				if err := m.PredictInto(test, out); err != nil {
					b.Fatal(err)
				}
			}
		})
		if rows == 1 {
			continue
		}
		// A rank request's shape: the first half of the columns (the
		// user's features) repeat one value on every row (candidate).
		rank := &ml.Dataset{Columns: slices.Clone(exact.Columns)}
		for i := range rank.Columns[:len(rank.Columns)/2] {
			c := &rank.Columns[i]
			c.Values = slices.Repeat(c.Values[:1], rows)
			if c.Float64 != nil {
				c.Float64 = slices.Repeat(c.Float64[:1], rows)
			}
		}
		b.Run(fmt.Sprintf("rows=%d/PredictInto/half-constant", rows), func(b *testing.B) {
			for b.Loop() {
				if err := m.PredictInto(rank, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
