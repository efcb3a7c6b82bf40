// Package scheduler runs Atrium's jobs on their schedules: feature-set runs,
// materialization, training and monitors. It plans the intervals each job is
// due for (catch-up after downtime: all or the latest only), waits for the
// intervals of the jobs it depends on and for a source's readiness check,
// bounds concurrency per job and overall, retries with exponential backoff
// and jitter, and records every attempt in the metadata DB.
//
// Exactly once per (job, interval) across processes: an interval is claimed
// by a conditional UPDATE in the metadata DB that only one process can win,
// and held by a lease the runner renews while it works. A process killed
// mid-run stops renewing; once its lease expires another process retries
// the interval (the attempt is recorded as interrupted). The work itself
// must be safe to repeat after a crash (a pipeline run swaps partitions
// atomically).
//
// Time comes from a Clock: tests and the demo use a FakeClock and never
// sleep. Job kinds plug in by name (Options.Kinds): the data layer wires
// "run" and "materialize"; training and monitors register theirs the same way.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/scheduler/calendar"
)

// Interval is the period [Start, End) one run of a job covers.
type Interval = calendar.Interval

// Sentinel errors. Callers check them with errors.Is.
var (
	// ErrChecksFailed is wrapped by a Kind whose error-level check failed:
	// the attempt is not retried, everything downstream of the interval
	// waits, and an alert is raised.
	ErrChecksFailed = errors.New("error-level check failed")
	// ErrUnknownJob reports a job name no definition has.
	ErrUnknownJob = errors.New("unknown job")
	// ErrBadRequest reports a trigger or backfill that cannot be honoured
	// (range outside the data, end before start...): nothing was started.
	ErrBadRequest = errors.New("bad request")
)

// Kind runs one job's interval. Run must honour ctx (its deadline is the
// job's timeout, and it is cancelled when the lease is lost) and be safe to
// repeat for the same interval: a retry or a crash recovery runs it again.
type Kind interface {
	Run(ctx context.Context, iv Interval) (Result, error)
}

// KindFunc adapts a function to Kind.
type KindFunc func(ctx context.Context, iv Interval) (Result, error)

// Run calls f.
func (f KindFunc) Run(ctx context.Context, iv Interval) (Result, error) { return f(ctx, iv) }

// Factory builds the Kind of one job (its Target names what it acts on).
// Kinds are registered by name in Options.Kinds: "run", "materialize",
// "train", "monitor".
type Factory func(job Job) (Kind, error)

// Result is what one run did.
type Result struct {
	// Rows is how many rows the run wrote (or scored, or checked).
	Rows int64 `json:"rows"`
	// Checks are the data-quality or monitor checks the run evaluated.
	Checks []Check `json:"checks,omitempty"`
	// Detail is a one-line summary for the history ("3 partitions").
	Detail string `json:"detail,omitempty"`
}

// Check is one check's outcome.
type Check struct {
	Name   string `json:"name"`
	Level  string `json:"level"` // error or warn
	Passed bool   `json:"passed"`
	Detail string `json:"detail,omitempty"`
}

// ReadyFunc is a job's readiness check for an interval (a source's files
// landed, it holds enough rows): not ready means try again later; why says
// what is missing. An error is logged and treated as not ready.
type ReadyFunc func(ctx context.Context, iv Interval) (ready bool, why string, err error)

// Catch-up policies.
const (
	CatchupAll    = "all"
	CatchupLatest = "latest"
)

// Job is one schedulable unit: a feature set's runs, its materialization, a
// training spec, a monitor.
type Job struct {
	// Name is unique among jobs: "<kind>:<target>" ("run:listing_profile").
	Name string `json:"name"`
	// Kind names the registered Factory that builds its runner.
	Kind string `json:"kind"`
	// Target is what the kind acts on (a feature set, a training spec).
	Target string `json:"target"`
	// Calendar cuts time into the job's intervals. Nil: the job only runs
	// when triggered.
	Calendar *calendar.Calendar `json:"-"`
	// Unscheduled jobs are never planned: the calendar only cuts the ranges
	// of triggers and backfills into intervals (a feature set without a
	// schedule is backfilled day by day).
	Unscheduled bool `json:"unscheduled,omitempty"`
	// Schedule is the calendar as written, for listings.
	Schedule string `json:"schedule,omitempty"`
	// DependsOn names jobs whose overlapping intervals must have succeeded
	// before an interval of this job starts.
	DependsOn []string `json:"depends_on,omitempty"`
	// FreshUpTo names jobs whose interval holding this interval's last
	// instant must have succeeded before an interval of this job starts:
	// what the job reads must be fresh up to its interval's end. Unlike
	// DependsOn, the dependency's earlier intervals are not waited for (a
	// weekly retraining waits for the last day of its daily feature sets,
	// not for every day of the week), and a dependency run by hand or in a
	// backfill queues nothing of this job again.
	FreshUpTo []string `json:"fresh_up_to,omitempty"`
	// Catchup is CatchupAll (default) or CatchupLatest.
	Catchup string `json:"catchup"`
	// Retries is how many times a failed attempt is retried.
	Retries int `json:"retries"`
	// Timeout bounds one attempt (0: none).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Concurrency bounds the job's intervals running at once (default 1).
	Concurrency int `json:"concurrency"`
	// Ready, when set, must pass before an interval starts.
	Ready ReadyFunc `json:"-"`
}

// JobName is the name of the job of a kind on a target.
func JobName(kind, target string) string { return kind + ":" + target }

// Triggers: what made an interval run.
const (
	TriggerSchedule   = "schedule"
	TriggerManual     = "manual"
	TriggerBackfill   = "backfill"
	TriggerDependency = "dependency"
)

// Interval and run states.
const (
	// StatePending: waiting to start (for its due time, its dependencies,
	// readiness, a free slot, or a retry's backoff).
	StatePending = "pending"
	// StateRunning: an attempt holds the lease.
	StateRunning = "running"
	// StateSucceeded: done; never run again unless triggered.
	StateSucceeded = "succeeded"
	// StateFailed: the last attempt failed and no retry is left.
	StateFailed = "failed"
	// StateChecksFailed: an error-level check failed; not retried.
	StateChecksFailed = "checks_failed"
	// StateSkipped: missed during downtime under catchup: latest.
	StateSkipped = "skipped"
	// Run (attempt) states besides the above: the attempt will be retried,
	// it passed its timeout, or its process died and the lease expired.
	StateRetrying    = "retrying"
	StateTimedOut    = "timed_out"
	StateInterrupted = "interrupted"
)

// terminal reports interval states no scheduler changes by itself.
func terminal(state string) bool {
	return state == StateSucceeded || state == StateFailed || state == StateChecksFailed || state == StateSkipped
}

// Backoff is the wait before retry n (1 for the first retry): base·2^(n-1),
// capped at max, with up to 50% random jitter either way so that retries
// of many intervals failing together spread out.
func Backoff(n int, base, maxWait time.Duration, rnd *rand.Rand) time.Duration {
	d := base
	for i := 1; i < n && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	if rnd != nil {
		d = time.Duration(float64(d) * (0.5 + rnd.Float64()))
	}
	return d
}

func (j *Job) validate(kinds map[string]Factory, names map[string]bool) error {
	switch {
	case j.Name == "":
		return errors.New("a job has no name")
	case kinds[j.Kind] == nil:
		return fmt.Errorf("job %s: kind %q is not registered", j.Name, j.Kind)
	}
	for _, d := range append(slices.Clone(j.DependsOn), j.FreshUpTo...) {
		if !names[d] {
			return fmt.Errorf("job %s depends on %w %q", j.Name, ErrUnknownJob, d)
		}
	}
	return nil
}
