package jobs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/spec"
)

func setup(t *testing.T) (string, *spec.Features, offline.Engine) {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", "features.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := spec.ParseFeatures("features.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	// Day 2024-01-01 has 3 events, 2024-01-02 has 2, 2024-01-03 none.
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"events-2024-01-01.csv": "listing_id,clicks,ts\n1,1,2024-01-01 01:00:00\n2,1,2024-01-01 02:00:00\n1,2,2024-01-01 23:59:59\n",
		"events-2024-01-02.csv": "listing_id,clicks,ts\n1,1,2024-01-02 01:00:00\n2,1,2024-01-02 02:00:00\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, "data", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := duckdb.Open(context.Background(), t.TempDir(), offline.Options{Features: f, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return dir, f, eng
}

func TestFromSpec(t *testing.T) {
	dir, f, eng := setup(t)
	js, err := FromSpec(f, dir, eng)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]scheduler.Job{}
	var names []string
	for _, j := range js {
		byName[j.Name] = j
		names = append(names, j.Name)
	}
	if got := strings.Join(names, " "); got != "run:profile run:engagement materialize:engagement run:unscheduled materialize:unscheduled" {
		t.Fatalf("jobs = %s", got)
	}
	e := byName["run:engagement"]
	if e.Catchup != scheduler.CatchupLatest || e.Retries != 4 || e.Concurrency != 2 || e.Schedule != "0 3 * * * Europe/Berlin +1h" ||
		len(e.DependsOn) != 1 || e.DependsOn[0] != "run:profile" || e.Ready == nil || e.Calendar.Delay() != time.Hour {
		t.Errorf("run:engagement = %+v", e)
	}
	if m := byName["materialize:engagement"]; m.Kind != KindMaterialize || len(m.DependsOn) != 1 || m.DependsOn[0] != "run:engagement" || m.Ready != nil {
		t.Errorf("materialize:engagement = %+v", m)
	}
	if u := byName["run:unscheduled"]; !u.Unscheduled || u.Calendar == nil {
		t.Errorf("run:unscheduled = %+v", u)
	}
	if m := byName["materialize:unscheduled"]; m.Unscheduled || m.Schedule != "hourly" || len(m.DependsOn) != 0 {
		t.Errorf("materialize:unscheduled = %+v", m)
	}
	if !Scheduled(f) {
		t.Error("Scheduled = false")
	}
}

// The source's readiness: the day's file must exist and hold min_rows rows
// in the period (counted by DuckDB).
func TestReadiness(t *testing.T) {
	dir, f, eng := setup(t)
	js, err := FromSpec(f, dir, eng)
	if err != nil {
		t.Fatal(err)
	}
	ready := js[0].Ready
	day := func(d int) scheduler.Interval {
		s := time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC)
		return scheduler.Interval{Start: s, End: s.AddDate(0, 0, 1)}
	}
	for _, tt := range []struct {
		day  int
		ok   bool
		want string
	}{
		{1, true, ""},
		{2, false, "source events holds 2 rows in 2024-01-02, ready at 3"},
		{3, false, "source events: no file matches " + filepath.Join(dir, "data", "events-2024-01-03.csv")},
	} {
		ok, why, err := ready(context.Background(), day(tt.day))
		if err != nil || ok != tt.ok || why != tt.want {
			t.Errorf("day %d: ready %v %q %v, want %v %q", tt.day, ok, why, err, tt.ok, tt.want)
		}
	}
}

func TestCheckRange(t *testing.T) {
	_, f, eng := setup(t)
	ctx := context.Background()
	jan := func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }
	if err := CheckRange(ctx, f, eng, "profile", jan(2), jan(3)); err != nil {
		t.Errorf("a range with data: %v", err)
	}
	// engagement reads 7 days before its start: 2024-01-08 still sees data.
	if err := CheckRange(ctx, f, eng, "engagement", jan(8), jan(9)); err != nil {
		t.Errorf("a range whose window has data: %v", err)
	}
	err := CheckRange(ctx, f, eng, "profile", jan(5), jan(9))
	if !errors.Is(err, scheduler.ErrBadRequest) || !strings.Contains(err.Error(), "source events (data/events-*.csv) holds no row with ts in [2024-01-05T00:00:00Z, 2024-01-09T00:00:00Z)") {
		t.Errorf("a range without data: %v", err)
	}
	if err := CheckRange(ctx, f, eng, "nope", jan(1), jan(2)); !errors.Is(err, scheduler.ErrUnknownJob) {
		t.Errorf("unknown set: %v", err)
	}
}

func TestDays(t *testing.T) {
	berlin := time.FixedZone("CEST", 2*3600)
	iv := scheduler.Interval{Start: time.Date(2024, 6, 2, 0, 0, 0, 0, berlin), End: time.Date(2024, 6, 3, 0, 0, 0, 0, berlin)}
	first, last := Days(iv)
	if first != time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) || last != time.Date(2024, 6, 2, 0, 0, 0, 0, time.UTC) {
		t.Errorf("a Berlin day touches UTC days %s..%s", first, last)
	}
}
