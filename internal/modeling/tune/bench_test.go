package tune_test

import (
	"context"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
)

// BenchmarkTPE1000 runs a 1,000-trial study of a trivial 5-d objective:
// the sampler's and the study's own cost (ns/op is per study).
func BenchmarkTPE1000(b *testing.B) {
	ctx := context.Background()
	obj := func(_ context.Context, t *tune.Trial) (float64, error) {
		s := 0.0
		for _, n := range []string{"x0", "x1", "x2", "x3", "x4"} {
			x := t.SuggestFloat(n, -5, 5)
			s += x * x
		}
		return s, nil
	}
	for b.Loop() {
		st, err := tune.NewStudy(ctx, tune.StudyOptions{Name: "b"})
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Optimize(ctx, obj, tune.OptimizeOptions{Trials: 1000}); err != nil {
			b.Fatal(err)
		}
	}
}
