package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/pipeline"
)

func newRunsCmd(e *env) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "runs [SET]",
		Short: "List recorded pipeline runs, newest first",
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
			f := pipeline.RunFilter{Limit: limit}
			if len(args) == 1 {
				f.Set = args[0]
			}
			runs, err := pipeline.ListRuns(e.ctx, db, f)
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
	return cmd
}
