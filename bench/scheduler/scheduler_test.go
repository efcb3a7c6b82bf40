// Package scheduler benchmarks internal/platform/scheduler against the
// issue's bars, on the embedded metadata DB (SQLite in a temp dir):
//
//	go test -run '^$' -bench . -benchtime 3x ./bench/scheduler/
//
// BenchmarkYearDAG: a year of daily runs over 30 feature sets whose
// dependencies form a DAG (10,950 intervals), queued at once, planned,
// claimed and dispatched to no-op jobs until every one succeeded (bar: 1 s).
// BenchmarkDueLatency: how late after its due time a job starts, with the
// real clock (bar: 1 s). BenchmarkIdle: the CPU an idle scheduler of 1,000
// hourly schedules uses over 10 s (bar: 1% of a core).
package scheduler

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/platform/scheduler/calendar"
)

func openDB(b *testing.B) *meta.DB {
	b.Helper()
	db, err := meta.Open(context.Background(), "sqlite://"+filepath.Join(b.TempDir(), "meta.db"), scheduler.Schema)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func noop(scheduler.Job) (scheduler.Kind, error) {
	return scheduler.KindFunc(func(context.Context, scheduler.Interval) (scheduler.Result, error) {
		return scheduler.Result{Rows: 1}, nil
	}), nil
}

func BenchmarkYearDAG(b *testing.B) {
	const sets = 30
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(1, 0, 0)
	daily := calendar.MustParse("daily", "", 0)
	for b.Loop() {
		b.StopTimer()
		db := openDB(b)
		var jobs []scheduler.Job
		for i := range sets {
			j := scheduler.Job{Name: fmt.Sprintf("run:set%02d", i), Kind: "noop", Calendar: daily, Unscheduled: true, Concurrency: 32}
			// Layers of 5: each set reads two sets of the layer above.
			if i >= 5 {
				j.DependsOn = []string{fmt.Sprintf("run:set%02d", i-5), fmt.Sprintf("run:set%02d", (i-5)/5*5+(i+1)%5)}
			}
			jobs = append(jobs, j)
		}
		s, err := scheduler.New(context.Background(), scheduler.Options{DB: db, Jobs: jobs, Kinds: map[string]scheduler.Factory{"noop": noop},
			MaxConcurrent: 64, Clock: scheduler.NewFakeClock(end.Add(time.Hour))})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		total := 0
		for _, j := range jobs {
			ivs, _ := s.Intervals(j.Name, start, end)
			if _, err := s.Trigger(ctx, j.Name, ivs, scheduler.TriggerSchedule, 0); err != nil {
				b.Fatal(err)
			}
			total += len(ivs)
		}
		b.StartTimer()
		ticks := 0
		var inTick time.Duration
		c0 := cpu()
		for done := 0; done < total; ticks++ {
			t0 := time.Now()
			if _, err := s.Tick(ctx); err != nil {
				b.Fatal(err)
			}
			inTick += time.Since(t0)
			s.Wait()
			var n int
			if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM scheduler_intervals WHERE state = 'succeeded'`).Scan(&n); err != nil {
				b.Fatal(err)
			}
			done = n
		}
		b.ReportMetric(float64(cpu()-c0)/1e9, "cpu-s")
		b.ReportMetric(inTick.Seconds(), "tick-s")
		b.ReportMetric(float64(total), "intervals")
		b.ReportMetric(float64(ticks), "ticks")
	}
}

// shifted is the real clock moved so that a minute boundary falls soon
// after the benchmark starts: a per-minute schedule is then due in
// hundreds of milliseconds, not up to a minute.
type shifted struct{ off time.Duration }

func (c shifted) Now() time.Time                         { return time.Now().Add(c.off) }
func (c shifted) After(d time.Duration) <-chan time.Time { return time.After(d) }

func BenchmarkDueLatency(b *testing.B) {
	var lat []time.Duration
	for b.Loop() {
		db := openDB(b)
		now := time.Now()
		// On the shifted clock, the next minute boundary is 300 ms away.
		next := now.Truncate(time.Minute).Add(time.Minute)
		clock := shifted{off: next.Add(-300 * time.Millisecond).Sub(now)}
		started := make(chan time.Time, 4)
		kind := func(scheduler.Job) (scheduler.Kind, error) {
			return scheduler.KindFunc(func(ctx context.Context, iv scheduler.Interval) (scheduler.Result, error) {
				started <- clock.Now()
				return scheduler.Result{}, nil
			}), nil
		}
		minute := calendar.MustParse("* * * * *", "", 0)
		s, err := scheduler.New(context.Background(), scheduler.Options{DB: db, Clock: clock, Kinds: map[string]scheduler.Factory{"k": kind},
			Jobs: []scheduler.Job{{Name: "run:m", Kind: "k", Calendar: minute}}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go s.Run(ctx)
		<-started // first sight: the minute that just closed, at once
		due := minute.Next(clock.Now())
		at := <-started
		cancel()
		s.Wait()
		lat = append(lat, at.Sub(due))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms-late")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms-late")
}

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkIdle(b *testing.B) {
	for b.Loop() {
		db := openDB(b)
		var jobs []scheduler.Job
		for i := range 1000 {
			cal := calendar.MustParse(fmt.Sprintf("%d * * * *", i%60), "", 0)
			jobs = append(jobs, scheduler.Job{Name: fmt.Sprintf("run:s%04d", i), Kind: "noop", Calendar: cal})
		}
		s, err := scheduler.New(context.Background(), scheduler.Options{DB: db, Jobs: jobs, Kinds: map[string]scheduler.Factory{"noop": noop}, MaxConcurrent: 16})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = s.Run(ctx) })
		// Let the first tick plan and run each job's latest hour, then
		// measure a quiet stretch (no schedule comes due in it unless a
		// minute boundary passes: then 1000/60 jobs run, as in production).
		time.Sleep(5 * time.Second)
		c0, w0 := cpu(), time.Now()
		time.Sleep(10 * time.Second)
		c1, w1 := cpu(), time.Now()
		cancel()
		wg.Wait()
		b.ReportMetric(100*float64(c1-c0)/float64(w1.Sub(w0)), "%core")
	}
}
