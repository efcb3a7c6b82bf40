package gbdt

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// ModelVersion is the version of Model's JSON form. Readers reject other
// versions.
const ModelVersion = 1

// MaxClasses bounds num_class (of training and of models read from files).
const MaxClasses = 1 << 16

// Feature describes one input column of a model, in the training dataset's
// column order.
type Feature struct {
	Name        string `json:"name"`
	Categorical bool   `json:"categorical,omitempty"`
	// Unused marks a column no split can use (a single value in training).
	Unused bool `json:"unused,omitempty"`
	// Min and Max are the range of a numeric column's training values.
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// Categories are the codes of a categorical column that got a bin of
	// their own in training, most frequent first (LightGBM's feature_infos).
	Categories []int `json:"categories,omitempty"`
}

// Model is a trained gradient-boosted tree ensemble. Its exported fields are
// its JSON form (embedded in Atrium model files); call Validate after
// decoding one from an untrusted source (Predict does it too).
//
// Prediction takes a Dataset whose columns are the model's Features, in the
// same order; categorical columns hold the codes the model was trained on.
type Model struct {
	Version   int    `json:"version"`
	Objective string `json:"objective"`
	// NumClass is the number of outputs per row: K for multiclass, else 1.
	NumClass int `json:"num_class"`
	// Sigmoid is the slope of the logistic link (binary).
	Sigmoid  float64   `json:"sigmoid,omitempty"`
	Features []Feature `json:"features"`
	// Trees are in iteration order, NumClass trees per iteration (class k of
	// iteration i is Trees[i*NumClass+k]). The initial score is folded into
	// the first iteration's trees, as in LightGBM.
	Trees []Tree `json:"trees"`
	// BestIteration is the iteration early stopping chose (1-based; 0 when
	// training ran to the end). The model keeps only the trees up to it.
	BestIteration int `json:"best_iteration"`
	// Params are the parameters the model was trained with (nil for models
	// read from other formats).
	Params *Params `json:"params,omitempty"`
	// Float32Inputs selects XGBoost's decision semantics: every input is
	// rounded to float32 first, a numeric node sends it left when
	// float32(value) <= Threshold (a float32 value: XGBoost's "value <
	// split_condition" moved to the largest float32 below the condition),
	// and a categorical node sends a negative rounded value right. Without
	// it the model has LightGBM's semantics (Atrium's trainer and LightGBM
	// files): the value as a double, read as 0 when |value| <=
	// kZeroThreshold, goes left when value <= Threshold. See predict.go.
	Float32Inputs bool `json:"float32_inputs,omitempty"`

	compiled atomic.Pointer[predictor]
}

// NumOutputs is the number of values Predict returns per row.
func (m *Model) NumOutputs() int {
	if m.NumClass < 1 {
		return 1
	}
	return m.NumClass
}

// NumIterations is the number of boosting iterations in the model.
func (m *Model) NumIterations() int { return len(m.Trees) / m.NumOutputs() }

// Validate checks the model's consistency: version, objective, tree count,
// and each tree's arrays, indices and structure.
func (m *Model) Validate() error {
	if m.Version != ModelVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrModel, m.Version, ModelVersion)
	}
	switch m.Objective {
	case ObjBinary, ObjRegression, ObjRegressionL1, ObjHuber, ObjLambdarank:
		if m.NumClass != 1 {
			return fmt.Errorf("%w: num_class %d, want 1 for %s", ErrModel, m.NumClass, m.Objective)
		}
	case ObjMulticlass:
		if m.NumClass < 2 || m.NumClass > MaxClasses {
			return fmt.Errorf("%w: num_class %d, want 2..%d for multiclass", ErrModel, m.NumClass, MaxClasses)
		}
	default:
		return fmt.Errorf("%w: unknown objective %q", ErrModel, m.Objective)
	}
	if m.Objective == ObjBinary && !(m.Sigmoid > 0) {
		return fmt.Errorf("%w: sigmoid %v, want > 0 for binary", ErrModel, m.Sigmoid)
	}
	if len(m.Trees)%m.NumClass != 0 {
		return fmt.Errorf("%w: %d trees, want a multiple of num_class %d", ErrModel, len(m.Trees), m.NumClass)
	}
	for i := range m.Trees {
		if err := m.Trees[i].validate(len(m.Features)); err != nil {
			return fmt.Errorf("%w: tree %d: %v", ErrModel, i, err)
		}
	}
	return nil
}

// PredictRaw returns the raw scores (before the link function), row-major:
// rows x NumOutputs. A numeric column's Float64 values, when set, are what
// the trees compare (exactly as LightGBM, or XGBoost after its rounding to
// float32, would); otherwise its float32 Values are.
func (m *Model) PredictRaw(ds *ml.Dataset) ([]float64, error) {
	if ds == nil {
		return nil, fmt.Errorf("%w: no dataset", ErrData)
	}
	out := make([]float64, ds.NumRows()*m.NumOutputs())
	if err := m.PredictRawInto(ds, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Predict returns the model's outputs, row-major rows x NumOutputs:
// probabilities for binary (of class 1) and multiclass, raw scores otherwise.
func (m *Model) Predict(ds *ml.Dataset) ([]float64, error) {
	out, err := m.PredictRaw(ds)
	if err != nil {
		return nil, err
	}
	m.transform(out)
	return out, nil
}

// PredictInto is Predict writing into out, which must hold exactly
// rows x NumOutputs values (its contents are overwritten). With a
// caller-kept out it allocates nothing (a model's first call compiles its
// predictor), which is what a server scoring small batches wants. Batches
// under 1024 rows run on the calling goroutine; larger ones spread over
// GOMAXPROCS goroutines. The results are bit for bit Predict's. Safe for
// concurrent use.
func (m *Model) PredictInto(ds *ml.Dataset, out []float64) error {
	if err := m.PredictRawInto(ds, out); err != nil {
		return err
	}
	m.transform(out)
	return nil
}

// PredictRawInto is PredictRaw writing into out, as PredictInto does.
func (m *Model) PredictRawInto(ds *ml.Dataset, out []float64) error {
	pr, err := m.predictor()
	if err != nil {
		return err
	}
	if err := m.checkData(ds); err != nil {
		return err
	}
	if want := ds.NumRows() * pr.k; len(out) != want {
		return fmt.Errorf("%w: output has room for %d values, want %d (%d rows x %d outputs)", ErrData, len(out), want, ds.NumRows(), pr.k)
	}
	pr.predictInto(ds, out)
	return nil
}

// transform applies the link function to raw scores in place.
func (m *Model) transform(out []float64) {
	switch m.Objective {
	case ObjBinary:
		for i, v := range out {
			out[i] = sigmoid(v, m.Sigmoid)
		}
	case ObjMulticlass:
		k := m.NumClass
		for i := 0; i+k <= len(out); i += k {
			softmax(out[i:i+k], out[i:i+k])
		}
	}
}

func (m *Model) checkData(ds *ml.Dataset) error {
	if ds == nil {
		return fmt.Errorf("%w: no dataset", ErrData)
	}
	if ds.NumFeatures() != len(m.Features) {
		return fmt.Errorf("%w: dataset has %d feature columns, the model wants %d", ErrData, ds.NumFeatures(), len(m.Features))
	}
	n := ds.NumRows()
	for i := range ds.Columns {
		if len(ds.Columns[i].Values) != n {
			return fmt.Errorf("%w: column %q has %d rows, want %d", ErrData, ds.Columns[i].Name, len(ds.Columns[i].Values), n)
		}
		if f := ds.Columns[i].Float64; f != nil && len(f) != n {
			return fmt.Errorf("%w: column %q has %d float64 rows, want %d", ErrData, ds.Columns[i].Name, len(f), n)
		}
	}
	return nil
}

func (m *Model) predictor() (*predictor, error) {
	if p := m.compiled.Load(); p != nil {
		return p, nil
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	p := compile(m)
	m.compiled.Store(p)
	return p, nil
}

// leafRange returns the smallest and largest leaf value of the model's trees
// summed per output (bounds on any raw prediction).
func (m *Model) leafRange() (lo, hi []float64) {
	k := m.NumOutputs()
	lo, hi = make([]float64, k), make([]float64, k)
	for i := range m.Trees {
		mn, mx := math.Inf(1), math.Inf(-1)
		for _, v := range m.Trees[i].LeafValue {
			mn, mx = min(mn, v), max(mx, v)
		}
		lo[i%k] += mn
		hi[i%k] += mx
	}
	return lo, hi
}
