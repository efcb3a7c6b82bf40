package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/atrium-ml/atrium/internal/data/jobs"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/spec"
)

// scheduleDays is how many of the data's last days the schedule step lets
// the scheduler run: enough to show a day after day, not to run the whole
// range again.
const scheduleDays = 3

// schedule declares a daily schedule on every feature set (each aggregated
// set waiting for its entity's profile of the same day, each materialized
// after its run) and runs the scheduler on a simulated clock over the
// data's last days, a tick at each midnight, then prints the job history as
// `atrium runs --kind all` does. The real clock is never waited on.
func (r *runner) schedule(ctx context.Context) error {
	db, l, eng, err := r.applied(ctx)
	if err != nil {
		return err
	}
	feats, err := withDailySchedules(l.Features)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "      declared (in features/*.yaml they read):\n")
	for _, fs := range feats.FeatureSets {
		dep := ""
		if len(fs.Schedule.DependsOn) > 0 {
			dep = fmt.Sprintf(", depends_on: [%s]", fs.Schedule.DependsOn[0])
		}
		fmt.Fprintf(r.Out, "        %-19s schedule: {cron: daily%s}  materialize: after_run\n", fs.Name+":", dep)
	}
	p, err := r.Stores.Project()
	if err != nil {
		return err
	}
	js, err := jobs.FromSpec(feats, p.Dir, eng)
	if err != nil {
		return err
	}
	deps := jobs.Deps{Meta: db, Engine: eng, CatalogVersion: l.Version}
	if store, err := r.Stores.Online(); err == nil {
		_, defs, err := loadDefinitions(ctx, r.Stores)
		if err != nil {
			return err
		}
		deps.Materializer = &retrieval.Materializer{Store: store, Meta: db, Engine: eng, Logger: r.Logger}
		deps.Sets = defs.Sets
	}
	end := r.Config.End()
	first := end.AddDate(0, 0, -scheduleDays)
	// The clock starts an hour after the first simulated midnight: the
	// scheduler, seeing its jobs for the first time, runs the day that
	// just closed; each later midnight brings the next day.
	clock := scheduler.NewFakeClock(first.Add(time.Hour))
	s, err := scheduler.New(ctx, scheduler.Options{DB: db, Jobs: js, Kinds: jobs.Kinds(deps), Clock: clock, Logger: r.Logger, MaxConcurrent: 2})
	if err != nil {
		return err
	}
	r.command("scheduler", " # simulated: midnight "+first.AddDate(0, 0, -1).Format(time.DateOnly)+" .. "+end.Format(time.DateOnly)+" on a fake clock")
	since := clock.Now()
	for {
		for range 20 { // until nothing more starts this day (dependencies unblock in turn)
			if _, err := s.Tick(ctx); err != nil {
				return err
			}
			s.Wait()
		}
		if !clock.Now().Before(end) {
			break
		}
		clock.Advance(24 * time.Hour)
	}
	runs, err := scheduler.ListRuns(ctx, db, scheduler.RunFilter{Since: since, Ascending: true, Limit: 1000})
	if err != nil {
		return err
	}
	r.command("runs", "--kind", "all", "--since", first.Format(time.DateOnly))
	w := r.indented()
	defer w.Flush()
	if err := scheduler.WriteRunsTable(w, runs); err != nil {
		return err
	}
	for _, run := range runs {
		if run.State != scheduler.StateSucceeded {
			return fmt.Errorf("scheduled %s for %s: %s: %s", run.Job, run.Interval(), run.State, run.Error)
		}
	}
	return nil
}

// withDailySchedules returns a copy of f with a daily schedule on every
// feature set: an aggregated set waits for the plain set of its entity.
func withDailySchedules(f *spec.Features) (*spec.Features, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	out, err := spec.DecodeFeaturesJSON(b)
	if err != nil {
		return nil, err
	}
	plain := map[string]string{}
	for _, fs := range out.FeatureSets {
		if !fs.Aggregated() {
			plain[fs.Entity] = fs.Name
		}
	}
	for _, fs := range out.FeatureSets {
		fs.Schedule = &spec.Schedule{Cron: "daily"}
		if p, ok := plain[fs.Entity]; ok && fs.Aggregated() {
			fs.Schedule.DependsOn = []string{p}
		}
		fs.Materialize = &spec.Materialize{AfterRun: true}
	}
	return out, nil
}
