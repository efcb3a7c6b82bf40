package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/pipeline"
)

func init() {
	register(func(e *env) *cobra.Command {
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
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSET\tDAYS\tSTATUS\tROWS IN\tROWS OUT\tDURATION\tCHECKS")
				for _, r := range runs {
					passed, warned := 0, 0
					for _, c := range r.Checks {
						if c.Passed {
							passed++
						} else if c.Level == "warn" {
							warned++
						}
					}
					checks := fmt.Sprintf("%d/%d passed", passed, len(r.Checks))
					if warned > 0 {
						checks += fmt.Sprintf(", %d warn", warned)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s..%s\t%s\t%d\t%d\t%s\t%s\n", r.ID, r.Set, r.Start, r.End, r.Status,
						r.RowsIn, r.RowsOut, (time.Duration(r.DurationMS) * time.Millisecond).String(), checks)
				}
				return tw.Flush()
			},
		}
		cmd.Flags().IntVar(&limit, "limit", 50, "show at most this many runs")
		return cmd
	})
}
