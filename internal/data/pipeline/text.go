package pipeline

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/atrium-ml/atrium/internal/spec"
)

// WriteText writes the run as `atrium run` reports it: one summary line, then
// one line per data-quality check.
func (r *Run) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s: %s %s..%s %s: %d rows in, %d rows out, %d partitions, %s\n",
		r.ID, r.Set, r.Start, r.End, r.Status, r.RowsIn, r.RowsOut, len(r.Partitions),
		(time.Duration(r.DurationMS) * time.Millisecond).String())
	for _, c := range r.Checks {
		state := "ok"
		if !c.Passed {
			state = "FAILED"
			if c.Level == spec.LevelWarn {
				state = "WARN"
			}
		}
		fmt.Fprintf(&b, "  check %-6s %s", state, c.Check)
		if c.Message != "" {
			fmt.Fprintf(&b, ": %s", c.Message)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteRunsTable writes runs as the table of `atrium runs`: a header, then a
// row per run with how many of its checks passed.
func WriteRunsTable(w io.Writer, runs []Run) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSET\tDAYS\tSTATUS\tROWS IN\tROWS OUT\tDURATION\tCHECKS")
	for _, r := range runs {
		passed, warned := 0, 0
		for _, c := range r.Checks {
			if c.Passed {
				passed++
			} else if c.Level == spec.LevelWarn {
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
}
