package ml

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

type parityCase struct {
	Name     string    `json:"name"`
	Metric   string    `json:"metric"`
	Want     float64   `json:"want"`
	Source   string    `json:"source"`
	Label    []float64 `json:"label"`
	Score    []float64 `json:"score"`
	Weight   []float64 `json:"weight"`
	Groups   []int     `json:"groups"`
	K        int       `json:"k"`
	NumClass int       `json:"num_class"`
}

func loadParity(t *testing.T, path string) []parityCase {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []parityCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.Cases) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	return f.Cases
}

func computeMetric(c parityCase) (float64, error) {
	switch c.Metric {
	case "auc":
		return AUC(c.Label, c.Score, c.Weight)
	case "logloss":
		return LogLoss(c.Label, c.Score, c.Weight)
	case "multi_logloss":
		return MultiLogLoss(c.Label, c.Score, c.NumClass, c.Weight)
	case "accuracy":
		return Accuracy(c.Label, c.Score, c.Weight)
	case "precision":
		return Precision(c.Label, c.Score, c.Weight)
	case "recall":
		return Recall(c.Label, c.Score, c.Weight)
	case "f1":
		return F1(c.Label, c.Score, c.Weight)
	case "mse":
		return MSE(c.Label, c.Score, c.Weight)
	case "rmse":
		return RMSE(c.Label, c.Score, c.Weight)
	case "mae":
		return MAE(c.Label, c.Score, c.Weight)
	case "r2":
		return R2(c.Label, c.Score, c.Weight)
	case "ndcg":
		return NDCGWeighted(c.Label, c.Score, c.Groups, c.K, nil, c.Weight)
	case "map":
		return MAPWeighted(c.Label, c.Score, c.Groups, c.K, c.Weight)
	case "mrr":
		return MRR(c.Label, c.Score, c.Groups)
	}
	return 0, errors.New("unknown metric " + c.Metric)
}

// TestMetricsParity checks every metric against values computed by
// scikit-learn and LightGBM (testdata/gen/metrics_parity.py) to 1e-9.
func TestMetricsParity(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range loadParity(t, filepath.Join("testdata", "metrics_parity.json")) {
		seen[c.Metric] = true
		got, err := computeMetric(c)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if math.Abs(got-c.Want) > 1e-9 {
			t.Errorf("%s (%s): got %.15g, want %.15g (%s)", c.Name, c.Metric, got, c.Want, c.Source)
		}
	}
	for _, m := range []string{"auc", "logloss", "multi_logloss", "accuracy", "precision", "recall", "f1", "mse", "rmse", "mae", "r2", "ndcg", "map", "mrr"} {
		if !seen[m] {
			t.Errorf("no parity case for %s", m)
		}
	}
}

// TestMetricsParityRegenerate reruns the generator with the real
// scikit-learn and LightGBM and checks the committed reference values.
func TestMetricsParityRegenerate(t *testing.T) {
	py := os.Getenv("ATRIUM_TEST_PYTHON")
	if py == "" {
		t.Skip("ATRIUM_TEST_PYTHON is unset (source .ci/python.sh): not regenerating metric references")
	}
	out := filepath.Join(t.TempDir(), "parity.json")
	cmd := exec.Command(py, filepath.Join("testdata", "gen", "metrics_parity.py"), out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	fresh := loadParity(t, out)
	committed := loadParity(t, filepath.Join("testdata", "metrics_parity.json"))
	if len(fresh) != len(committed) {
		t.Fatalf("generator made %d cases, testdata has %d: regenerate testdata/metrics_parity.json", len(fresh), len(committed))
	}
	for i := range fresh {
		if fresh[i].Name != committed[i].Name || math.Abs(fresh[i].Want-committed[i].Want) > 1e-12 {
			t.Errorf("case %d: generator says %s = %v, testdata %s = %v", i, fresh[i].Name, fresh[i].Want, committed[i].Name, committed[i].Want)
		}
	}
}

// TestAUCNaNScore: a NaN score ranks below every number, so the positive
// row scored NaN counts as ranked last (it used to hang the curve's walk).
func TestAUCNaNScore(t *testing.T) {
	v, err := AUC([]float64{1, 0, 1}, []float64{0.9, 0.1, math.NaN()}, nil)
	if err != nil || v != 0.5 {
		t.Fatalf("AUC with a NaN score = %v, %v; want 0.5", v, err)
	}
}

// TestAUCPathsAgree: unweighted AUC (exact counts over two sorted halves,
// sorted on two goroutines from parallelSortMin scores) equals the weighted
// walk with unit weights, ties included.
func TestAUCPathsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		rows   int
		levels float64 // 0: continuous scores
	}{{5000, 0}, {5000, 3}, {5000, 20}, {parallelSortMin + 1000, 0}, {parallelSortMin + 1000, 20}} {
		levels := c.levels
		label, score, ones := make([]float64, c.rows), make([]float64, c.rows), make([]float64, c.rows)
		for i := range label {
			score[i] = rng.NormFloat64()
			if levels > 0 {
				score[i] = math.Round(score[i] * levels)
			}
			if rng.Float64() < 1/(1+math.Exp(-score[i])) {
				label[i] = 1
			}
			ones[i] = 1
		}
		a, errA := AUC(label, score, nil)
		b, errB := AUC(label, score, ones)
		if errA != nil || errB != nil || math.Abs(a-b) > 1e-12 {
			t.Errorf("%d rows, levels %v: unweighted %v (%v), unit weights %v (%v)", c.rows, levels, a, errA, b, errB)
		}
	}
}

func TestMetricErrors(t *testing.T) {
	tests := []struct {
		name string
		fn   func() (float64, error)
		want string
	}{
		{"auc one class", func() (float64, error) { return AUC([]float64{1, 1}, []float64{0.2, 0.3}, nil) }, "one class"},
		{"auc lengths", func() (float64, error) { return AUC([]float64{1, 0}, []float64{0.2}, nil) }, "1 predictions for 2 labels"},
		{"weights", func() (float64, error) { return MSE([]float64{1, 0}, []float64{1, 0}, []float64{1}) }, "1 weights for 2 labels"},
		{"empty", func() (float64, error) { return MAE(nil, nil, nil) }, "no rows"},
		{"multiclass label", func() (float64, error) { return MultiLogLoss([]float64{3}, []float64{0.5, 0.5}, 2, nil) }, "want a class 0..1"},
		{"ndcg groups", func() (float64, error) { return NDCG([]float64{1, 0}, []float64{1, 0}, []int{1}, 3, nil) }, "cover 1 rows, want 2"},
		{"ndcg label", func() (float64, error) { return NDCG([]float64{1.5}, []float64{1}, []int{1}, 3, nil) }, "want a relevance"},
		{"map k", func() (float64, error) { return MAP([]float64{1}, []float64{1}, []int{1}, 0) }, "k=0"},
	}
	for _, tc := range tests {
		_, err := tc.fn()
		if err == nil || !errors.Is(err, ErrMetric) || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// TestNDCGConventions pins LightGBM's conventions on hand-checked queries.
func TestNDCGConventions(t *testing.T) {
	// Query 1: labels 0 0 (ideal DCG 0) scores 1. Query 2: relevance 2 ranked
	// second behind a 0: DCG = 3/log2(3), ideal = 3/log2(2) = 3.
	label := []float64{0, 0, 0, 2}
	score := []float64{1, 2, 5, 4}
	got, err := NDCG(label, score, []int{2, 2}, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := (1 + (3/math.Log2(3))/3) / 2
	if math.Abs(got-want) > 1e-15 {
		t.Errorf("NDCG = %v, want %v", got, want)
	}
	// Ties keep row order: both rows score 1, the relevant one second.
	got, _ = NDCG([]float64{0, 1}, []float64{1, 1}, []int{2}, 1, nil)
	if got != 0 {
		t.Errorf("NDCG@1 with a tie = %v, want 0 (row order breaks ties)", got)
	}
}
