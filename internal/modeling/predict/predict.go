// Package predict scores a data file with a model file and writes the
// predictions as a CSV or Parquet file: `atrium predict` is a thin front end
// to Run, and the training orchestrator scores held-out files with it.
//
//	s, err := predict.Run(ctx, predict.Options{Model: "m.json", Data: "new.csv", Out: "scores.parquet"})
//
// A mistake in the options satisfies errors.Is(err, ErrOptions); bad data is
// an ml.ErrBadData error naming the file, column and row; a file that is no
// model is a modelfile error. A failed Run writes nothing.
package predict

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
)

// ErrOptions marks a mistake in Options (what a command line reports as a
// usage error).
var ErrOptions = errors.New("invalid predict options")

// Options say which model scores which file into which file. Each field's
// key, passed to Name, is given in brackets.
type Options struct {
	// Model is the model file: Atrium's format, LightGBM text, XGBoost JSON
	// or UBJSON. Required. [model]
	Model string
	// Data is the file to score: .csv, .tsv (.gz) or .parquet. Its columns
	// are matched to the model's features by name. Required. [data]
	Data string
	// Out is the predictions file, .csv, .tsv or .parquet, written
	// atomically; its directory must exist. Required. [out]
	Out string
	// Passthrough lists columns of Data copied to Out first, with their
	// types (ids). [passthrough]
	Passthrough []string
	// Raw writes margins instead of probabilities. [raw]
	Raw bool
	// Loaded, when set, is the model, already loaded (a registered
	// version); Model then only names it in messages.
	Loaded *modelfile.Model

	// Progress, when set, is shown the loading of Data.
	Progress ml.Progress
	// Name renders an option's key in messages (the CLI's flag names).
	// Default: the key itself.
	Name func(key string) string
}

// Summary describes a Run (the JSON form is `atrium predict --output json`).
type Summary struct {
	Out string `json:"out"`
	// Rows is the number of rows scored.
	Rows int `json:"rows"`
	// Outputs is the number of prediction columns: 1, or one per class.
	Outputs int     `json:"outputs"`
	Seconds float64 `json:"seconds"`
}

// optionsError is an ErrOptions error with its whole message.
type optionsError string

func (e optionsError) Error() string { return string(e) }

// Is makes errors.Is(err, ErrOptions) true.
func (e optionsError) Is(target error) bool { return target == ErrOptions }

func (o *Options) name(key string) string {
	if o.Name == nil {
		return key
	}
	return o.Name(key)
}

// Validate reports every problem of the options that shows before the model
// is read, one per line, as an ErrOptions error; nil when there is none.
func (o *Options) Validate() error {
	var problems []error
	bad := func(format string, args ...any) {
		problems = append(problems, optionsError(fmt.Sprintf(format, args...)))
	}
	for _, r := range []struct{ key, value string }{{"model", o.Model}, {"data", o.Data}, {"out", o.Out}} {
		if r.value == "" {
			bad("%s is required", o.name(r.key))
		}
	}
	if o.Out != "" {
		if err := ml.CheckTablePath(o.Out); err != nil {
			bad("%s %s: %v", o.name("out"), o.Out, err)
		} else if err := ml.CheckOutDir(o.Out); err != nil {
			bad("%s %s: %v", o.name("out"), o.Out, err)
		}
	}
	return errors.Join(problems...)
}

// Run loads the model, reads exactly its features from Data (with the
// model's kinds: a text value in a numeric feature is reported with its row,
// integer categories are read as categories), predicts and writes Out: the
// Passthrough columns, then the model's output columns ("prediction", or
// "prediction_<k>" per class).
func Run(ctx context.Context, o Options) (Summary, error) {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return Summary{}, err
	}
	m := o.Loaded
	if m == nil {
		var err error
		if m, err = modelfile.Load(o.Model); err != nil {
			return Summary{}, err
		}
	}
	// Checked before the data is read: the model names its outputs.
	for _, name := range m.OutputNames() {
		if slices.Contains(o.Passthrough, name) {
			return Summary{}, optionsError(fmt.Sprintf("%s %s: the output already has a column %q", o.name("passthrough"), name, name))
		}
	}
	// Exactly the model's features, with its kinds, numbers as doubles (tree
	// models compare what their library would, not float32 roundings).
	opts := m.LoadOptions()
	opts.Passthrough = o.Passthrough
	var finish func()
	opts.Progress, finish = ml.LoadProgress(o.Progress, o.Data)
	tab, err := ml.LoadTable(ctx, o.Data, opts)
	finish()
	if err != nil {
		return Summary{}, err
	}
	var pred []float64
	if o.Raw {
		pred, err = m.PredictRaw(tab.Dataset)
	} else {
		pred, err = m.Predict(tab.Dataset)
	}
	if err != nil {
		return Summary{}, fmt.Errorf("predict on %s: %w", o.Data, err)
	}
	k, n := m.NumOutputs(), tab.NumRows()
	cols := make([]ml.OutputColumn, 0, len(tab.Passthrough)+k)
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
	if err := ml.WriteTable(ctx, o.Out, cols); err != nil {
		return Summary{}, err
	}
	return Summary{Out: o.Out, Rows: n, Outputs: k, Seconds: time.Since(start).Seconds()}, nil
}
