package pebble

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
)

// Reads are served from the block cache: Pebble charges each memtable to
// the cache, and a cache of CacheSize alone held no block once a memtable
// of MemTableSize existed (every read decompressed its blocks from the
// file again, 5x the CPU of a cached read).
func TestReadsHitTheBlockCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A 1 MiB cache: the memtable the reopened store replays its log into
	// (4 MiB for these rows) is bigger than it.
	opts := Options{CacheSize: 1 << 20, RowCacheSize: -1} // no row cache: every read reaches Pebble
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	features := []string{"a", "b"}
	rows := make([]online.Row, 5000)
	for i := range rows {
		rows[i] = online.Row{Key: online.MustKey(fmt.Sprintf("k%d", i)), TS: time.Unix(1, 0),
			Values: []online.Value{online.Float64(float64(i)), online.String("x")}}
	}
	if err := s.Write(ctx, "s", features, rows); err != nil {
		t.Fatal(err)
	}
	// Reopened, the rows are in a table, as `atrium serve` finds them.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := []online.Query{{Set: "s", Features: features, Keys: []online.Key{rows[10].Key, rows[4000].Key}}}
	res := make([]online.Result, 1)
	for range 10 {
		if err := s.Read(ctx, q, res); err != nil {
			t.Fatal(err)
		}
		if !res[0].Found[0] || !res[0].Found[1] || res[0].Values[2].Float64() != 4000 {
			t.Fatalf("read %v %v", res[0].Found, res[0].Values)
		}
	}
	m := s.db.Metrics()
	if m.Table.ZombieCount+m.Levels[0].TablesCount+m.Levels[6].TablesCount == 0 {
		t.Fatalf("the rows are in no table: nothing to cache\\n%s", m)
	}
	if c := m.BlockCache; c.Hits == 0 || c.Size == 0 {
		t.Fatalf("block cache: %d hits, %d misses, %d bytes: want reads served from it", c.Hits, c.Misses, c.Size)
	}
}
