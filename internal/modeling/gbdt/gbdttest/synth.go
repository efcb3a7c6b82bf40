// Package gbdttest generates datasets with a known structure for the tests
// and benchmarks of gradient-boosted trees.
package gbdttest

import (
	"math"
	"math/rand/v2"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// Synth builds a small dataset with numeric, noise, categorical and missing
// values, and a label of the given task drawn from a known function.
func Synth(task string, n int, seed uint64) *ml.Dataset {
	r := rand.New(rand.NewPCG(seed, 7))
	const numNum, numCat = 6, 2
	ds := &ml.Dataset{}
	for j := 0; j < numNum; j++ {
		ds.Columns = append(ds.Columns, ml.Column{Name: "x" + string(rune('0'+j)), Kind: ml.Numeric, Values: make([]float32, n)})
	}
	for j := 0; j < numCat; j++ {
		c := ml.Column{Name: "c" + string(rune('0'+j)), Kind: ml.Categorical, Values: make([]float32, n)}
		for k := 0; k < 12; k++ {
			c.Categories = append(c.Categories, string(rune('a'+k)))
		}
		ds.Columns = append(ds.Columns, c)
	}
	catEffect := []float64{1.5, -1, 0.3, 0.8, -0.6, 0, 1.1, -1.4, 0.2, 0.5, -0.2, 0.9}
	f := make([]float64, n)
	for i := 0; i < n; i++ {
		x := make([]float64, numNum)
		for j := range x {
			x[j] = r.NormFloat64()
			v := float32(x[j])
			if j == 2 && r.Float64() < 0.1 {
				v = float32(math.NaN())
				x[j] = 2 // missing carries signal
			}
			ds.Columns[j].Values[i] = v
		}
		c0 := r.IntN(12)
		c1 := r.IntN(12)
		ds.Columns[numNum].Values[i] = float32(c0)
		ds.Columns[numNum+1].Values[i] = float32(c1)
		if r.Float64() < 0.05 {
			ds.Columns[numNum+1].Values[i] = float32(math.NaN())
		}
		f[i] = 1.2*x[0] - 0.8*x[1]*x[1] + 0.7*x[2] + math.Sin(2*x[3]) + catEffect[c0]
	}
	ds.Label = make([]float64, n)
	switch task {
	case "binary":
		for i := range f {
			if r.Float64() < 1/(1+math.Exp(-f[i])) {
				ds.Label[i] = 1
			}
		}
	case "multiclass":
		for i := range f {
			switch {
			case f[i]+0.5*r.NormFloat64() < -0.5:
				ds.Label[i] = 0
			case f[i]+0.5*r.NormFloat64() < 0.8:
				ds.Label[i] = 1
			default:
				ds.Label[i] = 2
			}
		}
	case "lambdarank":
		for i := 0; i < n; {
			g := min(n-i, 5+r.IntN(20))
			ds.Groups = append(ds.Groups, g)
			for j := i; j < i+g; j++ {
				s := f[j] + 0.5*r.NormFloat64()
				switch {
				case s > 2:
					ds.Label[j] = 3
				case s > 1:
					ds.Label[j] = 2
				case s > 0:
					ds.Label[j] = 1
				}
			}
			i += g
		}
	default:
		for i := range f {
			ds.Label[i] = 3*f[i] + r.NormFloat64()
		}
	}
	return ds
}
