package pipeline_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/spec"
)

const features = `entities: [{name: item, join_keys: [id]}]
sources: [{name: src, format: csv, path: src.csv, timestamp: ts}]
feature_sets:
  - name: items
    entity: item
    source: src
    features:
      - {name: v, type: int64, expr: v, checks: [{between: [0, 10]}]}
`

func TestExecuteRecordsRuns(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		src := filepath.Join(dir, "src.csv")
		if err := os.WriteFile(src, []byte("id,ts,v\n1,2024-01-01 01:00:00,5\n2,2024-01-02 01:00:00,6\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := spec.ParseFeatures("f.yaml", []byte(features))
		if err != nil {
			t.Fatal(err)
		}
		eng, err := duckdb.Open(ctx, t.TempDir(), offline.Options{Features: f, BaseDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		day := func(s string) time.Time { d, _ := offline.ParseDate(s); return d }
		r, err := pipeline.Execute(ctx, db, eng, offline.RunRequest{Set: "items", Start: day("2024-01-01"), End: day("2024-01-02")}, 3)
		if err != nil || r.Status != pipeline.StatusSucceeded || r.RowsIn != 2 || r.RowsOut != 2 || len(r.Checks) != 1 {
			t.Fatalf("first run = %+v, %v", r, err)
		}
		if err := os.WriteFile(src, []byte("id,ts,v\n1,2024-01-01 01:00:00,50\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err = pipeline.Execute(ctx, db, eng, offline.RunRequest{Set: "items", Start: day("2024-01-01"), End: day("2024-01-01")}, 3)
		if !errors.Is(err, offline.ErrChecksFailed) || r.Status != pipeline.StatusChecksFailed {
			t.Fatalf("second run = %+v, %v", r, err)
		}
		if err := os.Remove(src); err != nil {
			t.Fatal(err)
		}
		r, err = pipeline.Execute(ctx, db, eng, offline.RunRequest{Set: "items", Start: day("2024-01-01"), End: day("2024-01-01")}, 3)
		if !errors.Is(err, offline.ErrSource) || r.Status != pipeline.StatusFailed || r.Error == "" {
			t.Fatalf("third run = %+v, %v", r, err)
		}
		runs, err := pipeline.ListRuns(ctx, db, pipeline.RunFilter{Set: "items"})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 3 || runs[0].Status != pipeline.StatusFailed || runs[1].Status != pipeline.StatusChecksFailed || runs[2].Status != pipeline.StatusSucceeded {
			t.Fatalf("runs = %+v", runs)
		}
		old := runs[2]
		if old.RowsIn != 2 || old.RowsOut != 2 || len(old.Partitions) != 2 || len(old.Checks) != 1 || !old.Checks[0].Passed ||
			old.CatalogVersion != 3 || old.FinishedAt.Before(old.StartedAt) || old.Start != "2024-01-01" || old.End != "2024-01-02" {
			t.Errorf("recorded run = %+v", old)
		}
		if c := runs[1].Checks; len(c) != 1 || c[0].Passed || c[0].Failed != 1 {
			t.Errorf("recorded failed checks = %+v", c)
		}
		if runs, _ := pipeline.ListRuns(ctx, db, pipeline.RunFilter{Set: "other"}); len(runs) != 0 {
			t.Errorf("filter by set returned %d runs", len(runs))
		}
		if runs, _ := pipeline.ListRuns(ctx, db, pipeline.RunFilter{Limit: 1}); len(runs) != 1 {
			t.Errorf("limit 1 returned %d runs", len(runs))
		}

		// A run whose process was killed stays "running" in the table; listing
		// reports it interrupted. One of a live process stays running.
		dead := exec.Command("true")
		if err := dead.Run(); err != nil {
			t.Fatal(err)
		}
		host, _ := os.Hostname()
		for _, r := range []struct {
			id  string
			pid int
		}{{"killed", dead.Process.Pid}, {"live", os.Getpid()}} {
			if _, err := db.Exec(ctx, `INSERT INTO pipeline_runs (id, set_name, start_date, end_date, status, started_at, catalog_version, host, pid)
				VALUES (?, 'zombies', '2024-01-01', '2024-01-01', 'running', 0, 1, ?, ?)`, r.id, host, r.pid); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]string{}
		runs, _ = pipeline.ListRuns(ctx, db, pipeline.RunFilter{Set: "zombies"})
		for _, r := range runs {
			got[r.ID] = r.Status
		}
		if got["killed"] != pipeline.StatusInterrupted || got["live"] != pipeline.StatusRunning {
			t.Errorf("statuses of running runs = %v, want killed interrupted and live running", got)
		}
	}, pipeline.Schema)
}
