package scheduler

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteRunsTable writes runs as `atrium runs --kind all` shows them.
func WriteRunsTable(w io.Writer, runs []Run) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tINTERVAL\tTRIGGER\tATTEMPT\tSTATE\tSTARTED\tDURATION\tROWS\tCHECKS\tERROR")
	for _, r := range runs {
		dur := "-"
		if !r.FinishedAt.IsZero() {
			dur = r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
		}
		passed := 0
		for _, c := range r.Checks {
			if c.Passed {
				passed++
			}
		}
		checks := "-"
		if len(r.Checks) > 0 {
			checks = fmt.Sprintf("%d/%d", passed, len(r.Checks))
		}
		msg := r.Error
		if len(msg) > 80 {
			msg = msg[:77] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Job, r.Interval(), r.Trigger, r.Attempt, r.State,
			r.StartedAt.UTC().Format("2006-01-02 15:04:05"), dur, r.Rows, checks, msg)
	}
	return tw.Flush()
}
