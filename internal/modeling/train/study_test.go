package train

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/internal/modeling/tune/tunedb"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
)

// openStudy opens the study "s" in storage st, as one process does: two
// calls on one storage are two processes sharing the study.
func openStudy(t *testing.T, st tune.Storage, dir tune.Direction, heartbeat time.Duration) *tune.Study {
	t.Helper()
	s, err := tune.NewStudy(context.Background(), tune.StudyOptions{Name: "s", Direction: dir, Storage: st,
		Sampler: tune.RandomSampler{}, Pruner: tune.NopPruner{}, Heartbeat: heartbeat, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// curveOf is the curve trial number n reports: 3 iterations, then (for
// odd n) a fourth.
func curveOf(n int) []float64 {
	c := []float64{1 + float64(n), 0.5 + float64(n), 0.25 + float64(n)}
	if n%2 == 1 {
		c = append(c, 0.125+float64(n))
	}
	return c
}

// reportCurves is an objective whose trial 1 is pruned and trial 2 fails
// after reporting: each reports its curveOf at iterations 1.. (steps as a
// fit reports them), or (folds) two fold means at steps 1 and 2.
func reportCurves(folds bool) tune.Objective {
	return func(ctx context.Context, tr *tune.Trial) (float64, error) {
		c := curveOf(tr.Number())
		if folds {
			c = []float64{9, 8}
		}
		for i, v := range c {
			if err := tr.Report(ctx, i+1, v); err != nil {
				return 0, err
			}
		}
		switch tr.Number() {
		case 1:
			return 0, tune.ErrPruned
		case 2:
			return 0, errors.New("learner refused")
		}
		return c[len(c)-1], nil
	}
}

// TestStudyCurves checks that the learning curves cover the whole study:
// the trials an earlier process ran (before a --resume) come from the
// values they reported to the study, this process's from its fits; failed
// trials are left out, and k-fold trials, whose reports are fold means, are
// known only from this process's fits.
func TestStudyCurves(t *testing.T) {
	for _, c := range []struct {
		name  string
		folds bool
		want  map[int][]float64
	}{
		{"per iteration", false, map[int][]float64{0: curveOf(0), 1: curveOf(1), 3: {7, 6}, 4: curveOf(4)}},
		{"k-fold", true, map[int][]float64{3: {7, 6}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			st := tunedb.New(metatest.SQLite(t, tunedb.Schema))
			// The killed process ran trials 0-2 and 4; this one ran trial 3.
			earlier := openStudy(t, st, tune.Minimize, time.Second)
			if err := earlier.Optimize(ctx, reportCurves(c.folds), tune.OptimizeOptions{Trials: 3}); err != nil {
				t.Fatal(err)
			}
			this := openStudy(t, st, tune.Minimize, time.Second)
			mine := map[int][]float64{}
			err := this.Optimize(ctx, func(ctx context.Context, tr *tune.Trial) (float64, error) {
				mine[tr.Number()] = []float64{7, 6}
				return 6, nil
			}, tune.OptimizeOptions{Trials: 4})
			if err != nil {
				t.Fatal(err)
			}
			if err := earlier.Optimize(ctx, reportCurves(c.folds), tune.OptimizeOptions{Trials: 5}); err != nil {
				t.Fatal(err)
			}
			all, err := this.Trials(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := studyCurves(all, mine, !c.folds); !reflect.DeepEqual(got, c.want) {
				t.Errorf("curves %v, want %v", got, c.want)
			}
		})
	}
}

// TestOutcomeCounts checks that the summary's total is the sum of its
// states: a trial still running (another process's) is counted apart.
func TestOutcomeCounts(t *testing.T) {
	ctx := context.Background()
	st := tunedb.New(metatest.SQLite(t, tunedb.Schema))
	s := openStudy(t, st, tune.Minimize, time.Second)
	if err := s.Optimize(ctx, reportCurves(false), tune.OptimizeOptions{Trials: 3}); err != nil {
		t.Fatal(err)
	}
	other := openStudy(t, st, tune.Minimize, time.Second)
	running, err := other.Ask(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Tell(ctx, running, 0, nil)
	out, err := outcome(ctx, s, nil, bestTrial{number: 0})
	if err != nil {
		t.Fatal(err)
	}
	got := [5]int{out.trials, out.complete, out.pruned, out.failed, out.running}
	if want := [5]int{3, 1, 1, 1, 1}; got != want {
		t.Errorf("trials, complete, pruned, failed, running = %v, want %v", got, want)
	}
}

// barRecorder is a progressBar that keeps what it was told.
type barRecorder struct {
	mu    sync.Mutex
	count int64
	descs []string
}

func (r *barRecorder) Add(n int64) {
	r.mu.Lock()
	r.count += n
	r.mu.Unlock()
}

func (r *barRecorder) Describe(d string) {
	r.mu.Lock()
	if len(r.descs) == 0 || r.descs[len(r.descs)-1] != d {
		r.descs = append(r.descs, d)
	}
	r.mu.Unlock()
}

func (r *barRecorder) Finish() {}

func (r *barRecorder) state() (int64, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.descs) == 0 {
		return r.count, ""
	}
	return r.count, r.descs[len(r.descs)-1]
}

// TestTrialBar checks the trials' progress bar of a resumed study: it
// counts the trials left, says how many were done before (the stale trial
// of the killed process not counted) and their best value, counts each
// trial once, says which
// trial of another process it waits for while it waits, and never repeats
// the count in its description (drawn apart from the counter, a count
// there disagreed with it).
func TestTrialBar(t *testing.T) {
	ctx := context.Background()
	st := tunedb.New(metatest.SQLite(t, tunedb.Schema))
	earlier := openStudy(t, st, tune.Maximize, time.Second)
	values := map[int]float64{0: 0.5, 1: 0.75, 2: 0.25, 3: 0.625, 4: 0.875}
	obj := func(_ context.Context, tr *tune.Trial) (float64, error) { return values[tr.Number()], nil }
	if err := earlier.Optimize(ctx, obj, tune.OptimizeOptions{Trials: 3}); err != nil {
		t.Fatal(err)
	}
	// The killed process's trial 3, failed as stale since.
	id, err := st.CreateStudy(ctx, "s", tune.Maximize)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := st.CreateTrial(ctx, id, 0, time.Now().Add(-time.Hour))
	if err != nil || dead.Number != 3 {
		t.Fatalf("dead trial %+v %v, want number 3", dead, err)
	}
	if _, err := st.FailStale(ctx, id, time.Now().Add(-time.Minute), time.Now()); err != nil {
		t.Fatal(err)
	}

	const beat = time.Second // trial 5 must not go stale before it is told
	s := openStudy(t, st, tune.Maximize, beat)
	rec := &barRecorder{}
	bar := startTrialBar(ctx, rec, s, 3)
	const before = " (3 trials done before this run)"
	if n, d := rec.state(); n != 0 || d != "best 0.75"+before {
		t.Errorf("resumed bar: count %d %q, want 0 (the earlier trials are not on the counter, whose rate and ETA they would skew) %q", n, d, "best 0.75"+before)
	}
	// Trial 4 runs here; trial 5 is another live process's, which this
	// one waits for once the budget of 5 is reached (trial 3 not counted).
	other := openStudy(t, st, tune.Maximize, beat)
	var live *tune.Trial
	var waited []string
	err = s.Optimize(ctx, func(_ context.Context, tr *tune.Trial) (float64, error) {
		var err error
		if live, err = other.Ask(ctx); err != nil {
			return 0, err
		}
		return obj(ctx, tr)
	}, tune.OptimizeOptions{Trials: 5, OnTrial: bar.trial, OnWait: func(others []int) {
		bar.wait(others)
		_, d := rec.state()
		waited = append(waited, d)
		if others != nil {
			if _, err := other.Tell(ctx, live, 0.125, nil); err != nil {
				t.Error(err)
			}
		}
	}})
	bar.finish()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"best 0.875" + before + ", waiting for trial 5 of another process to end or go stale", "best 0.875" + before}; !reflect.DeepEqual(waited, want) {
		t.Errorf("descriptions while waiting %q, want %q", waited, want)
	}
	n, d := rec.state()
	if n != 2 || d != "best 0.875"+before {
		t.Errorf("bar at the end: count %d %q, want 2 (trials 4 and 5; the stale trial not counted) %q", n, d, "best 0.875"+before)
	}
	for _, d := range rec.descs {
		if strings.Contains(d, "/") {
			t.Errorf("description %q repeats the count", d)
		}
	}
}
