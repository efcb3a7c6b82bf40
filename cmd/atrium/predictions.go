package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/platform/storeurl"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/spec"
)

func newPredictionsCmd(e *env) *cobra.Command {
	var model, since, until string
	var limit int
	cmd := &cobra.Command{
		Use:   "predictions [--model NAME] [--since 1h] [--until TIME] [--limit N]",
		Short: "Show the newest rows of the prediction log",
		Long: `predictions prints the newest rows the served models logged (docs/serving.md,
"Prediction log"): one row per scored row, with its request, version, route,
score, latency and entity keys; --output json adds the feature values.

--since is a duration back from now (90m, 24h, 7d) or a time, --until a time
(default now); a time is ` + spec.TimeFormats + `.`,
		Example: `  atrium predictions --model ranker --since 15m --limit 50`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to, err := parseWindow(since, until, time.Now())
			if err != nil {
				return err
			}
			if limit <= 0 {
				return usagef("--limit %d: want a positive number of rows", limit)
			}
			p, err := e.Project()
			if err != nil {
				return err
			}
			dir, err := predictionLogDir(p)
			if err != nil {
				return err
			}
			rows, err := predlog.Tail(e.ctx, dir, model, from, to, limit)
			if errors.Is(err, predlog.ErrNoPredictions) {
				fmt.Fprintln(e.stderr, err)
				rows, err = nil, nil
			}
			if err != nil {
				return err
			}
			if e.output == "json" {
				if rows == nil {
					rows = []predlog.Row{}
				}
				return json.NewEncoder(e.stdout).Encode(rows)
			}
			return writePredictions(e, rows)
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "registered model name (default: every model)")
	f.StringVar(&since, "since", "1h", "start: a duration back from now (90m, 7d) or a time (2026-12-01, 2026-12-01T06:00:00Z)")
	f.StringVar(&until, "until", "", "end (exclusive; default: now)")
	f.IntVar(&limit, "limit", 20, "show at most this many rows, the newest")
	return cmd
}

// predictionLogDir is where the prediction log lives: the directory of the
// embedded (DuckDB) offline store.
func predictionLogDir(p *spec.Project) (string, error) {
	u, err := url.Parse(p.Stores.Offline)
	if err != nil || u.Scheme != "duckdb" {
		return "", fmt.Errorf("stores.offline %q: the prediction log lives in the embedded offline store's directory, a duckdb:// URL", p.Stores.Offline)
	}
	return storeurl.LocalPath(u)
}

func writePredictions(e *env, rows []predlog.Row) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tMODEL\tVERSION\tROUTE\tREQUEST\tROW\tSCORE\tLATENCY_MS\tENTITIES")
	for _, r := range rows {
		scores := make([]string, len(r.Scores))
		for i, s := range r.Scores {
			scores[i] = strconv.FormatFloat(s, 'g', 6, 64)
		}
		keys := make([]string, 0, len(r.Entities))
		for k, v := range r.Entities {
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%.3f\t%s\n", r.Time.Format("2006-01-02T15:04:05.000000Z"), r.Model, r.Version, r.Route,
			r.RequestID, r.Row, strings.Join(scores, ","), float64(r.Latency.Total)/float64(time.Millisecond), strings.Join(keys, " "))
	}
	return tw.Flush()
}
