package scheduler

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
)

// TriggerResult says what a trigger or backfill queued.
type TriggerResult struct {
	Job     string `json:"job"`
	Trigger string `json:"trigger"`
	// At is the scheduler's time of the trigger: the history of what it
	// queued starts then.
	At time.Time `json:"at"`
	// Queued are the intervals queued; Running those left alone because an
	// attempt holds them.
	Queued   []Interval `json:"-"`
	Running  []Interval `json:"-"`
	QueuedN  int        `json:"queued"`
	RunningN int        `json:"already_running"`
	// FirstDay and LastDay name the first and last interval asked for.
	FirstDay  string   `json:"first,omitempty"`
	LastDay   string   `json:"last,omitempty"`
	Parallel  int      `json:"parallel,omitempty"`
	Intervals []string `json:"intervals"`
}

// Intervals returns the job's intervals that overlap [start, end): the
// calendar's, or [start, end) itself for a job without one.
func (s *Scheduler) Intervals(job string, start, end time.Time) ([]Interval, error) {
	j, ok := s.jobs[job]
	if !ok {
		return nil, fmt.Errorf("%w %q: the jobs are %v", ErrUnknownJob, job, s.order)
	}
	if !end.After(start) {
		return nil, fmt.Errorf("%w: end %s is not after start %s", ErrBadRequest, end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	if j.Calendar == nil {
		return []Interval{{Start: start, End: end}}, nil
	}
	ivs := j.Calendar.Overlapping(start, end)
	if len(ivs) > 100000 {
		return nil, fmt.Errorf("%w: %d intervals of %s, expected at most 100000", ErrBadRequest, len(ivs), job)
	}
	return ivs, nil
}

// Trigger queues intervals of a job to run now (again, if they ran
// before): trigger is TriggerManual or TriggerBackfill; parallel, when
// above the job's concurrency, lets that many of them run at once. A
// running interval is left alone and reported in Running. The intervals
// run when a scheduler ticks: this process's (Run, Tick) or another's.
func (s *Scheduler) Trigger(ctx context.Context, job string, ivs []Interval, trigger string, parallel int) (TriggerResult, error) {
	if _, ok := s.jobs[job]; !ok {
		return TriggerResult{}, fmt.Errorf("%w %q: the jobs are %v", ErrUnknownJob, job, s.order)
	}
	now := s.opts.Clock.Now()
	busy, err := s.store.enqueue(ctx, job, ivs, trigger, parallel, now)
	if err != nil {
		return TriggerResult{}, err
	}
	res := TriggerResult{Job: job, Trigger: trigger, At: now, Parallel: parallel, Running: busy, Intervals: []string{}}
	for _, iv := range ivs {
		if !slices.Contains(busy, iv) {
			res.Queued = append(res.Queued, iv)
			res.Intervals = append(res.Intervals, iv.String())
		}
	}
	res.QueuedN, res.RunningN = len(res.Queued), len(busy)
	if len(ivs) > 0 {
		res.FirstDay, res.LastDay = ivs[0].String(), ivs[len(ivs)-1].String()
	}
	s.mu.Lock()
	s.resync()
	s.mu.Unlock()
	s.wake()
	return res, nil
}

// Pause stops planning and starting the job's intervals (those running
// finish). Resume catches up by the job's policy.
func (s *Scheduler) Pause(ctx context.Context, job string) error { return s.setPaused(ctx, job, true) }

// Resume undoes Pause.
func (s *Scheduler) Resume(ctx context.Context, job string) error {
	return s.setPaused(ctx, job, false)
}

func (s *Scheduler) setPaused(ctx context.Context, job string, paused bool) error {
	if _, ok := s.jobs[job]; !ok {
		return fmt.Errorf("%w %q: the jobs are %v", ErrUnknownJob, job, s.order)
	}
	if err := s.store.setPaused(ctx, job, paused); err != nil {
		return err
	}
	s.mu.Lock()
	s.resync()
	s.mu.Unlock()
	s.wake()
	return nil
}

// JobStatus is a job as listings show it.
type JobStatus struct {
	Job
	Paused bool `json:"paused"`
	// NextDue is when the next interval's run is due (zero without a calendar).
	NextDue time.Time `json:"next_due,omitzero"`
	Pending int       `json:"pending"`
	Running int       `json:"running"`
	// Failed counts intervals failed for good (or whose checks failed).
	Failed int `json:"failed"`
	// Waiting says why the oldest pending interval has not started.
	Waiting string `json:"waiting,omitempty"`
	// LastSuccess is the end of the newest succeeded interval.
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// Status lists every job with its counts, read fresh from the DB.
func (s *Scheduler) Status(ctx context.Context) ([]JobStatus, error) {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	s.resync()
	s.mu.Unlock()
	if err := s.sync(ctx, now); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]JobStatus, 0, len(s.order))
	idx := map[string]int{}
	for i, name := range s.order {
		j := s.jobs[name]
		st := JobStatus{Job: *j, Paused: s.state[name].paused}
		if j.Calendar != nil && !j.Unscheduled {
			from := s.state[name].plannedUntil
			if from.IsZero() {
				from = now
			}
			if end := j.Calendar.Next(from); !end.IsZero() {
				st.NextDue = end.Add(j.Calendar.Delay())
			}
		}
		out = append(out, st)
		idx[name] = i
	}
	oldest := map[string]*ivRow{}
	for _, r := range s.rows {
		i, ok := idx[r.Job]
		if !ok {
			continue
		}
		st := &out[i]
		switch r.State {
		case StatePending:
			st.Pending++
			if o := oldest[r.Job]; o == nil || r.Start.Before(o.Start) {
				oldest[r.Job] = r
			}
		case StateRunning:
			st.Running++
		case StateFailed, StateChecksFailed:
			st.Failed++
		}
	}
	last, err := s.store.lastSuccess(ctx)
	if err != nil {
		return nil, err
	}
	for job, t := range last {
		if i, ok := idx[job]; ok {
			out[i].LastSuccess = t
		}
	}
	for job, r := range oldest {
		st := &out[idx[job]]
		switch w := s.waitReason(s.jobs[job], r); {
		case w != "":
			st.Waiting = w
		case r.NotBefore.After(now):
			st.Waiting = fmt.Sprintf("%s: next attempt at %s", r.iv(), r.NotBefore.Format(time.RFC3339))
		case st.Paused:
			st.Waiting = "paused"
		}
	}
	return out, nil
}

// States returns the state of each of a job's intervals, read from the DB
// ("" for an interval it has no row for).
func (s *Scheduler) States(ctx context.Context, job string, ivs []Interval) ([]string, error) {
	out := make([]string, len(ivs))
	if len(ivs) == 0 {
		return out, nil
	}
	rows, err := meta.Collect(ctx, s.opts.DB, `SELECT start_ms, state FROM scheduler_intervals WHERE job = ? AND start_ms >= ? AND start_ms <= ?`,
		[]any{job, ms(ivs[0].Start), ms(ivs[len(ivs)-1].Start)}, func(row meta.Scanner) (ivRow, error) {
			var r ivRow
			var start int64
			err := row.Scan(&start, &r.State)
			r.Start = fromMS(start)
			return r, err
		})
	if err != nil {
		return nil, fmt.Errorf("read states of %s: %w", job, err)
	}
	byStart := map[int64]string{}
	for _, r := range rows {
		byStart[ms(r.Start)] = r.State
	}
	for i, iv := range ivs {
		out[i] = byStart[ms(iv.Start)]
	}
	return out, nil
}

// Done reports whether every state is terminal.
func Done(states []string) bool {
	for _, st := range states {
		if !terminal(st) {
			return false
		}
	}
	return true
}
