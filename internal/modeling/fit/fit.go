package fit

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/linear"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
)

// Result is what Run made.
type Result struct {
	// Model is the fitted model, with its training metadata.
	Model *modelfile.Model
	// Summary describes the fit.
	Summary Summary
}

// Summary describes a fit (the JSON form is `atrium fit --output json`).
type Summary struct {
	// Model is Options.Out ("" when the model was not written).
	Model string `json:"model"`
	// Format is the model file's format: "atrium", "lightgbm", or "" when
	// the model was not written.
	Format     string `json:"format"`
	Task       string `json:"task"`
	Algorithm  string `json:"algorithm"`
	Rows       int    `json:"rows"`
	ValidRows  int    `json:"valid_rows"`
	Features   int    `json:"features"`
	Categories int    `json:"categorical_features"`
	Iterations int    `json:"iterations"`
	// Metrics are the validation metrics of the model as kept (up to the best
	// iteration with early stopping), named "valid_<metric>"; none without
	// validation data.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	Seconds float64            `json:"seconds"`
}

// Run fits the model the options describe and writes it to Out (when set).
// It validates the options first (see Validate); a failed fit leaves an
// existing Out file as it was.
func Run(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	train, valid, err := o.load(ctx)
	if err != nil {
		return nil, err
	}
	o.warnIDColumns(train)
	m, err := o.fit(ctx, train, valid)
	if err != nil {
		return nil, err
	}
	m.Training.Data, m.Training.Valid = o.Data, o.Valid
	m.Training.Label, m.Training.Weight, m.Training.Group = o.Label, o.Weight, o.Group
	m.Training.Rows, m.Training.Seed, m.Training.StartedAt = train.NumRows(), o.Seed, start.UTC()
	if valid != nil {
		m.Training.ValidRows = valid.NumRows()
	}
	m.Training.Seconds = time.Since(start).Seconds()
	s := Summary{Model: o.Out, Task: o.Task, Algorithm: o.Algorithm, Rows: train.NumRows(),
		Features: train.NumFeatures(), Iterations: m.Training.Iterations, Metrics: m.Training.Metrics}
	switch {
	case o.Out == "":
	case lightGBMText(o.Out):
		s.Format = "lightgbm"
		err = m.SaveLightGBM(o.Out)
	default:
		s.Format = "atrium"
		err = m.Save(o.Out)
	}
	if err != nil {
		return nil, err
	}
	if valid != nil {
		s.ValidRows = valid.NumRows()
	}
	for _, c := range train.Columns {
		if c.Kind == ml.Categorical {
			s.Categories++
		}
	}
	s.Seconds = time.Since(start).Seconds()
	return &Result{Model: m, Summary: s}, nil
}

// Fit fits the model the options describe on data already loaded, as Run
// does after loading: the training orchestrator's trials and refit call it
// on the splits of one training set. Data, Valid, ValidFraction, Split and
// Out are not used; the parameters are checked for the task as Validate
// does. The model's Training records the parameters, the iterations kept
// and the final validation metrics, not the data's origin.
func Fit(ctx context.Context, o Options, train, valid *ml.Dataset) (*modelfile.Model, error) {
	o.EnsureDefaults()
	c := o
	c.Data = "-" // Validate wants a file; the data is loaded already
	c.Out, c.Valid, c.ValidFraction = "", "", 0
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return o.fit(ctx, train, valid)
}

// fit completes the parameters from the labels and fits the model.
func (o *Options) fit(ctx context.Context, train, valid *ml.Dataset) (*modelfile.Model, error) {
	kv := maps.Clone(o.Params)
	if kv == nil {
		kv = map[string]string{}
	}
	numClass, err := o.derivedClasses(train, valid)
	if err != nil {
		return nil, err
	}
	if numClass > 0 {
		kv[gbdt.ParamNumClass] = strconv.Itoa(numClass)
	}
	if o.Algorithm == modelfile.AlgorithmLinear {
		return o.fitLinear(ctx, train, valid, kv)
	}
	return o.fitGBDT(ctx, train, valid, kv)
}

// load loads the training file and the validation data: a file aligned to
// the training columns, or a split of the training file.
func (o *Options) load(ctx context.Context) (train, valid *ml.Dataset, err error) {
	opts := ml.LoadOptions{Label: o.Label, Weight: o.Weight, Group: o.Group, Time: o.Time,
		Categorical: o.Categorical, Ignore: o.Ignore, CheckLabel: o.labelCheck()}
	train, err = o.loadFile(ctx, o.Data, opts)
	if err != nil {
		return nil, nil, err
	}
	if o.Valid != "" {
		// The validation file is read as the training features: the same
		// columns with the same kinds, whatever its own values suggest.
		features := ml.FeaturesOf(train)
		vopts := opts
		vopts.Ignore, vopts.Categorical, vopts.Numeric = nil, nil, nil
		for _, f := range features {
			vopts.Features = append(vopts.Features, f.Name)
			if f.Kind == ml.Categorical {
				vopts.Categorical = append(vopts.Categorical, f.Name)
			} else {
				vopts.Numeric = append(vopts.Numeric, f.Name)
			}
		}
		v, err := o.loadFile(ctx, o.Valid, vopts)
		if err != nil {
			return nil, nil, err
		}
		// Validation categories take the training codes; unseen ones are missing.
		valid, err = ml.Align(v, features)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", o.Valid, err)
		}
		return train, valid, nil
	}
	if o.ValidFraction == 0 {
		return train, nil, nil
	}
	tr, va, _, err := train.Split(o.splitMethod(), ml.Fractions{Train: 1 - o.ValidFraction, Valid: o.ValidFraction}, o.Seed)
	if err != nil {
		return nil, nil, optionsError("valid_fraction", fmt.Errorf("%s: %w", o.Name("valid_fraction"), err))
	}
	if tr.NumRows() == 0 || va.NumRows() == 0 {
		return nil, nil, optionsError("valid_fraction", fmt.Errorf("%s %v leaves %d training and %d validation rows",
			o.Name("valid_fraction"), o.ValidFraction, tr.NumRows(), va.NumRows()))
	}
	return tr, va, nil
}

// loadFile loads one data file, showing its progress.
func (o *Options) loadFile(ctx context.Context, path string, opts ml.LoadOptions) (*ml.Dataset, error) {
	var finish func()
	opts.Progress, finish = ml.LoadProgress(o.Progress, path)
	ds, err := ml.Load(ctx, path, opts)
	finish()
	return ds, err
}

// splitMethod is Split, or the default for the task and columns.
func (o *Options) splitMethod() ml.SplitMethod {
	switch {
	case o.Split != "":
		return o.Split
	case o.Time != "":
		return ml.SplitTime
	case o.Group != "":
		return ml.SplitGroup
	case o.Task == modelfile.TaskBinary || o.Task == modelfile.TaskMulticlass:
		return ml.SplitStratified
	}
	return ml.SplitRandom
}

// warnIDColumns warns about text columns with a category for nearly every
// row: ids and free text, which a model can only memorise.
func (o *Options) warnIDColumns(ds *ml.Dataset) {
	n := ds.NumRows()
	for _, c := range ds.Columns {
		if c.Kind == ml.Categorical && n >= 100 && len(c.Categories) > n/2 {
			o.Logger.Warn("categorical column with a category for most rows: an id? leave it out with "+o.Name("ignore"),
				"column", c.Name, "categories", len(c.Categories), "rows", n)
		}
	}
}

// startProgress starts the training step of Progress; the returned func
// records one iteration and end finishes the step.
func (o *Options) startProgress(step string, iterations int) (add func(), end func()) {
	if o.Progress == nil {
		return func() {}, func() {}
	}
	o.Progress.Start(step, "iterations", iterations)
	return func() { o.Progress.Add(1) }, o.Progress.Finish
}

// logsAt reports whether OnMetrics hears of iteration iter.
func (o *Options) logsAt(iter int) bool {
	return o.OnMetrics != nil && o.LogEvery > 0 && iter%o.LogEvery == 0
}

// fitLinear fits a linear model.
func (o *Options) fitLinear(ctx context.Context, train, valid *ml.Dataset, kv map[string]string) (*modelfile.Model, error) {
	p, err := o.linearParams(kv)
	if err != nil {
		return nil, optionsError("params", err)
	}
	add, end := o.startProgress("fit linear", p.MaxIter)
	lm, err := linear.Train(ctx, train, p, linear.TrainOptions{OnIteration: func(iter int, objective float64, m *linear.Model) error {
		add()
		if !o.logsAt(iter) {
			return nil
		}
		metrics := map[string]float64{"train_objective": objective}
		if err := addLinearMetrics(metrics, o.Task, m, valid); err != nil {
			return err
		}
		o.OnMetrics(iter, metrics)
		return nil
	}})
	end()
	if err != nil {
		return nil, err
	}
	if !lm.Converged {
		o.Logger.Warn("linear fit stopped before converging", "iterations", lm.Iterations, "max_iter", p.MaxIter)
	}
	final := map[string]float64{}
	if err := addLinearMetrics(final, o.Task, lm, valid); err != nil {
		return nil, err
	}
	m := modelfile.NewLinear(o.Task, lm, train)
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

// fitGBDT fits gradient-boosted trees.
func (o *Options) fitGBDT(ctx context.Context, train, valid *ml.Dataset, kv map[string]string) (*modelfile.Model, error) {
	p, kv, err := o.gbdtParams(kv, 0)
	if err != nil {
		return nil, optionsError("params", err)
	}
	add, end := o.startProgress("fit gbdt", p.NumIterations)
	var history []map[string]float64 // validation metrics per iteration
	gm, err := gbdt.Train(ctx, train, valid, p, gbdt.TrainOptions{OnIteration: func(iter int, evals []gbdt.Eval) {
		add()
		metrics := map[string]float64{}
		for _, e := range evals {
			metrics["valid_"+e.Name] = e.Value
		}
		history = append(history, metrics)
		if len(metrics) > 0 && o.logsAt(iter) {
			o.OnMetrics(iter, maps.Clone(metrics))
		}
	}, Bins: o.Bins})
	end()
	if err != nil {
		return nil, asOptionsError(err)
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
		o.Logger.Info("early stopping", "best_iteration", gm.BestIteration)
	}
	m.Training = &modelfile.Training{Params: kv, Iterations: gm.NumIterations(), Metrics: final}
	return m, nil
}
