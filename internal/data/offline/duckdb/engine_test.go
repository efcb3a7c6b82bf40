package duckdb_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/offline/offlinetest"
	"github.com/atrium-ml/atrium/internal/platform/storeurl"
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
	glob := filepath.Join(globEscape(e.Root()), "set="+set, "date=*", "*.parquet")
	if matches, _ := filepath.Glob(glob); len(matches) == 0 {
		return nil
	}
	return offlinetest.Lines(t, fmt.Sprintf("SELECT * FROM read_parquet('%s', union_by_name = true, hive_partitioning = false) ORDER BY 1, 2", glob))
}

// assertStored fails the test unless storedRows of set are want.
func assertStored(t *testing.T, e *duckdb.Engine, set, what string, want []string) {
	t.Helper()
	if got := storedRows(t, e, set); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// globEscape makes a path match itself only, as a Go or DuckDB glob pattern.
func globEscape(path string) string {
	return strings.NewReplacer("[", "[[]", "*", "[*]", "?", "[?]").Replace(path)
}

// TestOpenURLDecodesPath opens duckdb:// URLs the way storeurl.Format
// writes them: the store's directory is the URL's decoded path, so '%', '#',
// '?' and spaces in it name that directory; a raw '#' is refused rather than
// cutting the path short.
func TestOpenURLDecodesPath(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "q%41 #x?[1]")
	e, err := offline.Open(ctx, storeurl.Format("duckdb", dir, ""), offline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if root := e.(*duckdb.Engine).Root(); root != dir {
		t.Errorf("store at %q, want %q", root, dir)
	}
	if e, err := offline.Open(ctx, "duckdb://"+dir, offline.Options{}); !errors.Is(err, offline.ErrUnsupportedURL) || !strings.Contains(err.Error(), "%23") {
		if err == nil {
			e.Close()
		}
		t.Errorf("a raw '#' in the path: %v, want ErrUnsupportedURL saying to write %%23", err)
	}
}
