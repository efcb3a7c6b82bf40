//go:build unix

package scheduler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/proctest"
)

// childEnv names the metadata DB URL a child process schedules against
// before it kills itself mid-run.
const childEnv = "ATRIUM_SCHEDULER_KILL_CHILD"

func TestMain(m *testing.M) {
	if url := os.Getenv(childEnv); url != "" {
		killedMidRun(url)
		os.Exit(3) // not reached: the child dies by SIGKILL
	}
	os.Exit(m.Run())
}

// killedMidRun claims day 2026-06-02 of run:a and is killed by SIGKILL
// while the attempt runs, holding the lease.
func killedMidRun(url string) {
	ctx := context.Background()
	db, err := meta.Open(ctx, url, Schema)
	if err != nil {
		panic(err)
	}
	kill := func(job Job) (Kind, error) {
		return KindFunc(func(ctx context.Context, iv Interval) (Result, error) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}), nil
	}
	s, err := New(ctx, Options{DB: db, Jobs: []Job{daily("run:a")}, Kinds: map[string]Factory{"fake": kill}, Clock: NewFakeClock(day0)})
	if err != nil {
		panic(err)
	}
	if _, err := s.Tick(ctx); err != nil {
		panic(err)
	}
	s.Wait()
}

// A scheduler killed with -9 mid-run leaves its lease; once it expires,
// another process runs the interval again and records the first attempt
// as interrupted. Before it expires, nobody does.
func TestKilledSchedulerLeaseExpires(t *testing.T) {
	urls := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "meta.db") },
		"postgres": func(t *testing.T) string { return metatest.PostgresURL(t) },
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			url := urls[engine](t)
			proctest.Killed(t, childEnv+"="+url)
			db, err := meta.Open(context.Background(), url, Schema)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			eq(t, "after the kill", runsOf(t, db, RunFilter{}), []string{"run:a 2026-06-02 #1 schedule running"})
			clock := NewFakeClock(day0.Add(10 * time.Second))
			rec := &recorder{}
			s := newSched(t, db, clock, rec, []Job{daily("run:a")}, nil)
			step(t, s)
			if got := rec.got(); len(got) != 0 {
				t.Fatalf("ran %v while the dead process's lease holds", got)
			}
			clock.Set(day0.Add(31 * time.Second)) // the lease is 30 s
			step(t, s)
			eq(t, "after the lease expired", runsOf(t, db, RunFilter{}), []string{
				"run:a 2026-06-02 #1 schedule interrupted", "run:a 2026-06-02 #2 schedule succeeded"})
			runs, _ := ListRuns(context.Background(), db, RunFilter{State: StateInterrupted})
			if len(runs) != 1 || !strings.Contains(runs[0].Error, "lease expired") {
				t.Errorf("interrupted run: %+v", runs)
			}
		})
	}
}
