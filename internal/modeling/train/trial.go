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
	spec    *spec.Training
	ds      *ml.Dataset
	splits  *Splits
	metric  string
	threads int // per fit
	seed    uint64

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
// study metric (early stopping watches it) and the thread share.
func (tr *trainer) params(sampled map[string]string) map[string]string {
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
		kv["num_threads"] = strconv.Itoa(tr.threads)
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
// train/valid, or one per fold (the value is the folds' mean, reported
// after each fold as the step, and the iterations their mean).
func (tr *trainer) evaluate(ctx context.Context, sampled map[string]string, report func(step int, value float64) bool) (*fitResult, error) {
	kv := tr.params(sampled)
	if tr.splits.Folds == nil {
		train, valid := tr.set(0)
		return tr.fit(ctx, kv, train, valid, report)
	}
	var sum float64
	var iters int
	var last *fitResult
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
		sum += r.value
		iters += r.iterations
		oof = append(oof, r.validPred...)
		last = r
		if report != nil && report(i+1, sum/float64(i+1)) {
			return last, errPruned
		}
	}
	k := len(tr.splits.Folds)
	last.validPred, last.valid = oof, nil
	last.value = sum / float64(k)
	last.iterations = int(math.Round(float64(iters) / float64(k)))
	return last, nil
}

// refit trains the best parameters on train and valid together with the
// best trial's iteration count and no early stopping, as LightGBM users do
// after lgb.cv: the model sees all the data that is not test.
func (tr *trainer) refit(ctx context.Context, sampled map[string]string, iterations int) (*modelfile.Model, error) {
	kv := tr.params(sampled)
	if tr.spec.Model.Kind == spec.ModelGBDT {
		for k := range kv {
			if isEarlyStopping(k) || isIterations(k) {
				delete(kv, k)
			}
		}
		kv["num_iterations"] = strconv.Itoa(max(iterations, 1))
	}
	rows := tr.splits.trainValid()
	if tr.splits.Folds != nil {
		rows = sortedUnion(tr.splits.Folds[0].Train, tr.splits.Folds[0].Valid)
	}
	m, err := fit.Fit(ctx, tr.options(kv), tr.ds.Subset(rows), nil)
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
