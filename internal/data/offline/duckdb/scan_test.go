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
)

func scanAll(t *testing.T, e offline.Engine, set string, from, to time.Time) map[string]offline.LatestRow {
	t.Helper()
	out := map[string]offline.LatestRow{}
	err := e.ScanLatest(context.Background(), set, from, to, func(rows []offline.LatestRow) error {
		for _, r := range rows {
			k := fmt.Sprint(r.Key...)
			if _, dup := out[k]; dup {
				t.Errorf("key %s returned twice", k)
			}
			out[k] = r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func engagementEngine(t *testing.T) offline.Engine {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("..", "offlinetest", "testdata", "windows", "issue_example"))
	e, _ := openEngine(t, dir)
	if _, err := e.Run(context.Background(), offline.RunRequest{Set: "listing_engagement", Start: date(t, "2024-01-01"), End: date(t, "2024-01-05")}); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestAppend checks what the suite's append case cannot see: a push is one new
// file beside the run's in its date's directory, a Go int is taken for an int64
// column, and the words of Append's errors (the suite checks their class).
func TestAppend(t *testing.T) {
	ctx := context.Background()
	e := engagementEngine(t)
	jan4 := time.Date(2024, 1, 4, 0, 0, 0, 0, time.UTC)
	pushed := []offline.LatestRow{
		{Key: []any{int64(2)}, TS: jan4, Values: []any{int64(7), int64(8), int64(9), int64(10), int64(11), int64(12), 0.25}},
		{Key: []any{int64(4)}, TS: jan4.Add(time.Hour), Values: []any{1, nil, nil, nil, nil, nil, nil}},
	}
	if err := e.Append(ctx, "listing_engagement", pushed); err != nil {
		t.Fatal(err)
	}
	if r := scanAll(t, e, "listing_engagement", time.Time{}, jan4.Add(2*time.Hour))["4"]; r.Values[0] != int64(1) || r.Values[1] != nil {
		t.Errorf("listing 4 = %#v, want clicks_sum_1d int64(1)", r)
	}
	files, _ := filepath.Glob(filepath.Join(e.(interface{ Root() string }).Root(), "set=listing_engagement", "date=2024-01-04", "*.parquet"))
	if len(files) != 2 || !strings.Contains(files[1], "-push-") {
		t.Errorf("partition files = %v, want the run's file and one push file", files)
	}

	bad := []struct {
		rows []offline.LatestRow
		want string
	}{
		{[]offline.LatestRow{{Key: []any{"2"}, TS: jan4, Values: make([]any, 7)}}, "key listing_id is VARCHAR in the pushed rows but BIGINT in the stored rows"},
		{[]offline.LatestRow{{Key: []any{1.5}, TS: jan4, Values: make([]any, 7)}}, "key listing_id is float64, expected string or int64"},
		{[]offline.LatestRow{{Key: []any{int64(1), int64(2)}, TS: jan4, Values: make([]any, 7)}}, "2 key values, expected 1"},
		{[]offline.LatestRow{{Key: []any{int64(1)}, Values: make([]any, 7)}}, "no timestamp"},
		{[]offline.LatestRow{{Key: []any{int64(1)}, TS: jan4, Values: make([]any, 6)}}, "6 values, expected 7"},
		{[]offline.LatestRow{{Key: []any{int64(1)}, TS: jan4, Values: []any{"x", nil, nil, nil, nil, nil, nil}}}, "column clicks_sum_1d is string, expected int64"},
		{[]offline.LatestRow{{Key: []any{int64(1)}, TS: jan4, Values: make([]any, 7)}, {Key: []any{"a"}, TS: jan4, Values: make([]any, 7)}}, "row 1: key listing_id is VARCHAR but earlier rows have BIGINT"},
	}
	for _, b := range bad {
		if err := e.Append(ctx, "listing_engagement", b.rows); !errors.Is(err, offline.ErrInvalid) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Append(%v) error = %v, want ErrInvalid containing %q", b.rows, err, b.want)
		}
	}
}

// TestScanLatestBatches checks streaming over more keys than one batch holds.
func TestScanLatestBatches(t *testing.T) {
	var b strings.Builder
	b.WriteString("listing_id,updated_at,rent,city\n")
	const n = 20000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d,2024-01-01 %02d:00:00,%d,rome\n", i, i%24, 100+i)
		fmt.Fprintf(&b, "%d,2024-01-02 00:00:00,%d,milan\n", i, 200+i)
	}
	e, _ := openEngine(t, repo(t, map[string]string{"features.yaml": profileYAML, "listings.csv": b.String()}))
	if _, err := e.Run(context.Background(), offline.RunRequest{Set: "profile", Start: date(t, "2024-01-01"), End: date(t, "2024-01-02")}); err != nil {
		t.Fatal(err)
	}
	batches, rows := 0, 0
	seen := map[int64]bool{}
	err := e.ScanLatest(context.Background(), "profile", time.Time{}, date(t, "2024-01-01").Add(23*time.Hour), func(batch []offline.LatestRow) error {
		batches++
		rows += len(batch)
		for _, r := range batch {
			id := r.Key[0].(int64)
			if seen[id] || r.Values[0].(float64) != float64(100+id) || r.Values[1] != "rome" {
				t.Fatalf("bad row %#v", r)
			}
			seen[id] = true
		}
		return nil
	})
	if err != nil || rows != n || batches < 2 {
		t.Errorf("scan: %v, %d rows in %d batches; want %d rows in several batches", err, rows, batches, n)
	}
}

// TestConcurrentRunsAndAppends runs and pushes to the same set at once: every
// write must land whole, and readers never fail while partitions are replaced.
func TestConcurrentRunsAndAppends(t *testing.T) {
	ctx := context.Background()
	e := engagementEngine(t)
	jan3 := time.Date(2024, 1, 3, 12, 0, 0, 0, time.UTC)
	errs := make(chan error, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 3; i++ {
			if _, err := e.Run(ctx, offline.RunRequest{Set: "listing_engagement", Start: date(t, "2024-01-02"), End: date(t, "2024-01-04")}); err != nil {
				errs <- err
			}
		}
	}()
	for i := 0; i < 6; i++ {
		row := offline.LatestRow{Key: []any{int64(100 + i)}, TS: jan3, Values: []any{int64(i), nil, nil, nil, nil, nil, nil}}
		if err := e.Append(ctx, "listing_engagement", []offline.LatestRow{row}); err != nil {
			errs <- err
		}
		if err := e.ScanLatest(ctx, "listing_engagement", time.Time{}, time.Time{}, func([]offline.LatestRow) error { return nil }); err != nil {
			errs <- err
		}
	}
	<-done
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Keys 100.. were pushed into the 2024-01-03 partition, which the runs
	// replaced: each key is either there whole or gone with the partition it was
	// pushed into, and the computed keys are all there.
	got := scanAll(t, e, "listing_engagement", time.Time{}, time.Time{})
	for _, k := range []string{"1", "2", "3"} {
		if _, ok := got[k]; !ok {
			t.Errorf("computed key %s missing after concurrent writes", k)
		}
	}
	for k, r := range got {
		if len(r.Values) != 7 {
			t.Errorf("key %s has %d values", k, len(r.Values))
		}
	}
}
