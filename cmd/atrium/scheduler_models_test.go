package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atrium-ml/atrium/internal/platform/scheduler"
)

// writeFiles writes files (path relative to dir: content) into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// editFile replaces old by new in dir/name; the test fails when old is not there.
func editFile(t *testing.T, dir, name, old, new string) {
	t.Helper()
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s lacks %q", name, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

const rentSpec = `name: rent
features: ["listing_profile:rent", "listing_profile:price_per_m2"]
spine: {path: data/spine.csv, timestamp: ts, label: expensive}
split: {by: random, valid: 0.2, test: 0.2}
model: {objective: binary, params: {num_iterations: 5, min_data_in_leaf: 2}}
register: {model: rent}
`

// A bad schedule, a training spec naming a feature the catalog lacks and a
// monitor of an unknown feature set stop apply with every problem at its
// line, as atrium train and the monitors would; nothing is applied.
func TestApplyChecksTrainingAndMonitors(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{name: "bad schedules", files: map[string]string{
			"training/rent.yaml": rentSpec + "schedule: {cron: \"0 4 * *\", timezone: Europe/Berlin}\n",
			"monitors/mons.yaml": "monitors:\n  - name: checks\n    measure: check_failures\n    feature_set: listing_profile\n    threshold: 0\n    schedule: {cron: hourly, catchup: never}\n",
		}, want: []string{
			`training/rent.yaml:7: schedule: bad schedule: "0 4 * *": expected exactly 5 fields`,
			`monitors/mons.yaml:6: monitor "checks" schedule catchup: "never", expected all or latest`,
		}},
		{name: "unknown references", files: map[string]string{
			"training/rent.yaml": strings.Replace(rentSpec, "listing_profile:rent", "listing_profile:rnt", 1) + "schedule: weekly\n",
			"monitors/mons.yaml": "monitors:\n  - name: checks\n    measure: check_failures\n    feature_set: listing_profil\n    threshold: 0\n",
		}, want: []string{
			`training/rent.yaml:2: features: `,
			`monitors/mons.yaml:4: monitor "checks": feature set "listing_profil" is not defined in features/*.yaml`,
		}},
		{name: "two specs of one name", files: map[string]string{
			"training/a.yaml": rentSpec, "training/b.yaml": rentSpec,
		}, want: []string{`training/b.yaml:1: training spec name "rent" is also training/a.yaml's, expected unique names`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := exampleRepo(t)
			writeFiles(t, dir, c.files)
			code, _, errOut := atrium(t, "--repo", dir, "apply")
			if code != exitFailure {
				t.Errorf("apply = %d, want %d", code, exitFailure)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if code, _, errOut := atrium(t, "--repo", dir, "jobs"); code != exitFailure || !strings.Contains(errOut, "no feature definitions applied") {
				t.Errorf("jobs after a refused apply = %d %q", code, errOut)
			}
		})
	}
}

// trainingRepo is the example project with a daily listing_profile, a
// labelled spine over its listings and the weekly training spec rent.
func trainingRepo(t *testing.T) string {
	t.Helper()
	dir := exampleRepo(t)
	editFile(t, dir, "features/example.yaml", "    ttl: 90d\n", "    ttl: 90d\n    schedule: {cron: daily, retries: 0}\n")
	var spine strings.Builder
	spine.WriteString("listing_id,ts,expensive\n")
	for i := range 80 {
		id := 1 + i%2
		// Listing 1 (rent 1200-1300) is expensive, listing 2 (900) is not,
		// but one label in ten is flipped.
		label := 2 - id
		if i%10 == 0 {
			label = 1 - label
		}
		fmt.Fprintf(&spine, "%d,2024-01-0%d %02d:00:00,%d\n", id, 3+i%4, i%24, label)
	}
	writeFiles(t, dir, map[string]string{"data/spine.csv": spine.String(), "training/rent.yaml": rentSpec + "schedule: weekly\n"})
	return dir
}

// schedulerEnv opens the project in dir as a command would.
func schedulerEnv(t *testing.T, dir string) *env {
	t.Helper()
	var stderr bytes.Buffer
	e := &env{ctx: context.Background(), stdout: io.Discard, stderr: &stderr, repo: dir, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	t.Cleanup(func() {
		if err := e.close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// tick runs the scheduler until its ticks start nothing new (a dependency
// unblocks the next tick).
func tick(t *testing.T, s *scheduler.Scheduler) {
	t.Helper()
	for range 4 {
		if _, err := s.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.Wait()
	}
}

func jobRuns(t *testing.T, e *env, job string) []scheduler.Run {
	t.Helper()
	db, err := e.Meta()
	if err != nil {
		t.Fatal(err)
	}
	runs, err := scheduler.ListRuns(context.Background(), db, scheduler.RunFilter{Job: job, Ascending: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func jobStatus(t *testing.T, s *scheduler.Scheduler, job string) scheduler.JobStatus {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range st {
		if js.Name == job {
			return js
		}
	}
	t.Fatalf("no job %s among %+v", job, st)
	return scheduler.JobStatus{}
}

// The weekly training waits while the last day of its feature set is not
// fresh (its run's error check failed), and trains through the real
// orchestrator once the day is fixed and run again; the history records the
// training set's rows and the model's metrics.
func TestTrainJobWaitsForFreshFeatures(t *testing.T) {
	dir := trainingRepo(t)
	// Sunday 2024-01-07 brings a listing at rent 9: the between check fails.
	editFile(t, dir, "data/listings.csv", "2,2024-01-06 00:00:00,950,30,norte\n", "2,2024-01-06 00:00:00,950,30,norte\n3,2024-01-07 05:00:00,9,30,sur\n")
	mustAtrium(t, dir, "apply")
	e := schedulerEnv(t, dir)
	clock := scheduler.NewFakeClock(time.Date(2024, 1, 8, 0, 30, 0, 0, time.UTC)) // a Monday
	s, _, err := e.Scheduler(schedulerOptions{clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	j, ok := s.Job("train:rent")
	if !ok || len(j.FreshUpTo) != 1 || j.FreshUpTo[0] != "run:listing_profile" || j.Schedule != "weekly" {
		t.Fatalf("train:rent = %+v (jobs %v)", j, s.JobNames())
	}
	tick(t, s)
	if st := jobStatus(t, s, "train:rent"); st.Waiting != "blocked: run:listing_profile 2024-01-07 checks_failed" || st.Pending != 1 {
		t.Errorf("train:rent on a stale feature set = %+v", st)
	}
	if runs := jobRuns(t, e, "train:rent"); len(runs) != 0 {
		t.Fatalf("trained on a stale feature set: %+v", runs)
	}
	// Fixed and run again by hand: the week trains.
	editFile(t, dir, "data/listings.csv", "3,2024-01-07 05:00:00,9,", "3,2024-01-07 05:00:00,990,")
	clock.Advance(time.Hour)
	day := scheduler.Interval{Start: time.Date(2024, 1, 7, 0, 0, 0, 0, time.UTC), End: time.Date(2024, 1, 8, 0, 0, 0, 0, time.UTC)}
	if _, err := s.Trigger(e.ctx, "run:listing_profile", []scheduler.Interval{day}, scheduler.TriggerManual, 0); err != nil {
		t.Fatal(err)
	}
	tick(t, s)
	runs := jobRuns(t, e, "train:rent")
	if len(runs) != 1 || runs[0].State != scheduler.StateSucceeded || runs[0].Trigger != scheduler.TriggerSchedule ||
		runs[0].Interval().Start.Format(time.DateOnly) != "2024-01-01" || runs[0].Rows != 80 ||
		!strings.Contains(runs[0].Detail, "test binary_logloss") || !strings.Contains(runs[0].Detail, "registered rent version 1") {
		t.Fatalf("train:rent runs = %+v\n%s", runs, e.stderr)
	}
	// By hand, the week trains again: a second version.
	out := mustAtrium(t, dir, "trigger", "train:rent", "--start", "2024-01-01", "--end", "2024-01-07")
	if !strings.Contains(out, "train:rent") || !strings.Contains(out, "manual") || !strings.Contains(out, "succeeded") {
		t.Errorf("trigger train:rent:\n%s", out)
	}
	if runs := jobRuns(t, e, "train:rent"); len(runs) != 2 || !strings.Contains(runs[1].Detail, "registered rent version 2") {
		t.Errorf("train:rent runs after the trigger = %+v", runs)
	}
}

// A monitor with a schedule is a job: evaluated at its period's end, it
// fires through its notifier when the feature set's checks failed in its
// window, and records the evaluation in the job history; atrium trigger
// evaluates it by hand.
func TestMonitorJobAlerts(t *testing.T) {
	dir := exampleRepo(t)
	hook, got := webhookRecorder(t)
	writeFiles(t, dir, map[string]string{"monitors/checks.yaml": `notifiers:
  - {name: oncall, url: ` + hook.URL + `}
monitors:
  - name: profile_checks
    measure: check_failures
    feature_set: listing_profile
    window: 2h
    threshold: 0
    severity: critical
    schedule: hourly
`})
	// Listing 2 at rent 9 on 2024-01-02 fails the between check.
	editFile(t, dir, "data/listings.csv", "2,2024-01-02 00:00:00,900.5", "2,2024-01-02 00:00:00,9")
	mustAtrium(t, dir, "apply")
	if code, _, errOut := atrium(t, "--repo", dir, "run", "listing_profile", "--start", "2024-01-02", "--end", "2024-01-02"); code != exitFailure {
		t.Fatalf("run with a failing check = %d %s", code, errOut)
	}
	// Pipeline runs are stamped with the wall clock: the scheduler's fake
	// clock starts there. The run falls in the window of the latest closed
	// hour or of the next one, and fires the monitor once.
	e := schedulerEnv(t, dir)
	clock := scheduler.NewFakeClock(time.Now())
	s, _, err := e.Scheduler(schedulerOptions{clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if j, ok := s.Job("monitor:profile_checks"); !ok || j.Kind != "monitor" || j.Calendar.Delay() != 0 {
		t.Fatalf("monitor job = %+v (jobs %v)", j, s.JobNames())
	}
	tick(t, s)
	clock.Advance(time.Hour)
	tick(t, s)
	n := <-got
	if n["rule"] != "profile_checks" || n["state"] != "firing" || n["severity"] != "critical" || n["value"] != 1.0 {
		t.Errorf("notification = %v", n)
	}
	select {
	case more := <-got:
		t.Errorf("a second notification: %v", more)
	default:
	}
	runs := jobRuns(t, e, "monitor:profile_checks")
	firing := 0
	for _, r := range runs {
		if r.State != scheduler.StateSucceeded || len(r.Checks) != 1 {
			t.Errorf("monitor run = %+v", r)
			continue
		}
		if !r.Checks[0].Passed {
			firing++
		}
	}
	if len(runs) != 2 || firing == 0 {
		t.Errorf("monitor runs = %+v", runs)
	}
	// /metrics has the job's series, as for every job.
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.schedulerMetrics())
	if n, err := testutil.GatherAndCount(reg, "atrium_job_runs_total", "atrium_job_last_success_timestamp_seconds"); err != nil || n != 2 {
		t.Errorf("job series = %d, %v; want runs_total and last_success of monitor:profile_checks", n, err)
	}
	// atrium serve runs the scheduler for the monitor alone, and its
	// ticker leaves the monitor to it.
	p, err := e.Project()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, run, err := serveScheduler(e, p); err != nil || !run {
		t.Errorf("serve runs the scheduler = %v, %v; want true", run, err)
	}
	if ev, err := e.Alerts(); err != nil || ev.Monitors() != 1 || ev.Unscheduled() != 0 {
		t.Errorf("serve's evaluator: %v", err)
	}
	// By hand: the latest closed hour, evaluated again.
	if out := mustAtrium(t, dir, "trigger", "monitor:profile_checks"); !strings.Contains(out, "monitor:profile_checks") || !strings.Contains(out, "manual") {
		t.Errorf("trigger:\n%s", out)
	}
}
