package spark_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/offline/offlinetest"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/spec"
)

// twoEngines opens two engines over one store: DuckDB alone, and DuckDB with
// Spark as its compute (point-in-time joins on Spark). onSpark reports
// whether the Spark engine joined on Spark since it was last called (its log
// says so), so that a test of Spark cannot pass on DuckDB's join.
func twoEngines(t *testing.T, url, store string, opts offline.Options) (local, spark offline.Engine, onSpark func() bool) {
	t.Helper()
	var logged bytes.Buffer
	open := func(compute string) offline.Engine {
		o := opts
		o.Compute = compute
		if compute != "" {
			o.Logger = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		e, err := duckdb.Open(t.Context(), store, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	onSpark = func() bool {
		joined := strings.Contains(logged.String(), "joined elsewhere")
		logged.Reset()
		return joined
	}
	return open(""), open(url), onSpark
}

// output reads a point-in-time join's output file back: its column types,
// then its rows in file order.
func output(t *testing.T, path string) []string {
	t.Helper()
	read := "read_csv"
	if strings.HasSuffix(path, ".parquet") {
		read = "read_parquet"
	}
	rel := fmt.Sprintf("%s('%s')", read, strings.ReplaceAll(path, "'", "''"))
	types := offlinetest.Lines(t, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "+rel+")")
	return append([]string{strings.Join(types[1:], ";")}, offlinetest.Lines(t, "SELECT * FROM "+rel)...)
}

// sameOutput requires the files a and b to hold the same columns, types and
// rows in the same order (CSV files byte for byte).
func sameOutput(t *testing.T, a, b string) int {
	t.Helper()
	if strings.HasSuffix(a, ".csv") {
		ab, err := os.ReadFile(a)
		if err != nil {
			t.Fatal(err)
		}
		bb, err := os.ReadFile(b)
		if err != nil {
			t.Fatal(err)
		}
		if string(ab) != string(bb) {
			t.Errorf("%s and %s differ", a, b)
		}
	}
	d, s := output(t, a), output(t, b)
	if len(d) != len(s) {
		t.Errorf("%d lines on DuckDB, %d on Spark", len(d), len(s))
	}
	shown := 0
	for i := range min(len(d), len(s)) {
		if d[i] != s[i] && shown < 5 {
			shown++
			t.Errorf("line %d differs:\nduckdb %s\nspark  %s", i, d[i], s[i])
		}
	}
	return len(d) - 2
}

// TestHistoricalMatchesDuckDB builds training sets of the demo's tiny market
// with `atrium historical`'s code on both engines, over one store whose sets
// DuckDB ran: the ranker service (two sets, a derived feature) and the
// personalized ranker (four sets, two keys, on-demand features computed after
// the join from hidden inputs and a string split), from a CSV and a Parquet
// spine, into CSV and Parquet files. The files must hold the same rows, in
// the same order, with the same column types.
func TestHistoricalMatchesDuckDB(t *testing.T) {
	url := sparkURL(t)
	dir, cfg, m, feats := tinyDemo(t)
	store := t.TempDir()
	local, spark, onSpark := twoEngines(t, url, store, offline.Options{Features: feats, BaseDir: dir})
	for _, r := range cfg.FeatureSetRanges() {
		if _, err := local.Run(t.Context(), offline.RunRequest{Set: r.Set, Start: r.Start, End: r.End, SkipProfiles: true}); err != nil {
			t.Fatal(err)
		}
	}
	spines := map[string]string{}
	for _, ext := range []string{"csv", "parquet"} {
		spines[ext] = filepath.Join(dir, "spine."+ext)
		if _, err := m.WriteSpine(t.Context(), spines[ext], 1, cfg.Days); err != nil {
			t.Fatal(err)
		}
	}
	for _, svc := range []string{"ranker", "personalized_ranker"} {
		for spineExt, spine := range spines {
			for _, outExt := range []string{"csv", "parquet"} {
				t.Run(fmt.Sprintf("%s/%s-spine/%s", svc, spineExt, outExt), func(t *testing.T) {
					outs := map[string]string{}
					results := map[string]string{}
					for name, e := range map[string]offline.Engine{"duckdb": local, "spark": spark} {
						outs[name] = filepath.Join(t.TempDir(), "train."+outExt)
						res, err := retrieval.Historical(t.Context(), e, feats, retrieval.HistoricalRequest{Spine: spine, Service: svc, Out: outs[name]})
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						results[name] = fmt.Sprintf("%d rows, columns %v, %d on-demand failures", res.Rows, res.Columns, res.OnDemandFailed)
					}
					if !onSpark() {
						t.Error("the engine with a Spark compute did not join on Spark")
					}
					if results["duckdb"] != results["spark"] {
						t.Errorf("results differ:\nduckdb %s\nspark  %s", results["duckdb"], results["spark"])
					}
					rows := sameOutput(t, outs["duckdb"], outs["spark"])
					// Not a comparison of two empty or all-NULL files.
					matched := offlinetest.Lines(t, fmt.Sprintf("SELECT count(*) FILTER (WHERE ctr_7d IS NOT NULL), count(*) FILTER (WHERE ctr_7d IS NULL) FROM '%s'", outs["spark"]))
					if rows < 100 || strings.HasPrefix(matched[1], "0,") || strings.HasSuffix(matched[1], ",0") {
						t.Errorf("%d rows, ctr_7d (non-null, null): %s; expected hundreds of rows, some with a value and some without", rows, matched[1])
					}
					t.Logf("%d rows, ctr_7d (non-null, null) %s", rows, matched[1])
				})
			}
		}
	}
}

const edgeFeatures = `entities:
  - {name: user, join_keys: [user_id]}
  - {name: pair, join_keys: [user_id, item]}
sources:
  - {name: s, format: csv, path: s.csv, timestamp: ts}
feature_sets:
  - name: user_stats
    entity: user
    source: s
    ttl: 2d
    features:
      - {name: v, type: int64, expr: v}
      - {name: seen, type: timestamp, expr: seen}
      - {name: ok, type: bool, expr: ok}
  - name: pair_stats
    entity: pair
    source: s
    features:
      - {name: score, type: float64, expr: score}
  - name: never_run
    entity: user
    source: s
    features:
      - {name: w, type: string, expr: w}
`

// TestPointInTimeEdgesMatchDuckDB joins spines that exercise the corners of
// the contract on both engines and requires the same output files: ties on
// keys and timestamp across files and within one, a late row, NULL keys and
// times, the ttl bound, a set never run, two keys, a quoted label holding a
// newline and a comma, time columns of several types (a date, text with
// offsets, a Parquet timestamp), an integer key narrower than the stored
// one, and a repeated spine row.
func TestPointInTimeEdgesMatchDuckDB(t *testing.T) {
	url := sparkURL(t)
	store := t.TempDir()
	feats, err := spec.ParseFeatures("features.yaml", []byte(edgeFeatures))
	if err != nil {
		t.Fatal(err)
	}
	local, spark, onSpark := twoEngines(t, url, store, offline.Options{Features: feats, BaseDir: t.TempDir()})
	ts := func(s string) time.Time {
		v, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	appendRows := func(set string, rows ...offline.LatestRow) {
		t.Helper()
		if err := local.Append(t.Context(), set, rows); err != nil {
			t.Fatal(err)
		}
	}
	row := func(key []any, at string, values ...any) offline.LatestRow {
		return offline.LatestRow{Key: key, TS: ts(at), Values: values}
	}
	appendRows("user_stats",
		row([]any{"u1"}, "2024-01-01 10:00:00", int64(1), ts("2023-12-31 00:00:00"), true),
		row([]any{"u1"}, "2024-01-02 10:00:00", int64(2), nil, false),
		row([]any{"u1"}, "2024-01-02 10:00:00", int64(3), ts("2024-01-02 09:00:00"), nil), // same file, later row: wins
		row([]any{"u2"}, "2024-01-03 00:00:00", int64(20), nil, true))
	appendRows("user_stats", row([]any{"u1"}, "2024-01-01 12:00:00", int64(9), nil, false)) // late
	appendRows("user_stats", row([]any{"u2"}, "2024-01-03 00:00:00", int64(21), nil, true)) // later file wins
	appendRows("pair_stats",
		row([]any{"u1", int64(7)}, "2024-01-01 00:00:00", 0.5),
		row([]any{"u1", int64(8)}, "2024-01-01 00:00:00", 1.5),
		row([]any{"u2", int64(7)}, "2024-01-04 00:00:00", 2.5))

	cases := []struct {
		name, spine string
		feats       []string
		time        string
	}{
		{"ties late nulls ttl", `user_id,item,ts,label
u1,7,2024-01-02 10:00:00,"a, ""quoted""
label"
u1,7,2024-01-02 09:59:59,b
u1,8,2024-01-04 10:00:00,c
u1,8,2024-01-04 09:59:59,d
u2,7,2024-01-03 00:00:00,e
u2,7,2024-01-05 00:00:00,f
,7,2024-01-05 00:00:00,g
u1,,2024-01-05 00:00:00,h
u1,7,,i
u3,7,2024-01-05 00:00:00,j
u1,7,2024-01-02 10:00:00,k
`, []string{"user_stats", "pair_stats", "never_run"}, ""},
		{"date time column", "user_id,day\nu1,2024-01-02\nu2,2024-01-04\nu1,2024-01-01\n", []string{"user_stats:v", "never_run:w"}, ""},
		{"text times with offsets", "user_id,at\nu1,2024-01-02T12:00:00+02:00\nu1,2024-01-02 10:00:00\nu2,2024-01-03T00:00:00Z\n", []string{"user_stats"}, "at"},
	}
	for _, tc := range cases {
		for _, spineExt := range []string{"csv", "parquet"} {
			t.Run(tc.name+"/"+spineExt, func(t *testing.T) {
				dir := t.TempDir()
				spine := filepath.Join(dir, "spine.csv")
				if err := os.WriteFile(spine, []byte(tc.spine), 0o644); err != nil {
					t.Fatal(err)
				}
				if spineExt == "parquet" {
					pq := filepath.Join(dir, "spine.parquet")
					offlinetest.Lines(t, fmt.Sprintf("COPY (SELECT * FROM read_csv('%s')) TO '%s' (FORMAT parquet)", spine, pq))
					spine = pq
				}
				for _, outExt := range []string{"csv", "parquet"} {
					outs := map[string]string{}
					for name, e := range map[string]offline.Engine{"duckdb": local, "spark": spark} {
						outs[name] = filepath.Join(dir, name+"."+outExt)
						if _, err := retrieval.Historical(t.Context(), e, feats, retrieval.HistoricalRequest{Spine: spine, TimeColumn: tc.time, Features: tc.feats, Out: outs[name], FullNames: true}); err != nil {
							t.Fatalf("%s: %v", name, err)
						}
					}
					if !onSpark() {
						t.Error("the engine with a Spark compute did not join on Spark")
					}
					sameOutput(t, outs["duckdb"], outs["spark"])
				}
				for i, l := range output(t, filepath.Join(dir, "spark.csv")) {
					t.Logf("%d: %s", i, l)
				}
			})
		}
	}

	// A relative spine path is the caller's working directory's, not the
	// Spark server's.
	t.Run("relative spine path", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "spine.csv"), []byte("user_id,ts\nu1,2024-01-02 10:00:00\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Chdir(dir)
		for name, e := range map[string]offline.Engine{"duckdb": local, "spark": spark} {
			if _, err := retrieval.Historical(t.Context(), e, feats, retrieval.HistoricalRequest{Spine: "spine.csv", Features: []string{"user_stats:v"}, Out: name + ".csv"}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if !onSpark() {
			t.Error("the engine with a Spark compute did not join on Spark")
		}
		sameOutput(t, filepath.Join(dir, "duckdb.csv"), filepath.Join(dir, "spark.csv"))
	})

	// Bad requests fail on both engines with the same error, before Spark
	// is asked anything, and write nothing.
	bad := []struct {
		name, spine string
		feats       []string
		is          error
	}{
		{"no time column", "user_id,label\nu1,1\n", []string{"user_stats:v"}, offline.ErrNoTimeColumn},
		{"a time that is not one", "user_id,ts\nu1,2024-01-02 10:00:00\nu1,yesterday\n", []string{"user_stats:v"}, offline.ErrInvalid},
		{"a key of another type", "item,user_id,ts\nx,u1,2024-01-02 10:00:00\n", []string{"pair_stats"}, offline.ErrInvalid},
		{"a key missing", "item,ts\n7,2024-01-02 10:00:00\n", []string{"pair_stats"}, offline.ErrInvalid},
		{"an unknown set", "user_id,ts\nu1,2024-01-02 10:00:00\n", []string{"nope:v"}, nil},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			dir := t.TempDir()
			spine := filepath.Join(dir, "spine.csv")
			if err := os.WriteFile(spine, []byte(tc.spine), 0o644); err != nil {
				t.Fatal(err)
			}
			msgs := map[string]string{}
			for name, e := range map[string]offline.Engine{"duckdb": local, "spark": spark} {
				out := filepath.Join(dir, name+".csv")
				_, err := retrieval.Historical(t.Context(), e, feats, retrieval.HistoricalRequest{Spine: spine, Features: tc.feats, Out: out})
				if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) {
					t.Fatalf("%s: error %v, want one wrapping %v", name, err, tc.is)
				}
				if _, statErr := os.Stat(out); !errors.Is(statErr, os.ErrNotExist) {
					t.Errorf("%s: the failed join left %s", name, out)
				}
				msgs[name] = err.Error()
			}
			if onSpark() {
				t.Error("a bad request reached Spark")
			}
			if msgs["duckdb"] != msgs["spark"] {
				t.Errorf("errors differ:\nduckdb %s\nspark  %s", msgs["duckdb"], msgs["spark"])
			}
			t.Logf("%s", msgs["spark"])
		})
	}
}
