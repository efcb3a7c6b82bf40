package main

import (
	"encoding/json"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/spec"
)

func newRunsCmd(e *env) *cobra.Command {
	var limit int
	var f scheduler.RunFilter
	var since string
	cmd := &cobra.Command{
		Use:   "runs [SET]",
		Short: "List recorded pipeline runs, or with --kind/--job/--state/--trigger/--since the scheduler's job runs, newest first",
		Long: `runs lists the pipeline runs of feature sets (atrium run, and the runs the
scheduler made), newest first. With any of --kind (run, materialize, train,
monitor, or all), --job, --state, --trigger (schedule, manual, backfill) or
--since it lists the scheduler's history instead: every attempt of every job
kind, with its interval, trigger, attempt, state, rows and checks.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("accepts at most one feature set name, received %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := e.Meta()
			if err != nil {
				return err
			}
			if f.Kind != "" || f.Job != "" || f.State != "" || f.Trigger != "" || since != "" {
				if f.Kind == "all" {
					f.Kind = ""
				}
				if since != "" {
					if f.Since, err = spec.ParseTime(since, time.Now()); err != nil {
						return usagef("--since: %v", err)
					}
				}
				if len(args) == 1 && f.Job == "" {
					f.Job = scheduler.JobName("run", args[0])
				}
				f.Limit = limit
				runs, err := scheduler.ListRuns(e.ctx, db, f)
				if err != nil {
					return err
				}
				return writeJobRuns(e, runs)
			}
			pf := pipeline.RunFilter{Limit: limit}
			if len(args) == 1 {
				pf.Set = args[0]
			}
			runs, err := pipeline.ListRuns(e.ctx, db, pf)
			if err != nil {
				return err
			}
			if e.output == "json" {
				if runs == nil {
					runs = []pipeline.Run{}
				}
				return json.NewEncoder(e.stdout).Encode(runs)
			}
			return pipeline.WriteRunsTable(e.stdout, runs)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "show at most this many runs")
	cmd.Flags().StringVar(&f.Kind, "kind", "", "job runs of this kind: run, materialize, train, monitor or all")
	cmd.Flags().StringVar(&f.Job, "job", "", "job runs of this job (run:SET, materialize:SET, ...)")
	cmd.Flags().StringVar(&f.State, "state", "", "job runs in this state: succeeded, failed, checks_failed, retrying, timed_out, interrupted, running")
	cmd.Flags().StringVar(&f.Trigger, "trigger", "", "job runs with this trigger: schedule, manual, backfill")
	cmd.Flags().StringVar(&since, "since", "", "job runs started at or after this time (2026-12-01, RFC 3339)")
	return cmd
}
