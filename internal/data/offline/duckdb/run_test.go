package duckdb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
)

const profileYAML = `entities:
  - {name: listing, join_keys: [listing_id]}
sources:
  - {name: listings, format: csv, path: listings.csv, timestamp: updated_at}
feature_sets:
  - name: profile
    entity: listing
    source: listings
    ttl: 30d
    checks: [{row_count: {min: 1}}, {freshness: 10d, level: warn}]
    features:
      - {name: rent, type: float64, expr: rent, checks: [not_null, {between: [100, 100000]}]}
      - {name: city, type: string, expr: city, checks: [{in_set: [rome, milan], mostly: 0.5, level: warn}]}
`

// repo writes a project directory with features.yaml and the given files.
func repo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// partitionFiles maps each date partition of a set to its file names.
func partitionFiles(t *testing.T, e *duckdb.Engine, set string) map[string]string {
	t.Helper()
	out := map[string]string{}
	dirs, _ := filepath.Glob(filepath.Join(e.Root(), "set="+set, "date=*"))
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(d, "*.parquet"))
		var names []string
		for _, f := range files {
			names = append(names, filepath.Base(f))
		}
		sort.Strings(names)
		out[strings.TrimPrefix(filepath.Base(d), "date=")] = strings.Join(names, ",")
	}
	return out
}

// TestRerunReplacesExactlyItsPartitions checks the files behind the suite's
// rerun_replaces case: a rerun swaps the directories of its days (emptied when a
// day has no rows) and does not touch the files of other days.
func TestRerunReplacesExactlyItsPartitions(t *testing.T) {
	ctx := context.Background()
	dir := repo(t, map[string]string{"features.yaml": profileYAML, "listings.csv": `listing_id,updated_at,rent,city
1,2024-01-01 10:00:00,1000,rome
1,2024-01-02 10:00:00,1100,rome
2,2024-01-03 10:00:00,2000,milan
2,2024-01-04 10:00:00,2100,milan
`})
	e, _ := openEngine(t, dir)
	if _, err := e.Run(ctx, offline.RunRequest{Set: "profile", Start: date(t, "2024-01-01"), End: date(t, "2024-01-04")}); err != nil {
		t.Fatal(err)
	}
	before := partitionFiles(t, e, "profile")
	// The source changes: day 2 gets a new value, day 3 loses its row.
	write(t, filepath.Join(dir, "listings.csv"), `listing_id,updated_at,rent,city
1,2024-01-01 10:00:00,999999,rome
1,2024-01-02 10:00:00,1200,rome
2,2024-01-04 10:00:00,9999,milan
`)
	if _, err := e.Run(ctx, offline.RunRequest{Set: "profile", Start: date(t, "2024-01-02"), End: date(t, "2024-01-03")}); err != nil {
		t.Fatal(err)
	}
	after := partitionFiles(t, e, "profile")
	if after["2024-01-01"] != before["2024-01-01"] || after["2024-01-04"] != before["2024-01-04"] {
		t.Errorf("partitions outside the rerun changed: before %v, after %v", before, after)
	}
	if after["2024-01-02"] == before["2024-01-02"] || after["2024-01-03"] != "" {
		t.Errorf("rerun partitions not replaced: before %v, after %v", before, after)
	}
}

// TestChecksFailedMessage checks that the error of a run stopped by its checks
// names each failing error-level check (the suite's checks_gate_publish case
// checks what is published and each check's outcome).
func TestChecksFailedMessage(t *testing.T) {
	dir := repo(t, map[string]string{"features.yaml": profileYAML, "listings.csv": `listing_id,updated_at,rent,city
1,2024-01-01 10:00:00,50,rome
2,2024-01-01 11:00:00,,paris
3,2024-01-01 12:00:00,500,paris
`})
	e, _ := openEngine(t, dir)
	_, err := e.Run(context.Background(), offline.RunRequest{Set: "profile", Start: date(t, "2024-01-01"), End: date(t, "2024-01-01")})
	if !errors.Is(err, offline.ErrChecksFailed) {
		t.Fatalf("run = %v, want ErrChecksFailed", err)
	}
	for _, want := range []string{"rent: not_null: 1 of 3 rows fail", "rent: between [100, 100000]: 1 of 2 rows fail"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestBadSourceErrors checks the words of source errors (the suite checks their
// class).
func TestBadSourceErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, csv, want string
	}{
		{"missing file", "", "no file matches listings.csv"},
		{"no timestamp column", "listing_id,rent,city\n1,100,rome\n", `no timestamp column "updated_at"`},
		{"numeric timestamp", "listing_id,updated_at,rent,city\n1,5,100,rome\n", `timestamp column "updated_at" has type BIGINT`},
		{"no key column", "id,updated_at,rent,city\n1,2024-01-01,100,rome\n", `no join key column "listing_id"`},
		{"float key", "listing_id,updated_at,rent,city\n1.5,2024-01-01,100,rome\n", `join key "listing_id" has type DOUBLE`},
		{"text in a numeric feature", "listing_id,updated_at,rent,city\n1,2024-01-01,cheap,rome\n", `reading source listings`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"features.yaml": profileYAML}
			if tt.csv != "" {
				files["listings.csv"] = tt.csv
			}
			e, _ := openEngine(t, repo(t, files))
			_, err := e.Run(ctx, offline.RunRequest{Set: "profile", Start: date(t, "2024-01-01"), End: date(t, "2024-01-01")})
			if !errors.Is(err, offline.ErrSource) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want ErrSource containing %q", err, tt.want)
			}
		})
	}
}

// TestKilledRunLeavesGoodPartitions simulates what a writer killed at each point
// of a publish leaves behind and checks readers and the next writer.
func TestKilledRunLeavesGoodPartitions(t *testing.T) {
	ctx := context.Background()
	dir := repo(t, map[string]string{"features.yaml": profileYAML, "listings.csv": `listing_id,updated_at,rent,city
1,2024-01-01 23:00:00,1111,rome
`})
	e, _ := openEngine(t, dir)
	days := offline.RunRequest{Set: "profile", Start: date(t, "2024-01-01"), End: date(t, "2024-01-02")}
	if _, err := e.Run(ctx, days); err != nil {
		t.Fatal(err)
	}
	setDir := filepath.Join(e.Root(), "set=profile")
	// An older version of the 2024-01-01 partition, kept to play the one the
	// portable swap leaves beside the new partition when killed before its last
	// rename.
	stale := filepath.Join(t.TempDir(), "stale")
	if err := os.Rename(filepath.Join(setDir, "date=2024-01-01"), stale); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "listings.csv"), `listing_id,updated_at,rent,city
1,2024-01-01 10:00:00,1000,rome
2,2024-01-02 10:00:00,2000,milan
`)
	if _, err := e.Run(ctx, days); err != nil {
		t.Fatal(err)
	}
	good := storedRows(t, e, "profile")
	// Killed while writing: a half-written staging directory of a process that is
	// gone (no pid is that large), and one of a live process (this one).
	dead := filepath.Join(e.Root(), ".tmp", "staging-999999999-0000000000000000001-deadbeef")
	live := filepath.Join(e.Root(), ".tmp", fmt.Sprintf("staging-%d-0000000000000000002-beefdead", os.Getpid()))
	if err := os.MkdirAll(live, 0o755); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dead, "date=2024-01-01")
	if err := os.MkdirAll(junk, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(junk, "partial.parquet"), "not parquet")
	// Killed by the portable two-rename swap (exchangeByRenames) between its
	// first two renames: 2024-01-02 moved aside, its replacement not in place.
	if err := os.Rename(filepath.Join(setDir, "date=2024-01-02"), filepath.Join(setDir, "date=2024-01-02.old")); err != nil {
		t.Fatal(err)
	}
	// Killed between its last two: 2024-01-01 in place, the previous version
	// still beside it.
	if err := os.Rename(stale, filepath.Join(setDir, "date=2024-01-01.old")); err != nil {
		t.Fatal(err)
	}
	// Readers see the last good partitions: the moved-aside one, and not the
	// previous version beside a replaced one.
	scanned := func() string {
		t.Helper()
		var lines []string
		if err := e.ScanLatest(ctx, "profile", time.Time{}, date(t, "2024-02-01"), func(rows []offline.LatestRow) error {
			for _, r := range rows {
				lines = append(lines, fmt.Sprintf("%v,%s,%v", r.Key[0], r.TS.Format(time.DateTime), r.Values[0]))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	const wantScan = "1,2024-01-01 10:00:00,1000\n2,2024-01-02 10:00:00,2000"
	if got := scanned(); got != wantScan {
		t.Errorf("scan after a killed swap:\n%s\nwant\n%s", got, wantScan)
	}
	f := loadFeatures(t, dir)
	feats, err := f.Resolve("profile:rent")
	if err != nil {
		t.Fatal(err)
	}
	spine, out := filepath.Join(dir, "spine.csv"), filepath.Join(dir, "out.csv")
	write(t, spine, "listing_id,ts\n1,2024-01-02 00:00:00\n2,2024-01-03 00:00:00\n")
	if _, err := e.PointInTime(ctx, offline.PointInTimeRequest{Spine: spine, Features: feats, Names: []string{"rent"}, Out: out}); err != nil {
		t.Fatal(err)
	}
	if b := string(mustRead(t, out)); b != "listing_id,ts,rent\n1,2024-01-02 00:00:00,1000.0\n2,2024-01-03 00:00:00,2000.0\n" {
		t.Errorf("point-in-time join after a killed swap:\n%s", b)
	}
	// A cancelled run publishes nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.Run(cctx, offline.RunRequest{Set: "profile", Start: date(t, "2024-01-01"), End: date(t, "2024-01-02")}); err == nil {
		t.Fatal("cancelled run succeeded")
	}
	// Readers never look at staging directories.
	if got := scanned(); got != wantScan {
		t.Errorf("scan after a cancelled run:\n%s\nwant\n%s", got, wantScan)
	}
	// The next writer restores the moved partition and removes the debris.
	write(t, filepath.Join(dir, "listings.csv"), "listing_id,updated_at,rent,city\n3,2024-01-03 10:00:00,3000,rome\n")
	if _, err := e.Run(ctx, offline.RunRequest{Set: "profile", Start: date(t, "2024-01-03"), End: date(t, "2024-01-03")}); err != nil {
		t.Fatal(err)
	}
	got := storedRows(t, e, "profile")
	want := append(append([]string(nil), good...), "3,2024-01-03 10:00:00,3000,rome")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows after recovery:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	left, _ := filepath.Glob(filepath.Join(setDir, "*.old"))
	if len(left) != 0 {
		t.Errorf("debris left: %v", left)
	}
	// Staging directories of dead writers are collected when an engine opens.
	e2, err := duckdb.Open(ctx, e.Root(), offline.Options{Features: loadFeatures(t, dir), BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("dead writer's staging directory is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live writer's staging directory was removed: %v", err)
	}
}

// TestTextTimestamps checks that text in a timestamp column that is no time
// fails the run naming the value (the suite's windows/source_formats case checks
// the error's class and how the other spellings are read).
func TestTextTimestamps(t *testing.T) {
	yaml := strings.Replace(profileYAML, "format: csv, path: listings.csv", "format: json, path: listings.json", 1)
	rows := `[{"listing_id": 1, "updated_at": "2024-01-01 10:00:00+02", "rent": 1000.0, "city": "rome"},
		{"listing_id": 3, "updated_at": "soon", "rent": 3000.0, "city": "rome"}]`
	e, _ := openEngine(t, repo(t, map[string]string{"features.yaml": yaml, "listings.json": rows}))
	_, err := e.Run(context.Background(), offline.RunRequest{Set: "profile", Start: date(t, "2024-01-01"), End: date(t, "2024-01-01")})
	if !errors.Is(err, offline.ErrSource) || !strings.Contains(err.Error(), "soon") {
		t.Errorf("a non-time in the timestamp column: %v, want ErrSource naming the value", err)
	}
}

// TestGlobCharactersInPaths puts '[', '*' and '?' in the repository's, the
// store's, source files' and the spine's paths. Each is literal: a run reads
// exactly its source files, never a sibling's the characters would match as a
// pattern; checks see every row; readers find the stored partitions; the spine
// read is the one named. A source file with a backslash is refused by name.
func TestGlobCharactersInPaths(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	yaml := strings.Replace(profileYAML, "path: listings.csv", "path: data/*.csv", 1)
	header := "listing_id,updated_at,rent,city\n"
	mk := func(dir string, files map[string]string) string {
		t.Helper()
		for name, content := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, p, content)
		}
		return dir
	}
	// Decoys: what each path matches when read as a pattern.
	decoy := mk(filepath.Join(parent, "p3xy"), map[string]string{
		"features.yaml": yaml,
		"data/a1.csv":   header + "9,2024-01-01 10:00:00,9000,rome\n",
		"spine1.csv":    "listing_id,ts\n9,2024-01-02 00:00:00\n",
	})
	dir := mk(filepath.Join(parent, "p[3]*?"), map[string]string{
		"features.yaml": yaml,
		"data/a[1].csv": header + "1,2024-01-01 10:00:00,1000,rome\n",
		"data/a1.csv":   header + "2,2024-01-01 11:00:00,2000,milan\n",
		"data/b*?.csv":  header + "3,2024-01-01 12:00:00,3000,rome\n",
		"data/bxy.csv":  header + "4,2024-01-01 13:00:00,4000,milan\n",
		"spine[1].csv":  "listing_id,ts\n1,2024-01-02 00:00:00\n4,2024-01-02 00:00:00\n",
		"spine1.csv":    "listing_id,ts\n8,2024-01-02 00:00:00\n",
	})
	open := func(store, base string) *duckdb.Engine {
		t.Helper()
		e, err := duckdb.Open(ctx, store, offline.Options{Features: loadFeatures(t, base), BaseDir: base})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	day := offline.RunRequest{Set: "profile", Start: date(t, "2024-01-01"), End: date(t, "2024-01-01")}
	if _, err := open(filepath.Join(parent, "off1"), decoy).Run(ctx, day); err != nil {
		t.Fatal(err)
	}
	e := open(filepath.Join(parent, "off[1]"), dir)
	res, err := e.Run(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsIn != 4 || res.RowsOut != 4 {
		t.Errorf("run read %d rows and wrote %d, want the 4 rows of the 4 source files", res.RowsIn, res.RowsOut)
	}
	want := []string{
		"listing_id,timestamp,rent,city",
		"1,2024-01-01 10:00:00,1000,rome",
		"2,2024-01-01 11:00:00,2000,milan",
		"3,2024-01-01 12:00:00,3000,rome",
		"4,2024-01-01 13:00:00,4000,milan",
	}
	assertStored(t, e, "profile", "stored rows", want)
	var keys []any
	if err := e.ScanLatest(ctx, "profile", time.Time{}, date(t, "2024-02-01"), func(rows []offline.LatestRow) error {
		for _, r := range rows {
			keys = append(keys, r.Key[0])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Errorf("scan found keys %v, want 1 to 4", keys)
	}
	f := loadFeatures(t, dir)
	feats, err := f.Resolve("profile:rent")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out[1].csv")
	if _, err := e.PointInTime(ctx, offline.PointInTimeRequest{Spine: filepath.Join(dir, "spine[1].csv"), Features: feats, Names: []string{"rent"}, Out: out}); err != nil {
		t.Fatal(err)
	}
	if b := string(mustRead(t, out)); b != "listing_id,ts,rent\n1,2024-01-02 00:00:00,1000.0\n4,2024-01-02 00:00:00,4000.0\n" {
		t.Errorf("point-in-time output:\n%s", b)
	}

	// An error-level check failing in one file stops the run: the checks read the
	// staged rows, not an empty listing.
	write(t, filepath.Join(dir, "data", "a[1].csv"), header+"1,2024-01-01 10:00:00,50,rome\n")
	if _, err := e.Run(ctx, day); !errors.Is(err, offline.ErrChecksFailed) {
		t.Errorf("run with rent 50 = %v, want ErrChecksFailed", err)
	}
	assertStored(t, e, "profile", "rows after a failed run", want)

	write(t, filepath.Join(dir, "data", `c\d.csv`), header)
	_, err = e.Run(ctx, day)
	if !errors.Is(err, offline.ErrSource) || !strings.Contains(err.Error(), `c\d.csv`) || !strings.Contains(err.Error(), `'\'`) {
		t.Errorf("a source file with a backslash: %v, want ErrSource naming the file and the character", err)
	}
	if _, err := duckdb.Open(ctx, filepath.Join(parent, `off\2`), offline.Options{}); !errors.Is(err, offline.ErrUnsupportedURL) || !strings.Contains(err.Error(), `'\'`) {
		t.Errorf("a store directory with a backslash: %v, want ErrUnsupportedURL naming the character", err)
	}
}
