package duckdb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/platform/csvfile"
	"github.com/atrium-ml/atrium/internal/spec"
)

// readErrEngine opens an engine over testdata/readerr (or a copy of it in dir).
func readErrEngine(t *testing.T, dir string) (*duckdb.Engine, *spec.Features) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "features.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := spec.ParseFeatures("features.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	e, err := duckdb.Open(context.Background(), t.TempDir(), offline.Options{Features: f, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, f
}

// leaksSQL reports text that belongs to Atrium's generated SQL or DuckDB's
// reader internals rather than to the user's files.
func leaksSQL(msg string) bool {
	for _, s := range []string{"SELECT", "LINE 1", "read_csv", "read_json", "atrium_", "TIMESTAMPTZ", "sniff", "strict_mode"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// wantExplained checks that a read error (if any) wraps kind and shows none of
// the engine's internals.
func wantExplained(t *testing.T, err, kind error) {
	t.Helper()
	if err == nil {
		return
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %v: want %v", err, kind)
	}
	if leaksSQL(err.Error()) {
		t.Errorf("error shows engine internals: %v", err)
	}
}

// wantShape checks err is a located *csvfile.FieldCountError.
func wantShape(t *testing.T, err error, file string, line, fields, want int) {
	t.Helper()
	var fe *csvfile.FieldCountError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v: want a *csvfile.FieldCountError", err)
	}
	if fe.File != file || fe.Line != line || fe.Fields != fields || fe.Want != want {
		t.Errorf("got %s line %d: %d fields of %d, want %s line %d: %d of %d", fe.File, fe.Line, fe.Fields, fe.Want, file, line, fields, want)
	}
}

// wantBadValue checks err is a located *duckdb.BadValueError.
func wantBadValue(t *testing.T, err error, file string, line int, column, value string) {
	t.Helper()
	var bv *duckdb.BadValueError
	if !errors.As(err, &bv) {
		t.Fatalf("error %v: want a *duckdb.BadValueError", err)
	}
	if bv.File != file || bv.Line != line || bv.Column != column || bv.Value != value {
		t.Errorf("got %s line %d column %s value %q, want %s line %d column %s value %q", bv.File, bv.Line, bv.Column, bv.Value, file, line, column, value)
	}
}

func TestRunExplainsBrokenSourceFiles(t *testing.T) {
	dir := filepath.Join("testdata", "readerr")
	e, f := readErrEngine(t, dir)
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		set   string
		check func(t *testing.T, err error)
	}{
		{"good", func(t *testing.T, err error) {
			if err != nil {
				t.Fatalf("good source: %v", err)
			}
		}},
		{"short_row", func(t *testing.T, err error) { wantShape(t, err, "short_row.csv", 3, 2, 3) }},
		{"long_row", func(t *testing.T, err error) { wantShape(t, err, "long_row.csv", 4, 4, 3) }},
		{"semicolon_short", func(t *testing.T, err error) { wantShape(t, err, "semicolon_short.csv", 4, 2, 3) }},
		{"bad_ts", func(t *testing.T, err error) { wantBadValue(t, err, "bad_ts.csv", 3, "ts", "2026-12-02 25:00:00") }},
		{"word_ts", func(t *testing.T, err error) { wantBadValue(t, err, "word_ts_2.csv", 4, "ts", "yesterday") }},
		{"json_ts", func(t *testing.T, err error) { wantBadValue(t, err, "bad_ts.json", 0, "ts", "2026-13-02 07:00:00") }},
	}
	for _, tc := range tests {
		t.Run(tc.set, func(t *testing.T) {
			_, err := e.Run(context.Background(), offline.RunRequest{Set: tc.set, Start: day("2026-12-01"), End: day("2026-12-03")})
			tc.check(t, err)
			wantExplained(t, err, offline.ErrSource)
		})
	}

	// apply binds every source: the broken ones are reported once each, by line,
	// and the sets over them are not reported again as missing columns.
	v, ok := any(e).(offline.Validator)
	if !ok {
		t.Fatal("the engine does not validate SQL")
	}
	problems, _ := v.ValidateSQL(context.Background(), f)
	got := problems.Error()
	for _, want := range []string{
		`source "short_row": short_row.csv line 3: 2 fields, but the header has 3`,
		`source "long_row": long_row.csv line 4: 4 fields, but the header has 3`,
		`source "semicolon_short": semicolon_short.csv line 4: 2 fields, but the header has 3`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("validation problems lack %q:\n%s", want, got)
		}
	}
	if len(problems) != 3 || leaksSQL(got) {
		t.Errorf("want exactly the 3 shape problems, got %d:\n%s", len(problems), got)
	}
}

// A short row past the rows DuckDB's sniffer samples fails only while reading.
func TestRunExplainsShortRowPastTheSniffedRows(t *testing.T) {
	dir := t.TempDir()
	feats, err := os.ReadFile(filepath.Join("testdata", "readerr", "features.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "features.yaml"), feats, 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("id,v,ts\n")
	const rows = 30000
	for i := range rows {
		fmt.Fprintf(&b, "%d,%d.5,2026-12-02 07:00:00\n", i, i)
	}
	b.WriteString("7,2026-12-02 07:00:00\n")
	if err := os.WriteFile(filepath.Join(dir, "short_row.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	e, _ := readErrEngine(t, dir)
	d := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	_, err = e.Run(context.Background(), offline.RunRequest{Set: "short_row", Start: d, End: d})
	wantShape(t, err, "short_row.csv", rows+2, 2, 3)
	wantExplained(t, err, offline.ErrSource)
}

// spineEngine opens an engine over testdata/readerr (by absolute path) with
// the set "good" computed; it returns the directory and the set's features.
func spineEngine(t *testing.T) (string, *duckdb.Engine, []spec.ResolvedFeature) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "readerr"))
	if err != nil {
		t.Fatal(err)
	}
	e, f := readErrEngine(t, dir)
	d := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if _, err := e.Run(context.Background(), offline.RunRequest{Set: "good", Start: d, End: d.AddDate(0, 0, 2)}); err != nil {
		t.Fatal(err)
	}
	feats, err := f.Resolve("good")
	if err != nil {
		t.Fatal(err)
	}
	return dir, e, feats
}

func TestPointInTimeExplainsBrokenSpines(t *testing.T) {
	dir, e, feats := spineEngine(t)
	tests := []struct {
		spine, timeColumn string
		check             func(t *testing.T, err error)
	}{
		{"spine.csv", "", func(t *testing.T, err error) {
			if err != nil {
				t.Fatalf("good spine: %v", err)
			}
		}},
		{"spine_short_row.csv", "", func(t *testing.T, err error) { wantShape(t, err, "spine_short_row.csv", 3, 2, 3) }},
		{"spine_bad_ts.csv", "", func(t *testing.T, err error) {
			wantBadValue(t, err, "spine_bad_ts.csv", 3, "ts", "2026-12-03 27:00:00")
		}},
		{"spine_no_time.csv", "", func(t *testing.T, err error) {
			if !errors.Is(err, offline.ErrNoTimeColumn) || !strings.Contains(err.Error(), "columns: id, label") {
				t.Errorf("error %v: want offline.ErrNoTimeColumn listing the columns", err)
			}
		}},
		{"spine_two_times.csv", "", func(t *testing.T, err error) {
			if !errors.Is(err, offline.ErrNoTimeColumn) || !strings.Contains(err.Error(), "cannot tell which column is the time: a, b are all timestamp columns") {
				t.Errorf("error %v: want offline.ErrNoTimeColumn naming both candidates", err)
			}
		}},
		{"spine.csv", "when", func(t *testing.T, err error) {
			if !errors.Is(err, offline.ErrNoTimeColumn) || !strings.Contains(err.Error(), `no time column "when", expected one of: id, ts, label`) {
				t.Errorf("error %v: want offline.ErrNoTimeColumn naming the missing column", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.spine+"/"+tc.timeColumn, func(t *testing.T) {
			_, err := e.PointInTime(context.Background(), offline.PointInTimeRequest{
				Spine: filepath.Join(dir, tc.spine), TimeColumn: tc.timeColumn, Features: feats, Names: []string{"v"},
				Out: filepath.Join(t.TempDir(), "out.csv")})
			tc.check(t, err)
			wantExplained(t, err, offline.ErrInvalid)
		})
	}
}

// A Parquet spine's bad timestamp is located by its row (Parquet has no lines).
func TestPointInTimeLocatesBadParquetTimestamp(t *testing.T) {
	_, e, feats := spineEngine(t)
	spine := filepath.Join(t.TempDir(), "spine.parquet")
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`COPY (SELECT * FROM (VALUES (1, '2026-12-03 06:00:00'), (2, '2026-12-03 07:00:00'), (3, 'soon')) AS s(id, ts))
		TO '` + spine + `' (FORMAT parquet)`); err != nil {
		t.Fatal(err)
	}
	_, err = e.PointInTime(context.Background(), offline.PointInTimeRequest{Spine: spine, TimeColumn: "ts", Features: feats,
		Names: []string{"v"}, Out: filepath.Join(t.TempDir(), "out.csv")})
	var bv *duckdb.BadValueError
	if !errors.As(err, &bv) || bv.Row != 3 || bv.Line != 0 || bv.Value != "soon" || !strings.Contains(err.Error(), `spine.parquet row 3: column ts: "soon" is not a timestamp`) {
		t.Fatalf("error %v: want a BadValueError at row 3", err)
	}
	wantExplained(t, err, offline.ErrInvalid)
}
