package train

import (
	"strings"
	"testing"
)

// TestPlanGrid checks that a dry run of a grid search says how many points
// the grid has beside the spec's budget: the run stops when every point
// ran, here after 4 of the 6 trials.
func TestPlanGrid(t *testing.T) {
	p := newProject(t)
	src := strings.NewReplacer("MARGIN", "0", "  seed: 3\n", "  seed: 3\n  sampler: grid\n",
		"num_leaves: {int: [4, 31], log: true}", `num_leaves: {choice: ["4", "8"]}`,
		"learning_rate: {float: [0.05, 0.3], log: true}", "learning_rate: {float: [0.1, 0.2], step: 0.1}").Replace(rankerSpec)
	dry, err := p.run(t, p.spec(t, "grid.yaml", src), true)
	if err != nil {
		t.Fatal(err)
	}
	if pl := dry.Plan; pl == nil || pl.Sampler != "grid" || pl.Trials != 6 || pl.GridPoints != 4 {
		t.Fatalf("plan %+v, want sampler grid, trials 6, grid points 4", pl)
	}
}
