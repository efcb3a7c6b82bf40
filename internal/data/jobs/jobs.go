// Package jobs turns the schedules of feature definitions into scheduler
// jobs and provides the data layer's job kinds: "run" (a feature set's
// pipeline run for the UTC days of an interval) and "materialize" (its
// latest rows into the online store, up to the interval's end).
package jobs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/data/profile/profiledb"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/platform/scheduler/calendar"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Kind names.
const (
	KindRun         = "run"
	KindMaterialize = "materialize"
)

// FromSpec returns a job per scheduled feature set ("run:SET") and per
// materialization ("materialize:SET": after each run, on the run's
// calendar and depending on it, or on its own schedule). engine, when it
// counts source rows, serves readiness checks with min_rows; repo resolves
// readiness globs.
func FromSpec(f *spec.Features, repo string, engine offline.Engine) ([]scheduler.Job, error) {
	var out []scheduler.Job
	for _, fs := range f.FeatureSets {
		if fs.Schedule == nil {
			// A set without a schedule is still backfilled through the
			// scheduler, a UTC day per interval.
			out = append(out, scheduler.Job{Name: scheduler.JobName(KindRun, fs.Name), Kind: KindRun, Target: fs.Name,
				Calendar: daily, Unscheduled: true, Catchup: scheduler.CatchupAll, Retries: spec.DefaultRetries, Concurrency: 1})
		}
		if fs.Schedule != nil {
			j, err := job(KindRun, fs.Name, fs.Schedule)
			if err != nil {
				return nil, err
			}
			for _, d := range fs.Schedule.DependsOn {
				j.DependsOn = append(j.DependsOn, scheduler.JobName(KindRun, d))
			}
			if src := f.Source(fs.Source); src != nil && src.Ready != nil && engine != nil {
				j.Ready = readiness(src, repo, engine)
			}
			out = append(out, j)
		}
		if m := fs.Materialize; m != nil {
			switch {
			case m.AfterRun && fs.Schedule != nil:
				j, err := job(KindMaterialize, fs.Name, fs.Schedule)
				if err != nil {
					return nil, err
				}
				j.DependsOn = []string{scheduler.JobName(KindRun, fs.Name)}
				j.Ready = nil
				j.Schedule += " (after run)"
				out = append(out, j)
			case m.Schedule != nil:
				j, err := job(KindMaterialize, fs.Name, m.Schedule)
				if err != nil {
					return nil, err
				}
				out = append(out, j)
			}
		}
	}
	return out, nil
}

func job(kind, set string, s *spec.Schedule) (scheduler.Job, error) {
	j, err := ScheduledJob(kind, set, s)
	if err != nil {
		return j, fmt.Errorf("feature set %s: %w", set, err)
	}
	return j, nil
}

// ScheduledJob is the job "KIND:TARGET" of a schedule as written in a
// project file (its calendar, catch-up, retries, timeout and concurrency):
// what the other layers' job sources (training, monitors) build theirs
// from. Dependencies are the caller's.
func ScheduledJob(kind, target string, s *spec.Schedule) (scheduler.Job, error) {
	cal, err := s.Calendar()
	if err != nil {
		return scheduler.Job{}, fmt.Errorf("schedule of %s: %w", scheduler.JobName(kind, target), err)
	}
	sched := s.Cron
	if s.Timezone != "" {
		sched += " " + s.Timezone
	}
	if s.Delay != 0 {
		sched += " +" + s.Delay.String()
	}
	return scheduler.Job{Name: scheduler.JobName(kind, target), Kind: kind, Target: target, Calendar: cal, Schedule: sched,
		Catchup: s.EffectiveCatchup(), Retries: s.EffectiveRetries(), Timeout: s.Timeout.D(), Concurrency: s.EffectiveConcurrency()}, nil
}

// readiness checks a source's ready: block for an interval.
func readiness(src *spec.Source, repo string, engine offline.Engine) scheduler.ReadyFunc {
	r := src.Ready
	counter, _ := engine.(offline.SourceCounter)
	return func(ctx context.Context, iv scheduler.Interval) (bool, string, error) {
		if r.Glob != "" {
			pat := r.ExpandGlob(iv.Start)
			if !filepath.IsAbs(pat) {
				pat = filepath.Join(repo, pat)
			}
			m, err := filepath.Glob(pat)
			if err != nil {
				return false, "", fmt.Errorf("source %s ready glob %q: %w", src.Name, r.Glob, err)
			}
			if len(m) == 0 {
				return false, fmt.Sprintf("source %s: no file matches %s", src.Name, pat), nil
			}
		}
		if r.MinRows > 0 {
			if counter == nil {
				return false, "", fmt.Errorf("source %s ready min_rows: the offline engine cannot count source rows", src.Name)
			}
			n, err := counter.CountSourceRows(ctx, src, iv.Start, iv.End)
			if err != nil {
				return false, "", err
			}
			if n < r.MinRows {
				return false, fmt.Sprintf("source %s holds %d rows in %s, ready at %d", src.Name, n, iv, r.MinRows), nil
			}
		}
		return true, "", nil
	}
}

// Deps are what the data kinds run with.
type Deps struct {
	Meta           *meta.DB
	Engine         offline.Engine
	CatalogVersion int
	// Materializer writes to the online store; nil makes materialize jobs
	// fail with an error saying so.
	Materializer *retrieval.Materializer
	// Sets are the online definitions of the feature sets (materialize).
	Sets []retrieval.SetDef
}

// Kinds returns the data layer's kinds, to register in scheduler.Options.Kinds.
func Kinds(d Deps) map[string]scheduler.Factory {
	return map[string]scheduler.Factory{
		KindRun:         func(j scheduler.Job) (scheduler.Kind, error) { return runKind{d: d, set: j.Target}, nil },
		KindMaterialize: func(j scheduler.Job) (scheduler.Kind, error) { return materializeKind{d: d, set: j.Target}, nil },
	}
}

const day = 24 * time.Hour

// daily cuts an unscheduled set's backfills into UTC days.
var daily = calendar.MustParse("daily", "", 0)

// Days returns the UTC days an interval touches (a run replaces whole days).
func Days(iv scheduler.Interval) (first, last time.Time) {
	return iv.Start.UTC().Truncate(day), iv.End.Add(-time.Nanosecond).UTC().Truncate(day)
}

type runKind struct {
	d   Deps
	set string
}

func (k runKind) Run(ctx context.Context, iv scheduler.Interval) (scheduler.Result, error) {
	first, last := Days(iv)
	r, err := pipeline.Execute(ctx, k.d.Meta, k.d.Engine, offline.RunRequest{Set: k.set, Start: first, End: last}, k.d.CatalogVersion)
	if err == nil {
		err = profiledb.SaveRun(ctx, k.d.Meta, r)
	}
	var res scheduler.Result
	if r != nil {
		res.Rows = r.RowsOut
		res.Detail = fmt.Sprintf("pipeline run %s: %d partition(s)", r.ID, len(r.Partitions))
		for _, c := range r.Checks {
			res.Checks = append(res.Checks, scheduler.Check{Name: c.Check, Level: c.Level, Passed: c.Passed, Detail: c.Message})
		}
	}
	if errors.Is(err, offline.ErrChecksFailed) {
		return res, fmt.Errorf("%w: %w", scheduler.ErrChecksFailed, err)
	}
	return res, err
}

type materializeKind struct {
	d   Deps
	set string
}

func (k materializeKind) Run(ctx context.Context, iv scheduler.Interval) (scheduler.Result, error) {
	if k.d.Materializer == nil {
		return scheduler.Result{}, errors.New("no online store open for materialization (the embedded store is held by `atrium serve`: run the scheduler inside it)")
	}
	var sets []retrieval.SetDef
	for _, s := range k.d.Sets {
		if s.Name == k.set {
			sets = append(sets, s)
		}
	}
	if len(sets) == 0 {
		return scheduler.Result{}, fmt.Errorf("materialize: feature set %s is not in the applied catalog", k.set)
	}
	rs, err := k.d.Materializer.Materialize(ctx, sets, iv.End)
	var res scheduler.Result
	for _, r := range rs {
		res.Rows += r.Rows
		res.Detail = r.String()
	}
	return res, err
}

// Scheduled reports whether any feature set has a schedule (the scheduler
// then runs inside `atrium serve` unless scheduler.enabled says otherwise).
func Scheduled(f *spec.Features) bool {
	for _, fs := range f.FeatureSets {
		if fs.Schedule != nil || (fs.Materialize != nil && fs.Materialize.Schedule != nil) {
			return true
		}
	}
	return false
}

// CheckRange refuses a backfill of set over [start, end) when its source
// holds no row in the range the run reads (from start minus the largest
// window): nothing would be computed. Engines that cannot count source
// rows accept every range.
func CheckRange(ctx context.Context, f *spec.Features, engine offline.Engine, set string, start, end time.Time) error {
	fs := f.Set(set)
	if fs == nil {
		return fmt.Errorf("%w %q", scheduler.ErrUnknownJob, set)
	}
	counter, ok := engine.(offline.SourceCounter)
	src := f.Source(fs.Source)
	if !ok || src == nil {
		return nil
	}
	from := start.Add(-fs.LargestWindow().D())
	n, err := counter.CountSourceRows(ctx, src, from, end)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: source %s (%s) holds no row with %s in [%s, %s): nothing to backfill for %s; nothing was started",
			scheduler.ErrBadRequest, src.Name, src.Path, src.Timestamp, from.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), set)
	}
	return nil
}
