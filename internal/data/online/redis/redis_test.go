package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/onlinetest"
	"github.com/atrium-ml/atrium/internal/data/online/redis"
)

// testURL returns the test server's URL with a prefix unique to this run and
// id, and removes the run's keys when the test ends.
func testURL(t *testing.T) func(id string, params ...string) string {
	t.Helper()
	base := os.Getenv("ATRIUM_TEST_REDIS")
	if base == "" {
		t.Skip("ATRIUM_TEST_REDIS is not set: skipping the Redis online store tests (. .ci/services.sh starts a server and sets it)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	run := "atrium-test-" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() { deleteKeys(t, base, run) })
	return func(id string, params ...string) string {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("prefix", run+id+":")
		for i := 0; i+1 < len(params); i += 2 {
			q.Set(params[i], params[i+1])
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
}

func rawClient(t testing.TB, base string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(base)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func deleteKeys(t testing.TB, base, prefix string) {
	c := rawClient(t, base)
	defer c.Close()
	ctx := context.Background()
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Logf("cleaning up %s*: %v", prefix, err)
			return
		}
		if len(e.Elements) > 0 {
			c.Do(ctx, c.B().Del().Key(e.Elements...).Build())
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}

func TestConformance(t *testing.T) {
	urlFor := testURL(t)
	onlinetest.Run(t, func(t *testing.T, id string) online.Store {
		s, err := online.Open(context.Background(), urlFor(t.Name()+"/"+id), online.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestKeyTTL(t *testing.T) {
	urlFor := testURL(t)
	ctx := context.Background()
	c := rawClient(t, os.Getenv("ATRIUM_TEST_REDIS"))
	defer c.Close()
	u, _ := url.Parse(urlFor("ttl"))
	k := online.MustKey("k")
	rowKey := u.Query().Get("prefix") + "s\x00" + string(k)
	write := func(params ...string) {
		t.Helper()
		s, err := online.Open(ctx, urlFor("ttl", params...), online.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Write(ctx, "s", []string{"a"}, []online.Row{{Key: k, TS: time.Now(), Values: []online.Value{online.Int64(1)}}}); err != nil {
			t.Fatal(err)
		}
	}
	pttl := func() int64 {
		t.Helper()
		ms, err := c.Do(ctx, c.B().Pttl().Key(rowKey).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	write("key_ttl", "1h")
	if ms := pttl(); ms <= 0 || ms > time.Hour.Milliseconds() {
		t.Errorf("PTTL of a row written with key_ttl=1h: %d ms", ms)
	}
	// Written again by a store without key_ttl: the row no longer expires.
	write()
	if ms := pttl(); ms != -1 {
		t.Errorf("PTTL of a row rewritten without key_ttl: %d ms, want -1 (no expiry)", ms)
	}
}

// TestWritersInSeveralProcesses: stores opened separately (what writers in
// different processes are: their own connections, their own layout caches)
// write the same keys at once; the newest row of each key wins, because the
// event-time guard runs on the server, atomically per row.
func TestWritersInSeveralProcesses(t *testing.T) {
	urlFor := testURL(t)
	ctx := context.Background()
	const writers, keys, rounds = 4, 50, 10
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	want := make([][writers]int64, keys) // per key, each writer's newest event time
	errs := make(chan error, writers)
	done := make(chan struct{})
	for w := range writers {
		s, err := online.Open(ctx, urlFor("shared"), online.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		go func() {
			defer func() { done <- struct{}{} }()
			for r := range rounds {
				rows := make([]online.Row, keys)
				for k := range rows {
					// Event times interleave across writers and go back and
					// forth across rounds; the value is the event time.
					ns := int64((r*7919+k*104729)%1000)*int64(time.Millisecond) + int64(w)
					rows[k] = online.Row{Key: online.MustKey(int64(k)), TS: t0.Add(time.Duration(ns)), Values: []online.Value{online.Int64(ns)}}
					want[k][w] = max(want[k][w], ns)
				}
				if err := s.Write(ctx, "c", []string{"ns"}, rows); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range writers {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, err := online.Open(ctx, urlFor("shared"), online.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := online.Query{Set: "c", Features: []string{"ns"}}
	for k := range keys {
		q.Keys = append(q.Keys, online.MustKey(int64(k)))
	}
	res := make([]online.Result, 1)
	if err := s.Read(ctx, []online.Query{q}, res); err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		newest := slices.Max(want[k][:])
		if got := res[0].Values[k].Int64(); !res[0].Found[k] || got != newest || !res[0].TS[k].Equal(t0.Add(time.Duration(newest))) {
			t.Errorf("key %d: found %v, value %d at %s; want the newest, %d", k, res[0].Found[k], got, res[0].TS[k], newest)
		}
	}
}

func TestMalformedStoredData(t *testing.T) {
	urlFor := testURL(t)
	ctx := context.Background()
	s, err := redis.Open(ctx, urlFor("bad"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := rawClient(t, os.Getenv("ATRIUM_TEST_REDIS"))
	defer c.Close()
	u, _ := url.Parse(urlFor("bad"))
	prefix := u.Query().Get("prefix")
	k := online.MustKey("k")
	rowKey := prefix + "s\x00" + string(k)
	read := func() error {
		return s.Read(ctx, []online.Query{{Set: "s", Features: []string{"a"}, Keys: []online.Key{k}}}, make([]online.Result, 1))
	}
	// A row from a future format version.
	c.Do(ctx, c.B().Hset().Key(rowKey).FieldValue().FieldValue("\x00ts", "09223372036854775808").FieldValue("\x00row", "\x09zzzzzzzzz").Build())
	if err := read(); !errors.Is(err, online.ErrFormat) {
		t.Errorf("Read of a row in format 9: %v, want ErrFormat", err)
	}
	// A row naming a layout nobody stored.
	c.Do(ctx, c.B().Hset().Key(rowKey).FieldValue().FieldValue("\x00row", "\x01\x00\x00\x00\x00\x00\x00\x00\x07").Build())
	if err := read(); !errors.Is(err, online.ErrFormat) || !strings.Contains(err.Error(), "not stored") {
		t.Errorf("Read of a row with an unknown layout: %v, want ErrFormat", err)
	}
	// A malformed event time is refused by the write guard, not overwritten.
	c.Do(ctx, c.B().Hset().Key(rowKey).FieldValue().FieldValue("\x00ts", "yesterday").Build())
	err = s.Write(ctx, "s", []string{"a"}, []online.Row{{Key: k, TS: time.Now(), Values: []online.Value{online.Int64(1)}}})
	if err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("Write over a malformed event time: %v, want an error", err)
	}
	// Another feature list stored under the id of ours (what a hash collision
	// would look like) is detected, not mixed up.
	s2, err := redis.Open(ctx, urlFor("collision"))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	u2, _ := url.Parse(urlFor("collision"))
	p2 := u2.Query().Get("prefix")
	id := fnv64a("x\x00")
	c.Do(ctx, c.B().Hset().Key(p2+"s\x00L").FieldValue().FieldValue(id, string(online.AppendLayout(nil, []string{"y"}))).Build())
	err = s2.Write(ctx, "s", []string{"x"}, []online.Row{{Key: k, TS: time.Now(), Values: []online.Value{online.Int64(1)}}})
	if !errors.Is(err, online.ErrFormat) || !strings.Contains(err.Error(), "collision") {
		t.Errorf("Write with a colliding layout id: %v, want ErrFormat", err)
	}
}

// fnv64a is the layout id of the NUL-terminated names in s, as 8 big-endian bytes.
func fnv64a(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], h.Sum64())
	return string(b[:])
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"redis://127.0.0.1:1/0?key_ttl=soon", "redis://127.0.0.1:1/x/y"} {
		if s, err := online.Open(context.Background(), u, online.OpenOptions{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", u)
		}
	}
}

// BenchmarkRead100x50 reads 100 keys x 50 features (one pipelined round trip).
func BenchmarkRead100x50(b *testing.B) {
	base := os.Getenv("ATRIUM_TEST_REDIS")
	if base == "" {
		b.Skip("ATRIUM_TEST_REDIS is not set")
	}
	prefix := "atrium-bench-read:"
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("prefix", prefix)
	u.RawQuery = q.Encode()
	ctx := context.Background()
	s, err := online.Open(ctx, u.String(), online.OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	features := make([]string, 50)
	for f := range features {
		features[f] = fmt.Sprintf("f%02d", f)
	}
	rows := make([]online.Row, 1000)
	for i := range rows {
		vals := make([]online.Value, 50)
		for f := range vals {
			vals[f] = online.Float64(float64(i * f))
		}
		rows[i] = online.Row{Key: online.MustKey(int64(i)), TS: time.Now(), Values: vals}
	}
	if err := s.Write(ctx, "s", features, rows); err != nil {
		b.Fatal(err)
	}
	keys := make([]online.Key, 100)
	for i := range keys {
		keys[i] = online.MustKey(int64(i * 7))
	}
	res := make([]online.Result, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Read(ctx, []online.Query{{Set: "s", Features: features, Keys: keys}}, res); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	deleteKeys(b, base, prefix)
}
