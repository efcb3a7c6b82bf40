package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/data/catalog"
	"github.com/atrium-ml/atrium/internal/data/jobs"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/monitoring/alert"
	"github.com/atrium-ml/atrium/internal/monitoring/monitorjob"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/spec"
)

// schedulerJobs are the sources of scheduled jobs besides the feature
// sets': each returns its jobs and the kinds that run them. Training
// (`train` kind) and monitors (`monitor` kind) add theirs here.
var schedulerJobs []func(e *env) ([]scheduler.Job, map[string]scheduler.Factory, error)

// schedulerOptions says how the scheduler of a command is built.
type schedulerOptions struct {
	// online opens the online store for materialize jobs (a CLI process
	// finds the embedded store held by a server: those jobs then fail).
	online bool
	// only restricts the jobs dispatched (a CLI backfill).
	only []string
	// maxConcurrent overrides scheduler.max_concurrent.
	maxConcurrent int
	// clock is the scheduler's time (tests: a fake clock). Default: real.
	clock scheduler.Clock
}

// Scheduler builds the scheduler of the applied catalog's schedules and of
// schedulerJobs. It starts nothing.
func (e *env) Scheduler(so schedulerOptions) (*scheduler.Scheduler, *spec.Features, error) {
	p, err := e.Project()
	if err != nil {
		return nil, nil, err
	}
	db, err := e.Meta()
	if err != nil {
		return nil, nil, err
	}
	l, err := loadCatalog(e)
	if err != nil {
		return nil, nil, err
	}
	eng, err := e.Offline(l.Features)
	if err != nil {
		return nil, nil, err
	}
	js, err := jobs.FromSpec(l.Features, p.Dir, eng)
	if err != nil {
		return nil, nil, err
	}
	deps := jobs.Deps{Meta: db, Engine: eng, CatalogVersion: l.Version}
	if so.online {
		keyTypes, err := retrieval.LoadKeyTypes(e.ctx, db)
		if err != nil {
			return nil, nil, err
		}
		defs, err := retrieval.DefinitionsFromSpec(l.Features, keyTypes)
		if err != nil {
			return nil, nil, err
		}
		store, err := e.Online()
		switch {
		case errors.Is(err, online.ErrInUse):
			e.log.Warn("online store in use by a server: materialize jobs run there, not in this process")
		case err != nil:
			return nil, nil, err
		default:
			deps.Materializer = &retrieval.Materializer{Store: store, Meta: db, Engine: eng, Logger: e.log}
			deps.Sets = defs.Sets
		}
	}
	kinds := jobs.Kinds(deps)
	for _, src := range schedulerJobs {
		more, k, err := src(e)
		if err != nil {
			return nil, nil, err
		}
		js = append(js, more...)
		maps.Copy(kinds, k)
	}
	opts := scheduler.Options{DB: db, Jobs: js, Kinds: kinds, Logger: e.log, Metrics: e.schedulerMetrics(),
		MaxConcurrent: p.Scheduler.MaxConcurrent, Lease: p.Scheduler.Lease, Only: so.only, Clock: so.clock}
	if so.maxConcurrent > 0 {
		opts.MaxConcurrent = so.maxConcurrent
	}
	if opts.Notifier, err = schedulerNotifier(p); err != nil {
		return nil, nil, err
	}
	s, err := scheduler.New(e.ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	return s, l.Features, nil
}

// schedulerMetrics are the process's scheduler metrics (one set, shared by
// the scheduler and the /metrics it is served on).
func (e *env) schedulerMetrics() *scheduler.Metrics {
	if e.schedMetrics == nil {
		e.schedMetrics = scheduler.NewMetrics()
	}
	return e.schedMetrics
}

// schedulerEnabled decides whether `atrium serve` runs the scheduler:
// scheduler.enabled, else whether anything is scheduled (a feature set, a
// training spec, a monitor).
func schedulerEnabled(p *spec.Project, s *scheduler.Scheduler) bool {
	if p.Scheduler.Enabled != nil {
		return *p.Scheduler.Enabled
	}
	for _, name := range s.JobNames() {
		if j, _ := s.Job(name); j.Calendar != nil && !j.Unscheduled {
			return true
		}
	}
	return false
}

// resolveJob maps what a user typed to a job name: the name itself, or a
// feature set's name for its run job.
func resolveJob(s *scheduler.Scheduler, name string) (string, error) {
	if _, ok := s.Job(name); ok {
		return name, nil
	}
	if full := scheduler.JobName(jobs.KindRun, name); name != "" {
		if _, ok := s.Job(full); ok {
			return full, nil
		}
	}
	return "", usagef("unknown job %q: the jobs are %s", name, strings.Join(s.JobNames(), ", "))
}

func newSchedulerCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "scheduler",
		Short: "Run the job scheduler alone (atrium serve runs it too), until interrupted",
		Long: `scheduler runs the feature sets' schedules (schedule:, materialize: in
features/*.yaml) and the jobs other layers schedule: it plans the intervals that
come due, waits for their dependencies and readiness checks, and runs them with
retries, recording every attempt (atrium runs --kind all). Several schedulers,
and servers, may share one metadata database: each interval runs once.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, _, err := e.Scheduler(schedulerOptions{online: true})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "atrium scheduler: %d jobs (%s), as %s\n", len(s.JobNames()), strings.Join(s.JobNames(), ", "), s.Owner())
			return s.Run(e.ctx)
		},
	}
}

func newJobsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List scheduled jobs: schedule, next due, pending, running, failed, what they wait for",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, _, err := e.Scheduler(schedulerOptions{})
			if err != nil {
				return err
			}
			st, err := s.Status(e.ctx)
			if err != nil {
				return err
			}
			if e.output == "json" {
				return encodeJSON(e, st)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tSCHEDULE\tNEXT DUE\tLAST SUCCESS\tPENDING\tRUNNING\tFAILED\tSTATUS")
			for _, j := range st {
				status := j.Waiting
				if j.Paused {
					status = "paused"
				}
				sched := j.Schedule
				if j.Unscheduled {
					sched = "(backfill only)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", j.Name, sched, fmtTime(j.NextDue), fmtTime(j.LastSuccess), j.Pending, j.Running, j.Failed, status)
			}
			return tw.Flush()
		},
	}
	for _, pause := range []bool{true, false} {
		name, short := "resume", "Resume a paused job: it catches up by its catchup policy"
		if pause {
			name, short = "pause", "Pause a job: nothing new of it starts (running attempts finish)"
		}
		cmd.AddCommand(&cobra.Command{
			Use:   name + " JOB",
			Short: short,
			Args:  exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				s, _, err := e.Scheduler(schedulerOptions{})
				if err != nil {
					return err
				}
				job, err := resolveJob(s, args[0])
				if err != nil {
					return err
				}
				if pause {
					err = s.Pause(e.ctx, job)
				} else {
					err = s.Resume(e.ctx, job)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s %sd\n", job, name)
				return nil
			},
		})
	}
	return cmd
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// queueFlags are trigger's and backfill's flags.
type queueFlags struct {
	start, end string
	parallel   int
	noWait     bool
}

func (q *queueFlags) add(cmd *cobra.Command, backfill bool) {
	f := cmd.Flags()
	what := "first UTC day (2026-12-01) or time"
	f.StringVar(&q.start, "start", "", what)
	f.StringVar(&q.end, "end", "", "last UTC day, included (2026-12-04), or time (excluded)")
	if backfill {
		f.IntVar(&q.parallel, "parallel", 4, "run this many intervals at once")
	}
	f.BoolVar(&q.noWait, "no-wait", false, "only queue the intervals: a running server's scheduler runs them")
}

// rangeOf parses --start/--end: days include the end day, times do not.
func (q *queueFlags) rangeOf() (time.Time, time.Time, error) {
	now := time.Now()
	s, err := spec.ParseTime(q.start, now)
	if err != nil {
		return s, s, usagef("--start: %v", err)
	}
	en, err := spec.ParseTime(q.end, now)
	if err != nil {
		return s, s, usagef("--end: %v", err)
	}
	if len(strings.TrimSpace(q.end)) == len(time.DateOnly) {
		en = en.AddDate(0, 0, 1) // a day: include it
	}
	if !en.After(s) {
		return s, s, usagef("--end %s is before --start %s", q.end, q.start)
	}
	return s, en, nil
}

func newTriggerCmd(e *env) *cobra.Command {
	var q queueFlags
	cmd := &cobra.Command{
		Use:   "trigger JOB [--start T --end T]",
		Short: "Run a job now: its latest closed interval, or those of --start..--end",
		Long: `trigger queues a job's intervals with trigger "manual" and runs them in this
process (or, with --no-wait, leaves them to a running server's scheduler). An
interval that already ran runs again; one running now is left alone. JOB is a
job name (run:SET, materialize:SET, ...) or a feature set's name for its run.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return queueAndRun(e, args[0], q, scheduler.TriggerManual)
		},
	}
	q.add(cmd, false)
	return cmd
}

func newBackfillCmd(e *env) *cobra.Command {
	var q queueFlags
	cmd := &cobra.Command{
		Use:   "backfill SET --start DAY --end DAY [--parallel 4]",
		Short: "Run a feature set for every interval of a range, several at once, each once",
		Long: `backfill queues every interval of SET's schedule (a UTC day for a set without
one) between --start and --end with trigger "backfill", and runs them, --parallel
at a time, in this process (or, with --no-wait, in a running server's
scheduler). Leases keep a server and this command from running an interval
twice. A range where the set's source holds no data is refused, nothing started.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if q.start == "" || q.end == "" {
				return usagef("--start and --end are required (days, e.g. --start 2026-12-01 --end 2026-12-04)")
			}
			if q.parallel < 1 || q.parallel > 1000 {
				return usagef("--parallel %d: expected 1 to 1000", q.parallel)
			}
			return queueAndRun(e, args[0], q, scheduler.TriggerBackfill)
		},
	}
	q.add(cmd, true)
	return cmd
}

// queueAndRun queues a job's intervals and, unless --no-wait, runs a
// scheduler of this job in this process until every one of them is done.
func queueAndRun(e *env, name string, q queueFlags, trigger string) error {
	probe, feats, err := e.Scheduler(schedulerOptions{})
	if err != nil {
		return err
	}
	job, err := resolveJob(probe, name)
	if err != nil {
		return err
	}
	j, _ := probe.Job(job)
	if trigger == scheduler.TriggerBackfill && j.Kind != jobs.KindRun {
		return usagef("backfill runs feature sets: %s is a %s job, expected a feature set (or use atrium trigger)", job, j.Kind)
	}
	var ivs []scheduler.Interval
	switch {
	case q.start == "" && q.end == "":
		if j.Calendar == nil {
			return usagef("%s has no schedule: give --start and --end", job)
		}
		iv, ok := j.Calendar.LastClosed(time.Now())
		if !ok {
			return fmt.Errorf("%s has no closed interval yet", job)
		}
		ivs = []scheduler.Interval{iv}
	case q.start == "" || q.end == "":
		return usagef("--start and --end go together")
	default:
		s, en, err := q.rangeOf()
		if err != nil {
			return err
		}
		if j.Kind == jobs.KindRun {
			eng, err := e.Offline(feats)
			if err != nil {
				return err
			}
			if err := jobs.CheckRange(e.ctx, feats, eng, j.Target, s, en); err != nil {
				return err
			}
		}
		if ivs, err = probe.Intervals(job, s, en); err != nil {
			return err
		}
	}
	res, err := probe.Trigger(e.ctx, job, ivs, trigger, q.parallel)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "%s: queued %d interval(s) (%s .. %s), %d already running\n", job, res.QueuedN, res.FirstDay, res.LastDay, res.RunningN)
	if q.noWait {
		return nil
	}
	s, _, err := e.Scheduler(schedulerOptions{online: j.Kind == jobs.KindMaterialize, only: []string{job}, maxConcurrent: max(q.parallel, 1)})
	if err != nil {
		return err
	}
	for {
		if _, err := s.Tick(e.ctx); err != nil {
			return err
		}
		s.Wait()
		states, err := s.States(e.ctx, job, ivs)
		if err != nil {
			return err
		}
		if scheduler.Done(states) {
			break
		}
		select {
		case <-e.ctx.Done():
			return e.ctx.Err()
		case <-time.After(time.Second): // retries' backoff, or another process's attempts
		}
	}
	db, err := e.Meta()
	if err != nil {
		return err
	}
	runs, err := scheduler.ListRuns(e.ctx, db, scheduler.RunFilter{Job: job, Trigger: trigger, Since: res.At, Ascending: true, Limit: 10000})
	if err != nil {
		return err
	}
	if err := writeJobRuns(e, runs); err != nil {
		return err
	}
	var failed []string
	for _, r := range runs {
		if r.State == scheduler.StateFailed || r.State == scheduler.StateChecksFailed || r.State == scheduler.StateTimedOut {
			failed = append(failed, r.Interval().String())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s: %d interval(s) failed: %s", job, len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// writeJobRuns prints job runs as a table (or JSON).
func encodeJSON(e *env, v any) error { return json.NewEncoder(e.stdout).Encode(v) }

func writeJobRuns(e *env, runs []scheduler.Run) error {
	if e.output == "json" {
		if runs == nil {
			runs = []scheduler.Run{}
		}
		return encodeJSON(e, runs)
	}
	return scheduler.WriteRunsTable(e.stdout, runs)
}

// serveScheduler builds the scheduler `atrium serve` hosts and its HTTP
// API (nil without applied feature definitions); run says whether serve
// runs its loop (scheduler.enabled, or anything scheduled).
func serveScheduler(e *env, p *spec.Project) (*scheduler.Scheduler, *scheduler.API, bool, error) {
	s, feats, err := e.Scheduler(schedulerOptions{online: true})
	if errors.Is(err, catalog.ErrNotApplied) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	api := scheduler.NewAPI(s)
	eng, err := e.Offline(feats)
	if err != nil {
		return nil, nil, false, err
	}
	api.Check = func(r *http.Request, job string, start, end time.Time) error {
		j, _ := s.Job(job)
		if j.Kind != jobs.KindRun {
			return nil
		}
		return jobs.CheckRange(r.Context(), feats, eng, j.Target, start, end)
	}
	run := schedulerEnabled(p, s)
	for _, name := range s.JobNames() {
		if j, _ := s.Job(name); !run && j.Kind == monitorjob.Kind {
			e.log.Warn("scheduler.enabled is false: monitors with a schedule are evaluated only where a scheduler runs (atrium scheduler)", "job", name)
		}
	}
	return s, api, run, nil
}

// schedulerNotifier is where the scheduler's alerts go: the monitors'
// notifier named by scheduler.notifier, or scheduler.alert_webhook, through
// the monitoring layer's webhook (retries, JSON or Slack); nil for none.
func schedulerNotifier(p *spec.Project) (scheduler.Notifier, error) {
	c := p.Scheduler
	switch {
	case c.Notifier != "":
		ms, err := spec.LoadMonitors(p.Dir)
		if err != nil {
			return nil, err
		}
		n := ms.Notifier(c.Notifier)
		if n == nil {
			return nil, fmt.Errorf("scheduler.notifier: %q is not a notifier of monitors/*.yaml", c.Notifier)
		}
		w, err := alert.NewWebhook(n)
		if err != nil {
			return nil, fmt.Errorf("scheduler.notifier: %w", err)
		}
		return schedulerAlerts{w}, nil
	case c.AlertWebhook != "":
		return schedulerAlerts{&alert.Webhook{Name: "scheduler", URL: c.AlertWebhook, Format: spec.NotifyJSON}}, nil
	}
	return nil, nil
}

// schedulerAlerts delivers the scheduler's alerts as the monitoring layer's
// notifications: rule "job JOB", critical for a failed check (everything
// downstream waits), warning for a job that failed its retries.
type schedulerAlerts struct{ n alert.Notifier }

func (a schedulerAlerts) Notify(ctx context.Context, al scheduler.Alert) error {
	sev := spec.SeverityWarning
	if al.State == scheduler.StateChecksFailed {
		sev = spec.SeverityCritical
	}
	return a.n.Notify(ctx, alert.Notification{Rule: "job " + al.Job, Severity: sev, State: alert.StateFiring, Summary: al.Summary,
		Value: float64(al.Attempt), Labels: map[string]string{"job": al.Job, "kind": al.Kind, "interval": al.Interval.String(), "state": al.State,
			"error": al.Error}, At: al.At})
}
