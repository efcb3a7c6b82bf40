package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
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
	// trials counts the finished trials (complete + pruned + failed, those
	// failed as stale included); running the trials still running when this
	// process ended the study (another process's, after a timeout or a
	// cancel), which are in none of the states.
	trials, complete, pruned, failed, running int
	best                                      bestTrial
	// curves are the per-iteration validation metric of the study's trials
	// that completed or were pruned, by number, those of earlier and other
	// processes included (see studyCurves); all are the study's trials.
	curves map[int][]float64
	all    []tune.FrozenTrial
	// fitBest, when set, fits the best trial again (another process, or
	// an earlier run, ran it): its fit and its iteration count are not
	// known here until then. Only the process that finishes the study
	// needs them (refit, reference profile), so it calls fitBest first.
	fitBest func(ctx context.Context) error
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
	bar := newTrialBar(ctx, o.Progress, study, budget(so, oo))
	oo.OnTrial = bar.trial
	oo.OnWait = bar.wait
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
	// A k-fold trial reports the mean of its folds so far after each fold,
	// not a value per iteration.
	out.curves = studyCurves(out.all, curves, tr.splits.Folds == nil)
	return out, nil
}

// budget is the number of trials the study runs: the spec's trials, capped
// at the grid's points (a grid stops when every point ran).
func budget(so tune.StudyOptions, oo tune.OptimizeOptions) int {
	if f, ok := so.Sampler.(tune.Finite); ok && (oo.Trials == 0 || oo.Trials > f.Size()) {
		return f.Size()
	}
	return oo.Trials
}

// studyCurves are the per-iteration validation metric of every trial of
// the study that completed or was pruned, by number: mine (this process's
// fits) for the trials this process ran, and for the others (run before a
// --resume, or by another process) the values the trial reported to the
// study, one per iteration, in step order. Without perIteration the
// reported values are not a curve, and only mine are known.
func studyCurves(all []tune.FrozenTrial, mine map[int][]float64, perIteration bool) map[int][]float64 {
	out := make(map[int][]float64, len(all))
	for n, c := range mine {
		out[n] = c
	}
	if !perIteration {
		return out
	}
	for _, f := range all {
		if _, ok := out[f.Number]; ok || (f.State != tune.Complete && f.State != tune.Pruned) || len(f.Intermediate) == 0 {
			continue
		}
		c := make([]float64, 0, len(f.Intermediate))
		for _, step := range slices.Sorted(maps.Keys(f.Intermediate)) {
			c = append(c, f.Intermediate[step])
		}
		out[f.Number] = c
	}
	return out
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
		default:
			out.running++
		}
	}
	// The summary's total is the sum of its states: a running trial has
	// none (and its point, in a grid, has not run).
	out.trials = out.complete + out.pruned + out.failed
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
	iters, _ := strconv.Atoi(bt.UserAttrs[attrIterations])
	out.best = bestTrial{number: bt.Number, params: params, value: bt.Value, iterations: iters}
	out.fitBest = func(ctx context.Context) error {
		f, err := tr.evaluate(ctx, params, nil)
		if err != nil {
			return fmt.Errorf("fit the best trial %d again: %w", bt.Number, err)
		}
		out.best.iterations, out.best.fit = max(iters, f.iterations), f
		return nil
	}
	return out, nil
}

// trialBar shows the study's trials on a terminal: done/N counts the
// finished trials of the study that count towards its budget since this
// run started (other processes' too), out of those left then, and the
// description says how many were done before (a resumed study) and the
// study's best value so far and, while this process waits for another's
// trials (up to 2 heartbeats, 20 s, for one whose process died), what it
// waits for. The earlier trials are not on the counter: the bar's rate and
// ETA count everything on it as done since the bar started, and a resumed
// study showed 40 trials done in its first second and an ETA of nothing.
// The counter is not repeated in the description: the bar redraws at most
// every 100 ms, so a count in the text would disagree with the counter
// whenever one of the two updates was not drawn. A nil bar (not a
// terminal) does nothing and reads nothing.
type trialBar struct {
	bar   progressBar
	ctx   context.Context
	study *tune.Study

	mu      sync.Mutex
	before  int // trials done when the bar started, not on its counter
	shown   int // trials counted, before included
	best    float64
	have    bool
	waiting []int // trials of other processes waited for

	stop chan struct{}
	wg   sync.WaitGroup
}

// progressBar is what trialBar draws on (*progress.Bar).
type progressBar interface {
	Add(n int64)
	Describe(description string)
	Finish()
}

// redrawEvery is how often the bar is drawn again with its current state:
// an update that fell within the bar's 100 ms throttle is drawn then, and
// the elapsed time moves on during a long trial or a wait.
const redrawEvery = 250 * time.Millisecond

func newTrialBar(ctx context.Context, w io.Writer, study *tune.Study, total int) *trialBar {
	if w == nil {
		return &trialBar{}
	}
	before := 0
	if n, _, _, err := studyProgress(ctx, study); err == nil {
		before = n
	}
	if total-before <= 0 {
		return &trialBar{} // nothing left to run: the refit follows
	}
	pb := progress.New(w, int64(total-before), "trials", "trials")
	if pb == nil {
		return &trialBar{}
	}
	return startTrialBar(ctx, pb, study, before)
}

// startTrialBar starts bar (counting the trials left) with the study's best
// value, before being the trials done already, and redraws it every
// redrawEvery until finish.
func startTrialBar(ctx context.Context, bar progressBar, study *tune.Study, before int) *trialBar {
	b := &trialBar{bar: bar, ctx: ctx, study: study, stop: make(chan struct{}), before: before, shown: before}
	b.mu.Lock()
	b.refresh(nil)
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		tick := time.NewTicker(redrawEvery)
		defer tick.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-tick.C:
				b.mu.Lock()
				b.bar.Describe(b.describe())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// refresh reads the study's finished trials and best value into the bar,
// b.mu held. When the study cannot be read, f (the trial this process just
// finished, or nil) is counted alone: the bar is a view, never an error.
func (b *trialBar) refresh(f *tune.FrozenTrial) {
	done, best, have := b.shown, b.best, b.have
	if n, v, ok, err := studyProgress(b.ctx, b.study); err == nil {
		done, best, have = n, v, ok
	} else if f != nil {
		done++
		if f.State == tune.Complete && (!have || better(f.Value, best, 0, b.study.Direction() == tune.Maximize)) {
			best, have = f.Value, true
		}
	}
	b.best, b.have = best, have
	if done > b.shown {
		b.bar.Add(int64(done - b.shown))
		b.shown = done
	}
	b.bar.Describe(b.describe())
}

// studyProgress counts a study's finished trials that count towards its
// budget and finds its best value.
func studyProgress(ctx context.Context, study *tune.Study) (done int, best float64, have bool, err error) {
	trials, err := study.Trials(ctx)
	if err != nil {
		return 0, 0, false, err
	}
	for _, t := range trials {
		if t.State.Finished() && tune.CountsTowardBudget(t.State, t.SystemAttrs) {
			done++
		}
		if t.State == tune.Complete && (!have || better(t.Value, best, 0, study.Direction() == tune.Maximize)) {
			best, have = t.Value, true
		}
	}
	return done, best, have, nil
}

// describe is the text before the bar, b.mu held.
func (b *trialBar) describe() string {
	d := "trials"
	if b.have {
		d = fmt.Sprintf("best %.5g", b.best)
	}
	if b.before > 0 {
		d += fmt.Sprintf(" (%d trials done before this run)", b.before)
	}
	switch len(b.waiting) {
	case 0:
	case 1:
		d += fmt.Sprintf(", waiting for trial %d of another process to end or go stale", b.waiting[0])
	default:
		d += fmt.Sprintf(", waiting for %d trials of other processes to end or go stale", len(b.waiting))
	}
	return d
}

// trial is the study's OnTrial.
func (b *trialBar) trial(f tune.FrozenTrial) {
	if b.bar == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.waiting = nil
	b.refresh(&f)
}

// wait is the study's OnWait: others are the trials of other processes
// this one waits for, nil when it stopped waiting.
func (b *trialBar) wait(others []int) {
	if b.bar == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.waiting = others
	b.refresh(nil)
}

func (b *trialBar) finish() {
	if b.bar == nil {
		return
	}
	close(b.stop)
	b.wg.Wait()
	b.bar.Finish()
}
