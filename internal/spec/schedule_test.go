package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestScheduleAccepted(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "schedule", "valid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFeatures("valid.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Set("profile")
	if p.Schedule == nil || p.Schedule.Cron != "daily" || p.Schedule.EffectiveRetries() != DefaultRetries ||
		p.Schedule.EffectiveCatchup() != CatchupAll || p.Schedule.EffectiveConcurrency() != 1 {
		t.Errorf("profile schedule = %+v", p.Schedule)
	}
	if p.Materialize == nil || !p.Materialize.AfterRun {
		t.Errorf("profile materialize = %+v", p.Materialize)
	}
	e := f.Set("engagement").Schedule
	if e.Timezone != "Europe/Berlin" || e.Delay.D() != 2*time.Hour || e.Catchup != CatchupLatest || e.EffectiveRetries() != 5 ||
		e.Timeout.D() != time.Hour || e.Concurrency != 4 || len(e.DependsOn) != 1 || e.DependsOn[0] != "profile" {
		t.Errorf("engagement schedule = %+v", e)
	}
	c, err := e.Calendar()
	if err != nil {
		t.Fatal(err)
	}
	// 03:00 in Berlin in summer is 01:00 UTC; the run is due 2h later.
	iv, ok := c.LastClosed(time.Date(2026, 6, 3, 3, 0, 0, 0, time.UTC))
	if !ok || !iv.End.Equal(time.Date(2026, 6, 3, 1, 0, 0, 0, time.UTC)) || !iv.Start.Equal(time.Date(2026, 6, 2, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("last closed = %v", iv)
	}
	if m := f.Set("engagement").Materialize; m == nil || m.Schedule == nil || m.Schedule.Cron != "*/15 * * * *" {
		t.Errorf("engagement materialize = %+v", m)
	}
	if r := f.Source("events").Ready; r == nil || r.MinRows != 100 || r.ExpandGlob(time.Date(2026, 6, 3, 4, 0, 0, 0, time.UTC)) != "data/events-2026-06-03.csv" {
		t.Errorf("ready = %+v", r)
	}
	// The catalog stores the definitions as JSON: the schedule survives.
	js, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeFeaturesJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	if b := back.Set("engagement").Schedule; b.Timezone != "Europe/Berlin" || b.EffectiveRetries() != 5 || b.Delay.D() != 2*time.Hour {
		t.Errorf("schedule after JSON = %+v", b)
	}
}

// Every schedule problem is reported at once, with its line: bad cron,
// unknown zone, cycles, unknown and unscheduled dependencies.
func TestScheduleProblems(t *testing.T) {
	path := filepath.Join("testdata", "schedule", "invalid.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseFeatures("invalid.yaml", data)
	if err == nil {
		t.Fatal("invalid schedules accepted")
	}
	checkGolden(t, filepath.Join("testdata", "schedule", "invalid.golden"), err.Error()+"\n")
}
