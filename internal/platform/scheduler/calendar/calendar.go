// Package calendar turns a schedule (daily, hourly or a cron expression in a
// time zone) into the intervals a job runs for. It is stdlib plus the cron
// parser only, so the spec package can validate schedules at `atrium apply`
// without linking the scheduler's database.
//
// A schedule's fire times cut time into intervals: the interval ending at a
// fire time f starts at the fire time before it. The run for [start, end) is
// due at end + delay: the period has closed and the data had time to land.
package calendar

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones resolve on machines without a zoneinfo database

	"github.com/robfig/cron/v3"
)

// Shorthands accepted for a cron expression.
var shorthands = map[string]string{
	"daily":   "0 0 * * *",
	"hourly":  "0 * * * *",
	"weekly":  "0 0 * * 1", // Monday 00:00: weeks as ISO 8601 counts them
	"monthly": "0 0 1 * *",
}

// parser accepts the standard five fields (minute hour day-of-month month
// day-of-week) and descriptors (@daily, @hourly...). @every is refused by
// Parse: a constant delay has no calendar intervals.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ErrBadSchedule reports a schedule that does not parse.
var ErrBadSchedule = errors.New("bad schedule")

// Calendar is a parsed schedule. It is immutable and safe for concurrent use.
type Calendar struct {
	expr  string
	loc   *time.Location
	delay time.Duration
	spec  cron.Schedule
	// period is an upper bound of the gap between two fire times, found
	// when parsing, so Prev searches a bounded window.
	period time.Duration
}

// Parse parses expr ("daily", "hourly", "weekly", "monthly", "@daily" or a
// five-field cron expression) in the time zone tz ("" is UTC) with the given
// delay after each period closes.
func Parse(expr, tz string, delay time.Duration) (*Calendar, error) {
	e := strings.TrimSpace(expr)
	if s, ok := shorthands[strings.ToLower(e)]; ok {
		e = s
	}
	if e == "" {
		return nil, fmt.Errorf("%w: empty, expected daily, hourly, weekly, monthly or a cron expression such as \"0 3 * * *\"", ErrBadSchedule)
	}
	if strings.HasPrefix(e, "@every") {
		return nil, fmt.Errorf("%w: %q: @every has no calendar periods, expected daily, hourly or a cron expression", ErrBadSchedule, expr)
	}
	if strings.HasPrefix(e, "CRON_TZ=") || strings.HasPrefix(e, "TZ=") {
		return nil, fmt.Errorf("%w: %q: give the time zone as timezone: (e.g. Europe/Berlin), not inside the expression", ErrBadSchedule, expr)
	}
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("%w: time zone %q: expected an IANA name such as Europe/Berlin or UTC", ErrBadSchedule, tz)
		}
		loc = l
	}
	if delay < 0 {
		return nil, fmt.Errorf("%w: negative delay %s", ErrBadSchedule, delay)
	}
	s, err := parser.Parse(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v (expected minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\")", ErrBadSchedule, expr, err)
	}
	c := &Calendar{expr: expr, loc: loc, delay: delay, spec: s}
	// The longest gap between 400 fire times, within 8 years (leap days,
	// "0 0 29 2 *" fires every 4 years) bounds Prev's search.
	t := c.Next(time.Date(2024, 1, 1, 0, 0, 0, 0, loc))
	end := t.AddDate(8, 0, 0)
	for n := 0; n < 400 && t.Before(end); n++ {
		next := c.Next(t)
		if next.IsZero() {
			break
		}
		c.period = max(c.period, next.Sub(t))
		t = next
	}
	if c.period == 0 {
		return nil, fmt.Errorf("%w: %q never fires", ErrBadSchedule, expr)
	}
	return c, nil
}

// MustParse is Parse for schedules known to be valid (tests, shorthands).
func MustParse(expr, tz string, delay time.Duration) *Calendar {
	c, err := Parse(expr, tz, delay)
	if err != nil {
		panic(err)
	}
	return c
}

// Same reports whether c and o fire at the same times (same expression,
// zone and delay as parsed): their intervals are the same.
func (c *Calendar) Same(o *Calendar) bool {
	return c == o || (o != nil && c.expr == o.expr && c.loc.String() == o.loc.String())
}

// String is the expression as written.
func (c *Calendar) String() string { return c.expr }

// Location is the schedule's time zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// Delay is how long after an interval ends its run is due.
func (c *Calendar) Delay() time.Duration { return c.delay }

// Period bounds the gap between two fire times (a day for daily).
func (c *Calendar) Period() time.Duration { return c.period }

// Next returns the first fire time strictly after t, in UTC (zero if none
// within five years).
func (c *Calendar) Next(t time.Time) time.Time {
	n := c.spec.Next(t.In(c.loc))
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// Prev returns the last fire time at or before t, in UTC (zero if none).
func (c *Calendar) Prev(t time.Time) time.Time {
	// Step back far enough that a fire time lies in (t - back, t], then walk
	// forward to the last one.
	back := c.period + time.Minute
	from := c.Next(t.Add(-back))
	if from.IsZero() || from.After(t) {
		return time.Time{}
	}
	for {
		n := c.Next(from)
		if n.IsZero() || n.After(t) {
			return from
		}
		from = n
	}
}

// Interval is a period [Start, End) a job runs for.
type Interval struct {
	Start, End time.Time
}

// String renders an interval compactly: "2026-06-03" for a UTC day,
// "2026-06-03T10:00Z/2026-06-03T11:00Z" otherwise.
func (iv Interval) String() string {
	s, e := iv.Start.UTC(), iv.End.UTC()
	if s.Equal(s.Truncate(24*time.Hour)) && e.Sub(s) == 24*time.Hour {
		return s.Format(time.DateOnly)
	}
	return s.Format("2006-01-02T15:04Z") + "/" + e.Format("2006-01-02T15:04Z")
}

// Containing returns the interval whose end is the first fire time after t
// (the interval t falls in), or false if the schedule has none.
func (c *Calendar) Containing(t time.Time) (Interval, bool) {
	end := c.Next(t)
	start := c.Prev(t)
	if end.IsZero() || start.IsZero() {
		return Interval{}, false
	}
	return Interval{Start: start, End: end}, true
}

// Due returns when the run for iv is due: its end plus the delay.
func (c *Calendar) Due(iv Interval) time.Time { return iv.End.Add(c.delay) }

// LastClosed returns the latest interval whose run is due at or before now.
func (c *Calendar) LastClosed(now time.Time) (Interval, bool) {
	end := c.Prev(now.Add(-c.delay))
	if end.IsZero() {
		return Interval{}, false
	}
	start := c.Prev(end.Add(-time.Nanosecond))
	if start.IsZero() {
		return Interval{}, false
	}
	return Interval{Start: start, End: end}, true
}

// Between returns the intervals that start at or after from and are due at
// or before now, oldest first, at most limit of them (0 = no limit). from
// is normally the end of the last interval planned; a from that is not a
// fire time starts at the first fire time after it.
func (c *Calendar) Between(from, now time.Time, limit int) []Interval {
	var out []Interval
	start := c.Prev(from)
	if start.IsZero() || start.Before(from) {
		start = c.Next(from)
	}
	for !start.IsZero() {
		end := c.Next(start)
		if end.IsZero() || c.Due(Interval{start, end}).After(now) {
			break
		}
		out = append(out, Interval{Start: start, End: end})
		if limit > 0 && len(out) >= limit {
			break
		}
		start = end
	}
	return out
}

// Overlapping returns the intervals of the calendar that overlap [start, end).
func (c *Calendar) Overlapping(start, end time.Time) []Interval {
	var out []Interval
	s := c.Prev(start)
	if s.IsZero() {
		s = c.Next(start)
	}
	for !s.IsZero() && s.Before(end) {
		e := c.Next(s)
		if e.IsZero() {
			break
		}
		if e.After(start) {
			out = append(out, Interval{Start: s, End: e})
		}
		s = e
	}
	return out
}
