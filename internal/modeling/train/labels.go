package train

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/modeling/fit"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
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
// what it wants ("binary wants 0 or 1"). The rules are the learner's own
// (fit's label checks), made before the first trial instead of in each.
func labelRule(t *spec.Training) (check func(y float64) string, want string) {
	obj := t.Model.Objective
	refused := func(y float64) string { return fmt.Sprintf("unexpected value %v", y) }
	switch t.Model.Task() {
	case modelfile.TaskBinary:
		return func(y float64) string {
			if y != 0 && y != 1 {
				return refused(y)
			}
			return ""
		}, obj + " wants 0 or 1"
	case modelfile.TaskMulticlass:
		k := 0
		if v, ok := modelParam(t, gbdt.ParamNumClass); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
				k = n
			}
		}
		if k > 0 {
			return func(y float64) string {
				if y != math.Trunc(y) || y < 0 || y >= float64(k) {
					return refused(y)
				}
				return ""
			}, fmt.Sprintf("%s wants a class index 0..%d (num_class %d)", obj, k-1, k)
		}
		return func(y float64) string {
			if y != math.Trunc(y) || y < 0 {
				return refused(y)
			}
			return ""
		}, obj + " wants class indexes 0, 1, ..., k-1"
	case modelfile.TaskLambdarank:
		gains := len(ml.DefaultLabelGain())
		if g, ok := modelParam(t, gbdt.ParamLabelGain); ok {
			gains = len(strings.Split(g, ","))
		}
		return func(y float64) string {
			if y != math.Trunc(y) || y < 0 || y >= float64(gains) {
				return refused(y)
			}
			return ""
		}, fmt.Sprintf("%s wants a whole-number relevance 0..%d (one per label_gain entry)", obj, gains-1)
	}
	return nil, obj + " wants a number"
}

// modelParam is model.params' value of the learner parameter name (under
// its name or an alias).
func modelParam(t *spec.Training, name string) (string, bool) {
	for k, v := range t.Model.Params {
		if canonicalParam(k) == name {
			return v, true
		}
	}
	return "", false
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
		if _, given := modelParam(t, gbdt.ParamNumClass); given {
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
