package gbdt

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

func mustParams(t testing.TB, kv map[string]string) Params {
	t.Helper()
	p, err := ParseParams(kv)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTrainBinaryLearns(t *testing.T) {
	train := gbdttest.Synth(ObjBinary, 4000, 1)
	valid := gbdttest.Synth(ObjBinary, 2000, 2)
	p := mustParams(t, map[string]string{"objective": "binary", "metric": "auc,binary_logloss", "num_iterations": "60"})
	var last []Eval
	m, err := Train(context.Background(), train, valid, p, TrainOptions{OnIteration: func(_ int, e []Eval) { last = e }})
	if err != nil {
		t.Fatal(err)
	}
	pred, err := m.Predict(valid)
	if err != nil {
		t.Fatal(err)
	}
	auc, err := ml.AUC(valid.Label, pred, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("valid AUC %.4f, evals %v, trees %d", auc, last, len(m.Trees))
	if auc < 0.8 {
		t.Errorf("AUC %.4f, want >= 0.8", auc)
	}
	if last[0].Name != "auc" || last[0].Value != auc {
		t.Errorf("last eval %v, want auc %v", last[0], auc)
	}
}

func trainOrFatal(t *testing.T, train, valid *ml.Dataset, kv map[string]string) *Model {
	t.Helper()
	m, err := Train(context.Background(), train, valid, mustParams(t, kv), TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func modelJSON(t *testing.T, m *Model) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Training is deterministic for a seed, whatever the number of threads.
func TestTrainDeterministic(t *testing.T) {
	train := gbdttest.Synth(ObjBinary, 3000, 3)
	kv := map[string]string{"objective": "binary", "num_iterations": "20", "bagging_fraction": "0.7",
		"bagging_freq": "1", "feature_fraction": "0.7", "feature_fraction_bynode": "0.8", "seed": "11",
		"bin_construct_sample_cnt": "1000"}
	var first string
	for _, threads := range []string{"1", "2", "4", "1"} {
		kv["num_threads"] = threads
		m := trainOrFatal(t, train, nil, kv)
		m.Params = nil // records num_threads
		js := modelJSON(t, m)
		if first == "" {
			first = js
		} else if js != first {
			t.Fatalf("num_threads=%s trained a different model", threads)
		}
	}
	kv["seed"] = "12"
	if m := trainOrFatal(t, train, nil, kv); func() bool { m.Params = nil; return modelJSON(t, m) == first }() {
		t.Error("another seed trained the same model with bagging and feature fraction")
	}
}

// Every tree predicts one of its leaf values, so a model's raw output lies
// within the sums of its trees' smallest and largest leaves, for any input
// (NaN, infinities, unseen categories, huge values).
func TestPredictWithinLeafRange(t *testing.T) {
	for _, task := range []string{ObjBinary, ObjRegression, ObjMulticlass, ObjLambdarank} {
		kv := map[string]string{"objective": task, "num_iterations": "15"}
		if task == ObjMulticlass {
			kv["num_class"] = "3"
		}
		m := trainOrFatal(t, gbdttest.Synth(task, 2000, 5), nil, kv)
		probe := gbdttest.Synth(task, 500, 6)
		r := rand.New(rand.NewPCG(1, 2))
		specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e30, -1e30, 0, -1, 1e9}
		for c := range probe.Columns {
			for i := range probe.Columns[c].Values {
				if r.Float64() < 0.2 {
					probe.Columns[c].Values[i] = specials[r.IntN(len(specials))]
				}
			}
		}
		raw, err := m.PredictRaw(probe)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := m.leafRange()
		k := m.NumOutputs()
		for i, v := range raw {
			if v < lo[i%k]-1e-9 || v > hi[i%k]+1e-9 {
				t.Fatalf("%s: raw prediction %v outside [%v, %v]", task, v, lo[i%k], hi[i%k])
			}
		}
		// Tree by tree: the output is one of the tree's leaves.
		for ti := range m.Trees[:5] {
			single := &Model{Version: ModelVersion, Objective: ObjRegression, NumClass: 1, Features: m.Features, Trees: []Tree{m.Trees[ti]}}
			out, err := single.PredictRaw(probe)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range out {
				if !slices.Contains(m.Trees[ti].LeafValue, v) {
					t.Fatalf("%s tree %d predicted %v, not one of its leaf values", task, ti, v)
				}
			}
		}
	}
}

func TestEarlyStopping(t *testing.T) {
	train := gbdttest.Synth(ObjBinary, 2000, 7)
	valid := gbdttest.Synth(ObjBinary, 1000, 8)
	p := mustParams(t, map[string]string{"objective": "binary", "num_iterations": "300", "learning_rate": "0.5",
		"early_stopping_round": "5", "metric": "binary_logloss,auc", "first_metric_only": "true"})
	var seen []float64
	m, err := Train(context.Background(), train, valid, p, TrainOptions{OnIteration: func(it int, e []Eval) {
		if it != len(seen)+1 || len(e) != 2 {
			t.Fatalf("callback iteration %d with %d evals after %d calls", it, len(e), len(seen))
		}
		seen = append(seen, e[0].Value)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if m.BestIteration == 0 || len(seen) >= 300 {
		t.Fatalf("did not stop early: best %d after %d iterations", m.BestIteration, len(seen))
	}
	if len(seen) != m.BestIteration+5 {
		t.Errorf("stopped after %d iterations, want best (%d) + 5", len(seen), m.BestIteration)
	}
	if len(m.Trees) != m.BestIteration {
		t.Errorf("model keeps %d trees, want the best iteration's %d", len(m.Trees), m.BestIteration)
	}
	best := slices.Min(seen)
	if seen[m.BestIteration-1] != best {
		t.Errorf("best iteration %d has logloss %v, the minimum is %v", m.BestIteration, seen[m.BestIteration-1], best)
	}
	// The kept model scores the best iteration's value.
	prob, _ := m.Predict(valid)
	if ll := binaryLogloss(valid.Label, prob, nil); math.Abs(ll-best) > 1e-12 {
		t.Errorf("final model logloss %v, want %v", ll, best)
	}
}

// Missing values go to the better side: when NaN means "large", rows with
// NaN are predicted like rows with large values.
func TestMissingValuesRouted(t *testing.T) {
	n := 2000
	x := make([]float32, n)
	y := make([]float64, n)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range x {
		v := r.Float64()*2 - 1
		x[i] = float32(v)
		if v > 0.5 {
			y[i] = 1
		}
		if r.Float64() < 0.2 {
			x[i] = float32(math.NaN())
			y[i] = 1
		}
	}
	ds := &ml.Dataset{Columns: []ml.Column{{Name: "x", Values: x}}, Label: y}
	m := trainOrFatal(t, ds, nil, map[string]string{"objective": "binary", "num_iterations": "20"})
	probe := &ml.Dataset{Columns: []ml.Column{{Name: "x", Values: []float32{float32(math.NaN()), 0.9, -0.9}}}}
	p, _ := m.Predict(probe)
	if !(p[0] > 0.9 && p[1] > 0.9 && p[2] < 0.1) {
		t.Errorf("P(NaN), P(0.9), P(-0.9) = %v, want NaN routed with the large values", p)
	}
}

// Categorical splits group categories by their effect, in one split.
func TestCategoricalSplit(t *testing.T) {
	n := 3000
	c := make([]float32, n)
	y := make([]float64, n)
	good := map[int]bool{1: true, 4: true, 6: true, 9: true, 11: true}
	r := rand.New(rand.NewPCG(5, 6))
	for i := range c {
		k := r.IntN(12)
		c[i] = float32(k)
		if good[k] {
			y[i] = 1
		}
	}
	cats := make([]string, 12)
	ds := &ml.Dataset{Columns: []ml.Column{{Name: "c", Kind: ml.Categorical, Values: c, Categories: cats}}, Label: y}
	m := trainOrFatal(t, ds, nil, map[string]string{"objective": "binary", "num_iterations": "1", "num_leaves": "2", "min_data_per_group": "10"})
	tr := m.Trees[0]
	if tr.NumLeaves != 2 || !tr.IsCategorical(0) {
		t.Fatalf("first tree %+v, want one categorical split", tr)
	}
	var left []int
	for k := 0; k < 12; k++ {
		if tr.catIn(0, float64(k)) {
			left = append(left, k)
		}
	}
	if len(left) != 5 && len(left) != 7 {
		t.Errorf("categories going left %v, want the 5 good ones or the 7 others", left)
	}
	for _, k := range left {
		if good[k] != good[left[0]] {
			t.Errorf("categories going left %v mix good and bad", left)
		}
	}
}

func TestTrainBadInput(t *testing.T) {
	good := gbdttest.Synth(ObjBinary, 200, 1)
	multi := gbdttest.Synth(ObjMulticlass, 200, 1)
	tests := []struct {
		name         string
		train, valid *ml.Dataset
		kv           map[string]string
		want         string
	}{
		{"binary labels", gbdttest.Synth(ObjRegression, 200, 1), nil, map[string]string{"objective": "binary"}, "want 0 or 1 for binary"},
		{"class out of range", multi, nil, map[string]string{"objective": "multiclass", "num_class": "2"}, "want a class 0..1"},
		{"no groups", good, nil, map[string]string{"objective": "lambdarank"}, "lambdarank needs query groups"},
		{"no label", &ml.Dataset{Columns: good.Columns}, nil, map[string]string{"objective": "binary"}, "training data has no label"},
		{"valid columns", good, &ml.Dataset{Columns: good.Columns[:3], Label: good.Label}, map[string]string{"objective": "binary"}, "validation data has 3 feature columns"},
		{"early stopping without valid", good, nil, map[string]string{"objective": "binary", "early_stopping_round": "3"}, "needs a validation set"},
		{"metric for objective", good, good, map[string]string{"objective": "binary", "metric": "multi_logloss"}, "does not apply to objective binary"},
		{"binary label named by 1-based row", &ml.Dataset{Columns: []ml.Column{{Name: "x", Values: []float32{1, 2}}}, Label: []float64{0, 2}}, nil, map[string]string{"objective": "binary"}, "label of row 2 is 2"},
		{"weights sum to 0", &ml.Dataset{Columns: good.Columns, Label: good.Label, Weight: make([]float64, good.NumRows())}, nil, map[string]string{"objective": "binary"}, "the weights sum to 0"},
		{"short column", &ml.Dataset{Columns: []ml.Column{{Name: "x", Values: []float32{1}}}, Label: []float64{0, 1}}, nil, map[string]string{"objective": "binary"}, "label has 2 rows, want 1"},
	}
	for _, tc := range tests {
		_, err := Train(context.Background(), tc.train, tc.valid, mustParams(t, tc.kv), TrainOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, good, nil, mustParams(t, nil), TrainOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v, want context.Canceled", err)
	}
}

func TestPredictBadInput(t *testing.T) {
	m := trainOrFatal(t, gbdttest.Synth(ObjBinary, 300, 1), nil, map[string]string{"objective": "binary", "num_iterations": "3"})
	if _, err := m.Predict(&ml.Dataset{Columns: []ml.Column{{Name: "x", Values: []float32{1}}}}); err == nil || !errors.Is(err, ErrData) {
		t.Errorf("wrong column count: error %v, want ErrData", err)
	}
	bad := &Model{Version: ModelVersion, Objective: ObjRegression, NumClass: 1, Features: m.Features,
		Trees: []Tree{{NumLeaves: 2, SplitFeature: []int{0}, Threshold: []float64{0}, DecisionType: []uint8{0},
			LeftChild: []int{0}, RightChild: []int{-2}, LeafValue: []float64{1, 2}}}}
	if _, err := bad.Predict(gbdttest.Synth(ObjBinary, 3, 1)); err == nil || !errors.Is(err, ErrModel) {
		t.Errorf("cyclic tree: error %v, want ErrModel", err)
	}
}

// A model survives JSON: the decoded model predicts exactly the same.
func TestModelJSONRoundTrip(t *testing.T) {
	for _, task := range []string{ObjBinary, ObjMulticlass, ObjRegressionL1} {
		kv := map[string]string{"objective": task, "num_iterations": "10"}
		if task == ObjMulticlass {
			kv["num_class"] = "3"
		}
		m := trainOrFatal(t, gbdttest.Synth(task, 1000, 2), nil, kv)
		var back Model
		if err := json.Unmarshal([]byte(modelJSON(t, m)), &back); err != nil {
			t.Fatal(err)
		}
		probe := gbdttest.Synth(task, 300, 9)
		a, _ := m.Predict(probe)
		b, err := back.Predict(probe)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a, b) {
			t.Errorf("%s: decoded model predicts differently", task)
		}
		if back.NumOutputs() != m.NumOutputs() || len(a) != probe.NumRows()*m.NumOutputs() {
			t.Errorf("%s: %d outputs for %d rows x %d", task, len(a), probe.NumRows(), m.NumOutputs())
		}
	}
}

// The compiled predictor finds the same leaf as the tree's own decision
// rule, for every tree and row, NaN and extreme values included.
func TestPredictorMatchesTree(t *testing.T) {
	m := trainOrFatal(t, gbdttest.Synth(ObjRegression, 2000, 3), nil, map[string]string{"objective": "regression", "num_iterations": "20", "num_leaves": "40"})
	probe := gbdttest.Synth(ObjRegression, 301, 4)
	r := rand.New(rand.NewPCG(5, 5))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, -0}
	for c := range probe.Columns {
		for i := range probe.Columns[c].Values {
			if r.Float64() < 0.15 {
				probe.Columns[c].Values[i] = specials[r.IntN(len(specials))]
			}
		}
	}
	// Also hit thresholds exactly.
	for i := range m.Trees[0].Threshold {
		if !m.Trees[0].IsCategorical(i) {
			probe.Columns[m.Trees[0].SplitFeature[i]].Values[i] = float32(m.Trees[0].Threshold[i])
		}
	}
	raw, err := m.PredictRaw(probe)
	if err != nil {
		t.Fatal(err)
	}
	for row := 0; row < probe.NumRows(); row++ {
		var want float64
		for ti := range m.Trees {
			tr := &m.Trees[ti]
			want += tr.LeafValue[tr.leafFor(func(f int) float64 { return float64(probe.Columns[f].Values[row]) }, false)]
		}
		if raw[row] != want {
			t.Fatalf("row %d: predictor %v, trees %v", row, raw[row], want)
		}
	}
}

// Features with more than 256 bins take the uint16 path; categorical
// columns with hundreds of categories too.
func TestManyBins(t *testing.T) {
	n := 3000
	r := rand.New(rand.NewPCG(8, 8))
	x := make([]float32, n)
	c := make([]float32, n)
	y := make([]float64, n)
	cats := make([]string, 400)
	for i := range x {
		x[i] = float32(r.NormFloat64())
		k := r.IntN(400)
		c[i] = float32(k)
		y[i] = math.Sin(3*float64(x[i])) + float64(k%7)/3 + 0.1*r.NormFloat64()
	}
	ds := &ml.Dataset{Columns: []ml.Column{{Name: "x", Values: x}, {Name: "c", Kind: ml.Categorical, Values: c, Categories: cats}}, Label: y}
	kv := map[string]string{"objective": "regression", "max_bin": "1000", "num_iterations": "15", "min_data_per_group": "5", "cat_smooth": "1", "min_data_in_bin": "1"}
	m := trainOrFatal(t, ds, nil, kv)
	if !slices.ContainsFunc(m.Trees, func(tr Tree) bool { return tr.NumCat > 0 }) {
		t.Error("no categorical split on the 400-category column")
	}
	pred, _ := m.Predict(ds)
	mse, _ := ml.MSE(y, pred, nil)
	if mse > 0.1 {
		t.Errorf("training MSE %v with 1000 bins, want < 0.1", mse)
	}
	kv["num_threads"] = "1"
	a := trainOrFatal(t, ds, nil, kv)
	kv["num_threads"] = "3"
	b := trainOrFatal(t, ds, nil, kv)
	a.Params, b.Params = nil, nil
	if modelJSON(t, a) != modelJSON(t, b) {
		t.Error("uint16 bins: different models for different thread counts")
	}
}

// A row of weight 2 counts as two copies of the row (L2 regression; values
// with few distinct levels so that the bins do not depend on the copies).
func TestWeightsActAsCopies(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	n := 1500
	var x, xd []float32
	var y, yd, w []float64
	for i := 0; i < n; i++ {
		v := float32(r.IntN(20))
		label := float64(v)*0.5 + r.NormFloat64()
		copies := 1 + r.IntN(2)
		x = append(x, v)
		y = append(y, label)
		w = append(w, float64(copies))
		for k := 0; k < copies; k++ {
			xd = append(xd, v)
			yd = append(yd, label)
		}
	}
	kv := map[string]string{"objective": "regression", "num_iterations": "5", "min_data_in_leaf": "1", "min_data_in_bin": "1"}
	weighted := trainOrFatal(t, &ml.Dataset{Columns: []ml.Column{{Name: "x", Values: x}}, Label: y, Weight: w}, nil, kv)
	copied := trainOrFatal(t, &ml.Dataset{Columns: []ml.Column{{Name: "x", Values: xd}}, Label: yd}, nil, kv)
	probe := &ml.Dataset{Columns: []ml.Column{{Name: "x", Values: []float32{0, 3, 7, 11, 19}}}}
	a, _ := weighted.Predict(probe)
	b, _ := copied.Predict(probe)
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9 {
			t.Errorf("x=%v: weighted model %v, copied rows %v", probe.Columns[0].Values[i], a[i], b[i])
		}
	}
}

// TestEvalRankingWeighted: with row weights, ndcg and map on validation data
// are LightGBM's weighted values (queries weighed by their rows' mean
// weight), not the unweighted means.
func TestEvalRankingWeighted(t *testing.T) {
	train := gbdttest.Synth(ObjLambdarank, 600, 1)
	valid := gbdttest.Synth(ObjLambdarank, 300, 2)
	valid.Weight = make([]float64, valid.NumRows())
	for i := range valid.Weight {
		valid.Weight[i] = float64(1 + i%4)
	}
	var last []Eval
	m, err := Train(context.Background(), train, valid, mustParams(t, map[string]string{
		"objective": "lambdarank", "num_iterations": "3", "metric": "ndcg,map", "eval_at": "3"}),
		TrainOptions{OnIteration: func(_ int, evals []Eval) { last = evals }})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.PredictRaw(valid)
	if err != nil {
		t.Fatal(err)
	}
	ndcg, _ := ml.NDCGWeighted(valid.Label, raw, valid.Groups, 3, nil, valid.Weight)
	mapw, _ := ml.MAPWeighted(valid.Label, raw, valid.Groups, 3, valid.Weight)
	unweighted, _ := ml.NDCG(valid.Label, raw, valid.Groups, 3, nil)
	if ndcg == unweighted {
		t.Fatal("test data: weighted and unweighted NDCG coincide")
	}
	want := map[string]float64{"ndcg@3": ndcg, "map@3": mapw}
	if len(last) != 2 {
		t.Fatalf("evals %+v", last)
	}
	for _, e := range last {
		if math.Abs(e.Value-want[e.Name]) > 1e-12 {
			t.Errorf("%s = %v, want the weighted %v", e.Name, e.Value, want[e.Name])
		}
	}
}

// TestBinaryInitScoreIgnoresClassWeights: LightGBM's initial score is the
// log-odds of the (sample-weighted) share of positives; is_unbalance and
// scale_pos_weight reweigh the gradients only. (Counting them in the initial
// score made every prediction differ from LightGBM's on the same data.)
func TestBinaryInitScoreIgnoresClassWeights(t *testing.T) {
	label := []float64{1, 0, 0, 0, 1, 0, 0, 0, 0, 0} // 2 positives of 10
	weight := []float64{2, 1, 1, 1, 2, 1, 1, 1, 1, 1}
	for _, kv := range []map[string]string{
		{"objective": "binary"},
		{"objective": "binary", "scale_pos_weight": "3"},
		{"objective": "binary", "is_unbalance": "true"},
	} {
		p := mustParams(t, kv)
		if got, want := newBinaryObjective(&p, label, nil).boostFromScore(0), math.Log(2.0/8); math.Abs(got-want) > 1e-12 {
			t.Errorf("%v: initial score %v, want log(2/8) = %v", kv, got, want)
		}
		if got, want := newBinaryObjective(&p, label, weight).boostFromScore(0), math.Log(4.0/8); math.Abs(got-want) > 1e-12 {
			t.Errorf("%v, weighted: initial score %v, want log(4/8) = %v", kv, got, want)
		}
	}
}
