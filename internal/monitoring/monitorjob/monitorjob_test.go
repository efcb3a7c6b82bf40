package monitorjob

import (
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/spec"
)

// A model monitor's period is due no earlier than the prediction log's
// flush interval after it closes; a longer delay stands; a feature-set
// monitor has no such wait; a monitor without a schedule is no job.
func TestJobs(t *testing.T) {
	const flush = 10 * time.Second
	for _, c := range []struct {
		name, monitor string
		// delay is the job's calendar delay; job false: no job.
		job   bool
		delay time.Duration
	}{
		{"model, hourly", "measure: volume\n    model: ranker\n    schedule: hourly", true, flush},
		{"model, longer delay", "measure: feature_drift_share\n    model: ranker\n    schedule: {cron: hourly, delay: 5m}", true, 5 * time.Minute},
		{"feature set", "measure: failed_runs\n    feature_set: listings\n    schedule: daily", true, 0},
		{"no schedule", "measure: volume\n    model: ranker", false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			ms, err := spec.ParseMonitors("m.yaml", []byte("monitors:\n  - name: m\n    threshold: 1\n    "+c.monitor+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			js, err := Jobs(ms, flush)
			if err != nil {
				t.Fatal(err)
			}
			if !c.job {
				if len(js) != 0 {
					t.Errorf("jobs = %+v, want none", js)
				}
				return
			}
			if len(js) != 1 || js[0].Name != "monitor:m" || js[0].Kind != Kind || js[0].Calendar.Delay() != c.delay {
				t.Fatalf("jobs = %+v, want monitor:m with delay %s", js, c.delay)
			}
			// The schedule as written is left alone.
			if ms.Monitors[0].Schedule.Delay.D() == flush && c.delay == flush {
				t.Error("the monitor's schedule was changed")
			}
		})
	}
}
