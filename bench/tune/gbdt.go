package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/tune"
)

// The "gbdt" function is real GBDT tuning of a dataset: a trial fits
// Atrium's GBDT on the tuning study's generated data (gbdttest.Study, as
// bench/tune/e2e) with the trial's parameters and scores the validation
// rows. Both samplers tune the very same function: Optuna's objective sends
// its parameters to this program (-gbdt-eval) and reads the value back, so
// the table compares the searches, not two learners. Fits are deterministic
// (the same parameters give the same model), one thread each.
const (
	gbdtTrainRows  = 10_000
	gbdtValidRows  = 5_000
	gbdtIterations = 60
	// gbdtTrials is the trial budget of a gbdt study: the (and the
	// e2e benchmark's) 50; the test functions' budget is -trials.
	gbdtTrials = 50
)

// gbdtParams are a trial's parameters, in the order both sides suggest
// them: the e2e benchmark's space (docs/training.md's example).
type gbdtParams struct {
	NumLeaves       int     `json:"num_leaves"`
	LearningRate    float64 `json:"learning_rate"`
	MinDataInLeaf   int     `json:"min_data_in_leaf"`
	FeatureFraction float64 `json:"feature_fraction"`
}

func suggestGBDT(t *tune.Trial) gbdtParams {
	return gbdtParams{
		NumLeaves:       t.SuggestInt("num_leaves", 15, 255, tune.Log()),
		LearningRate:    t.SuggestFloat("learning_rate", 0.01, 0.3, tune.Log()),
		MinDataInLeaf:   t.SuggestInt("min_data_in_leaf", 5, 200),
		FeatureFraction: t.SuggestFloat("feature_fraction", 0.5, 1.0),
	}
}

var gbdtData = sync.OnceValues(func() (train, valid *ml.Dataset) {
	return gbdttest.StudyDataset(gbdtTrainRows, 7), gbdttest.StudyDataset(gbdtValidRows, 8)
})

// gbdtBins keeps the training rows' bins across fits, as one lgb.Dataset
// serves every trial of an Optuna study.
var gbdtBins = &gbdt.BinCache{}

// gbdtLoss fits with p and returns the validation rows' log loss.
func gbdtLoss(ctx context.Context, p gbdtParams) (float64, error) {
	train, valid := gbdtData()
	params, err := gbdt.ParseParams(map[string]string{
		"objective":        "binary",
		"num_iterations":   strconv.Itoa(gbdtIterations),
		"num_leaves":       strconv.Itoa(p.NumLeaves),
		"learning_rate":    strconv.FormatFloat(p.LearningRate, 'g', -1, 64),
		"min_data_in_leaf": strconv.Itoa(p.MinDataInLeaf),
		"feature_fraction": strconv.FormatFloat(p.FeatureFraction, 'g', -1, 64),
		"num_threads":      "1",
		"seed":             "1",
	})
	if err != nil {
		return 0, err
	}
	m, err := gbdt.Train(ctx, train, nil, params, gbdt.TrainOptions{Bins: gbdtBins})
	if err != nil {
		return 0, err
	}
	prob, err := m.Predict(valid)
	if err != nil {
		return 0, err
	}
	return ml.LogLoss(valid.Label, prob, nil)
}

// serveGBDT answers optuna_bench.py's gbdt objective: one JSON gbdtParams a
// line in, the loss (shortest float text) a line out, until in ends.
func serveGBDT(ctx context.Context, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		var p gbdtParams
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return fmt.Errorf("gbdt eval: parameters %q: %w", sc.Text(), err)
		}
		v, err := gbdtLoss(ctx, p)
		if err != nil {
			return fmt.Errorf("gbdt eval %+v: %w", p, err)
		}
		if math.IsNaN(v) {
			return fmt.Errorf("gbdt eval %+v: loss is NaN", p)
		}
		fmt.Fprintln(w, strconv.FormatFloat(v, 'g', -1, 64))
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return sc.Err()
}
