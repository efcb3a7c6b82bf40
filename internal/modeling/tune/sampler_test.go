package tune_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
)

func run(t *testing.T, o tune.StudyOptions, obj tune.Objective, oo tune.OptimizeOptions) []tune.FrozenTrial {
	t.Helper()
	ctx := context.Background()
	if o.Name == "" {
		o.Name = "test"
	}
	st, err := tune.NewStudy(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Optimize(ctx, obj, oo); err != nil {
		t.Fatal(err)
	}
	ts, err := st.Trials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TPE's first 10 trials are the random sampler's (same seed, same streams);
// from the 11th it samples from the Parzen estimators.
func TestTPEStartupTrialsAreRandom(t *testing.T) {
	tpe := run(t, tune.StudyOptions{Seed: 5}, sphere, tune.OptimizeOptions{Trials: 12})
	rnd := run(t, tune.StudyOptions{Seed: 5, Sampler: tune.RandomSampler{}}, sphere, tune.OptimizeOptions{Trials: 12})
	for i := range 10 {
		if !reflect.DeepEqual(tpe[i].Params, rnd[i].Params) {
			t.Fatalf("startup trial %d: TPE %v, random %v", i, tpe[i].Params, rnd[i].Params)
		}
	}
	for i := 10; i < 12; i++ {
		if reflect.DeepEqual(tpe[i].Params, rnd[i].Params) {
			t.Errorf("trial %d is still random: %v", i, tpe[i].Params)
		}
	}
}

// Pruned trials count as TPE observations (Optuna's rule): ten pruned trials
// end the start-up phase as ten complete ones would.
func TestTPEPrunedTrialsEndStartup(t *testing.T) {
	obj := func(ctx context.Context, tr *tune.Trial) (float64, error) {
		x := tr.SuggestFloat("x", 0, 1)
		if tr.Number() < 10 {
			if err := tr.Report(ctx, 0, x); err != nil {
				return 0, err
			}
			return 0, tune.ErrPruned
		}
		return x, nil
	}
	tpe := run(t, tune.StudyOptions{Seed: 5, Pruner: tune.NopPruner{}}, obj, tune.OptimizeOptions{Trials: 11})
	rnd := run(t, tune.StudyOptions{Seed: 5, Pruner: tune.NopPruner{}, Sampler: tune.RandomSampler{}}, obj, tune.OptimizeOptions{Trials: 11})
	if tpe[9].State != tune.Pruned {
		t.Fatalf("trial 9 is %s", tpe[9].State)
	}
	if reflect.DeepEqual(tpe[10].Params, rnd[10].Params) {
		t.Errorf("trial 10 after 10 pruned trials is random: %v", tpe[10].Params)
	}
}

// A parameter suggested only in some trials (conditional) is fine: each
// trial holds its branch's parameters only, in range, and TPE learns which
// branch is better.
func TestConditionalParams(t *testing.T) {
	obj := func(_ context.Context, tr *tune.Trial) (float64, error) {
		switch tr.SuggestCategorical("model", []string{"linear", "gbdt"}) {
		case "linear":
			c := tr.SuggestFloat("l2", 1e-4, 10, tune.Log())
			return 1 + math.Abs(math.Log10(c)), nil
		default:
			leaves := tr.SuggestInt("leaves", 2, 256, tune.Log())
			return math.Abs(math.Log2(float64(leaves)) - 5), nil
		}
	}
	ts := run(t, tune.StudyOptions{Seed: 1}, obj, tune.OptimizeOptions{Trials: 80})
	gbdtLate := 0
	for _, tr := range ts {
		if tr.State != tune.Complete {
			t.Fatalf("trial %d: %s %s", tr.Number, tr.State, tr.Err)
		}
		keys := make([]string, 0, len(tr.Params))
		for k := range tr.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		switch tr.Params["model"] {
		case "linear":
			if !reflect.DeepEqual(keys, []string{"l2", "model"}) {
				t.Errorf("trial %d params %v", tr.Number, tr.Params)
			}
			if c := tr.Params["l2"].(float64); c < 1e-4 || c > 10 {
				t.Errorf("trial %d: l2 %v out of range", tr.Number, c)
			}
		case "gbdt":
			if !reflect.DeepEqual(keys, []string{"leaves", "model"}) {
				t.Errorf("trial %d params %v", tr.Number, tr.Params)
			}
			if l := tr.Params["leaves"].(int); l < 2 || l > 256 {
				t.Errorf("trial %d: leaves %v out of range", tr.Number, l)
			}
			if tr.Number >= 40 {
				gbdtLate++
			}
		}
	}
	// gbdt reaches 0, linear never goes below 1: TPE should mostly pick gbdt late on.
	if gbdtLate < 30 {
		t.Errorf("gbdt in %d of the last 40 trials, want most", gbdtLate)
	}
	best := ts[0]
	for _, tr := range ts {
		if tr.Value < best.Value {
			best = tr
		}
	}
	if best.Params["model"] != "gbdt" || best.Params["leaves"] != 32 {
		t.Errorf("best %v = %v, want gbdt with 32 leaves", best.Params, best.Value)
	}
}

// Ranges, log scales and steps hold for every sampler, and the random
// sampler is uniform on the log scale when asked (half the draws below the
// geometric middle).
func TestBoundsLogAndSteps(t *testing.T) {
	obj := func(_ context.Context, tr *tune.Trial) (float64, error) {
		lr := tr.SuggestFloat("lr", 1e-5, 1e-1, tune.Log())
		n := tr.SuggestInt("n", 3, 20, tune.Step(4))
		f := tr.SuggestFloat("f", 0, 1, tune.Step(0.25))
		k := tr.SuggestInt("k", 1, 1000, tune.Log())
		return math.Abs(math.Log10(lr)+3) + math.Abs(float64(n)-11) + f + math.Abs(float64(k)-40)/100, nil
	}
	for _, s := range []tune.Sampler{tune.RandomSampler{}, tune.NewTPESampler(tune.TPEOptions{}), tune.NewTPESampler(tune.TPEOptions{Independent: true})} {
		ts := run(t, tune.StudyOptions{Seed: 2, Sampler: s}, obj, tune.OptimizeOptions{Trials: 200})
		belowMid, nSeen, fSeen := 0, map[int]bool{}, map[float64]bool{}
		for _, tr := range ts {
			lr, n, f, k := tr.Params["lr"].(float64), tr.Params["n"].(int), tr.Params["f"].(float64), tr.Params["k"].(int)
			if lr < 1e-5 || lr > 1e-1 || k < 1 || k > 1000 {
				t.Fatalf("%T trial %d: lr %v k %v out of range", s, tr.Number, lr, k)
			}
			if (n-3)%4 != 0 || n < 3 || n > 19 {
				t.Fatalf("%T trial %d: n = %d, want one of 3, 7, 11, 15, 19", s, tr.Number, n)
			}
			if f*4 != math.Trunc(f*4) || f < 0 || f > 1 {
				t.Fatalf("%T trial %d: f = %v, want a multiple of 0.25 in [0, 1]", s, tr.Number, f)
			}
			nSeen[n], fSeen[f] = true, true
			if lr < 1e-3 {
				belowMid++
			}
		}
		if _, random := s.(tune.RandomSampler); random {
			if len(nSeen) != 5 || len(fSeen) != 5 {
				t.Errorf("random sampler saw n %v f %v, want every step value, the ends included", nSeen, fSeen)
			}
			if belowMid < 80 || belowMid > 120 {
				t.Errorf("random log-uniform lr below 1e-3 in %d of 200 draws, want about 100", belowMid)
			}
		}
	}
}

func TestGridSampler(t *testing.T) {
	space := tune.Space{
		{Name: "boost", Dist: tune.CategoricalDist{Choices: []string{"gbdt", "dart", "goss"}}},
		{Name: "depth", Dist: tune.IntDist{Low: 2, High: 6, Step: 2}},
		{Name: "frac", Dist: tune.FloatDist{Low: 0.5, High: 1, Step: 0.5}},
	}
	g, err := tune.NewGridSampler(space, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g.Size() != 18 {
		t.Fatalf("grid size %d, want 3*3*2", g.Size())
	}
	obj := func(_ context.Context, tr *tune.Trial) (float64, error) {
		_, err := space.Suggest(tr)
		return 0, err
	}
	ts := run(t, tune.StudyOptions{Sampler: g}, obj, tune.OptimizeOptions{Trials: 100, Parallel: 3})
	if len(ts) != 18 {
		t.Fatalf("%d trials, want the 18 grid points then stop", len(ts))
	}
	seen := map[string]bool{}
	for _, tr := range ts {
		key := tr.Params["boost"].(string) + "/" + string(rune('0'+tr.Params["depth"].(int))) + "/" + map[float64]string{0.5: "h", 1: "1"}[tr.Params["frac"].(float64)]
		if seen[key] {
			t.Errorf("grid point %s run twice", key)
		}
		seen[key] = true
	}
	if _, err := tune.NewGridSampler(tune.Space{{Name: "lr", Dist: tune.FloatDist{Low: 0.01, High: 0.3}}}, 1); err == nil || !strings.Contains(err.Error(), `"lr" is a continuous float range`) {
		t.Errorf("continuous range without a step: %v, want an error naming lr", err)
	}
}

func TestSpaceValidate(t *testing.T) {
	err := tune.Space{
		{Name: "leaves", Dist: tune.IntDist{Low: 255, High: 15}},
		{Name: "lr", Dist: tune.FloatDist{Low: 0, High: 0.3, Log: true}},
		{Name: "boost", Dist: tune.CategoricalDist{}},
		{Name: "lr", Dist: tune.FloatDist{Low: 0.1, High: 0.2}},
	}.Validate()
	want := []string{`"leaves": int range low 255 > high 15`, `"lr": log float range needs low > 0, got 0`, `"boost": categorical has no choices`, `parameter "lr" is declared twice`}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("validate: %v; want it to contain %q", err, w)
		}
	}
}

// Parallel trials: each number once, the budget met, the race detector quiet.
func TestParallelTrials(t *testing.T) {
	var running, most atomic.Int32
	obj := func(ctx context.Context, tr *tune.Trial) (float64, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		return sphere(ctx, tr)
	}
	ts := run(t, tune.StudyOptions{Seed: 3}, obj, tune.OptimizeOptions{Trials: 40, Parallel: 4})
	if len(ts) != 40 {
		t.Fatalf("%d trials, want 40", len(ts))
	}
	for i, tr := range ts {
		if tr.Number != i || tr.State != tune.Complete {
			t.Fatalf("trial %d: number %d %s", i, tr.Number, tr.State)
		}
	}
	if most.Load() < 2 {
		t.Errorf("at most %d trials ran at once, want up to 4", most.Load())
	}
}

// The median pruner stops trials through ShouldPrune, and they are recorded
// as pruned with their last value.
func TestShouldPruneWithMedian(t *testing.T) {
	obj := func(ctx context.Context, tr *tune.Trial) (float64, error) {
		// Trials alternate good (value 1 at each step) and bad (value 10).
		v := 1.0
		if tr.Number()%2 == 1 {
			v = 10
		}
		for step := range 5 {
			if err := tr.Report(ctx, step, v); err != nil {
				return 0, err
			}
			if tr.ShouldPrune() {
				return 0, tune.ErrPruned
			}
		}
		return v, nil
	}
	ts := run(t, tune.StudyOptions{Sampler: tune.RandomSampler{}, Pruner: tune.MedianPruner{}}, obj, tune.OptimizeOptions{Trials: 20})
	for _, tr := range ts {
		// Trials 0-4 complete (5 startup trials); their median is 1 from then on
		// (3 good of 5, then more good ones than bad).
		want := tune.Complete
		if tr.Number >= 5 && tr.Number%2 == 1 {
			want = tune.Pruned
		}
		if tr.State != want {
			t.Errorf("trial %d: %s, want %s", tr.Number, tr.State, want)
		}
		if tr.State == tune.Pruned {
			if last, _ := tr.LastStep(); last != 0 || tr.Value != 10 {
				t.Errorf("pruned trial %d stopped at step %d with %v, want step 0, value 10", tr.Number, last, tr.Value)
			}
		}
	}
}

func TestCancelAndTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := tune.NewStudy(ctx, tune.StudyOptions{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	obj := func(ctx context.Context, tr *tune.Trial) (float64, error) {
		if tr.Number() == 3 {
			cancel()
			<-ctx.Done()
			return 0, ctx.Err()
		}
		return 1, nil
	}
	if err := st.Optimize(ctx, obj, tune.OptimizeOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("optimize: %v, want context.Canceled", err)
	}
	ts, err := st.Trials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 4 || ts[3].State != tune.Failed || !strings.Contains(ts[3].Err, "canceled") {
		t.Fatalf("trials %d, last %s %q; want 4, the cancelled one failed", len(ts), ts[len(ts)-1].State, ts[len(ts)-1].Err)
	}

	// Long enough that a loaded machine starts the worker in time.
	slow := func(ctx context.Context, tr *tune.Trial) (float64, error) {
		time.Sleep(200 * time.Millisecond)
		return 1, nil
	}
	ts = run(t, tune.StudyOptions{Name: "t"}, slow, tune.OptimizeOptions{Timeout: 500 * time.Millisecond})
	if len(ts) == 0 || len(ts) > 3 {
		t.Errorf("%d trials in a 500ms timeout of 200ms trials, want 1 to 3 (a trial started before the timeout finishes)", len(ts))
	}
}

func TestNames(t *testing.T) {
	for name, want := range map[string]string{"": "*tune.TPESampler", "tpe": "*tune.TPESampler", "random": "tune.RandomSampler", "grid": "*tune.GridSampler"} {
		s, err := tune.NewSampler(name, tune.Space{{Name: "n", Dist: tune.IntDist{Low: 1, High: 3}}}, 1)
		if err != nil || fmt.Sprintf("%T", s) != want {
			t.Errorf("sampler %q: %T, %v; want %s", name, s, err, want)
		}
	}
	for name, want := range map[string]string{"": "tune.MedianPruner", "median": "tune.MedianPruner", "asha": "*tune.SuccessiveHalvingPruner", "none": "tune.NopPruner"} {
		p, err := tune.NewPruner(name)
		if err != nil || fmt.Sprintf("%T", p) != want {
			t.Errorf("pruner %q: %T, %v; want %s", name, p, err, want)
		}
	}
	if _, err := tune.NewSampler("cmaes", nil, 0); err == nil || !strings.Contains(err.Error(), `"cmaes"`) {
		t.Errorf("unknown sampler: %v", err)
	}
	if _, err := tune.NewPruner("hyperband"); err == nil || !strings.Contains(err.Error(), `"hyperband"`) {
		t.Errorf("unknown pruner: %v", err)
	}
}

// A grid study run by one process never waits for "another process":
// the trials a sibling worker of the same call is creating are its own
// (one was briefly taken for another process's, and its worker slept a
// heartbeat at the end of the grid).
func TestGridParallelNeverWaitsForItself(t *testing.T) {
	space := tune.Space{
		{Name: "depth", Dist: tune.IntDist{Low: 1, High: 6}},
		{Name: "frac", Dist: tune.FloatDist{Low: 0.5, High: 1, Step: 0.25}},
	}
	obj := func(_ context.Context, tr *tune.Trial) (float64, error) {
		_, err := space.Suggest(tr)
		return 0, err
	}
	var waits atomic.Int32
	for seed := range 30 {
		g, err := tune.NewGridSampler(space, int64(seed))
		if err != nil {
			t.Fatal(err)
		}
		// A heartbeat long enough that no trial of this call goes stale
		// while a starved machine delays its heartbeat (a sibling worker
		// then failed it, and its Tell failed).
		ts := run(t, tune.StudyOptions{Sampler: g, Name: fmt.Sprint("grid-", seed), Heartbeat: 2 * time.Second}, obj, tune.OptimizeOptions{Trials: 100, Parallel: 4,
			OnWait: func(others []int) {
				if others != nil {
					waits.Add(1)
				}
			}})
		if len(ts) != g.Size() {
			t.Fatalf("seed %d: %d trials, want the grid's %d", seed, len(ts), g.Size())
		}
	}
	if n := waits.Load(); n > 0 {
		t.Fatalf("one process's grid studies waited %d times for trials of another process", n)
	}
}
