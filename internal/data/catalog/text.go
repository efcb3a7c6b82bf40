package catalog

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes the diff as `atrium apply` reports it: a line per change
// ("+", "~" or "-", kind, name, version and details), then what was stored, or
// with dryRun what would be.
func (d *Diff) WriteText(w io.Writer, dryRun bool) error {
	var b strings.Builder
	sign := map[Op]string{Added: "+", Changed: "~", Removed: "-"}
	for _, c := range d.Changes {
		fmt.Fprintf(&b, "%s %s %s (v%d)", sign[c.Op], c.Kind, c.Name, c.Version)
		if len(c.Details) > 0 {
			fmt.Fprintf(&b, ": %s", strings.Join(c.Details, "; "))
		}
		b.WriteByte('\n')
	}
	switch {
	case d.Empty():
		fmt.Fprintf(&b, "no changes (catalog version %d)\n", d.From)
	case dryRun:
		fmt.Fprintf(&b, "dry run: would store catalog version %d (%s)\n", d.From+1, d.Summary())
	default:
		fmt.Fprintf(&b, "applied catalog version %d (%s)\n", d.To, d.Summary())
	}
	_, err := io.WriteString(w, b.String())
	return err
}
