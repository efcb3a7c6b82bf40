package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/atrium-ml/atrium/internal/data/online"
)

// countingClient is the real client, counting the calls that reach Redis: a
// DoMulti to one node is one round trip (rueidis pipelines it), a Do is one.
type countingClient struct {
	rueidis.Client
	do, doMulti atomic.Int64
}

func (c *countingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.do.Add(1)
	return c.Client.Do(ctx, cmd)
}

func (c *countingClient) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	c.doMulti.Add(1)
	return c.Client.DoMulti(ctx, cmds...)
}

func openCounting(t *testing.T) (*Store, *countingClient) {
	t.Helper()
	base := os.Getenv("ATRIUM_TEST_REDIS")
	if base == "" {
		t.Skip("ATRIUM_TEST_REDIS is not set: skipping the Redis online store tests (. .ci/services.sh starts a server and sets it)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("prefix", "atrium-test-"+hex.EncodeToString(b[:])+":")
	u.RawQuery = q.Encode()
	s, err := Open(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Remove what the test wrote: its rows and layouts all start with the prefix.
		ctx := context.Background()
		var cursor uint64
		for {
			e, err := s.client.Do(ctx, s.client.B().Scan().Cursor(cursor).Match(s.prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				break
			}
			if len(e.Elements) > 0 {
				s.client.Do(ctx, s.client.B().Del().Key(e.Elements...).Build())
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
		s.Close()
	})
	c := &countingClient{Client: s.client}
	s.client = c
	return s, c
}

// TestReadOneRoundTrip checks the contract of online.Store.Read on Redis: N
// keys of M sets cost one round trip (plus one, once per process, to learn a
// layout it has not seen), never one per key or per set.
func TestReadOneRoundTrip(t *testing.T) {
	writer, _ := openCounting(t)
	ctx := context.Background()
	ts := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	keys := make([]online.Key, 100)
	sets := []string{"a", "b", "c"}
	for _, set := range sets {
		rows := make([]online.Row, len(keys))
		for i := range keys {
			keys[i] = online.MustKey(int64(i))
			rows[i] = online.Row{Key: keys[i], TS: ts, Values: []online.Value{online.Int64(int64(i)), online.String(set)}}
		}
		if err := writer.Write(ctx, set, []string{"n", "s"}, rows); err != nil {
			t.Fatal(err)
		}
	}

	// A second store on the same prefix: another serving process, which has
	// not seen the layouts yet.
	reader := &Store{client: writer.client.(*countingClient).Client, prefix: writer.prefix}
	counter := &countingClient{Client: reader.client}
	reader.client = counter
	queries := make([]online.Query, len(sets))
	for i, set := range sets {
		queries[i] = online.Query{Set: set, Features: []string{"s", "n"}, Keys: keys}
	}
	results := make([]online.Result, len(queries))
	for round, want := range []int64{2, 1, 1} {
		counter.do.Store(0)
		counter.doMulti.Store(0)
		if err := reader.Read(ctx, queries, results); err != nil {
			t.Fatal(err)
		}
		if d, m := counter.do.Load(), counter.doMulti.Load(); d != 0 || m != want {
			t.Errorf("read %d of %d keys x %d sets: %d Do and %d DoMulti calls, want 0 and %d", round, len(keys), len(sets), d, m, want)
		}
		for i, set := range sets {
			for j := range keys {
				row := results[i].Row(j)
				if !results[i].Found[j] || row[0].Str() != set || row[1].Int64() != int64(j) {
					t.Fatalf("read %d: set %s key %d: found %v, %v", round, set, j, results[i].Found[j], row)
				}
			}
		}
	}
}

// TestWriteOneRoundTrip: a one-row write (a push) is one EVALSHA once the
// layout is known.
func TestWriteOneRoundTrip(t *testing.T) {
	s, c := openCounting(t)
	ctx := context.Background()
	k := online.MustKey("k")
	for i := range 3 {
		c.do.Store(0)
		c.doMulti.Store(0)
		row := online.Row{Key: k, TS: time.Unix(int64(1_700_000_000+i), 0), Values: []online.Value{online.Float64(float64(i))}}
		if err := s.Write(ctx, "p", []string{"v"}, []online.Row{row}); err != nil {
			t.Fatal(err)
		}
		want := int64(1)
		if i == 0 {
			want = 3 // the layout: HSETNX and HGET, once per process and set
		}
		if got := c.do.Load() + c.doMulti.Load(); got != want {
			t.Errorf("write %d: %d round trips, want %d", i, got, want)
		}
	}
	res := make([]online.Result, 1)
	if err := s.Read(ctx, []online.Query{{Set: "p", Features: []string{"v"}, Keys: []online.Key{k}}}, res); err != nil {
		t.Fatal(err)
	}
	if got := res[0].Values[0].Float64(); got != 2 {
		t.Errorf("after three pushes: %v, want 2", got)
	}
}
