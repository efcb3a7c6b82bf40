package spark_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/offline/offlinetest"
	"github.com/atrium-ml/atrium/internal/demo"
	"github.com/atrium-ml/atrium/internal/spec"
)

// tinyDemo writes the demo project and the tiny market's data into a temporary
// directory and returns it with the market and the project's catalog.
func tinyDemo(t *testing.T) (dir string, cfg demo.Config, m *demo.Market, feats *spec.Features) {
	t.Helper()
	dir = t.TempDir()
	if _, err := demo.WriteProject(dir, false); err != nil {
		t.Fatal(err)
	}
	cfg, err := demo.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	if m, err = demo.NewMarket(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WriteData(t.Context(), dir, nil); err != nil {
		t.Fatal(err)
	}
	if feats, err = spec.LoadFeatures(dir); err != nil {
		t.Fatal(err)
	}
	return dir, cfg, m, feats
}

// TestDemoSetsMatchDuckDB runs the demo project's feature sets (two plain,
// two aggregated over several windows) over the tiny market on DuckDB and on
// Spark, each into its own store, and requires the same stored rows, read
// back from both stores' Parquet files, and the same run results.
func TestDemoSetsMatchDuckDB(t *testing.T) {
	url := sparkURL(t)
	dir, cfg, _, feats := tinyDemo(t)
	stores := map[string]string{"duckdb": t.TempDir(), "spark": t.TempDir()}
	engines := map[string]offline.Engine{}
	for name, store := range stores {
		opts := offline.Options{Features: feats, BaseDir: dir}
		if name == "spark" {
			opts.Compute = url
		}
		e, err := duckdb.Open(t.Context(), store, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		engines[name] = e
	}
	ranges := cfg.FeatureSetRanges()
	if len(ranges) < 4 {
		t.Fatalf("the demo has %d feature sets, expected 4", len(ranges))
	}
	for _, r := range ranges {
		t.Run(r.Set, func(t *testing.T) {
			results := map[string]string{}
			for name, e := range engines {
				res, err := e.Run(t.Context(), offline.RunRequest{Set: r.Set, Start: r.Start, End: r.End, SkipProfiles: true})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				var checks []string
				for _, c := range res.Checks {
					checks = append(checks, fmt.Sprintf("%s:%t:%d/%d", c.Check, c.Passed, c.Failed, c.Total))
				}
				results[name] = fmt.Sprintf("published %t, %d partitions, %d rows in, %d out, checks %v", res.Published, len(res.Partitions), res.RowsIn, res.RowsOut, checks)
			}
			if results["duckdb"] != results["spark"] {
				t.Errorf("run results differ:\nduckdb %s\nspark  %s", results["duckdb"], results["spark"])
			}
			rows := map[string][]string{}
			for name, store := range stores {
				glob := filepath.Join(store, "set="+r.Set, "*", "*.parquet")
				rows[name] = offlinetest.Lines(t, fmt.Sprintf("SELECT * EXCLUDE (filename) FROM read_parquet('%s', filename = true, hive_partitioning = false) ORDER BY ALL", glob))
			}
			if len(rows["duckdb"]) < 2 {
				t.Fatalf("DuckDB stored no rows of %s over %s..%s", r.Set, r.Start.Format(time.DateOnly), r.End.Format(time.DateOnly))
			}
			d, s := rows["duckdb"], rows["spark"]
			if len(d) != len(s) {
				t.Errorf("%d rows on DuckDB, %d on Spark", len(d)-1, len(s)-1)
			}
			shown := 0
			for i := range min(len(d), len(s)) {
				if d[i] != s[i] && shown < 5 {
					shown++
					t.Errorf("row %d differs:\nduckdb %s\nspark  %s", i, d[i], s[i])
				}
			}
			t.Logf("%s: %d rows of %d columns compared", r.Set, len(d)-1, strings.Count(d[0], ",")+1)
		})
	}
}
