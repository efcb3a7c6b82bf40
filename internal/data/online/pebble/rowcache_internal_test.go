package pebble

import (
	"context"
	"fmt"
	"hash/maphash"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
)

// rowCacheStore opens a store with the row cache on and writes value v of
// feature "x" at second ts for keys.
func rowCacheStore(t *testing.T) (*Store, func(ts int64, v float64, keys ...string)) {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.rows == nil {
		t.Fatal("the row cache is off by default: want it on")
	}
	write := func(ts int64, v float64, keys ...string) {
		t.Helper()
		writeX(t, s, ts, v, keys...)
	}
	return s, write
}

// readX reads feature "x" of keys: its value, or -1 when not found.
func readX(t *testing.T, s *Store, keys ...string) []float64 {
	t.Helper()
	q := []online.Query{{Set: "s", Features: []string{"x"}}}
	for _, k := range keys {
		q[0].Keys = append(q[0].Keys, online.MustKey(k))
	}
	res := make([]online.Result, 1)
	if err := s.Read(context.Background(), q, res); err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(keys))
	for i := range keys {
		out[i] = -1
		if res[0].Found[i] {
			out[i] = res[0].Values[i].Float64()
		}
	}
	return out
}

// A row read once is served from the row cache, and every write or delete
// of its key is seen by the next read: through a query of one key (a Get)
// and of several (the iterator), newer rows replacing it, older ones not,
// deletes, and rows written again after a delete.
func TestRowCacheFollowsWrites(t *testing.T) {
	for _, keys := range [][]string{{"a"}, {"a", "b", "c"}} {
		t.Run(fmt.Sprint(len(keys), " keys"), func(t *testing.T) {
			s, write := rowCacheStore(t)
			want := func(step string, v float64) {
				t.Helper()
				for i, got := range readX(t, s, keys...) {
					if got != v {
						t.Fatalf("%s: key %s reads %v, want %v", step, keys[i], got, v)
					}
				}
			}
			write(10, 1, keys...)
			want("first read", 1)
			if _, ok := s.rows.get(rowKey(nil, "s", online.MustKey("a"))); !ok {
				t.Fatal("a row read is not in the row cache")
			}
			want("cached", 1)
			write(20, 2, keys...)
			want("after a newer row", 2)
			write(15, 3, keys...) // older than the stored row: kept out by the guard
			want("after an older row", 2)
			keysOf := make([]online.Key, len(keys))
			for i, k := range keys {
				keysOf[i] = online.MustKey(k)
			}
			if err := s.Delete(context.Background(), "s", keysOf, time.Unix(30, 0)); err != nil {
				t.Fatal(err)
			}
			want("after a delete", -1)
			want("after a delete, again", -1)
			write(40, 4, keys...)
			want("written after the delete", 4)
		})
	}
}

// A row read from Pebble just before a write of its key, and offered to
// the cache just after the write removed the key, is not cached: the next
// read sees the write (without the generation check it read the old row
// until evicted).
func TestRowCacheRefusesARowReadBeforeAWrite(t *testing.T) {
	for _, keys := range [][]string{{"a"}, {"a", "b"}} {
		t.Run(fmt.Sprint(len(keys), " keys"), func(t *testing.T) {
			s, write := rowCacheStore(t)
			write(10, 1, keys...)
			wrote := false
			testHookRowCacheAdd = func() {
				if !wrote {
					wrote = true
					write(20, 2, keys...)
				}
			}
			defer func() { testHookRowCacheAdd = nil }()
			if got := readX(t, s, keys...); got[0] != 1 {
				t.Fatalf("the read racing the write: %v, want the old row (1)", got)
			}
			testHookRowCacheAdd = nil
			for i, got := range readX(t, s, keys...) {
				if got != 2 {
					t.Fatalf("key %s after the write: %v, want 2 (a stale row was cached)", keys[i], got)
				}
			}
		})
	}
}

// With row_cache_mb=0 there is no row cache.
func TestRowCacheOff(t *testing.T) {
	s, err := Open(t.TempDir(), Options{RowCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.rows != nil {
		t.Fatal("RowCacheSize -1: want no row cache")
	}
}

// An entry found under a key's hash but holding another key (two keys
// sharing a 64-bit hash) is a miss, never the other key's row; an entry
// holding the key gives its record.
func TestRowCacheChecksTheKey(t *testing.T) {
	c := newRowCache(1 << 20)
	a, b := []byte("set\x00a"), []byte("set\x00b")
	c.add(c.generation(), b, []byte("b's record"))
	e, ok := c.cache.GetIfPresent(maphash.Bytes(c.seed, b))
	if !ok {
		t.Fatal("the entry of b is not cached")
	}
	c.cache.Set(maphash.Bytes(c.seed, a), e) // b's entry under a's hash
	if rec, ok := c.get(a); ok {
		t.Fatalf("a read b's entry: %q", rec)
	}
	if rec, ok := c.get(b); !ok || string(rec) != "b's record" {
		t.Fatalf("b: %q %v, want its record", rec, ok)
	}
	c.add(c.generation(), a, nil) // an empty record is a record
	if rec, ok := c.get(a); !ok || len(rec) != 0 {
		t.Fatalf("a: %q %v, want its empty record", rec, ok)
	}
}
