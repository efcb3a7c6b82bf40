package calendar

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestLastClosedAndBetween(t *testing.T) {
	tests := []struct {
		name, expr, tz string
		delay          time.Duration
		now            string
		wantLast       string // start/end
		fromBetween    string
		wantBetween    []string
	}{
		{name: "daily", expr: "daily", now: "2026-06-03T10:00:00Z", wantLast: "2026-06-02",
			fromBetween: "2026-05-31T00:00:00Z", wantBetween: []string{"2026-05-31", "2026-06-01", "2026-06-02"}},
		{name: "daily delay not yet due", expr: "daily", delay: 2 * time.Hour, now: "2026-06-03T01:59:00Z", wantLast: "2026-06-01",
			fromBetween: "2026-06-01T00:00:00Z", wantBetween: []string{"2026-06-01"}},
		{name: "daily delay due", expr: "daily", delay: 2 * time.Hour, now: "2026-06-03T02:00:00Z", wantLast: "2026-06-02",
			fromBetween: "2026-06-01T00:00:00Z", wantBetween: []string{"2026-06-01", "2026-06-02"}},
		{name: "hourly", expr: "hourly", now: "2026-06-03T10:30:00Z", wantLast: "2026-06-03T09:00Z/2026-06-03T10:00Z",
			fromBetween: "2026-06-03T08:00:00Z", wantBetween: []string{"2026-06-03T08:00Z/2026-06-03T09:00Z", "2026-06-03T09:00Z/2026-06-03T10:00Z"}},
		// Berlin is UTC+2 in June: its midnight is 22:00 UTC the day before.
		{name: "zone", expr: "0 0 * * *", tz: "Europe/Berlin", now: "2026-06-03T10:00:00Z", wantLast: "2026-06-01T22:00Z/2026-06-02T22:00Z",
			fromBetween: "2026-06-01T22:00:00Z", wantBetween: []string{"2026-06-01T22:00Z/2026-06-02T22:00Z"}},
		// The spring-forward day in Berlin lasts 23 hours.
		{name: "dst", expr: "daily", tz: "Europe/Berlin", now: "2026-03-30T00:00:00Z", wantLast: "2026-03-28T23:00Z/2026-03-29T22:00Z",
			fromBetween: "2026-03-28T23:00:00Z", wantBetween: []string{"2026-03-28T23:00Z/2026-03-29T22:00Z"}},
		{name: "from between fire times", expr: "daily", now: "2026-06-03T00:00:00Z", wantLast: "2026-06-02",
			fromBetween: "2026-06-01T12:00:00Z", wantBetween: []string{"2026-06-02"}},
		{name: "weekdays", expr: "0 6 * * 1-5", now: "2026-06-08T07:00:00Z", wantLast: "2026-06-05T06:00Z/2026-06-08T06:00Z",
			fromBetween: "2026-06-04T06:00:00Z", wantBetween: []string{"2026-06-04T06:00Z/2026-06-05T06:00Z", "2026-06-05T06:00Z/2026-06-08T06:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.expr, tt.tz, tt.delay)
			if err != nil {
				t.Fatal(err)
			}
			iv, ok := c.LastClosed(ts(tt.now))
			if !ok || iv.String() != tt.wantLast {
				t.Errorf("LastClosed(%s) = %s, want %s", tt.now, iv, tt.wantLast)
			}
			var got []string
			for _, iv := range c.Between(ts(tt.fromBetween), ts(tt.now), 0) {
				got = append(got, iv.String())
			}
			if len(got) != len(tt.wantBetween) {
				t.Fatalf("Between = %v, want %v", got, tt.wantBetween)
			}
			for i := range got {
				if got[i] != tt.wantBetween[i] {
					t.Errorf("Between = %v, want %v", got, tt.wantBetween)
				}
			}
		})
	}
}

func TestOverlapping(t *testing.T) {
	h := MustParse("hourly", "", 0)
	got := h.Overlapping(ts("2026-06-03T00:00:00Z"), ts("2026-06-04T00:00:00Z"))
	if len(got) != 24 || got[0].String() != "2026-06-03T00:00Z/2026-06-03T01:00Z" || got[23].End != ts("2026-06-04T00:00:00Z") {
		t.Errorf("hours of a day: %d, first %v", len(got), got)
	}
	d := MustParse("daily", "", 0)
	got = d.Overlapping(ts("2026-06-03T05:00:00Z"), ts("2026-06-03T06:00:00Z"))
	if len(got) != 1 || got[0].String() != "2026-06-03" {
		t.Errorf("day of an hour: %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ expr, tz, want string }{
		{"", "", "empty"},
		{"0 25 * * *", "", "above maximum"},
		{"every day", "", "expected minute hour"},
		{"@every 1h", "", "@every"},
		{"CRON_TZ=UTC 0 0 * * *", "", "timezone:"},
		{"daily", "Nowhere/City", `time zone "Nowhere/City"`},
	} {
		_, err := Parse(tt.expr, tt.tz, 0)
		if !errors.Is(err, ErrBadSchedule) || !contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q, %q) = %v, want %q", tt.expr, tt.tz, err, tt.want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
