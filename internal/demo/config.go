// Package demo generates a synthetic rental marketplace with a known ground truth:
// listings whose rent changes over time, users with budgets and preferences, and
// search sessions whose clicks and visit requests are drawn from a documented
// utility function (utility.go). Because the truth is known, a ranking model trained
// on the generated data can be compared with the best possible ranking (by true
// utility) and with a random one.
//
// Everything is deterministic by seed: the same Config writes the same bytes,
// whatever the number of workers. The market (listings, users) is small and held in
// memory; sessions are generated day by day from per-day random streams and streamed
// to files, so tens of millions of events never sit in memory at once.
package demo

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Config sizes and seeds a generated market. The zero value is not valid: start
// from Preset and adjust.
type Config struct {
	// Seed drives every random draw. The same seed and sizes give the same data.
	Seed uint64
	// Start is the first day of search sessions (midnight UTC). Listings and users
	// may be created before it.
	Start time.Time
	// Days is the number of days with sessions: sessions fall in [Start, Start+Days).
	Days int
	// Listings and Users are the number of distinct listings and users.
	Listings int
	Users    int
	// Sessions is the total number of search sessions over all days.
	Sessions int
	// SessionSize is the number of listings shown per session (fewer when the
	// search finds fewer matching listings).
	SessionSize int
	// Workers generate days in parallel. Default (0): runtime.GOMAXPROCS(0).
	// The output does not depend on it.
	Workers int
}

// DefaultStart is the first session day of every preset.
var DefaultStart = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

// presets name the sizes `atrium demo --size` accepts, smallest first.
var presets = []struct {
	name string
	cfg  Config
}{
	// tiny: tests. A few hundred events, generated in milliseconds.
	{"tiny", Config{Days: 4, Listings: 40, Users: 30, Sessions: 32, SessionSize: 8}},
	// small: the default of `atrium demo`, about 50 thousand events.
	{"small", Config{Days: 14, Listings: 1_500, Users: 800, Sessions: 2_400, SessionSize: 20}},
	// medium: about 1 million events.
	{"medium", Config{Days: 28, Listings: 20_000, Users: 15_000, Sessions: 46_000, SessionSize: 20}},
	// large: about 10 million events (benchmarks).
	{"large", Config{Days: 28, Listings: 100_000, Users: 120_000, Sessions: 460_000, SessionSize: 20}},
	// xlarge: about 30 million events (benchmarks).
	{"xlarge", Config{Days: 56, Listings: 200_000, Users: 300_000, Sessions: 1_380_000, SessionSize: 20}},
}

// PresetNames lists the preset sizes, smallest first.
func PresetNames() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.name
	}
	return names
}

// Preset returns the named size with seed 1 and DefaultStart.
func Preset(name string) (Config, error) {
	for _, p := range presets {
		if p.name == name {
			c := p.cfg
			c.Seed = 1
			c.Start = DefaultStart
			return c, nil
		}
	}
	return Config{}, fmt.Errorf("size %q: want one of %s", name, strings.Join(PresetNames(), ", "))
}

// eventsPerImpression is the average number of events an impression brings
// (itself plus its clicks and visit requests), measured on the presets.
const eventsPerImpression = 1.085

// WithEvents returns c resized to write about n events: sessions scale to n, and
// listings and users scale with the square root of the growth (a bigger market has
// more listings, but each one is seen more often too).
func (c Config) WithEvents(n int) Config {
	sessions := max(1, int(float64(n)/(eventsPerImpression*float64(c.SessionSize))+0.5))
	if c.Sessions > 0 && sessions > c.Sessions {
		growth := float64(sessions) / float64(c.Sessions)
		scale := func(v int) int { return int(float64(v)*math.Sqrt(growth) + 0.5) }
		c.Listings, c.Users = scale(c.Listings), scale(c.Users)
	}
	c.Sessions = sessions
	return c
}

// End is the end of the session range (exclusive): Start + Days.
func (c Config) End() time.Time { return c.Start.AddDate(0, 0, c.Days) }

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Start.IsZero() || !c.Start.Equal(c.Start.UTC().Truncate(24*time.Hour)) {
		errs = append(errs, fmt.Errorf("start %s: want midnight UTC", c.Start.Format(time.RFC3339)))
	}
	for _, f := range []struct {
		name     string
		val, min int
	}{
		{"days", c.Days, 1}, {"listings", c.Listings, 1}, {"users", c.Users, 1},
		{"sessions", c.Sessions, 1}, {"session size", c.SessionSize, 1}, {"workers", c.Workers, 0},
	} {
		if f.val < f.min {
			errs = append(errs, fmt.Errorf("%s %d: want >= %d", f.name, f.val, f.min))
		}
	}
	if c.Days > 3660 {
		errs = append(errs, fmt.Errorf("days %d: want <= 3660", c.Days))
	}
	if c.SessionSize > c.Listings {
		errs = append(errs, fmt.Errorf("session size %d: want <= listings (%d)", c.SessionSize, c.Listings))
	}
	return errors.Join(errs...)
}

// daySessions splits n sessions over days, weekends busier than weekdays, so that
// the counts sum to n exactly (largest remainder).
func daySessions(start time.Time, days, n int) []int {
	weights := make([]float64, days)
	var total float64
	for d := range weights {
		weights[d] = 1
		if wd := start.AddDate(0, 0, d).Weekday(); wd == time.Saturday || wd == time.Sunday {
			weights[d] = 1.3
		}
		total += weights[d]
	}
	counts := make([]int, days)
	rem := make([]float64, days)
	assigned := 0
	for d, w := range weights {
		exact := float64(n) * w / total
		counts[d] = int(exact)
		rem[d] = exact - float64(counts[d])
		assigned += counts[d]
	}
	order := make([]int, days)
	for d := range order {
		order[d] = d
	}
	sort.SliceStable(order, func(i, j int) bool { return rem[order[i]] > rem[order[j]] })
	for _, d := range order[:n-assigned] {
		counts[d]++
	}
	return slices.Clip(counts)
}
