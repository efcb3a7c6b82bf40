package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/monitoring/features"
	"github.com/atrium-ml/atrium/internal/spec"
)

func newMonitorFeaturesCmd(e *env) *cobra.Command {
	var since, until, reference, out string
	var methods, thresholds []string
	var fail bool
	cmd := &cobra.Command{
		Use:   "features SET [--since 30d] [--reference previous:7|START..END]",
		Short: "Trend of a feature set's daily partitions and the days that drift",
		Long: `features reads the profiles atrium run stored for each published partition of
SET and shows, per day and feature, the volume, missing share, mean and quantiles,
and tests each day against a reference window with Evidently's default drift test
per feature (on the profiles' samples): the previous N days that have rows
(previous:N, the default previous:7) or fixed days (START..END). A day drifts when
at least half of its features drift; a day with no rows or under half / over twice
the reference's mean volume is flagged for volume.`,
		Example: `  atrium monitor features listing_stats --since 30d
  atrium monitor features listing_stats --since 2026-11-01 --reference 2026-10-01..2026-10-31 --out features.html
  atrium monitor features listing_stats --output json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now().UTC()
			o := features.Options{Set: args[0]}
			var err error
			if o.Since, o.Until, err = parseWindow(since, until, now); err != nil {
				return err
			}
			o.Since, o.Until = o.Since.Truncate(pipeline.Day), o.Until.Truncate(pipeline.Day)
			if o.Reference, err = parseReference(reference, now); err != nil {
				return err
			}
			if o.Overrides, err = parseOverrides(methods, thresholds); err != nil {
				return err
			}
			db, err := e.Meta()
			if err != nil {
				return err
			}
			rep, err := features.Build(e.ctx, db, o)
			if err != nil {
				return err
			}
			if out != "" {
				if err := writeReport(out, rep.HTML(now)); err != nil {
					return err
				}
			}
			if e.output == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				err = enc.Encode(rep)
			} else {
				err = rep.WriteText(e.stdout)
			}
			if err == nil && fail && len(rep.DriftedDays) > 0 {
				err = fmt.Errorf("feature set %s drifted on %s (--fail)", rep.Set, strings.Join(rep.DriftedDays, ", "))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "30d", "first day shown: a duration back from now (30d) or a time (2026-12-01, 2026-12-01T06:00:00Z)")
	f.StringVar(&until, "until", "", "last day shown (default: today): "+spec.TimeFormats)
	f.StringVar(&reference, "reference", "previous:7", "reference window: previous:N (the N days before each day) or START..END (fixed days)")
	f.StringArrayVar(&methods, "method", nil, "FEATURE=METHOD: drift test of a feature; repeatable")
	f.StringArrayVar(&thresholds, "threshold", nil, "FEATURE=VALUE: threshold of a feature's test; repeatable")
	f.StringVar(&out, "out", "", "also write a self-contained HTML report to this file")
	f.BoolVar(&fail, "fail", false, "exit with status 1 when a day drifts")
	return cmd
}

// parseReference reads previous:N or START..END.
func parseReference(s string, now time.Time) (features.Reference, error) {
	if n, ok := strings.CutPrefix(s, "previous:"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 {
			return features.Reference{}, usagef("--reference %q: want previous:N with N a positive number of days", s)
		}
		return features.Reference{Previous: v}, nil
	}
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		return features.Reference{}, usagef("--reference %q: want previous:N or START..END", s)
	}
	start, err := spec.ParseTime(a, now)
	if err != nil {
		return features.Reference{}, usagef("--reference start: %v", err)
	}
	end, err := spec.ParseTime(b, now)
	if err != nil {
		return features.Reference{}, usagef("--reference end: %v", err)
	}
	start, end = start.Truncate(pipeline.Day), end.Truncate(pipeline.Day)
	if end.Before(start) {
		return features.Reference{}, usagef("--reference %q: end before start", s)
	}
	return features.Reference{Start: start, End: end}, nil
}
