package cassandra_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/onlinetest"
	_ "github.com/atrium-ml/atrium/internal/data/online/redis" // the peer measured in the same run
)

// BenchmarkRead measures one Read of 1 and of 100 random keys x 50 float
// features (the shapes of bench/online), on the Cassandra store and, when
// ATRIUM_TEST_REDIS is set, on the Redis store in the same run, so
// docs/benchmarks.md can give a ratio measured on the same machine.
//
//	go test -run '^$' -bench BenchmarkRead -benchtime 3s ./internal/data/online/cassandra/
func BenchmarkRead(b *testing.B) {
	const keys, nf = 2000, 50
	features := make([]string, nf)
	for i := range features {
		features[i] = fmt.Sprintf("f%02d", i)
	}
	rows := make([]online.Row, keys)
	ts := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i := range rows {
		vals := make([]online.Value, nf)
		for f := range vals {
			vals[f] = online.Float64(float64(i*nf + f))
		}
		rows[i] = online.Row{Key: online.MustKey(int64(i)), TS: ts, Values: vals}
	}
	stores := []struct{ name, url string }{}
	if base := os.Getenv("ATRIUM_TEST_CASSANDRA"); base != "" {
		u, _ := url.Parse(base)
		q := u.Query()
		q.Set("create_keyspace", "true")
		q.Set("prefix", fmt.Sprintf("bench%d:", time.Now().UnixNano()))
		u.RawQuery = q.Encode()
		stores = append(stores, struct{ name, url string }{"cassandra", u.String()})
	}
	if base := os.Getenv("ATRIUM_TEST_REDIS"); base != "" {
		u, _ := url.Parse(base)
		q := u.Query()
		q.Set("prefix", fmt.Sprintf("atrium-bench-%d:", time.Now().UnixNano()))
		q.Set("key_ttl", "1h") // the benchmark's keys clean themselves up
		u.RawQuery = q.Encode()
		stores = append(stores, struct{ name, url string }{"redis", u.String()})
	}
	if len(stores) == 0 {
		b.Skip("neither ATRIUM_TEST_CASSANDRA nor ATRIUM_TEST_REDIS is set")
	}
	ctx := context.Background()
	for _, st := range stores {
		s, err := online.Open(ctx, st.url, online.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Write(ctx, "listing_stats", features, rows); err != nil {
			b.Fatal(err)
		}
		written := make([]online.Key, len(rows))
		for i := range rows {
			written[i] = rows[i].Key
		}
		for _, n := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/%dx%d", st.name, n, nf), func(b *testing.B) {
				onlinetest.ReadRandom(b, s, "listing_stats", features, written, n, rand.New(rand.NewPCG(1, uint64(n))))
			})
		}
		s.Close()
	}
}
