package fit

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/linear"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
)

// gbdtObjectives are the tree objectives each task accepts.
var gbdtObjectives = map[string][]string{
	modelfile.TaskBinary:     {gbdt.ObjBinary},
	modelfile.TaskRegression: {gbdt.ObjRegression, gbdt.ObjRegressionL1, gbdt.ObjHuber},
	modelfile.TaskMulticlass: {gbdt.ObjMulticlass},
	modelfile.TaskLambdarank: {gbdt.ObjLambdarank},
}

// param returns the value of the LightGBM parameter with the canonical name,
// given under its name or any alias.
func param(kv map[string]string, name string) (string, bool) {
	for k, v := range kv {
		if n, ok := gbdt.ParamName(k); ok && n == name {
			return v, true
		}
	}
	return "", false
}

// checkParams checks Params for the task and algorithm before any data is
// read, so that a typo does not wait for a large file to load. A class count
// the labels will give stands in as 2.
func (o *Options) checkParams() error {
	if o.Algorithm == modelfile.AlgorithmLinear {
		_, err := o.linearParams(o.Params)
		return err
	}
	numClass := 0
	if _, given := param(o.Params, gbdt.ParamNumClass); o.Task == modelfile.TaskMulticlass && !given {
		numClass = 2
	}
	_, _, err := o.gbdtParams(o.Params, numClass)
	return err
}

// gbdtParams turns kv into tree parameters for the task, returning them and
// kv as completed (objective, seed, num_class); numClass is the class count
// taken from the labels (0: none).
func (o *Options) gbdtParams(kv map[string]string, numClass int) (gbdt.Params, map[string]string, error) {
	kv = maps.Clone(kv)
	if kv == nil {
		kv = map[string]string{}
	}
	if _, ok := param(kv, gbdt.ParamObjective); !ok {
		kv[gbdt.ParamObjective] = o.Task
	}
	if _, ok := param(kv, gbdt.ParamSeed); !ok && o.Seed != 0 {
		kv[gbdt.ParamSeed] = strconv.FormatUint(o.Seed, 10)
	}
	if numClass > 0 {
		kv[gbdt.ParamNumClass] = strconv.Itoa(numClass)
	}
	p, err := gbdt.ParseParams(kv)
	if err != nil {
		return p, nil, err
	}
	if want := gbdtObjectives[o.Task]; !slices.Contains(want, p.Objective) {
		return p, nil, fmt.Errorf("objective %s does not fit %s %s (want %s)", p.Objective, o.Name("task"), o.Task, strings.Join(want, " or "))
	}
	return p, kv, nil
}

// linearParams turns kv into linear-model parameters for the task.
func (o *Options) linearParams(kv map[string]string) (linear.Params, error) {
	if obj, ok := kv["objective"]; ok && obj != o.Task {
		return linear.Params{}, fmt.Errorf("%s objective=%s contradicts %s %s", o.Name("params"), obj, o.Name("task"), o.Task)
	}
	kv = maps.Clone(kv)
	if kv == nil {
		kv = map[string]string{}
	}
	kv["objective"] = o.Task
	return linear.ParseParams(kv)
}

// LabelRule is what a task's objectives accept as a label, with num_class
// and label_gain taken from the parameters (malformed ones are left for
// the parameter checks to report). fit checks labels with it while loading,
// and the training orchestrator before its first trial.
type LabelRule struct {
	Task string
	// Classes is num_class for multiclass (0: not given, the labels give
	// it); Gains the number of label_gain entries for lambdarank.
	Classes, Gains int
}

// NewLabelRule returns task's rule under params (LightGBM names or aliases).
func NewLabelRule(task string, params map[string]string) LabelRule {
	r := LabelRule{Task: task}
	switch task {
	case modelfile.TaskMulticlass:
		if v, ok := param(params, gbdt.ParamNumClass); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
				r.Classes = n
			}
		}
	case modelfile.TaskLambdarank:
		r.Gains = len(ml.DefaultLabelGain())
		if g, ok := param(params, gbdt.ParamLabelGain); ok {
			r.Gains = len(strings.Split(g, ","))
		}
	}
	return r
}

// Accepts reports whether y is a label of the task: 0 or 1 (binary), a
// class index (multiclass, below Classes when given), a whole-number
// relevance with a label_gain entry (lambdarank), any number otherwise.
func (r LabelRule) Accepts(y float64) bool {
	whole := y == math.Trunc(y) && y >= 0
	switch r.Task {
	case modelfile.TaskBinary:
		return y == 0 || y == 1
	case modelfile.TaskMulticlass:
		return whole && (r.Classes == 0 || y < float64(r.Classes))
	case modelfile.TaskLambdarank:
		return whole && y < float64(r.Gains)
	}
	return true
}

// labelCheck returns the ml.LoadOptions.CheckLabel for the task (see
// LabelRule): checked while loading so that a bad label is reported with
// its file, column and row rather than as a row index of the training set.
func (o *Options) labelCheck() func(y float64) string {
	r := NewLabelRule(o.Task, o.Params)
	var want string
	switch {
	case o.Task == modelfile.TaskBinary:
		want = "0 or 1 for " + o.Name("task") + " " + o.Task
	case o.Task == modelfile.TaskMulticlass && r.Classes > 0:
		want = fmt.Sprintf("a class index 0..%d (num_class=%d)", r.Classes-1, r.Classes)
	case o.Task == modelfile.TaskMulticlass:
		want = "a class index 0, 1, 2, ..."
	case o.Task == modelfile.TaskLambdarank:
		want = fmt.Sprintf("a whole-number relevance 0..%d (one per label_gain entry)", r.Gains-1)
	default:
		return nil
	}
	return func(y float64) string {
		if r.Accepts(y) {
			return ""
		}
		return fmt.Sprintf("label is %v, want %s", y, want)
	}
}

// MaxDerivedClasses bounds the class count a multiclass fit takes from the
// labels when num_class is not given: a larger label is far more likely a
// label column that is not class indexes (a price, an id) than 10,000
// classes.
const MaxDerivedClasses = 10000

// derivedClasses returns the class count of a multiclass fit without
// num_class: the largest label of the training and validation data + 1, so
// that a class seen only in validation is a class of the model (LightGBM
// users set num_class; this is what they would set). 0 when num_class is
// given or the task is another. A count no model can use is an ErrLabels
// error naming the file and column, rather than blaming num_class, and comes
// before a linear model allocates a coefficient row per class.
func (o *Options) derivedClasses(train, valid *ml.Dataset) (int, error) {
	if _, given := param(o.Params, gbdt.ParamNumClass); o.Task != modelfile.TaskMulticlass || given {
		return 0, nil
	}
	top, file := slices.Max(train.Label), o.Data
	if valid != nil {
		if v := slices.Max(valid.Label); v > top {
			top = v
			if o.Valid != "" {
				file = o.Valid
			}
		}
	}
	task := o.Name("task") + " " + o.Task
	switch {
	case top < 1:
		return 0, labelsError(fmt.Sprintf("%s: %s: every label of column %q is 0; want at least two classes (or set num_class)", o.Data, task, o.Label))
	case top >= MaxDerivedClasses:
		return 0, labelsError(fmt.Sprintf("%s: %s: the largest label of column %q is %v, more than %d classes; labels are class indexes 0..k-1 (set num_class if you mean it)",
			file, task, o.Label, top, MaxDerivedClasses))
	}
	return int(top) + 1, nil
}

// labelsError is an ErrLabels error with its whole message.
type labelsError string

func (e labelsError) Error() string { return string(e) }

// Is makes errors.Is(err, ErrLabels) true.
func (e labelsError) Is(target error) bool { return target == ErrLabels }

// asOptionsError turns a tree-training error about parameters that do not
// fit the data (a metric of another objective, early stopping without
// validation data) into an *OptionsError, keeping its text; other errors
// pass through. (Linear parameters are all checked before training.)
func asOptionsError(err error) error {
	if errors.Is(err, gbdt.ErrParams) {
		return optionsError("params", err)
	}
	return err
}
