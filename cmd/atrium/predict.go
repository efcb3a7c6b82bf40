package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/platform/progress"
)

// predictOptions are the flags of atrium predict.
type predictOptions struct {
	model, data, out string
	passthrough      []string
	raw              bool
}

func init() {
	register(func(e *env) *cobra.Command {
		var o predictOptions
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
		f.StringVar(&o.model, "model", "", "model file (required)")
		f.StringVar(&o.data, "data", "", "data file: .csv, .tsv or .parquet (required)")
		f.StringVar(&o.out, "out", "", "predictions file: .csv, .tsv or .parquet (required)")
		f.StringSliceVar(&o.passthrough, "passthrough", nil, "columns to copy from the data into the output, e.g. ids")
		f.BoolVar(&o.raw, "raw", false, "write raw margins instead of probabilities")
		return cmd
	})
}

// predictSummary is what atrium predict reports.
type predictSummary struct {
	Out     string  `json:"out"`
	Rows    int     `json:"rows"`
	Outputs int     `json:"outputs"`
	Seconds float64 `json:"seconds"`
}

func runPredict(e *env, o predictOptions) error {
	start := time.Now()
	if err := requireFlags("--model", o.model, "--data", o.data, "--out", o.out); err != nil {
		return err
	}
	if err := ml.CheckTablePath(o.out); err != nil {
		return usagef("--out %s: %v", o.out, err)
	}
	if err := checkOutDir(o.out); err != nil {
		return err
	}
	m, err := modelfile.Load(o.model)
	if err != nil {
		return err
	}
	for _, name := range m.OutputNames() {
		if slices.Contains(o.passthrough, name) {
			return usagef("--passthrough %s: the output already has a column %q", name, name)
		}
	}
	// Exactly the model's features, with its kinds, numbers as doubles (tree
	// models compare what their library would, not float32 roundings).
	opts := m.LoadOptions()
	opts.Passthrough = o.passthrough
	var bar *progress.Bar
	opts.Progress = loadProgress(e, o.data, &bar)
	tab, err := ml.LoadTable(e.ctx, o.data, opts)
	bar.Finish()
	if err != nil {
		return err
	}
	var pred []float64
	if o.raw {
		pred, err = m.PredictRaw(tab.Dataset)
	} else {
		pred, err = m.Predict(tab.Dataset)
	}
	if err != nil {
		return fmt.Errorf("predict on %s: %w", o.data, err)
	}
	k, n := m.NumOutputs(), tab.NumRows()
	var cols []ml.OutputColumn
	for i := range tab.Passthrough {
		cols = append(cols, ml.OutputColumn{Name: tab.Passthrough[i].Name, Raw: &tab.Passthrough[i]})
	}
	for c, name := range m.OutputNames() {
		values := make([]float64, n)
		for r := range n {
			values[r] = pred[r*k+c]
		}
		cols = append(cols, ml.OutputColumn{Name: name, Floats: values})
	}
	if err := ml.WriteTable(e.ctx, o.out, cols); err != nil {
		return err
	}
	s := predictSummary{Out: o.out, Rows: n, Outputs: k, Seconds: time.Since(start).Seconds()}
	if e.output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	_, err = io.WriteString(e.stdout, fmt.Sprintf("wrote %d predictions to %s in %.2fs\n", n, o.out, s.Seconds))
	return err
}
