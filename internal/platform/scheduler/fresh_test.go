package scheduler

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/scheduler/calendar"
)

// A weekly job reading a daily one (a retraining on its feature sets)
// waits for the daily job's last day of the week only: not for the days
// before the daily job's schedule began, and not for every day of the week.
func TestFreshUpTo(t *testing.T) {
	monday := time.Date(2026, 6, 8, 0, 30, 0, 0, time.UTC)
	week := func(from string) string {
		s, _ := time.Parse(time.DateOnly, from)
		return Interval{Start: s, End: s.AddDate(0, 0, 7)}.String()
	}
	for _, c := range []struct {
		name  string
		start time.Time
		// first is what the first step runs, and waiting what the weekly
		// job then waits for ("" when it ran).
		first   []string
		waiting string
		// then is what runs an hour later.
		then []string
	}{
		{name: "last day not closed yet", start: monday,
			first:   []string{"run:a 2026-06-06"},
			waiting: "waiting for run:a 2026-06-07 (not run yet)",
			then:    []string{"run:a 2026-06-07", "train:m " + week("2026-06-01")}},
		{name: "week before the daily schedule began", start: day0,
			first: []string{"run:a 2026-06-01", "train:m " + week("2026-05-25")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := metatest.SQLite(t, Schema)
			clock := NewFakeClock(c.start)
			rec := &recorder{behave: func(_ context.Context, job string, iv Interval, _ int) (Result, error) {
				if job == "run:a" && iv.String() == "2026-06-14" {
					return Result{}, errors.New("source late")
				}
				return Result{Rows: 3}, nil
			}}
			a := daily("run:a")
			a.Calendar, a.Retries = calendar.MustParse("daily", "", time.Hour), 0
			m := Job{Name: "train:m", Kind: "fake", Target: "m", Calendar: calendar.MustParse("weekly", "", 0), FreshUpTo: []string{"run:a"}}
			s := newSched(t, db, clock, rec, []Job{a, m}, nil)
			step(t, s)
			// Started in one tick, in any order.
			eq(t, "first step", sorted(rec.got()), sorted(c.first))
			if st := status(t, s, "train:m"); st.Waiting != c.waiting {
				t.Errorf("train:m waiting = %q, want %q", st.Waiting, c.waiting)
			}
			if c.then != nil {
				clock.Advance(time.Hour)
				step(t, s)
				eq(t, "an hour later", rec.got()[len(c.first):], c.then)
			}
			// The next week: every day runs, the last one fails for good,
			// and the weekly job is blocked by that day alone.
			clock.Set(time.Date(2026, 6, 15, 2, 0, 0, 0, time.UTC))
			step(t, s)
			if st := status(t, s, "train:m"); st.Waiting != "blocked: run:a 2026-06-14 failed" || st.Pending != 1 {
				t.Errorf("train:m after a failed last day = %+v", st)
			}
			for _, call := range rec.got() {
				if call == "train:m "+week("2026-06-08") {
					t.Errorf("train:m ran on stale data: %q", rec.got())
				}
			}
		})
	}
}

func sorted(xs []string) []string { return slices.Sorted(slices.Values(xs)) }

func status(t *testing.T, s *Scheduler, job string) JobStatus {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range st {
		if js.Name == job {
			return js
		}
	}
	t.Fatalf("no status of %s", job)
	return JobStatus{}
}
