package fit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
)

func testdata(name string) string { return filepath.Join("testdata", name) }

// recorder is an ml.Progress that records its steps.
type recorder struct {
	steps []string // "<step> <unit> <total>: <units added>"
	open  bool
	added int
	fault string // a call out of order
}

func (r *recorder) Start(step, unit string, total int) {
	if r.open {
		r.fault = "Start inside a step"
	}
	r.open, r.added = true, 0
	r.steps = append(r.steps, fmt.Sprintf("%s %s %d", step, unit, total))
}

func (r *recorder) Add(n int) {
	if !r.open {
		r.fault = "Add outside a step"
	}
	r.added += n
}

func (r *recorder) Finish() {
	if !r.open {
		r.fault = "Finish outside a step"
	}
	r.open = false
	r.steps[len(r.steps)-1] += fmt.Sprintf(": %d", r.added)
}

// TestRunGBDT: a tree fit with validation data reports progress and metrics
// through the options' hooks, writes LightGBM text, and returns the model
// and its summary.
func TestRunGBDT(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.txt")
	var rec recorder
	var logged []int
	res, err := Run(context.Background(), Options{Data: testdata("train.csv"), Label: "y", Task: "binary", ValidFraction: 0.25, Seed: 3,
		Params: map[string]string{"num_iterations": "6", "min_data_in_leaf": "5"}, Out: out, LogEvery: 2, Progress: &rec,
		OnMetrics: func(iter int, m map[string]float64) {
			if _, ok := m["valid_binary_logloss"]; !ok {
				t.Errorf("iteration %d: metrics %v lack valid_binary_logloss", iter, m)
			}
			logged = append(logged, iter)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.fault != "" || rec.open {
		t.Errorf("progress calls out of order: %s (open %v)", rec.fault, rec.open)
	}
	if n := len(rec.steps); n < 1 || rec.steps[n-1] != "fit gbdt iterations 6: 6" {
		t.Errorf("progress steps %q, want the last to be 6 of 6 iterations", rec.steps)
	}
	if fmt.Sprint(logged) != "[2 4 6]" {
		t.Errorf("metrics at iterations %v, want [2 4 6]", logged)
	}
	s := res.Summary
	if s.Model != out || s.Format != "lightgbm" || s.Algorithm != "gbdt" || s.Rows != 90 || s.ValidRows != 30 ||
		s.Features != 3 || s.Categories != 1 || s.Iterations != 6 || s.Metrics["valid_binary_logloss"] <= 0 {
		t.Errorf("summary %+v", s)
	}
	m, err := modelfile.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != "lightgbm" || m.NumOutputs() != 1 || len(m.Features) != 3 {
		t.Errorf("written model: %s, %d outputs, features %+v", m.Source, m.NumOutputs(), m.Features)
	}
	tr := res.Model.Training
	if tr.Params["objective"] != "binary" || tr.Params["seed"] != "3" || tr.Rows != 90 || tr.ValidRows != 30 || tr.Label != "y" {
		t.Errorf("training metadata %+v", tr)
	}
}

// TestRunLinearWithoutOut: without Out the model is returned, not written;
// a linear fit reports its training objective and validation metrics.
func TestRunLinearWithoutOut(t *testing.T) {
	dir := t.TempDir()
	var lines int
	res, err := Run(context.Background(), Options{Data: testdata("train.csv"), Valid: testdata("train.csv"), Label: "y", Task: "binary",
		Algorithm: modelfile.AlgorithmLinear, Ignore: []string{"c"}, LogEvery: 1,
		OnMetrics: func(iter int, m map[string]float64) {
			if _, ok := m["train_objective"]; !ok || m["valid_auc"] == 0 {
				t.Errorf("iteration %d: metrics %v", iter, m)
			}
			lines++
		}})
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("wrote %v", entries)
	}
	s := res.Summary
	if s.Model != "" || s.Format != "" || s.Features != 2 || s.ValidRows != 120 || lines != s.Iterations ||
		s.Metrics["valid_auc"] <= 0.5 || s.Metrics["valid_binary_logloss"] <= 0 {
		t.Errorf("summary %+v after %d metric reports", s, lines)
	}
	// The model predicts on a file read with its own features.
	ds, err := ml.Load(context.Background(), testdata("train.csv"), ml.LoadOptions{Label: "y", Ignore: []string{"c"}})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := res.Model.Predict(ds); err != nil || len(p) != 120 {
		t.Errorf("predict: %d values, %v", len(p), err)
	}
}

// TestRunClasses: without num_class, the class count comes from the training
// and validation labels together; labels that give no usable count are
// ErrLabels errors naming the file and column.
func TestRunClasses(t *testing.T) {
	for _, algo := range []string{"gbdt", "linear"} {
		res, err := Run(context.Background(), Options{Data: testdata("multi_train.csv"), Valid: testdata("multi_valid.csv"), Label: "y",
			Task: "multiclass", Algorithm: algo})
		if err != nil {
			t.Fatalf("%s: %v", algo, err)
		}
		if res.Model.NumOutputs() != 3 {
			t.Errorf("%s: %d classes, want 3 (class 2 is only in validation)", algo, res.Model.NumOutputs())
		}
	}
	tests := []struct {
		data, label, want string
	}{
		{"zero_weights.csv", "w", testdata("zero_weights.csv") + `: task multiclass: every label of column "w" is 0; want at least two classes (or set num_class)`},
		{"class_big.csv", "y", testdata("class_big.csv") + `: task multiclass: the largest label of column "y" is 100000, more than 10000 classes`},
	}
	for _, tt := range tests {
		_, err := Run(context.Background(), Options{Data: testdata(tt.data), Label: tt.label, Task: "multiclass"})
		if !errors.Is(err, ErrLabels) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want ErrLabels and %q", tt.data, err, tt.want)
		}
	}
}

// TestRunErrors: the kinds of failure a caller tells apart with errors.Is.
func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.json")
	tests := []struct {
		name    string
		o       Options
		is      []error
		isNot   error
		message string
	}{
		{"early stopping without validation data", Options{Data: testdata("train.csv"), Label: "y", Task: "binary", Out: out,
			Params: map[string]string{"early_stopping_round": "3", "num_iterations": "3"}},
			[]error{ErrOptions, gbdt.ErrParams}, ml.ErrBadData, `"early_stopping_round": needs a validation set`},
		{"split that leaves no validation rows", Options{Data: testdata("multi_train.csv"), Label: "y", Task: "regression", Out: out,
			ValidFraction: 0.01}, []error{ErrOptions}, ml.ErrBadData, "valid_fraction 0.01 leaves"},
		{"stratified split of ranking data", Options{Data: testdata("multi_train.csv"), Label: "y", Group: "x", Task: "lambdarank", Out: out,
			ValidFraction: 0.5, Split: ml.SplitStratified}, []error{ErrOptions}, nil, "valid_fraction: "},
		{"bad label in a row", Options{Data: testdata("rel31.csv"), Label: "rel", Group: "q", Task: "lambdarank", Out: out},
			[]error{ml.ErrBadData}, ErrOptions, testdata("rel31.csv") + `: column "rel" row 2: label is 31, want a whole-number relevance 0..30`},
		{"missing file", Options{Data: testdata("no-such.csv"), Label: "y", Task: "binary", Out: out}, nil, ErrOptions, "no-such.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error %v, want one with %q", err, tt.message)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("error %v is not %v", err, target)
				}
			}
			if tt.isNot != nil && errors.Is(err, tt.isNot) {
				t.Errorf("error %v is %v", err, tt.isNot)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a failed fit left %s", out)
			}
		})
	}
}

// TestRunWarnsOfIDColumns: a text column with a category for most rows is
// reported to the logger passed in, naming the option that leaves it out.
func TestRunWarnsOfIDColumns(t *testing.T) {
	var buf bytes.Buffer
	_, err := Run(context.Background(), Options{Data: testdata("ids.csv"), Label: "y", Task: "binary", Params: map[string]string{"num_iterations": "2"},
		Logger: slog.New(slog.NewTextHandler(&buf, nil)), Name: func(key string) string { return "--" + key }})
	if err != nil {
		t.Fatal(err)
	}
	if log := buf.String(); !strings.Contains(log, "leave it out with --ignore") || !strings.Contains(log, "column=user categories=120 rows=120") {
		t.Errorf("log %q", log)
	}
}
