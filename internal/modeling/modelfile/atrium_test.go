package modelfile

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/linear"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

var updateAtrium = flag.Bool("update-atrium", false, "rewrite the golden Atrium model files in testdata")

// trainLinear fits a multiclass linear model on testdata/multiclass.csv.
func trainLinear(t testing.TB) (*Model, *ml.Dataset) {
	t.Helper()
	ds, err := ml.Load(context.Background(), "testdata/multiclass.csv", ml.LoadOptions{Label: "y"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := linear.ParseParams(map[string]string{"objective": "multiclass", "lambda_l2": "0.01"})
	if err != nil {
		t.Fatal(err)
	}
	lm, err := linear.Train(context.Background(), ds, p, linear.TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := NewLinear(TaskMulticlass, lm, ds)
	m.Training = &Training{Params: p.Map(), Data: "multiclass.csv", Label: "y", Rows: ds.NumRows(), Iterations: lm.Iterations,
		Metrics: map[string]float64{"train_multi_logloss": 0.9}, Seed: 1,
		StartedAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), Seconds: 0.25, Atrium: "test"}
	return m, ds
}

// TestGolden pins the Atrium format: the bytes a model is written as, and that
// the written file predicts what the model in memory does.
func TestGolden(t *testing.T) {
	m, ds := trainLinear(t)
	got, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/linear_multiclass.atrium.json"
	if *updateAtrium {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Marshal differs from %s (run go test -update-atrium after a deliberate format change, and bump FormatVersion if old readers would misread it)", golden)
	}
	loaded, err := Load(golden)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Source != "atrium" || loaded.Task != TaskMulticlass || loaded.Training.Rows != 60 || loaded.NumOutputs() != 3 {
		t.Errorf("loaded %+v", loaded)
	}
	before, _ := m.Predict(ds)
	after, err := loaded.Predict(ds)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Error("the loaded model predicts differently")
	}
	if got := loaded.OutputNames(); !reflect.DeepEqual(got, []string{"prediction_0", "prediction_1", "prediction_2"}) {
		t.Errorf("output names %v", got)
	}
}

func TestAlign(t *testing.T) {
	m, ds := trainLinear(t)
	want, _ := m.Predict(ds)
	// The same rows with the columns in another order, the label gone, an
	// extra column, and the hood categories coded differently.
	hood := ds.Columns[ds.ColumnIndex("hood")]
	recoded := make([]float32, len(hood.Values))
	for i, v := range hood.Values {
		recoded[i] = 2 - v // east,north,south -> codes of south,north,east
	}
	other := &ml.Dataset{Columns: []ml.Column{
		{Name: "id", Kind: ml.Numeric, Values: make([]float32, len(recoded))},
		{Name: "hood", Kind: ml.Categorical, Values: recoded, Categories: []string{"south", "north", "east"}},
	}}
	for _, name := range []string{"x4", "x3", "x2", "x1"} {
		other.Columns = append(other.Columns, ds.Columns[ds.ColumnIndex(name)])
	}
	got, err := m.Predict(other)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Error("reordered columns and recoded categories predict differently")
	}
	// Unseen categories become missing.
	other.Columns[1].Categories = []string{"west", "north", "up"}
	aligned, err := m.Align(other)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range aligned.Columns[ds.ColumnIndex("hood")].Values {
		if recoded[i] == 1 && v != 1 || recoded[i] != 1 && !math.IsNaN(float64(v)) {
			t.Fatalf("row %d: data code %v aligned to %v", i, recoded[i], v)
		}
	}
	// Integer categories given as numbers match their text.
	numeric := &Model{Features: []Feature{{Name: "store", Kind: ml.Categorical, Categories: []string{"3", "7", "12"}}}}
	a, err := numeric.Align(&ml.Dataset{Columns: []ml.Column{{Name: "store", Kind: ml.Numeric, Values: []float32{12, 3, 5, float32(math.NaN())}}}})
	if err != nil || !equalNaN(a.Columns[0].Values, []float32{2, 0, float32(math.NaN()), float32(math.NaN())}) {
		t.Errorf("numeric store codes aligned to %v (%v)", a.Columns[0].Values, err)
	}
	// Errors name the column.
	missing := &ml.Dataset{Columns: other.Columns[1:5]}
	if _, err := m.Predict(missing); !errors.Is(err, ml.ErrBadData) || !strings.Contains(err.Error(), `column "x1", a feature of the model, is missing`) {
		t.Errorf("missing column: %v", err)
	}
	text := &ml.Dataset{Columns: append([]ml.Column{{Name: "x1", Kind: ml.Categorical, Values: []float32{0}, Categories: []string{"a"}}}, other.Columns[1:5]...)}
	if _, err := m.Predict(text); !errors.Is(err, ml.ErrBadData) || !strings.Contains(err.Error(), `column "x1" holds text`) {
		t.Errorf("text column: %v", err)
	}
}

func equalNaN(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(float64(a[i])) && math.IsNaN(float64(b[i]))) {
			return false
		}
	}
	return true
}

func TestParseErrors(t *testing.T) {
	golden, err := os.ReadFile("testdata/linear_multiclass.atrium.json")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) string {
		if !bytes.Contains(golden, []byte(old)) {
			t.Fatalf("golden file lacks %q", old)
		}
		return strings.Replace(string(golden), old, new, 1)
	}
	tests := []struct {
		name, content string
		want          error
		msg           string
	}{
		{"empty", "", ErrUnknownFormat, "not an Atrium model"},
		{"text", "hello\n", ErrUnknownFormat, "not an Atrium model"},
		{"other json", `{"learner_model": 1}`, ErrUnknownFormat, ""},
		{"other format", `{"format": "onnx", "version": 1}`, ErrUnknownFormat, `format "onnx"`},
		{"newer version", edit(`"version":1`, `"version":2`), ErrVersion, "version 2, this atrium reads versions 1 to 1: the file was written by a newer atrium"},
		{"version zero", edit(`"version":1`, `"version":0`), ErrVersion, "version 0"},
		{"truncated", string(golden[:len(golden)/2]), ErrCorrupt, ""},
		{"unknown algorithm", edit(`"algorithm":"linear"`, `"algorithm":"svm"`), ErrCorrupt, `svm model: unknown algorithm, want linear or gbdt`},
		{"unknown task", edit(`"task":"multiclass"`, `"task":"survival"`), ErrCorrupt, `task "survival"`},
		{"task mismatch", edit(`"task":"multiclass"`, `"task":"binary"`), ErrCorrupt, `task "binary" with a linear multiclass model`},
		{"no body", edit(`"model":{`, `"other":{`), ErrCorrupt, `no "model" member`},
		{"bad kind", edit(`"kind":"numeric"`, `"kind":"ordinal"`), ErrCorrupt, `column kind "ordinal"`},
		{"bad scale", edit(`"scale":`, `"scale":-`), ErrCorrupt, "want a finite scale > 0"},
		{"short coefficients", edit(`"coef":[[`, `"coef":[[1,`), ErrCorrupt, "coefficient row has 8 values for 7 inputs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.content))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Parse() = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("missing file: %v", err)
	}
}

func TestSaveIsAtomic(t *testing.T) {
	m, _ := trainLinear(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.json")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	// An invalid model fails before touching the file.
	bad := *m
	bad.Task = "nonsense"
	if err := bad.Save(path); err == nil {
		t.Fatal("saved an invalid model")
	}
	// A directory that cannot take the temporary file: the save fails.
	if err := m.Save(filepath.Join(dir, "no-such-dir", "model.json")); err == nil {
		t.Fatal("saved into a missing directory")
	}
	now, _ := os.ReadFile(path)
	entries, _ := os.ReadDir(dir)
	if !bytes.Equal(good, now) || len(entries) != 1 {
		t.Errorf("after failed saves: file changed %v, directory has %d entries", !bytes.Equal(good, now), len(entries))
	}
}

// FuzzParse: no input makes Parse panic, and whatever it accepts survives a
// write and a read unchanged.
func FuzzParse(f *testing.F) {
	golden, err := os.ReadFile("testdata/linear_multiclass.atrium.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"format":"atrium-model","version":1,"task":"regression","algorithm":"linear","features":[{"name":"x","kind":"numeric"}],"preprocessing":{"inputs":[{"name":"x","kind":"numeric","fill":1,"center":1,"scale":2}],"unknown_category":"ignore"},"model":{"objective":"regression","num_class":1,"inputs":["x"],"coef":[[2]],"intercept":[1]}}`))
	f.Add([]byte(`{"format":"atrium-model","version":1}`))
	f.Add([]byte("tree\nversion=v4\n"))
	for _, name := range []string{"lightgbm_binary.txt", "xgboost_binary.json", "xgboost_multiclass.ubj", "atrium_binary.lightgbm.txt"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		// Predicting on data with the model's columns must not panic either.
		ds := &ml.Dataset{}
		for _, f := range m.Features {
			c := ml.Column{Name: f.Name, Kind: f.Kind, Values: []float32{0, 1, float32(math.NaN())}}
			if f.Kind == ml.Categorical {
				c.Categories = []string{"a", "b"}
			}
			ds.Columns = append(ds.Columns, c)
		}
		if pred, err := m.Predict(ds); err == nil && len(pred) != ds.NumRows()*m.NumOutputs() {
			t.Fatalf("%d predictions for %d rows and %d outputs", len(pred), ds.NumRows(), m.NumOutputs())
		}
		if m.Source != "atrium" {
			return // other formats' round trips are their readers' tests
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatalf("a parsed model does not marshal: %v", err)
		}
		m2, err := Parse(again)
		if err != nil {
			t.Fatalf("a marshalled model does not parse: %v", err)
		}
		third, _ := m2.Marshal()
		if !bytes.Equal(again, third) {
			t.Fatalf("round trip changed the model:\n%s\n%s", again, third)
		}
	})
}
