package tune_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestPrunersAgainstOptuna runs the same learning curves, one trial after
// the other, through our pruners and Optuna's (tests/interop/tune/pruners.py)
// and compares the step each trial is pruned at. Curves are noisy, some
// improving and some not, with values rounded so that ties happen.
func TestPrunersAgainstOptuna(t *testing.T) {
	py := interoptest.Python(t, "the differential pruner test against Optuna", "optuna")
	cases := []struct {
		name   string
		spec   map[string]any
		pruner func() tune.Pruner
	}{
		{"median", map[string]any{"kind": "median"}, func() tune.Pruner { return tune.MedianPruner{} }},
		{"median warmup 3 interval 2 startup 2", map[string]any{"kind": "median", "warmup": 3, "interval": 2, "startup": 2},
			func() tune.Pruner { return tune.MedianPruner{WarmupSteps: 3, IntervalSteps: 2, StartupTrials: 2} }},
		{"asha auto", map[string]any{"kind": "asha"}, func() tune.Pruner { return &tune.SuccessiveHalvingPruner{} }},
		{"asha min 1 rf 2", map[string]any{"kind": "asha", "min_resource": 1, "reduction_factor": 2},
			func() tune.Pruner { return &tune.SuccessiveHalvingPruner{MinResource: 1, ReductionFactor: 2} }},
		{"asha min 2 rate 1", map[string]any{"kind": "asha", "min_resource": 2, "min_early_stopping_rate": 1},
			func() tune.Pruner { return &tune.SuccessiveHalvingPruner{MinResource: 2, MinEarlyStoppingRate: 1} }},
	}
	for _, dir := range []tune.Direction{tune.Minimize, tune.Maximize} {
		for ci, c := range cases {
			t.Run(dir.String()+"/"+c.name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(ci), uint64(dir)))
				curves := make([][]float64, 40)
				for i := range curves {
					start, slope := rng.Float64()*2, rng.Float64()*0.1
					for step := range 24 {
						v := start - slope*float64(step) + rng.NormFloat64()*0.05
						curves[i] = append(curves[i], math.Round(v*100)/100)
					}
				}
				want := optunaPruneSteps(t, py, dir, c.spec, curves)
				got := ourPruneSteps(t, dir, c.pruner(), curves)
				if !slices.Equal(got, want) {
					t.Errorf("pruned at steps\n%v\nOptuna\n%v", got, want)
				}
			})
		}
	}
}

func optunaPruneSteps(t *testing.T, py string, dir tune.Direction, spec map[string]any, curves [][]float64) []int {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"direction": dir.String(), "pruner": spec, "curves": curves})
	cmd := exec.Command(py, "../../../tests/interop/tune/pruners.py")
	cmd.Stdin = bytes.NewReader(req)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pruners.py: %v", err)
	}
	var steps []int
	if err := json.Unmarshal(out, &steps); err != nil {
		t.Fatalf("pruners.py output %s: %v", out, err)
	}
	return steps
}

func ourPruneSteps(t *testing.T, dir tune.Direction, p tune.Pruner, curves [][]float64) []int {
	t.Helper()
	ctx := context.Background()
	st, err := tune.NewStudy(ctx, tune.StudyOptions{Name: "p", Direction: dir, Sampler: tune.RandomSampler{}, Pruner: p})
	if err != nil {
		t.Fatal(err)
	}
	var steps []int
	for _, curve := range curves {
		tr, err := st.Ask(ctx)
		if err != nil {
			t.Fatal(err)
		}
		at := -1
		for step, v := range curve {
			if err := tr.Report(ctx, step, v); err != nil {
				t.Fatal(err)
			}
			if tr.ShouldPrune() {
				at = step
				break
			}
		}
		var oerr error
		if at >= 0 {
			oerr = tune.ErrPruned
		}
		if _, err := st.Tell(ctx, tr, curve[len(curve)-1], oerr); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, at)
	}
	return steps
}
