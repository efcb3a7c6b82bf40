package pebble_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/onlinetest"
	"github.com/atrium-ml/atrium/internal/data/online/pebble"
)

// BenchmarkRead is one Read of a rank request's listings, 200 random keys
// of 50,000 x 15 float features (bench/serving/rank's listing_profile),
// and of one key (a single entity's features),
// from a store reopened after the write, so that the rows are in tables as
// `atrium serve` finds them after `atrium materialize`, and from the
// memtable of the store that wrote them; from tables with the row cache
// (the default) and without it.
//
//	go test -run '^$' -bench BenchmarkRead -benchtime 2000x ./internal/data/online/pebble/
func BenchmarkRead(b *testing.B) {
	const keys, nf = 50_000, 15
	ctx := context.Background()
	features := make([]string, nf)
	for i := range features {
		features[i] = fmt.Sprintf("l%02d", i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([]online.Row, keys)
	ts := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		vals := make([]online.Value, nf)
		for f := range vals {
			vals[f] = online.Float64(rng.NormFloat64())
		}
		rows[i] = online.Row{Key: online.MustKey(fmt.Sprintf("l%d", i)), TS: ts, Values: vals}
	}
	dir := b.TempDir()
	s, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Write(ctx, "listing_profile", features, rows); err != nil {
		b.Fatal(err)
	}
	written := make([]online.Key, len(rows))
	for i := range rows {
		written[i] = rows[i].Key
	}
	read := func(b *testing.B, s *pebble.Store) {
		for _, n := range []int{1, 200} {
			b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
				onlinetest.ReadRandom(b, s, "listing_profile", features, written, n, rng)
			})
		}
	}
	b.Run("memtable", func(b *testing.B) { read(b, s) })
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	// From tables, with the row cache (the default; warm after the first
	// few hundred reads) and without it.
	for _, c := range []struct {
		name string
		size int64
	}{{"tables", 0}, {"tables-no-row-cache", -1}} {
		s, err = pebble.Open(dir, pebble.Options{RowCacheSize: c.size})
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		b.Run(c.name, func(b *testing.B) { read(b, s) })
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
