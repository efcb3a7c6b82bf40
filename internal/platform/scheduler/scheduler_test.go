package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/scheduler/calendar"
)

var day0 = time.Date(2026, 6, 3, 0, 30, 0, 0, time.UTC)

// recorder is a fake job kind: it records each call and answers with what
// its behaviour says.
type recorder struct {
	mu    sync.Mutex
	calls []string // "job interval"
	// behave decides an attempt's outcome; nil succeeds.
	behave func(ctx context.Context, job string, iv Interval, n int) (Result, error)
}

func (r *recorder) factory(job Job) (Kind, error) {
	return KindFunc(func(ctx context.Context, iv Interval) (Result, error) {
		r.mu.Lock()
		r.calls = append(r.calls, job.Name+" "+iv.String())
		n := 0
		for _, c := range r.calls {
			if c == job.Name+" "+iv.String() {
				n++
			}
		}
		r.mu.Unlock()
		if r.behave != nil {
			return r.behave(ctx, job.Name, iv, n)
		}
		return Result{Rows: 10}, nil
	}), nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

type alerts struct {
	mu  sync.Mutex
	got []Alert
}

func (a *alerts) Notify(_ context.Context, al Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, al)
	return nil
}

func daily(name string, deps ...string) Job {
	return Job{Name: name, Kind: "fake", Target: name, Calendar: calendar.MustParse("daily", "", 0), Schedule: "daily", DependsOn: deps}
}

func newSched(t *testing.T, db *meta.DB, clock Clock, rec *recorder, jobs []Job, mod func(*Options)) *Scheduler {
	t.Helper()
	o := Options{DB: db, Jobs: jobs, Kinds: map[string]Factory{"fake": rec.factory}, Clock: clock, MaxConcurrent: 8}
	if mod != nil {
		mod(&o)
	}
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// step ticks and waits for the attempts it started, until a tick starts
// nothing new (dependencies unblock within one step).
func step(t *testing.T, s *Scheduler) {
	t.Helper()
	for range 50 {
		before := s.inflightStarted()
		if _, err := s.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.Wait()
		if s.inflightStarted() == before {
			return
		}
	}
	t.Fatal("scheduler kept starting attempts for 50 ticks")
}

func runsOf(t *testing.T, db *meta.DB, f RunFilter) []string {
	t.Helper()
	f.Ascending, f.Limit = true, 1000
	runs, err := ListRuns(context.Background(), db, f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range runs {
		out = append(out, fmt.Sprintf("%s %s #%d %s %s", r.Job, r.Interval(), r.Attempt, r.Trigger, r.State))
	}
	return out
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

func TestCatchup(t *testing.T) {
	for _, policy := range []string{CatchupAll, CatchupLatest} {
		t.Run(policy, func(t *testing.T) {
			db := metatest.SQLite(t, Schema)
			clock := NewFakeClock(day0)
			rec := &recorder{}
			j := daily("run:a")
			j.Catchup = policy
			s := newSched(t, db, clock, rec, []Job{j}, nil)
			// First sight: the latest closed day only, no history.
			step(t, s)
			eq(t, "first tick", rec.got(), []string{"run:a 2026-06-02"})
			// Down for three days: a new process catches up by the policy.
			clock.Advance(3 * 24 * time.Hour)
			s2 := newSched(t, db, clock, rec, []Job{j}, nil)
			step(t, s2)
			want := []string{"run:a 2026-06-02", "run:a 2026-06-03", "run:a 2026-06-04", "run:a 2026-06-05"}
			if policy == CatchupLatest {
				want = []string{"run:a 2026-06-02", "run:a 2026-06-05"}
			}
			eq(t, "after downtime", rec.got(), want)
			// Nothing runs twice, and nothing before its period closed.
			clock.Advance(23 * time.Hour)
			step(t, s2)
			eq(t, "same day", rec.got(), want)
			st, err := s2.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !st[0].LastSuccess.Equal(time.Date(2026, 6, 6, 0, 0, 0, 0, time.UTC)) || !st[0].NextDue.Equal(time.Date(2026, 6, 7, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("status %+v", st[0])
			}
		})
	}
}

// An aggregated set's run for day D waits for day D of the set it reads;
// materialization waits for the run it publishes; a failed error check
// blocks everything downstream of that day and raises an alert.
func TestDependenciesAndBlockedChecks(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	clock := NewFakeClock(day0)
	rec := &recorder{behave: func(_ context.Context, job string, iv Interval, n int) (Result, error) {
		if job == "run:b" && iv.Start.Day() == 3 {
			return Result{Checks: []Check{{Name: "not_null(x)", Level: "error", Passed: false}}}, fmt.Errorf("run b: %w", ErrChecksFailed)
		}
		return Result{Rows: 5}, nil
	}}
	al := &alerts{}
	jobs := []Job{daily("run:c", "run:b"), daily("run:b", "run:a"), daily("run:a"), daily("materialize:c", "run:c")}
	s := newSched(t, db, clock, rec, jobs, func(o *Options) { o.Notifier = al })
	step(t, s)
	eq(t, "day 2 in dependency order", rec.got(), []string{"run:a 2026-06-02", "run:b 2026-06-02", "run:c 2026-06-02", "materialize:c 2026-06-02"})
	clock.Advance(24 * time.Hour)
	step(t, s)
	eq(t, "day 3 stops at b's failed check", rec.got()[4:], []string{"run:a 2026-06-03", "run:b 2026-06-03"})
	if len(al.got) != 1 || al.got[0].Job != "run:b" || al.got[0].State != StateChecksFailed {
		t.Errorf("alerts = %+v", al.got)
	}
	st, _ := s.Status(context.Background())
	for _, js := range st {
		if js.Name == "run:c" && js.Waiting != "blocked: run:b 2026-06-03 checks_failed" {
			t.Errorf("run:c waiting = %q", js.Waiting)
		}
	}
	// Not retried, even much later; the next day of a is unaffected.
	clock.Advance(24 * time.Hour)
	step(t, s)
	eq(t, "day 4", rec.got()[6:], []string{"run:a 2026-06-04", "run:b 2026-06-04", "run:c 2026-06-04", "materialize:c 2026-06-04"})
	// Fixed and triggered again: the blocked day flows downstream.
	rec.behave = nil
	clock.Advance(time.Minute)
	ivs, _ := s.Intervals("run:b", time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 4, 0, 0, 0, 0, time.UTC))
	if _, err := s.Trigger(context.Background(), "run:b", ivs, TriggerManual, 0); err != nil {
		t.Fatal(err)
	}
	step(t, s)
	eq(t, "after the fix", rec.got()[10:], []string{"run:b 2026-06-03", "run:c 2026-06-03", "materialize:c 2026-06-03"})
	// A manual run of a day that had succeeded runs what depends on it
	// again, with trigger "dependency".
	clock.Advance(time.Minute)
	ivs, _ = s.Intervals("run:a", time.Date(2026, 6, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 5, 0, 0, 0, 0, time.UTC))
	if _, err := s.Trigger(context.Background(), "run:a", ivs, TriggerManual, 0); err != nil {
		t.Fatal(err)
	}
	step(t, s)
	eq(t, "cascade", runsOf(t, db, RunFilter{Since: clock.Now()}), []string{"run:a 2026-06-04 #1 manual succeeded",
		"run:b 2026-06-04 #1 dependency succeeded", "run:c 2026-06-04 #1 dependency succeeded", "materialize:c 2026-06-04 #1 dependency succeeded"})
	eq(t, "b's history", runsOf(t, db, RunFilter{Job: "run:b"}), []string{
		"run:b 2026-06-02 #1 schedule succeeded", "run:b 2026-06-03 #1 schedule checks_failed",
		"run:b 2026-06-04 #1 schedule succeeded", "run:b 2026-06-03 #1 manual succeeded", "run:b 2026-06-04 #1 dependency succeeded"})
}

func TestRetriesWithBackoff(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	clock := NewFakeClock(day0)
	rec := &recorder{behave: func(_ context.Context, job string, iv Interval, n int) (Result, error) {
		return Result{}, errors.New("source unreachable")
	}}
	al := &alerts{}
	j := daily("run:a")
	j.Retries = 2
	s := newSched(t, db, clock, rec, []Job{j}, func(o *Options) {
		o.Notifier, o.RetryBase, o.RetryMax = al, time.Minute, time.Hour
	})
	step(t, s)
	if n := len(rec.got()); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
	// The first retry waits 1 min ± 50%: not before 30 s, surely after 90 s.
	clock.Advance(29 * time.Second)
	step(t, s)
	if n := len(rec.got()); n != 1 {
		t.Fatalf("retried after 29 s: %d attempts", n)
	}
	clock.Advance(61 * time.Second)
	step(t, s)
	if n := len(rec.got()); n != 2 {
		t.Fatalf("%d attempts after 90 s, want 2", n)
	}
	// The second waits 2 min ± 50%.
	clock.Advance(3 * time.Minute)
	step(t, s)
	clock.Advance(time.Hour)
	step(t, s)
	eq(t, "history", runsOf(t, db, RunFilter{}), []string{
		"run:a 2026-06-02 #1 schedule retrying", "run:a 2026-06-02 #2 schedule retrying", "run:a 2026-06-02 #3 schedule failed"})
	if len(al.got) != 1 || al.got[0].State != StateFailed || al.got[0].Attempt != 3 {
		t.Errorf("alerts = %+v", al.got)
	}
	for n, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		if got := Backoff(n+1, time.Minute, time.Hour, nil); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n+1, got, want)
		}
	}
	if got := Backoff(20, time.Minute, time.Hour, nil); got != time.Hour {
		t.Errorf("Backoff(20) = %s, want the cap", got)
	}
}

func TestTimeout(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	clock := NewFakeClock(day0)
	started := make(chan struct{}, 1)
	rec := &recorder{behave: func(ctx context.Context, job string, iv Interval, n int) (Result, error) {
		if n > 1 {
			return Result{}, nil
		}
		started <- struct{}{}
		<-ctx.Done()
		return Result{}, ctx.Err()
	}}
	j := daily("run:a")
	j.Timeout, j.Retries = time.Hour, 1
	s := newSched(t, db, clock, rec, []Job{j}, func(o *Options) { o.RetryBase = time.Second })
	if _, err := s.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-started
	clock.Advance(time.Hour)
	s.Wait()
	clock.Advance(time.Minute)
	step(t, s)
	eq(t, "history", runsOf(t, db, RunFilter{}), []string{"run:a 2026-06-02 #1 schedule timed_out", "run:a 2026-06-02 #2 schedule succeeded"})
}

func TestConcurrencyLimits(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	clock := NewFakeClock(day0)
	var mu sync.Mutex
	running, peak := map[string]int{}, map[string]int{}
	total, peakTotal := 0, 0
	release := make(chan struct{})
	rec := &recorder{behave: func(ctx context.Context, job string, iv Interval, n int) (Result, error) {
		mu.Lock()
		running[job]++
		total++
		peak[job] = max(peak[job], running[job])
		peakTotal = max(peakTotal, total)
		mu.Unlock()
		<-release
		mu.Lock()
		running[job]--
		total--
		mu.Unlock()
		return Result{}, nil
	}}
	a, b := daily("run:a"), daily("run:b")
	a.Concurrency = 2
	s := newSched(t, db, clock, rec, []Job{a, b}, func(o *Options) { o.MaxConcurrent, o.NoPlan = 3, true })
	ctx := context.Background()
	for _, job := range []string{"run:a", "run:b"} {
		ivs, _ := s.Intervals(job, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 11, 0, 0, 0, 0, time.UTC))
		if _, err := s.Trigger(ctx, job, ivs, TriggerBackfill, 0); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		for range 200 {
			if _, err := s.Tick(ctx); err != nil {
				t.Error(err)
			}
			select {
			case release <- struct{}{}:
			case <-done:
				return
			}
		}
	}()
	for len(runsOf(t, db, RunFilter{State: StateSucceeded})) < 20 {
		s.Tick(ctx)
		select {
		case release <- struct{}{}:
		default:
		}
	}
	close(done)
	s.Wait()
	if peak["run:a"] > 2 || peak["run:b"] > 1 || peakTotal > 3 {
		t.Errorf("peaks: a %d (limit 2), b %d (limit 1), total %d (limit 3)", peak["run:a"], peak["run:b"], peakTotal)
	}
	if got := len(rec.got()); got != 20 {
		t.Errorf("%d attempts, want 20", got)
	}
}

func TestPauseResume(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	clock := NewFakeClock(day0)
	rec := &recorder{}
	s := newSched(t, db, clock, rec, []Job{daily("run:a")}, nil)
	step(t, s)
	ctx := context.Background()
	if err := s.Pause(ctx, "run:a"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * 24 * time.Hour)
	step(t, s)
	eq(t, "paused", rec.got(), []string{"run:a 2026-06-02"})
	if err := s.Resume(ctx, "run:a"); err != nil {
		t.Fatal(err)
	}
	step(t, s)
	eq(t, "resumed", rec.got(), []string{"run:a 2026-06-02", "run:a 2026-06-03", "run:a 2026-06-04"})
	if err := s.Pause(ctx, "nope"); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("pause of an unknown job: %v", err)
	}
}

func TestNewRefusesBadJobs(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	rec := &recorder{}
	for _, tt := range []struct {
		jobs []Job
		want string
	}{
		{[]Job{daily("a", "b"), daily("b", "a")}, "dependency cycle: a -> b -> a"},
		{[]Job{daily("a", "zzz")}, `unknown job "zzz"`},
		{[]Job{{Name: "a", Kind: "nope"}}, `kind "nope" is not registered`},
	} {
		_, err := New(context.Background(), Options{DB: db, Jobs: tt.jobs, Kinds: map[string]Factory{"fake": rec.factory}})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New = %v, want %q", err, tt.want)
		}
	}
}

// An attempt that finishes while a tick reads the DB: the read, taken
// before the outcome was written, must not put the attempt back as
// running (its dependents then waited for Poll to pass, and for ever on a
// stopped clock).
func TestOutcomeDuringSyncReadIsKept(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	release := make(chan struct{})
	rec := &recorder{behave: func(_ context.Context, job string, _ Interval, _ int) (Result, error) {
		if job == "a" {
			<-release
		}
		return Result{}, nil
	}}
	s := newSched(t, db, NewFakeClock(day0), rec, []Job{daily("a"), daily("b", "a")}, func(o *Options) { o.Poll = time.Hour })
	ctx := context.Background()
	if _, err := s.Tick(ctx); err != nil { // starts a; b waits for it
		t.Fatal(err)
	}
	testHookSyncRead = func() {
		testHookSyncRead = nil
		close(release)
		s.Wait() // a's outcome is written and in memory before the read is used
	}
	t.Cleanup(func() { testHookSyncRead = nil })
	s.mu.Lock()
	s.resync()
	s.mu.Unlock()
	for range 2 {
		if _, err := s.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s.Wait()
	if got := rec.got(); len(got) != 2 || !strings.HasPrefix(got[1], "b ") {
		t.Fatalf("calls %q, want a then b", got)
	}
}

// Two schedulers on one database (two servers sharing PostgreSQL) tick at
// the same time over the same due intervals: each interval runs once.
func TestTwoSchedulersRunEachIntervalOnce(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		clock := NewFakeClock(day0)
		rec := &recorder{}
		var jobs []Job
		for i := range 6 {
			j := daily(fmt.Sprintf("run:s%d", i))
			if i > 0 {
				j.DependsOn = []string{"run:s0"}
			}
			j.Concurrency = 4
			jobs = append(jobs, j)
		}
		var scheds []*Scheduler
		for range 2 {
			scheds = append(scheds, newSched(t, db, clock, rec, jobs, func(o *Options) { o.Poll, o.MaxConcurrent = time.Nanosecond, 3 }))
		}
		ctx := context.Background()
		// A month of backfill on both, plus the schedule's own days.
		ivs, _ := scheds[0].Intervals("run:s0", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
		for _, j := range jobs {
			for _, s := range scheds {
				if _, err := s.Trigger(ctx, j.Name, ivs, TriggerBackfill, 4); err != nil {
					t.Fatal(err)
				}
			}
		}
		var wg sync.WaitGroup
		// Until every interval ran, or a minute: a count of ticks fell short
		// on a loaded machine (CI with other tests beside it), where the jobs
		// the ticks start finish late and later ticks find nothing to claim.
		deadline := time.Now().Add(time.Minute)
		for _, s := range scheds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for len(rec.got()) < 6*32 && time.Now().Before(deadline) {
					if _, err := s.Tick(ctx); err != nil {
						t.Error(err)
						return
					}
				}
				s.Wait()
			}()
		}
		wg.Wait()
		for _, s := range scheds {
			step(t, s)
		}
		calls := rec.got()
		seen := map[string]int{}
		for _, c := range calls {
			seen[c]++
		}
		for c, n := range seen {
			if n > 1 {
				t.Errorf("%s ran %d times", c, n)
			}
		}
		if want := 6 * 32; len(seen) != want {
			t.Errorf("%d intervals ran, want %d", len(seen), want)
		}
		owners := map[string]int{}
		runs, _ := ListRuns(ctx, db, RunFilter{Limit: 1000})
		for _, r := range runs {
			owners[r.Owner]++
		}
		if len(runs) != 6*32 {
			t.Errorf("%d runs, want %d", len(runs), 6*32)
		}
		t.Logf("runs per scheduler: %v", owners)
	}, Schema)
}
