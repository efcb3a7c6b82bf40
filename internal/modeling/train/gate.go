package train

import (
	"context"
	"errors"
	"fmt"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/serving"
)

// gate scores the promotion alias's current version on the test rows and
// decides whether the candidate (res.TestMetric) replaces it: only when it
// is better by the spec's margin. No current version: the candidate is
// promoted. A champion that cannot be scored on these rows (its features
// are not in the training set) is not replaced: the decision says why.
func gate(ctx context.Context, o *Options, res *Result, test *ml.Dataset) error {
	r := o.Spec.Register
	if r == nil || r.Promote == nil {
		res.Decision = Decision{Reason: "no register.promote block: no alias to move"}
		return nil
	}
	p := r.Promote
	res.Decision.Alias = p.Alias
	if o.Tracker == nil {
		return errors.New("promotion gate: no registry to read the champion from")
	}
	champ, err := o.Tracker.LoadVersion(ctx, r.Model, "@"+p.Alias)
	if errors.Is(err, serving.ErrNotFound) {
		res.Decision.Promote = true
		res.Decision.Reason = fmt.Sprintf("%s has no version at alias %s yet: the candidate takes it", r.Model, p.Alias)
		return nil
	}
	if err != nil {
		return fmt.Errorf("promotion gate: %w", err)
	}
	res.Champion = &Champion{Version: champ.Version}
	aligned, err := ml.Align(test, champ.Inputs)
	var pred []float64
	if err == nil {
		pred, err = champ.Predict(ctx, aligned)
	}
	if err == nil {
		res.Champion.TestMetric, err = score(res.Metric, test, pred, champ.NumOutputs())
	}
	if err != nil {
		res.Champion = nil
		res.Decision.Reason = fmt.Sprintf("the %s version %s cannot be scored on this test split (%v): not replaced", p.Alias, champ.Version, err)
		return nil
	}
	c, cand := res.Champion.TestMetric, res.TestMetric
	res.Decision.Promote = better(cand, c, p.IfBetterBy, res.Maximize)
	verb := "beats"
	if !res.Decision.Promote {
		verb = "does not beat"
	}
	res.Decision.Reason = fmt.Sprintf("candidate test %s %.6g %s %s version %s's %.6g by the margin %g",
		res.Metric, cand, verb, p.Alias, champ.Version, c, p.IfBetterBy)
	return nil
}
