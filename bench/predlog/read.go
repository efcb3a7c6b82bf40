package main

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

// benchRead writes n rows with the prediction log, copies them to a file whose
// features are MAP(VARCHAR, DOUBLE) and MAP(VARCHAR, VARCHAR) columns (the
// layout not chosen), and times the queries a drift monitor runs on each:
// one feature's statistics, and every numeric feature's mean.
func benchRead(n, runs int) {
	dir, err := os.MkdirTemp("", "predlog-read-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	w, err := predlog.Open(ctx, predlog.Options{Dir: dir, BufferRows: n + 1, FlushInterval: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var names []string
	for i := range n / perRequest {
		r := record(rng, fmt.Sprint("req-", i))
		names = r.Features
		w.Log(r)
	}
	if err := w.Close(ctx); err != nil {
		log.Fatal(err)
	}
	src, err := predlog.Source(dir, "ranker", time.Time{}, time.Time{})
	if err != nil {
		log.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	mapFile := filepath.Join(dir, "map.parquet")
	keys := "['" + strings.Join(names, "', '") + "']"
	vals := make([]string, len(names))
	for i, f := range names {
		vals[i] = "features." + f
	}
	if _, err := db.Exec(fmt.Sprintf(`COPY (SELECT * EXCLUDE (features, date, hour),
			MAP(%s, [%s]) AS num, MAP(['city', 'kind', 'neighbourhood'], [features.city, features.kind, features.neighbourhood]) AS cat
		FROM %s) TO '%s' (FORMAT parquet, COMPRESSION zstd)`, keys, strings.Join(vals, ", "), src, mapFile)); err != nil {
		log.Fatal(err)
	}
	files, _ := predlog.Files(dir, "ranker", time.Time{}, time.Time{})
	structSize, mapSize := size(files...), size(mapFile)
	mapSrc := fmt.Sprintf("read_parquet('%s')", mapFile)
	one := func(f string) string {
		return fmt.Sprintf("count(%[1]s), avg(%[1]s), stddev_pop(%[1]s), min(%[1]s), max(%[1]s), approx_quantile(%[1]s, 0.5)", f)
	}
	allStruct, allMap := make([]string, len(names)), make([]string, len(names))
	for i, f := range names {
		allStruct[i] = "avg(features." + f + ")"
		allMap[i] = "avg(num['" + f + "'])"
	}
	queries := []struct{ name, structQ, mapQ string }{
		{"one feature: count, mean, std, min, max, median",
			"SELECT " + one("features.f05") + " FROM " + src,
			"SELECT " + one("num['f05']") + " FROM " + mapSrc},
		{fmt.Sprintf("all %d numeric features' means", len(names)),
			"SELECT " + strings.Join(allStruct, ", ") + " FROM " + src,
			"SELECT " + strings.Join(allMap, ", ") + " FROM " + mapSrc},
		{"a categorical feature's counts",
			"SELECT features.city, count(*) FROM " + src + " GROUP BY 1",
			"SELECT cat['city'], count(*) FROM " + mapSrc + " GROUP BY 1"},
	}
	fmt.Printf("%d rows x %d features; files: STRUCT %.1f MB, MAP %.1f MB; median of %d runs, interleaved\n", n, len(names)+3, float64(structSize)/1e6, float64(mapSize)/1e6, runs)
	for _, q := range queries {
		var st, mt []time.Duration
		for range runs {
			st = append(st, timeQuery(db, q.structQ))
			mt = append(mt, timeQuery(db, q.mapQ))
		}
		s, m := median(st), median(mt)
		fmt.Printf("%-48s STRUCT %8.1f ms  MAP %8.1f ms  MAP / STRUCT %5.1fx\n", q.name, ms(s), ms(m), float64(m)/float64(s))
	}
}

func timeQuery(db *sql.DB, q string) time.Duration {
	start := time.Now()
	rows, err := db.Query(q)
	if err != nil {
		log.Fatalf("%s: %v", q, err)
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}
	rows.Close()
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func size(files ...string) int64 {
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}
