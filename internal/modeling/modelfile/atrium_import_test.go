package modelfile

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// TestLoadRecognisesFormats loads the models the real LightGBM and XGBoost
// wrote (testdata/gen/golden.py) through Load, which must tell the formats
// apart by content, and predicts on the golden rows read from CSV by name.
func TestLoadRecognisesFormats(t *testing.T) {
	tests := []struct {
		file, source, task string
		outputs            int
	}{
		{"lightgbm_binary.txt", "lightgbm", TaskBinary, 1},
		{"lightgbm_regression.txt", "lightgbm", TaskRegression, 1},
		{"lightgbm_multiclass.txt", "lightgbm", TaskMulticlass, 3},
		{"xgboost_binary.json", "xgboost", TaskBinary, 1},
		{"xgboost_binary.ubj", "xgboost", TaskBinary, 1},
		{"xgboost_multiclass.ubj", "xgboost", TaskMulticlass, 3},
		{"xgboost_regression.json", "xgboost", TaskRegression, 1},
		{"linear_multiclass.atrium.json", "atrium", TaskMulticlass, 3},
	}
	data, err := ml.Load(context.Background(), "testdata/golden_data.csv", ml.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		m, err := Load(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if m.Source != tt.source || m.Task != tt.task || m.NumOutputs() != tt.outputs {
			t.Errorf("%s: source %q task %q outputs %d", tt.file, m.Source, m.Task, m.NumOutputs())
		}
		if tt.source == "atrium" {
			continue
		}
		got, err := m.Predict(data)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		want := goldenPred(t, strings.TrimSuffix(strings.TrimSuffix(tt.file, ".txt"), filepath.Ext(tt.file)))
		if len(got) != len(want) {
			t.Fatalf("%s: %d predictions, want %d", tt.file, len(got), len(want))
		}
		for i := range got {
			// XGBoost sums in float32: equal to its rounding.
			if math.Abs(got[i]-want[i]) > 1e-6*math.Max(1, math.Abs(want[i])) {
				t.Errorf("%s row %d: %v, the peer's %v", tt.file, i, got[i], want[i])
				break
			}
		}
	}
	// JSON that is neither Atrium's nor XGBoost's, and UBJSON-looking bytes
	// that are not XGBoost's.
	for _, content := range []string{`{"weights": [1, 2]}`, "{i\x03abc}"} {
		if _, err := Parse([]byte(content)); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("Parse(%q) = %v, want ErrUnknownFormat", content, err)
		}
	}
	if _, err := Parse([]byte("tree\nversion=v4\nnum_class=x\n")); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "lightgbm model") {
		t.Errorf("bad LightGBM file: %v", err)
	}
	// Valid models of kinds Atrium does not predict with are unsupported, not
	// corrupt.
	lgbGood, err := os.ReadFile(filepath.Join("testdata", "lightgbm_binary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	xgbGood, err := os.ReadFile(filepath.Join("testdata", "xgboost_binary.json"))
	if err != nil {
		t.Fatal(err)
	}
	lg, xg := string(lgbGood), string(xgbGood)
	for _, tt := range []struct{ name, content, want string }{
		{"LightGBM version", strings.Replace(lg, "version=v4", "version=v9", 1), `version "v9", want v3 or v4`},
		{"LightGBM objective", strings.Replace(lg, "objective=binary sigmoid:1", "objective=quantile", 1), `objective "quantile" is not supported`},
		{"LightGBM linear tree", strings.Replace(lg, "is_linear=0", "is_linear=1", 1), "linear trees (is_linear=1) are not supported"},
		{"XGBoost objective", strings.Replace(xg, `"binary:logistic"`, `"reg:gamma"`, 1), `objective "reg:gamma" is not supported`},
		{"XGBoost version", strings.Replace(xg, `"version":[3,`, `"version":[9,`, 1), "XGBoost version [9"},
	} {
		_, err := Parse([]byte(tt.content))
		if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want ErrUnsupported (not ErrCorrupt) containing %q", tt.name, err, tt.want)
		}
	}
}

// trainTrees fits a small tree model on testdata/multiclass.csv, whose "hood"
// column holds text categories.
func trainTrees(t *testing.T) (*Model, *ml.Dataset) {
	t.Helper()
	ds, err := ml.Load(context.Background(), "testdata/multiclass.csv", ml.LoadOptions{Label: "y"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := gbdt.ParseParams(map[string]string{"objective": "multiclass", "num_class": "3", "num_iterations": "5",
		"num_leaves": "4", "min_data_in_leaf": "3", "min_data_per_group": "3", "cat_smooth": "1"})
	if err != nil {
		t.Fatal(err)
	}
	gm, err := gbdt.Train(context.Background(), ds, nil, p, gbdt.TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewGBDT(gm, ds)
	if err != nil {
		t.Fatal(err)
	}
	return m, ds
}

func TestTreeModelRoundTrips(t *testing.T) {
	m, ds := trainTrees(t)
	want, err := m.Predict(ds)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"m.json", "m.txt"} {
		path := filepath.Join(dir, name)
		save := m.Save
		if strings.HasSuffix(name, ".txt") {
			save = m.SaveLightGBM
		}
		if err := save(path); err != nil {
			t.Fatal(err)
		}
		back, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		// The category names survive both formats (LightGBM's in its
		// pandas_categorical line), so text categories map to the same codes.
		if !reflect.DeepEqual(back.Features, m.Features) {
			t.Errorf("%s: features %+v, want %+v", name, back.Features, m.Features)
		}
		got, err := back.Predict(ds)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(got, want); d > 1e-12 {
			t.Errorf("%s: predictions differ by %g after a round trip", name, d)
		}
	}
	text, _ := os.ReadFile(filepath.Join(dir, "m.txt"))
	if !strings.HasSuffix(string(text), "\npandas_categorical:[[\"east\",\"north\",\"south\"]]\n") {
		t.Errorf("LightGBM file ends %q", text[max(0, len(text)-80):])
	}
	// A tree body under a linear envelope, or with preprocessing, is corrupt.
	bad := *m
	bad.Algorithm = AlgorithmLinear
	if err := bad.Validate(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("tree body as linear: %v", err)
	}
	bad = *m
	bad.Task = TaskBinary
	if err := bad.Validate(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("multiclass trees as binary: %v", err)
	}
	lin, _ := trainLinear(t)
	if _, err := lin.MarshalLightGBM(); err == nil {
		t.Error("wrote a linear model as LightGBM text")
	}
}

func TestPandasCategorical(t *testing.T) {
	m := &Model{Features: []ml.Feature{{Name: "a", Kind: ml.Categorical}, {Name: "x"}, {Name: "b", Kind: ml.Categorical}}}
	line := "\npandas_categorical:[[\"x\", \"y\"], [3, 7.5, 12]]\n"
	if err := setPandasCategorical(m, []byte("tree\n...\n"+line)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Features[0].Categories, []string{"x", "y"}) || !reflect.DeepEqual(m.Features[2].Categories, []string{"3", "7.5", "12"}) {
		t.Errorf("categories %q %q", m.Features[0].Categories, m.Features[2].Categories)
	}
	// One list for two categorical features: which is which is unknown, so
	// both keep integer codes.
	m.Features[0].Categories, m.Features[2].Categories = nil, nil
	if err := setPandasCategorical(m, []byte("\npandas_categorical:[[\"x\"]]\n")); err != nil || m.Features[0].Categories != nil {
		t.Errorf("mismatched lists: %v, %q", err, m.Features[0].Categories)
	}
	if err := setPandasCategorical(m, []byte("\npandas_categorical:[[\"x\"], [{}]]\n")); err == nil {
		t.Error("an object category accepted")
	}
	if got := categoryList([]string{"1", "2.5"}); !reflect.DeepEqual(got, []float64{1, 2.5}) {
		t.Errorf("numeric categories written as %v", got)
	}
	if got := categoryList([]string{"1", "b"}); !reflect.DeepEqual(got, []string{"1", "b"}) {
		t.Errorf("mixed categories written as %v", got)
	}
}
