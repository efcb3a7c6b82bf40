// Package lineartest checks linear models against scikit-learn's, from the
// files tests/interop/sklearn/linear_parity.py writes. The unit tests run it
// on a copy kept in internal/modeling/linear/testdata/sklearn; the interop
// test runs the script with the real scikit-learn first.
package lineartest

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/linear"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// Case is one fitted scikit-learn model in expected.json.
type Case struct {
	Name        string            `json:"name"`
	Data        string            `json:"data"`
	Label       string            `json:"label"`
	Weight      string            `json:"weight"`
	Params      map[string]string `json:"params"`
	Inputs      []string          `json:"inputs"`
	Coef        [][]float64       `json:"coef"`
	Intercept   []float64         `json:"intercept"`
	UniqueCoef  bool              `json:"unique_coef"`
	Predictions [][]float64       `json:"predictions"`
}

// Tolerance is the largest difference allowed between Atrium's and
// scikit-learn's coefficients, intercepts and predictions.
const Tolerance = 1e-4

// CheckParity fits every case of dir/expected.json with Atrium and compares.
func CheckParity(t *testing.T, dir string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expected struct {
		Sklearn string `json:"sklearn"`
		Cases   []Case `json:"cases"`
	}
	if err := json.Unmarshal(raw, &expected); err != nil {
		t.Fatal(err)
	}
	if len(expected.Cases) == 0 {
		t.Fatal("expected.json has no cases")
	}
	for _, c := range expected.Cases {
		t.Run(c.Name, func(t *testing.T) { checkCase(t, dir, c) })
	}
}

func checkCase(t *testing.T, dir string, c Case) {
	ds, err := ml.Load(context.Background(), filepath.Join(dir, c.Data), ml.LoadOptions{Label: c.Label, Weight: c.Weight})
	if err != nil {
		t.Fatal(err)
	}
	p, err := linear.ParseParams(c.Params)
	if err != nil {
		t.Fatal(err)
	}
	m, err := linear.Train(context.Background(), ds, p, linear.TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Converged {
		t.Errorf("did not converge in %d iterations", m.Iterations)
	}
	index := map[string]int{}
	for j, name := range m.Inputs {
		index[name] = j
	}
	worst := 0.0
	if c.UniqueCoef {
		for k, row := range c.Coef {
			for j, want := range row {
				got := m.Coef[k][index[c.Inputs[j]]]
				worst = max(worst, math.Abs(got-want))
				if math.Abs(got-want) > Tolerance {
					t.Errorf("coef[%d][%s] = %.8f, scikit-learn %.8f", k, c.Inputs[j], got, want)
				}
			}
		}
		for k, want := range c.Intercept {
			worst = max(worst, math.Abs(m.Intercept[k]-want))
			if math.Abs(m.Intercept[k]-want) > Tolerance {
				t.Errorf("intercept[%d] = %.8f, scikit-learn %.8f", k, m.Intercept[k], want)
			}
		}
	}
	pred, err := m.Predict(ds)
	if err != nil {
		t.Fatal(err)
	}
	k := m.NumOutputs()
	for i, row := range c.Predictions {
		for o, want := range row {
			got := pred[i*k+o]
			worst = max(worst, math.Abs(got-want))
			if math.Abs(got-want) > Tolerance {
				t.Fatalf("prediction[%d][%d] = %.8f, scikit-learn %.8f", i, o, got, want)
			}
		}
	}
	t.Logf("largest difference to scikit-learn: %.2g (%d iterations)", worst, m.Iterations)
}
