package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/modeling/predict"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/serving/batch"
)

func newPredictCmd(e *env) *cobra.Command {
	var o predict.Options
	var b batch.Options // --model models:/...: the offline twin of serving
	cmd := &cobra.Command{
		Use:   "predict --model MODEL (--data FILE | --spine FILE) --out FILE",
		Short: "Predict with a model on a CSV or Parquet file",
		Long: `Predict with a model file (Atrium's format, LightGBM text or XGBoost JSON) on a
CSV or Parquet file, writing a CSV or Parquet file (by the --out extension).

The data's columns are matched to the model's features by name (order and extra
columns do not matter); categories are matched by their text, and a category the
model never saw counts as missing. The output has the --passthrough columns
(e.g. ids), then "prediction" (the value, the probability of class 1, or the
ranking score) or "prediction_<k>" per class for multiclass.

With a registered model (--model models:/NAME@ALIAS or models:/NAME/VERSION),
predict is the offline twin of the serving API: for each row of --spine (entity
keys, a time column, request-time values named after the on-demand features'
inputs) it retrieves the features of the version's feature service point in time
(the atrium.feature_service tag, or --feature-service), exactly as historical
does, and scores them with that version. The output has the spine's columns then
the predictions: a batch score of an entity at a time equals what
/v1/models/NAME/predict answered for it then.`,
		Example: `  atrium predict --model churn.json --data customers.parquet --passthrough customer_id --out scores.parquet
  atrium predict --model models:/ranker@champion --spine impressions.parquet --out scores.parquet`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.HasPrefix(o.Model, "models:/") {
				b.Model, b.Out, b.Passthrough, b.Raw = o.Model, o.Out, o.Passthrough, o.Raw
				return runPredictRegistered(e, b, o.Data)
			}
			if b.Spine != "" || b.FeatureService != "" || b.TimeColumn != "" {
				return usagef("--spine, --spine-time and --feature-service go with a registered model (--model models:/NAME@ALIAS); a model file scores --data")
			}
			return runPredict(e, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "model file, or a registered model: models:/NAME@ALIAS or models:/NAME/VERSION (required)")
	f.StringVar(&o.Data, "data", "", "with a model file: data file, .csv, .tsv or .parquet (required)")
	f.StringVar(&o.Out, "out", "", "predictions file: .csv, .tsv or .parquet (required)")
	f.StringSliceVar(&o.Passthrough, "passthrough", nil, "columns to copy from the data into the output, e.g. ids")
	f.BoolVar(&o.Raw, "raw", false, "write raw margins instead of probabilities")
	f.StringVar(&b.Spine, "spine", "", "with a registered model: spine file (.csv or .parquet) of entity keys and times")
	f.StringVar(&b.TimeColumn, "spine-time", "", "with a registered model: the spine's time column (default: as historical picks it)")
	f.StringVar(&b.FeatureService, "feature-service", "", "with a registered model: the feature service (default: the version's atrium.feature_service tag)")
	return cmd
}

// runPredictRegistered scores a spine with a registered version (the
// offline twin).
func runPredictRegistered(e *env, o batch.Options, data string) error {
	if data != "" {
		return usagef("a registered model scores --spine (entity keys and times; its features are retrieved), not --data")
	}
	if err := requireFlags("--spine", o.Spine, "--out", o.Out); err != nil {
		return err
	}
	// Relative paths are relative to the working directory, like any CLI file argument.
	var err error
	if o.Spine, err = filepath.Abs(o.Spine); err != nil {
		return err
	}
	if o.Out, err = filepath.Abs(o.Out); err != nil {
		return err
	}
	if err := checkRegisteredPredict(o); err != nil {
		return err
	}
	src, err := batchSources(e)
	if err != nil {
		return err
	}
	s, err := batch.Predict(e.ctx, src, o)
	if errors.Is(err, predict.ErrOptions) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if e.output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	_, err = fmt.Fprintf(e.stdout, "wrote %d predictions of %s version %s (features: %s) to %s in %.2fs\n",
		s.Rows, s.Model, s.Version, s.FeatureService, s.Out, s.Seconds)
	return err
}

// checkRegisteredPredict refuses, before anything is read, what would
// fail later with a message about temporary files or a model not found: a
// model URI of neither form, an --out in a missing directory, an --out that
// is the spine.
func checkRegisteredPredict(o batch.Options) error {
	if _, _, err := serving.ParseModelURI(o.Model); err != nil {
		return usagef("--model %s: want models:/NAME@ALIAS or models:/NAME/VERSION", o.Model)
	}
	if o.Out == o.Spine {
		return usagef("--out %s is the --spine file: write the predictions elsewhere", o.Out)
	}
	return checkOutDir(o.Out)
}

// checkOutDir refuses an --out whose directory does not exist (nothing is
// created but the file itself).
func checkOutDir(out string) error {
	dir := filepath.Dir(out)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usagef("--out %s: directory %s does not exist", out, dir)
	}
	return nil
}

func runPredict(e *env, o predict.Options) error {
	if err := requireFlags("--model", o.Model, "--data", o.Data, "--out", o.Out); err != nil {
		return err
	}
	if err := checkOutDir(o.Out); err != nil {
		return err
	}
	o.Progress, o.Name = &terminalProgress{w: e.stderr}, flagName
	s, err := predict.Run(e.ctx, o)
	if errors.Is(err, predict.ErrOptions) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if e.output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	_, err = fmt.Fprintf(e.stdout, "wrote %d predictions to %s in %.2fs\n", s.Rows, s.Out, s.Seconds)
	return err
}
