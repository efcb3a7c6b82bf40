// Command pitspark times `atrium historical`'s point-in-time join on Spark
// (stores.compute: sc://...) against the same join on DuckDB, over one store
// and one spine, and checks that both wrote the same rows in the same order.
// The data is bench/pipeline's: run it first to generate the sources and the
// spine and to compute the three sets into <dir>/offline with DuckDB:
//
//	go run ./bench/pipeline -dir /tmp/atrium-bench-pitspark -only run -peers=false
//	go run ./bench/pitspark -dir /tmp/atrium-bench-pitspark -compute sc://127.0.0.1:15002
//
// Rounds alternate the engines (DuckDB first); each prints its wall time.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	_ "github.com/atrium-ml/atrium/internal/data/offline/spark"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/spec"
)

func main() {
	dir := flag.String("dir", "/tmp/atrium-bench-pitspark", "bench/pipeline's work directory (features.yaml, offline/, data/)")
	spine := flag.Int("spine", 1_000_000, "spine rows (data/spine-N.parquet)")
	compute := flag.String("compute", os.Getenv("ATRIUM_TEST_SPARK"), "Spark Connect URL")
	rounds := flag.Int("rounds", 1, "rounds, each timing DuckDB then Spark")
	flag.Parse()
	if err := run(context.Background(), *dir, *spine, *compute, *rounds); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, dir string, spineRows int, compute string, rounds int) error {
	if compute == "" {
		return fmt.Errorf("no Spark Connect URL: -compute sc://host:port or ATRIUM_TEST_SPARK")
	}
	b, err := os.ReadFile(filepath.Join(dir, "features.yaml"))
	if err != nil {
		return fmt.Errorf("%w (run bench/pipeline -only run first)", err)
	}
	feats, err := spec.ParseFeatures("features.yaml", b)
	if err != nil {
		return err
	}
	spine := filepath.Join(dir, "data", fmt.Sprintf("spine-%d.parquet", spineRows))
	engines := map[string]offline.Engine{}
	for _, name := range []string{"duckdb", "spark"} {
		opts := offline.Options{Features: feats, BaseDir: dir}
		if name == "spark" {
			opts.Compute = compute
		}
		e, err := duckdb.Open(ctx, filepath.Join(dir, "offline"), opts)
		if err != nil {
			return err
		}
		defer e.Close()
		engines[name] = e
	}
	outs := map[string]string{}
	for r := 1; r <= rounds; r++ {
		for _, name := range []string{"duckdb", "spark"} {
			outs[name] = filepath.Join(dir, fmt.Sprintf("pit-%s-%d.parquet", name, spineRows))
			t0 := time.Now()
			res, err := retrieval.Historical(ctx, engines[name], feats, retrieval.HistoricalRequest{Spine: spine, Service: "ranker", Out: outs[name]})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			log.Printf("round %d  %-6s %8.2f s  %d rows x %d columns  load %s", r, name, time.Since(t0).Seconds(), res.Rows, len(res.Columns), loadavg())
		}
	}
	return sameRows(ctx, outs["duckdb"], outs["spark"])
}

// sameRows checks that two Parquet files hold the same rows in the same order
// (each row numbered by its position, compared both ways).
func sameRows(ctx context.Context, a, b string) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	numbered := func(f string) string {
		return fmt.Sprintf("SELECT row_number() OVER () AS atrium_pos, * FROM read_parquet('%s')", strings.ReplaceAll(f, "'", "''"))
	}
	var onlyA, onlyB, rows int64
	q := fmt.Sprintf("SELECT (SELECT count(*) FROM (%s EXCEPT ALL %s)), (SELECT count(*) FROM (%s EXCEPT ALL %s)), (SELECT count(*) FROM read_parquet('%s'))",
		numbered(a), numbered(b), numbered(b), numbered(a), strings.ReplaceAll(a, "'", "''"))
	if err := db.QueryRowContext(ctx, q).Scan(&onlyA, &onlyB, &rows); err != nil {
		return err
	}
	if onlyA != 0 || onlyB != 0 {
		return fmt.Errorf("the outputs differ: %d rows (with their position) only in %s, %d only in %s", onlyA, a, onlyB, b)
	}
	log.Printf("outputs equal: %d rows, same order", rows)
	return nil
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
