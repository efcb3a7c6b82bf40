package tunedb_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/internal/modeling/tune/tunedb"
	"github.com/atrium-ml/atrium/internal/modeling/tune/tunetest"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/proctest"
)

// The child processes of the multi-process tests: the test binary run again
// with these variables set (see proctest).
const (
	envChild  = "TUNEDB_TEST_CHILD" // "share" or "killed"
	envURL    = "TUNEDB_TEST_URL"
	envBudget = "TUNEDB_TEST_BUDGET"
	// envBarrier names a directory where "share" children meet before
	// their first trial: started one after the other on a loaded machine,
	// the first could otherwise run the whole budget before the second
	// has opened the study (the test then sees one process only).
	envBarrier = "TUNEDB_TEST_BARRIER"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envChild); mode != "" {
		if err := child(mode); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// heartbeat is short so a killed child's trial goes stale quickly.
// shareHeartbeat is ten times longer: in the two-process test no trial may
// go stale, and under load (the race detector, other jobs) a live trial's
// heartbeat could miss 2*heartbeat, be failed by the other process, and
// fail its own process's Optimize when it finishes (ErrFinished). Not
// longer: a process at the budget waits a heartbeat for the other's last
// trials.
const (
	heartbeat      = 100 * time.Millisecond
	shareHeartbeat = time.Second
)

func openStudy(ctx context.Context, url string) (*tune.Study, tune.Storage, error) {
	return openStudyBeat(ctx, url, heartbeat)
}

func openStudyBeat(ctx context.Context, url string, heartbeat time.Duration) (*tune.Study, tune.Storage, error) {
	st, err := tunedb.Open(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	s, err := tune.NewStudy(ctx, tune.StudyOptions{Name: "shared", Direction: tune.Minimize, Storage: st, Seed: 3, Heartbeat: heartbeat})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return s, st, nil
}

// objective is a cheap 2-d function with intermediate values, tagging each
// trial with the pid of the process that ran it.
func objective(ctx context.Context, t *tune.Trial) (float64, error) {
	x := t.SuggestFloat("x", -3, 3)
	n := t.SuggestInt("n", 1, 8)
	if err := t.SetUserAttr("pid", strconv.Itoa(os.Getpid())); err != nil {
		return 0, err
	}
	for step := range 3 {
		if err := t.Report(ctx, step, x*x+float64(n)/float64(step+1)); err != nil {
			return 0, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return x*x + float64(n), nil
}

func child(mode string) error {
	ctx := context.Background()
	budget, err := strconv.Atoi(os.Getenv(envBudget))
	if err != nil {
		return err
	}
	beat := heartbeat
	if mode == "share" {
		beat = shareHeartbeat
	}
	s, st, err := openStudyBeat(ctx, os.Getenv(envURL), beat)
	if err != nil {
		return err
	}
	defer st.Close()
	obj := objective
	if mode == "killed" {
		obj = func(ctx context.Context, t *tune.Trial) (float64, error) {
			if t.Number() == 5 {
				// Die in the middle of trial 5, after it reported a value.
				t.SuggestFloat("x", -3, 3)
				if err := t.Report(ctx, 0, 1); err != nil {
					return 0, err
				}
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
			return objective(ctx, t)
		}
	}
	parallel := 2
	if mode == "killed" {
		parallel = 1 // trial 5 is the only one running at the kill
	}
	if dir := os.Getenv(envBarrier); dir != "" {
		if err := meet(dir, 2); err != nil {
			return err
		}
	}
	return s.Optimize(ctx, obj, tune.OptimizeOptions{Trials: budget, Parallel: parallel})
}

// meet marks this process arrived in dir and waits until n processes have.
// The minute's limit only keeps a lost sibling from hanging the test.
func meet(dir string, n int) error {
	if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(os.Getpid())), nil, 0o600); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		arrived, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("barrier: %w", err)
		}
		if len(arrived) >= n {
			return nil
		}
		if time.Since(start) > time.Minute {
			return fmt.Errorf("barrier: %d of %d processes arrived in a minute", len(arrived), n)
		}
	}
}

func TestConformance(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		tunetest.Run(t, func(t *testing.T) tune.Storage { return tunedb.New(metatest.SQLite(t, tunedb.Schema)) })
	})
	t.Run("postgres", func(t *testing.T) {
		tunetest.Run(t, func(t *testing.T) tune.Storage { return tunedb.New(metatest.Postgres(t, tunedb.Schema)) })
	})
}

// engines yields a fresh database URL per engine.
func engines(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite://"+filepath.Join(t.TempDir(), "meta.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, metatest.PostgresURL(t)) })
}

func readTrials(t *testing.T, url string) []tune.FrozenTrial {
	t.Helper()
	ctx := context.Background()
	s, st, err := openStudy(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts, err := s.Trials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// Two processes run one study at once (two trials each at a time): every
// number is used once, the budget is met exactly, and both did work.
func TestTwoProcessesShareAStudy(t *testing.T) {
	engines(t, func(t *testing.T, url string) {
		const budget = 24
		var wg sync.WaitGroup
		outs := make([][]byte, 2)
		codes := make([]int, 2)
		barrier := t.TempDir()
		for i := range 2 {
			wg.Go(func() {
				_, codes[i], outs[i] = proctest.Run(t, envChild+"=share", envURL+"="+url, envBudget+"="+strconv.Itoa(budget), envBarrier+"="+barrier)
			})
		}
		wg.Wait()
		// Every failed child's output: when one fails before the barrier,
		// the other's is only "1 of 2 processes arrived".
		for i := range 2 {
			if codes[i] != 0 {
				t.Errorf("child %d exited with %d:\n%s", i, codes[i], outs[i])
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		ts := readTrials(t, url)
		if len(ts) != budget {
			t.Fatalf("%d trials, want the budget %d", len(ts), budget)
		}
		pids := map[string]int{}
		for i, tr := range ts {
			if tr.Number != i {
				t.Fatalf("trial %d has number %d: numbers are not 0..%d used once each", i, tr.Number, budget-1)
			}
			if tr.State != tune.Complete {
				t.Errorf("trial %d is %s (%s), want COMPLETE", tr.Number, tr.State, tr.Err)
			}
			pids[tr.UserAttrs["pid"]]++
		}
		if len(pids) != 2 {
			t.Errorf("trials ran in processes %v, want both children", pids)
		}
	})
}

// A process killed in the middle of trial 5 leaves it RUNNING; resuming
// fails it once its heartbeat is stale and runs the study to its budget,
// trial 5's slot included.
func TestResumeAfterKill(t *testing.T) {
	engines(t, func(t *testing.T, url string) {
		const budget = 12
		proctest.Killed(t, envChild+"=killed", envURL+"="+url, envBudget+"="+strconv.Itoa(budget))
		before := readTrials(t, url)
		running := 0
		for _, tr := range before {
			if tr.State == tune.Running {
				running++
				if tr.Number != 5 || tr.Intermediate[0] != 1 {
					t.Errorf("running trial after the kill: %d %v, want 5 with its report", tr.Number, tr.Intermediate)
				}
			}
		}
		if running != 1 {
			t.Fatalf("%d running trials after the kill, want 1 (trial 5)", running)
		}

		ctx := context.Background()
		s, st, err := openStudy(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := s.Optimize(ctx, objective, tune.OptimizeOptions{Trials: budget, Parallel: 1}); err != nil {
			t.Fatal(err)
		}
		ts, err := s.Trials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		counted := 0
		for i, tr := range ts {
			if tr.Number != i {
				t.Fatalf("trial %d has number %d", i, tr.Number)
			}
			switch {
			case tr.Number == 5:
				if tr.State != tune.Failed || tr.SystemAttrs[tune.SystemAttrStale] == "" {
					t.Errorf("killed trial 5: %s %q %v, want failed as stale", tr.State, tr.Err, tr.SystemAttrs)
				}
			case tr.State != tune.Complete:
				t.Errorf("trial %d is %s (%s), want COMPLETE", tr.Number, tr.State, tr.Err)
			default:
				counted++
			}
		}
		if counted != budget {
			t.Errorf("%d complete trials, want the budget %d", counted, budget)
		}
	})
}
