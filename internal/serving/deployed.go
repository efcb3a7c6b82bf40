package serving

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/registry"
)

// Deployed is one loaded version of a registered model: what scores rows,
// and what callers need to build those rows. It is immutable once loaded and
// safe for concurrent use; a swap replaces the whole value, so a request
// that holds a *Deployed scores every row with that one version.
type Deployed struct {
	// Name is the registered model's name; Version its version number.
	Name, Version string
	// Platform is the flavor the version was loaded from: "lightgbm",
	// "xgboost" or "atrium".
	Platform string
	// Task is the model's task: regression, binary, multiclass, lambdarank.
	Task string
	// Inputs are the model's features in the order Predict takes them:
	// names (from the MLflow signature when the model file has only
	// generated ones), kinds, and for categoricals the training categories
	// (nil when the codes are the data's own integers).
	Inputs []modelfile.Feature
	// Outputs names the prediction columns: one per class for multiclass,
	// one otherwise (modelfile.Model.OutputNames).
	Outputs []string
	// FeatureService is the feature service the version's features come
	// from: the version's tag atrium.feature_service, or
	// serving.models[].feature_service of atrium.yaml; "" when neither.
	FeatureService string
	// Source is where the version's files were read (its storage location).
	Source string
	// Stamp is the version's creation time and source in the registry:
	// with Name and Version it identifies the version, as a model deleted
	// and registered again numbers its versions from 1 anew.
	Stamp registry.VersionStamp
	// Tags are the version's registry tags.
	Tags map[string]string

	model *modelfile.Model
	// codes maps category text to code, per input (nil for numeric inputs
	// and for categoricals without category names).
	codes []map[string]float32
	// index maps an input's name to its position.
	index map[string]int
	// obs records predict calls; set by the Service that loaded the
	// version (nil for a version loaded by a bare Loader).
	obs *versionMetrics
	// datasets pools request datasets (NewDataset, ReleaseDataset): a rank
	// of 200 rows x 30 inputs lays out about 70 KB of columns, most of a
	// request's garbage.
	datasets sync.Pool
}

// FeatureServiceTag is the model-version tag naming the feature service a
// version was trained on (written at registration by atrium fit and train).
const FeatureServiceTag = "atrium.feature_service"

// newDeployed wraps a loaded model with its serving metadata.
func newDeployed(name, version, platform string, m *modelfile.Model, inputs []ml.Feature) *Deployed {
	d := &Deployed{Name: name, Version: version, Platform: platform, Task: m.Task, Inputs: inputs,
		Outputs: m.OutputNames(), model: m, codes: make([]map[string]float32, len(inputs)),
		index: make(map[string]int, len(inputs))}
	for i, f := range inputs {
		d.index[f.Name] = i
		if f.Kind == ml.Categorical && f.Categories != nil {
			c := make(map[string]float32, len(f.Categories))
			for code, cat := range f.Categories {
				c[cat] = float32(code)
			}
			d.codes[i] = c
		}
	}
	return d
}

// NumOutputs is the number of predictions per row (len(Outputs)).
func (d *Deployed) NumOutputs() int { return len(d.Outputs) }

// InputIndex returns the position of the named input in Inputs, or -1.
func (d *Deployed) InputIndex(name string) int {
	if i, ok := d.index[name]; ok {
		return i
	}
	return -1
}

// CategoryCode maps a category's text to the code input i was trained with.
// ok is false for a category the model never saw: score it as missing
// (NaN), as LightGBM does with an unseen pandas category. For a categorical
// input without category names (the codes are the data's own integers, as
// in models trained on integer columns in LightGBM or XGBoost) the text must
// be a non-negative integer. A numeric input has no codes: ok is false.
func (d *Deployed) CategoryCode(i int, category string) (code float32, ok bool) {
	if i < 0 || i >= len(d.Inputs) || d.Inputs[i].Kind != ml.Categorical {
		return float32(math.NaN()), false
	}
	if c := d.codes[i]; c != nil {
		code, ok = c[category]
		if !ok {
			return float32(math.NaN()), false
		}
		return code, true
	}
	n, err := strconv.ParseUint(category, 10, 31)
	if err != nil {
		return float32(math.NaN()), false
	}
	return float32(n), true
}

// NewDataset returns an empty dataset of rows rows shaped for Predict: one
// column per input, in order, named and kinded as the input, numeric
// columns with both Values and Float64 allocated (fill Float64; Predict
// derives Values), categorical columns with Values (codes; NaN = missing).
// Every value starts as NaN (missing). The dataset may be a released one
// (ReleaseDataset) reused.
func (d *Deployed) NewDataset(rows int) *ml.Dataset {
	nan32, nan64 := float32(math.NaN()), math.NaN()
	if ds, ok := d.datasets.Get().(*ml.Dataset); ok && fits(ds, rows) {
		ds.Label, ds.Weight, ds.Groups = nil, nil, nil
		for i := range ds.Columns {
			c := &ds.Columns[i]
			c.Values = c.Values[:rows]
			for r := range c.Values {
				c.Values[r] = nan32
			}
			if c.Kind == ml.Numeric {
				c.Float64 = c.Float64[:rows]
				for r := range c.Float64 {
					c.Float64[r] = nan64
				}
			}
		}
		return ds
	}
	ds := &ml.Dataset{Columns: make([]ml.Column, len(d.Inputs))}
	for i, f := range d.Inputs {
		c := ml.Column{Name: f.Name, Kind: f.Kind, Categories: f.Categories, Values: make([]float32, rows)}
		for r := range c.Values {
			c.Values[r] = nan32
		}
		if f.Kind == ml.Numeric {
			c.Float64 = make([]float64, rows)
			for r := range c.Float64 {
				c.Float64[r] = nan64
			}
		}
		ds.Columns[i] = c
	}
	return ds
}

// fits reports whether a pooled dataset has room for rows rows in every
// column (Predict writes values in place, but a column's slices are the
// caller's to replace, so each one is checked).
func fits(ds *ml.Dataset, rows int) bool {
	for i := range ds.Columns {
		c := &ds.Columns[i]
		if cap(c.Values) < rows || (c.Kind == ml.Numeric && cap(c.Float64) < rows) {
			return false
		}
	}
	return true
}

// maxPooledRows bounds the datasets ReleaseDataset keeps: a rare huge
// batch is left to the garbage collector rather than pinned in the pool.
const maxPooledRows = 4096

// ReleaseDataset returns a dataset made by d.NewDataset for reuse. The
// caller must not touch ds, nor slices of its columns, afterwards:
// everything that outlives the request (the prediction log's record, the
// response's predictions) holds copies.
func (d *Deployed) ReleaseDataset(ds *ml.Dataset) {
	if ds == nil || len(ds.Columns) != len(d.Inputs) || len(ds.Columns) == 0 || cap(ds.Columns[0].Values) > maxPooledRows {
		return
	}
	d.datasets.Put(ds)
}

// Predict scores ds, whose columns are the model's Inputs in order (by
// name; see NewDataset). A numeric column may carry its values as doubles in
// Float64 (what the trees compare, as LightGBM does); its Values are then
// set from them. Categorical columns hold codes (CategoryCode); NaN is
// missing everywhere. It returns NumOutputs values per row, row-major: the
// library's default output transform (probability for binary, class
// probabilities for multiclass, the raw score for regression and ranking).
// A dataset of the wrong shape is an ErrInvalidInput naming the column.
func (d *Deployed) Predict(ctx context.Context, ds *ml.Dataset) ([]float64, error) {
	return d.PredictInto(ctx, ds, nil)
}

// PredictInto is Predict writing into out when it has room for
// NumRows x NumOutputs values (tree models then allocate nothing: a server
// keeps out across requests); otherwise it allocates. It returns the
// predictions, which share out's memory when out was used.
func (d *Deployed) PredictInto(ctx context.Context, ds *ml.Dataset, out []float64) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	out, err := d.predict(ds, out)
	if d.obs != nil {
		d.obs.observe(ds.NumRows(), start, err)
	}
	return out, err
}

func (d *Deployed) predict(ds *ml.Dataset, out []float64) ([]float64, error) {
	if len(ds.Columns) != len(d.Inputs) {
		return nil, fmt.Errorf("%w: %d feature columns, model %s version %s takes %d", ErrInvalidInput, len(ds.Columns), d.Name, d.Version, len(d.Inputs))
	}
	n := ds.NumRows()
	for i := range ds.Columns {
		c := &ds.Columns[i]
		if c.Name != d.Inputs[i].Name || c.Kind != d.Inputs[i].Kind {
			return nil, fmt.Errorf("%w: column %d is %q (%v), model %s version %s takes %q (%v) there",
				ErrInvalidInput, i, c.Name, c.Kind, d.Name, d.Version, d.Inputs[i].Name, d.Inputs[i].Kind)
		}
		if c.Float64 != nil && len(c.Values) != len(c.Float64) {
			if cap(c.Values) >= len(c.Float64) {
				c.Values = c.Values[:len(c.Float64)]
			} else {
				c.Values = make([]float32, len(c.Float64))
			}
		}
		if len(c.Values) != n {
			return nil, fmt.Errorf("%w: column %q has %d rows, the first column %d", ErrInvalidInput, c.Name, len(c.Values), n)
		}
		if c.Float64 != nil {
			for r, v := range c.Float64 {
				c.Values[r] = float32(v)
			}
		}
	}
	if n == 0 {
		return []float64{}, nil
	}
	var err error
	if gm, ok := d.model.Body.(*gbdt.Model); ok {
		if need := n * d.NumOutputs(); cap(out) >= need {
			out = out[:need]
		} else {
			out = make([]float64, need)
		}
		err = gm.PredictInto(ds, out)
	} else {
		out, err = d.model.Body.Predict(ds)
	}
	if err != nil {
		return nil, fmt.Errorf("predict with %s version %s: %w", d.Name, d.Version, err)
	}
	return out, nil
}

// Model is the loaded model file (read-only: it is shared by every request).
func (d *Deployed) Model() *modelfile.Model { return d.model }
