package pebble

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atrium-ml/atrium/internal/data/online"
)

// writeX writes value v of feature "x" at second ts for keys.
func writeX(t *testing.T, s *Store, ts int64, v float64, keys ...string) {
	t.Helper()
	rows := make([]online.Row, len(keys))
	for i, k := range keys {
		rows[i] = online.Row{Key: online.MustKey(k), TS: time.Unix(ts, 0), Values: []online.Value{online.Float64(v)}}
	}
	if err := s.Write(context.Background(), "s", []string{"x"}, rows); err != nil {
		t.Fatal(err)
	}
}

// metric returns the value of the metric name the store reports, and
// whether it reports it, through a registry as /metrics gathers it (a
// pedantic one: what Collect sends must match Describe).
func metric(t *testing.T, s *Store, name string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		if len(mf.Metric) != 1 {
			t.Fatalf("%s: %d series, want 1", name, len(mf.Metric))
		}
		m := mf.Metric[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue(), true
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

// The row cache's hits and misses are the keys read from it and past it,
// whether the read is a Get (one key) or goes through an iterator: a key
// read a second time is a hit, a key not found is a miss every time (only
// rows found are cached).
func TestRowCacheMetrics(t *testing.T) {
	s, write := rowCacheStore(t)
	write(10, 1, "a", "b", "c")
	readX(t, s, "a", "b") // 2 misses: read from Pebble and cached
	readX(t, s, "a", "b") // 2 hits
	readX(t, s, "a")      // 1 hit
	readX(t, s, "c")      // 1 miss, through a Get
	readX(t, s, "c")      // 1 hit
	readX(t, s, "z")      // not found: 1 miss
	readX(t, s, "z", "c") // 1 miss, 1 hit
	const want = `
# HELP atrium_online_row_cache_capacity_bytes Most bytes the row cache holds (row_cache_mb).
# TYPE atrium_online_row_cache_capacity_bytes gauge
atrium_online_row_cache_capacity_bytes 6.7108864e+07
# HELP atrium_online_row_cache_evictions_total Rows evicted from the row cache to keep it within its capacity; rows removed because their key was written are not counted.
# TYPE atrium_online_row_cache_evictions_total counter
atrium_online_row_cache_evictions_total 0
# HELP atrium_online_row_cache_hits_total Keys read from the Pebble online store that its row cache (row_cache_mb) held: served without reading Pebble.
# TYPE atrium_online_row_cache_hits_total counter
atrium_online_row_cache_hits_total 5
# HELP atrium_online_row_cache_misses_total Keys read from the Pebble online store that its row cache did not hold: read from Pebble (found there or not).
# TYPE atrium_online_row_cache_misses_total counter
atrium_online_row_cache_misses_total 5
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want),
		"atrium_online_row_cache_hits_total", "atrium_online_row_cache_misses_total",
		"atrium_online_row_cache_evictions_total", "atrium_online_row_cache_capacity_bytes"); err != nil {
		t.Error(err)
	}
	// Three rows are cached: each weighs its key, its record and the
	// fixed cost per entry.
	if b, _ := metric(t, s, "atrium_online_row_cache_bytes"); b < 3*rowCacheEntryOverhead || b > 3*(rowCacheEntryOverhead+64) {
		t.Errorf("atrium_online_row_cache_bytes %v for 3 small rows", b)
	}
	// A write removes its keys from the cache (not an eviction): the next
	// read of each is a miss.
	write(20, 2, "a")
	readX(t, s, "a")
	if n, _ := metric(t, s, "atrium_online_row_cache_misses_total"); n != 6 {
		t.Errorf("misses after a write and a read of its key: %v, want 6", n)
	}
	if n, _ := metric(t, s, "atrium_online_row_cache_evictions_total"); n != 0 {
		t.Errorf("evictions after a write: %v, want 0", n)
	}
	if problems, err := testutil.CollectAndLint(s); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// A row cache smaller than the rows read evicts, and says so.
func TestRowCacheMetricsEvictions(t *testing.T) {
	s, err := Open(t.TempDir(), Options{RowCacheSize: 10 * rowCacheEntryOverhead})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%03d", i)
	}
	writeX(t, s, 10, 1, keys...)
	readX(t, s, keys...)
	b, _ := metric(t, s, "atrium_online_row_cache_bytes")
	n, _ := metric(t, s, "atrium_online_row_cache_evictions_total")
	if n == 0 || b > 10*rowCacheEntryOverhead {
		t.Errorf("100 rows read into a cache of 10: %v evictions, %v bytes held", n, b)
	}
}

// Without a row cache its metrics are absent; Pebble's are there, and
// count the block cache's lookups of rows read from a table.
func TestRowCacheOffMetrics(t *testing.T) {
	s, err := Open(t.TempDir(), Options{RowCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	writeX(t, s, 10, 1, "a")
	if err := s.db.Flush(); err != nil { // into a table, whose blocks are cached
		t.Fatal(err)
	}
	readX(t, s, "a")
	hits, _ := metric(t, s, "atrium_online_pebble_block_cache_hits_total")
	misses, _ := metric(t, s, "atrium_online_pebble_block_cache_misses_total")
	if misses == 0 {
		t.Errorf("a first read from a table: no block cache miss")
	}
	readX(t, s, "a")
	if h, _ := metric(t, s, "atrium_online_pebble_block_cache_hits_total"); h <= hits {
		t.Errorf("block cache hits %v after a second read of a key, %v before it", h, hits)
	}
	if m, _ := metric(t, s, "atrium_online_pebble_block_cache_misses_total"); m != misses {
		t.Errorf("block cache misses %v after a second read of a key, %v before it", m, misses)
	}
	if b, _ := metric(t, s, "atrium_online_pebble_block_cache_bytes"); b == 0 {
		t.Error("atrium_online_pebble_block_cache_bytes 0 with blocks read")
	}
	if r, _ := metric(t, s, "atrium_online_pebble_read_amplification"); r != 1 {
		t.Errorf("read amplification %v with one table, want 1", r)
	}
	if m, ok := metric(t, s, "atrium_online_pebble_memtable_bytes"); !ok || m == 0 {
		t.Errorf("atrium_online_pebble_memtable_bytes %v %v", m, ok)
	}
	if n := testutil.CollectAndCount(s, "atrium_online_row_cache_hits_total", "atrium_online_row_cache_misses_total",
		"atrium_online_row_cache_evictions_total", "atrium_online_row_cache_bytes", "atrium_online_row_cache_capacity_bytes"); n != 0 {
		t.Errorf("%d row cache metrics without a row cache, want none", n)
	}
	// Closed, the store reports nothing (its Pebble is gone).
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(s); n != 0 {
		t.Errorf("%d metrics from a closed store", n)
	}
}
