package main

// The aggregated set on Spark: Atrium's run computed on a Spark Connect server
// (-compute sc://..., step "spark"), checked equal to the DuckDB engine's
// output, and butterfree's output of the same set (written by
// butterfree_peer.py, step "butterfree") checked against Atrium's where their
// semantics agree (docs/features.md, "Agreement with butterfree").

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	_ "github.com/atrium-ml/atrium/internal/data/offline/spark" // sc:// compute
	"github.com/atrium-ml/atrium/internal/spec"
)

const aggSet = "listing_engagement"

// sparkResults is what the spark step leaves for the butterfree step's ratios.
type sparkResults struct {
	Events         int64   `json:"events"`
	Rows           int64   `json:"rows"`
	DuckDBSecs     float64 `json:"duckdb_seconds"`
	SparkSecs      float64 `json:"spark_seconds"`
	Compute        string  `json:"compute"`
	ButterfreeSecs float64 `json:"butterfree_seconds,omitempty"`
}

// runOnSpark runs the aggregated set through an engine whose runs are computed
// on c.compute, in a store of its own, and checks every value equal to the
// DuckDB engine's run (duckSecs, already in eng's store).
func runOnSpark(ctx context.Context, db *sql.DB, c config, f *spec.Features, logger *slog.Logger, eng *duckdb.Engine, duckSecs float64, first, last time.Time) (result, error) {
	store := filepath.Join(c.dir, "offline-spark")
	// A fresh store: the timed run computes every day (nothing to skip).
	if err := os.RemoveAll(store); err != nil {
		return result{}, err
	}
	se, err := duckdb.Open(ctx, store, offline.Options{Features: f, BaseDir: c.dir, Logger: logger, Compute: c.compute})
	if err != nil {
		return result{}, fmt.Errorf("open the engine with compute %s: %w", c.compute, err)
	}
	defer se.Close()
	t0 := time.Now()
	res, err := se.Run(ctx, offline.RunRequest{Set: aggSet, Start: first, End: last})
	if err != nil {
		return result{}, fmt.Errorf("run %s on %s: %w", aggSet, c.compute, err)
	}
	secs := time.Since(t0).Seconds()
	cols := f.Set(aggSet).Columns()
	var checks []string
	for _, col := range cols {
		checks = append(checks, fmt.Sprintf("near(d.%s, s.%s, false)", quote(col.Name), quote(col.Name)))
	}
	var total, missing, differ int64
	q := fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE d.listing_id IS NULL OR s.listing_id IS NULL),
		count(*) FILTER (WHERE NOT (%s))
		FROM %s d FULL JOIN %s s ON d.listing_id = s.listing_id AND d."timestamp" = s."timestamp"`,
		strings.Join(checks, " AND "), stored(eng.Root()), stored(store))
	if err := near(db); err != nil {
		return result{}, err
	}
	if err := db.QueryRow(q).Scan(&total, &missing, &differ); err != nil {
		return result{}, fmt.Errorf("compare Spark's and DuckDB's output: %w", err)
	}
	if total != res.RowsOut || missing != 0 || differ != 0 {
		return result{}, fmt.Errorf("the run on Spark and on DuckDB differ: %d rows joined (Spark %d), %d in one only, %d with a value apart", total, res.RowsOut, missing, differ)
	}
	b, _ := json.Marshal(sparkResults{Events: res.RowsIn, Rows: res.RowsOut, DuckDBSecs: duckSecs, SparkSecs: secs, Compute: c.compute})
	if err := os.WriteFile(filepath.Join(c.dir, "results-spark.json"), b, 0o644); err != nil {
		return result{}, err
	}
	return result{Name: "atrium run " + aggSet + " on Spark", Seconds: secs, Rows: res.RowsOut,
		Note: fmt.Sprintf("%d events in; every value equal to the DuckDB run's (checked); %.1fx the DuckDB engine", res.RowsIn, secs/duckSecs)}, nil
}

// checkButterfree compares butterfree's output (butterfree_peer.py) with
// Atrium's DuckDB run: butterfree has a row per listing and day from the
// listing's first event, Atrium only where the largest window holds an event;
// over an empty window butterfree gives null where Atrium gives 0 (sums and
// counts) or null (avg, max). Everything else must be equal.
func checkButterfree(db *sql.DB, c config, f *spec.Features, root string) (result, error) {
	var bf struct {
		Seconds float64 `json:"seconds"`
		Rows    int64   `json:"rows"`
	}
	b, err := os.ReadFile(filepath.Join(c.dir, "results-butterfree.json"))
	if err != nil {
		return result{}, fmt.Errorf("butterfree's results (run butterfree_peer.py first): %w", err)
	}
	if err := json.Unmarshal(b, &bf); err != nil {
		return result{}, fmt.Errorf("results-butterfree.json: %w", err)
	}
	// Atrium's column -> butterfree's, and whether Atrium has 0 for an empty window.
	type pair struct {
		atrium, butterfree string
		zero               bool
	}
	var pairs []pair
	for _, w := range []struct{ atrium, butterfree string }{{"1d", "1_day"}, {"7d", "7_days"}, {"28d", "28_days"}} {
		bfName := func(feature, fn string) string {
			return fmt.Sprintf("%s__%s_over_%s_rolling_windows", feature, fn, w.butterfree)
		}
		pairs = append(pairs,
			pair{"clicks_sum_" + w.atrium, bfName("clicks", "count"), true},
			pair{"impressions_sum_" + w.atrium, bfName("impressions", "count"), true},
			pair{"viewers_count_distinct_" + w.atrium, bfName("viewers", "count_distinct"), true},
			pair{"dwell_avg_" + w.atrium, bfName("dwell", "avg"), false},
			pair{"dwell_max_" + w.atrium, bfName("dwell", "max"), false})
	}
	pairs = append(pairs, pair{"ctr_7d", "ctr_7d", false})
	if n := len(f.Set(aggSet).Columns()); n != len(pairs) {
		return result{}, fmt.Errorf("%s has %d columns, the comparison %d: update checkButterfree", aggSet, n, len(pairs))
	}
	var checks, empty []string
	for _, p := range pairs {
		checks = append(checks, fmt.Sprintf("near(a.%s, b.%s, %t)", quote(p.atrium), quote(p.butterfree), p.zero))
		if strings.HasSuffix(p.atrium, "_28d") {
			empty = append(empty, fmt.Sprintf("b.%s IS NULL", quote(p.butterfree)))
		}
	}
	if err := near(db); err != nil {
		return result{}, err
	}
	var total, atriumOnly, bfOnly, bfOnlyValues, differ, values int64
	q := fmt.Sprintf(`WITH b AS (SELECT * REPLACE (CAST("timestamp" AS TIMESTAMP) AS "timestamp") FROM read_parquet('%s/butterfree-out/*.parquet'))
		SELECT count(*), count(*) FILTER (WHERE b.listing_id IS NULL), count(*) FILTER (WHERE a.listing_id IS NULL),
			count(*) FILTER (WHERE a.listing_id IS NULL AND NOT (%s)),
			count(*) FILTER (WHERE a.listing_id IS NOT NULL AND b.listing_id IS NOT NULL AND NOT (%s)),
			count(*) FILTER (WHERE a.listing_id IS NOT NULL AND b.listing_id IS NOT NULL) * %d
		FROM %s a FULL JOIN b ON a.listing_id = b.listing_id AND a."timestamp" = b."timestamp"`,
		c.dir, strings.Join(empty, " AND "), strings.Join(checks, " AND "), len(pairs), stored(root))
	if err := db.QueryRow(q).Scan(&total, &atriumOnly, &bfOnly, &bfOnlyValues, &differ, &values); err != nil {
		return result{}, fmt.Errorf("compare butterfree's and Atrium's output: %w", err)
	}
	if atriumOnly != 0 || bfOnlyValues != 0 || differ != 0 || total != bf.Rows {
		return result{}, fmt.Errorf("butterfree and Atrium differ beyond the documented semantics: %d rows (butterfree wrote %d), %d Atrium-only rows, %d butterfree-only rows with a 28d value, %d rows with a value apart",
			total, bf.Rows, atriumOnly, bfOnlyValues, differ)
	}
	note := fmt.Sprintf("%d rows (%d all-null rows Atrium does not store); %d values equal to Atrium's (checked, empty windows per docs/features.md)", bf.Rows, bfOnly, values)
	var sr sparkResults
	if b, err := os.ReadFile(filepath.Join(c.dir, "results-spark.json")); err == nil && json.Unmarshal(b, &sr) == nil && sr.SparkSecs > 0 {
		note += fmt.Sprintf("; Atrium on Spark %.1f s = %.2fx butterfree, DuckDB engine %.1f s", sr.SparkSecs, sr.SparkSecs/bf.Seconds, sr.DuckDBSecs)
		sr.ButterfreeSecs = bf.Seconds
		b, _ := json.Marshal(sr)
		if err := os.WriteFile(filepath.Join(c.dir, "results-spark.json"), b, 0o644); err != nil {
			return result{}, err
		}
	}
	return result{Name: "peer: butterfree 1.8 " + aggSet + " on pyspark", Seconds: bf.Seconds, Rows: bf.Rows, Note: note}, nil
}

// near defines near(a, b, zero): a (Atrium) equals b within 1e-9 relative, or
// b is null and a is null (or 0 when zero: Atrium's sum or count over an empty
// window where the peer has null).
func near(db *sql.DB) error {
	_, err := db.Exec(`CREATE OR REPLACE MACRO near(a, b, zero) AS CASE
		WHEN b IS NULL THEN a IS NULL OR (zero AND a = 0)
		ELSE a IS NOT NULL AND abs(a - b) <= 1e-9 * greatest(1, abs(b)) END`)
	return err
}

// stored reads a set's published partitions from a store.
func stored(root string) string {
	return fmt.Sprintf("read_parquet('%s/set=%s/date=*/*.parquet', hive_partitioning = false)", root, aggSet)
}

func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }
