package spec

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a span written as an integer and a unit: s, m, h, d (24 h) or w (7 d),
// such as "90d", "1h" or "30m". Its canonical text (String) uses the largest unit
// that divides it exactly, so "1w" and "7d" are the same duration and both name a
// window column "..._7d".
type Duration time.Duration

var durationUnits = []struct {
	suffix string
	d      time.Duration
}{
	{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second},
}

// ParseDuration parses "<n><unit>" with unit s, m, h, d or w. "0" is zero.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	for _, u := range durationUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 0 || num == "" || num[0] == '+' {
			break
		}
		if n > int64(1<<62)/int64(u.d) {
			return 0, fmt.Errorf("duration %q is too large", s)
		}
		return Duration(time.Duration(n) * u.d), nil
	}
	return 0, fmt.Errorf("duration %q: expected a whole number and a unit s, m, h, d or w (e.g. 90d, 1h, 30m)", s)
}

// String returns the canonical text: "7d", "36h", "90m", "0".
func (d Duration) String() string {
	if d == 0 {
		return "0"
	}
	for _, u := range durationUnits[1:] { // weeks are written in days
		if time.Duration(d)%u.d == 0 {
			return strconv.FormatInt(int64(time.Duration(d)/u.d), 10) + u.suffix
		}
	}
	return time.Duration(d).String()
}

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the canonical text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads the canonical text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
