package modelfile

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile/modelfiletest"
	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// The installed LightGBM and XGBoost train fresh models and predict rows at,
// around and between every threshold and its float32 rounding
// (thresholds.py); Atrium, reading their files and the rows as `atrium
// predict` does, must choose the same leaves. The committed copy of these
// cases (internal/modeling/modelfile/testdata/thresholds) keeps the unit
// tests honest without Python; this run catches a newer library.
func TestThresholdParityFresh(t *testing.T) {
	py := interoptest.Python(t, "the model-file parity test")
	dir := t.TempDir()
	cmd := exec.Command(py, "thresholds.py", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("thresholds.py: %v\n%s", err, out)
	}
	for _, name := range modelfiletest.Cases(t, dir) {
		t.Run(name, func(t *testing.T) { modelfiletest.CheckCase(t, dir, name) })
	}
}

// trainFile trains Atrium's trees on a CSV file with label column y.
func trainFile(t *testing.T, path string, params map[string]string) (*ml.Dataset, *gbdt.Model, *modelfile.Model) {
	t.Helper()
	ds, err := ml.Load(context.Background(), path, ml.LoadOptions{Label: "y"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := gbdt.ParseParams(params)
	if err != nil {
		t.Fatal(err)
	}
	gm, err := gbdt.Train(context.Background(), ds, nil, p, gbdt.TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := modelfile.NewGBDT(gm, ds)
	if err != nil {
		t.Fatal(err)
	}
	return ds, gm, m
}

// around returns th, the doubles next to it, its float32 neighbours and a
// double between th and its float32 rounding.
func around(th float64) []float64 {
	f := float32(th)
	inf32 := float32(math.Inf(1))
	return []float64{th, math.Nextafter(th, math.Inf(1)), math.Nextafter(th, math.Inf(-1)), float64(f),
		float64(math.Nextafter32(f, inf32)), float64(math.Nextafter32(f, -inf32)), th + (float64(f)-th)/2}
}

// A model Atrium trains, written as LightGBM text, predicts in LightGBM what
// Atrium predicts from its own file and from that text, for rows at and
// around every threshold: Atrium's trees have LightGBM's semantics
// (doubles compared with double thresholds).
func TestAtriumThresholdsInLightGBM(t *testing.T) {
	py := interoptest.Python(t, "the model-file parity test")
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(9, 9))
	const n = 3000
	names := []string{"a", "b", "z", "y"}
	var train strings.Builder
	train.WriteString(strings.Join(names, ",") + "\n")
	for range n {
		a, b := r.NormFloat64(), r.NormFloat64()*5
		z := 0.0
		if r.Float64() < 0.6 {
			z = r.NormFloat64() * 1e-3
		}
		y := 0
		if a-b/5+z*500+r.NormFloat64()*0.5 > 0 {
			y = 1
		}
		as := strconv.FormatFloat(a, 'g', -1, 64)
		if r.Float64() < 0.1 {
			as = ""
		}
		train.WriteString(as + "," + strconv.FormatFloat(b, 'g', -1, 64) + "," + strconv.FormatFloat(z, 'g', -1, 64) + "," + strconv.Itoa(y) + "\n")
	}
	trainPath := filepath.Join(dir, "train.csv")
	if err := os.WriteFile(trainPath, []byte(train.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, gm, m := trainFile(t, trainPath, map[string]string{"objective": "binary", "num_iterations": "8", "num_leaves": "8"})
	own, text := filepath.Join(dir, "model.json"), filepath.Join(dir, "model.txt")
	if err := m.Save(own); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveLightGBM(text); err != nil {
		t.Fatal(err)
	}

	// Rows: a training row with one feature moved around each threshold.
	var rows strings.Builder
	rows.WriteString("a,b,z\n")
	count := 0
	for _, tr := range gm.Trees {
		for i, th := range tr.Threshold {
			if tr.IsCategorical(i) {
				continue
			}
			for _, v := range append(around(th), 0, 5e-36, -5e-36, 1e-35, -1e-35, math.NaN()) {
				row := make([]string, 3)
				base := r.IntN(n)
				for f := range row {
					x := float64(ds.Columns[f].Values[base])
					if f == tr.SplitFeature[i] {
						x = v
					}
					if x == x {
						row[f] = strconv.FormatFloat(x, 'g', -1, 64)
					}
				}
				rows.WriteString(strings.Join(row, ",") + "\n")
				count++
			}
		}
	}
	dataPath := filepath.Join(dir, "rows.csv")
	if err := os.WriteFile(dataPath, []byte(rows.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "predict_exact.py", text, dataPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("predict_exact.py: %v\n%s", err, stderr.String())
	}
	var lgb struct{ Raw []float64 }
	if err := json.Unmarshal(out, &lgb); err != nil {
		t.Fatal(err)
	}
	if len(lgb.Raw) != count {
		t.Fatalf("LightGBM made %d predictions for %d rows", len(lgb.Raw), count)
	}
	for _, path := range []string{own, text} {
		mf, err := modelfile.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		tab, err := ml.LoadTable(context.Background(), dataPath, mf.LoadOptions())
		if err != nil {
			t.Fatal(err)
		}
		got, err := mf.PredictRaw(tab.Dataset)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i := range got {
			if d := math.Abs(got[i] - lgb.Raw[i]); !(d <= modelfiletest.Tolerance*math.Max(1, math.Abs(lgb.Raw[i]))) {
				if bad < 5 {
					t.Errorf("%s, row %d: Atrium %v, LightGBM %v", filepath.Base(path), i+2, got[i], lgb.Raw[i])
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d rows differ from LightGBM", filepath.Base(path), bad, count)
		}
	}
}
