package gbdttest

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// Shape of BenchBinary's data.
const (
	BenchInformative = 28
	BenchNoise       = 10
	BenchCategorical = 12
)

// BenchBinary generates the binary-classification benchmark data: n rows of
// 28 informative numeric features (varied distributions, some with missing
// values, interactions), 10 noise features and 12 categorical features of 3
// to 200 categories (8 informative), with a label drawn from a logistic
// model of them. The same n and seed give the same data.
func BenchBinary(n int, seed uint64) *ml.Dataset {
	r := rand.New(rand.NewPCG(seed, 0xbe7c4))
	ds := &ml.Dataset{Label: make([]float64, n)}
	nNum := BenchInformative + BenchNoise
	for j := 0; j < nNum; j++ {
		name := fmt.Sprintf("num%02d", j)
		if j >= BenchInformative {
			name = fmt.Sprintf("noise%02d", j-BenchInformative)
		}
		ds.Columns = append(ds.Columns, ml.Column{Name: name, Kind: ml.Numeric, Values: make([]float32, n)})
	}
	cards := []int{3, 5, 8, 12, 20, 31, 50, 75, 100, 150, 200, 7}
	effects := make([][]float64, BenchCategorical)
	// Category effects are fixed by the feature, not the seed, so train and
	// test sets drawn with different seeds share them.
	er := rand.New(rand.NewPCG(42, 42))
	for j := 0; j < BenchCategorical; j++ {
		c := ml.Column{Name: fmt.Sprintf("cat%02d", j), Kind: ml.Categorical, Values: make([]float32, n)}
		for k := 0; k < cards[j]; k++ {
			c.Categories = append(c.Categories, fmt.Sprintf("c%d", k))
		}
		ds.Columns = append(ds.Columns, c)
		effects[j] = make([]float64, cards[j])
		if j < 8 { // the last four are noise
			for k := range effects[j] {
				effects[j][k] = er.NormFloat64() * 0.6
			}
		}
	}
	coef := make([]float64, BenchInformative)
	for j := range coef {
		coef[j] = (er.Float64()*2 - 1) * 0.8
	}
	x := make([]float64, nNum)
	for i := 0; i < n; i++ {
		for j := 0; j < nNum; j++ {
			var v float64
			switch j % 4 {
			case 0:
				v = r.NormFloat64()
			case 1:
				v = r.Float64()*4 - 2
			case 2:
				v = math.Exp(r.NormFloat64()*0.75) - 1 // skewed
			default:
				v = math.Round(r.NormFloat64() * 3) // few distinct values
			}
			x[j] = v
			fv := float32(v)
			if j%7 == 3 && r.Float64() < 0.05 {
				fv = float32(math.NaN())
				x[j] = 0.5 // missing carries some signal
			}
			ds.Columns[j].Values[i] = fv
		}
		f := -0.4
		for j := 0; j < BenchInformative; j++ {
			switch j % 3 {
			case 0:
				f += coef[j] * x[j]
			case 1:
				f += coef[j] * math.Sin(1.5*x[j])
			default:
				f += coef[j] * math.Abs(x[j]) * 0.7
			}
		}
		f += 0.5*x[0]*x[1] - 0.4*x[2]*x[5] + 0.3*math.Max(x[4], x[8])
		for j := 0; j < BenchCategorical; j++ {
			k := r.IntN(cards[j])
			if j%2 == 0 {
				// Skewed category frequencies.
				k = min(cards[j]-1, int(math.Abs(r.NormFloat64())*float64(cards[j])/3))
			}
			ds.Columns[nNum+j].Values[i] = float32(k)
			f += effects[j][k]
		}
		if r.Float64() < 1/(1+math.Exp(-f)) {
			ds.Label[i] = 1
		}
	}
	return ds
}

// BenchRanking generates search sessions for the lambdarank benchmark:
// queries of 5 to 60 results, 20 numeric features (query-level,
// document-level and query-document match features, some missing) and 4
// categorical ones, relevance 0..4 from a noisy utility.
func BenchRanking(queries int, seed uint64) *ml.Dataset {
	r := rand.New(rand.NewPCG(seed, 0x5ea4c))
	const nNum, nCat = 20, 4
	ds := &ml.Dataset{}
	for j := 0; j < nNum; j++ {
		ds.Columns = append(ds.Columns, ml.Column{Name: fmt.Sprintf("f%02d", j), Kind: ml.Numeric})
	}
	cards := []int{10, 30, 100, 5}
	er := rand.New(rand.NewPCG(43, 43))
	effects := make([][]float64, nCat)
	for j := 0; j < nCat; j++ {
		c := ml.Column{Name: fmt.Sprintf("c%d", j), Kind: ml.Categorical}
		for k := 0; k < cards[j]; k++ {
			c.Categories = append(c.Categories, fmt.Sprintf("v%d", k))
		}
		ds.Columns = append(ds.Columns, c)
		effects[j] = make([]float64, cards[j])
		for k := range effects[j] {
			effects[j][k] = er.NormFloat64() * 0.5
		}
	}
	x := make([]float64, nNum)
	for q := 0; q < queries; q++ {
		size := 5 + r.IntN(56)
		ds.Groups = append(ds.Groups, size)
		intent := r.NormFloat64()
		qf := [3]float64{r.NormFloat64(), r.Float64(), math.Round(r.NormFloat64() * 2)}
		for d := 0; d < size; d++ {
			for j := range x {
				switch {
				case j < 3:
					x[j] = qf[j]
				case j < 10:
					x[j] = r.NormFloat64()
				case j < 16:
					x[j] = r.NormFloat64() + 0.5*intent*float64(j%3-1)
				default:
					x[j] = r.Float64()
				}
				v := float32(x[j])
				if j >= 10 && j < 13 && r.Float64() < 0.1 {
					v = float32(math.NaN())
					x[j] = -1
				}
				ds.Columns[j].Values = append(ds.Columns[j].Values, v)
			}
			u := 1.2*x[10] + 0.8*x[11]*x[3] + math.Sin(2*x[4]) + 0.6*x[12] - 0.5*x[5]*x[5] + 0.4*x[13]*intent + 0.3*x[0]*x[6]
			for j := 0; j < nCat; j++ {
				k := r.IntN(cards[j])
				ds.Columns[nNum+j].Values = append(ds.Columns[nNum+j].Values, float32(k))
				u += effects[j][k]
			}
			u += r.NormFloat64() * 0.8
			rel := 0.0
			switch {
			case u > 3:
				rel = 4
			case u > 2:
				rel = 3
			case u > 1.2:
				rel = 2
			case u > 0.5:
				rel = 1
			}
			ds.Label = append(ds.Label, rel)
		}
	}
	return ds
}
