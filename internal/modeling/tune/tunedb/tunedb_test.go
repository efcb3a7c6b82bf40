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
	envChild  = "TUNEDB_TEST_CHILD" // "share", "killed" or "gridkilled"
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
	return openStudyWith(ctx, url, tune.StudyOptions{Heartbeat: heartbeat})
}

// openStudyWith opens the shared study with o's sampler and heartbeat.
func openStudyWith(ctx context.Context, url string, o tune.StudyOptions) (*tune.Study, tune.Storage, error) {
	st, err := tunedb.Open(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	o.Name, o.Direction, o.Storage, o.Seed = "shared", tune.Minimize, st, 3
	s, err := tune.NewStudy(ctx, o)
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

// gridSpace is a grid of gridSize points; gridHeartbeat is long enough that the
// trial of a killed "gridkilled" child is not yet stale when the test
// resumes the study (the resume must wait for it, not find it failed).
var gridSpace = tune.Space{
	{Name: "x", Dist: tune.FloatDist{Low: -1, High: 1, Step: 1}},
	{Name: "c", Dist: tune.CategoricalDist{Choices: []string{"a", "b"}}},
}

const (
	gridSize      = 6
	gridHeartbeat = 2 * time.Second // the resume, on a loaded CI machine, must open the study within 2 of them
)

func gridSampler() tune.Sampler {
	g, err := tune.NewGridSampler(gridSpace, 3)
	if err != nil {
		panic(err)
	}
	return g
}

// gridObjective is a grid point's value, tagged with the running process.
func gridObjective(_ context.Context, t *tune.Trial) (float64, error) {
	p, err := gridSpace.Suggest(t)
	if err != nil {
		return 0, err
	}
	if err := t.SetUserAttr("pid", strconv.Itoa(os.Getpid())); err != nil {
		return 0, err
	}
	v := p["x"].(float64)
	if p["c"] == "b" {
		v += 10
	}
	return v, nil
}

// gridPoint names a trial's grid point.
func gridPoint(t tune.FrozenTrial) string { return fmt.Sprint(t.Params["x"], t.Params["c"]) }

func child(mode string) error {
	ctx := context.Background()
	if mode == "gridkilled" {
		return gridKilledChild(ctx)
	}
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

// gridKilledChild runs the grid study and dies in its last point's trial,
// after the point was sampled: the grid is then exhausted counting the
// dead trial, whose point no trial has run.
func gridKilledChild(ctx context.Context) error {
	s, st, err := openStudyWith(ctx, os.Getenv(envURL), tune.StudyOptions{Sampler: gridSampler(), Heartbeat: gridHeartbeat})
	if err != nil {
		return err
	}
	defer st.Close()
	obj := func(ctx context.Context, t *tune.Trial) (float64, error) {
		if t.Number() == gridSize-1 {
			if _, err := gridSpace.Suggest(t); err != nil {
				return 0, err
			}
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return gridObjective(ctx, t)
	}
	return s.Optimize(ctx, obj, tune.OptimizeOptions{Trials: 100, Parallel: 1})
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

// A grid study killed in its last point's trial and resumed at once (the
// dead trial not yet stale, the grid exhausted counting it) waits for the
// trial to go stale, fails it and runs its point, as Optuna's GridSampler
// runs such points again: every point ends complete, none twice.
func TestGridResumedAtOnceAfterKill(t *testing.T) {
	engines(t, func(t *testing.T, url string) {
		if n := gridSampler().(tune.Finite).Size(); n != gridSize {
			t.Fatalf("grid of %d points, want %d", n, gridSize)
		}
		proctest.Killed(t, envChild+"=gridkilled", envURL+"="+url)
		ctx := context.Background()
		s, st, err := openStudyWith(ctx, url, tune.StudyOptions{Sampler: gridSampler(), Heartbeat: gridHeartbeat})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		before, err := s.Trials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(before); n != gridSize || before[n-1].State != tune.Running || len(before[n-1].Params) != 2 {
			t.Fatalf("after the kill: %d trials, the last %+v; want %d, the last running with its point", n, before[n-1], gridSize)
		}
		dead := gridPoint(before[gridSize-1])
		var waits [][]int
		err = s.Optimize(ctx, gridObjective, tune.OptimizeOptions{Trials: 100, Parallel: 2,
			OnWait: func(others []int) { waits = append(waits, others) }})
		if err != nil {
			t.Fatal(err)
		}
		ts, err := s.Trials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		complete := map[string]int{}
		for _, tr := range ts {
			switch {
			case tr.Number == gridSize-1:
				if tr.State != tune.Failed || tr.SystemAttrs[tune.SystemAttrStale] == "" {
					t.Errorf("killed trial %d: %s %q, want failed as stale", tr.Number, tr.State, tr.Err)
				}
			case tr.State != tune.Complete:
				t.Errorf("trial %d is %s (%s), want COMPLETE", tr.Number, tr.State, tr.Err)
			default:
				complete[gridPoint(tr)]++
			}
		}
		if len(complete) != gridSize || complete[dead] != 1 {
			t.Errorf("complete trials per point %v, want each of the %d points once, the killed trial's %s included", complete, gridSize, dead)
		}
		if len(waits) == 0 || fmt.Sprint(waits[0]) != fmt.Sprint([]int{gridSize - 1}) || waits[len(waits)-1] != nil {
			t.Errorf("OnWait calls %v, want [%d] while waiting for the dead trial, then nil", waits, gridSize-1)
		}
	})
}

// A process joining a grid study whose points are all taken, one still
// running in another process, waits for that trial instead of stopping at
// once (and reporting the best of a part of the grid); it stops when the
// trial ends, having run nothing.
func TestGridJoinWaitsForRunningTrials(t *testing.T) {
	engines(t, func(t *testing.T, url string) {
		ctx := context.Background()
		open := func() *tune.Study {
			s, st, err := openStudyWith(ctx, url, tune.StudyOptions{Sampler: gridSampler(), Heartbeat: shareHeartbeat})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return s
		}
		first, second := open(), open()
		started, release := make(chan struct{}), make(chan struct{})
		firstDone := make(chan error, 1)
		go func() {
			firstDone <- first.Optimize(ctx, func(ctx context.Context, tr *tune.Trial) (float64, error) {
				v, err := gridObjective(ctx, tr)
				if tr.Number() == gridSize-1 {
					// Its point sampled: every point is taken.
					close(started)
					<-release
				}
				return v, err
			}, tune.OptimizeOptions{Trials: 100, Parallel: 1})
		}()
		<-started
		secondDone := make(chan error, 1)
		go func() {
			secondDone <- second.Optimize(ctx, func(context.Context, *tune.Trial) (float64, error) {
				return 0, fmt.Errorf("the joining process ran a trial of an exhausted grid")
			}, tune.OptimizeOptions{Trials: 100, Parallel: 2})
		}()
		select {
		case err := <-secondDone:
			close(release)
			t.Fatalf("the joining process returned (%v) while trial %d of the other ran", err, gridSize-1)
		case <-time.After(3 * shareHeartbeat / 2):
		}
		close(release)
		if err := <-firstDone; err != nil {
			t.Fatal(err)
		}
		if err := <-secondDone; err != nil {
			t.Fatal(err)
		}
		ts, err := second.Trials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != gridSize {
			t.Fatalf("%d trials, want the grid's %d", len(ts), gridSize)
		}
		for _, tr := range ts {
			if tr.State != tune.Complete {
				t.Errorf("trial %d is %s (%s), want COMPLETE", tr.Number, tr.State, tr.Err)
			}
		}
	})
}
