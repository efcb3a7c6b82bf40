package quality_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/atrium-ml/atrium/internal/data/quality"
	"github.com/atrium-ml/atrium/internal/spec"
)

func TestRun(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE out AS SELECT * FROM (VALUES
		(1, TIMESTAMP '2024-01-01 00:00:00', 10.0, 'a'),
		(1, TIMESTAMP '2024-01-02 00:00:00', NULL, 'b'),
		(2, TIMESTAMP '2024-01-02 00:00:00', 30.0, 'b'),
		(2, TIMESTAMP '2024-01-02 00:00:00', 40.0, 'z')) t(id, "timestamp", x, s)`); err != nil {
		t.Fatal(err)
	}
	f, err := spec.ParseFeatures("f.yaml", []byte(`entities: [{name: e, join_keys: [id]}]
sources: [{name: src, format: csv, path: x.csv, timestamp: ts}]
feature_sets:
  - name: fs
    entity: e
    source: src
    checks:
      - unique
      - {row_count: {min: 5}}
      - {row_count: {max: 4}, level: warn}
      - {freshness: 1d}
      - {freshness: 12h, level: warn}
    features:
      - name: x
        type: float64
        expr: x
        checks: [not_null, {not_null: true, mostly: 0.75}, {between: [0, 35]}, {between: [null, 100]}, unique]
      - name: s
        type: string
        expr: s
        checks: [{in_set: [a, b], mostly: 0.7, level: warn}, {in_set: [a, b, z]}, unique]
`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := quality.Run(context.Background(), db, quality.Target{Set: f.Set("fs"), Keys: []string{"id"}, Relation: "out",
		AsOf: time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		check         string
		total, failed int64
		passed        bool
		level         string
	}{
		{"unique (id, timestamp)", 4, 1, false, "error"},
		{"row_count [5, null]", 4, 1, false, "error"},
		{"row_count [null, 4]", 4, 0, true, "warn"},
		{"freshness 1d", 4, 0, true, "error"},
		{"freshness 12h", 4, 1, false, "warn"},
		{"x: not_null", 4, 1, false, "error"},
		{"x: not_null mostly 0.75", 4, 1, true, "error"},
		{"x: between [0, 35]", 3, 1, false, "error"},
		{"x: between [null, 100]", 3, 0, true, "error"},
		{"x: unique", 3, 0, true, "error"},
		{"s: in_set [a b] mostly 0.7", 4, 1, true, "warn"},
		{"s: in_set [a b z]", 4, 0, true, "error"},
		{"s: unique", 4, 1, false, "error"},
	}
	if len(res) != len(want) {
		t.Fatalf("got %d results, want %d: %+v", len(res), len(want), res)
	}
	for i, w := range want {
		r := res[i]
		if r.Check != w.check || r.Total != w.total || r.Failed != w.failed || r.Passed != w.passed || r.Level != w.level {
			t.Errorf("result %d = %+v, want %+v", i, r, w)
		}
		if !r.Passed && r.Message == "" {
			t.Errorf("failed check %s has no message", r.Check)
		}
	}
	if b := quality.Blocking(res); len(b) != 5 {
		t.Errorf("blocking = %d results, want 5 (error-level failures)", len(b))
	}
}
