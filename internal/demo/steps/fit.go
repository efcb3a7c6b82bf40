package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/demo"
)

// The registered model the demo trains and serves, and the alias it serves
// through.
const (
	ModelName = "ranker"
	Alias     = "champion"
)

// Modeler trains models from training specs and applies them: what `atrium
// train` and `atrium predict` do. Each writes what the command prints to
// out. cmd/atrium implements it with the commands' own code.
type Modeler interface {
	// Train runs `atrium train SPEC` and returns the registered version's
	// parent run ("" when nothing was registered).
	Train(ctx context.Context, spec string, out io.Writer) (runID string, err error)
	Predict(ctx context.Context, req PredictRequest, out io.Writer) error
}

// PredictRequest holds the flags of `atrium predict` the demo uses: a model
// file scores Data, a registered model (models:/...) scores Spine with the
// features it retrieves.
type PredictRequest struct {
	Model, Data, Spine string
	// Passthrough columns are copied from Data to Out, before "prediction".
	Passthrough []string
	Out         string
}

// Args are the request as `atrium predict` arguments.
func (p PredictRequest) Args() []string {
	args := []string{"predict", "--model", p.Model}
	if p.Spine != "" {
		args = append(args, "--spine", p.Spine)
	} else {
		args = append(args, "--data", p.Data)
	}
	if len(p.Passthrough) > 0 {
		args = append(args, "--passthrough", strings.Join(p.Passthrough, ","))
	}
	return append(args, "--out", p.Out)
}

// Baseline is the registered model of the untuned ranker the demo trains
// to compare with the tuned one.
const Baseline = "ranker_baseline"

// TrainingSpecs are the demo's training specs (training/*.yaml): the tuned
// ranker, promoted to Alias, and the untuned baseline (the same data and
// split, LightGBM's default parameters). The raw list of a user's preferred
// neighborhoods is left out: neighborhood_match encodes it. Both split the training days'
// sessions at random by session: the demo's own test days stay unseen.
var TrainingSpecs = map[string]string{
	"ranker.yaml": `name: ranker
features: {service: ` + Service + `, exclude: [preferred_neighborhoods]}
spine: {path: training/train-spine.csv, timestamp: ts, label: label, group: session_id}
split: {by: random, valid: 0.2, test: 0.1, seed: 1}
model: {kind: gbdt, objective: lambdarank, params: {num_iterations: 200, early_stopping_round: 20}}
tune:
  trials: 16
  parallel: 2
  seed: 1
  sampler: tpe
  pruner: median
  metric: ndcg@10
  space:
    num_leaves: {int: [4, 63], log: true}
    learning_rate: {float: [0.02, 0.3], log: true}
    min_data_in_leaf: {int: [5, 200], log: true}
    feature_fraction: {float: [0.5, 1.0]}
register: {model: ` + ModelName + `, alias: challenger, promote: {alias: ` + Alias + `, if_better_by: 0.002}}
`,
	"ranker_baseline.yaml": `name: ranker_baseline
features: {service: ` + Service + `, exclude: [preferred_neighborhoods]}
spine: {path: training/train-spine.csv, timestamp: ts, label: label, group: session_id}
split: {by: random, valid: 0.2, test: 0.1, seed: 1}
model: {kind: gbdt, objective: lambdarank}
register: {model: ` + Baseline + `, alias: ` + Alias + `}
`,
}

// fit trains the untuned baseline and the tuned ranker through the training
// orchestrator (atrium train: point-in-time training set from the service,
// split by session, trials, refit, registration with lineage; the tuned one
// is promoted to Alias), scores the test impressions with both registered
// versions (the offline twin of serving: the features retrieved point in
// time for the test spine), and compares their NDCG@10 with the
// true-utility, logged and random rankings of the same sessions.
func (r *runner) fit(ctx context.Context) error {
	dir := filepath.Dir(r.trainSet)
	for _, name := range []string{"ranker_baseline.yaml", "ranker.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(TrainingSpecs[name]), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(r.Out, "      %s (user x listing) are on-demand features of %s, computed by the point-in-time join of each training run\n",
		strings.Join(demo.CrossFeatures, ", "), Service)
	fmt.Fprintf(r.Out, "      the untuned baseline (LightGBM's default parameters) and the tuned ranker (%s), on the same split:\n", r.rel(filepath.Join(dir, "ranker.yaml")))
	for _, name := range []string{"ranker_baseline.yaml", "ranker.yaml"} {
		spec := filepath.Join(dir, name)
		r.command("train", r.rel(spec))
		w := r.indented()
		_, err := r.Modeler.Train(ctx, spec, w)
		w.Flush()
		if err != nil {
			return fmt.Errorf("atrium train %s: %w", r.rel(spec), err)
		}
	}
	fmt.Fprintf(r.Out, "      the test impressions scored by both registered versions, with their features retrieved point in time (what serving would have fetched then):\n")
	outs := map[string]string{ModelName: filepath.Join(dir, "test-scores.csv"), Baseline: filepath.Join(dir, "baseline-scores.csv")}
	scores := map[string]map[[2]int64]float64{}
	for _, model := range []string{ModelName, Baseline} {
		predictReq := PredictRequest{Model: "models:/" + model + "@" + Alias, Spine: filepath.Join(dir, "test-spine.csv"),
			Passthrough: []string{"session_id", "listing_id"}, Out: outs[model]}
		r.command(predictReq.Args()...)
		w := r.indented()
		err := r.Modeler.Predict(ctx, predictReq, w)
		w.Flush()
		if err != nil {
			return fmt.Errorf("atrium predict: %w", err)
		}
		if scores[model], err = ReadScores(predictReq.Out); err != nil {
			return err
		}
	}
	rankers := append([]demo.NamedRanker{
		{Name: "tuned model (lambdarank, atrium train)", Ranker: demo.ScoreRanker(scores[ModelName])},
		{Name: "untuned model (default parameters)", Ranker: demo.ScoreRanker(scores[Baseline])},
	}, demo.BaselineRankers(r.Config.Seed)...)
	ev, err := r.market.Evaluate(ctx, r.testFrom, r.Config.Days, 10, rankers)
	if err != nil {
		return err
	}
	r.printEvaluation(ev)
	return nil
}

// printEvaluation prints the NDCG@K table of the test sessions.
func (r *runner) printEvaluation(ev demo.Evaluation) {
	fmt.Fprintf(r.Out, "      NDCG@%d on the %s test sessions (%s to %s):\n", ev.K, demo.Count(ev.Sessions), r.day(r.testFrom), r.day(r.Config.Days-1))
	width := 0
	for _, name := range ev.Rankers {
		width = max(width, len(name))
	}
	fmt.Fprintf(r.Out, "        %-*s  %8s  %9s\n", width, "ranking by", "observed", "attentive")
	for i, name := range ev.Rankers {
		fmt.Fprintf(r.Out, "        %-*s  %8.4f  %9.4f\n", width, name, ev.Observed[i], ev.Attentive[i])
	}
	fmt.Fprintf(r.Out, "      observed: the logged clicks and visits (position-biased, so the logged order looks good);\n")
	fmt.Fprintf(r.Out, "      attentive: labels redrawn from the true utility as if every listing had been examined.\n")
}

// ReadScores reads predict's output (session_id, listing_id, prediction).
func ReadScores(path string) (map[[2]int64]float64, error) {
	rows, err := ReadCSV(path)
	if err != nil {
		return nil, err
	}
	scores := make(map[[2]int64]float64, len(rows))
	for i, row := range rows {
		s, err1 := strconv.ParseInt(row["session_id"], 10, 64)
		l, err2 := strconv.ParseInt(row["listing_id"], 10, 64)
		p, err3 := strconv.ParseFloat(row["prediction"], 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s row %d: %w", path, i+2, err)
		}
		scores[[2]int64{s, l}] = p
	}
	return scores, nil
}
