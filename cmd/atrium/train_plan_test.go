package main

import (
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/train"
)

// TestTrainPlanText checks the dry run's split and trials lines: the rows
// word follows the split's counts, not the rows dropped at time cuts, and a
// grid search says how many of its trials the grid's points allow.
func TestTrainPlanText(t *testing.T) {
	for _, c := range []struct {
		name    string
		dropped int
		plan    train.Plan
		want    []string
	}{
		{"time cuts", 760, train.Plan{Trials: 16, Parallel: 2, Sampler: "tpe", Pruner: "median"},
			[]string{"            train 22280, valid 6180, test 4260 rows, 760 dropped at time cuts\n",
				"trials      16, 2 at a time, sampler tpe, pruner median\n"}},
		{"grid smaller than the budget", 0, train.Plan{Trials: 20, GridPoints: 8, Parallel: 1, Sampler: "grid", Pruner: "none"},
			[]string{"            train 22280, valid 6180, test 4260 rows\n",
				"trials      8 (the grid's points; trials: 20), 1 at a time, sampler grid, pruner none\n"}},
		{"grid larger than the budget", 0, train.Plan{Trials: 5, GridPoints: 8, Parallel: 1, Sampler: "grid", Pruner: "none"},
			[]string{"trials      5 (of the grid's 8 points), 1 at a time, sampler grid, pruner none\n"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := c.plan
			var b strings.Builder
			err := writeTrainPlan(&b, &train.Result{Study: "s", TrainRows: 22280, ValidRows: 6180, TestRows: 4260, Dropped: c.dropped, Plan: &p})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("plan lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}
