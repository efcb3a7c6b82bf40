package tune_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
)

// sphere is a 2-d bowl with its minimum 0 at (1, -2), plus a categorical
// that adds 0 for "b" and 1 otherwise.
func sphere(_ context.Context, t *tune.Trial) (float64, error) {
	x := t.SuggestFloat("x", -5, 5)
	y := t.SuggestFloat("y", -5, 5)
	c := t.SuggestCategorical("c", []string{"a", "b", "c"})
	v := (x-1)*(x-1) + (y+2)*(y+2)
	if c != "b" {
		v++
	}
	return v, nil
}

func TestTPEBeatsRandomOnSphere(t *testing.T) {
	ctx := context.Background()
	best := func(s tune.Sampler, seed int64) float64 {
		st, err := tune.NewStudy(ctx, tune.StudyOptions{Name: "s", Sampler: s, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Optimize(ctx, sphere, tune.OptimizeOptions{Trials: 100}); err != nil {
			t.Fatal(err)
		}
		b, err := st.Best(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return b.Value
	}
	var tpeWins int
	for seed := range int64(10) {
		tp, rnd := best(tune.NewTPESampler(tune.TPEOptions{}), seed), best(tune.RandomSampler{}, seed)
		if tp < rnd {
			tpeWins++
		}
	}
	if tpeWins < 9 {
		t.Fatalf("TPE beat random on %d of 10 seeds, want at least 9", tpeWins)
	}
}

func TestSameSeedSameTrials(t *testing.T) {
	ctx := context.Background()
	run := func() []tune.FrozenTrial {
		st, err := tune.NewStudy(ctx, tune.StudyOptions{Name: "s", Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Optimize(ctx, sphere, tune.OptimizeOptions{Trials: 30, Parallel: 1}); err != nil {
			t.Fatal(err)
		}
		ts, err := st.Trials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	a, b := run(), run()
	if len(a) != 30 || len(b) != 30 {
		t.Fatalf("got %d and %d trials, want 30", len(a), len(b))
	}
	for i := range a {
		if !reflect.DeepEqual(a[i].Params, b[i].Params) || a[i].Value != b[i].Value {
			t.Fatalf("trial %d differs: %v=%v vs %v=%v", i, a[i].Params, a[i].Value, b[i].Params, b[i].Value)
		}
	}
}

func TestTrialOutcomes(t *testing.T) {
	ctx := context.Background()
	st, err := tune.NewStudy(ctx, tune.StudyOptions{Name: "s", Sampler: tune.RandomSampler{}})
	if err != nil {
		t.Fatal(err)
	}
	obj := func(ctx context.Context, tr *tune.Trial) (float64, error) {
		x := tr.SuggestFloat("x", 0, 1)
		switch tr.Number() % 5 {
		case 0:
			return math.NaN(), nil
		case 1:
			return 0, errors.New("out of memory")
		case 2:
			if err := tr.Report(ctx, 0, 0.25); err != nil {
				return 0, err
			}
			return 0, fmt.Errorf("stop: %w", tune.ErrPruned)
		case 3:
			tr.SuggestFloat("bad", 2, 1)
			return 1, nil
		}
		return x, nil
	}
	if err := st.Optimize(ctx, obj, tune.OptimizeOptions{Trials: 5}); err != nil {
		t.Fatal(err)
	}
	ts, err := st.Trials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		state tune.State
		err   string
	}{
		{tune.Failed, "the objective returned NaN"},
		{tune.Failed, "out of memory"},
		{tune.Pruned, ""},
		{tune.Failed, `trial 3: parameter "bad": float range low 2 > high 1`},
		{tune.Complete, ""},
	}
	for i, w := range want {
		if ts[i].State != w.state || ts[i].Err != w.err {
			t.Errorf("trial %d: %s %q, want %s %q", i, ts[i].State, ts[i].Err, w.state, w.err)
		}
	}
	if ts[2].Value != 0.25 {
		t.Errorf("pruned trial value %v, want its last intermediate 0.25", ts[2].Value)
	}
	b, err := st.Best(ctx)
	if err != nil || b.Number != 4 {
		t.Fatalf("best = %d, %v; want trial 4", b.Number, err)
	}
}
