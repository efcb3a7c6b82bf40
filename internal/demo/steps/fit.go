package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
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

// Modeler fits and applies models on files: what `atrium fit` and `atrium
// predict` do. Each writes what the command prints to out. cmd/atrium
// implements it with the commands' own code.
type Modeler interface {
	Fit(ctx context.Context, req FitRequest, out io.Writer) error
	Predict(ctx context.Context, req PredictRequest, out io.Writer) error
}

// FitRequest holds the flags of `atrium fit` the demo uses.
type FitRequest struct {
	Data, Label, Group, Task, Algorithm string
	// Ignore are columns that are not features.
	Ignore        []string
	ValidFraction float64
	Seed          uint64
	Out           string
	// Register, when set, registers the model under this name with its
	// FeatureService and Alias (atrium fit --register).
	Register, FeatureService, Alias string
}

// Args are the request as `atrium fit` arguments.
func (f FitRequest) Args() []string {
	args := []string{"fit", "--data", f.Data, "--label", f.Label}
	if f.Group != "" {
		args = append(args, "--group", f.Group)
	}
	args = append(args, "--task", f.Task, "--algorithm", f.Algorithm)
	if len(f.Ignore) > 0 {
		args = append(args, "--ignore", strings.Join(f.Ignore, ","))
	}
	if f.ValidFraction > 0 {
		args = append(args, "--valid-fraction", strconv.FormatFloat(f.ValidFraction, 'g', -1, 64))
	}
	args = append(args, "--seed", strconv.FormatUint(f.Seed, 10), "--out", f.Out)
	if f.Register != "" {
		args = append(args, "--register", f.Register)
		if f.FeatureService != "" {
			args = append(args, "--feature-service", f.FeatureService)
		}
		if f.Alias != "" {
			args = append(args, "--alias", f.Alias)
		}
	}
	return args
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

// fit trains a lambdarank model with gradient-boosted trees on the training
// set (its user x listing features are the service's on-demand features,
// computed by the historical join), registers it as ModelName with the
// feature service and the alias Alias, scores the test impressions with the
// registered version (the offline twin of serving: the features retrieved
// point in time for the test spine), and compares the model's NDCG@10 with
// the true-utility, logged and random rankings of the same sessions.
func (r *runner) fit(ctx context.Context) error {
	dir := filepath.Dir(r.trainSet)
	train := r.trainSet
	fmt.Fprintf(r.Out, "      %s (user x listing) are on-demand features of %s, computed by historical in %s and %s\n",
		strings.Join(demo.CrossFeatures, ", "), Service, r.rel(train), r.rel(r.testSet))
	ignore := slices.DeleteFunc(slices.Clone(demo.NonFeatureColumns), func(c string) bool { return c == "label" || c == "session_id" })
	fitReq := FitRequest{Data: train, Label: "label", Group: "session_id", Task: "lambdarank", Algorithm: "gbdt",
		Ignore: ignore, ValidFraction: 0.2, Seed: 1, Out: filepath.Join(dir, "ranker.txt"),
		Register: ModelName, FeatureService: Service, Alias: Alias}
	r.command(fitReq.Args()...)
	w := r.indented()
	err := r.Modeler.Fit(ctx, fitReq, w)
	w.Flush()
	if err != nil {
		return fmt.Errorf("atrium fit: %w", err)
	}
	fmt.Fprintf(r.Out, "      the test impressions scored by the registered version, with its features retrieved point in time (what serving would have fetched then):\n")
	predictReq := PredictRequest{Model: "models:/" + ModelName + "@" + Alias, Spine: filepath.Join(dir, "test-spine.csv"),
		Passthrough: []string{"session_id", "listing_id"}, Out: filepath.Join(dir, "test-scores.csv")}
	r.command(predictReq.Args()...)
	w = r.indented()
	err = r.Modeler.Predict(ctx, predictReq, w)
	w.Flush()
	if err != nil {
		return fmt.Errorf("atrium predict: %w", err)
	}
	scores, err := ReadScores(predictReq.Out)
	if err != nil {
		return err
	}
	rankers := append([]demo.NamedRanker{{Name: "model (lambdarank, gradient-boosted trees)", Ranker: demo.ScoreRanker(scores)}}, demo.BaselineRankers(r.Config.Seed)...)
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
