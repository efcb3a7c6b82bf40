package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/fit"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/modeling/predict"
)

// writeRentals writes n rows of a small binary-classification data set: an
// id, two numeric features (one with gaps), a text category and the label.
func writeRentals(t *testing.T, dir, name string, n int, seed uint64) string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	b.WriteString("listing_id,rent,rooms,hood,booked\n")
	hoods := []string{"north", "south", "east"}
	for i := range n {
		rent := 800 + r.Float64()*1200
		rooms := fmt.Sprint(1 + r.IntN(4))
		if i%13 == 0 {
			rooms = ""
		}
		hood := r.IntN(3)
		p := 1 / (1 + math.Exp((rent-1400)/200-float64(hood)))
		booked := 0
		if r.Float64() < p {
			booked = 1
		}
		fmt.Fprintf(&b, "%d,%.2f,%s,%s,%d\n", 1000+i, rent, rooms, hoods[hood], booked)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFitPredictLinear(t *testing.T) {
	dir := t.TempDir()
	train := writeRentals(t, dir, "train.csv", 300, 1)
	valid := writeRentals(t, dir, "valid.csv", 100, 2)
	model := filepath.Join(dir, "model.json")
	code, out, errOut := atrium(t, "fit", "--data", train, "--valid", valid, "--label", "booked", "--ignore", "listing_id",
		"--task", "binary", "--algorithm", "linear", "--param", "lambda_l2=0.001", "--log-every", "5", "--out", model)
	if code != exitOK {
		t.Fatalf("fit: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"model       " + model + " (linear, binary, atrium format)", "rows        300 train, 100 valid", "features    3 (1 categorical)"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "[5]  train_objective: ") {
		t.Errorf("no metric line every 5 iterations:\n%s", errOut)
	}
	m, err := modelfile.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	if m.Training.Rows != 300 || m.Training.Data != train || m.Training.Params["lambda_l2"] != "0.001" || len(m.Features) != 3 {
		t.Errorf("training metadata %+v, features %v", m.Training, m.Features)
	}
	for _, ext := range []string{".csv", ".parquet"} {
		preds := filepath.Join(dir, "preds"+ext)
		code, out, errOut = atrium(t, "predict", "--model", model, "--data", valid, "--passthrough", "listing_id", "--out", preds)
		if code != exitOK || !strings.Contains(out, "wrote 100 predictions to "+preds) {
			t.Fatalf("predict: exit %d\n%s%s", code, out, errOut)
		}
		got, err := ml.LoadTable(context.Background(), preds, ml.LoadOptions{Passthrough: []string{"listing_id"}, Ignore: []string{"listing_id"}})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := ml.Load(context.Background(), valid, ml.LoadOptions{Label: "booked"})
		want, _ := m.Predict(data)
		p := got.Columns[got.ColumnIndex("prediction")].Values
		for i := range want {
			if math.Abs(float64(p[i])-want[i]) > 1e-6 {
				t.Fatalf("%s row %d: %v, model says %v", ext, i, p[i], want[i])
			}
		}
		if got.Passthrough[0].Value[0] != "1000" || got.Passthrough[0].Type != "BIGINT" {
			t.Errorf("%s: passthrough %+v", ext, got.Passthrough[0].Value[:3])
		}
	}
}

func TestFitValidFractionAndJSON(t *testing.T) {
	dir := t.TempDir()
	train := writeRentals(t, dir, "train.csv", 200, 3)
	model := filepath.Join(dir, "m.json")
	code, out, errOut := atrium(t, "--output", "json", "fit", "--data", train, "--label", "booked", "--ignore", "listing_id",
		"--task", "binary", "--algorithm", "linear", "--valid-fraction", "0.25", "--seed", "9", "--out", model)
	if code != exitOK {
		t.Fatalf("fit: exit %d\n%s", code, errOut)
	}
	var s fit.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out)
	}
	if s.Rows != 150 || s.ValidRows != 50 || s.Iterations == 0 || s.Format != "atrium" {
		t.Errorf("summary %+v", s)
	}
}

// TestPredictJSON: --output json gives predict's summary as JSON.
func TestPredictJSON(t *testing.T) {
	dir := t.TempDir()
	data := writeRentals(t, dir, "data.csv", 50, 6)
	model := filepath.Join(dir, "m.json")
	if code, _, errOut := atrium(t, "fit", "--data", data, "--label", "booked", "--ignore", "listing_id", "--task", "binary", "--algorithm", "linear", "--out", model); code != exitOK {
		t.Fatalf("fit: %s", errOut)
	}
	preds := filepath.Join(dir, "p.parquet")
	code, out, errOut := atrium(t, "--output", "json", "predict", "--model", model, "--data", data, "--out", preds)
	if code != exitOK {
		t.Fatalf("predict: exit %d\n%s", code, errOut)
	}
	var s predict.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out)
	}
	if s.Out != preds || s.Rows != 50 || s.Outputs != 1 {
		t.Errorf("summary %+v", s)
	}
}

func TestFitPredictErrors(t *testing.T) {
	dir := t.TempDir()
	train := writeRentals(t, dir, "train.csv", 60, 4)
	model := filepath.Join(dir, "model.json")
	if code, _, errOut := atrium(t, "fit", "--data", train, "--label", "booked", "--task", "binary", "--algorithm", "linear", "--out", model); code != exitOK {
		t.Fatalf("fit: %s", errOut)
	}
	good, _ := os.ReadFile(model)
	noRooms := filepath.Join(dir, "norooms.csv")
	os.WriteFile(noRooms, []byte("listing_id,rent,hood\n1,900,north\n"), 0o644)
	wordy := filepath.Join(dir, "wordy.csv")
	os.WriteFile(wordy, []byte("listing_id,rent,rooms,hood\n1,900,2,north\n2,cheap,3,south\n"), 0o644)
	notModel := filepath.Join(dir, "notes.txt")
	os.WriteFile(notModel, []byte("hello"), 0o644)
	out := filepath.Join(dir, "p.csv")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing flags", []string{"fit", "--data", train}, exitUsage, "missing required flag(s): --label, --task, --out"},
		{"bad task", []string{"fit", "--data", train, "--label", "booked", "--task", "survival", "--out", model}, exitUsage, `--task "survival"`},
		{"linear ranking", []string{"fit", "--data", train, "--label", "booked", "--group", "hood", "--task", "lambdarank", "--algorithm", "linear", "--out", model}, exitUsage, "linear models do not rank"},
		{"linear as lightgbm", []string{"fit", "--data", train, "--label", "booked", "--task", "binary", "--algorithm", "linear", "--out", "m.txt"}, exitUsage, "LightGBM text holds tree models only"},
		{"bad param", []string{"fit", "--data", train, "--label", "booked", "--task", "binary", "--algorithm", "linear", "--param", "lambda_l2", "--out", model}, exitUsage, `--param "lambda_l2": want key=value`},
		{"unknown param", []string{"fit", "--data", train, "--label", "booked", "--task", "binary", "--algorithm", "linear", "--param", "num_leaves=3", "--out", model}, exitUsage, `unknown parameter "num_leaves"`},
		{"missing label column", []string{"fit", "--data", train, "--label", "price", "--task", "binary", "--algorithm", "linear", "--out", model}, exitFailure, train + `: column "price": label column not found`},
		{"binary label not 0/1", []string{"fit", "--data", train, "--label", "rent", "--task", "binary", "--algorithm", "linear", "--out", model}, exitFailure, "want 0 or 1"},
		{"missing feature at predict", []string{"predict", "--model", model, "--data", noRooms, "--out", out}, exitFailure, noRooms + `: column "rooms": feature column not found`},
		{"text in numeric feature", []string{"predict", "--model", model, "--data", wordy, "--out", out}, exitFailure, wordy + `: column "rent" row 2: value "cheap" is not a number`},
		{"not a model", []string{"predict", "--model", notModel, "--data", train, "--out", out}, exitFailure, "load model " + notModel + ": unknown model file format"},
	}
	for _, tt := range tests {
		code, _, errOut := atrium(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.name, code, errOut, tt.code, tt.want)
		}
	}
	// Failed fits left the model as it was, and failed predictions wrote nothing.
	now, _ := os.ReadFile(model)
	if string(now) != string(good) {
		t.Error("a failed fit changed the existing model file")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("failed predictions left %s", out)
	}
}

// TestFitTimeAndWeight: --time orders the rows and splits by it (the last
// rows validate), --weight weighs them; neither is a feature.
func TestFitTimeAndWeight(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("day,x,w,y\n")
	for i := range 100 {
		// Days run backwards in the file: the rows of days 80-99 come first.
		fmt.Fprintf(&b, "2026-01-%02d %02d:00:00,%d,%d,%d\n", 1+(99-i)/24, (99-i)%24, i%7, 1+i%3, (i%7)%2)
	}
	data := filepath.Join(dir, "t.csv")
	os.WriteFile(data, []byte(b.String()), 0o644)
	model := filepath.Join(dir, "m.json")
	code, out, errOut := atrium(t, "--output", "json", "fit", "--data", data, "--label", "y", "--time", "day", "--weight", "w",
		"--task", "binary", "--algorithm", "linear", "--valid-fraction", "0.2", "--out", model)
	if code != exitOK {
		t.Fatalf("fit: exit %d\n%s", code, errOut)
	}
	var s fit.Summary
	json.Unmarshal([]byte(out), &s)
	m, err := modelfile.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	if s.Features != 1 || s.Rows != 80 || s.ValidRows != 20 || m.Training.Weight != "w" || m.Features[0].Name != "x" {
		t.Errorf("summary %+v, features %+v", s, m.Features)
	}
}
