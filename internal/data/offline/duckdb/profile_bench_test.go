package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/pipeline"
)

// BenchmarkProfileStaged times the profile stage alone on a set's published
// partitions, read as if they were a run's staged files: the directory in
// ATRIUM_PROFILE_BENCH holds date=YYYY-MM-DD/*.parquet (a copy of
// bench/pipeline's set=listing_engagement, say) and ATRIUM_PROFILE_BENCH_KEYS
// the set's join keys (comma-separated, default listing_id). It reports the
// process's CPU seconds per profile next to the wall time, what a shared
// machine distorts least.
//
//	ATRIUM_PROFILE_BENCH=/tmp/staged go test -run '^$' -bench ProfileStaged -benchtime 3x ./internal/data/offline/duckdb/
func BenchmarkProfileStaged(b *testing.B) {
	dir := os.Getenv("ATRIUM_PROFILE_BENCH")
	if dir == "" {
		b.Skip("ATRIUM_PROFILE_BENCH (a directory of date=YYYY-MM-DD partitions) is not set")
	}
	keys := strings.Split(cmp.Or(os.Getenv("ATRIUM_PROFILE_BENCH_KEYS"), "listing_id"), ",")
	ctx := context.Background()
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	plan := &pipeline.Plan{}
	staged := map[string][]string{}
	var all []string
	for _, ent := range ents {
		d, ok := strings.CutPrefix(ent.Name(), "date=")
		if !ok {
			continue
		}
		files, err := parquetFiles(filepath.Join(dir, ent.Name()))
		if err != nil {
			b.Fatal(err)
		}
		plan.Dates = append(plan.Dates, d)
		staged[d] = files
		all = append(all, files...)
	}
	slices.Sort(plan.Dates)
	if len(all) == 0 {
		b.Fatalf("no partitions under %s", dir)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	list, err := fileList(all)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []string{`SET TimeZone = 'UTC'`, fmt.Sprintf("CREATE TEMP VIEW %s AS SELECT * FROM read_parquet(%s, hive_partitioning = false)", outputView, list)} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	e := &Engine{}
	var cpu float64
	b.ResetTimer()
	for range b.N {
		t0, c0 := time.Now(), cpuSeconds()
		profiles, err := e.profile(ctx, conn, plan, keys, staged)
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuSeconds() - c0
		if len(profiles) != len(plan.Dates) {
			b.Fatalf("%d profiles for %d days", len(profiles), len(plan.Dates))
		}
		b.Logf("profiled %d days in %.2f s wall", len(plan.Dates), time.Since(t0).Seconds())
	}
	b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
}

// cpuSeconds is this process's user+sys CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
