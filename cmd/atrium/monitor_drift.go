package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/monitoring/datadrift"
	"github.com/atrium-ml/atrium/internal/monitoring/drift"
)

func newMonitorDriftCmd(e *env) *cobra.Command {
	var o datadrift.Options
	var methods, thresholds []string
	var out string
	var fail bool
	cmd := &cobra.Command{
		Use:   "drift --reference FILE --current FILE",
		Short: "Compare two CSV or Parquet files column by column (Evidently's data drift)",
		Long: `drift compares every numeric and categorical column of the current file with the
reference file using Evidently's default test for the column (Kolmogorov-Smirnov,
chi-square or a Z-test on references of at most 1,000 rows; normed Wasserstein or
Jensen-Shannon distance on larger ones) and thresholds, and reports the share of
drifted columns and whether the data set drifts (share >= 0.5). --method and
--threshold override the test of a column (methods: ks, chisquare, z, wasserstein,
jensenshannon, psi, hellinger). Date, time and nested columns are not tested.`,
		Example: `  atrium monitor drift --reference train.parquet --current today.parquet
  atrium monitor drift --reference a.csv --current b.csv --columns price,city --method price=psi --threshold price=0.25 --output json
  atrium monitor drift --reference a.parquet --current b.parquet --out drift.html`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags("--reference", o.Reference, "--current", o.Current); err != nil {
				return err
			}
			var err error
			if o.Overrides, err = parseOverrides(methods, thresholds); err != nil {
				return err
			}
			o.Distributions = out != "" // only the HTML report draws them
			res, err := datadrift.Run(e.ctx, o)
			if err != nil {
				return err
			}
			if out != "" {
				if err := writeReport(out, res.Report(time.Now())); err != nil {
					return err
				}
			}
			if e.output == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				err = enc.Encode(res)
			} else {
				err = writeDriftText(e.stdout, res)
			}
			if err == nil && fail && res.DatasetDrift {
				err = fmt.Errorf("dataset drift: %d of %d columns drifted (--fail)", res.DriftedCount, len(res.Columns))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Reference, "reference", "", "reference data: a .csv, .tsv or .parquet file or glob (required)")
	f.StringVar(&o.Current, "current", "", "current data: a .csv, .tsv or .parquet file or glob (required)")
	f.StringSliceVar(&o.Columns, "columns", nil, "columns to compare (default: every numeric and categorical column of the reference)")
	f.StringArrayVar(&methods, "method", nil, "COLUMN=METHOD: test of a column (ks, chisquare, z, wasserstein, jensenshannon, psi, hellinger); repeatable")
	f.StringArrayVar(&thresholds, "threshold", nil, "COLUMN=VALUE: threshold of a column's test; repeatable")
	f.Float64Var(&o.DriftShare, "drift-share", drift.DefaultDriftShare, "share of drifted columns from which the data set drifts")
	f.StringVar(&out, "out", "", "also write a self-contained HTML report to this file")
	f.BoolVar(&fail, "fail", false, "exit with status 1 when the data set drifts")
	return cmd
}

// parseOverrides reads --method COL=METHOD and --threshold COL=VALUE.
func parseOverrides(methods, thresholds []string) (map[string]drift.Options, error) {
	out := map[string]drift.Options{}
	for _, m := range methods {
		col, name, ok := strings.Cut(m, "=")
		if !ok || col == "" || name == "" {
			return nil, usagef("--method %q: want COLUMN=METHOD", m)
		}
		meth := drift.Method(name)
		switch meth {
		case drift.MethodKS, drift.MethodChiSquare, drift.MethodZTest, drift.MethodWasserstein, drift.MethodJensenShannon, drift.MethodPSI, drift.MethodHellinger:
		default:
			return nil, usagef("--method %q: unknown method %q (want ks, chisquare, z, wasserstein, jensenshannon, psi or hellinger)", m, name)
		}
		o := out[col]
		o.Method = meth
		out[col] = o
	}
	for _, t := range thresholds {
		col, val, ok := strings.Cut(t, "=")
		v, err := strconv.ParseFloat(val, 64)
		if !ok || col == "" || err != nil || v <= 0 {
			return nil, usagef("--threshold %q: want COLUMN=VALUE with a positive number", t)
		}
		o := out[col]
		o.Threshold = v
		out[col] = o
	}
	return out, nil
}

func writeDriftText(w io.Writer, r *datadrift.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "reference %s: %d rows; current %s: %d rows\n\n", r.Reference, r.ReferenceRows, r.Current, r.CurrentRows)
	fmt.Fprintln(tw, "COLUMN\tTYPE\tMETHOD\tSCORE\tTHRESHOLD\tDRIFT")
	for _, c := range r.Columns {
		verdict := "no"
		if c.Drift {
			verdict = "DRIFT"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.4g\t%g\t%s\n", c.Column, c.Type, c.Method, c.Score, c.Threshold, verdict)
	}
	verdict := "no dataset drift"
	if r.DatasetDrift {
		verdict = "DATASET DRIFT"
	}
	fmt.Fprintf(tw, "\n%d of %d columns drifted (share %.3g, threshold %g): %s\n", r.DriftedCount, len(r.Columns), r.DriftedShare, r.DriftShare, verdict)
	for _, s := range r.Skipped {
		fmt.Fprintf(tw, "not tested: %s (%s)\n", s.Column, s.Reason)
	}
	return tw.Flush()
}
