package spec

import (
	"strings"
	"testing"
	"time"
)

// TestJobSchedules checks schedule: on training specs and monitors: the
// feature sets' grammar, every problem at its line, no depends_on.
func TestJobSchedules(t *testing.T) {
	const trainHead = "name: ranker\nfeatures: {service: ranker}\nspine: {path: s.csv, timestamp: ts, label: y}\nsplit: {by: random, valid: 0.2, test: 0.2}\nmodel: {objective: binary}\n"
	const monHead = "monitors:\n  - name: drift\n    measure: feature_drift_share\n    model: ranker\n    threshold: 0.3\n"
	for _, c := range []struct {
		name    string
		monitor bool
		src     string
		// want is the problems, one per line; "" when the file is valid.
		want []string
		// cron, delay and tz are the parsed schedule's, when valid.
		cron, tz string
		delay    time.Duration
	}{
		{name: "training weekly", src: trainHead + "schedule: weekly\n", cron: "weekly"},
		{name: "training cron in a zone", src: trainHead + "schedule: {cron: \"0 4 * * 1\", timezone: Europe/Berlin, delay: 2h, retries: 0}\n",
			cron: "0 4 * * 1", tz: "Europe/Berlin", delay: 2 * time.Hour},
		{name: "training bad cron", src: trainHead + "schedule: {cron: \"0 4 * *\"}\n",
			want: []string{`f.yaml:6: schedule: bad schedule: "0 4 * *": expected exactly 5 fields`}},
		{name: "training bad zone and catchup", src: trainHead + "schedule:\n  cron: daily\n  timezone: Mars/Olympus\n  catchup: some\n",
			want: []string{`f.yaml:8: schedule: bad schedule: time zone "Mars/Olympus"`, `f.yaml:9: schedule catchup: "some", expected all or latest`}},
		{name: "training depends_on", src: trainHead + "schedule: {cron: daily, depends_on: [listing_profile]}\n",
			want: []string{"f.yaml:6: schedule depends_on: not allowed here (a training waits for the scheduled feature sets it reads)"}},
		{name: "training no cron", src: trainHead + "schedule: {delay: 1h}\n",
			want: []string{"f.yaml:6: schedule: no cron, expected cron: daily"}},
		{name: "monitor hourly", monitor: true, src: monHead + "    schedule: hourly\n", cron: "hourly"},
		{name: "monitor with delay", monitor: true, src: monHead + "    schedule: {cron: \"*/15 * * * *\", delay: 1m}\n", cron: "*/15 * * * *", delay: time.Minute},
		{name: "monitor bad cron", monitor: true, src: monHead + "    schedule: every hour\n",
			want: []string{`f.yaml:6: monitor "drift" schedule: bad schedule: "every hour"`}},
		{name: "monitor bad retries and depends_on", monitor: true, src: monHead + "    schedule:\n      cron: hourly\n      retries: -1\n      depends_on: [x]\n",
			want: []string{"f.yaml:8: monitor schedule retries: -1, expected a whole number from 0 to 100",
				`f.yaml:9: monitor "drift" schedule depends_on: not allowed here`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s *Schedule
			var err error
			if c.monitor {
				var ms *Monitors
				if ms, err = ParseMonitors("f.yaml", []byte(c.src)); err == nil {
					s = ms.Monitors[0].Schedule
				}
			} else {
				var tr *Training
				if tr, err = ParseTraining("f.yaml", []byte(c.src)); err == nil {
					s = tr.Schedule
				}
			}
			if len(c.want) > 0 {
				if err == nil {
					t.Fatalf("accepted, want %q", c.want)
				}
				for _, w := range c.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("problems lack %q:\n%v", w, err)
					}
				}
				if n := strings.Count(err.Error(), "\n") + 1; n != len(c.want) {
					t.Errorf("%d problems, want %d:\n%v", n, len(c.want), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s == nil || s.Cron != c.cron || s.Timezone != c.tz || s.Delay.D() != c.delay {
				t.Fatalf("schedule = %+v, want %s %s +%s", s, c.cron, c.tz, c.delay)
			}
			if _, err := s.Calendar(); err != nil {
				t.Errorf("calendar: %v", err)
			}
		})
	}
}
