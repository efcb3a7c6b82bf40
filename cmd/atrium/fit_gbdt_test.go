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
)

func TestFitPredictGBDT(t *testing.T) {
	dir := t.TempDir()
	train := writeRentals(t, dir, "train.csv", 400, 5)
	model := filepath.Join(dir, "model.txt")
	code, out, errOut := atrium(t, "fit", "--data", train, "--label", "booked", "--ignore", "listing_id", "--task", "binary",
		"--valid-fraction", "0.25", "--param", "num_iterations=30", "--param", "num_leaves=7", "--log-every", "10", "--out", model)
	if code != exitOK {
		t.Fatalf("fit: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "(gbdt, binary, lightgbm format)") || !strings.Contains(out, "metrics     valid_binary_logloss=") {
		t.Errorf("summary:\n%s", out)
	}
	if strings.Count(errOut, "valid_binary_logloss: ") != 3 {
		t.Errorf("want a metric line at iterations 10, 20, 30:\n%s", errOut)
	}
	m, err := modelfile.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != "lightgbm" || m.Features[2].Name != "hood" || len(m.Features[2].Categories) != 3 {
		t.Errorf("loaded %s model with features %+v", m.Source, m.Features)
	}
	preds := filepath.Join(dir, "preds.csv")
	if code, _, errOut := atrium(t, "predict", "--model", model, "--data", train, "--out", preds); code != exitOK {
		t.Fatalf("predict: %s", errOut)
	}
	got, _ := ml.Load(context.Background(), preds, ml.LoadOptions{})
	data, _ := ml.Load(context.Background(), train, ml.LoadOptions{Label: "booked"})
	want, _ := m.Predict(data)
	for i, w := range want {
		if math.Abs(float64(got.Columns[0].Values[i])-w) > 1e-6 {
			t.Fatalf("row %d: %v, model says %v", i, got.Columns[0].Values[i], w)
		}
	}
	code, _, errOut = atrium(t, "fit", "--data", train, "--label", "booked", "--task", "binary", "--param", "objective=huber", "--out", model)
	if code != exitUsage || !strings.Contains(errOut, "objective huber does not fit --task binary") {
		t.Errorf("objective against task: exit %d, %s", code, errOut)
	}
	code, _, errOut = atrium(t, "fit", "--data", train, "--label", "booked", "--task", "binary", "--param", "num_leaves=1", "--out", model)
	if code != exitUsage || !strings.Contains(errOut, "num_leaves") {
		t.Errorf("bad tree parameter: exit %d, %s", code, errOut)
	}
}

// TestFitLambdarank ranks the rows of query groups; the data interleaves
// queries, which Load puts back together.
func TestFitLambdarank(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 7))
	var b strings.Builder
	b.WriteString("session,score,noise,relevance\n")
	for row := range 600 {
		q := row % 60
		score := r.Float64()
		rel := int(score * 4)
		fmt.Fprintf(&b, "s%d,%.4f,%.4f,%d\n", q, score, r.Float64(), rel)
	}
	data := filepath.Join(dir, "rank.csv")
	os.WriteFile(data, []byte(b.String()), 0o644)
	model := filepath.Join(dir, "rank.json")
	code, out, errOut := atrium(t, "--output", "json", "fit", "--data", data, "--label", "relevance", "--group", "session", "--task", "lambdarank",
		"--valid-fraction", "0.2", "--param", "num_iterations=20", "--param", "eval_at=3", "--param", "min_data_in_leaf=5", "--log-every", "0", "--out", model)
	if code != exitOK {
		t.Fatalf("fit: exit %d\n%s", code, errOut)
	}
	var s fit.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.ValidRows != 120 || s.Metrics["valid_ndcg@3"] < 0.9 {
		t.Errorf("summary %+v: want 12 of 60 sessions validating, with NDCG@3 > 0.9 on this easy data", s)
	}
}

// TestPredictPeerModels predicts with models the real LightGBM and XGBoost
// wrote, on their golden rows, through the CLI.
func TestPredictPeerModels(t *testing.T) {
	dir := t.TempDir()
	golden := "../../internal/modeling/modelfile/testdata/"
	for _, name := range []string{"lightgbm_multiclass.txt", "xgboost_binary.ubj"} {
		out := filepath.Join(dir, name+".parquet")
		if code, _, errOut := atrium(t, "predict", "--model", golden+name, "--data", golden+"golden_data.csv", "--out", out); code != exitOK {
			t.Fatalf("%s: %s", name, errOut)
		}
		got, err := ml.Load(context.Background(), out, ml.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(golden + strings.TrimSuffix(name, filepath.Ext(name)) + ".pred.json")
		var want struct{ Pred []float64 }
		json.Unmarshal(raw, &want)
		k := got.NumFeatures()
		if got.NumRows()*k != len(want.Pred) {
			t.Fatalf("%s: %d rows x %d outputs for %d predictions", name, got.NumRows(), k, len(want.Pred))
		}
		for i, w := range want.Pred {
			// float32 columns in the Parquet file, float32 sums in XGBoost.
			if v := float64(got.Columns[i%k].Values[i/k]); math.Abs(v-w) > 1e-6*math.Max(1, math.Abs(w)) {
				t.Fatalf("%s: prediction %d = %v, the peer's %v", name, i, v, w)
			}
		}
	}
}
