package duckdb_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/offline/offlinetest"
	"github.com/atrium-ml/atrium/internal/spec"
)

// openEngine opens an engine over a fresh store with the features of dir/features.yaml
// (source paths relative to dir).
func openEngine(t *testing.T, dir string) (*duckdb.Engine, *spec.Features) {
	t.Helper()
	f := loadFeatures(t, dir)
	e, err := duckdb.Open(context.Background(), t.TempDir(), offline.Options{Features: f, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, f
}

func loadFeatures(t *testing.T, dir string) *spec.Features {
	t.Helper()
	f, err := spec.ParseFeatures("features.yaml", mustRead(t, filepath.Join(dir, "features.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func date(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := offline.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// storedRows returns every stored row of a set as lines (header first), sorted
// by keys and timestamp.
func storedRows(t *testing.T, e *duckdb.Engine, set string) []string {
	t.Helper()
	glob := filepath.Join(e.Root(), "set="+set, "date=*", "*.parquet")
	if matches, _ := filepath.Glob(glob); len(matches) == 0 {
		return nil
	}
	return offlinetest.Lines(t, fmt.Sprintf("SELECT * FROM read_parquet('%s', union_by_name = true, hive_partitioning = false) ORDER BY 1, 2", glob))
}
