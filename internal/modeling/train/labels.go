package train

import (
	"errors"
	"fmt"
	"slices"

	"github.com/atrium-ml/atrium/internal/modeling/fit"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/spec"
)

// The labels are checked once, while the training set is loaded and right
// after, against what the spec's objective wants: a label every trial
// would refuse (a word, an empty cell, a 2 for binary, a fractional class)
// is a spec problem at the spine's line, naming the spine file as the spec
// does, not a failure of every trial or an error about the temporary
// training set file.

// labelRule is what t's objective wants of a label: check reports a value
// it refuses (for ml.LoadOptions.CheckLabel: "" when fine), want says
// what it wants ("binary wants 0 or 1"). The rules are fit's (fit.LabelRule),
// made before the first trial instead of in each.
func labelRule(t *spec.Training) (check func(y float64) string, want string) {
	obj := t.Model.Objective
	r := fit.NewLabelRule(t.Model.Task(), t.Model.Params)
	switch {
	case r.Task == modelfile.TaskBinary:
		want = obj + " wants 0 or 1"
	case r.Task == modelfile.TaskMulticlass && r.Classes > 0:
		want = fmt.Sprintf("%s wants a class index 0..%d (num_class %d)", obj, r.Classes-1, r.Classes)
	case r.Task == modelfile.TaskMulticlass:
		want = obj + " wants class indexes 0, 1, ..., k-1"
	case r.Task == modelfile.TaskLambdarank:
		want = fmt.Sprintf("%s wants a whole-number relevance 0..%d (one per label_gain entry)", obj, r.Gains-1)
	default:
		return nil, obj + " wants a number"
	}
	return func(y float64) string {
		if r.Accepts(y) {
			return ""
		}
		return fmt.Sprintf("unexpected value %v", y)
	}, want
}

// spineDataError turns a problem of the loaded training set with one of the
// spine's columns (label, weight, group), or a training set without rows,
// into a spec problem at the spine's line naming the spine file; nil for
// any other error. want is labelRule's.
func spineDataError(t *spec.Training, err error, want string) error {
	var de *ml.DataError
	if !errors.As(err, &de) {
		return nil
	}
	s := t.Spine
	switch {
	case de.Column == "" && de.Row == 0 && de.Msg == "no data rows":
		return specError(t.Problem("spine", "spine %s has no data rows", s.Path))
	case de.Column == s.Label:
		at := ""
		if de.Row > 0 {
			at = fmt.Sprintf(" row %d:", de.Row)
		}
		return specError(t.Problem("spine", "spine %s: label %q:%s %s; %s", s.Path, s.Label, at, de.Msg, want))
	case de.Column != "" && (de.Column == s.Weight || de.Column == s.Group):
		role := "weight"
		if de.Column == s.Group {
			role = "group"
		}
		at := ""
		if de.Row > 0 {
			at = fmt.Sprintf(" row %d:", de.Row)
		}
		return specError(t.Problem("spine", "spine %s: %s %q:%s %s", s.Path, role, de.Column, at, de.Msg))
	}
	return nil
}

// checkLabels reports what the labels as a whole cannot give, which no
// single value shows: one class only for binary with metric auc (undefined
// with one class, so every trial would fail), or a multiclass label without
// num_class whose largest value gives no second class or more classes than
// a fit derives.
func checkLabels(t *spec.Training, y []float64, want string) error {
	if len(y) == 0 {
		return nil
	}
	s := t.Spine
	lo, hi := slices.Min(y), slices.Max(y)
	switch t.Model.Task() {
	case modelfile.TaskBinary:
		if lo == hi && parseMetric(t.Metric()).base == "auc" {
			return specError(t.Problem("spine", "spine %s: label %q: every row is %v, one class only: metric auc is undefined; %s, both present",
				s.Path, s.Label, lo, want))
		}
	case modelfile.TaskMulticlass:
		// A num_class in model.params (checked by then: checkParams runs
		// first) gives the classes; the labels were checked against it.
		if fit.NewLabelRule(t.Model.Task(), t.Model.Params).Classes > 0 {
			return nil
		}
		switch {
		case hi < 1:
			return specError(t.Problem("spine", "spine %s: label %q: every row is %v, one class only; %s with k >= 2 (or set num_class)",
				s.Path, s.Label, hi, want))
		case hi >= fit.MaxDerivedClasses:
			return specError(t.Problem("spine", "spine %s: label %q: the largest value is %v, more than %d classes; %s (set num_class if you mean it)",
				s.Path, s.Label, hi, fit.MaxDerivedClasses, want))
		}
	}
	return nil
}
