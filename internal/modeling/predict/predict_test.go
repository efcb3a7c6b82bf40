package predict

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
)

func testdata(name string) string { return filepath.Join("testdata", name) }

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	flag := func(key string) string { return "--" + key }
	tests := []struct {
		name string
		o    Options
		want []string
	}{
		{"nothing set", Options{}, []string{"model is required", "data is required", "out is required"}},
		{"named as flags", Options{Name: flag}, []string{"--model is required\n--data is required\n--out is required"}},
		{"unknown output type", Options{Model: "m", Data: "d.csv", Out: filepath.Join(dir, "p.xlsx")},
			[]string{"out " + filepath.Join(dir, "p.xlsx") + ": unknown file type: want .csv, .tsv or .parquet"}},
		{"missing output directory", Options{Model: "m", Data: "d.csv", Out: filepath.Join(dir, "no", "p.csv"), Name: flag},
			[]string{"--out " + filepath.Join(dir, "no", "p.csv") + ": directory " + filepath.Join(dir, "no") + " does not exist"}},
	}
	for _, tt := range tests {
		err := tt.o.Validate()
		if !errors.Is(err, ErrOptions) {
			t.Errorf("%s: error %v, want ErrOptions", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tt.name, err, w)
			}
		}
	}
	if err := (&Options{Model: "m", Data: "d.csv", Out: filepath.Join(dir, "p.parquet")}).Validate(); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

// recorder is an ml.Progress that checks its calls come in order.
type recorder struct {
	steps []string
	rows  int
	open  bool
}

func (r *recorder) Start(step, _ string, _ int) { r.steps, r.open = append(r.steps, step), true }
func (r *recorder) Add(n int)                   { r.rows += n }
func (r *recorder) Finish()                     { r.open = false }

// TestRun: the output has the passthrough columns with their values, then
// the model's predictions on exactly its features (y and id are ignored).
func TestRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "p.csv")
	var rec recorder
	s, err := Run(context.Background(), Options{Model: testdata("binary.txt"), Data: testdata("data.csv"), Out: out,
		Passthrough: []string{"id"}, Progress: &rec})
	if err != nil {
		t.Fatal(err)
	}
	if s.Out != out || s.Rows != 120 || s.Outputs != 1 {
		t.Errorf("summary %+v", s)
	}
	if !slices.Equal(rec.steps, []string{"loading data.csv"}) || rec.rows != 120 || rec.open {
		t.Errorf("progress: steps %q, %d rows, open %v", rec.steps, rec.rows, rec.open)
	}
	got, err := ml.LoadTable(context.Background(), out, ml.LoadOptions{Passthrough: []string{"id"}, Ignore: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.NumFeatures() != 1 || got.Columns[0].Name != "prediction" || got.Passthrough[0].Value[119] != "r120" {
		t.Fatalf("output columns %q, passthrough %+v", got.Columns[0].Name, got.Passthrough)
	}
	m, err := modelfile.Load(testdata("binary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := ml.Load(context.Background(), testdata("data.csv"), ml.LoadOptions{Label: "y", Ignore: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Predict(ds)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if p := float64(got.Columns[0].Values[i]); math.Abs(p-w) > 1e-6 || w <= 0 || w >= 1 {
			t.Fatalf("row %d: %v, the model says %v", i+1, p, w)
		}
	}
	// Raw margins are the logits of the probabilities.
	raw := filepath.Join(t.TempDir(), "raw.parquet")
	if _, err := Run(context.Background(), Options{Model: testdata("binary.txt"), Data: testdata("data.csv"), Out: raw, Raw: true}); err != nil {
		t.Fatal(err)
	}
	margins, err := ml.Load(context.Background(), raw, ml.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if p := 1 / (1 + math.Exp(-float64(margins.Columns[0].Values[i]))); math.Abs(p-w) > 1e-5 {
			t.Fatalf("row %d: sigmoid(margin) %v, probability %v", i+1, p, w)
		}
	}
}

// TestRunMulticlassColumns: one output column per class.
func TestRunMulticlassColumns(t *testing.T) {
	golden := filepath.Join("..", "modelfile", "testdata")
	out := filepath.Join(t.TempDir(), "p.parquet")
	s, err := Run(context.Background(), Options{Model: filepath.Join(golden, "lightgbm_multiclass.txt"), Data: filepath.Join(golden, "golden_data.csv"), Out: out})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ml.Load(context.Background(), out, ml.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got.Columns {
		names = append(names, c.Name)
	}
	if s.Outputs != 3 || !slices.Equal(names, []string{"prediction_0", "prediction_1", "prediction_2"}) || got.NumRows() != s.Rows {
		t.Errorf("summary %+v, columns %q", s, names)
	}
}

// TestRunErrors: failures a caller tells apart, and none writes the output.
func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "p.csv")
	wordy := filepath.Join(dir, "wordy.csv")
	if err := os.WriteFile(wordy, []byte("x1,x2,c\n1,2,a\ncheap,3,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    Options
		is   error
		want string
	}{
		{"passthrough of an output column, before the data is read", Options{Model: testdata("binary.txt"), Data: testdata("no-such.csv"), Out: out,
			Passthrough: []string{"prediction"}, Name: func(k string) string { return "--" + k }},
			ErrOptions, `--passthrough prediction: the output already has a column "prediction"`},
		{"text in a numeric feature", Options{Model: testdata("binary.txt"), Data: wordy, Out: out}, ml.ErrBadData,
			wordy + `: column "x1" row 2: value "cheap" is not a number`},
		{"not a model", Options{Model: testdata("data.csv"), Data: testdata("data.csv"), Out: out}, nil, "unknown model file format"},
	}
	for _, tt := range tests {
		_, err := Run(context.Background(), tt.o)
		if err == nil || !strings.Contains(err.Error(), tt.want) || tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: error %v, want %v with %q", tt.name, err, tt.is, tt.want)
		}
		if tt.is != ErrOptions && errors.Is(err, ErrOptions) {
			t.Errorf("%s: error %v is ErrOptions", tt.name, err)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("failed predictions left %s", out)
	}
}
