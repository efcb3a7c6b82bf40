package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
)

func newHistoricalCmd(e *env) *cobra.Command {
	var req retrieval.HistoricalRequest
	cmd := &cobra.Command{
		Use:   "historical --spine FILE (--service S | --features REFS) --out FILE",
		Short: "Build a point-in-time-correct training set from a spine of keys and times",
		Long: `historical joins each row of the spine (a CSV or Parquet file with the entities'
join keys, a time column and any other columns such as labels) with the features:
for a spine row at time t, each feature set contributes its latest row for the same
keys with t - ttl < ts <= t, or nulls. No value from after t is ever used. The
spine's columns are copied to the output (CSV or Parquet by extension), in order.

Features are a feature service (--service) or references (--features, repeated or
comma-separated): a set, set:feature, or a service name. On-demand features
(on_demand_features in features/*.yaml) are computed after the join from the
joined features and from spine columns named like their request values.

With stores.compute (or ATRIUM_COMPUTE) set to a Spark Connect server
(sc://host:15002), the join runs on Spark: it must see the spine and the offline
store at the same paths. The request is checked and the output file written
here, with the same columns, rows and errors as a local join
(docs/scale-out.md).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Spine == "" || req.Out == "" {
				return usagef("--spine and --out are required")
			}
			if (req.Service == "") == (len(req.Features) == 0) {
				return usagef("give exactly one of --service and --features")
			}
			l, err := loadCatalog(e)
			if err != nil {
				return err
			}
			eng, err := e.Offline(l.Features)
			if err != nil {
				return err
			}
			// Relative paths are relative to the working directory, like any CLI file argument.
			if req.Spine, err = filepath.Abs(req.Spine); err != nil {
				return err
			}
			if req.Out, err = filepath.Abs(req.Out); err != nil {
				return err
			}
			res, err := retrieval.Historical(e.ctx, eng, l.Features, req)
			if errors.Is(err, offline.ErrNoTimeColumn) {
				return fmt.Errorf("%w; --spine-time COLUMN names the spine's time column", err)
			}
			if err != nil {
				return err
			}
			if res.OnDemandFailed > 0 {
				// The file is written: the values are nulls, which is what a
				// model sees online for the same inputs.
				fmt.Fprintf(e.stderr, "warning: %d on-demand value(s) could not be computed and are null; first: %v\n", res.OnDemandFailed, res.FirstFailure)
			}
			if e.output == "json" {
				return json.NewEncoder(e.stdout).Encode(map[string]any{"out": req.Out, "rows": res.Rows, "columns": res.Columns, "features": res.Features})
			}
			_, err = fmt.Fprintf(e.stdout, "wrote %d rows x %d columns (%d features) to %s\n", res.Rows, len(res.Columns), len(res.Features), req.Out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Spine, "spine", "", "spine file (.csv or .parquet): join keys, a time column, labels")
	f.StringVar(&req.TimeColumn, "spine-time", "", "the spine's time column (default: its only timestamp column, or timestamp/event_timestamp/ts)")
	f.StringVar(&req.Service, "service", "", "feature service to fetch")
	f.StringSliceVar(&req.Features, "features", nil, "feature references (set, set:feature or service), repeated or comma-separated")
	f.StringVar(&req.Out, "out", "", "output file (.csv or .parquet)")
	f.BoolVar(&req.FullNames, "full-names", false, "name feature columns set__feature")
	return cmd
}
