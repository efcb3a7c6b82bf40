package spec

import (
	"fmt"
	"strings"
	"time"
)

// TimeFormats names the forms ParseTime accepts, for flag help and errors.
const TimeFormats = "an RFC 3339 time (2026-12-04T06:00:00Z), 2026-12-04 06:00:00 or 2026-12-04T06:00:00 (UTC), a date (2026-12-04, midnight UTC) or now"

// timeLayouts are the layouts ParseTime tries, in order. Those without a zone
// are UTC; fractional seconds are optional in each.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	time.DateOnly,
}

// ParseTime reads a time given by a user, on a command-line flag (run --start
// and --end, materialize --end) or in a request: an RFC 3339 time, the same
// with a space for the T, either without a zone (UTC), a date (midnight UTC),
// or "now" (the given now). The result is in UTC. Every time flag parses with
// it, so all accept the same forms. The error wraps ErrBadTime.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now.UTC(), nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, badTime(s)
}

// badTime is text ParseTime does not accept; it reads `"text": want <forms>`.
type badTime string

func (b badTime) Error() string        { return fmt.Sprintf("%q: want %s", string(b), TimeFormats) }
func (b badTime) Is(target error) bool { return target == ErrBadTime }
