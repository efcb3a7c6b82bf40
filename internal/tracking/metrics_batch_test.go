package tracking_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/atrium-ml/atrium/internal/tracking"
)

// pointString spells a stored metric point for comparison; NaN compares equal
// to itself this way.
func pointString(m tracking.Metric) string {
	return fmt.Sprintf("step=%d ts=%d v=%s", m.Step, m.Timestamp, strconv.FormatFloat(float64(m.Value), 'g', -1, 64))
}

// TestLogBatchMetricSemantics checks what insertMetrics stores on both engines
// (they take different statements: multi-row VALUES on SQLite, unnest arrays on
// PostgreSQL): duplicates stored once, NaN and +/-Inf, latest_metrics moving
// only forward by (step, timestamp, value), batches over one SQLite statement.
func TestLogBatchMetricSemantics(t *testing.T) {
	const maxF = math.MaxFloat64
	many := make([]tracking.Metric, 0, 1000)
	for i := range 600 {
		many = append(many, metric(fmt.Sprintf("k%03d", i), float64(i), 1, 0))
	}
	for i := range 400 {
		many = append(many, metric(fmt.Sprintf("k%03d", i), float64(-i), 2, 1))
	}
	for _, tc := range []struct {
		name    string
		batches [][]tracking.Metric
		history map[string][]string // key -> points in step, timestamp, value order
		latest  map[string]string   // every key of the run's latest metrics
	}{{
		name: "duplicates inside a batch and across batches are stored once",
		batches: [][]tracking.Metric{
			{metric("a", 1, 10, 0), metric("a", 1, 10, 0), metric("a", 2, 10, 0)},
			{metric("a", 1, 10, 0)},
		},
		history: map[string][]string{"a": {"step=0 ts=10 v=1", "step=0 ts=10 v=2"}},
		latest:  map[string]string{"a": "step=0 ts=10 v=2"},
	}, {
		name:    "NaN and infinities",
		batches: [][]tracking.Metric{{metric("nan", math.NaN(), 1, 0), metric("pinf", math.Inf(1), 1, 0), metric("ninf", math.Inf(-1), 1, 0)}},
		history: map[string][]string{
			"nan":  {"step=0 ts=1 v=NaN"},
			"pinf": {"step=0 ts=1 v=" + strconv.FormatFloat(maxF, 'g', -1, 64)},
			"ninf": {"step=0 ts=1 v=" + strconv.FormatFloat(-maxF, 'g', -1, 64)},
		},
		latest: map[string]string{
			"nan":  "step=0 ts=1 v=NaN",
			"pinf": "step=0 ts=1 v=" + strconv.FormatFloat(maxF, 'g', -1, 64),
			"ninf": "step=0 ts=1 v=" + strconv.FormatFloat(-maxF, 'g', -1, 64),
		},
	}, {
		name:    "newer point before an older one in the same batch",
		batches: [][]tracking.Metric{{metric("k", 1, 10, 5), metric("k", 9, 20, 3), metric("k", 0, 10, 5)}},
		history: map[string][]string{"k": {"step=3 ts=20 v=9", "step=5 ts=10 v=0", "step=5 ts=10 v=1"}},
		latest:  map[string]string{"k": "step=5 ts=10 v=1"},
	}, {
		name: "a later batch moves latest forward only",
		batches: [][]tracking.Metric{
			{metric("k", 1, 10, 5)},
			{metric("k", 7, 99, 4)},  // older step, later timestamp: stays
			{metric("k", 0, 10, 5)},  // same step and time, lower value: stays
			{metric("k", 3, 10, 5)},  // same step and time, higher value: moves
			{metric("k", -1, 11, 5)}, // same step, later timestamp: moves
			{metric("k", 8, 10, 5)},  // same step, earlier timestamp: stays
		},
		history: map[string][]string{"k": {"step=4 ts=99 v=7", "step=5 ts=10 v=0", "step=5 ts=10 v=1", "step=5 ts=10 v=3", "step=5 ts=10 v=8", "step=5 ts=11 v=-1"}},
		latest:  map[string]string{"k": "step=5 ts=11 v=-1"},
	}, {
		name:    "a NaN point is newer than a negative one at the same step and time",
		batches: [][]tracking.Metric{{metric("k", -1, 10, 5)}, {metric("k", math.NaN(), 10, 5)}},
		history: map[string][]string{"k": {"step=5 ts=10 v=-1", "step=5 ts=10 v=NaN"}},
		latest:  map[string]string{"k": "step=5 ts=10 v=NaN"},
	}, {
		name:    "1000 points of 600 keys",
		batches: [][]tracking.Metric{many},
		history: map[string][]string{
			"k000": {"step=0 ts=1 v=0", "step=1 ts=2 v=0"},
			"k399": {"step=0 ts=1 v=399", "step=1 ts=2 v=-399"},
			"k599": {"step=0 ts=1 v=599"},
		},
		latest: func() map[string]string {
			out := map[string]string{}
			for i := range 600 {
				out[fmt.Sprintf("k%03d", i)] = fmt.Sprintf("step=0 ts=1 v=%d", i)
				if i < 400 {
					out[fmt.Sprintf("k%03d", i)] = fmt.Sprintf("step=1 ts=2 v=%d", -i)
				}
			}
			return out
		}(),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, s *tracking.Store) {
				ctx := context.Background()
				id := mustRun(t, s, "0").Info.RunID
				for i, b := range tc.batches {
					if err := s.LogBatch(ctx, id, b, nil, nil); err != nil {
						t.Fatalf("batch %d: %v", i, err)
					}
				}
				for key, want := range tc.history {
					got, _, err := s.GetMetricHistory(ctx, id, key, nil, "")
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != len(want) {
						t.Fatalf("history of %s: %d points, want %d: %v", key, len(got), len(want), got)
					}
					for i, m := range got {
						if pointString(m) != want[i] {
							t.Errorf("history of %s[%d] = %s, want %s", key, i, pointString(m), want[i])
						}
					}
				}
				r, err := s.GetRun(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Data.Metrics) != len(tc.latest) {
					t.Fatalf("%d latest metrics, want %d", len(r.Data.Metrics), len(tc.latest))
				}
				for _, m := range r.Data.Metrics {
					if want, ok := tc.latest[m.Key]; !ok || pointString(m) != want {
						t.Errorf("latest %s = %s, want %q", m.Key, pointString(m), want)
					}
				}
			})
		})
	}
}
