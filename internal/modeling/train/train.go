// Package train is the training orchestrator: one training spec in
// (training/*.yaml, spec.Training), a tuned, evaluated, registered model
// out. Run builds the training set point in time (data/retrieval), splits it
// without leakage across time or query groups, runs the trials of a
// tune.Study (each a child MLflow run of the study's parent run), refits the
// best parameters on train and valid, evaluates on test, scores the
// current champion on the same test rows, registers the version with its
// lineage tags and reference profile, and moves the promotion alias only
// when the candidate is better by the spec's margin.
//
// Bad input is reported before any training, as spec.Problems located at
// the spec's lines (errors.Is(err, ErrSpec)): a missing feature or service,
// a spine column that is not there, a label the objective refuses, an empty
// split.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/serving/register"
	"github.com/atrium-ml/atrium/internal/spec"
)

// ErrSpec marks an error in the spec or in what it names (features, spine
// columns, split): errors carrying it are spec.Problems with file:line.
var ErrSpec = errors.New("invalid training spec")

type specProblems struct{ ps spec.Problems }

func (e *specProblems) Error() string { return e.ps.Error() }

// Is makes errors.Is(err, ErrSpec) true.
func (e *specProblems) Is(target error) bool { return target == ErrSpec }

// Unwrap returns the problems.
func (e *specProblems) Unwrap() error { return e.ps }

func specError(ps ...spec.Problem) error { return &specProblems{ps: ps} }

// Options say what to train and where the stores are.
type Options struct {
	// Spec is the training spec (spec.LoadTraining). Required.
	Spec *spec.Training
	// Dir is the project directory: a relative spine path is relative to it.
	Dir string
	// Features are the catalog's definitions; CatalogVersion their version
	// and SetVersions each feature set's own version (catalog.SetVersions).
	Features       *spec.Features
	CatalogVersion int
	SetVersions    map[string]int
	// Engine is the offline engine the training set is joined on. Required.
	Engine offline.Engine
	// Tracker is where the runs, their artifacts, the version and its
	// aliases go, and where the champion is read from: the project's own
	// stores (register.Stores) or a tracking server (*register.Remote,
	// `atrium train --tracking-uri`). The training set and the study
	// (DB) stay local either way. Required unless DryRun; a dry run without
	// it names no champion.
	Tracker register.Tracker
	// DB is the metadata database the study is stored in (tune); nil keeps
	// it in memory (tests), which cannot be resumed.
	DB *meta.DB
	// Resume continues the study of the spec's name where it stopped (its
	// finished trials count toward the budget) and its parent run.
	Resume bool
	// DryRun checks the spec against the data and stops before training:
	// it builds the training set (counting each split's rows, so an empty
	// split is an error as in a run), checks the search space, reads the
	// promotion alias's current version, and returns the Plan. It trains
	// nothing and writes no study, run, version or alias.
	DryRun bool
	// Threads is the CPU budget, split between parallel trials (the
	// spec's tune.parallel is capped at it: a trial runs on one thread at
	// least); the refit, which runs alone, gets it whole. Default
	// GOMAXPROCS.
	Threads int
	// WorkDir holds the training set file while it is built and loaded.
	// Default: a temporary directory, removed once the set is loaded.
	WorkDir string
	// Progress, when a terminal, shows a bar of the trials (n/N, best so
	// far, ETA).
	Progress io.Writer
	// Logger gets notes and warnings. Default: discarded.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) ensureDefaults() {
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Result is what Run did: the one-screen summary (`atrium train`).
type Result struct {
	Study    string `json:"study"`
	Metric   string `json:"metric"`
	Maximize bool   `json:"maximize"`
	// Trials by final state in this study (with Resume, earlier ones too).
	Trials   int `json:"trials"`
	Complete int `json:"complete"`
	Pruned   int `json:"pruned"`
	Failed   int `json:"failed"`
	// BestTrial is the best trial's number; BestParams its sampled
	// parameters (all the searched ones).
	BestTrial  int               `json:"best_trial"`
	BestParams map[string]string `json:"best_params"`
	// ValidMetric is the best trial's validation metric; TestMetric the
	// refit model's on the test split.
	ValidMetric float64 `json:"valid_metric"`
	TestMetric  float64 `json:"test_metric"`
	// Iterations is the refit's iteration count (gbdt).
	Iterations int `json:"iterations,omitempty"`
	// Rows of each split; Dropped rows straddled a time cut. With k folds
	// (Folds > 0), TrainRows are the rows of all the folds, those the
	// refit trains on, and ValidRows the same rows, each validated once
	// (by the model of the folds it is not in): there is no single valid
	// split.
	TrainRows int `json:"train_rows"`
	ValidRows int `json:"valid_rows"`
	TestRows  int `json:"test_rows"`
	Dropped   int `json:"dropped_rows,omitempty"`
	// Folds is the number of cross-validation folds (0 for a holdout
	// split).
	Folds int `json:"folds,omitempty"`
	// Champion is the promotion alias's version scored on the same test
	// rows; nil when there is none (or no promote block).
	Champion *Champion `json:"champion,omitempty"`
	Decision Decision  `json:"decision"`
	// RunID is the study's parent run ("" on a dry run).
	RunID string `json:"run_id,omitempty"`
	// FinishedBy, when set, is the process that finishes the study
	// ("process 1234 on host"): another process working on it (one joined
	// with --resume) claimed the finishing first. This process ran trials
	// only: the counts and the best trial are the study's, but there is no
	// refit, test metric, champion, decision or version here, and the
	// parent run is left to that process.
	FinishedBy string `json:"finished_by,omitempty"`
	// Registered is the new version (nil on a dry run or without a
	// register block).
	Registered  *register.Result `json:"registered,omitempty"`
	Fingerprint Fingerprint      `json:"fingerprint"`
	DryRun      bool             `json:"dry_run,omitempty"`
	// Plan is what a run would do (only on a dry run, which stops there).
	Plan    *Plan   `json:"plan,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Champion is the current holder of the promotion alias.
type Champion struct {
	Version    string  `json:"version"`
	TestMetric float64 `json:"test_metric"`
}

// Decision is the promotion gate's.
type Decision struct {
	// Promote is true when the alias moves (or would, on a dry run).
	Promote bool   `json:"promote"`
	Alias   string `json:"alias,omitempty"`
	// Reason says why, with both metrics.
	Reason string `json:"reason"`
}

// Run trains the spec (see the package doc).
func Run(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	o.ensureDefaults()
	t := o.Spec
	if t == nil || o.Engine == nil || o.Features == nil {
		return nil, errors.New("train: Spec, Engine and Features are required")
	}
	if !o.DryRun && o.Tracker == nil {
		return nil, errors.New("train: a Tracker is required unless DryRun")
	}
	if tu := t.Tune; tu != nil && tu.Parallel > o.Threads {
		// Each trial runs on one thread at least: more trials at once than
		// threads would overrun the budget. The spec is not changed; the
		// run's copy (and a dry run's plan) has the cap.
		o.Logger.Warn("tune.parallel capped at the thread budget", "parallel", tu.Parallel, "threads", o.Threads, "now", o.Threads)
		capped, tc := *tu, *t
		capped.Parallel, tc.Tune = o.Threads, &capped
		o.Spec, t = &tc, &tc
	}
	features, ps := t.CheckFeatures(o.Features)
	ps = append(ps, checkParams(t)...)
	if len(ps) > 0 {
		return nil, specError(ps...)
	}
	set, err := buildIn(ctx, &o, features)
	if err != nil {
		return nil, err
	}
	splits, err := split(t, set.ds, set.times)
	if err != nil {
		return nil, err
	}
	res := &Result{Study: t.Name, Metric: t.Metric(), Maximize: t.Maximize(), Fingerprint: set.fp, DryRun: o.DryRun,
		TrainRows: len(splits.Train), ValidRows: len(splits.Valid), TestRows: len(splits.Test), Dropped: splits.Dropped}
	if splits.Folds != nil {
		res.Folds = len(splits.Folds)
		res.TrainRows = len(splits.trainValid())
		res.ValidRows = res.TrainRows
	}
	o.Logger.Info("training set", "rows", set.fp.Rows, "train", res.TrainRows, "valid", res.ValidRows, "test", res.TestRows,
		"folds", res.Folds, "dropped", splits.Dropped, "hash", set.fp.Hash)
	if o.DryRun {
		if res.Plan, err = plan(ctx, &o, set.ds, splits); err != nil {
			return nil, err
		}
		res.Seconds = time.Since(start).Seconds()
		return res, nil
	}
	tr := &trainer{spec: t, ds: set.ds, splits: splits, metric: res.Metric, threads: o.Threads, budget: o.Threads, seed: 1}
	if t.Tune != nil {
		tr.seed = t.Tune.Seed
		tr.threads = max(1, o.Threads/max(t.Tune.Parallel, 1))
	}
	tracker := newTracker(&o, res)
	if err := tracker.start(ctx); err != nil {
		return nil, err
	}
	out, err := runStudy(ctx, &o, tr, tracker)
	if err != nil {
		if errors.As(err, new(beforeTrials)) && tracker.resumed {
			// Nothing of the interrupted study changed: its run stays
			// RUNNING, to be resumed once the cause is fixed.
			o.Logger.Warn("the study was not resumed; its parent run is left unfinished", "run", tracker.runID, "error", err)
			return nil, err
		}
		tracker.fail(ctx, err)
		return nil, err
	}
	res.Trials, res.Complete, res.Pruned, res.Failed = out.trials, out.complete, out.pruned, out.failed
	res.BestTrial, res.BestParams, res.ValidMetric = out.best.number, out.best.params, out.best.value
	// Every process working on the study gets here once the budget is
	// reached and no trial runs: one of them finishes the study, the
	// others stop.
	claim, err := tracker.claimFinish(ctx)
	if err != nil {
		// The parent run is left RUNNING: another process may finish it,
		// or --resume will.
		return nil, err
	}
	if claim.other != "" {
		res.FinishedBy = claim.other
		res.Decision.Reason = "left to " + claim.other + ", which finishes the study"
		o.Logger.Info("the study's trials are done; another process finishes it (refit, test, registration, promotion)",
			"study", t.Name, "run", tracker.runID, "by", claim.other, "state", claim.otherState)
		res.Seconds = time.Since(start).Seconds()
		return res, nil
	}
	err = finishStudy(ctx, &o, res, tr, tracker, set, out)
	claim.end(ctx, err)
	if err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// finishStudy refits the best trial's parameters, evaluates the model on
// test, applies the promotion gate and publishes it all in the parent run
// (tracker.finish), which it ends FAILED on an error. Only the process
// holding the study's finishing claim calls it.
func finishStudy(ctx context.Context, o *Options, res *Result, tr *trainer, tracker *tracker, set *trainingSet, out *studyOutcome) error {
	t, splits := o.Spec, tr.splits
	fail := func(err error) error {
		tracker.fail(ctx, err)
		return err
	}
	if out.fitBest != nil {
		if err := out.fitBest(ctx); err != nil {
			return fail(err)
		}
	}
	model, err := tr.refit(ctx, out.best.params, out.best.iterations)
	if err != nil {
		return fail(err)
	}
	res.Iterations = model.Training.Iterations
	test := set.ds.Subset(splits.Test)
	pred, err := model.Predict(test)
	if err == nil {
		res.TestMetric, err = score(res.Metric, test, pred, model.NumOutputs())
	}
	if err != nil {
		return fail(fmt.Errorf("evaluate on test: %w", err))
	}
	if err := gate(ctx, o, res, test); err != nil {
		return fail(err)
	}
	describeModel(model, o, splits)
	pd := plotData{metric: res.Metric, maximize: res.Maximize, curves: out.curves, best: out.best.number, trials: out.all,
		model: model, test: test, pred: pred}
	if t.Tune != nil {
		pd.space = t.Tune.Space
	}
	if err := tracker.finish(ctx, model, set, out.best.fit, pd); err != nil {
		return fail(err)
	}
	return nil
}

// buildIn is build in o.WorkDir, or in a temporary directory removed as
// soon as the set is loaded: the file is not read again, and a study that
// is killed (SIGKILL, out of memory) hours later leaves no copy of its
// training set behind.
func buildIn(ctx context.Context, o *Options, features []spec.ResolvedFeature) (*trainingSet, error) {
	if o.WorkDir != "" {
		return build(ctx, o, features)
	}
	dir, err := os.MkdirTemp("", "atrium-train-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in := *o
	in.WorkDir = dir
	return build(ctx, &in, features)
}

// describeModel records the training set's origin in the model's metadata.
func describeModel(m *modelfile.Model, o *Options, splits *Splits) {
	t := o.Spec
	m.Training.Data = t.Spine.Path
	m.Training.Label, m.Training.Weight, m.Training.Group = t.Spine.Label, t.Spine.Weight, t.Spine.Group
	m.Training.Rows = len(splits.trainValid())
	m.Training.StartedAt = o.Now().UTC()
	if t.Tune != nil {
		m.Training.Seed = t.Tune.Seed
	}
}

// sampledStrings renders sampled parameter values as text, LightGBM's way.
func sampledStrings(params map[string]any) map[string]string {
	out := make(map[string]string, len(params))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		switch v := params[k].(type) {
		case float64:
			out[k] = fmt.Sprintf("%.10g", v)
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}
