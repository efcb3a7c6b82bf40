package spec

import (
	"fmt"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/atrium-ml/atrium/internal/platform/scheduler/calendar"
)

// Catch-up policies: what a job does with the intervals it missed while no
// scheduler ran.
const (
	// CatchupAll runs every missed interval, oldest first.
	CatchupAll = "all"
	// CatchupLatest runs only the latest missed interval.
	CatchupLatest = "latest"
)

// Defaults of a schedule (documented on its fields).
const (
	DefaultRetries        = 2
	DefaultJobConcurrency = 1
)

// Schedule says when a job runs: a cron expression (or daily, hourly,
// weekly, monthly) in a time zone, for the period that just closed, delay
// after it closed. Written as the bare expression or as a mapping:
//
//	schedule: daily
//	schedule: {cron: "0 3 * * *", timezone: Europe/Berlin, delay: 2h, catchup: latest}
type Schedule struct {
	// Cron is the expression as written: daily, hourly, weekly, monthly, or
	// five cron fields ("0 3 * * *").
	Cron string `json:"cron"`
	// Timezone is the IANA zone the expression is read in. Default UTC.
	Timezone string `json:"timezone,omitempty"`
	// Delay is how long after a period closes its run is due. Default 0.
	Delay Duration `json:"delay,omitempty"`
	// Catchup is all (default) or latest: which missed periods run after downtime.
	Catchup string `json:"catchup,omitempty"`
	// Retries is how many times a failed run is tried again (exponential
	// backoff with jitter). Default 2; a failed check is never retried.
	Retries *int `json:"retries,omitempty"`
	// Timeout bounds one attempt. Default 0: none.
	Timeout Duration `json:"timeout,omitempty"`
	// Concurrency bounds how many periods of the job run at once. Default 1.
	Concurrency int `json:"concurrency,omitempty"`
	// DependsOn names the feature sets whose runs for a period must have
	// succeeded before this job's run for the period starts.
	DependsOn []string `json:"depends_on,omitempty"`
	Pos       `json:"-"`
}

// Calendar parses the schedule (it was validated when loaded).
func (s *Schedule) Calendar() (*calendar.Calendar, error) {
	return calendar.Parse(s.Cron, s.Timezone, s.Delay.D())
}

// EffectiveRetries is Retries with its default applied.
func (s *Schedule) EffectiveRetries() int {
	if s.Retries == nil {
		return DefaultRetries
	}
	return *s.Retries
}

// EffectiveConcurrency is Concurrency with its default applied.
func (s *Schedule) EffectiveConcurrency() int {
	if s.Concurrency <= 0 {
		return DefaultJobConcurrency
	}
	return s.Concurrency
}

// EffectiveCatchup is Catchup with its default applied.
func (s *Schedule) EffectiveCatchup() string {
	if s.Catchup == "" {
		return CatchupAll
	}
	return s.Catchup
}

// Materialize says when a feature set's latest rows are written to the
// online store: after each successful run (after_run), or on a schedule of
// its own.
//
//	materialize: after_run
//	materialize: {cron: "*/15 * * * *"}
type Materialize struct {
	AfterRun bool      `json:"after_run,omitempty"`
	Schedule *Schedule `json:"schedule,omitempty"`
	Pos      `json:"-"`
}

// MaterializeAfterRun is the spelling of Materialize.AfterRun in YAML.
const MaterializeAfterRun = "after_run"

// Ready is a source's readiness check: a period's runs of the sets reading
// the source wait until it passes.
//
//	ready: {glob: "data/events/{date}/*.csv", min_rows: 1000}
type Ready struct {
	// Glob must match at least one file. {date} is replaced by the period's
	// first UTC day (2026-06-03), {hour} by its first hour (00-23). Relative
	// to the repository.
	Glob string `json:"glob,omitempty"`
	// MinRows: the source must hold at least this many rows with an event
	// time in the period.
	MinRows int64 `json:"min_rows,omitempty"`
	Pos     `json:"-"`
}

// ExpandGlob returns the glob with {date} and {hour} replaced for a period
// starting at start.
func (r *Ready) ExpandGlob(start time.Time) string {
	s := start.UTC()
	return strings.NewReplacer("{date}", s.Format(time.DateOnly), "{hour}", s.Format("15")).Replace(r.Glob)
}

// scheduleFields decodes the keys of a schedule mapping into s.
func (d *nodeDecoder) scheduleFields(s *Schedule, what string) map[string]func(ast.Node) {
	return map[string]func(ast.Node){
		"cron":     func(v ast.Node) { s.Cron = d.str(v, what+" cron") },
		"timezone": func(v ast.Node) { s.Timezone = d.str(v, what+" timezone") },
		"delay":    func(v ast.Node) { s.Delay = d.duration(v, what+" delay") },
		"catchup":  func(v ast.Node) { s.Catchup = d.str(v, what+" catchup") },
		"retries": func(v ast.Node) {
			if n, ok := d.number(v, what+" retries"); ok {
				r := int(n)
				if float64(r) != n || r < 0 || r > 100 {
					d.add(v, "%s retries: %g, expected a whole number from 0 to 100", what, n)
				}
				s.Retries = &r
			}
		},
		"timeout": func(v ast.Node) { s.Timeout = d.duration(v, what+" timeout") },
		"concurrency": func(v ast.Node) {
			if n, ok := d.number(v, what+" concurrency"); ok {
				s.Concurrency = int(n)
				if float64(s.Concurrency) != n || n < 1 || n > 1000 {
					d.add(v, "%s concurrency: %g, expected a whole number from 1 to 1000", what, n)
				}
			}
		},
		"depends_on": func(v ast.Node) { s.DependsOn = d.strs(v, what+" depends_on") },
	}
}

// schedule decodes a schedule: a bare expression or a mapping.
func (d *nodeDecoder) schedule(n ast.Node, what string) *Schedule {
	s := &Schedule{}
	if isScalar(n) {
		s.Cron = d.str(n, what)
		s.Pos = Pos{File: d.file, Line: lineOf(n), fields: map[string]int{"cron": lineOf(n)}}
		return s
	}
	lines, ok := d.mapping(n, what, d.scheduleFields(s, what))
	if !ok {
		return nil
	}
	s.Pos = d.pos(n, lines)
	if s.Cron == "" {
		d.add(n, "%s: no cron, expected cron: daily, hourly or a cron expression such as \"0 3 * * *\"", what)
	}
	return s
}

// materialize decodes after_run or a schedule of its own.
func (d *nodeDecoder) materialize(n ast.Node) *Materialize {
	if isScalar(n) && scalarText(n) == MaterializeAfterRun {
		return &Materialize{AfterRun: true, Pos: Pos{File: d.file, Line: lineOf(n)}}
	}
	s := d.schedule(n, "feature set materialize")
	if s == nil {
		return nil
	}
	return &Materialize{Schedule: s, Pos: s.Pos}
}

func (d *nodeDecoder) ready(n ast.Node) *Ready {
	r := &Ready{}
	lines, ok := d.mapping(n, "source ready", map[string]func(ast.Node){
		"glob": func(v ast.Node) { r.Glob = d.str(v, "source ready glob") },
		"min_rows": func(v ast.Node) {
			if f, ok := d.number(v, "source ready min_rows"); ok {
				r.MinRows = int64(f)
				if f < 1 || float64(r.MinRows) != f {
					d.add(v, "source ready min_rows: %g, expected a whole number of rows, at least 1", f)
				}
			}
		},
	})
	if !ok {
		return nil
	}
	r.Pos = d.pos(n, lines)
	if r.Glob == "" && r.MinRows == 0 {
		d.add(n, "source ready: expected glob: and/or min_rows:")
	}
	return r
}

// validateSchedule checks a schedule's expression, zone and policies.
func (v *validator) validateSchedule(s *Schedule, what string) {
	if s == nil || s.Cron == "" {
		return // reported when decoded
	}
	if _, err := s.Calendar(); err != nil {
		line := s.At("cron")
		if strings.Contains(err.Error(), "time zone") {
			line = s.At("timezone")
		}
		v.ps.Add(s.File, line, "%s: %v", what, err)
	}
	switch s.Catchup {
	case "", CatchupAll, CatchupLatest:
	default:
		v.ps.Add(s.File, s.At("catchup"), "%s catchup: %q, expected all or latest", what, s.Catchup)
	}
	if s.Timeout < 0 {
		v.ps.Add(s.File, s.At("timeout"), "%s timeout: negative, expected a duration such as 1h", what)
	}
}

// validateJobSchedule checks the schedule of a training spec or a monitor:
// the feature sets' grammar, without depends_on (their dependencies follow
// from what they read, and why says so).
func validateJobSchedule(ps *Problems, s *Schedule, what, why string) {
	if s == nil {
		return
	}
	(&validator{ps: ps}).validateSchedule(s, what)
	if len(s.DependsOn) > 0 {
		ps.Add(s.File, s.At("depends_on"), "%s depends_on: not allowed here (%s), expected cron, timezone, delay, catchup, retries, timeout or concurrency", what, why)
	}
}

// validateSchedules checks every schedule, the sets' depends_on references
// and that the dependencies have no cycle.
func (v *validator) validateSchedules() {
	f := v.f
	for _, fs := range f.FeatureSets {
		what := fmt.Sprintf("feature set %q schedule", fs.Name)
		v.validateSchedule(fs.Schedule, what)
		if fs.Schedule != nil {
			seen := map[string]bool{}
			for _, dep := range fs.Schedule.DependsOn {
				switch {
				case dep == fs.Name:
					v.ps.Add(fs.Schedule.File, fs.Schedule.At("depends_on"), "%s depends_on: %q is the set itself, expected other feature sets", what, dep)
				case seen[dep]:
					v.ps.Add(fs.Schedule.File, fs.Schedule.At("depends_on"), "%s depends_on: %q is listed twice", what, dep)
				case f.Set(dep) == nil:
					v.ps.addDangling(fs.Schedule.File, fs.Schedule.At("depends_on"), "%s depends_on: unknown feature set %q, expected one of: %s",
						what, dep, orNone(namesOf(f.FeatureSets, func(s *FeatureSet) string { return s.Name })))
				case f.Set(dep).Schedule == nil:
					v.ps.Add(fs.Schedule.File, fs.Schedule.At("depends_on"), "%s depends_on: feature set %q has no schedule, expected a scheduled set (its runs are what this set waits for)", what, dep)
				}
				seen[dep] = true
			}
		}
		if m := fs.Materialize; m != nil {
			if m.AfterRun && fs.Schedule == nil {
				v.ps.Add(m.File, m.Line, "feature set %q materialize: after_run needs a schedule on the set, expected schedule: too (or a schedule of materialize's own)", fs.Name)
			}
			if m.Schedule != nil {
				v.validateSchedule(m.Schedule, fmt.Sprintf("feature set %q materialize", fs.Name))
				if len(m.Schedule.DependsOn) > 0 {
					v.ps.Add(m.File, m.Schedule.At("depends_on"), "feature set %q materialize: depends_on is not allowed here, expected it on the set's schedule", fs.Name)
				}
			}
		}
	}
	for _, cyc := range scheduleCycles(f) {
		fs := f.Set(cyc[0])
		v.ps.Add(fs.Schedule.File, fs.Schedule.At("depends_on"), "feature set %q schedule depends_on: cycle %s, expected dependencies without cycles", fs.Name, strings.Join(cyc, " -> "))
	}
}

// scheduleCycles returns each dependency cycle once, as the list of set names
// from the member found first back to itself.
func scheduleCycles(f *Features) [][]string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var out [][]string
	var visit func(name string)
	visit = func(name string) {
		color[name] = grey
		stack = append(stack, name)
		if fs := f.Set(name); fs != nil && fs.Schedule != nil {
			for _, dep := range fs.Schedule.DependsOn {
				switch {
				case f.Set(dep) == nil || dep == name: // reported on their own
				case color[dep] == grey:
					i := len(stack) - 1
					for stack[i] != dep {
						i--
					}
					cyc := append(append([]string(nil), stack[i:]...), dep)
					out = append(out, cyc)
				case color[dep] == white:
					visit(dep)
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[name] = black
	}
	for _, fs := range f.FeatureSets {
		if color[fs.Name] == white {
			visit(fs.Name)
		}
	}
	return out
}
