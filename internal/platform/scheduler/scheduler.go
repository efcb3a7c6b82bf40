package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
)

// Options configure a Scheduler. Zero fields take the documented defaults.
type Options struct {
	// DB holds the leases and the history (migrated with Schema). Required.
	DB *meta.DB
	// Jobs are the jobs to run. Names are unique; DependsOn names jobs of
	// this list.
	Jobs []Job
	// Kinds builds each job's runner by its Kind.
	Kinds map[string]Factory
	// Clock is the scheduler's time. Default RealClock.
	Clock Clock
	// Owner names this process in leases and the history. Default
	// host:pid:random.
	Owner string
	// Logger. Default: discard.
	Logger *slog.Logger
	// Notifier receives alerts of intervals that failed for good. Optional.
	Notifier Notifier
	// Metrics, when set, are updated as attempts finish.
	Metrics *Metrics
	// MaxConcurrent bounds this process's attempts running at once.
	// Default 4.
	MaxConcurrent int
	// Lease is how long a claim holds without renewal; the runner renews it
	// every Lease/3. A killed process's intervals are retried once it
	// passes. Default 30s.
	Lease time.Duration
	// Poll is how often the DB is read again for other processes' changes
	// (triggers, pauses, finished dependencies). Default 5s.
	Poll time.Duration
	// RetryBase and RetryMax bound the backoff between attempts (doubling
	// from RetryBase, ±50% jitter). Defaults 30s and 30m.
	RetryBase, RetryMax time.Duration
	// Only, when set, restricts dispatching to these jobs (a CLI backfill
	// runs its own intervals and nothing else). Planning is off then too.
	Only []string
	// NoPlan turns planning off: only intervals already in the DB (triggered,
	// backfilled or planned by another process) run.
	NoPlan bool
}

func (o *Options) ensureDefaults() {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		o.Owner = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), newRunID(time.Now())[len("20060102T150405.000Z-00000000-"):])
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 4
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 30 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 30 * time.Minute
	}
}

// Scheduler plans and dispatches jobs' intervals. Its methods are safe for
// concurrent use. Trigger, Backfill, Pause and Resume only write to the DB:
// whichever scheduler process runs next picks the change up.
type Scheduler struct {
	opts  Options
	store store
	jobs  map[string]*Job
	order []string // job names, sorted
	kinds map[string]Kind
	only  map[string]bool

	// lookback is how much history dependencies need: twice the longest
	// period of any job's calendar.
	lookback time.Duration

	mu   sync.Mutex
	rows map[ivKey]*ivRow
	// open indexes the rows of rows not in a terminal state: what dispatch
	// and nextTick look at (the succeeded past is most of rows).
	open     map[ivKey]*ivRow
	state    map[string]jobState
	inflight int
	// started counts the attempts this process started.
	started int
	// mine holds the intervals this process is running.
	mine   map[ivKey]bool
	synced time.Time // clock time of the last DB sync; zero forces one
	// An attempt's outcome is written to the DB, then to memory. A sync
	// whose read was taken between the two would put the attempt back as
	// running (and its dependents waited a Poll, for ever on a stopped test
	// clock): changes counts the outcomes, touched holds the count at which
	// each interval's last one came, and a sync keeps the memory row of an
	// interval touched since it read. resyncs counts the requests for a
	// fresh read (resync), so that a sync overlapping one does not mark
	// itself fresh.
	changes uint64
	touched map[ivKey]uint64
	resyncs uint64
	rnd     *rand.Rand

	wg     sync.WaitGroup
	wakeCh chan struct{}

	// Outcomes are recorded in batches: attempts finishing together queue
	// here, and whoever holds recLock writes the queue in one transaction.
	recMu    sync.Mutex
	recQueue []*finishReq
	recLock  chan struct{}
}

// finishReq is an outcome waiting in recQueue.
type finishReq struct {
	f    finished
	done chan error // buffered
}

// New checks the jobs, builds their runners and records them in the DB. It
// starts nothing: Run (or Tick) does.
func New(ctx context.Context, opts Options) (*Scheduler, error) {
	opts.ensureDefaults()
	if opts.DB == nil {
		return nil, errors.New("scheduler: no metadata DB")
	}
	s := &Scheduler{opts: opts, store: store{opts.DB}, jobs: map[string]*Job{}, kinds: map[string]Kind{},
		rows: map[ivKey]*ivRow{}, open: map[ivKey]*ivRow{}, mine: map[ivKey]bool{}, touched: map[ivKey]uint64{}, wakeCh: make(chan struct{}, 1), recLock: make(chan struct{}, 1), rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))}
	names := map[string]bool{}
	for i := range opts.Jobs {
		j := &opts.Jobs[i]
		if names[j.Name] {
			return nil, fmt.Errorf("scheduler: job %s is defined twice", j.Name)
		}
		names[j.Name] = true
		if j.Concurrency <= 0 {
			j.Concurrency = 1
		}
		if j.Catchup == "" {
			j.Catchup = CatchupAll
		}
		s.jobs[j.Name] = j
		s.order = append(s.order, j.Name)
		if j.Calendar != nil {
			s.lookback = max(s.lookback, 2*j.Calendar.Period())
		}
	}
	slices.Sort(s.order)
	s.lookback = max(s.lookback, 2*time.Hour)
	var problems []string
	for _, name := range s.order {
		j := s.jobs[name]
		if err := j.validate(opts.Kinds, names); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		k, err := opts.Kinds[j.Kind](*j)
		if err != nil {
			problems = append(problems, fmt.Sprintf("job %s: %v", j.Name, err))
			continue
		}
		s.kinds[name] = k
	}
	if cyc := cycle(s.jobs, s.order); cyc != "" {
		problems = append(problems, "dependency cycle: "+cyc)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("scheduler: %s", strings.Join(problems, "; "))
	}
	if len(opts.Only) > 0 {
		s.only = map[string]bool{}
		for _, n := range opts.Only {
			if s.jobs[n] == nil {
				return nil, fmt.Errorf("scheduler: %w %q", ErrUnknownJob, n)
			}
			s.only[n] = true
		}
	}
	if err := s.store.ensureJobs(ctx, opts.Jobs); err != nil {
		return nil, err
	}
	return s, nil
}

// cycle returns a dependency cycle as "a -> b -> a", or "".
func cycle(jobs map[string]*Job, order []string) string {
	color := map[string]int{}
	var stack []string
	var found string
	var visit func(n string)
	visit = func(n string) {
		color[n] = 1
		stack = append(stack, n)
		for _, d := range append(slices.Clone(jobs[n].DependsOn), jobs[n].FreshUpTo...) {
			if found != "" || jobs[d] == nil {
				continue
			}
			if color[d] == 1 {
				i := slices.Index(stack, d)
				found = strings.Join(append(slices.Clone(stack[i:]), d), " -> ")
				return
			}
			if color[d] == 0 {
				visit(d)
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = 2
	}
	for _, n := range order {
		if color[n] == 0 && found == "" {
			visit(n)
		}
	}
	return found
}

// Job returns the job named name.
func (s *Scheduler) Job(name string) (*Job, bool) {
	j, ok := s.jobs[name]
	return j, ok
}

// JobNames returns every job's name, sorted.
func (s *Scheduler) JobNames() []string { return slices.Clone(s.order) }

// Owner is the name this process claims leases under.
func (s *Scheduler) Owner() string { return s.opts.Owner }

func (s *Scheduler) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

// Run ticks until ctx is cancelled, then waits for the attempts in flight
// (their contexts are cancelled with ctx: they are recorded interrupted and
// retried by the next scheduler).
func (s *Scheduler) Run(ctx context.Context) error {
	defer s.wg.Wait()
	for {
		next, err := s.Tick(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.opts.Logger.Error("scheduler tick", "err", err)
			next = s.opts.Clock.Now().Add(s.opts.Poll)
		}
		wait := next.Sub(s.opts.Clock.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-s.wakeCh:
		case <-s.opts.Clock.After(wait):
		}
	}
}

// Wait blocks until the attempts this scheduler started have finished.
func (s *Scheduler) Wait() { s.wg.Wait() }

// Tick plans the intervals that came due, starts those that can start, and
// returns when the next tick is needed. Attempts run in goroutines of their
// own (Wait waits for them).
func (s *Scheduler) Tick(ctx context.Context) (time.Time, error) {
	now := s.opts.Clock.Now()
	if err := s.sync(ctx, now); err != nil {
		return now.Add(s.opts.Poll), err
	}
	if !s.opts.NoPlan && s.only == nil {
		if err := s.plan(ctx, now); err != nil {
			return now.Add(s.opts.Poll), err
		}
	}
	if err := s.dispatch(ctx, ctx, now); err != nil {
		return now.Add(s.opts.Poll), err
	}
	return s.nextTick(now), nil
}

// sync reloads the jobs' states and the intervals from the DB when Poll
// has passed since the last reload (other processes' changes).
func (s *Scheduler) sync(ctx context.Context, now time.Time) error {
	s.mu.Lock()
	fresh := !s.synced.IsZero() && now.Sub(s.synced) < s.opts.Poll
	changes, resyncs := s.changes, s.resyncs
	s.mu.Unlock()
	if fresh {
		return nil
	}
	state, err := s.store.loadJobs(ctx)
	if err != nil {
		return err
	}
	// Dependencies look back at most a period: load two of the longest
	// period of history (a day for daily jobs), and every interval still
	// open however old (a year-long backfill) with the history before it.
	since := now.Add(-s.lookback)
	oldest, err := s.store.oldestOpen(ctx)
	if err != nil {
		return err
	}
	if o := oldest.Add(-s.lookback); !oldest.IsZero() && o.Before(since) {
		since = o
	}
	rows, err := s.store.loadIntervals(ctx, since)
	if err != nil {
		return err
	}
	if testHookSyncRead != nil {
		testHookSyncRead()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = state
	mine := map[ivKey]*ivRow{}
	for k := range s.mine {
		mine[k] = s.rows[k] // this process's attempts in flight: memory is ahead of a read that raced them
	}
	for k, n := range s.touched {
		switch {
		case n <= changes:
			delete(s.touched, k) // recorded before the read: in it
		case s.rows[k] != nil:
			mine[k] = s.rows[k] // recorded after the read: memory is ahead
		}
	}
	s.rows = make(map[ivKey]*ivRow, len(rows))
	s.open = map[ivKey]*ivRow{}
	for i := range rows {
		r := &rows[i]
		if m := mine[r.key()]; m != nil {
			r = m
		}
		s.put(r)
	}
	s.synced = now
	if s.resyncs != resyncs {
		s.synced = time.Time{}
	}
	return nil
}

// testHookSyncRead, when set by a test, runs between a sync's read of the
// DB and its use.
var testHookSyncRead func()

// resync makes the next tick read the DB. The caller holds s.mu.
func (s *Scheduler) resync() {
	s.synced = time.Time{}
	s.resyncs++
}

// plan records the intervals each scheduled job's calendar made due since
// it was last planned. A job seen for the first time starts with its latest
// closed interval (history is backfilled on request, not by surprise).
func (s *Scheduler) plan(ctx context.Context, now time.Time) error {
	for _, name := range s.order {
		j := s.jobs[name]
		if j.Calendar == nil || j.Unscheduled {
			continue
		}
		s.mu.Lock()
		st := s.state[name]
		s.mu.Unlock()
		if st.paused {
			continue
		}
		from := st.plannedUntil
		if from.IsZero() {
			last, ok := j.Calendar.LastClosed(now)
			if !ok {
				continue
			}
			from = last.Start
		}
		ivs := j.Calendar.Between(from, now, 0)
		if len(ivs) == 0 {
			continue
		}
		rows := make([]ivRow, len(ivs))
		for i, iv := range ivs {
			rows[i] = ivRow{Job: name, Start: iv.Start, End: iv.End, State: StatePending, Trigger: TriggerSchedule, NotBefore: j.Calendar.Due(iv)}
			if j.Catchup == CatchupLatest && i < len(ivs)-1 {
				rows[i].State = StateSkipped
			}
		}
		until := ivs[len(ivs)-1].End
		if err := s.store.plan(ctx, name, rows, until, now); err != nil {
			return err
		}
		s.mu.Lock()
		for i := range rows {
			if _, ok := s.rows[rows[i].key()]; !ok {
				s.put(&rows[i])
			}
		}
		st.plannedUntil = until
		s.state[name] = st
		s.mu.Unlock()
	}
	return nil
}

// waitReason says why a pending interval cannot start yet ("" if it can,
// as far as its dependencies go). The caller holds s.mu.
func (s *Scheduler) waitReason(j *Job, r *ivRow) string {
	for i, dep := range append(slices.Clone(j.DependsOn), j.FreshUpTo...) {
		d := s.jobs[dep]
		ivs := []Interval{r.iv()}
		switch {
		case d.Calendar == nil || d.Calendar.Same(j.Calendar):
		case i >= len(j.DependsOn):
			// Fresh up to the end: the dependency's interval holding
			// the last instant of r's.
			if iv, ok := d.Calendar.Containing(r.End.Add(-time.Nanosecond)); ok {
				ivs = []Interval{iv}
			}
		default:
			ivs = d.Calendar.Overlapping(r.Start, r.End)
		}
		fresh := i >= len(j.DependsOn)
		for _, iv := range ivs {
			u := s.rows[ivKey{dep, iv.Start.UnixMilli()}]
			switch {
			case u == nil && fresh && !iv.End.After(s.state[dep].plannedUntil):
				// Before the dependency's schedule began (a job is first
				// planned from its latest closed interval): nothing will
				// ever run it, and a later interval is what is fresh.
			case u == nil && r.Trigger == TriggerSchedule:
				return fmt.Sprintf("waiting for %s %s (not run yet)", dep, iv)
			case u == nil, u.State == StateSucceeded, u.State == StateSkipped:
			case u.State == StateFailed || u.State == StateChecksFailed:
				return fmt.Sprintf("blocked: %s %s %s", dep, iv, u.State)
			default:
				return fmt.Sprintf("waiting for %s %s (%s)", dep, iv, u.State)
			}
		}
	}
	return ""
}

// dispatch claims the intervals that can start and starts them.
func (s *Scheduler) dispatch(ctx, runCtx context.Context, now time.Time) error {
	s.mu.Lock()
	running := map[string]int{}
	var cands []*ivRow
	for _, r := range s.open {
		if r.State == StateRunning && s.jobs[r.Job] != nil && (s.mine[r.key()] || !r.LeaseUntil.Before(now)) {
			running[r.Job]++
		}
	}
	for _, r := range s.open {
		j := s.jobs[r.Job]
		if j == nil {
			continue // a job no longer defined
		}
		switch {
		case r.State == StateRunning && (s.mine[r.key()] || !r.LeaseUntil.Before(now)):
		case r.State == StateRunning, r.State == StatePending && !r.NotBefore.After(now):
			// A job at its limit starts nothing this tick (a backfill's
			// parallel may raise it for its own intervals).
			if running[r.Job] >= max(j.Concurrency, r.MaxParallel) {
				continue
			}
			// Dependencies first: most of a backlog waits for them, and
			// what waits need not be sorted.
			if (s.only == nil || s.only[r.Job]) && !s.state[r.Job].paused && s.waitReason(j, r) == "" {
				cands = append(cands, r)
			}
		}
	}
	slices.SortFunc(cands, func(a, b *ivRow) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Job, b.Job)
	})
	slots := s.opts.MaxConcurrent - s.inflight
	var pick []ivRow
	for _, r := range cands {
		if slots <= 0 {
			break
		}
		j := s.jobs[r.Job]
		limit := j.Concurrency
		if r.MaxParallel > limit {
			limit = r.MaxParallel
		}
		if running[r.Job] >= limit {
			continue
		}
		running[r.Job]++
		slots--
		pick = append(pick, *r)
	}
	s.mu.Unlock()
	// Readiness checks read files or the offline store: outside the lock.
	ready := pick[:0]
	for _, r := range pick {
		j := s.jobs[r.Job]
		if j.Ready != nil {
			ok, why, err := j.Ready(ctx, r.iv())
			if err != nil {
				s.opts.Logger.Warn("readiness check failed", "job", r.Job, "interval", r.iv().String(), "err", err)
			}
			if !ok || err != nil {
				s.opts.Logger.Debug("not ready", "job", r.Job, "interval", r.iv().String(), "why", why)
				continue
			}
		}
		ready = append(ready, r)
	}
	if len(ready) == 0 {
		return nil
	}
	won, err := s.store.claim(ctx, s.opts.Owner, now, s.opts.Lease, ready, func(job string) string { return s.jobs[job].Kind })
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, c := range won {
		r := c.row
		s.put(&r)
		s.inflight++
		s.started++
		s.mine[r.key()] = true
		s.wg.Add(1)
		if s.opts.Metrics != nil {
			s.opts.Metrics.running.Inc()
		}
		go s.execute(context.WithoutCancel(runCtx), runCtx, r)
	}
	// Candidates another process won: read again at the next tick.
	if len(won) < len(ready) {
		s.resync()
	}
	s.mu.Unlock()
	return nil
}

// errLeaseLost cancels an attempt whose lease another process took over.
var errLeaseLost = errors.New("lease lost: another scheduler took the interval over")

// errTimeout cancels an attempt that ran past its job's timeout.
var errTimeout = errors.New("timed out")

// execute runs one attempt: heartbeat, timeout, outcome, alert.
func (s *Scheduler) execute(recordCtx, parent context.Context, r ivRow) {
	defer s.wg.Done()
	defer s.wake()
	j := s.jobs[r.Job]
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	done := make(chan struct{})
	// The timers start before the attempt does: on a fake clock, a test
	// that sees the attempt running can move time past them.
	go s.heartbeat(recordCtx, r, cancel, done, s.opts.Clock.After(s.opts.Lease/3))
	if j.Timeout > 0 {
		timeout := s.opts.Clock.After(j.Timeout)
		go func() {
			select {
			case <-timeout:
				cancel(fmt.Errorf("%w after %s", errTimeout, j.Timeout))
			case <-done:
			}
		}()
	}
	started := s.opts.Clock.Now()
	log := s.opts.Logger.With("job", r.Job, "interval", r.iv().String(), "attempt", r.Attempt, "trigger", r.Trigger)
	log.Info("job started")
	res, err := s.safeRun(ctx, s.kinds[r.Job], r.iv())
	close(done)
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	now := s.opts.Clock.Now()
	o := outcome{res: res, notBefore: now}
	cause := context.Cause(ctx)
	switch {
	case err == nil:
		o.runState, o.intervalState = StateSucceeded, StateSucceeded
	case errors.Is(err, ErrChecksFailed):
		o.runState, o.intervalState, o.err = StateChecksFailed, StateChecksFailed, err.Error()
	case parent.Err() != nil:
		// This process is stopping: the interval goes back to pending for
		// the next scheduler, without waiting for a backoff.
		o.runState, o.intervalState, o.err = StateInterrupted, StatePending, "scheduler stopped: "+err.Error()
	default:
		o.runState, o.err = StateFailed, err.Error()
		if errors.Is(cause, errTimeout) {
			o.runState, o.err = StateTimedOut, cause.Error()
		}
		if r.Attempt <= j.Retries {
			o.intervalState = StatePending
			s.mu.Lock()
			o.notBefore = now.Add(Backoff(r.Attempt, s.opts.RetryBase, s.opts.RetryMax, s.rnd))
			s.mu.Unlock()
			if o.runState == StateFailed {
				o.runState = StateRetrying
			}
		} else {
			o.intervalState = StateFailed
		}
	}
	lost, ferr := s.record(recordCtx, r, o, now)
	if ferr != nil {
		log.Error("record job outcome", "err", ferr)
	}
	log.Info("job finished", "state", o.runState, "rows", res.Rows, "err", o.err)
	s.mu.Lock()
	s.inflight--
	delete(s.mine, r.key())
	if cur := s.rows[r.key()]; cur != nil && cur.RunID == r.RunID && !lost && ferr == nil {
		cur.State, cur.NotBefore, cur.Owner, cur.LeaseUntil = o.intervalState, o.notBefore, "", time.Time{}
		s.put(cur)
		s.changes++
		s.touched[r.key()] = s.changes
	} else {
		s.resync()
	}
	s.mu.Unlock()
	if m := s.opts.Metrics; m != nil {
		m.running.Dec()
		m.runs.WithLabelValues(r.Job, o.runState).Inc()
		m.duration.WithLabelValues(r.Job).Observe(now.Sub(started).Seconds())
		switch o.runState {
		case StateSucceeded:
			m.lastSuccess.WithLabelValues(r.Job).Set(float64(now.UnixMilli()) / 1000)
		case StateInterrupted:
		default:
			m.failures.WithLabelValues(r.Job).Inc()
		}
	}
	if !lost && ferr == nil && o.intervalState == StateSucceeded && r.Trigger != TriggerSchedule {
		s.cascade(recordCtx, r)
	}
	if !lost && (o.intervalState == StateFailed || o.intervalState == StateChecksFailed) && s.opts.Notifier != nil {
		a := Alert{Job: r.Job, Kind: j.Kind, Interval: r.iv(), Start: r.Start, End: r.End, State: o.intervalState, Attempt: r.Attempt,
			Error: o.err, At: now}
		a.Summary = fmt.Sprintf("%s %s %s after %d attempt(s): %s", r.Job, r.iv(), o.intervalState, r.Attempt, o.err)
		if o.intervalState == StateChecksFailed {
			a.Summary = fmt.Sprintf("%s %s: an error-level check failed; nothing downstream of it runs until it is fixed and triggered again: %s", r.Job, r.iv(), o.err)
		}
		actx, acancel := context.WithTimeout(recordCtx, 30*time.Second)
		if err := s.opts.Notifier.Notify(actx, a); err != nil {
			log.Error("alert not delivered", "err", err)
		}
		acancel()
	}
}

// safeRun runs a kind, turning a panic into an error: a bug in one job
// must not take the server down.
func (s *Scheduler) safeRun(ctx context.Context, k Kind, iv Interval) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("job panicked: %v", p)
		}
	}()
	return k.Run(ctx, iv)
}

// heartbeat renews the lease every Lease/3 until done; a lost lease
// cancels the attempt.
func (s *Scheduler) heartbeat(ctx context.Context, r ivRow, cancel context.CancelCauseFunc, done <-chan struct{}, tick <-chan time.Time) {
	for {
		select {
		case <-done:
			return
		case <-tick:
		}
		tick = s.opts.Clock.After(s.opts.Lease / 3)
		ok, err := s.store.renew(ctx, r, s.opts.Clock.Now().Add(s.opts.Lease))
		if err != nil {
			s.opts.Logger.Warn("renew lease", "job", r.Job, "err", err)
			continue
		}
		if !ok {
			cancel(errLeaseLost)
			return
		}
	}
}

// nextTick is the earliest of: the next interval due, the next retry, a
// lease expiring, and the next poll.
func (s *Scheduler) nextTick(now time.Time) time.Time {
	next := now.Add(s.opts.Poll)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.only == nil && !s.opts.NoPlan {
		for _, name := range s.order {
			j := s.jobs[name]
			st := s.state[name]
			if j.Calendar == nil || j.Unscheduled || st.paused || st.plannedUntil.IsZero() {
				continue
			}
			if end := j.Calendar.Next(st.plannedUntil); !end.IsZero() {
				if due := end.Add(j.Calendar.Delay()); due.Before(next) {
					next = due
				}
			}
		}
	}
	for _, r := range s.open {
		switch {
		case r.State == StatePending && r.NotBefore.After(now) && r.NotBefore.Before(next):
			next = r.NotBefore
		case r.State == StateRunning && r.Owner != s.opts.Owner && r.LeaseUntil.After(now) && r.LeaseUntil.Before(next):
			next = r.LeaseUntil.Add(time.Millisecond)
		}
	}
	return next
}

// inflightStarted returns how many attempts this process has started.
func (s *Scheduler) inflightStarted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// put stores r and keeps the open index in step. The caller holds s.mu.
func (s *Scheduler) put(r *ivRow) {
	k := r.key()
	s.rows[k] = r
	if terminal(r.State) {
		delete(s.open, k)
	} else {
		s.open[k] = r
	}
}

// record writes an attempt's outcome, batched with those of the attempts
// finishing at the same time (one transaction for all: a backfill's
// attempts do not each pay a commit).
func (s *Scheduler) record(ctx context.Context, r ivRow, o outcome, now time.Time) (lost bool, err error) {
	req := &finishReq{f: finished{r: r, o: o, now: now}, done: make(chan error, 1)}
	s.recMu.Lock()
	s.recQueue = append(s.recQueue, req)
	s.recMu.Unlock()
	s.recLock <- struct{}{}
	s.recMu.Lock()
	batch := s.recQueue
	s.recQueue = nil
	s.recMu.Unlock()
	if len(batch) > 0 {
		fs := make([]*finished, len(batch))
		for i, b := range batch {
			fs[i] = &b.f
		}
		err := s.store.finish(ctx, fs)
		// Every request of the batch is answered before the lock is
		// released: one that queued earlier is done when its owner gets it.
		for _, b := range batch {
			b.done <- err
		}
	}
	<-s.recLock
	err = <-req.done
	return req.f.lost, err
}

// cascade queues, with trigger "dependency", the intervals of the jobs that
// depend on r's job and overlap r, after r ran by hand or in a backfill:
// what was computed from the old data is computed again (a materialization
// after its run, an aggregated set after the set it reads). Intervals
// pending or running, or finished after r started (another process ran
// them on r's data), are left as they are.
// The schedule's own runs need no cascade: their dependents are planned too.
// Dependents are queued in the DB even when this process does not run them
// (a CLI backfill): a server's scheduler does.
func (s *Scheduler) cascade(ctx context.Context, r ivRow) {
	for _, name := range s.order {
		j := s.jobs[name]
		if !slices.Contains(j.DependsOn, r.Job) {
			continue
		}
		ivs := []Interval{r.iv()}
		if j.Calendar != nil && !j.Calendar.Same(s.jobs[r.Job].Calendar) {
			ivs = j.Calendar.Overlapping(r.Start, r.End)
		}
		n, err := s.store.requeueStale(ctx, name, ivs, r.Claimed, s.opts.Clock.Now())
		if n > 0 {
			s.mu.Lock()
			s.resync()
			s.mu.Unlock()
		}
		if err != nil {
			s.opts.Logger.Error("queue dependent job", "job", name, "after", r.Job, "err", err)
		}
	}
}
