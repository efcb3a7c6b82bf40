// Package lightgbm_test checks Atrium's gradient-boosted trees against the
// real LightGBM Python package: models Atrium writes load in LightGBM and
// predict the same, models LightGBM writes predict the same in Atrium, and
// both train models of the same quality on the same data.
package lightgbm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

type interopCase struct {
	Name        string            `json:"name"`
	Params      map[string]string `json:"params"`
	Categorical []string          `json:"categorical"`
	Metric      string            `json:"metric"`
	NumClass    int               `json:"num_class"`
	// XGBoost also trains the case; Atrium reads its model back.
	XGBoost bool `json:"xgboost"`
	// Quality tolerance: |atrium - lightgbm| on the metric.
	Tolerance float64 `json:"-"`
	// Exact: on data without missing values, Atrium and LightGBM grow the
	// same trees, so their predictions agree to 1e-9. (With missing values,
	// a split of rows without any sends them left in Atrium and wherever
	// LightGBM's rounding leans, so models differ on new data with gaps.)
	Exact bool `json:"-"`
	task  string
}

type caseResult struct {
	LoadMaxDiff    float64 `json:"load_max_diff"`
	AtriumMetric   float64 `json:"atrium_metric"`
	LightGBMMetric float64 `json:"lightgbm_metric"`
}

var cases = []interopCase{
	{Name: "binary", task: "binary", Metric: "auc", Tolerance: 0.01, XGBoost: true,
		Params: map[string]string{"objective": "binary", "num_iterations": "50", "num_leaves": "15"}},
	{Name: "binary_bagging", task: "binary", Metric: "auc", Tolerance: 0.01,
		Params: map[string]string{"objective": "binary", "num_iterations": "50", "bagging_fraction": "0.7", "bagging_freq": "1", "feature_fraction": "0.8", "lambda_l2": "1"}},
	{Name: "regression", task: "regression", Metric: "l2", Tolerance: 0.05, XGBoost: true,
		Params: map[string]string{"objective": "regression", "num_iterations": "50"}},
	{Name: "regression_l1", task: "regression", Metric: "l1", Tolerance: 0.05,
		Params: map[string]string{"objective": "regression_l1", "num_iterations": "50"}},
	{Name: "huber", task: "regression", Metric: "l2", Tolerance: 0.05,
		Params: map[string]string{"objective": "huber", "alpha": "2", "num_iterations": "50"}},
	{Name: "multiclass", task: "multiclass", Metric: "multi_logloss", NumClass: 3, Tolerance: 0.02, XGBoost: true,
		Params: map[string]string{"objective": "multiclass", "num_class": "3", "num_iterations": "40"}},
	{Name: "lambdarank", task: "lambdarank", Metric: "ndcg@10", Tolerance: 0.01,
		Params: map[string]string{"objective": "lambdarank", "num_iterations": "40", "min_data_in_leaf": "10"}},
	// Parameters whose handling once made the trees differ from LightGBM's:
	// L1 and min_gain_to_split (a feature without a valid split in a leaf is
	// not looked at again below it), class weights (not in the initial score).
	{Name: "binary_l1_exact", task: "binary", Metric: "auc", Tolerance: 1e-9, Exact: true,
		Params: map[string]string{"objective": "binary", "num_iterations": "30", "num_leaves": "15", "lambda_l1": "2", "min_gain_to_split": "0.5"}},
	{Name: "binary_class_weights_exact", task: "binary", Metric: "auc", Tolerance: 1e-9, Exact: true,
		Params: map[string]string{"objective": "binary", "num_iterations": "20", "scale_pos_weight": "3"}},
	{Name: "binary_unbalanced_exact", task: "binary", Metric: "auc", Tolerance: 1e-9, Exact: true,
		Params: map[string]string{"objective": "binary", "num_iterations": "20", "is_unbalance": "true"}},
}

// fillMissing replaces missing values by 0 (numeric) or category 0.
func fillMissing(ds *ml.Dataset) {
	for _, c := range ds.Columns {
		for i, v := range c.Values {
			if v != v {
				c.Values[i] = 0
			}
		}
	}
}

func writeCSV(t *testing.T, path string, ds *ml.Dataset) {
	t.Helper()
	var b strings.Builder
	for _, c := range ds.Columns {
		b.WriteString(c.Name + ",")
	}
	b.WriteString("label\n")
	for r := 0; r < ds.NumRows(); r++ {
		for _, c := range ds.Columns {
			if v := c.Values[r]; v == v {
				b.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 32))
			}
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(ds.Label[r], 'g', -1, 64) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if ds.Groups != nil {
		var q strings.Builder
		for _, g := range ds.Groups {
			fmt.Fprintf(&q, "%d\n", g)
		}
		if err := os.WriteFile(strings.TrimSuffix(path, ".csv")+".query", []byte(q.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFloats(t *testing.T, path string, v []float64) {
	t.Helper()
	var b strings.Builder
	for _, f := range v {
		b.WriteString(strconv.FormatFloat(f, 'g', -1, 64) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFloats(t *testing.T, path string) []float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, f := range strings.Fields(string(b)) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	return out
}

func maxAbsDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

func TestLightGBMInterop(t *testing.T) {
	py := interoptest.Python(t, "the LightGBM interop test")
	dir := t.TempDir()
	valid := map[string]*ml.Dataset{}
	ours := map[string][]float64{}
	for i, c := range cases {
		train := gbdttest.Synth(c.task, 3000, uint64(10+i))
		va := gbdttest.Synth(c.task, 1500, uint64(100+i))
		if c.Exact {
			fillMissing(train)
			fillMissing(va)
		}
		valid[c.Name] = va
		for _, col := range train.Columns {
			if col.Kind == ml.Categorical {
				cases[i].Categorical = append(cases[i].Categorical, col.Name)
			}
		}
		p, err := gbdt.ParseParams(c.Params)
		if err != nil {
			t.Fatal(err)
		}
		m, err := gbdt.Train(context.Background(), train, nil, p, gbdt.TrainOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		pred, err := m.Predict(va)
		if err != nil {
			t.Fatal(err)
		}
		ours[c.Name] = pred
		writeCSV(t, filepath.Join(dir, c.Name+".train.csv"), train)
		writeCSV(t, filepath.Join(dir, c.Name+".valid.csv"), va)
		writeFloats(t, filepath.Join(dir, c.Name+".atrium.pred"), pred)
		var buf bytes.Buffer
		if err := modelfile.WriteLightGBM(&buf, m); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.Name+".atrium.txt"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	js, _ := json.Marshal(cases)
	if err := os.WriteFile(filepath.Join(dir, "cases.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "interop.py", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("interop.py: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var results map[string]json.RawMessage
	if err := json.Unmarshal(b, &results); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			var r caseResult
			if err := json.Unmarshal(results[c.Name], &r); err != nil {
				t.Fatal(err)
			}
			// 1. Atrium's model file, loaded by LightGBM, predicts the same.
			if r.LoadMaxDiff > 1e-6 {
				t.Errorf("LightGBM predicting with Atrium's model differs by up to %g, want <= 1e-6", r.LoadMaxDiff)
			}
			// 2. LightGBM's model file, read by Atrium, predicts the same.
			f, err := os.Open(filepath.Join(dir, c.Name+".lightgbm.txt"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m, err := modelfile.ReadLightGBM(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Predict(valid[c.Name])
			if err != nil {
				t.Fatal(err)
			}
			want := readFloats(t, filepath.Join(dir, c.Name+".lightgbm.pred"))
			if len(got) != len(want) {
				t.Fatalf("%d predictions, LightGBM made %d", len(got), len(want))
			}
			maxDiff := maxAbsDiff(got, want)
			if maxDiff > 1e-6 {
				t.Errorf("Atrium predicting with LightGBM's model differs by up to %g, want <= 1e-6", maxDiff)
			}
			// 3. TreeSHAP contributions equal LightGBM's pred_contrib.
			phi, err := m.Contributions(valid[c.Name])
			if err != nil {
				t.Fatal(err)
			}
			wantPhi := readFloats(t, filepath.Join(dir, c.Name+".lightgbm.contrib"))
			if len(phi) != len(wantPhi) {
				t.Fatalf("%d contributions, LightGBM made %d", len(phi), len(wantPhi))
			}
			phiDiff := maxAbsDiff(phi, wantPhi)
			if phiDiff > 1e-6 {
				t.Errorf("SHAP contributions differ from LightGBM's pred_contrib by up to %g", phiDiff)
			}
			// 4. XGBoost's models (JSON and UBJSON) predict the same in Atrium,
			// to float32 rounding (XGBoost sums in float32).
			if c.XGBoost {
				want := readFloats(t, filepath.Join(dir, c.Name+".xgboost.pred"))
				for _, ext := range []string{".json", ".ubj"} {
					f, err := os.Open(filepath.Join(dir, c.Name+".xgboost"+ext))
					if err != nil {
						t.Fatal(err)
					}
					xm, err := modelfile.ReadXGBoost(f)
					f.Close()
					if err != nil {
						t.Fatalf("xgboost%s: %v", ext, err)
					}
					got, err := xm.Predict(valid[c.Name])
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != len(want) {
						t.Fatalf("xgboost%s: %d predictions, XGBoost made %d", ext, len(got), len(want))
					}
					for i := range got {
						if d := math.Abs(got[i] - want[i]); d > 1e-6*math.Max(1, math.Abs(want[i])) {
							t.Errorf("xgboost%s: prediction %d is %v, XGBoost's %v", ext, i, got[i], want[i])
							break
						}
					}
				}
			}
			// 5. Same parameters, same data without gaps: the same model.
			if c.Exact {
				if d := maxAbsDiff(ours[c.Name], want); d > 1e-9 {
					t.Errorf("Atrium's and LightGBM's models trained on the same data predict up to %g apart, want <= 1e-9", d)
				}
			}
			// 6. Same parameters, same data: models of the same quality.
			t.Logf("%s: atrium %.5f, lightgbm %.5f; cross-load diffs %.2g, %.2g; SHAP diff %.2g", c.Metric, r.AtriumMetric, r.LightGBMMetric, r.LoadMaxDiff, maxDiff, phiDiff)
			d := math.Abs(r.AtriumMetric - r.LightGBMMetric)
			if c.Metric == "l2" || c.Metric == "l1" || c.Metric == "multi_logloss" {
				d /= r.LightGBMMetric
			}
			if d > c.Tolerance {
				t.Errorf("%s: atrium %.5f, lightgbm %.5f: differ by %.4f, want <= %g", c.Metric, r.AtriumMetric, r.LightGBMMetric, d, c.Tolerance)
			}
		})
	}
}
