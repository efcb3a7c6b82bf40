package tune_test

import (
	"math"
	"reflect"
	"strconv"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
)

// steps builds an intermediate-value map from values at steps 0, 1, 2, ...
func steps(vs ...float64) map[int]float64 {
	m := map[int]float64{}
	for i, v := range vs {
		m[i] = v
	}
	return m
}

// completedAt returns completed trials whose value at step is each of vals.
func completedAt(step int, vals ...float64) []tune.FrozenTrial {
	var out []tune.FrozenTrial
	for i, v := range vals {
		out = append(out, tune.FrozenTrial{ID: int64(100 + i), Number: i, State: tune.Complete, Value: v, Intermediate: map[int]float64{step: v}})
	}
	return out
}

// Optuna's MedianPruner rules, hand-computed.
func TestMedianPruner(t *testing.T) {
	five := completedAt(2, 1, 2, 3, 4, 5) // median at step 2: 3
	cases := []struct {
		name   string
		pruner tune.MedianPruner
		dir    tune.Direction
		others []tune.FrozenTrial
		trial  map[int]float64
		want   bool
	}{
		{"fewer completed than the 5 startup trials", tune.MedianPruner{}, tune.Minimize, completedAt(2, 1, 2, 3, 4), steps(9, 9, 9), false},
		{"worse than the median", tune.MedianPruner{}, tune.Minimize, five, steps(10, 5, 3.5), true},
		{"better than the median", tune.MedianPruner{}, tune.Minimize, five, steps(10, 5, 2.9), false},
		{"equal to the median is kept", tune.MedianPruner{}, tune.Minimize, five, steps(10, 5, 3), false},
		{"the best step so far counts, not the last", tune.MedianPruner{}, tune.Minimize, five, steps(1, 10, 10), false},
		{"even count interpolates: median 3.5, 3.6 pruned", tune.MedianPruner{}, tune.Minimize, completedAt(2, 1, 2, 3, 4, 5, 6), steps(9, 9, 3.6), true},
		{"even count interpolates: median 3.5, 3.4 kept", tune.MedianPruner{}, tune.Minimize, completedAt(2, 1, 2, 3, 4, 5, 6), steps(9, 9, 3.4), false},
		{"maximize: below the median is pruned", tune.MedianPruner{}, tune.Maximize, five, steps(0, 1, 2.9), true},
		{"maximize: above the median is kept", tune.MedianPruner{}, tune.Maximize, five, steps(0, 1, 3.1), false},
		{"warm-up steps are never pruned", tune.MedianPruner{WarmupSteps: 3}, tune.Minimize, five, steps(10, 10, 10), false},
		{"no completed trial reported the step", tune.MedianPruner{}, tune.Minimize, completedAt(7, 1, 2, 3, 4, 5), steps(10, 10, 10), false},
		{"a NaN-only trial is pruned", tune.MedianPruner{}, tune.Minimize, five, steps(math.NaN(), math.NaN(), math.NaN()), true},
		{"startup 0 prunes after one completed trial", tune.MedianPruner{StartupTrials: tune.NoStartup}, tune.Minimize, completedAt(2, 1), steps(5, 5, 5), true},
		{"interval 2: step 3 follows pruning point 2, already checked", tune.MedianPruner{IntervalSteps: 2}, tune.Minimize, completedAt(3, 1, 2, 3, 4, 5), steps(10, 10, 10, 10), false},
		{"interval 2: step 2 is a pruning point", tune.MedianPruner{IntervalSteps: 2}, tune.Minimize, five, steps(10, 10, 10), true},
		{"running and pruned trials are not completed", tune.MedianPruner{}, tune.Minimize, append(completedAt(2, 1, 2, 3, 4),
			tune.FrozenTrial{State: tune.Running, Intermediate: map[int]float64{2: 0}}, tune.FrozenTrial{State: tune.Pruned, Intermediate: map[int]float64{2: 0}}), steps(9, 9, 9), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := c.pruner.Prune(&tune.History{Direction: c.dir, Trials: c.others}, tune.FrozenTrial{ID: 1, Intermediate: c.trial})
			if got != c.want {
				t.Errorf("prune = %v, want %v", got, c.want)
			}
		})
	}
}

// rung builds a trial that recorded value v at rungs 0..len(vs)-1.
func rung(id int64, state tune.State, vs ...float64) tune.FrozenTrial {
	attrs := map[string]string{}
	for r, v := range vs {
		attrs[tune.RungAttr(r)] = formatG(v)
	}
	return tune.FrozenTrial{ID: id, State: state, SystemAttrs: attrs, Intermediate: map[int]float64{}}
}

func formatG(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Optuna's SuccessiveHalvingPruner rules, hand-computed. Min resource 1,
// reduction factor 4: rungs at steps 1, 4, 16, 64.
func TestSuccessiveHalvingPruner(t *testing.T) {
	cases := []struct {
		name      string
		pruner    *tune.SuccessiveHalvingPruner
		dir       tune.Direction
		others    []tune.FrozenTrial
		trial     tune.FrozenTrial
		want      bool
		wantAttrs map[string]string
	}{
		{"before the first rung", &tune.SuccessiveHalvingPruner{MinResource: 1}, tune.Minimize, nil,
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{0: 5}}, false, map[string]string{}},
		{"alone at rung 0: promoted, value recorded", &tune.SuccessiveHalvingPruner{MinResource: 1}, tune.Minimize, nil,
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{0: 9, 1: 5}}, false, map[string]string{"completed_rung_0": "5"}},
		{"4 at the rung: only the best is promoted; 5 is not", &tune.SuccessiveHalvingPruner{MinResource: 1}, tune.Minimize,
			[]tune.FrozenTrial{rung(2, tune.Complete, 1), rung(3, tune.Pruned, 2), rung(4, tune.Running, 3)},
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{1: 5}}, true, map[string]string{"completed_rung_0": "5"}},
		{"4 at the rung: the best one is promoted", &tune.SuccessiveHalvingPruner{MinResource: 1}, tune.Minimize,
			[]tune.FrozenTrial{rung(2, tune.Complete, 1), rung(3, tune.Pruned, 2), rung(4, tune.Running, 3)},
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{1: 0.5}}, false, map[string]string{"completed_rung_0": "0.5"}},
		{"8 at the rung: the top 2 go on; 2.5 is third", &tune.SuccessiveHalvingPruner{MinResource: 1}, tune.Minimize,
			[]tune.FrozenTrial{rung(2, tune.Complete, 1), rung(3, tune.Complete, 2), rung(4, tune.Complete, 3), rung(5, tune.Complete, 4),
				rung(6, tune.Complete, 5), rung(7, tune.Complete, 6), rung(8, tune.Complete, 7)},
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{1: 2.5}}, true, map[string]string{"completed_rung_0": "2.5"}},
		{"8 at the rung: a tie with the second goes on", &tune.SuccessiveHalvingPruner{MinResource: 1}, tune.Minimize,
			[]tune.FrozenTrial{rung(2, tune.Complete, 1), rung(3, tune.Complete, 2), rung(4, tune.Complete, 3), rung(5, tune.Complete, 4),
				rung(6, tune.Complete, 5), rung(7, tune.Complete, 6), rung(8, tune.Complete, 7)},
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{1: 2}}, false, map[string]string{"completed_rung_0": "2"}},
		{"maximize: the largest is promoted", &tune.SuccessiveHalvingPruner{MinResource: 1}, tune.Maximize,
			[]tune.FrozenTrial{rung(2, tune.Complete, 1), rung(3, tune.Complete, 2), rung(4, tune.Complete, 3)},
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{1: 2.5}}, true, map[string]string{"completed_rung_0": "2.5"}},
		{"rung 0 done: rung 1 (step 4) compares against rung 1 values only", &tune.SuccessiveHalvingPruner{MinResource: 1}, tune.Minimize,
			[]tune.FrozenTrial{rung(2, tune.Complete, 0.1, 9), rung(3, tune.Complete, 0.2)},
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{1: 5, 4: 3}, SystemAttrs: map[string]string{"completed_rung_0": "5"}},
			false, map[string]string{"completed_rung_1": "3"}},
		{"a jump to step 16 crosses rungs 0, 1 and 2 with one value", &tune.SuccessiveHalvingPruner{MinResource: 1}, tune.Minimize, nil,
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{16: 7}}, false,
			map[string]string{"completed_rung_0": "7", "completed_rung_1": "7", "completed_rung_2": "7"}},
		{"min early stopping rate 1 moves rung 0 to step 4", &tune.SuccessiveHalvingPruner{MinResource: 1, MinEarlyStoppingRate: 1}, tune.Minimize,
			[]tune.FrozenTrial{rung(2, tune.Complete, 1)}, tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{3: 5}}, false, map[string]string{}},
		{"reduction factor 2: 2 at the rung, the worse one stops", &tune.SuccessiveHalvingPruner{MinResource: 1, ReductionFactor: 2}, tune.Minimize,
			[]tune.FrozenTrial{rung(2, tune.Complete, 1)}, tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{1: 5}}, true, map[string]string{"completed_rung_0": "5"}},
		{"NaN at a rung is pruned", &tune.SuccessiveHalvingPruner{MinResource: 1}, tune.Minimize, nil,
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{1: math.NaN()}}, true, map[string]string{}},
		{"auto min resource: nothing before a trial completed", &tune.SuccessiveHalvingPruner{}, tune.Minimize,
			[]tune.FrozenTrial{rung(2, tune.Running, 1)}, tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{50: 5}}, false, nil},
		{"auto min resource: max(299 // 100, 1) = 2, step 1 is before rung 0", &tune.SuccessiveHalvingPruner{}, tune.Minimize,
			[]tune.FrozenTrial{{ID: 2, State: tune.Complete, Intermediate: map[int]float64{299: 1}}},
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{1: 5}}, false, map[string]string{}},
		{"auto min resource: rung 0 at step 2", &tune.SuccessiveHalvingPruner{}, tune.Minimize,
			[]tune.FrozenTrial{{ID: 2, State: tune.Complete, Intermediate: map[int]float64{299: 1}}},
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{2: 5}}, false, map[string]string{"completed_rung_0": "5"}},
		{"bootstrap count: fewer at the rung than it asks are pruned", &tune.SuccessiveHalvingPruner{MinResource: 1, BootstrapCount: 2}, tune.Minimize, nil,
			tune.FrozenTrial{ID: 1, Intermediate: map[int]float64{1: 5}}, true, map[string]string{"completed_rung_0": "5"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, attrs := c.pruner.Prune(&tune.History{Direction: c.dir, Trials: c.others}, c.trial)
			if got != c.want {
				t.Errorf("prune = %v, want %v", got, c.want)
			}
			if !reflect.DeepEqual(attrs, c.wantAttrs) && !(len(attrs) == 0 && len(c.wantAttrs) == 0) {
				t.Errorf("attrs = %v, want %v", attrs, c.wantAttrs)
			}
		})
	}
}
