package duckdb_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
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

// storedRows returns every stored row of a set as CSV lines (header first), sorted
// by keys and timestamp, values formatted by format.
func storedRows(t *testing.T, e *duckdb.Engine, set string) []string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := filepath.Join(e.Root(), "set="+set, "date=*", "*.parquet")
	matches, _ := filepath.Glob(glob)
	if len(matches) == 0 {
		return nil
	}
	rows, err := db.Query(fmt.Sprintf("SELECT * FROM read_parquet('%s', union_by_name = true, hive_partitioning = false) ORDER BY 1, 2", glob))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	return csvLines(t, rows)
}

func csvLines(t *testing.T, rows *sql.Rows) []string {
	t.Helper()
	cols, _ := rows.Columns()
	out := []string{strings.Join(cols, ",")}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = format(v)
		}
		out = append(out, strings.Join(cells, ","))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// format prints a value the way golden files spell it: NULL, floats to 12
// significant digits, times as "2006-01-02 15:04:05" (UTC).
func format(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case float64:
		return strconv.FormatFloat(x, 'g', 12, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', 12, 64)
	case time.Time:
		return x.UTC().Format(time.DateTime)
	}
	return fmt.Sprint(v)
}
