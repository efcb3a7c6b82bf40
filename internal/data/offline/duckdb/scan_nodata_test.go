package duckdb_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
)

// TestScanLatestNoData: a scan up to a time before any stored partition
// says so with ErrNoData (materialization must not record a resume point
// past data that was never computed), while a range that is merely empty,
// with data before it, is no error.
func TestScanLatestNoData(t *testing.T) {
	ctx := context.Background()
	dir, _ := filepath.Abs(filepath.Join("testdata", "windows", "issue_example"))
	e, _ := openEngine(t, dir)
	jan := func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }
	none := func([]offline.LatestRow) error { return nil }

	if err := e.ScanLatest(ctx, "listing_engagement", time.Time{}, jan(5), none); !errors.Is(err, offline.ErrNoData) {
		t.Fatalf("scan of a set never run: %v, want ErrNoData", err)
	}
	if _, err := e.Run(ctx, offline.RunRequest{Set: "listing_engagement", Start: jan(3), End: jan(5)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		noData   bool
	}{
		{"before the first partition", time.Time{}, jan(2), true},
		{"incremental range before the first partition", jan(1), jan(2), true},
		{"empty range after data", jan(5).Add(time.Hour), jan(5).Add(2 * time.Hour), false},
		{"range past the data", jan(6), jan(9), false},
		{"everything", time.Time{}, time.Time{}, false},
	} {
		err := e.ScanLatest(ctx, "listing_engagement", tc.from, tc.to, none)
		if tc.noData != errors.Is(err, offline.ErrNoData) || (!tc.noData && err != nil) {
			t.Errorf("%s: %v (want ErrNoData: %v)", tc.name, err, tc.noData)
		}
	}
}
