package gbdttest

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// StudyFeatures is the width of Study's data.
const StudyFeatures = 20

// Study generates the data of the tuning study benchmark (bench/tune/e2e)
// and of bench/gbdt's study task: n rows of 20 standard normal features
// (column by column in x) and a binary label drawn from a logistic of a
// non-linear score of eight of them (interactions and thresholds a tree
// must find). The same n and seed give the same data.
func Study(n int, seed uint64) (x [][]float32, y []float64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	x = make([][]float32, StudyFeatures)
	for j := range x {
		x[j] = make([]float32, n)
	}
	y = make([]float64, n)
	for i := range n {
		for j := range StudyFeatures {
			x[j][i] = float32(rng.NormFloat64())
		}
		s := 1.2*float64(x[0][i]) - 0.8*float64(x[1][i]) + 0.6*float64(x[2][i]*x[3][i]) +
			0.9*step(float64(x[4][i]) > 0.5) - 0.7*step(float64(x[5][i])*float64(x[6][i]) > 0) + 0.4*math.Sin(3*float64(x[7][i]))
		if rng.Float64() < 1/(1+math.Exp(-s)) {
			y[i] = 1
		}
	}
	return x, y
}

// StudyDataset is Study's data as a dataset (features f00-f19, label y).
func StudyDataset(n int, seed uint64) *ml.Dataset {
	x, y := Study(n, seed)
	ds := &ml.Dataset{Label: y}
	for j, col := range x {
		ds.Columns = append(ds.Columns, ml.Column{Name: fmt.Sprintf("f%02d", j), Kind: ml.Numeric, Values: col})
	}
	return ds
}

func step(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
