package modelfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// This file puts tree models of other formats (LightGBM text, XGBoost JSON and
// UBJSON; read by lightgbm.go and xgboost.go) into a Model, and writes a
// Model's trees as LightGBM text with its category names.

func init() {
	formats = append(formats,
		format{name: "lightgbm", sniff: IsLightGBMText, parse: importLightGBM},
		format{name: "xgboost", sniff: isXGBoost, parse: importXGBoost},
	)
}

// isXGBoost reports an XGBoost model: a JSON object with a "learner" member,
// or UBJSON (an object marker '{' followed by a length-typed key, not JSON)
// naming "learner" near the start.
func isXGBoost(trimmed []byte) bool {
	if hasTopLevelKey(trimmed, "learner") {
		return true
	}
	if len(trimmed) < 2 || trimmed[0] != '{' || bytes.ContainsAny(trimmed[1:2], "\" \t\r\n}") {
		return false
	}
	return bytes.Contains(trimmed[:min(len(trimmed), 256)], []byte("learner"))
}

func importLightGBM(data []byte) (*Model, error) {
	gm, err := ReadLightGBM(bytes.NewReader(data))
	if err != nil {
		return nil, importError(err)
	}
	m, err := NewGBDT(gm, nil)
	if err != nil {
		return nil, err
	}
	if err := setPandasCategorical(m, data); err != nil {
		return nil, fmt.Errorf("%w: lightgbm model: %v", ErrCorrupt, err)
	}
	return m, nil
}

func importXGBoost(data []byte) (*Model, error) {
	gm, err := ReadXGBoost(bytes.NewReader(data))
	if err != nil {
		return nil, importError(err)
	}
	return NewGBDT(gm, nil)
}

// importError wraps an error of ReadLightGBM or ReadXGBoost (which say which
// reader failed): a model this build does not support is ErrUnsupported,
// not a corrupt file.
func importError(err error) error {
	if errors.Is(err, ErrUnsupported) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}

// taskOf maps a tree objective to a task.
func taskOf(objective string) (string, error) {
	switch objective {
	case gbdt.ObjBinary:
		return TaskBinary, nil
	case gbdt.ObjRegression, gbdt.ObjRegressionL1, gbdt.ObjHuber:
		return TaskRegression, nil
	case gbdt.ObjMulticlass:
		return TaskMulticlass, nil
	case gbdt.ObjLambdarank:
		return TaskLambdarank, nil
	}
	return "", fmt.Errorf("%w: tree objective %q", ErrCorrupt, objective)
}

// NewGBDT wraps a tree model. train, when not nil, is the training dataset:
// its columns give the features' kinds and category names. Without it
// (models read from other formats) the features come from the model, and
// categorical features take the data's integer codes.
func NewGBDT(gm *gbdt.Model, train *ml.Dataset) (*Model, error) {
	task, err := taskOf(gm.Objective)
	if err != nil {
		return nil, err
	}
	m := &Model{Task: task, Algorithm: AlgorithmGBDT, Body: gm}
	if train != nil {
		m.Features = ml.FeaturesOf(train)
	} else {
		m.Features = make([]ml.Feature, len(gm.Features))
		for i, f := range gm.Features {
			m.Features[i] = ml.Feature{Name: f.Name, Kind: ml.Numeric}
			if f.Categorical {
				m.Features[i].Kind = ml.Categorical
			}
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// validateGBDT checks a tree body against the envelope.
func validateGBDT(m *Model, gm *gbdt.Model) error {
	if m.Algorithm != AlgorithmGBDT {
		return fmt.Errorf("%w: algorithm %q with a tree model body", ErrCorrupt, m.Algorithm)
	}
	if err := gm.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if task, err := taskOf(gm.Objective); err != nil || task != m.Task {
		return fmt.Errorf("%w: task %q with a %s tree model", ErrCorrupt, m.Task, gm.Objective)
	}
	if m.Preprocessing != nil {
		return fmt.Errorf("%w: preprocessing with a tree model", ErrCorrupt)
	}
	if len(gm.Features) != len(m.Features) {
		return fmt.Errorf("%w: %d features, the tree model has %d", ErrCorrupt, len(m.Features), len(gm.Features))
	}
	for i, f := range gm.Features {
		if f.Categorical != (m.Features[i].Kind == ml.Categorical) {
			return fmt.Errorf("%w: feature %q is %v, the tree model's is not", ErrCorrupt, m.Features[i].Name, m.Features[i].Kind)
		}
	}
	return nil
}

func decodeGBDT(body json.RawMessage) (Predictor, error) {
	var gm gbdt.Model
	if err := json.Unmarshal(body, &gm); err != nil {
		return nil, err
	}
	return &gm, nil
}

// MarshalLightGBM writes a tree model as LightGBM v4 text. The category
// names of categorical features go in LightGBM's pandas_categorical line, as
// the lightgbm Python package writes them for pandas category columns (and
// reads them back to code such columns): one list per categorical feature,
// of its categories in code order, numbers when they all are numbers.
func (m *Model) MarshalLightGBM() ([]byte, error) {
	gm, ok := m.Body.(*gbdt.Model)
	if !ok {
		return nil, fmt.Errorf("LightGBM text holds tree models, not %s models", m.Algorithm)
	}
	var buf bytes.Buffer
	if err := WriteLightGBM(&buf, gm); err != nil {
		return nil, err
	}
	var lists []any
	for _, f := range m.Features {
		if f.Kind != ml.Categorical {
			continue
		}
		if f.Categories == nil {
			return buf.Bytes(), nil // integer codes: nothing to name
		}
		lists = append(lists, categoryList(f.Categories))
	}
	if lists == nil {
		return buf.Bytes(), nil
	}
	names, err := json.Marshal(lists)
	if err != nil {
		return nil, err
	}
	out, ok := bytes.CutSuffix(buf.Bytes(), []byte("pandas_categorical:null\n"))
	if !ok {
		return nil, fmt.Errorf("write lightgbm model: no pandas_categorical line to fill")
	}
	return append(append(append(out, "pandas_categorical:"...), names...), '\n'), nil
}

// SaveLightGBM writes the model to path as LightGBM v4 text, atomically.
func (m *Model) SaveLightGBM(path string) error {
	data, err := m.MarshalLightGBM()
	if err != nil {
		return fmt.Errorf("save model %s: %w", path, err)
	}
	return WriteFileAtomic(path, data)
}

// categoryList is a list of categories for pandas_categorical: numbers when
// every category is one (an integer column read as categorical), else text.
func categoryList(cats []string) any {
	nums := make([]float64, len(cats))
	for i, c := range cats {
		x, err := strconv.ParseFloat(c, 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return cats
		}
		nums[i] = x
	}
	return nums
}

// setPandasCategorical names the categories of a LightGBM model's categorical
// features from its pandas_categorical line, when it has one (models written
// by Atrium or trained by the lightgbm Python package on pandas categories).
func setPandasCategorical(m *Model, data []byte) error {
	i := bytes.LastIndex(data, []byte("\npandas_categorical:"))
	if i < 0 {
		return nil
	}
	line, _, _ := bytes.Cut(data[i+len("\npandas_categorical:"):], []byte("\n"))
	var lists [][]any
	if err := json.Unmarshal(bytes.TrimSpace(line), &lists); err != nil {
		return fmt.Errorf("pandas_categorical: %v", err)
	}
	if lists == nil {
		return nil
	}
	var cat []int
	for j, f := range m.Features {
		if f.Kind == ml.Categorical {
			cat = append(cat, j)
		}
	}
	if len(lists) != len(cat) {
		// Some categorical features were integer columns declared with
		// categorical_feature, not pandas categories: which list belongs to
		// which feature is unknown, so keep integer codes for all.
		return nil
	}
	for k, list := range lists {
		names := make([]string, len(list))
		for c, v := range list {
			switch v := v.(type) {
			case string:
				names[c] = v
			case float64:
				names[c] = strconv.FormatFloat(v, 'f', -1, 64)
			case bool:
				names[c] = strconv.FormatBool(v)
			default:
				return fmt.Errorf("pandas_categorical: category %v of feature %q is not text or a number", v, m.Features[cat[k]].Name)
			}
		}
		m.Features[cat[k]].Categories = names
	}
	return nil
}
