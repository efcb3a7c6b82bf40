package train

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/tracking"
)

// TestCrossValidate checks a k-fold trial's value and iteration count
// against mean curves computed by hand: lgb.cv's mean curve over the
// iterations every fold reached, early stopping applied to it by the
// folds' rule, not the mean of each fold's own best.
func TestCrossValidate(t *testing.T) {
	curves := func(cs ...[]float64) []*fitResult {
		var out []*fitResult
		for _, c := range cs {
			out = append(out, &fitResult{curve: c})
		}
		return out
	}
	// Higher is better. The folds' own bests are 0.8 and 0.72 (their mean,
	// 0.76, is what a mean of per-fold bests gives); the mean curve is
	// [0.55 0.68 0.71 0.70 0.69 0.75], its best 0.75 at 6.
	a, b := []float64{0.6, 0.7, 0.7, 0.7, 0.7, 0.8}, []float64{0.5, 0.66, 0.72, 0.7, 0.68, 0.7}
	mean := []float64{0.55, 0.68, 0.71, 0.70, 0.69, 0.75}
	for _, c := range []struct {
		name      string
		folds     []*fitResult
		rounds    int
		minDelta  float64
		higher    bool
		wantCurve []float64
		wantIter  int
		wantValue float64
	}{
		{"no early stopping: the last iteration", curves(a, b), 0, 0, true, mean, 6, 0.75},
		{"stopped 2 after the best", curves(a, b), 2, 0, true, mean, 3, 0.71},
		{"patient enough for the late best", curves(a, b), 3, 0, true, mean, 6, 0.75},
		{"min_delta", curves(a, b), 3, 0.05, true, mean, 2, 0.68},
		// The second fold stopped early: the mean is over the first 4.
		{"over the shortest fold", curves(a, b[:4]), 10, 0, true, mean[:4], 3, 0.71},
		// Lower is better; a tie does not improve.
		{"minimize", curves([]float64{0.5, 0.4, 0.35, 0.37}, []float64{0.6, 0.45, 0.41, 0.39, 0.40}), 1, 0, false,
			[]float64{0.55, 0.425, 0.38, 0.38}, 3, 0.38},
		{"three folds", curves([]float64{0.3, 0.2, 0.1}, []float64{0.6, 0.3, 0.3}, []float64{0.3, 0.4, 0.2}), 5, 0, false,
			[]float64{0.4, 0.3, 0.2}, 3, 0.2},
		// Linear models log no curve: the mean of the values and iterations.
		{"no curves", []*fitResult{{value: 0.7, iterations: 10}, {value: 0.8, iterations: 13}}, 0, 0, true, nil, 12, 0.75},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := crossValidate(c.folds, c.rounds, c.minDelta, c.higher)
			if got.iterations != c.wantIter || math.Abs(got.value-c.wantValue) > 1e-12 || len(got.curve) != len(c.wantCurve) {
				t.Fatalf("iterations %d value %v curve %v, want %d %v %v", got.iterations, got.value, got.curve, c.wantIter, c.wantValue, c.wantCurve)
			}
			for i := range got.curve {
				if math.Abs(got.curve[i]-c.wantCurve[i]) > 1e-12 {
					t.Errorf("mean curve %v, want %v", got.curve, c.wantCurve)
					break
				}
			}
		})
	}
}

// TestRunKFoldCurves runs a k-fold study and reads its trials' runs: each
// logs the folds' mean curve, so its best_valid metric is that curve at its
// logged iteration count, the best of the curve up to there; the refit
// trains the best trial's count on every non-test row, and the result says
// there were k folds.
func TestRunKFoldCurves(t *testing.T) {
	ctx := context.Background()
	p := newProject(t)
	src := strings.NewReplacer("MARGIN", "0", "{by: time, valid: 5d, test: 5d}", "{kfold: 3, test: 0.2, seed: 2}",
		"trials: 6", "trials: 3", "pruner: median", "pruner: none", "early_stopping_round: 10", "early_stopping_round: 3").Replace(rankerSpec)
	res, err := p.run(t, p.spec(t, "ranker.yaml", src), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Folds != 3 || res.TrainRows != 4800-res.TestRows || res.ValidRows != res.TrainRows || res.TestRows == 0 {
		t.Errorf("folds %d, rows train %d valid %d test %d: want 3 folds of the %d non-test rows", res.Folds, res.TrainRows,
			res.ValidRows, res.TestRows, 4800-res.TestRows)
	}
	kids, _, err := p.stores.Tracking.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"1"},
		Filter: "tags.`mlflow.parentRunId` = '" + res.RunID + "' and tags.`atrium.trial.state` = 'complete'"})
	if err != nil || len(kids) == 0 {
		t.Fatalf("complete trial runs: %d (%v)", len(kids), err)
	}
	for _, k := range kids {
		var best, iters float64
		for _, m := range k.Data.Metrics {
			switch m.Key {
			case "best_valid_ndcg_at_5":
				best = float64(m.Value)
			case "iterations":
				iters = float64(m.Value)
			}
		}
		hist, _, err := p.stores.Tracking.GetMetricHistory(ctx, k.Info.RunID, "valid_ndcg_at_5", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		n := int(iters)
		if n < 1 || n > len(hist) || float64(hist[n-1].Value) != best || int(hist[n-1].Step) != n {
			t.Errorf("trial run %s: best_valid %v at %d iterations, its logged curve %v", k.Info.RunName, best, n, hist)
			continue
		}
		for _, h := range hist[:n-1] {
			if float64(h.Value) > best {
				t.Errorf("trial run %s: the curve has %v at %d, better than its best_valid %v at %d", k.Info.RunName, h.Value, h.Step, best, n)
			}
		}
		if number := tagValue(k.Data.Tags, TagTrialNumber); number == strconv.Itoa(res.BestTrial) && res.Iterations != n {
			t.Errorf("refit of %d iterations, the best trial's curve keeps %d", res.Iterations, n)
		}
	}
}

// TestRunThreads checks the thread budget: parallel trials share it, the
// refit (which runs alone) gets it whole and its params say so, and
// parallel is capped at it: with one thread, the trials of parallel: 2 run
// one at a time, on one thread each, as the dry run's plan says.
func TestRunThreads(t *testing.T) {
	ctx := context.Background()
	p := newProject(t)
	src := strings.NewReplacer("MARGIN", "0", "trials: 6", "trials: 4").Replace(rankerSpec)
	s := p.spec(t, "ranker.yaml", src)
	for _, c := range []struct {
		threads, trialThreads, refitThreads, parallel int
	}{
		{threads: 2, trialThreads: 1, refitThreads: 2, parallel: 2},
		{threads: 1, trialThreads: 1, refitThreads: 1, parallel: 1},
		{threads: 4, trialThreads: 2, refitThreads: 4, parallel: 2},
	} {
		t.Run(strconv.Itoa(c.threads), func(t *testing.T) {
			o := Options{Spec: s, Dir: p.dir, Features: p.feats, Engine: p.eng, Tracker: p.stores, Threads: c.threads}
			o.DryRun = true
			dry, err := Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if dry.Plan.Parallel != c.parallel {
				t.Errorf("plan: %d trials at a time, want %d", dry.Plan.Parallel, c.parallel)
			}
			o.DryRun = false
			res, err := Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			parent, err := p.stores.Tracking.GetRun(ctx, res.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if got := tagValue(parent.Data.Params, "num_threads"); got != strconv.Itoa(c.refitThreads) {
				t.Errorf("the refit model's num_threads %q, want %d", got, c.refitThreads)
			}
			kids, _, err := p.stores.Tracking.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{parent.Info.ExperimentID},
				Filter: "tags.`mlflow.parentRunId` = '" + res.RunID + "'", OrderBy: []string{"attributes.start_time ASC"}})
			if err != nil || len(kids) != 4 {
				t.Fatalf("%d trial runs (%v), want 4", len(kids), err)
			}
			overlap := false
			for i, k := range kids {
				if got := tagValue(k.Data.Params, "num_threads"); got != strconv.Itoa(c.trialThreads) {
					t.Errorf("trial run %s: num_threads %q, want %d", k.Info.RunName, got, c.trialThreads)
				}
				if i > 0 && (kids[i-1].Info.EndTime == nil || k.Info.StartTime < *kids[i-1].Info.EndTime) {
					overlap = true
				}
			}
			if overlap != (c.parallel > 1) {
				t.Errorf("trials ran at the same time: %v, want %v (parallel %d)", overlap, c.parallel > 1, c.parallel)
			}
		})
	}
}
