package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/modeling/predict"
)

func newPredictCmd(e *env) *cobra.Command {
	var o predict.Options
	cmd := &cobra.Command{
		Use:   "predict --model MODEL --data FILE --out FILE",
		Short: "Predict with a model on a CSV or Parquet file",
		Long: `Predict with a model file (Atrium's format, LightGBM text or XGBoost JSON) on a
CSV or Parquet file, writing a CSV or Parquet file (by the --out extension).

The data's columns are matched to the model's features by name (order and extra
columns do not matter); categories are matched by their text, and a category the
model never saw counts as missing. The output has the --passthrough columns
(e.g. ids), then "prediction" (the value, the probability of class 1, or the
ranking score) or "prediction_<k>" per class for multiclass.`,
		Example: `  atrium predict --model churn.json --data customers.parquet --passthrough customer_id --out scores.parquet`,
		Args:    exactArgs(0),
		RunE:    func(cmd *cobra.Command, args []string) error { return runPredict(e, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "model file (required)")
	f.StringVar(&o.Data, "data", "", "data file: .csv, .tsv or .parquet (required)")
	f.StringVar(&o.Out, "out", "", "predictions file: .csv, .tsv or .parquet (required)")
	f.StringSliceVar(&o.Passthrough, "passthrough", nil, "columns to copy from the data into the output, e.g. ids")
	f.BoolVar(&o.Raw, "raw", false, "write raw margins instead of probabilities")
	return cmd
}

func runPredict(e *env, o predict.Options) error {
	if err := requireFlags("--model", o.Model, "--data", o.Data, "--out", o.Out); err != nil {
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
