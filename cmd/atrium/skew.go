package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/serving/skew"
	"github.com/atrium-ml/atrium/internal/spec"
)

func newSkewCmd(e *env) *cobra.Command {
	var o skew.Options
	var since, until string
	var fail bool
	cmd := &cobra.Command{
		Use:   "skew --model NAME --since DURATION",
		Short: "Compare logged predictions with their offline twin (training/serving skew)",
		Long: `skew reads the prediction log of a served model over a time window, retrieves
the same features point in time at each request's time from the offline store (as
historical would for a training set of those requests), rescores them with the
version that answered, and reports per feature how often the value served online
differs from the offline one, and how far the predictions differ.

A healthy deployment reports zero. Values pushed online that the offline store
never saw, a materialization lagging the offline store, or a definition changed
after materialization show up here, feature by feature, with an example row.

Rows without the entity keys of the feature service (OIP /v2 infer requests send
feature values, not keys), shadow rows (unless --shadow) and the rows of versions
deleted since are left out, and the report counts them.`,
		Example: `  atrium skew --model ranker --since 1h
  atrium skew --model ranker --since 1d --until 2026-12-05T06:00:00Z --output json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags("--model", o.Model, "--since", since); err != nil {
				return err
			}
			// pflag parses "nan" and "inf": NaN made equal values differ
			// and different predictions agree.
			if t := o.Tolerance; t < 0 || math.IsNaN(t) || math.IsInf(t, 0) {
				return usagef("--tolerance %v: want a relative difference of 0 (exact comparison) or more, finite", t)
			}
			var err error
			if o.Since, o.Until, err = parseWindow(since, until, time.Now()); err != nil {
				return err
			}
			p, err := e.Project()
			if err != nil {
				return err
			}
			if o.LogDir, err = predictionLogDir(p); err != nil {
				return err
			}
			src, err := batchSources(e)
			if err != nil {
				return err
			}
			rep, err := skew.Check(e.ctx, src, o)
			if err != nil {
				return err
			}
			if e.output == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				err = enc.Encode(rep)
			} else {
				err = writeSkewReport(e.stdout, rep)
			}
			if err == nil && fail && !rep.Clean() {
				err = fmt.Errorf("skew found between the logged and the offline values of %s (--fail)", o.Model)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "registered model name (required)")
	f.StringVar(&since, "since", "", "start of the window: a duration back from now (90m, 1h, 2d) or a time (2026-12-01, 2026-12-01T06:00:00Z) (required)")
	f.StringVar(&until, "until", "", "end of the window, exclusive (default: now): "+spec.TimeFormats)
	f.StringVar(&o.FeatureService, "feature-service", "", "feature service to retrieve (default: each version's atrium.feature_service tag)")
	f.Float64Var(&o.Tolerance, "tolerance", skew.DefaultTolerance, "relative difference under which two numbers are equal: |a-b| <= tolerance * max(1, |a|); 0 compares exactly")
	f.BoolVar(&o.IncludeShadow, "shadow", false, "also check the rows shadow versions scored")
	f.BoolVar(&fail, "fail", false, "exit with status 1 when any value or prediction differs")
	return cmd
}

// writeSkewReport prints the report as tables, one per version.
func writeSkewReport(w io.Writer, rep *skew.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "model %s: %d logged rows of %d requests from %s to %s\n", rep.Model, rep.Rows, rep.Requests,
		rep.Since.Format(time.RFC3339), rep.Until.Format(time.RFC3339))
	if rep.ShadowRowsLeftOut > 0 {
		fmt.Fprintf(&b, "left out: %d rows of shadow versions (--shadow checks them)\n", rep.ShadowRowsLeftOut)
	}
	if rep.RowsWithoutKeys > 0 {
		fmt.Fprintf(&b, "left out: %d rows without the entity keys of their feature service (OIP infer requests send feature values, not keys: nothing to retrieve offline)\n", rep.RowsWithoutKeys)
	}
	for _, n := range rep.NotRescored {
		fmt.Fprintf(&b, "not rescored: version %s (%s), %d rows\n", n.Version, n.Reason, n.Rows)
	}
	for _, v := range rep.Versions {
		fmt.Fprintf(&b, "\nversion %s (features: %s), %d rows", v.Version, v.FeatureService, v.Rows)
		if v.RowsWithoutKeys > 0 {
			fmt.Fprintf(&b, " (%d without entity keys left out)", v.RowsWithoutKeys)
		}
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FEATURE\tROWS\tMISMATCHES\tRATE\tMISSING ONLINE\tMISSING OFFLINE\tEXAMPLE (online / offline)")
		for _, f := range v.Features {
			ex := ""
			if f.Example != nil {
				ex = describeMismatch(f.Example)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.4f\t%d\t%d\t%s\n", f.Name, f.Rows, f.Mismatches, f.Rate, f.MissingOnline, f.MissingOffline, ex)
		}
		p := v.Predictions
		ex := ""
		if p.Example != nil {
			ex = describeMismatch(p.Example)
		}
		fmt.Fprintf(tw, "(prediction)\t%d\t%d\t%.4f\t\t\tmax |diff| %.3g, mean |diff| %.3g %s\n", p.Rows, p.Mismatches, p.Rate, p.MaxAbsDiff, p.MeanAbsDiff, ex)
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(v.UnloggedRequestValues) > 0 {
			fmt.Fprintf(&b, "request values not in the log (their on-demand features are recomputed as missing): %s\n", strings.Join(v.UnloggedRequestValues, ", "))
		}
	}
	if rep.Clean() {
		b.WriteString("\nno skew: every logged feature value and prediction equals its offline twin\n")
	} else {
		b.WriteString("\nskew found: the rows above differ between what was served and what the offline store holds for the same time\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func describeMismatch(m *skew.Mismatch) string {
	keys := make([]string, 0, len(m.Entities))
	for k, v := range m.Entities {
		keys = append(keys, k+"="+v)
	}
	slices.Sort(keys)
	return fmt.Sprintf("%s / %s at %s (%s)", m.Online, m.Offline, m.Time.UTC().Format("2006-01-02 15:04:05"), strings.Join(keys, " "))
}
