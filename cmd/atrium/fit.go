package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/modeling/fit"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/platform/progress"
	"github.com/atrium-ml/atrium/internal/serving/register"
)

func newFitCmd(e *env) *cobra.Command {
	var o fit.Options
	var params []string // --param k=v, parsed into o.Params
	var reg register.Options
	var tracking trackingURI
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
printed every --log-every iterations.

--register NAME publishes the model to the project's tracking store and model
registry, as the MLflow client does: a run with the parameters and metrics, the
model as an MLflow model directory (flavor "atrium", with its signature) and a
new version of the registered model NAME, tagged atrium.feature_service with
--feature-service (the service the training data was retrieved from: serving's
/v1 predict and rank, atrium predict --model and atrium skew fetch the features
from it). --alias points an alias (champion) at the new version: a running
atrium serve switches to it within its poll interval. --out is optional then.
With --tracking-uri (or MLFLOW_TRACKING_URI) set to a server's URL, the run,
model and version go to that server through its MLflow API and artifact proxy
(MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and _PASSWORD, authenticate).`,
		Example: `  atrium fit --data train.parquet --label churned --task binary --algorithm gbdt --valid-fraction 0.2 --out churn.json
  atrium fit --data train.csv --label price --task regression --algorithm linear --param lambda_l2=0.01 --out price.json
  atrium fit --data sessions.parquet --label relevance --group session_id --task lambdarank --algorithm gbdt --out rank.txt
  atrium fit --data train.parquet --label label --group session_id --task lambdarank --ignore session_id \
      --register ranker --feature-service ranker_v1 --alias champion`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFit(e, o, params, reg, &tracking)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Data, "data", "", "training data: a .csv, .tsv or .parquet file (required)")
	f.StringVar(&o.Valid, "valid", "", "validation data file with the same columns")
	f.StringVar(&o.Out, "out", "", "model file to write; .txt writes LightGBM text (required)")
	f.StringVar(&o.Label, "label", "", "label (target) column (required)")
	f.StringVar(&o.Weight, "weight", "", "per-row weight column")
	f.StringVar(&o.Group, "group", "", "query (group) column, for lambdarank")
	f.StringVar(&o.Time, "time", "", "column to order rows by (not a feature); makes --valid-fraction split by time")
	f.StringVar(&o.Task, "task", "", "binary, regression, multiclass or lambdarank (required)")
	f.StringVar(&o.Algorithm, "algorithm", "gbdt", "gbdt or linear")
	f.StringArrayVar(&params, "param", nil, "model parameter k=v, repeatable (LightGBM names)")
	f.StringSliceVar(&o.Categorical, "categorical", nil, "integer columns to treat as categorical (comma-separated or repeated)")
	f.StringSliceVar(&o.Ignore, "ignore", nil, "columns that are not features, e.g. ids (comma-separated or repeated)")
	f.Float64Var(&o.ValidFraction, "valid-fraction", 0, "share of the training file to hold out for validation when --valid is not given")
	f.StringVar((*string)(&o.Split), "split", "", "how --valid-fraction splits: random, stratified, group or time (default: by task)")
	f.Uint64Var(&o.Seed, "seed", 0, "random seed for the split and for training")
	f.IntVar(&o.LogEvery, "log-every", 10, "print validation metrics every N iterations (0: never)")
	f.StringVar(&reg.Name, "register", "", "register the model under this name in the project's model registry (with a tracking run)")
	f.StringVar(&reg.FeatureService, "feature-service", "", "with --register: the feature service the training data came from (version tag atrium.feature_service)")
	f.StringVar(&reg.Alias, "alias", "", "with --register: point this alias (e.g. champion) at the new version")
	f.StringVar(&reg.Experiment, "experiment", "", "with --register: the run's experiment, created if missing (default: Default)")
	f.StringVar(&reg.RunName, "run-name", "", "with --register: the run's name")
	tracking.addFlag(cmd, "with --register: publish to this server's MLflow API (an atrium serve URL; default $MLFLOW_TRACKING_URI, else the project's own stores)")
	return cmd
}

// flagName is the flag that sets the fit.Options or predict.Options field
// with the key (valid_fraction -> --valid-fraction, params -> --param), for
// the packages' messages.
func flagName(key string) string {
	if key == "params" {
		return "--param"
	}
	return "--" + strings.ReplaceAll(key, "_", "-")
}

// parseParams reads --param k=v flags. LightGBM's parameters that name
// columns are refused here with the flag that takes the column by name.
func parseParams(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usagef("--param %q: want key=value", kv)
		}
		if name, ok := gbdt.ParamName(k); ok && gbdt.IsColumnParam(name) {
			return nil, usagef("--param %s: atrium fit takes columns by name with %s COL", k, flagName(fit.ColumnParamField(name)))
		}
		if prev, dup := out[k]; dup && prev != strings.TrimSpace(v) {
			return nil, usagef("--param %s given twice", k)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
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

// terminalProgress shows the steps of a fit or a prediction as progress bars
// on w when w is a terminal (and nothing otherwise).
type terminalProgress struct {
	w   io.Writer
	bar *progress.Bar // the current step's; nil between steps or off a terminal
}

var _ ml.Progress = (*terminalProgress)(nil)

func (p *terminalProgress) Start(step, unit string, total int) {
	p.bar = progress.New(p.w, int64(total), step, unit)
}

func (p *terminalProgress) Add(n int) { p.bar.Add(int64(n)) }

func (p *terminalProgress) Finish() {
	p.bar.Finish()
	p.bar = nil
}

// metricsLine writes an iteration's metrics to the progress writer. On a
// terminal the line clears the progress bar first.
func (p *terminalProgress) metricsLine(start time.Time, iter int, metrics map[string]float64) {
	var b strings.Builder
	if p.bar != nil {
		b.WriteString("\r\x1b[K")
	}
	fmt.Fprintf(&b, "[%d]", iter)
	for _, name := range slices.Sorted(maps.Keys(metrics)) {
		fmt.Fprintf(&b, "  %s: %.6g", name, metrics[name])
	}
	fmt.Fprintf(&b, "  (%.1fs)\n", time.Since(start).Seconds())
	_, _ = io.WriteString(p.w, b.String())
}

func runFit(e *env, o fit.Options, params []string, reg register.Options, tracking *trackingURI) error {
	start := time.Now()
	out := o.Out
	if reg.Name != "" && out == "" {
		out = "-" // the registry keeps the model
	}
	if err := requireFlags("--data", o.Data, "--label", o.Label, "--task", o.Task, "--out", out); err != nil {
		return err
	}
	if reg.Name == "" && (reg.FeatureService != "" || reg.Alias != "" || reg.Experiment != "" || reg.RunName != "") {
		return usagef("--feature-service, --alias, --experiment and --run-name go with --register NAME")
	}
	var target register.Target
	if reg.Name != "" {
		if err := reg.Validate(); err != nil {
			return usageError{err}
		}
		var err error
		if target, err = tracking.tracker(e); err != nil {
			return err
		}
	} else if tracking.explicit() {
		return usagef("--tracking-uri goes with --register NAME")
	}
	var err error
	if o.Params, err = parseParams(params); err != nil {
		return err
	}
	bars := &terminalProgress{w: e.stderr}
	o.Progress, o.Logger, o.Name = bars, e.log, flagName
	o.OnMetrics = func(iter int, metrics map[string]float64) { bars.metricsLine(start, iter, metrics) }
	res, err := fit.Run(e.ctx, o)
	if errors.Is(err, fit.ErrOptions) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if reg.Name == "" {
		return writeFitSummary(e, res.Summary, nil)
	}
	reg.Source = "atrium fit"
	r, err := register.Model(e.ctx, target, res.Model, reg)
	if err != nil {
		return err
	}
	return writeFitSummary(e, res.Summary, r)
}

func writeFitSummary(e *env, s fit.Summary, r *register.Result) error {
	if e.output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if r != nil {
			return enc.Encode(struct {
				fit.Summary
				Registered *register.Result `json:"registered"`
			}{s, r})
		}
		return enc.Encode(s)
	}
	var b strings.Builder
	if s.Model != "" {
		fmt.Fprintf(&b, "model       %s (%s, %s, %s format)\n", s.Model, s.Algorithm, s.Task, s.Format)
	} else {
		fmt.Fprintf(&b, "model       %s, %s\n", s.Algorithm, s.Task)
	}
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
	if r != nil {
		fmt.Fprintf(&b, "registered  %s version %s (run %s)\n", r.Name, r.Version, r.RunID)
		if r.Alias != "" {
			fmt.Fprintf(&b, "alias       %s -> version %s\n", r.Alias, r.Version)
		}
		fmt.Fprintf(&b, "model uri   %s\n", r.ModelURI)
	}
	_, err := io.WriteString(e.stdout, b.String())
	return err
}
