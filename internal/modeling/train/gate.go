package train

import (
	"context"
	"errors"
	"fmt"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/spec"
)

// gate scores the promotion alias's current version on the test rows and
// decides whether the candidate (res.TestMetric) replaces it: only when it
// is better by the spec's margin. No current version: the candidate is
// promoted. A champion that cannot be compared with the candidate (a model
// of another task or label, or one that cannot be scored on these rows: its
// features are not in the training set) is not replaced: the decision says
// why.
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
	c, kept := judgeChampion(ctx, o.Spec, res.Metric, p.Alias, champ, test)
	if kept != nil {
		res.Decision.Reason = kept.reason()
		return nil
	}
	res.Champion = &Champion{Version: champ.Version, TestMetric: c}
	cand := res.TestMetric
	res.Decision.Promote = better(cand, c, p.IfBetterBy, res.Maximize)
	verb := "beats"
	if !res.Decision.Promote {
		verb = "does not beat"
	}
	res.Decision.Reason = fmt.Sprintf("candidate test %s %.6g %s %s version %s's %.6g by the margin %g",
		res.Metric, cand, verb, p.Alias, champ.Version, c, p.IfBetterBy)
	return nil
}

// keptChampion says why a champion cannot be compared with the candidate,
// which therefore cannot replace it.
type keptChampion struct {
	// why is the cause, without the consequence ("champion version 1 is a
	// lambdarank model ...: not comparable").
	why string
	// sep joins why and "not replaced" in the decision.
	sep string
}

// reason is the gate's decision: why, and that the champion stays.
func (k *keptChampion) reason() string { return k.why + k.sep + "not replaced" }

// judgeChampion scores champ, the version at alias, on the test rows as the
// candidate will be scored, with metric. A champion that cannot be compared
// with the candidate returns why instead, with a nil metric: the gate and
// the dry run's plan (which reads the champion before any training) share
// it, so that the plan says what the run will do.
//
// A champion is not comparable when its model is of another task than the
// spec's objective, or was trained on another label (the model file's task
// and training label; a model that records no label is compared on its
// task alone, and one that records no task is scored as before), or when it
// cannot be scored on these rows (one of its features is not in the
// training set).
func judgeChampion(ctx context.Context, t *spec.Training, metric, alias string, champ *serving.Deployed, test *ml.Dataset) (float64, *keptChampion) {
	task, label := champ.Task, ""
	if m := champ.Model(); m != nil && m.Training != nil {
		label = m.Training.Label
	}
	if (task != "" && task != t.Model.Task()) || (label != "" && label != t.Spine.Label) {
		what := task
		if what == "" {
			what = "a"
		} else {
			what = article(task) + " " + task
		}
		champDesc := what + " model"
		if label != "" {
			champDesc += fmt.Sprintf(" of label %q", label)
		}
		return 0, &keptChampion{sep: ", ", why: fmt.Sprintf("%s version %s is %s; the candidate is %s of %q: not comparable",
			alias, champ.Version, champDesc, t.Model.Task(), t.Spine.Label)}
	}
	aligned, err := ml.Align(test, champ.Inputs)
	var pred []float64
	if err == nil {
		pred, err = champ.Predict(ctx, aligned)
	}
	var v float64
	if err == nil {
		v, err = score(metric, test, pred, champ.NumOutputs())
	}
	if err != nil {
		return 0, &keptChampion{sep: ": ", why: fmt.Sprintf("the %s version %s cannot be scored on this test split (%v)", alias, champ.Version, err)}
	}
	return v, nil
}

// article is "a" or "an" for word.
func article(word string) string {
	if word != "" && (word[0] == 'a' || word[0] == 'e' || word[0] == 'i' || word[0] == 'o' || word[0] == 'u') {
		return "an"
	}
	return "a"
}
