package spec_test

import (
	"errors"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/spec"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 12, 4, 17, 30, 0, 0, time.FixedZone("X", 3600))
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		in   string
		want time.Time // zero: an error
	}{
		{"2026-12-04T06:00:00Z", utc("2026-12-04T06:00:00Z")},
		{"2026-12-04T06:00:00+02:00", utc("2026-12-04T04:00:00Z")},
		{"2026-12-04T06:00:00.25Z", utc("2026-12-04T06:00:00.25Z")},
		{"2026-12-04 06:00:00", utc("2026-12-04T06:00:00Z")},
		{"2026-12-04T06:00:00", utc("2026-12-04T06:00:00Z")},
		{"2026-12-04 06:00:00.5", utc("2026-12-04T06:00:00.5Z")},
		{"2026-12-04 06:00:00+02:00", utc("2026-12-04T04:00:00Z")},
		{"2026-12-04", utc("2026-12-04T00:00:00Z")},
		{" 2026-12-04 ", utc("2026-12-04T00:00:00Z")},
		{"now", utc("2026-12-04T16:30:00Z")},
		{"2026-12-04 06:00", time.Time{}},
		{"2026-13-04", time.Time{}},
		{"04/12/2026", time.Time{}},
		{"yesterday", time.Time{}},
		{"", time.Time{}},
	}
	for _, tc := range tests {
		got, err := spec.ParseTime(tc.in, now)
		if tc.want.IsZero() {
			if !errors.Is(err, spec.ErrBadTime) {
				t.Errorf("ParseTime(%q) = %v, %v; want ErrBadTime", tc.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v in UTC", tc.in, got, err, tc.want)
		}
	}
}
