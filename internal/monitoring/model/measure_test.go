package model

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/spec"
)

func TestMeasureFeatureSets(t *testing.T) {
	db := metatest.SQLite(t, pipeline.Schema)
	ctx := context.Background()
	for _, r := range []struct {
		id, status, checks string
		ago                time.Duration
	}{
		{"r1", pipeline.StatusSucceeded, `[{"check": "rent: not_null", "level": "warn", "passed": false}, {"check": "row_count", "level": "error", "passed": true}]`, time.Hour},
		{"r2", pipeline.StatusChecksFailed, `[{"check": "rent: between", "level": "error", "passed": false}]`, 2 * time.Hour},
		{"r3", pipeline.StatusFailed, `[]`, 48 * time.Hour},
	} {
		if _, err := db.Exec(ctx, `INSERT INTO pipeline_runs (id, set_name, start_date, end_date, status, started_at, checks, catalog_version)
			VALUES (?, 'listing_profile', '2026-12-01', '2026-12-01', ?, ?, ?, 1)`, r.id, r.status, now.Add(-r.ago).UnixMilli(), r.checks); err != nil {
			t.Fatal(err)
		}
	}
	ms := &Measurer{Runs: db}
	for _, c := range []struct {
		measure spec.Measure
		set     string
		window  time.Duration
		value   float64 // NaN: no data
		err     string
	}{
		{spec.MeasureCheckFailures, "listing_profile", 24 * time.Hour, 2, ""},
		{spec.MeasureFailedRuns, "listing_profile", 24 * time.Hour, 1, ""},
		{spec.MeasureFailedRuns, "listing_profile", 72 * time.Hour, 2, ""},
		{spec.MeasureFailedRuns, "listing_profile", 30 * time.Minute, math.NaN(), ""},
		{spec.MeasureCheckFailures, "listings", 24 * time.Hour, 0, `feature set "listings" has no pipeline run`},
	} {
		m := &spec.Monitor{Name: "m", Measure: c.measure, FeatureSet: c.set, Window: spec.Duration(c.window)}
		got, err := ms.Measure(ctx, m, now)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s %s: err = %v, want %q", c.measure, c.set, err, c.err)
			}
		case err != nil:
			t.Errorf("%s %s %s: %v", c.measure, c.set, c.window, err)
		case math.IsNaN(c.value) != got.NoData, !got.NoData && got.Value != c.value:
			t.Errorf("%s %s %s = %+v, want %g", c.measure, c.set, c.window, got, c.value)
		}
	}
}
