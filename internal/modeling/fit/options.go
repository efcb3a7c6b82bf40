// Package fit trains one model on a data file: it loads the training data
// (and validation data, a file or a split of the training file), checks the
// labels against the task, completes LightGBM-style parameters for the task,
// trains gradient-boosted trees or a linear model, reports progress and
// validation metrics, and writes the model file. `atrium fit` is a thin
// front end to Run; the training orchestrator fills the same Options from a
// YAML spec.
//
//	res, err := fit.Run(ctx, fit.Options{Data: "train.csv", Label: "y", Task: "binary", Out: "m.json"})
//
// Errors: a mistake in the options (a bad task, a parameter, a split that
// leaves no rows) satisfies errors.Is(err, ErrOptions) and is an
// *OptionsError listing every problem; bad data is an ml.ErrBadData error
// naming the file, column and row; labels that do not fit the task as a whole
// satisfy errors.Is(err, ErrLabels).
package fit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
)

// Errors of this package.
var (
	// ErrOptions marks a mistake in Options: what a command line reports as
	// a usage error. Errors carrying it are *OptionsError values.
	ErrOptions = errors.New("invalid fit options")
	// ErrLabels marks labels that, taken together, do not fit the task (a
	// multiclass column of one class, or of more classes than is plausible).
	// A single bad label is an ml.ErrBadData error naming its row instead.
	ErrLabels = errors.New("labels do not fit the task")
)

// Problem is one mistake in Options.
type Problem struct {
	// Field is the key of the option at fault (see Options), e.g. "task",
	// "valid_fraction" or "params", so that a caller can point at its source
	// (a flag, a line of a YAML spec).
	Field string
	// Err says what is wrong, naming options through Options.Name.
	Err error
}

// OptionsError lists every problem found in Options, one per line in Error.
// errors.Is(err, ErrOptions) holds, as does errors.Is for each problem's own
// error (gbdt.ErrParams for a bad tree parameter).
type OptionsError struct {
	Problems []Problem
}

func (e *OptionsError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Err.Error()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrOptions) true.
func (e *OptionsError) Is(target error) bool { return target == ErrOptions }

// Unwrap returns the problems' errors.
func (e *OptionsError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p.Err
	}
	return errs
}

// optionsError returns one problem as an *OptionsError.
func optionsError(field string, err error) error {
	return &OptionsError{Problems: []Problem{{Field: field, Err: err}}}
}

// Options say what to fit on which data. Each field's key, used in Problem
// and passed to Name, is given in brackets. The zero value of an optional
// field is its default; EnsureDefaults fills the ones that are not zero.
type Options struct {
	// Data is the training file: .csv, .tsv (.gz) or .parquet. Required. [data]
	Data string
	// Valid is a validation file with the training columns; its categories
	// take the training codes (unseen ones are missing). [valid]
	Valid string
	// ValidFraction, in [0, 1), is the share of Data held out for validation
	// when Valid is empty; 0 means no validation data. [valid_fraction]
	ValidFraction float64
	// Split says how ValidFraction splits Data. Empty: by time with Time, by
	// query with Group, stratified for binary and multiclass, else random.
	// [split]
	Split ml.SplitMethod

	// Label is the target column. Required. [label]
	Label string
	// Weight is an optional column of per-row weights. [weight]
	Weight string
	// Group is the query column; required for lambdarank. [group]
	Group string
	// Time is an optional column to order rows by; it is not a feature and
	// makes the default split a time split. [time]
	Time string
	// Categorical lists integer columns to treat as categorical (text columns
	// always are). [categorical]
	Categorical []string
	// Ignore lists columns that are not features, such as ids. [ignore]
	Ignore []string

	// Task is modelfile.TaskBinary, TaskRegression, TaskMulticlass or
	// TaskLambdarank. Required. [task]
	Task string
	// Algorithm is modelfile.AlgorithmGBDT (default) or AlgorithmLinear.
	// [algorithm]
	Algorithm string
	// Params are model parameters by LightGBM's names and aliases (for
	// linear models, those of linear.ParseParams). The objective follows
	// Task unless given; multiclass takes num_class from the labels unless
	// given; LightGBM's parameters that name columns (categorical_feature,
	// label_column, ...) are refused: use the fields above. [params]
	Params map[string]string
	// Seed seeds the split, and training unless Params set a seed. [seed]
	Seed uint64

	// Out is the model file to write atomically: a .txt path gets LightGBM's
	// text format (tree models only), any other Atrium's. Empty: Run returns
	// the model without writing it. Its directory must exist. [out]
	Out string

	// LogEvery > 0 reports validation metrics (and a linear model's training
	// objective) through OnMetrics every LogEvery iterations; 0 never.
	// [log_every]
	LogEvery int
	// OnMetrics, when set, receives the metrics of every LogEvery-th
	// iteration that has some, named "valid_<metric>" ("train_objective").
	// The map is the callee's to keep.
	OnMetrics func(iter int, metrics map[string]float64)
	// Progress, when set, is shown the loading of each file (rows) and the
	// iterations of training.
	Progress ml.Progress
	// Logger receives warnings (an id-like column, a linear fit that did not
	// converge) and notes (the early-stopping iteration). Default: discarded.
	Logger *slog.Logger
	// Bins, when set, keeps the bins of the training data between Fit
	// calls on the same *ml.Dataset (gbdt.BinCache): a tuning study's
	// trials bin their shared training rows once. Gradient-boosted trees
	// only; the dataset must not change while cached.
	Bins *gbdt.BinCache
	// Name renders an option's key in messages: the CLI passes its flag
	// names ("valid_fraction" -> "--valid-fraction"), a spec its YAML keys.
	// Default: the key itself.
	Name func(key string) string
}

// EnsureDefaults fills the defaults that are not zero values.
func (o *Options) EnsureDefaults() {
	if o.Algorithm == "" {
		o.Algorithm = modelfile.AlgorithmGBDT
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Name == nil {
		o.Name = func(key string) string { return key }
	}
}

// Validate reports every problem of the options, before any data is read,
// as an *OptionsError; nil when there is none. It checks the parameters for
// the task and algorithm, and that Out's directory exists. Run calls it.
func (o *Options) Validate() error {
	c := *o
	c.EnsureDefaults()
	var problems []Problem
	bad := func(field, format string, args ...any) {
		problems = append(problems, Problem{Field: field, Err: fmt.Errorf(format, args...)})
	}
	n := c.Name
	for _, r := range []struct{ key, value string }{{"data", c.Data}, {"label", c.Label}, {"task", c.Task}} {
		if r.value == "" {
			bad(r.key, "%s is required", n(r.key))
		}
	}
	taskOK := c.Task == "" || slices.Contains(tasks, c.Task)
	if !taskOK {
		bad("task", "%s %q: want binary, regression, multiclass or lambdarank", n("task"), c.Task)
	}
	algoOK := c.Algorithm == modelfile.AlgorithmGBDT || c.Algorithm == modelfile.AlgorithmLinear
	if !algoOK {
		bad("algorithm", "%s %q: want gbdt or linear", n("algorithm"), c.Algorithm)
	}
	linear := c.Algorithm == modelfile.AlgorithmLinear
	if c.Task == modelfile.TaskLambdarank && c.Group == "" {
		bad("group", "%s lambdarank needs %s (the query column)", n("task"), n("group"))
	}
	linearRanking := linear && c.Task == modelfile.TaskLambdarank
	if linearRanking {
		bad("algorithm", "linear models do not rank: use %s gbdt for lambdarank", n("algorithm"))
	}
	if linear && lightGBMText(c.Out) {
		bad("out", "%s %s: LightGBM text holds tree models only; write a linear model to a .json path", n("out"), c.Out)
	}
	if c.ValidFraction < 0 || c.ValidFraction >= 1 || c.Valid != "" && c.ValidFraction > 0 {
		bad("valid_fraction", "%s %v: want a share in [0, 1), and not together with %s", n("valid_fraction"), c.ValidFraction, n("valid"))
	}
	switch c.Split {
	case "", ml.SplitRandom, ml.SplitStratified, ml.SplitGroup, ml.SplitTime:
	default:
		bad("split", "%s %q: want random, stratified, group or time", n("split"), c.Split)
	}
	if c.LogEvery < 0 {
		bad("log_every", "%s %d: want >= 0", n("log_every"), c.LogEvery)
	}
	if c.Out != "" {
		if err := ml.CheckOutDir(c.Out); err != nil {
			bad("out", "%s %s: %v", n("out"), c.Out, err)
		}
	}
	columns := false
	for _, k := range slices.Sorted(maps.Keys(c.Params)) {
		if name, ok := gbdt.ParamName(k); ok && gbdt.IsColumnParam(name) {
			bad("params", "%s %s: columns are given by name with %s, not as a parameter", n("params"), k, n(ColumnParamField(name)))
			columns = true
		}
	}
	// The parameters are checked for a known task and algorithm that go
	// together only, and without column parameters, which would be reported
	// twice.
	if taskOK && c.Task != "" && algoOK && !linearRanking && !columns {
		if err := c.checkParams(); err != nil {
			problems = append(problems, Problem{Field: "params", Err: err})
		}
	}
	if len(problems) > 0 {
		return &OptionsError{Problems: problems}
	}
	return nil
}

// tasks are the tasks Options.Task takes.
var tasks = []string{modelfile.TaskBinary, modelfile.TaskRegression, modelfile.TaskMulticlass, modelfile.TaskLambdarank}

// ColumnParamField returns the key of the Options field that takes the
// columns a LightGBM column parameter (canonical name, see
// gbdt.IsColumnParam) names: "categorical", "label", "weight", "group" or
// "ignore"; "" for any other parameter.
func ColumnParamField(param string) string {
	switch param {
	case gbdt.ParamCategoricalFeature:
		return "categorical"
	case gbdt.ParamLabelColumn:
		return "label"
	case gbdt.ParamWeightColumn:
		return "weight"
	case gbdt.ParamGroupColumn:
		return "group"
	case gbdt.ParamIgnoreColumn:
		return "ignore"
	}
	return ""
}

// lightGBMText reports whether the model file path gets LightGBM's text format.
func lightGBMText(path string) bool {
	return strings.HasSuffix(strings.ToLower(path), ".txt")
}
