package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/monitoring/model"
	"github.com/atrium-ml/atrium/internal/monitoring/report"
	"github.com/atrium-ml/atrium/internal/spec"
)

func newMonitorModelCmd(e *env) *cobra.Command {
	var version, window, out string
	cmd := &cobra.Command{
		Use:   "model NAME [--version V] [--window 24h] [--out report.html]",
		Short: "Compare a served model's recent predictions with its training data and the window before",
		Long: `model reads the model's prediction log over the window ending now (features as
served, predictions) and compares it with the version's training profile
(reference/profile.json of its run, written by atrium train) and with the
previous window of the same length: per-feature drift (Evidently's default
tests), prediction drift, missing-value rates and volume. Once labels arrive
(POST /v1/labels), it adds realized metrics next to the version's test metrics.

The version defaults to the one that scored the newest prediction of the window.
--out writes a self-contained HTML report; --output json prints the report as JSON.`,
		Example: `  atrium monitor model ranker --window 24h
  atrium monitor model ranker --version 3 --window 7d --out ranker.html`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := spec.ParseDuration(window)
			if err != nil || d <= 0 || d.D() > model.MaxWindow {
				return usagef("--window %q: expected a positive duration up to 31d, such as 1h, 24h or 7d", window)
			}
			mon, _, err := modelMonitor(e)
			if err != nil {
				return err
			}
			now := time.Now()
			rep, err := mon.Compute(e.ctx, model.Request{Model: args[0], Version: version, Window: d.D(), Now: now})
			if rep == nil {
				return err
			}
			if out != "" {
				if werr := writeReport(out, model.HTML(rep, now)); werr != nil {
					return werr
				}
			}
			if e.output == "json" {
				if jerr := json.NewEncoder(e.stdout).Encode(rep); jerr != nil {
					return jerr
				}
			} else if terr := model.WriteText(e.stdout, rep); terr != nil {
				return terr
			}
			// With model.ErrNoReference, the report (volume) is printed and the
			// exit code says the comparison could not be made.
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&version, "version", "", "model version (default: the one that scored the newest prediction of the window)")
	f.StringVar(&window, "window", "24h", "length of the current window, ending now (1h, 24h, 7d)")
	f.StringVar(&out, "out", "", "also write the report as a self-contained HTML file")
	return cmd
}

// writeReport renders an HTML report to path.
func writeReport(path string, r *report.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := report.Render(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	return nil
}
