package train

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/internal/platform/progress"
	"github.com/atrium-ml/atrium/internal/spec"
)

// studyOutcome is what the trials found.
type studyOutcome struct {
	trials, complete, pruned, failed int
	best                             bestTrial
	// curves are the per-iteration validation metric of the trials this
	// process ran, by number; all are the study's trials.
	curves map[int][]float64
	all    []tune.FrozenTrial
}

type bestTrial struct {
	number     int
	params     map[string]string
	value      float64
	iterations int
	// fit is the best trial's fit when this process ran it (its validation
	// predictions feed the reference profile and the plots).
	fit *fitResult
}

// Trial user attributes.
const (
	attrRunID      = "run_id"
	attrIterations = "iterations"
)

// space maps the spec's search space onto tune's.
func space(t *spec.Training) (tune.Space, error) {
	if t.Tune == nil {
		return nil, nil
	}
	var s tune.Space
	for _, p := range t.Tune.Space {
		var d tune.Distribution
		switch p.Type {
		case "int":
			d = tune.IntDist{Low: int(p.Low), High: int(p.High), Log: p.Log, Step: int(p.Step)}
		case "float":
			d = tune.FloatDist{Low: p.Low, High: p.High, Log: p.Log, Step: p.Step}
		default:
			d = tune.CategoricalDist{Choices: p.Choices}
		}
		if err := d.Validate(); err != nil {
			return nil, specError(t.Problem("tune.space."+p.Name, "tune.space.%s: %v", p.Name, err))
		}
		s = append(s, tune.Param{Name: p.Name, Dist: d})
	}
	return s, nil
}

// studyOptions are the tune study of the spec; a spec without a tune block
// is a study of one trial of the model's parameters.
func studyOptions(t *spec.Training, sp tune.Space) (tune.StudyOptions, tune.OptimizeOptions, error) {
	so := tune.StudyOptions{Direction: tune.Minimize}
	if t.Maximize() {
		so.Direction = tune.Maximize
	}
	tu := t.Tune
	if tu == nil {
		so.Sampler, so.Pruner = tune.RandomSampler{}, tune.NopPruner{}
		return so, tune.OptimizeOptions{Trials: 1, Parallel: 1}, nil
	}
	so.Seed = int64(tu.Seed)
	var err error
	if so.Sampler, err = tune.NewSampler(tu.Sampler, sp, int64(tu.Seed)); err != nil {
		return so, tune.OptimizeOptions{}, specError(t.Problem("tune.sampler", "tune.sampler %s: %v", tu.Sampler, err))
	}
	if so.Pruner, err = tune.NewPruner(tu.Pruner); err != nil {
		return so, tune.OptimizeOptions{}, specError(t.Problem("tune.pruner", "tune.pruner %s: %v", tu.Pruner, err))
	}
	return so, tune.OptimizeOptions{Trials: tu.Trials, Parallel: tu.Parallel}, nil
}

// runStudy runs the trials: each samples the space, fits with the sampled
// parameters (reporting the validation metric per iteration so that the
// pruner can stop it), and is logged as a child run of the parent run. An
// error before this process ran any trial (the study could not be opened,
// say) is a beforeTrials error.
func runStudy(ctx context.Context, o *Options, tr *trainer, k *tracker) (*studyOutcome, error) {
	t := o.Spec
	sp, err := space(t)
	if err != nil {
		return nil, beforeTrials{err}
	}
	so, oo, err := studyOptions(t, sp)
	if err != nil {
		return nil, beforeTrials{err}
	}
	// The study is the parent run's: --resume finds the run, hence the study.
	so.Name = t.Name
	if k.runID != "" {
		so.Name += "/" + k.runID
	}
	so.Logger = o.Logger
	if o.DB != nil {
		st, err := openStorage(ctx, o)
		if err != nil {
			return nil, beforeTrials{err}
		}
		defer st.Close()
		so.Storage = st
	}
	study, err := tune.NewStudy(ctx, so)
	if err != nil {
		if k.resumed {
			err = fmt.Errorf("--resume: %w", err)
		}
		return nil, beforeTrials{err}
	}
	var ran atomic.Bool // a trial's objective was called
	var mu sync.Mutex
	best := bestTrial{number: -1}
	curves := map[int][]float64{}
	obj := func(ctx context.Context, trial *tune.Trial) (float64, error) {
		ran.Store(true)
		sampled, err := sp.Suggest(trial)
		if err != nil {
			return 0, err
		}
		params := sampledStrings(sampled)
		run, err := k.startTrial(ctx, trial.Number(), tr.params(params))
		if err != nil {
			return 0, err
		}
		if run.id != "" {
			if err := trial.SetUserAttr(attrRunID, run.id); err != nil {
				return 0, err
			}
		}
		f, err := tr.evaluate(ctx, params, func(step int, v float64) bool {
			if trial.Report(ctx, step, v) != nil {
				return false
			}
			return trial.ShouldPrune()
		})
		state, reason := "complete", ""
		switch {
		case errors.Is(err, errPruned):
			state = "pruned"
		case err != nil:
			state, reason = "failed", err.Error()
		}
		if f != nil {
			mu.Lock()
			curves[trial.Number()] = f.curve
			mu.Unlock()
		}
		if lerr := k.endTrial(ctx, run, state, f, reason); lerr != nil {
			o.Logger.Warn("could not log the trial's run", "trial", trial.Number(), "error", lerr)
		}
		if errors.Is(err, errPruned) {
			return 0, tune.ErrPruned
		}
		if err != nil {
			return 0, err
		}
		if err := trial.SetUserAttr(attrIterations, strconv.Itoa(f.iterations)); err != nil {
			return 0, err
		}
		mu.Lock()
		if best.number < 0 || better(f.value, best.value, 0, t.Maximize()) {
			best = bestTrial{number: trial.Number(), params: params, value: f.value, iterations: f.iterations, fit: f}
		}
		mu.Unlock()
		return f.value, nil
	}
	bar := newTrialBar(o, oo.Trials)
	oo.OnTrial = func(f tune.FrozenTrial) { bar.trial(f, study.Direction()) }
	err = study.Optimize(ctx, obj, oo)
	bar.finish()
	if err != nil {
		err = fmt.Errorf("study %s: %w", so.Name, err)
		if !ran.Load() {
			err = beforeTrials{err}
		}
		return nil, err
	}
	out, err := outcome(ctx, study, tr, best)
	if err != nil {
		return nil, err
	}
	if err := k.closeStaleTrials(ctx, out.all); err != nil {
		o.Logger.Warn("could not end the runs of trials whose process died", "error", err)
	}
	out.curves = curves
	return out, nil
}

// outcome counts the study's trials and picks the best; a best trial run
// by an earlier process (--resume) is fitted again for its predictions.
func outcome(ctx context.Context, study *tune.Study, tr *trainer, mine bestTrial) (*studyOutcome, error) {
	trials, err := study.Trials(ctx)
	if err != nil {
		return nil, err
	}
	out := &studyOutcome{all: trials}
	var reasons []string
	for _, f := range trials {
		switch f.State {
		case tune.Complete:
			out.complete++
		case tune.Pruned:
			out.pruned++
		case tune.Failed:
			out.failed++
			if len(reasons) < 3 {
				reasons = append(reasons, fmt.Sprintf("trial %d: %s", f.Number, f.Err))
			}
		}
	}
	out.trials = len(trials)
	bt, err := study.Best(ctx)
	if errors.Is(err, tune.ErrNoTrials) {
		why := strings.Join(reasons, "; ")
		if out.failed > len(reasons) {
			why = fmt.Sprintf("the first %d: %s", len(reasons), why)
		}
		return nil, fmt.Errorf("no trial completed (%d failed, %d pruned): %s", out.failed, out.pruned, why)
	}
	if err != nil {
		return nil, err
	}
	if bt.Number == mine.number {
		out.best = mine
		return out, nil
	}
	params := sampledStrings(bt.Params)
	f, err := tr.evaluate(ctx, params, nil)
	if err != nil {
		return nil, fmt.Errorf("fit the best trial %d again: %w", bt.Number, err)
	}
	iters, _ := strconv.Atoi(bt.UserAttrs[attrIterations])
	out.best = bestTrial{number: bt.Number, params: params, value: bt.Value, iterations: max(iters, f.iterations), fit: f}
	return out, nil
}

// trialBar shows the trials on a terminal: n/N, best so far, ETA.
type trialBar struct {
	bar   *progress.Bar
	total int
	done  int
	best  float64
	have  bool
	start time.Time
}

func newTrialBar(o *Options, total int) *trialBar {
	b := &trialBar{total: total, start: time.Now()}
	if o.Progress != nil {
		b.bar = progress.New(o.Progress, int64(total), "trials", "trials")
	}
	return b
}

func (b *trialBar) trial(f tune.FrozenTrial, dir tune.Direction) {
	b.done++
	if f.State == tune.Complete && (!b.have || (dir == tune.Maximize) == (f.Value > b.best)) {
		b.best, b.have = f.Value, true
	}
	if b.have {
		b.bar.Describe(fmt.Sprintf("trial %d/%d best %.5g", b.done, b.total, b.best))
	}
	b.bar.Add(1)
}

func (b *trialBar) finish() { b.bar.Finish() }
