// Package modelfile saves and loads models: Atrium's own versioned format
// (atrium*.go), LightGBM v4 text (lightgbm*.go) and XGBoost JSON (xgboost*.go).
// Load recognises the format from the content.
//
// Every model kind implements Predictor. A loaded file is a *Model: the model
// itself (Body) with what predicting from a data file needs: the features'
// names, kinds and training categories, so that input columns are matched by
// name and category strings mapped to the codes the model was trained with.
package modelfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/linear"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// Predictor is the contract every model kind implements. Predictions are
// row-major, NumOutputs values per row.
type Predictor interface {
	// NumOutputs is the number of values per row: 1, or the number of classes
	// for multiclass.
	NumOutputs() int
	// Predict returns transformed predictions: the value for regression, the
	// probability of class 1 for binary, class probabilities for multiclass,
	// the score for ranking.
	Predict(ds *ml.Dataset) ([]float64, error)
	// PredictRaw returns the untransformed margins.
	PredictRaw(ds *ml.Dataset) ([]float64, error)
}

// Errors of this package. Problems with the data predicted on wrap
// ml.ErrBadData.
var (
	// ErrUnknownFormat: the file is no model format Load knows.
	ErrUnknownFormat = errors.New("unknown model file format")
	// ErrVersion: an Atrium model file of a version this build cannot read.
	ErrVersion = errors.New("unsupported model file version")
	// ErrCorrupt: the file has a known format but invalid content.
	ErrCorrupt = errors.New("corrupt model file")
	// ErrUnsupported: a valid LightGBM or XGBoost model of a version,
	// objective or kind (linear trees, random forests, gblinear) this build
	// does not predict with.
	ErrUnsupported = errors.New("unsupported model")
)

// Atrium model file format: one JSON document.
const (
	// FormatName is the value of the "format" field.
	FormatName = "atrium-model"
	// FormatVersion is the version this build writes and the newest it reads.
	// Bump it when a change would make older readers misread a file.
	FormatVersion = 1
)

// Tasks.
const (
	TaskRegression = "regression"
	TaskBinary     = "binary"
	TaskMulticlass = "multiclass"
	TaskLambdarank = "lambdarank"
)

// Algorithms: the kind of Body.
const (
	AlgorithmLinear = "linear"
	AlgorithmGBDT   = "gbdt"
)

// Feature is one input column of a model: name, kind and training categories.
type Feature = ml.Feature

// Training records how a model was trained.
type Training struct {
	Params    map[string]string `json:"params,omitempty"`
	Data      string            `json:"data,omitempty"`
	Valid     string            `json:"valid,omitempty"`
	Label     string            `json:"label,omitempty"`
	Weight    string            `json:"weight,omitempty"`
	Group     string            `json:"group,omitempty"`
	Rows      int               `json:"rows"`
	ValidRows int               `json:"valid_rows,omitempty"`
	// Metrics are the final metric values, e.g. "valid_auc".
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Iterations int                `json:"iterations,omitempty"`
	Seed       uint64             `json:"seed"`
	StartedAt  time.Time          `json:"started_at"`
	Seconds    float64            `json:"seconds"`
	// Atrium is the version of atrium that trained the model.
	Atrium string `json:"atrium,omitempty"`
}

// Model is a model with what predicting from data files needs. It implements
// Predictor: Predict matches columns by name and remaps categories before
// calling Body.
type Model struct {
	Task      string    `json:"task"`
	Algorithm string    `json:"algorithm"`
	Features  []Feature `json:"features"`
	// Preprocessing is applied to the features before Body (linear models:
	// standardisation and one-hot encoding); nil for none.
	Preprocessing *ml.Preprocessor `json:"preprocessing,omitempty"`
	Training      *Training        `json:"training,omitempty"`
	// Body is the model: *linear.Model or *gbdt.Model.
	Body Predictor `json:"-"`
	// Source names the format the model was read from ("atrium",
	// "lightgbm", "xgboost"); empty for a model built in memory.
	Source string `json:"-"`
}

// file is the JSON layout of an Atrium model file.
type file struct {
	Format  string          `json:"format"`
	Version int             `json:"version"`
	Model                   // task, algorithm, features, preprocessing, training
	Body    json.RawMessage `json:"model"`
}

// NumOutputs implements Predictor.
func (m *Model) NumOutputs() int { return m.Body.NumOutputs() }

// Predict implements Predictor on any dataset with the model's feature
// columns (matched by name; extra columns are ignored).
func (m *Model) Predict(ds *ml.Dataset) ([]float64, error) {
	in, err := m.Align(ds)
	if err != nil {
		return nil, err
	}
	return m.Body.Predict(in)
}

// PredictRaw implements Predictor.
func (m *Model) PredictRaw(ds *ml.Dataset) ([]float64, error) {
	in, err := m.Align(ds)
	if err != nil {
		return nil, err
	}
	return m.Body.PredictRaw(in)
}

// OutputNames names the prediction columns: "prediction" for one output,
// "prediction_<class>" for each class of a multiclass model.
func (m *Model) OutputNames() []string {
	k := m.NumOutputs()
	if k == 1 {
		return []string{"prediction"}
	}
	names := make([]string, k)
	for c := range names {
		names[c] = "prediction_" + strconv.Itoa(c)
	}
	return names
}

// Align returns ds's columns in the model's feature order with categories
// recoded to the training codes (see ml.Align).
func (m *Model) Align(ds *ml.Dataset) (*ml.Dataset, error) { return ml.Align(ds, m.Features) }

// LoadOptions returns the options that read a data file to predict on:
// exactly the model's features, with its kinds (a text value in a numeric
// feature is an error naming its row; integer categories are read as
// categories), and the numeric values as doubles (LoadOptions.Float64), so
// that tree models compare what their library would.
func (m *Model) LoadOptions() ml.LoadOptions {
	opts := ml.LoadOptions{Float64: true}
	for _, f := range m.Features {
		opts.Features = append(opts.Features, f.Name)
		switch {
		case f.Kind == ml.Numeric:
			opts.Numeric = append(opts.Numeric, f.Name)
		case f.Categories != nil:
			opts.Categorical = append(opts.Categorical, f.Name)
		}
	}
	return opts
}

// Validate checks a model's envelope and body for consistency.
func (m *Model) Validate() error {
	switch m.Task {
	case TaskRegression, TaskBinary, TaskMulticlass, TaskLambdarank:
	default:
		return fmt.Errorf("%w: task %q: want regression, binary, multiclass or lambdarank", ErrCorrupt, m.Task)
	}
	if m.Body == nil {
		return fmt.Errorf("%w: no model body", ErrCorrupt)
	}
	seen := map[string]bool{}
	for _, f := range m.Features {
		if f.Name == "" || seen[f.Name] {
			return fmt.Errorf("%w: feature name %q empty or repeated", ErrCorrupt, f.Name)
		}
		seen[f.Name] = true
		if f.Kind != ml.Numeric && f.Kind != ml.Categorical || f.Kind == ml.Numeric && f.Categories != nil {
			return fmt.Errorf("%w: feature %q: kind %v with %d categories", ErrCorrupt, f.Name, f.Kind, len(f.Categories))
		}
	}
	if m.Preprocessing != nil {
		if err := m.Preprocessing.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		for _, in := range m.Preprocessing.Inputs {
			if !seen[in.Name] {
				return fmt.Errorf("%w: preprocessing input %q is not a feature", ErrCorrupt, in.Name)
			}
		}
	}
	switch b := m.Body.(type) {
	case *linear.Model:
		if m.Algorithm != AlgorithmLinear {
			return fmt.Errorf("%w: algorithm %q with a linear model body", ErrCorrupt, m.Algorithm)
		}
		if b.Pre != m.Preprocessing {
			return fmt.Errorf("%w: the linear model's preprocessing is not the file's", ErrCorrupt)
		}
		if err := b.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if want := map[string]string{TaskRegression: linear.Regression, TaskBinary: linear.Binary, TaskMulticlass: linear.Multiclass}[m.Task]; want != b.Objective {
			return fmt.Errorf("%w: task %q with a linear %s model", ErrCorrupt, m.Task, b.Objective)
		}
	case *gbdt.Model:
		return validateGBDT(m, b)
	default:
		return fmt.Errorf("%w: algorithm %q with a %T body", ErrCorrupt, m.Algorithm, m.Body)
	}
	return nil
}

// NewLinear wraps a trained linear model, taking the features from the
// training dataset.
func NewLinear(task string, m *linear.Model, train *ml.Dataset) *Model {
	return &Model{Task: task, Algorithm: AlgorithmLinear, Features: ml.FeaturesOf(train), Preprocessing: m.Pre, Body: m}
}

// Marshal encodes the model in Atrium's format.
func (m *Model) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(m.Body)
	if err != nil {
		return nil, fmt.Errorf("encode model body: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(file{Format: FormatName, Version: FormatVersion, Model: *m, Body: body}); err != nil {
		return nil, fmt.Errorf("encode model: %w", err)
	}
	return buf.Bytes(), nil
}

// Save writes the model to path in Atrium's format, atomically: the file is
// written beside path and renamed over it, so a failed save leaves any
// previous file intact.
func (m *Model) Save(path string) error {
	data, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("save model %s: %w", path, err)
	}
	return WriteFileAtomic(path, data)
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it and
// renames it to path (see ml.WriteAtomic).
func WriteFileAtomic(path string, data []byte) error {
	err := ml.WriteAtomic(path, func(tmp string) error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Load reads a model file of any format Load knows, recognised by content.
func Load(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

// Parse reads a model from the content of a model file, of any format Load knows.
func Parse(data []byte) (*Model, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	for _, f := range formats {
		if f.sniff(trimmed) {
			m, err := f.parse(data)
			if err != nil {
				return nil, err
			}
			m.Source = f.name
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w: not an Atrium model (JSON with \"format\": %q), a LightGBM text model or an XGBoost JSON model", ErrUnknownFormat, FormatName)
}

// format is one model file format Parse recognises.
type format struct {
	name  string
	sniff func(trimmed []byte) bool // content with leading white space removed
	parse func(data []byte) (*Model, error)
}

// formats are tried in order; the other formats' files add theirs in init.
var formats = []format{{name: "atrium", sniff: isAtrium, parse: parseAtrium}}

// isAtrium reports a JSON object with a top-level "format" member: Atrium
// files always have one (written first, so that even a truncated file is
// recognised and reported as corrupt), other JSON models (XGBoost) do not.
func isAtrium(trimmed []byte) bool { return hasTopLevelKey(trimmed, "format") }

// hasTopLevelKey reports whether the JSON object in data has the member key
// before the first syntax error (data may be truncated).
func hasTopLevelKey(data []byte, key string) bool {
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the opening brace
		return false
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return false
		}
		if k == key {
			return true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}

func parseAtrium(data []byte) (*Model, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if f.Format != FormatName {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrUnknownFormat, f.Format, FormatName)
	}
	if f.Version < 1 || f.Version > FormatVersion {
		hint := ""
		if f.Version > FormatVersion {
			hint = ": the file was written by a newer atrium; upgrade to read it"
		}
		return nil, fmt.Errorf("%w: version %d, this atrium reads versions 1 to %d%s", ErrVersion, f.Version, FormatVersion, hint)
	}
	m := f.Model
	if len(f.Body) == 0 || string(f.Body) == "null" {
		return nil, fmt.Errorf("%w: no \"model\" member", ErrCorrupt)
	}
	var err error
	switch m.Algorithm {
	case AlgorithmLinear:
		var b linear.Model
		if err = json.Unmarshal(f.Body, &b); err == nil {
			b.Pre = m.Preprocessing
			m.Body = &b
		}
	case AlgorithmGBDT:
		m.Body, err = decodeGBDT(f.Body)
	default:
		err = fmt.Errorf("unknown algorithm, want %s or %s", AlgorithmLinear, AlgorithmGBDT)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s model: %v", ErrCorrupt, m.Algorithm, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}
