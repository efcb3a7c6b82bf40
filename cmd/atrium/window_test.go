package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestParseWindow: every command with --since/--until (skew, predictions,
// monitor features, audit's --since) reads the same forms through
// parseWindow; a bad flag is a usage error naming it.
func TestParseWindow(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 30, 0, 0, time.UTC)
	day := func(d int) time.Time { return time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		since, until string
		from, to     time.Time
		err          string
	}{
		{since: "90m", from: now.Add(-90 * time.Minute), to: now},
		{since: "2d", from: now.Add(-48 * time.Hour), to: now},
		{since: "2026-12-01", from: day(1), to: now},
		{since: "2026-12-01", until: "2026-12-03", from: day(1), to: day(3)},
		{since: "2026-12-01T06:00:00Z", until: "2026-12-01 07:00:00", from: day(1).Add(6 * time.Hour), to: day(1).Add(7 * time.Hour)},
		{since: "1h", until: "now", from: now.Add(-time.Hour), to: now},
		{since: "yesterday", err: `--since: "yesterday": want a duration back from now`},
		{since: "0s", err: "--since:"},
		{since: "1d", until: "soon", err: "--until:"},
		{since: "2026-12-03", until: "2026-12-01", err: "--since 2026-12-03T00:00:00Z is not before --until 2026-12-01T00:00:00Z"},
		{since: "2026-12-05T12:30:00Z", err: "is not before --until"},
	} {
		from, to, err := parseWindow(c.since, c.until, now)
		if c.err != "" {
			var usage usageError
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.As(err, &usage) {
				t.Errorf("parseWindow(%q, %q) = %v, want a usage error containing %q", c.since, c.until, err, c.err)
			}
			continue
		}
		if err != nil || !from.Equal(c.from) || !to.Equal(c.to) {
			t.Errorf("parseWindow(%q, %q) = %v, %v, %v; want %v, %v", c.since, c.until, from, to, err, c.from, c.to)
		}
	}
}
