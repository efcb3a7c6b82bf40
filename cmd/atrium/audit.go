package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/platform/auth"
)

func newAuditCmd(e *env) *cobra.Command {
	var since string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit [--since 24h]",
		Short: "Show the audit log of mutating calls to `atrium serve` (who, what, when, from where, status)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := parseSince(since, time.Now())
			if err != nil {
				return usagef("--since %q: %v", since, err)
			}
			if limit <= 0 {
				return usagef("--limit %d: want a positive number", limit)
			}
			s, err := authStore(e)
			if err != nil {
				return err
			}
			entries, err := s.Audit(e.ctx, from, limit)
			if err != nil {
				return err
			}
			if e.output == "json" {
				if entries == nil {
					entries = []auth.AuditEntry{}
				}
				return json.NewEncoder(e.stdout).Encode(entries)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tPRINCIPAL\tMETHOD\tPATH\tSTATUS\tREMOTE\tREQUEST ID")
			for _, a := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%q\t%d\t%s\t%s\n", a.At.Format(time.RFC3339Nano), a.Principal, a.Method, a.Path, a.Status, a.Remote, a.RequestID)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&since, "since", "24h", "how far back: a duration (24h, 7d) or an RFC 3339 time")
	cmd.Flags().IntVar(&limit, "limit", 1000, "show at most this many entries (the newest)")
	return cmd
}

// parseSince reads --since: an RFC 3339 time, or a lifetime as parseExpiry
// reads it, counted back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseExpiry(s)
	if err != nil || d == 0 {
		return time.Time{}, fmt.Errorf("want a duration such as 24h or 7d, or an RFC 3339 time")
	}
	return now.Add(-d), nil
}
