package tune

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Objective evaluates one trial. It returns the value to minimize or
// maximize; ErrPruned (or an error wrapping it) when it stopped on
// ShouldPrune; any other error fails the trial with that reason and the
// study goes on. A NaN value fails the trial too.
type Objective func(ctx context.Context, t *Trial) (float64, error)

// StudyOptions configures NewStudy. Zero values take the documented defaults.
type StudyOptions struct {
	// Name identifies the study in its storage; required.
	Name      string
	Direction Direction
	// Sampler defaults to NewTPESampler(TPEOptions{}) (Optuna's defaults).
	Sampler Sampler
	// Pruner defaults to MedianPruner{} (Optuna's default pruner).
	Pruner Pruner
	// Storage defaults to NewMemory().
	Storage Storage
	// Seed seeds every trial's random stream with (Seed, trial number).
	// Zero is a seed like any other.
	Seed int64
	// Heartbeat is how often a running trial tells the storage its process
	// is alive; a Running trial without a heartbeat for 2*Heartbeat is failed
	// as stale (Optuna's fail_stale_trials) before new trials start. Default 10s.
	Heartbeat time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// OptimizeOptions bounds one Optimize call.
type OptimizeOptions struct {
	// Trials is the study's trial budget: Optimize returns once the study
	// (across processes and earlier runs) holds this many trials that are
	// finished, not counting trials of dead processes (see Heartbeat), which
	// are run again. 0 means no budget (stop on Timeout or ctx).
	Trials int
	// Parallel is the number of trials run at once in this process (default 1).
	// With more than 1, TPE ignores running trials (Optuna's constant_liar off),
	// and results depend on timing.
	Parallel int
	// Timeout stops starting new trials after this long; running ones finish.
	Timeout time.Duration
	// OnTrial is called after each trial this call ran is finished and stored,
	// one call at a time.
	OnTrial func(FrozenTrial)
	// OnWait is called, one call at a time (and never during OnTrial), when
	// a worker of this call has no trial to start and waits for the running
	// trials of other processes, numbered others, to finish or go stale
	// (up to 2*Heartbeat after a process died); others is nil once a worker
	// that waited stops waiting.
	OnWait func(others []int)
}

// ErrNoTrials is returned by Best when no trial completed.
var ErrNoTrials = errors.New("no completed trial")

// Study is a hyperparameter search. Its methods are safe for concurrent use.
type Study struct {
	name      string
	id        int64
	dir       Direction
	sampler   Sampler
	pruner    Pruner
	storage   Storage
	seed      int64
	heartbeat time.Duration
	log       *slog.Logger

	mu sync.Mutex
	// done holds the finished trials read so far, in number order (they
	// never change again); isDone holds their numbers. A History shares done
	// when no other trial is running: done only grows at its end in place
	// (a History's shorter view never sees the new element) and is copied
	// when a trial finishes out of order, so shared views stay valid.
	done   []FrozenTrial
	isDone numberSet
	memo   historyMemo
	// refsBuf holds *[]TrialRef buffers for history's listing of trials
	// (one per concurrent call; refs do not outlive the call).
	refsBuf sync.Pool

	liveMu sync.Mutex
	// live holds the ids of this Study's trials from their creation until
	// their end is stored: failStale refreshes their heartbeats first, so a
	// process whose heartbeat goroutine was starved (a saturated machine)
	// never fails its own running trials as dead.
	live map[int64]struct{}
}

func (s *Study) setLive(id int64, live bool) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if !live {
		delete(s.live, id)
		return
	}
	if s.live == nil {
		s.live = map[int64]struct{}{}
	}
	s.live[id] = struct{}{}
}

// addDone records a finished trial; the caller holds s.mu.
func (s *Study) addDone(t FrozenTrial) {
	if s.isDone.has(t.Number) {
		return
	}
	s.isDone.add(t.Number)
	n := len(s.done)
	if n == 0 || s.done[n-1].Number < t.Number {
		s.done = append(s.done, t)
		return
	}
	i, _ := slices.BinarySearchFunc(s.done, t.Number, func(f FrozenTrial, n int) int { return f.Number - n })
	done := make([]FrozenTrial, 0, n+1+n/4)
	done = append(done, s.done[:i]...)
	done = append(done, t)
	s.done = append(done, s.done[i:]...)
}

// NewStudy creates the study in the storage, or loads it when one of that
// name exists (resume: its trials count towards budgets and inform the sampler).
func NewStudy(ctx context.Context, o StudyOptions) (*Study, error) {
	if o.Name == "" {
		return nil, errors.New("tune: study options: name is required")
	}
	if o.Direction != Minimize && o.Direction != Maximize {
		return nil, fmt.Errorf("tune: study %q: direction %d is neither Minimize nor Maximize", o.Name, o.Direction)
	}
	s := &Study{name: o.Name, dir: o.Direction, sampler: o.Sampler, pruner: o.Pruner, storage: o.Storage,
		seed: o.Seed, heartbeat: o.Heartbeat, log: o.Logger}
	if s.sampler == nil {
		s.sampler = NewTPESampler(TPEOptions{})
	}
	if s.pruner == nil {
		s.pruner = MedianPruner{}
	}
	if s.storage == nil {
		s.storage = NewMemory()
	}
	if s.heartbeat <= 0 {
		s.heartbeat = 10 * time.Second
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	id, err := s.storage.CreateStudy(ctx, o.Name, o.Direction)
	if err != nil {
		return nil, fmt.Errorf("tune: open study %q: %w", o.Name, err)
	}
	s.id = id
	return s, nil
}

// Name returns the study's name.
func (s *Study) Name() string { return s.name }

// Direction returns the study's direction.
func (s *Study) Direction() Direction { return s.dir }

// Trials returns every trial of the study in number order.
func (s *Study) Trials(ctx context.Context) ([]FrozenTrial, error) {
	h, err := s.history(ctx, 0)
	if err != nil {
		return nil, err
	}
	out := make([]FrozenTrial, len(h.Trials))
	for i, t := range h.Trials {
		out[i] = t.clone()
	}
	return out, nil
}

// Best returns the completed trial with the best value (the lowest number among equals).
func (s *Study) Best(ctx context.Context) (FrozenTrial, error) {
	h, err := s.history(ctx, 0)
	if err != nil {
		return FrozenTrial{}, err
	}
	best := -1
	for i, t := range h.Trials {
		if t.State != Complete {
			continue
		}
		if best < 0 || better(t.Value, h.Trials[best].Value, s.dir) {
			best = i
		}
	}
	if best < 0 {
		return FrozenTrial{}, fmt.Errorf("tune: study %q: %w", s.name, ErrNoTrials)
	}
	return h.Trials[best].clone(), nil
}

func better(a, b float64, dir Direction) bool {
	if dir == Maximize {
		return a > b
	}
	return a < b
}

// history reads the study's trials other than exclude (0: none), reading
// from the storage only those not already known as finished.
func (s *Study) history(ctx context.Context, exclude int64) (*History, error) {
	var refs []TrialRef
	var err error
	if ra, ok := s.storage.(refsAppender); ok {
		buf, _ := s.refsBuf.Get().(*[]TrialRef)
		if buf == nil {
			buf = new([]TrialRef)
		}
		defer s.refsBuf.Put(buf)
		refs, err = ra.appendTrialRefs(ctx, s.id, (*buf)[:0])
		*buf = refs
	} else {
		refs, err = s.storage.TrialRefs(ctx, s.id)
	}
	if err != nil {
		return nil, fmt.Errorf("tune: study %q: list trials: %w", s.name, err)
	}
	s.mu.Lock()
	var missing []int64
	for _, r := range refs {
		if !s.isDone.has(r.Number) && r.ID != exclude {
			missing = append(missing, r.ID)
		}
	}
	s.mu.Unlock()
	var running []FrozenTrial
	var fresh []FrozenTrial
	if len(missing) > 0 {
		if fresh, err = s.storage.Trials(ctx, s.id, missing); err != nil {
			return nil, fmt.Errorf("tune: study %q: read trials: %w", s.name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range fresh {
		if t.State.Finished() {
			s.addDone(t)
		} else {
			running = append(running, t)
		}
	}
	h := &History{Direction: s.dir, memo: &s.memo}
	if len(running) == 0 {
		h.Trials = s.done[:len(s.done):len(s.done)]
		return h, nil
	}
	h.Trials = make([]FrozenTrial, 0, len(s.done)+len(running))
	h.Trials = append(append(h.Trials, s.done...), running...)
	slices.SortFunc(h.Trials, func(a, b FrozenTrial) int { return a.Number - b.Number })
	return h, nil
}

// Ask starts a new trial (with no budget check) for callers that run the
// objective themselves; finish it with Tell. A trial never told stays
// running: its heartbeats go on until its ctx ends, and this Study's later
// asks refresh them, so no process fails it as stale while this one lives.
func (s *Study) Ask(ctx context.Context) (*Trial, error) {
	return s.ask(ctx, 0)
}

func (s *Study) ask(ctx context.Context, budget int) (*Trial, error) {
	now := time.Now()
	if err := s.failStale(ctx, now); err != nil {
		return nil, err
	}
	ref, err := s.storage.CreateTrial(ctx, s.id, budget, now)
	if err != nil {
		if errors.Is(err, ErrBudget) {
			return nil, err
		}
		return nil, fmt.Errorf("tune: study %q: create trial: %w", s.name, err)
	}
	s.setLive(ref.ID, true)
	hist, err := s.history(ctx, ref.ID)
	if err != nil {
		s.finish(ctx, ref.ID, Failed, math.NaN(), err.Error())
		return nil, err
	}
	rng := trialRand(s.seed, ref.Number)
	t := &Trial{study: s, ctx: ctx, id: ref.ID, number: ref.Number, rng: rng, hist: hist,
		frozen: FrozenTrial{ID: ref.ID, Number: ref.Number, State: Running, Value: math.NaN(), Start: now,
			Params: map[string]any{}, Distributions: map[string]Distribution{}, Intermediate: map[int]float64{},
			UserAttrs: map[string]string{}, SystemAttrs: map[string]string{}}}
	t.rel = s.sampler.SampleRelative(hist, ref.Number, rng)
	t.stopBeat = s.beat(ctx, ref.ID)
	return t, nil
}

// failStale fails the study's running trials whose process died (no
// heartbeat for 2*heartbeat), so that their budget slots and grid points
// are free again.
func (s *Study) failStale(ctx context.Context, now time.Time) error {
	s.liveMu.Lock()
	live := make([]int64, 0, len(s.live))
	for id := range s.live {
		live = append(live, id)
	}
	s.liveMu.Unlock()
	for _, id := range live {
		// ErrFinished: it ended since the copy; anything else fails below too.
		if err := s.storage.Heartbeat(ctx, id, now); err != nil && !errors.Is(err, ErrFinished) {
			return fmt.Errorf("tune: study %q: heartbeat of running trial: %w", s.name, err)
		}
	}
	if _, err := s.storage.FailStale(ctx, s.id, now.Add(-2*s.heartbeat), now); err != nil {
		return fmt.Errorf("tune: study %q: fail stale trials: %w", s.name, err)
	}
	return nil
}

// beat sends heartbeats for a running trial until the returned func is called.
func (s *Study) beat(ctx context.Context, id int64) func() {
	return KeepAlive(ctx, s.storage, id, s.heartbeat, func(err error) {
		if !errors.Is(err, ErrFinished) {
			s.log.Warn("tune: heartbeat", "study", s.name, "err", err)
		}
	})
}

// KeepAlive sends a heartbeat for the running trial id of st every period
// (what keeps it from being failed as stale by other processes) until the
// returned func is called or ctx ends; failed heartbeats go to warn (while
// ctx is live). The returned func waits for the last heartbeat to end.
func KeepAlive(ctx context.Context, st Storage, id int64, every time.Duration, warn func(error)) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if err := st.Heartbeat(ctx, id, now); err != nil && ctx.Err() == nil {
					warn(err)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// Tell finishes a trial from Ask with the objective's outcome (see
// Objective for how value and err map to a state) and returns it.
func (s *Study) Tell(ctx context.Context, t *Trial, value float64, err error) (FrozenTrial, error) {
	t.stopBeat()
	t.mu.Lock()
	state, reason := Complete, ""
	switch {
	case t.firstErr != nil:
		state, reason, value = Failed, t.firstErr.Error(), math.NaN()
	case errors.Is(err, ErrPruned):
		state, value = Pruned, math.NaN()
		if step, ok := t.frozen.LastStep(); ok {
			value = t.frozen.Intermediate[step]
		}
	case err != nil:
		state, reason, value = Failed, err.Error(), math.NaN()
	case math.IsNaN(value):
		state, reason = Failed, "the objective returned NaN"
	}
	t.mu.Unlock()
	if ferr := s.finish(ctx, t.id, state, value, reason); ferr != nil {
		return FrozenTrial{}, ferr
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.frozen.State, t.frozen.Value, t.frozen.Err, t.frozen.End = state, value, reason, time.Now()
	f := t.frozen.clone()
	s.mu.Lock()
	s.addDone(f)
	s.mu.Unlock()
	return f, nil
}

// finish records a trial's end even when ctx was cancelled (a cancelled
// study still records why its running trials stopped).
func (s *Study) finish(ctx context.Context, id int64, state State, value float64, reason string) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := s.storage.FinishTrial(fctx, id, state, value, reason, time.Now())
	s.setLive(id, false)
	if err != nil {
		return fmt.Errorf("tune: study %q: finish trial: %w", s.name, err)
	}
	return nil
}

// Optimize runs trials until the budget, the timeout or ctx ends it (see
// OptimizeOptions). Objective errors fail their trial and the study goes on;
// Optimize returns an error for storage failures and ctx's error when ctx
// ended it.
func (s *Study) Optimize(ctx context.Context, obj Objective, o OptimizeOptions) error {
	if o.Trials < 0 || o.Parallel < 0 || o.Timeout < 0 {
		return fmt.Errorf("tune: study %q: optimize options: trials %d, parallel %d, timeout %s must not be negative", s.name, o.Trials, o.Parallel, o.Timeout)
	}
	parallel := max(o.Parallel, 1)
	budget := o.Trials
	if f, ok := s.sampler.(Finite); ok && (budget == 0 || budget > f.Size()) {
		// A grid's points are the budget: the storage enforces it atomically,
		// so parallel workers cannot start a point past the end.
		budget = f.Size()
	}
	var deadline time.Time
	if o.Timeout > 0 {
		deadline = time.Now().Add(o.Timeout)
	}
	var (
		cbMu  sync.Mutex
		errMu sync.Mutex
		first error
		wg    sync.WaitGroup
		// ours holds the ids of the trials this call started. Ids are never
		// removed: a trial a sibling worker finishes between a read of the
		// storage and the look-up here would otherwise pass for another
		// process's.
		ours sync.Map
		// asking counts this call's workers between the start of ask and
		// ours.Store: a trial they created is running in the storage
		// before it is known as ours.
		asking atomic.Int32
	)
	setErr := func(err error) {
		errMu.Lock()
		if first == nil {
			first = err
		}
		errMu.Unlock()
	}
	stopped := func() bool {
		errMu.Lock()
		defer errMu.Unlock()
		return first != nil || ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline))
	}
	// wait is a worker's answer to "no trial to start" (the budget is
	// reached or the grid is exhausted, counting running trials): trials of
	// other processes may still finish, or die and be failed as stale and
	// run again, so it waits a heartbeat while any is running and reports
	// whether to look again. Without the wait, a process that joins a study
	// (or resumes one right after a kill) would stop while the others'
	// trials run, and take its best from a part of the study.
	wait := func(waited *bool) bool {
		others, unsure, err := s.othersRunning(ctx, &ours, &asking)
		if err != nil {
			setErr(err)
			return false
		}
		if unsure {
			// A sibling worker is creating a trial, which may be among
			// the running ones: look again shortly rather than wait a
			// heartbeat for a trial of this call.
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
			return true
		}
		if len(others) == 0 {
			return false
		}
		*waited = true
		if o.OnWait != nil {
			cbMu.Lock()
			o.OnWait(others)
			cbMu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(s.heartbeat):
		}
		return true
	}
	endWait := func(waited *bool) {
		if *waited && o.OnWait != nil {
			cbMu.Lock()
			o.OnWait(nil)
			cbMu.Unlock()
		}
		*waited = false
	}
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			waited := false
			defer endWait(&waited)
			for !stopped() {
				if ex, ok := s.sampler.(Exhauster); ok {
					// A point held by a trial whose process died is free
					// again once that trial is failed as stale: fail them
					// before asking whether any point is left.
					if err := s.failStale(ctx, time.Now()); err != nil {
						setErr(err)
						return
					}
					h, err := s.history(ctx, 0)
					if err != nil {
						setErr(err)
						return
					}
					if ex.Exhausted(h) {
						if wait(&waited) {
							continue
						}
						return
					}
				}
				asking.Add(1)
				t, err := s.ask(ctx, budget)
				if err == nil {
					ours.Store(t.id, true)
				}
				asking.Add(-1)
				if errors.Is(err, ErrBudget) {
					if wait(&waited) {
						continue
					}
					return
				}
				endWait(&waited)
				if err != nil {
					setErr(err)
					return
				}
				value, oerr := runObjective(ctx, obj, t)
				f, err := s.Tell(ctx, t, value, oerr)
				if err != nil {
					setErr(err)
					return
				}
				if f.State == Failed {
					s.log.Warn("tune: trial failed", "study", s.name, "trial", f.Number, "reason", f.Err)
				}
				if o.OnTrial != nil {
					cbMu.Lock()
					o.OnTrial(f)
					cbMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// othersRunning returns the numbers of the study's running trials this call
// did not start, or unsure when a worker of this call was creating a trial
// as the storage was read. The order matters: a trial in the read was
// created after its worker counted itself in asking, and that worker stores
// it in ours before it counts itself out, so when asking is zero after the
// read every trial of this call in the read is already in ours.
func (s *Study) othersRunning(ctx context.Context, ours *sync.Map, asking *atomic.Int32) (others []int, unsure bool, err error) {
	refs, err := s.storage.TrialRefs(ctx, s.id)
	if err != nil {
		return nil, false, fmt.Errorf("tune: study %q: list trials: %w", s.name, err)
	}
	if asking.Load() > 0 {
		return nil, true, nil
	}
	for _, r := range refs {
		if r.State == Running {
			if _, mine := ours.Load(r.ID); !mine {
				others = append(others, r.Number)
			}
		}
	}
	return others, false, nil
}

// runObjective calls obj, turning a panic into the trial's error: one bad
// trial (a learner's bug on an extreme parameter) must not end the study.
func runObjective(ctx context.Context, obj Objective, t *Trial) (v float64, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = math.NaN(), fmt.Errorf("panic: %v", r)
		}
	}()
	return obj(ctx, t)
}

// trialRand is trial number's random stream in a study seeded with seed.
// Both halves of the PCG state go through splitmix64 first: neighbouring
// trial numbers used raw would start neighbouring states, whose first
// draws are related.
func trialRand(seed int64, number int) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix64(uint64(seed)), splitmix64(uint64(number)^0x5851f42d4c957f2d)))
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
