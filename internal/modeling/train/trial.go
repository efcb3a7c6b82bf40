package train

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"sync"

	"github.com/atrium-ml/atrium/internal/modeling/fit"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/spec"
)

// errPruned is returned by a fit that the pruner stopped.
var errPruned = errors.New("trial pruned")

// trainer fits models of the spec on the splits of one training set.
type trainer struct {
	spec   *spec.Training
	ds     *ml.Dataset
	splits *Splits
	metric string
	// threads is a trial's share of the thread budget (the budget over the
	// trials run at once); budget is the whole, which the fits outside the
	// trials get (the refit, a best trial fitted again): nothing else runs
	// then.
	threads, budget int
	seed            uint64

	// setsOnce gathers sets: the train and valid rows of the holdout
	// split, or of each fold, as datasets kept for the whole study. Every
	// trial fits the same rows, so gathering them once saves a copy per
	// trial, and the same *ml.Dataset each time is what lets bins serve
	// every trial after the first.
	setsOnce sync.Once
	sets     [][2]*ml.Dataset
	bins     gbdt.BinCache
}

// set returns the train and valid datasets of the holdout split (i = 0)
// or of fold i.
func (tr *trainer) set(i int) (train, valid *ml.Dataset) {
	tr.setsOnce.Do(func() {
		if tr.splits.Folds == nil {
			tr.sets = [][2]*ml.Dataset{{tr.ds.Subset(tr.splits.Train), tr.ds.Subset(tr.splits.Valid)}}
			return
		}
		for _, f := range tr.splits.Folds {
			tr.sets = append(tr.sets, [2]*ml.Dataset{tr.ds.Subset(f.Train), tr.ds.Subset(f.Valid)})
		}
	})
	return tr.sets[i][0], tr.sets[i][1]
}

// fitResult is one fit (a trial's, or a fold of it).
type fitResult struct {
	model *modelfile.Model
	// value is the metric on the validation rows at the iteration kept.
	value float64
	// curve is the validation metric after every iteration (gbdt).
	curve []float64
	// iterations is the number of iterations kept (the best with early
	// stopping).
	iterations int
	// validPred are the model's predictions on the validation rows (with
	// k folds, the out-of-fold predictions of all folds). Never empty in a
	// completed fit: the reference profile requires them.
	validPred []float64
	// valid are the validation rows (nil for k folds).
	valid *ml.Dataset
}

// params completes a trial's parameters: the spec's, the sampled ones, the
// study metric (early stopping watches it) and the trial's thread share.
func (tr *trainer) params(sampled map[string]string) map[string]string {
	return tr.paramsWith(sampled, tr.threads)
}

// paramsWith is params with num_threads threads.
func (tr *trainer) paramsWith(sampled map[string]string, threads int) map[string]string {
	kv := maps.Clone(tr.spec.Model.Params)
	if kv == nil {
		kv = map[string]string{}
	}
	maps.Copy(kv, sampled)
	if tr.spec.Model.Kind == spec.ModelGBDT {
		kv["objective"] = tr.spec.Model.Objective
		m := parseMetric(tr.metric)
		kv["metric"] = m.base
		if m.k > 0 {
			kv["eval_at"] = strconv.Itoa(m.k)
		}
		kv["num_threads"] = strconv.Itoa(threads)
		if _, ok := kv["seed"]; !ok {
			kv["seed"] = strconv.FormatUint(tr.seed, 10)
		}
	}
	return kv
}

// options are fit's options for the spec.
func (tr *trainer) options(kv map[string]string) fit.Options {
	t := tr.spec
	return fit.Options{Label: t.Spine.Label, Weight: t.Spine.Weight, Group: t.Spine.Group, Task: t.Model.Task(),
		Algorithm: t.Model.Kind, Params: kv, Seed: tr.seed,
		Name: func(key string) string { return "model." + key }}
}

// fit trains on train, validating on valid; report (may be nil) hears the
// metric after every iteration and returns true to prune.
func (tr *trainer) fit(ctx context.Context, kv map[string]string, train, valid *ml.Dataset, report func(step int, value float64) bool) (*fitResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o := tr.options(kv)
	o.Bins = &tr.bins
	res := &fitResult{valid: valid}
	pruned := false
	key := "valid_" + tr.metric
	if tr.spec.Model.Kind == spec.ModelGBDT && valid != nil {
		o.LogEvery = 1
		o.OnMetrics = func(iter int, metrics map[string]float64) {
			v, ok := metrics[key]
			if !ok {
				return
			}
			res.curve = append(res.curve, v)
			if report != nil && !pruned && report(iter, v) {
				pruned = true
				cancel()
			}
		}
	}
	m, err := fit.Fit(ctx, o, train, valid)
	if pruned {
		return res, errPruned
	}
	if err != nil {
		return nil, err
	}
	res.model, res.iterations = m, m.Training.Iterations
	if valid != nil {
		pred, err := m.Predict(valid)
		if err != nil {
			return nil, fmt.Errorf("predict validation rows: %w", err)
		}
		res.validPred = pred
		if res.value, err = score(tr.metric, valid, pred, m.NumOutputs()); err != nil {
			return nil, fmt.Errorf("validation %s: %w", tr.metric, err)
		}
		if math.IsNaN(res.value) || math.IsInf(res.value, 0) {
			return nil, fmt.Errorf("validation %s is %v", tr.metric, res.value)
		}
	}
	return res, nil
}

// evaluate runs one trial with the sampled parameters: one fit on
// train/valid, or one per fold, cross-validated as lgb.cv does (see
// crossValidate), the pruner hearing after fold i the value the folds so
// far give (step i). report is nil only for a fit outside the study's
// trials (the best trial of another process fitted again once the trials
// are done): nothing else runs then, so it gets the whole thread budget.
func (tr *trainer) evaluate(ctx context.Context, sampled map[string]string, report func(step int, value float64) bool) (*fitResult, error) {
	threads := tr.threads
	if report == nil {
		threads = tr.budget
	}
	kv := tr.paramsWith(sampled, max(threads, 1))
	if tr.splits.Folds == nil {
		train, valid := tr.set(0)
		return tr.fit(ctx, kv, train, valid, report)
	}
	var folds []*fitResult
	var rounds int
	var minDelta float64
	// The direction each fold's early stopping follows: the metric's own.
	higher := spec.HigherIsBetter(tr.metric)
	// The out-of-fold predictions of all folds: each row predicted once, by
	// the fold's model that did not see it (the reference profile's
	// prediction distribution).
	var oof []float64
	for i := range tr.splits.Folds {
		train, valid := tr.set(i)
		r, err := tr.fit(ctx, kv, train, valid, nil)
		if err != nil {
			return nil, fmt.Errorf("fold %d: %w", i+1, err)
		}
		if i == 0 {
			// Every fold has the same parameters.
			rounds, minDelta = earlyStopping(r.model)
		}
		folds = append(folds, r)
		oof = append(oof, r.validPred...)
		if report != nil {
			if cv := crossValidate(folds, rounds, minDelta, higher); report(i+1, cv.value) {
				return cv, errPruned
			}
		}
	}
	cv := crossValidate(folds, rounds, minDelta, higher)
	if math.IsNaN(cv.value) || math.IsInf(cv.value, 0) {
		return nil, fmt.Errorf("validation %s of the folds' mean curve is %v", tr.metric, cv.value)
	}
	cv.validPred = oof
	return cv, nil
}

// crossValidate is what k folds' fits give, as lgb.cv gives it: the mean
// of their validation curves, taken over the iterations every fold reached
// (a fold that stopped early on its own has its curve end
// early_stopping_round iterations past its best; without early stopping
// every fold runs all its iterations). The iteration kept is the one the
// folds' early stopping rule (rounds, minDelta, the metric's direction
// higher) picks on that mean, the last without early stopping; the value
// is the mean curve there. The mean never looks past the shortest fold:
// when the mean was still improving there, the iteration kept is the best
// within it, where lgb.cv, which runs the folds in step, might have gone
// on. Fits without curves (linear models) give the mean of their values
// and iteration counts. The result's curve is the mean curve (what the
// trial's run logs), its model the last fold's; validPred and valid are
// left to the caller.
func crossValidate(folds []*fitResult, rounds int, minDelta float64, higher bool) *fitResult {
	last := folds[len(folds)-1]
	out := &fitResult{model: last.model}
	n := len(last.curve)
	for _, f := range folds {
		n = min(n, len(f.curve))
	}
	if n == 0 {
		var sum float64
		var iters int
		for _, f := range folds {
			sum += f.value
			iters += f.iterations
		}
		out.value = sum / float64(len(folds))
		out.iterations = int(math.Round(float64(iters) / float64(len(folds))))
		return out
	}
	out.curve = make([]float64, n)
	for _, f := range folds {
		for i, v := range f.curve[:n] {
			out.curve[i] += v
		}
	}
	for i := range out.curve {
		out.curve[i] /= float64(len(folds))
	}
	out.iterations = bestIteration(out.curve, rounds, minDelta, higher)
	out.value = out.curve[out.iterations-1]
	return out
}

// earlyStopping is the early stopping a fit's model was trained with
// (rounds 0: none).
func earlyStopping(m *modelfile.Model) (rounds int, minDelta float64) {
	if m == nil {
		return 0, 0
	}
	if gm, ok := m.Body.(*gbdt.Model); ok && gm.Params != nil {
		return gm.Params.EarlyStoppingRound, gm.Params.EarlyStoppingMinDelta
	}
	return 0, 0
}

// bestIteration is the 1-based iteration of curve that early stopping
// after rounds iterations without an improvement by more than minDelta
// keeps, by the rule gbdt's training applies to one fit (the first
// iteration, then each that improves on the best so far; stopped once
// rounds iterations bring none); without early stopping (rounds 0), the
// last.
func bestIteration(curve []float64, rounds int, minDelta float64, higher bool) int {
	if rounds <= 0 {
		return len(curve)
	}
	best, at := 0.0, 0
	for i, v := range curve {
		iter := i + 1
		improved := v < best-minDelta
		if higher {
			improved = v > best+minDelta
		}
		if at == 0 || improved {
			best, at = v, iter
		}
		if iter-at >= rounds {
			break
		}
	}
	return at
}

// refit trains the best parameters on train and valid together (with k
// folds, all the folds' rows) with the best trial's iteration count and no
// early stopping, as LightGBM users do after lgb.cv: the model sees all
// the data that is not test. It is the only fit running, so it gets the
// whole thread budget, which its parameters record.
func (tr *trainer) refit(ctx context.Context, sampled map[string]string, iterations int) (*modelfile.Model, error) {
	kv := tr.paramsWith(sampled, max(tr.budget, 1))
	if tr.spec.Model.Kind == spec.ModelGBDT {
		for k := range kv {
			if isEarlyStopping(k) || isIterations(k) {
				delete(kv, k)
			}
		}
		kv["num_iterations"] = strconv.Itoa(max(iterations, 1))
	}
	m, err := fit.Fit(ctx, tr.options(kv), tr.ds.Subset(tr.splits.trainValid()), nil)
	if err != nil {
		return nil, fmt.Errorf("refit: %w", err)
	}
	return m, nil
}

func isEarlyStopping(k string) bool {
	switch k {
	case "early_stopping_round", "early_stopping_rounds", "early_stopping", "n_iter_no_change":
		return true
	}
	return false
}

func isIterations(k string) bool {
	switch k {
	case "num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees", "num_round", "num_rounds", "nrounds",
		"num_boost_round", "n_estimators", "max_iter":
		return true
	}
	return false
}
