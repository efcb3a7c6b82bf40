package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/catalog"
	"github.com/atrium-ml/atrium/internal/modeling/train"
	"github.com/atrium-ml/atrium/internal/serving/register"
	"github.com/atrium-ml/atrium/internal/spec"
)

func newTrainCmd(e *env) *cobra.Command {
	var o train.Options
	var tracking trackingURI
	cmd := &cobra.Command{
		Use:   "train SPEC [--resume] [--dry-run] [--tracking-uri URL]",
		Short: "Tune, evaluate, register and promote a model from a training spec",
		Long: `train runs the standard training steps of a spec (training/*.yaml, see
docs/training.md): it builds the training set point in time from the spine and the
features, splits it without leakage across time or query groups, runs the tuning
trials (each a child MLflow run of the study's parent run), refits the best
parameters on train and valid together, evaluates on the test split, registers the
version with its lineage tags and reference profile, and moves the promotion alias
only when the candidate beats the current version on the same test rows by the
spec's margin.

A spec with problems is reported whole, as file:line messages, before any training.
--dry-run checks the spec against the data and stops before training: it builds the
training set and counts each split's rows, checks the search space, and prints the
plan (model, split, trials, search space, metric, the experiment and the registered
model it would write to, the current champion), training, tracking and registering
nothing. --resume continues the study of a killed
run (its parent run is found by the spec's name); it is an error when there is
no interrupted study to resume, or when the spec changed what makes the study's
trials comparable (spine, features, split, model and fixed parameters, metric,
search space). A refused --resume leaves the study resumable.

With --tracking-uri (or MLFLOW_TRACKING_URI) set to a tracking server's URL (another
atrium serve), the study's parent run, the trials' child runs, their artifacts
(reference profile, plots, model), the registered version, its aliases and the
champion the gate compares with are all on that server, reached through its MLflow
API and artifact proxy (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and
_PASSWORD, authenticate); the project's own tracking store and registry get nothing.
The training set is still built from this project's features, and the study's
trials are still stored in its metadata database: --resume runs here and finds the
parent run on the server by its atrium.study tag.`,
		Example: `  atrium train training/ranker.yaml
  atrium train training/ranker.yaml --dry-run
  atrium train training/ranker.yaml --resume
  atrium train training/ranker.yaml --tracking-uri http://mlflow.internal:8080`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTrain(e, args[0], o, &tracking)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Resume, "resume", false, "continue the study of the spec's last unfinished run (an error when there is none)")
	f.BoolVar(&o.DryRun, "dry-run", false, "check the spec against the data and print the plan; train and write nothing")
	f.IntVar(&o.Threads, "threads", 0, "CPU threads, split between parallel trials (default: all)")
	tracking.addFlag(cmd, "track and register on this server's MLflow API (an atrium serve URL; default $MLFLOW_TRACKING_URI, else the project's own stores)")
	return cmd
}

func runTrain(e *env, path string, o train.Options, tracking *trackingURI) error {
	res, err := trainSpec(e, path, o, tracking)
	if err != nil {
		return err
	}
	return writeTrainSummary(e.stdout, e.output, res, tracking.url())
}

// trainSpec loads the spec, the project's stores and the tracker (the
// project's or the tracking server's) and runs it.
func trainSpec(e *env, path string, o train.Options, tracking *trackingURI) (*train.Result, error) {
	s, err := spec.LoadTraining(path)
	if err != nil {
		var ps spec.Problems
		if errors.As(err, &ps) {
			return nil, usageError{err}
		}
		return nil, err
	}
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	l, err := loadCatalog(e)
	if err != nil {
		return nil, err
	}
	db, err := e.Meta()
	if err != nil {
		return nil, err
	}
	if o.SetVersions, err = catalog.SetVersions(e.ctx, db, l.Version); err != nil {
		return nil, err
	}
	if o.Engine, err = e.Offline(l.Features); err != nil {
		return nil, err
	}
	if o.Tracker, err = tracking.tracker(e); err != nil {
		return nil, err
	}
	o.Spec, o.Dir, o.Features, o.CatalogVersion, o.DB = s, p.Dir, l.Features, l.Version, db
	o.Progress, o.Logger = e.stderr, e.log
	res, err := train.Run(e.ctx, o)
	if errors.Is(err, train.ErrSpec) {
		return nil, usageError{err}
	}
	return res, err
}

// writeTrainSummary prints the one-screen summary (or the Result as JSON);
// server, when set, is the tracking server the run and version went to.
func writeTrainSummary(w io.Writer, output string, r *train.Result, server string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if r.Plan != nil {
			// A dry run trained nothing: its JSON holds the plan and the
			// data, not the zero values of results it never had.
			return enc.Encode(struct {
				Study       string            `json:"study"`
				Metric      string            `json:"metric"`
				Maximize    bool              `json:"maximize"`
				TrainRows   int               `json:"train_rows"`
				ValidRows   int               `json:"valid_rows"`
				TestRows    int               `json:"test_rows"`
				Dropped     int               `json:"dropped_rows,omitempty"`
				Folds       int               `json:"folds,omitempty"`
				Fingerprint train.Fingerprint `json:"fingerprint"`
				DryRun      bool              `json:"dry_run"`
				Plan        *train.Plan       `json:"plan"`
			}{r.Study, r.Metric, r.Maximize, r.TrainRows, r.ValidRows, r.TestRows, r.Dropped, r.Folds, r.Fingerprint, true, r.Plan})
		}
		return enc.Encode(r)
	}
	if r.Plan != nil {
		return writeTrainPlan(w, r)
	}
	var b strings.Builder
	dir := direction(r.Maximize)
	fmt.Fprintf(&b, "study       %s: %d trials (%d complete, %d pruned, %d failed), %s %s\n",
		r.Study, r.Trials, r.Complete, r.Pruned, r.Failed, dir, r.Metric)
	fp := r.Fingerprint
	fmt.Fprintf(&b, "data        %d rows %s .. %s ", fp.Rows, fp.Start.Format("2006-01-02"), fp.End.Format("2006-01-02"))
	if r.Folds > 0 {
		fmt.Fprintf(&b, "(%d folds of %d rows, each validated once, test %d", r.Folds, r.TrainRows, r.TestRows)
	} else {
		fmt.Fprintf(&b, "(train %d, valid %d, test %d", r.TrainRows, r.ValidRows, r.TestRows)
	}
	if r.Dropped > 0 {
		fmt.Fprintf(&b, ", %d dropped at time cuts", r.Dropped)
	}
	fmt.Fprintf(&b, ")\n            %s\n", fp.Hash)
	fmt.Fprintf(&b, "best trial  #%d", r.BestTrial)
	for _, k := range slices.Sorted(maps.Keys(r.BestParams)) {
		fmt.Fprintf(&b, " %s=%s", k, r.BestParams[k])
	}
	switch {
	case r.FinishedBy != "":
	case r.Iterations > 0 && r.Folds > 0:
		fmt.Fprintf(&b, " (refit on the %d rows of all folds: %d iterations)", r.TrainRows, r.Iterations)
	case r.Iterations > 0:
		fmt.Fprintf(&b, " (refit on train+valid: %d iterations)", r.Iterations)
	}
	fmt.Fprintf(&b, "\nvalid       %s %.6g", r.Metric, r.ValidMetric)
	if r.Folds > 0 {
		fmt.Fprintf(&b, " (the %d folds' mean curve at its best iteration)", r.Folds)
	}
	b.WriteString("\n")
	if r.FinishedBy != "" {
		// Another process refits, tests, registers and promotes: this one
		// has nothing more to say.
		fmt.Fprintf(&b, "finishing   left to %s: the study's trials are done, and it refits, tests, registers and promotes (run %s)\n",
			r.FinishedBy, r.RunID)
		fmt.Fprintf(&b, "time        %.1fs\n", r.Seconds)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "test        %s %.6g\n", r.Metric, r.TestMetric)
	if c := r.Champion; c != nil {
		fmt.Fprintf(&b, "champion    version %s: test %s %.6g\n", c.Version, r.Metric, c.TestMetric)
	}
	verb := "keep"
	if r.Decision.Promote {
		verb = "promote"
	}
	if r.Decision.Alias != "" {
		fmt.Fprintf(&b, "decision    %s (%s): %s\n", verb, r.Decision.Alias, r.Decision.Reason)
	} else {
		fmt.Fprintf(&b, "decision    %s\n", r.Decision.Reason)
	}
	if server != "" && r.RunID != "" {
		fmt.Fprintf(&b, "tracking    %s\n", server)
	}
	if g := r.Registered; g != nil {
		fmt.Fprintf(&b, "registered  %s version %s (run %s)\nmodel uri   %s\n", g.Name, g.Version, r.RunID, modelURI(g))
	} else if r.RunID != "" {
		fmt.Fprintf(&b, "run         %s (no register block: not registered)\n", r.RunID)
	}
	fmt.Fprintf(&b, "time        %.1fs\n", r.Seconds)
	_, err := io.WriteString(w, b.String())
	return err
}

// modelURI is the new version's URI by number (an alias may move later).
func modelURI(g *register.Result) string { return "models:/" + g.Name + "/" + g.Version }

func direction(maximize bool) string {
	if maximize {
		return "maximize"
	}
	return "minimize"
}

// writeTrainPlan prints a dry run's plan: what a run would train on, search
// and write.
func writeTrainPlan(w io.Writer, r *train.Result) error {
	p := r.Plan
	var b strings.Builder
	fp := r.Fingerprint
	fmt.Fprintf(&b, "study       %s (dry run: nothing trained, tracked or registered)\n", r.Study)
	fmt.Fprintf(&b, "data        %d rows %s .. %s, %d features\n            %s\n", fp.Rows,
		fp.Start.Format("2006-01-02"), fp.End.Format("2006-01-02"), len(fp.Features), fp.Hash)
	fmt.Fprintf(&b, "split       %s\n            ", p.Split)
	if p.Folds > 0 {
		fmt.Fprintf(&b, "%d folds of %d, each validated once, test %d", p.Folds, r.TrainRows, r.TestRows)
	} else {
		fmt.Fprintf(&b, "train %d, valid %d, test %d", r.TrainRows, r.ValidRows, r.TestRows)
	}
	b.WriteString(" rows")
	if r.Dropped > 0 {
		fmt.Fprintf(&b, ", %d dropped at time cuts", r.Dropped)
	}
	fmt.Fprintf(&b, "\nmodel       %s", p.Model)
	for _, k := range slices.Sorted(maps.Keys(p.Params)) {
		fmt.Fprintf(&b, " %s=%s", k, p.Params[k])
	}
	// A grid stops when every point ran: the plan says how many trials
	// that is, not only the spec's budget.
	switch g := p.GridPoints; {
	case g > 0 && p.Trials > g:
		fmt.Fprintf(&b, "\ntrials      %d (the grid's points; trials: %d), %d at a time", g, p.Trials, p.Parallel)
	case g > 0:
		fmt.Fprintf(&b, "\ntrials      %d (of the grid's %d points), %d at a time", p.Trials, g, p.Parallel)
	default:
		fmt.Fprintf(&b, "\ntrials      %d, %d at a time", p.Trials, p.Parallel)
	}
	if p.Sampler != "" {
		fmt.Fprintf(&b, ", sampler %s, pruner %s", p.Sampler, p.Pruner)
	}
	b.WriteString("\n")
	for i, s := range p.Space {
		label := ""
		if i == 0 {
			label = "space"
		}
		fmt.Fprintf(&b, "%-11s %s\n", label, s)
	}
	fmt.Fprintf(&b, "metric      %s %s on valid, then on test\n", direction(p.Maximize), p.Metric)
	fmt.Fprintf(&b, "tracking    experiment %s: a parent run and one child run per trial\n", p.Experiment)
	if p.Register == "" {
		b.WriteString("register    no register block: not registered\n")
	} else {
		fmt.Fprintf(&b, "register    a new version of %s", p.Register)
		if p.Alias != "" {
			fmt.Fprintf(&b, " at alias %s", p.Alias)
		}
		b.WriteString("\n")
	}
	if p.Promote != "" {
		champ := "no version yet: the candidate would take it"
		switch {
		case p.Champion != "" && p.ChampionKept != "":
			// The gate will keep it whatever the candidate scores.
			champ = "now version " + p.Champion + ", kept whatever the candidate scores: " + p.ChampionKept
		case p.Champion != "":
			champ = "now version " + p.Champion + ", replaced only if beaten on the same test rows by " + strconv.FormatFloat(p.IfBetterBy, 'g', -1, 64)
			if m := p.ChampionTestMetric; m != nil {
				champ += fmt.Sprintf(" (its test %s there: %.6g)", p.Metric, *m)
			}
		}
		fmt.Fprintf(&b, "promote     %s: %s\n", p.Promote, champ)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
