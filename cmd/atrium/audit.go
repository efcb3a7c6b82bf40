package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/spec"
)

func newAuditCmd(e *env) *cobra.Command {
	var since string
	var limit int
	var prune bool
	cmd := &cobra.Command{
		Use:   "audit [--since 24h] [--prune]",
		Short: "Show the audit log of mutating calls to `atrium serve` (who, what, when, from where, status), and its retention",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := parseSince(since, time.Now())
			if err != nil {
				return usagef("--since %q: %v", since, err)
			}
			if limit <= 0 {
				return usagef("--limit %d: want a positive number", limit)
			}
			p, err := e.Project()
			if err != nil {
				return err
			}
			retention, err := p.Server.AuditRetentionDuration()
			if err != nil {
				return fmt.Errorf("server.audit_retention: %w", err)
			}
			s, err := authStore(e)
			if err != nil {
				return err
			}
			if prune {
				return pruneAudit(e, s, p.Server.AuditRetention, retention)
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
			sum, err := s.AuditSummary(e.ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tPRINCIPAL\tMETHOD\tPATH\tSTATUS\tREMOTE\tREQUEST ID")
			for _, a := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%q\t%d\t%s\t%s\n", a.At.Format(time.RFC3339Nano), a.Principal, a.Method, a.Path, a.Status, a.Remote, a.RequestID)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			// What the log can hold, on stderr: the table stays the result.
			fmt.Fprintln(e.stderr, auditRetentionLine(p.Server.AuditRetention, retention, sum))
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "24h", "how far back: a duration (24h, 7d) or a time (2026-12-01, 2026-12-01T06:00:00Z)")
	cmd.Flags().IntVar(&limit, "limit", 1000, "show at most this many entries (the newest)")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete the entries older than server.audit_retention now (atrium serve does it hourly)")
	return cmd
}

// auditRetentionLine says how long entries are kept and what the log holds.
func auditRetentionLine(setting string, retention time.Duration, sum auth.AuditSummary) string {
	kept := "entries are kept for ever (server.audit_retention: never)"
	if retention > 0 {
		kept = "entries are kept " + setting + " (server.audit_retention); `atrium serve` deletes older ones hourly"
	}
	held := "the log is empty"
	if sum.Entries > 0 {
		held = fmt.Sprintf("the log holds %d entries, the oldest from %s", sum.Entries, sum.Oldest.Format(time.RFC3339))
	}
	return "audit: " + kept + "; " + held
}

// pruneAudit deletes the entries older than the retention and says how many.
func pruneAudit(e *env, s *auth.Store, setting string, retention time.Duration) error {
	if retention == 0 {
		return usagef("--prune: server.audit_retention is never: nothing is pruned")
	}
	before := time.Now().Add(-retention)
	n, err := s.PruneAudit(e.ctx, before)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "deleted %d audit entries older than %s (before %s)\n", n, setting, before.UTC().Format(time.RFC3339))
	return nil
}

// parseSince reads --since: a lifetime as parseExpiry reads it (90m, 24h,
// 7d), counted back from now, or a time in any form spec.ParseTime takes.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := parseExpiry(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	t, err := spec.ParseTime(s, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a duration back from now (90m, 24h, 7d) or %s", s, spec.TimeFormats)
	}
	return t, nil
}

// parseWindow reads a command's --since and --until flags: since as
// parseSince reads it, until (default now) as spec.ParseTime does. The
// window is [since, until) and must not be empty. Every command with such
// a window parses it here, so all accept the same forms.
func parseWindow(since, until string, now time.Time) (from, to time.Time, err error) {
	if from, err = parseSince(since, now); err != nil {
		return from, to, usagef("--since: %v", err)
	}
	to = now
	if until != "" {
		if to, err = spec.ParseTime(until, now); err != nil {
			return from, to, usagef("--until: %v", err)
		}
	}
	if !from.Before(to) {
		return from, to, usagef("--since %s is not before --until %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	return from, to, nil
}
