package linear

import (
	"fmt"
	"math"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// Model is a fitted linear model. It is JSON-serialisable, except for its
// preprocessing, which model files keep beside it (see Pre).
type Model struct {
	Objective string `json:"objective"`
	// NumClass is the number of classes for multiclass, 1 otherwise.
	NumClass int `json:"num_class"`
	// Inputs names the columns of the design (Pre.OutputNames()), one per
	// coefficient.
	Inputs []string `json:"inputs"`
	// Coef holds one row of len(Inputs) coefficients per output (one output
	// for regression and binary, NumClass for multiclass), like
	// scikit-learn's coef_.
	Coef [][]float64 `json:"coef"`
	// Intercept holds one intercept per output.
	Intercept []float64 `json:"intercept"`
	// LambdaL2 and LambdaL1 are the penalties the model was fitted with
	// (defaults resolved).
	LambdaL2 float64 `json:"lambda_l2"`
	LambdaL1 float64 `json:"lambda_l1"`
	// Iterations is the number of optimizer iterations; Converged says whether
	// the optimizer met its tolerance before max_iter.
	Iterations int  `json:"iterations"`
	Converged  bool `json:"converged"`

	// Pre turns a dataset into the model's inputs. It is not part of the
	// model's JSON: a model file stores it as the file's preprocessing step
	// and sets it when loading. Predict requires it.
	Pre *ml.Preprocessor `json:"-"`
}

// NumOutputs is the number of values predicted per row: NumClass for
// multiclass, 1 otherwise.
func (m *Model) NumOutputs() int { return len(m.Intercept) }

// Validate checks the model's shape (a decoded model file).
func (m *Model) Validate() error {
	k := 1
	switch m.Objective {
	case Regression, Binary:
	case Multiclass:
		k = m.NumClass
		if k < 2 {
			return fmt.Errorf("%w: multiclass with num_class=%d", ErrModel, k)
		}
	default:
		return fmt.Errorf("%w: objective %q", ErrModel, m.Objective)
	}
	if len(m.Coef) != k || len(m.Intercept) != k {
		return fmt.Errorf("%w: %d coefficient rows and %d intercepts, want %d", ErrModel, len(m.Coef), len(m.Intercept), k)
	}
	for _, row := range m.Coef {
		if len(row) != len(m.Inputs) {
			return fmt.Errorf("%w: a coefficient row has %d values for %d inputs", ErrModel, len(row), len(m.Inputs))
		}
		for _, c := range row {
			if math.IsNaN(c) || math.IsInf(c, 0) {
				return fmt.Errorf("%w: coefficient %v", ErrModel, c)
			}
		}
	}
	for _, b := range m.Intercept {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return fmt.Errorf("%w: intercept %v", ErrModel, b)
		}
	}
	if m.Pre != nil && m.Pre.NumOutputs() != len(m.Inputs) {
		return fmt.Errorf("%w: preprocessing makes %d inputs, the model has %d", ErrModel, m.Pre.NumOutputs(), len(m.Inputs))
	}
	return nil
}

// weights returns the coefficients as the p x k row-major matrix Design.Mul takes.
func (m *Model) weights() []float64 {
	k, p := len(m.Coef), len(m.Inputs)
	w := make([]float64, p*k)
	for c, row := range m.Coef {
		for j, v := range row {
			w[j*k+c] = v
		}
	}
	return w
}

// PredictRaw returns the margins x·β + b, row-major (rows x NumOutputs).
func (m *Model) PredictRaw(ds *ml.Dataset) ([]float64, error) {
	if m.Pre == nil {
		return nil, fmt.Errorf("%w: no preprocessing", ErrModel)
	}
	d, err := m.Pre.Transform(ds)
	if err != nil {
		return nil, err
	}
	return m.margins(d), nil
}

func (m *Model) margins(d *ml.Design) []float64 {
	k := len(m.Intercept)
	out := make([]float64, d.NumRows()*k)
	d.Mul(m.weights(), k, out)
	for i := 0; i < len(out); i += k {
		for c := range k {
			out[i+c] += m.Intercept[c]
		}
	}
	return out
}

// Predict returns predictions, row-major (rows x NumOutputs): the value for
// regression, the probability of class 1 for binary, the class probabilities
// for multiclass.
func (m *Model) Predict(ds *ml.Dataset) ([]float64, error) {
	out, err := m.PredictRaw(ds)
	if err != nil {
		return nil, err
	}
	m.transform(out)
	return out, nil
}

// transform turns margins into predictions in place.
func (m *Model) transform(margins []float64) {
	switch m.Objective {
	case Binary:
		for i, v := range margins {
			margins[i] = sigmoid(v)
		}
	case Multiclass:
		k := len(m.Intercept)
		for i := 0; i < len(margins); i += k {
			softmax(margins[i : i+k])
		}
	}
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// softmax replaces v by its softmax and returns log Σ exp(v).
func softmax(v []float64) float64 {
	mx := v[0]
	for _, x := range v[1:] {
		mx = max(mx, x)
	}
	sum := 0.0
	for i, x := range v {
		v[i] = math.Exp(x - mx)
		sum += v[i]
	}
	for i := range v {
		v[i] /= sum
	}
	return mx + math.Log(sum)
}
