package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/linear"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/platform/progress"
)

// fitOptions are the flags of atrium fit.
type fitOptions struct {
	data, valid, out           string
	label, weight, group, time string
	task, algorithm            string
	params                     []string
	categorical, ignore        []string
	validFraction              float64
	split                      string
	seed                       uint64
	logEvery                   int
}

func init() {
	register(func(e *env) *cobra.Command {
		var o fitOptions
		cmd := &cobra.Command{
			Use:   "fit --data FILE --label COL --task TASK --algorithm ALGO --out MODEL",
			Short: "Train a model on a CSV or Parquet file",
			Long: `Train a gradient-boosted tree or linear model on a CSV or Parquet file.

Every column other than the label, weight, group, time and --ignore columns is a
feature: text columns are categorical, numbers numeric (--categorical makes an
integer column categorical). The model is written atomically to --out: a .txt
path gets LightGBM's text format (tree models), any other Atrium's own format.
Parameters use LightGBM's names (--param num_leaves=63 --param learning_rate=0.05;
linear: lambda_l2, lambda_l1, max_iter, tol, standardize).

Validation data comes from --valid, or is split off the training file with
--valid-fraction (stratified for classification, by query for ranking, by row
order with --time, random otherwise). With validation data, a metric line is
printed every --log-every iterations.`,
			Example: `  atrium fit --data train.parquet --label churned --task binary --algorithm gbdt --valid-fraction 0.2 --out churn.json
  atrium fit --data train.csv --label price --task regression --algorithm linear --param lambda_l2=0.01 --out price.json
  atrium fit --data sessions.parquet --label relevance --group session_id --task lambdarank --algorithm gbdt --out rank.txt`,
			Args: exactArgs(0),
			RunE: func(cmd *cobra.Command, args []string) error { return runFit(e, o) },
		}
		f := cmd.Flags()
		f.StringVar(&o.data, "data", "", "training data: a .csv, .tsv or .parquet file (required)")
		f.StringVar(&o.valid, "valid", "", "validation data file with the same columns")
		f.StringVar(&o.out, "out", "", "model file to write; .txt writes LightGBM text (required)")
		f.StringVar(&o.label, "label", "", "label (target) column (required)")
		f.StringVar(&o.weight, "weight", "", "per-row weight column")
		f.StringVar(&o.group, "group", "", "query (group) column, for lambdarank")
		f.StringVar(&o.time, "time", "", "column to order rows by (not a feature); makes --valid-fraction split by time")
		f.StringVar(&o.task, "task", "", "binary, regression, multiclass or lambdarank (required)")
		f.StringVar(&o.algorithm, "algorithm", "gbdt", "gbdt or linear")
		f.StringArrayVar(&o.params, "param", nil, "model parameter k=v, repeatable (LightGBM names)")
		f.StringSliceVar(&o.categorical, "categorical", nil, "integer columns to treat as categorical (comma-separated or repeated)")
		f.StringSliceVar(&o.ignore, "ignore", nil, "columns that are not features, e.g. ids (comma-separated or repeated)")
		f.Float64Var(&o.validFraction, "valid-fraction", 0, "share of the training file to hold out for validation when --valid is not given")
		f.StringVar(&o.split, "split", "", "how --valid-fraction splits: random, stratified, group or time (default: by task)")
		f.Uint64Var(&o.seed, "seed", 0, "random seed for the split and for training")
		f.IntVar(&o.logEvery, "log-every", 10, "print validation metrics every N iterations (0: never)")
		return cmd
	})
}

// columnParams are LightGBM's parameters (and aliases) that name data
// columns; atrium fit takes columns by name in its own flags.
var columnParams = map[string]string{
	"categorical_feature": "--categorical", "cat_feature": "--categorical", "categorical_column": "--categorical",
	"cat_column": "--categorical", "categorical_features": "--categorical",
	"label_column": "--label", "label": "--label",
	"weight_column": "--weight", "weight": "--weight",
	"group_column": "--group", "group": "--group", "group_id": "--group", "query_column": "--group", "query": "--group", "query_id": "--group",
	"ignore_column": "--ignore", "ignore_feature": "--ignore", "blacklist": "--ignore",
}

// parseParams reads --param k=v flags.
func parseParams(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usagef("--param %q: want key=value", kv)
		}
		if flag, ok := columnParams[k]; ok {
			return nil, usagef("--param %s: atrium fit takes columns by name with %s COL", k, flag)
		}
		if prev, dup := out[k]; dup && prev != strings.TrimSpace(v) {
			return nil, usagef("--param %s given twice", k)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

func (o *fitOptions) validate() error {
	if err := requireFlags("--data", o.data, "--label", o.label, "--task", o.task, "--out", o.out); err != nil {
		return err
	}
	switch o.task {
	case modelfile.TaskBinary, modelfile.TaskRegression, modelfile.TaskMulticlass, modelfile.TaskLambdarank:
	default:
		return usagef("--task %q: want binary, regression, multiclass or lambdarank", o.task)
	}
	switch o.algorithm {
	case modelfile.AlgorithmGBDT, modelfile.AlgorithmLinear:
	default:
		return usagef("--algorithm %q: want gbdt or linear", o.algorithm)
	}
	if o.task == modelfile.TaskLambdarank && o.group == "" {
		return usagef("--task lambdarank needs --group (the query column)")
	}
	if o.algorithm == modelfile.AlgorithmLinear && o.task == modelfile.TaskLambdarank {
		return usagef("linear models do not rank: use --algorithm gbdt for lambdarank")
	}
	if o.algorithm == modelfile.AlgorithmLinear && strings.HasSuffix(strings.ToLower(o.out), ".txt") {
		return usagef("--out %s: LightGBM text holds tree models only; write a linear model to a .json path", o.out)
	}
	if o.validFraction < 0 || o.validFraction >= 1 || o.valid != "" && o.validFraction > 0 {
		return usagef("--valid-fraction %v: want a share in [0, 1), and not together with --valid", o.validFraction)
	}
	if o.logEvery < 0 {
		return usagef("--log-every %d: want >= 0", o.logEvery)
	}
	return checkOutDir(o.out)
}

// checkOutDir refuses an --out path whose directory does not exist before any
// work is done, rather than after training or predicting.
func checkOutDir(out string) error {
	dir := filepath.Dir(out)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usagef("--out %s: directory %s does not exist", out, dir)
	}
	return nil
}

// requireFlags takes flag names and values in pairs and reports every flag
// left empty, as a usage error.
func requireFlags(nameValues ...string) error {
	var missing []string
	for i := 0; i+1 < len(nameValues); i += 2 {
		if nameValues[i+1] == "" {
			missing = append(missing, nameValues[i])
		}
	}
	if len(missing) > 0 {
		return usagef("missing required flag(s): %s", strings.Join(missing, ", "))
	}
	return nil
}

// fitSummary is what atrium fit reports.
type fitSummary struct {
	Model      string             `json:"model"`
	Format     string             `json:"format"`
	Task       string             `json:"task"`
	Algorithm  string             `json:"algorithm"`
	Rows       int                `json:"rows"`
	ValidRows  int                `json:"valid_rows"`
	Features   int                `json:"features"`
	Categories int                `json:"categorical_features"`
	Iterations int                `json:"iterations"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Seconds    float64            `json:"seconds"`
}

func runFit(e *env, o fitOptions) error {
	start := time.Now()
	if err := o.validate(); err != nil {
		return err
	}
	kv, err := parseParams(o.params)
	if err != nil {
		return err
	}
	if err := o.checkParams(kv); err != nil {
		return err
	}
	train, valid, err := loadTrainValid(e, o, kv)
	if err != nil {
		return err
	}
	warnIDColumns(e, train)
	numClass, err := derivedClasses(o, kv, train, valid)
	if err != nil {
		return err
	}
	if numClass > 0 {
		kv["num_class"] = strconv.Itoa(numClass)
	}
	f := &fitter{e: e, o: o, start: start}
	var m *modelfile.Model
	switch o.algorithm {
	case modelfile.AlgorithmLinear:
		m, err = f.linear(train, valid, kv)
	default:
		m, err = f.gbdt(train, valid, kv)
	}
	if err != nil {
		return err
	}
	m.Training.Data, m.Training.Valid = o.data, o.valid
	m.Training.Label, m.Training.Weight, m.Training.Group = o.label, o.weight, o.group
	m.Training.Rows, m.Training.Seed, m.Training.StartedAt = train.NumRows(), o.seed, start.UTC()
	if valid != nil {
		m.Training.ValidRows = valid.NumRows()
	}
	m.Training.Seconds = time.Since(start).Seconds()
	format := "atrium"
	if strings.HasSuffix(strings.ToLower(o.out), ".txt") {
		format = "lightgbm"
		err = m.SaveLightGBM(o.out)
	} else {
		err = m.Save(o.out)
	}
	if err != nil {
		return err
	}
	s := fitSummary{Model: o.out, Format: format, Task: o.task, Algorithm: o.algorithm, Rows: train.NumRows(),
		Features: train.NumFeatures(), Iterations: m.Training.Iterations, Metrics: m.Training.Metrics,
		Seconds: time.Since(start).Seconds()}
	if valid != nil {
		s.ValidRows = valid.NumRows()
	}
	for _, c := range train.Columns {
		if c.Kind == ml.Categorical {
			s.Categories++
		}
	}
	return writeFitSummary(e, s)
}

// loadTrainValid loads the training file and the validation data (a file
// aligned to the training columns, or a split of the training file).
func loadTrainValid(e *env, o fitOptions, kv map[string]string) (train, valid *ml.Dataset, err error) {
	opts := ml.LoadOptions{Label: o.label, Weight: o.weight, Group: o.group, Time: o.time, Categorical: o.categorical, Ignore: o.ignore,
		CheckLabel: labelCheck(o.task, kv)}
	var bar *progress.Bar
	opts.Progress = loadProgress(e, o.data, &bar)
	train, err = ml.Load(e.ctx, o.data, opts)
	bar.Finish()
	opts.Progress = nil
	if err != nil {
		return nil, nil, err
	}
	if o.valid != "" {
		features := ml.FeaturesOf(train)
		vopts := opts
		vopts.Ignore = nil
		vopts.Categorical, vopts.Numeric = nil, nil
		for _, f := range features {
			vopts.Features = append(vopts.Features, f.Name)
			if f.Kind == ml.Categorical {
				vopts.Categorical = append(vopts.Categorical, f.Name)
			} else {
				vopts.Numeric = append(vopts.Numeric, f.Name)
			}
		}
		v, err := ml.Load(e.ctx, o.valid, vopts)
		if err != nil {
			return nil, nil, err
		}
		// Validation categories take the training codes; unseen ones are missing.
		valid, err = ml.Align(v, features)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", o.valid, err)
		}
		return train, valid, nil
	}
	if o.validFraction == 0 {
		return train, nil, nil
	}
	method := ml.SplitMethod(o.split)
	if method == "" {
		switch {
		case o.time != "":
			method = ml.SplitTime
		case o.group != "":
			method = ml.SplitGroup
		case o.task == modelfile.TaskBinary || o.task == modelfile.TaskMulticlass:
			method = ml.SplitStratified
		default:
			method = ml.SplitRandom
		}
	}
	tr, va, _, err := train.Split(method, ml.Fractions{Train: 1 - o.validFraction, Valid: o.validFraction}, o.seed)
	if err != nil {
		return nil, nil, usagef("--valid-fraction: %v", err)
	}
	if tr.NumRows() == 0 || va.NumRows() == 0 {
		return nil, nil, usagef("--valid-fraction %v leaves %d training and %d validation rows", o.validFraction, tr.NumRows(), va.NumRows())
	}
	return tr, va, nil
}

// labelCheck returns the ml.LoadOptions.CheckLabel for the task: the labels
// its objectives accept, checked while loading so that a bad one is reported
// with its file, column and row rather than as a row index of the training
// set. The parameters give num_class and label_gain; malformed ones are left
// for the model's own parameter checks to report.
func labelCheck(task string, kv map[string]string) func(y float64) string {
	switch task {
	case modelfile.TaskBinary:
		return func(y float64) string {
			if y != 0 && y != 1 {
				return fmt.Sprintf("label is %v, want 0 or 1 for --task binary", y)
			}
			return ""
		}
	case modelfile.TaskMulticlass:
		k := 0
		for _, name := range []string{"num_class", "num_classes"} {
			if n, err := strconv.Atoi(kv[name]); err == nil && n > 0 {
				k = n
			}
		}
		return func(y float64) string {
			switch {
			case k > 0 && (y != math.Trunc(y) || y < 0 || y >= float64(k)):
				return fmt.Sprintf("label is %v, want a class index 0..%d (num_class=%d)", y, k-1, k)
			case y != math.Trunc(y) || y < 0:
				return fmt.Sprintf("label is %v, want a class index 0, 1, 2, ...", y)
			}
			return ""
		}
	case modelfile.TaskLambdarank:
		gains := len(ml.DefaultLabelGain())
		if g, ok := kv["label_gain"]; ok {
			gains = len(strings.Split(g, ","))
		}
		return func(y float64) string {
			if y != math.Trunc(y) || y < 0 || y >= float64(gains) {
				return fmt.Sprintf("label is %v, want a whole-number relevance 0..%d (one per label_gain entry)", y, gains-1)
			}
			return ""
		}
	}
	return nil
}

// warnIDColumns warns about text columns with a category for nearly every
// row: ids and free text, which a model can only memorise.
func warnIDColumns(e *env, ds *ml.Dataset) {
	n := ds.NumRows()
	for _, c := range ds.Columns {
		if c.Kind == ml.Categorical && n >= 100 && len(c.Categories) > n/2 {
			e.log.Warn("categorical column with a category for most rows: an id? leave it out with --ignore", "column", c.Name, "categories", len(c.Categories), "rows", n)
		}
	}
}

// loadProgress returns an ml.LoadOptions.Progress that shows a progress bar
// of the rows read on a terminal (a running count when the total is unknown).
// The caller finishes *bar.
func loadProgress(e *env, path string, bar **progress.Bar) func(rows, total int) {
	shown := 0
	return func(rows, total int) {
		if shown == 0 {
			*bar = progress.New(e.stderr, int64(total), "loading "+filepath.Base(path), "rows")
		}
		(*bar).Add(int64(rows - shown))
		shown = rows
	}
}

// fitter trains one model and reports its progress.
type fitter struct {
	e     *env
	o     fitOptions
	start time.Time
	bar   *progress.Bar
}

// logLine prints an iteration's metrics to stderr. On a terminal the line
// clears the progress bar first.
func (f *fitter) logLine(iter int, metrics map[string]float64) {
	if len(metrics) == 0 {
		return
	}
	var b strings.Builder
	if f.bar != nil {
		b.WriteString("\r\x1b[K")
	}
	fmt.Fprintf(&b, "[%d]", iter)
	for _, name := range slices.Sorted(maps.Keys(metrics)) {
		fmt.Fprintf(&b, "  %s: %.6g", name, metrics[name])
	}
	fmt.Fprintf(&b, "  (%.1fs)\n", time.Since(f.start).Seconds())
	_, _ = io.WriteString(f.e.stderr, b.String())
}

// linear fits a linear model.
func (f *fitter) linear(train, valid *ml.Dataset, kv map[string]string) (*modelfile.Model, error) {
	p, err := f.o.linearParams(kv)
	if err != nil {
		return nil, err
	}
	f.bar = progress.New(f.e.stderr, int64(p.MaxIter), "fit linear", "iterations")
	lm, err := linear.Train(f.e.ctx, train, p, linear.TrainOptions{OnIteration: func(iter int, objective float64, m *linear.Model) error {
		f.bar.Add(1)
		if f.o.logEvery == 0 || iter%f.o.logEvery != 0 {
			return nil
		}
		metrics := map[string]float64{"train_objective": objective}
		if err := addLinearMetrics(metrics, f.o.task, m, valid); err != nil {
			return err
		}
		f.logLine(iter, metrics)
		return nil
	}})
	f.bar.Finish()
	if err != nil {
		return nil, err
	}
	if !lm.Converged {
		f.e.log.Warn("linear fit stopped before converging", "iterations", lm.Iterations, "max_iter", p.MaxIter)
	}
	final := map[string]float64{}
	if err := addLinearMetrics(final, f.o.task, lm, valid); err != nil {
		return nil, err
	}
	m := modelfile.NewLinear(f.o.task, lm, train)
	m.Training = &modelfile.Training{Params: p.Map(), Iterations: lm.Iterations, Metrics: final}
	return m, nil
}

// addLinearMetrics adds LightGBM's default metrics of the task on the
// validation data (when there is some), named valid_<metric>: binary_logloss
// and auc, l2 for regression, multi_logloss for multiclass.
func addLinearMetrics(metrics map[string]float64, task string, m *linear.Model, valid *ml.Dataset) error {
	if valid == nil {
		return nil
	}
	pred, err := m.Predict(valid)
	if err != nil {
		return fmt.Errorf("validation data: %w", err)
	}
	type metric struct {
		name string
		fn   func() (float64, error)
	}
	var ms []metric
	switch task {
	case modelfile.TaskBinary:
		ms = []metric{
			{"binary_logloss", func() (float64, error) { return ml.LogLoss(valid.Label, pred, valid.Weight) }},
			{"auc", func() (float64, error) {
				if !slices.Contains(valid.Label, 0) || !slices.Contains(valid.Label, 1) {
					return 1, nil // LightGBM's value where AUC is undefined, as trees report
				}
				return ml.AUC(valid.Label, pred, valid.Weight)
			}},
		}
	case modelfile.TaskMulticlass:
		ms = []metric{{"multi_logloss", func() (float64, error) {
			return ml.MultiLogLoss(valid.Label, pred, m.NumOutputs(), valid.Weight)
		}}}
	default:
		ms = []metric{{"l2", func() (float64, error) { return ml.MSE(valid.Label, pred, valid.Weight) }}}
	}
	for _, mt := range ms {
		v, err := mt.fn()
		if err != nil {
			return fmt.Errorf("validation %s: %w", mt.name, err)
		}
		metrics["valid_"+mt.name] = v
	}
	return nil
}

// objectiveAliases are LightGBM's names for the objective parameter.
var objectiveAliases = []string{"objective", "objective_type", "app", "application", "loss"}

// gbdtObjectives are the tree objectives each task accepts.
var gbdtObjectives = map[string][]string{
	modelfile.TaskBinary:     {gbdt.ObjBinary},
	modelfile.TaskRegression: {gbdt.ObjRegression, gbdt.ObjRegressionL1, gbdt.ObjHuber},
	modelfile.TaskMulticlass: {gbdt.ObjMulticlass},
	modelfile.TaskLambdarank: {gbdt.ObjLambdarank},
}

// hasNumClass reports whether the --param values set num_class.
func hasNumClass(kv map[string]string) bool {
	_, a := kv["num_class"]
	_, b := kv["num_classes"]
	return a || b
}

// derivedClasses returns the class count of a multiclass fit without
// num_class: the largest label of the training and validation data + 1, so
// that a class seen only in validation is a class of the model (LightGBM
// users set num_class; this is what they would set). 0 when num_class is
// given or the task is another. A count no model can use is an error naming
// the file and column, rather than blaming num_class, and comes before a
// linear model allocates a coefficient row per class.
func derivedClasses(o fitOptions, kv map[string]string, train, valid *ml.Dataset) (int, error) {
	if o.task != modelfile.TaskMulticlass || hasNumClass(kv) {
		return 0, nil
	}
	top, file := slices.Max(train.Label), o.data
	if valid != nil {
		if v := slices.Max(valid.Label); v > top {
			top = v
			if o.valid != "" {
				file = o.valid
			}
		}
	}
	switch {
	case top < 1:
		return 0, fmt.Errorf("%s: --task multiclass: every label of column %q is 0; want at least two classes (or set num_class)", o.data, o.label)
	case top >= maxDerivedClasses:
		return 0, fmt.Errorf("%s: --task multiclass: the largest label of column %q is %v, more than %d classes; labels are class indexes 0..k-1 (set num_class if you mean it)",
			file, o.label, top, maxDerivedClasses)
	}
	return int(top) + 1, nil
}

// maxDerivedClasses bounds the class count atrium fit takes from the labels
// when num_class is not given: a larger label is far more likely a label
// column that is not class indexes (a price, an id) than 10,000 classes.
const maxDerivedClasses = 10000

// gbdtParams turns the --param values into tree parameters for the task,
// returning them and the values as completed (objective, seed, num_class);
// numClass is the class count taken from the labels (0: none).
func (o fitOptions) gbdtParams(kv map[string]string, numClass int) (gbdt.Params, map[string]string, error) {
	kv = maps.Clone(kv)
	if !slices.ContainsFunc(objectiveAliases, func(a string) bool { _, ok := kv[a]; return ok }) {
		kv["objective"] = o.task
	}
	if _, ok := kv["seed"]; !ok && o.seed != 0 {
		kv["seed"] = strconv.FormatUint(o.seed, 10)
	}
	if numClass > 0 {
		kv["num_class"] = strconv.Itoa(numClass)
	}
	p, err := gbdt.ParseParams(kv)
	if err != nil {
		return p, nil, usageError{err}
	}
	if !slices.Contains(gbdtObjectives[o.task], p.Objective) {
		return p, nil, usagef("objective %s does not fit --task %s (want %s)", p.Objective, o.task, strings.Join(gbdtObjectives[o.task], " or "))
	}
	return p, kv, nil
}

// linearParams turns the --param values into linear-model parameters.
func (o fitOptions) linearParams(kv map[string]string) (linear.Params, error) {
	if obj, ok := kv["objective"]; ok && obj != o.task {
		return linear.Params{}, usagef("--param objective=%s contradicts --task %s", obj, o.task)
	}
	kv = maps.Clone(kv)
	kv["objective"] = o.task
	p, err := linear.ParseParams(kv)
	if err != nil {
		return p, usageError{err}
	}
	return p, nil
}

// checkParams checks the --param values before any data is read, so that a
// typo does not wait for a large file to load. A class count the labels will
// give stands in as 2.
func (o fitOptions) checkParams(kv map[string]string) error {
	if o.algorithm == modelfile.AlgorithmLinear {
		_, err := o.linearParams(kv)
		return err
	}
	numClass := 0
	if o.task == modelfile.TaskMulticlass && !hasNumClass(kv) {
		numClass = 2
	}
	_, _, err := o.gbdtParams(kv, numClass)
	return err
}

// gbdt fits gradient-boosted trees.
func (f *fitter) gbdt(train, valid *ml.Dataset, kv map[string]string) (*modelfile.Model, error) {
	p, kv, err := f.o.gbdtParams(kv, 0)
	if err != nil {
		return nil, err
	}
	f.bar = progress.New(f.e.stderr, int64(p.NumIterations), "fit gbdt", "iterations")
	var history []map[string]float64 // validation metrics per iteration
	gm, err := gbdt.Train(f.e.ctx, train, valid, p, gbdt.TrainOptions{OnIteration: func(iter int, evals []gbdt.Eval) {
		f.bar.Add(1)
		metrics := map[string]float64{}
		for _, e := range evals {
			metrics["valid_"+e.Name] = e.Value
		}
		history = append(history, metrics)
		if f.o.logEvery > 0 && iter%f.o.logEvery == 0 {
			f.logLine(iter, metrics)
		}
	}})
	f.bar.Finish()
	if errors.Is(err, gbdt.ErrParams) {
		// Parameters that do not fit the data (a metric of another
		// objective, early stopping without validation data).
		return nil, usageError{err}
	}
	if err != nil {
		return nil, err
	}
	m, err := modelfile.NewGBDT(gm, train)
	if err != nil {
		return nil, err
	}
	// The model keeps the trees up to the best iteration (early stopping).
	var final map[string]float64
	if n := gm.NumIterations(); n > 0 && n <= len(history) {
		final = history[n-1]
	}
	if gm.BestIteration > 0 {
		f.e.log.Info("early stopping", "best_iteration", gm.BestIteration)
	}
	m.Training = &modelfile.Training{Params: kv, Iterations: gm.NumIterations(), Metrics: final}
	return m, nil
}

func writeFitSummary(e *env, s fitSummary) error {
	if e.output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "model       %s (%s, %s, %s format)\n", s.Model, s.Algorithm, s.Task, s.Format)
	fmt.Fprintf(&b, "rows        %d train", s.Rows)
	if s.ValidRows > 0 {
		fmt.Fprintf(&b, ", %d valid", s.ValidRows)
	}
	fmt.Fprintf(&b, "\nfeatures    %d (%d categorical)\n", s.Features, s.Categories)
	fmt.Fprintf(&b, "iterations  %d\n", s.Iterations)
	if len(s.Metrics) > 0 {
		b.WriteString("metrics    ")
		for _, name := range slices.Sorted(maps.Keys(s.Metrics)) {
			fmt.Fprintf(&b, " %s=%s", name, strconv.FormatFloat(s.Metrics[name], 'g', 6, 64))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "time        %.2fs\n", s.Seconds)
	_, err := io.WriteString(e.stdout, b.String())
	return err
}
