// Package onlinetest is the conformance suite of online.Store: every backend's
// tests call Run with a function that opens a store of that backend.
package onlinetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
)

// Opener opens the store named id. Opening the same id again after Close must
// give the same data (for persistence checks); different ids must be
// independent stores that start empty.
type Opener func(t *testing.T, id string) online.Store

// Run runs the conformance suite against the backend open opens.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"TypedValues", testTypedValues},
		{"EventTimeGuard", testEventTimeGuard},
		{"GuardWithinOneWrite", testGuardWithinOneWrite},
		{"MissingKeysAndFeatures", testMissing},
		{"KeyTypes", testKeyTypes},
		{"ManyKeysManySets", testManyKeys},
		{"RowReplacedWhole", testRowReplacedWhole},
		{"FeaturesChange", testFeaturesChange},
		{"ResultReuse", testResultReuse},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentReadersAndWriters", testConcurrentReadWrite},
		{"InvalidArguments", testInvalid},
		{"CloseReopen", testCloseReopen},
		{"Delete", testDelete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

func mustOpen(t *testing.T, open Opener, id string) online.Store {
	t.Helper()
	s := open(t, id)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func write(t *testing.T, s online.Store, set string, features []string, rows ...online.Row) {
	t.Helper()
	if err := s.Write(context.Background(), set, features, rows); err != nil {
		t.Fatalf("Write(%s): %v", set, err)
	}
}

func read(t *testing.T, s online.Store, qs ...online.Query) []online.Result {
	t.Helper()
	res := make([]online.Result, len(qs))
	if err := s.Read(context.Background(), qs, res); err != nil {
		t.Fatalf("Read: %v", err)
	}
	for i, q := range qs {
		r := res[i]
		if len(r.Found) != len(q.Keys) || len(r.TS) != len(q.Keys) || len(r.Values) != len(q.Keys)*len(q.Features) {
			t.Fatalf("Read query %d: got %d found, %d ts, %d values for %d keys x %d features",
				i, len(r.Found), len(r.TS), len(r.Values), len(q.Keys), len(q.Features))
		}
	}
	return res
}

func row(k online.Key, ts time.Time, vals ...online.Value) online.Row {
	return online.Row{Key: k, TS: ts, Values: vals}
}

// checkRow asserts key j of r is found at ts with want values.
func checkRow(t *testing.T, r online.Result, j int, ts time.Time, want ...online.Value) {
	t.Helper()
	if !r.Found[j] {
		t.Fatalf("key %d: not found, want a row at %s", j, ts)
	}
	if !r.TS[j].Equal(ts) {
		t.Errorf("key %d: event time %s, want %s", j, r.TS[j].Format(time.RFC3339Nano), ts.Format(time.RFC3339Nano))
	}
	got := r.Row(j)
	for f := range want {
		if !got[f].Equal(want[f]) {
			t.Errorf("key %d feature %d: got %s (%s), want %s (%s)", j, f, got[f], got[f].Kind(), want[f], want[f].Kind())
		}
	}
}

func checkNotFound(t *testing.T, r online.Result, j int) {
	t.Helper()
	if r.Found[j] {
		t.Fatalf("key %d: found a row at %s, want not found", j, r.TS[j])
	}
	if !r.TS[j].IsZero() {
		t.Errorf("key %d: not found but event time %s", j, r.TS[j])
	}
	for f, v := range r.Row(j) {
		if !v.IsMissing() {
			t.Errorf("key %d feature %d: %s, want missing", j, f, v)
		}
	}
}

func testTypedValues(t *testing.T, open Opener) {
	s := mustOpen(t, open, "typed")
	features := []string{"i", "f", "s", "b", "ts", "n", "neg", "nan", "empty", "bin", "no"}
	when := time.Date(2025, 12, 31, 23, 59, 59, 123456789, time.UTC)
	want := []online.Value{
		online.Int64(math.MaxInt64), online.Float64(-0.125), online.String("Café ☕ \"quoted\""),
		online.Bool(true), online.Time(when), online.Null, online.Int64(math.MinInt64),
		online.Float64(math.NaN()), online.String(""), online.String("a\x00b\xff"), online.Bool(false),
	}
	k := online.MustKey("listing-1")
	write(t, s, "set", features, row(k, t0, want...))
	r := read(t, s, online.Query{Set: "set", Features: features, Keys: []online.Key{k}})
	checkRow(t, r[0], 0, t0, want...)
	if got := r[0].Row(0)[4].Time(); !got.Equal(when) {
		t.Errorf("timestamp value %s, want %s", got, when)
	}
	if got := r[0].Row(0)[5]; !got.IsNull() || got.IsMissing() {
		t.Errorf("null value read as %s, want null", got)
	}
}

func testEventTimeGuard(t *testing.T, open Opener) {
	s := mustOpen(t, open, "guard")
	k := online.MustKey(int64(7))
	fs := []string{"v"}
	q := online.Query{Set: "g", Features: fs, Keys: []online.Key{k}}
	steps := []struct {
		ts      time.Time
		v       int64
		wantTS  time.Time
		wantV   int64
		comment string
	}{
		{t0, 1, t0, 1, "first write"},
		{t0.Add(-time.Nanosecond), 2, t0, 1, "an older row (by 1ns) is ignored"},
		{t0.Add(-48 * time.Hour), 3, t0, 1, "a much older row is ignored"},
		{t0, 4, t0, 4, "a row with the same event time overwrites"},
		{t0.Add(time.Hour), 5, t0.Add(time.Hour), 5, "a newer row overwrites"},
		{t0.Add(30 * time.Minute), 6, t0.Add(time.Hour), 5, "late data stays behind"},
	}
	for _, st := range steps {
		write(t, s, "g", fs, row(k, st.ts, online.Int64(st.v)))
		r := read(t, s, q)
		if r[0].Row(0)[0].Int64() != st.wantV || !r[0].TS[0].Equal(st.wantTS) {
			t.Errorf("%s: stored %s at %s, want %d at %s", st.comment, r[0].Row(0)[0], r[0].TS[0], st.wantV, st.wantTS)
		}
	}
}

func testGuardWithinOneWrite(t *testing.T, open Opener) {
	s := mustOpen(t, open, "guard1")
	k := online.MustKey("a")
	fs := []string{"v"}
	write(t, s, "g", fs,
		row(k, t0.Add(time.Hour), online.Int64(1)),
		row(k, t0, online.Int64(2)), // older, later in the same call
	)
	r := read(t, s, online.Query{Set: "g", Features: fs, Keys: []online.Key{k}})
	checkRow(t, r[0], 0, t0.Add(time.Hour), online.Int64(1))
}

func testMissing(t *testing.T, open Opener) {
	s := mustOpen(t, open, "missing")
	fs := []string{"a", "b"}
	write(t, s, "s", fs, row(online.MustKey("k2"), t0, online.Int64(2), online.Null))
	keys := []online.Key{online.MustKey("k1"), online.MustKey("k2"), online.MustKey("k3")}
	r := read(t, s,
		online.Query{Set: "s", Features: []string{"b", "zz", "a"}, Keys: keys},
		online.Query{Set: "no_such_set", Features: fs, Keys: keys},
		online.Query{Set: "s", Features: nil, Keys: keys},
		online.Query{Set: "s", Features: fs, Keys: nil},
	)
	checkNotFound(t, r[0], 0)
	checkRow(t, r[0], 1, t0, online.Null, online.Missing, online.Int64(2))
	checkNotFound(t, r[0], 2)
	for j := range keys {
		checkNotFound(t, r[1], j)
	}
	if !r[2].Found[1] || r[2].Found[0] || len(r[2].Values) != 0 {
		t.Errorf("query without features: found %v, %d values; want [false true false], 0", r[2].Found, len(r[2].Values))
	}
	if len(r[3].Found) != 0 {
		t.Errorf("query without keys: %d results", len(r[3].Found))
	}
}

func testKeyTypes(t *testing.T, open Opener) {
	s := mustOpen(t, open, "keys")
	fs := []string{"v"}
	keys := []online.Key{
		online.MustKey(int64(1), "a"), online.MustKey("1", "a"), online.MustKey(int64(1), "b"),
		online.MustKey(int64(-1), "a"), online.MustKey("a", "bc"), online.MustKey("ab", "c"),
		online.MustKey(""), online.MustKey(int64(0)), online.MustKey("x\x00y"),
	}
	var rows []online.Row
	for i, k := range keys {
		rows = append(rows, row(k, t0, online.Int64(int64(i))))
	}
	write(t, s, "s", fs, rows...)
	r := read(t, s, online.Query{Set: "s", Features: fs, Keys: keys})
	for j := range keys {
		checkRow(t, r[0], j, t0, online.Int64(int64(j)))
	}
}

func testManyKeys(t *testing.T, open Opener) {
	s := mustOpen(t, open, "many")
	const n = 2000
	fs := []string{"x", "name"}
	var a, b []online.Row
	for i := range n {
		k := online.MustKey(int64(i))
		a = append(a, row(k, t0.Add(time.Duration(i)*time.Second), online.Float64(float64(i)/2), online.String(fmt.Sprint("a", i))))
		if i%2 == 0 {
			b = append(b, row(k, t0, online.Float64(-float64(i)), online.String(fmt.Sprint("b", i))))
		}
	}
	write(t, s, "set_a", fs, a...)
	write(t, s, "set_b", fs, b...)
	rng := rand.New(rand.NewPCG(1, 2))
	idx := rng.Perm(n + 200)[:1000] // some beyond n: never written
	keys := make([]online.Key, len(idx))
	for j, i := range idx {
		keys[j] = online.MustKey(int64(i))
	}
	r := read(t, s,
		online.Query{Set: "set_a", Features: fs, Keys: keys},
		online.Query{Set: "set_b", Features: []string{"name"}, Keys: keys},
	)
	for j, i := range idx {
		switch {
		case i >= n:
			checkNotFound(t, r[0], j)
			checkNotFound(t, r[1], j)
			continue
		case i%2 == 0:
			checkRow(t, r[1], j, t0, online.String(fmt.Sprint("b", i)))
		default:
			checkNotFound(t, r[1], j)
		}
		checkRow(t, r[0], j, t0.Add(time.Duration(i)*time.Second), online.Float64(float64(i)/2), online.String(fmt.Sprint("a", i)))
	}
}

func testRowReplacedWhole(t *testing.T, open Opener) {
	s := mustOpen(t, open, "whole")
	k := online.MustKey("k")
	write(t, s, "s", []string{"a", "b"}, row(k, t0, online.Int64(1), online.Int64(2)))
	write(t, s, "s", []string{"a"}, row(k, t0.Add(time.Second), online.Int64(3)))
	r := read(t, s, online.Query{Set: "s", Features: []string{"a", "b"}, Keys: []online.Key{k}})
	checkRow(t, r[0], 0, t0.Add(time.Second), online.Int64(3), online.Missing)
}

func testFeaturesChange(t *testing.T, open Opener) {
	s := mustOpen(t, open, "change")
	k1, k2, k3 := online.MustKey("1"), online.MustKey("2"), online.MustKey("3")
	write(t, s, "s", []string{"a", "b"}, row(k1, t0, online.Int64(1), online.String("b1")))
	write(t, s, "s", []string{"b", "c"}, row(k2, t0, online.String("b2"), online.Bool(true)))
	write(t, s, "s", []string{"a", "b"}, row(k3, t0, online.Int64(3), online.String("b3")))
	r := read(t, s, online.Query{Set: "s", Features: []string{"c", "b", "a", "b"}, Keys: []online.Key{k1, k2, k3}})
	checkRow(t, r[0], 0, t0, online.Missing, online.String("b1"), online.Int64(1), online.String("b1"))
	checkRow(t, r[0], 1, t0, online.Bool(true), online.String("b2"), online.Missing, online.String("b2"))
	checkRow(t, r[0], 2, t0, online.Missing, online.String("b3"), online.Int64(3), online.String("b3"))
}

func testResultReuse(t *testing.T, open Opener) {
	s := mustOpen(t, open, "reuse")
	fs := []string{"v"}
	k1, k2 := online.MustKey("1"), online.MustKey("2")
	write(t, s, "s", fs, row(k1, t0, online.Int64(1)))
	res := make([]online.Result, 1)
	ctx := context.Background()
	big := online.Query{Set: "s", Features: fs, Keys: []online.Key{k1, k2, k1}}
	small := online.Query{Set: "s", Features: fs, Keys: []online.Key{k2}}
	if err := s.Read(ctx, []online.Query{big}, res); err != nil {
		t.Fatal(err)
	}
	if err := s.Read(ctx, []online.Query{small}, res); err != nil {
		t.Fatal(err)
	}
	if len(res[0].Found) != 1 {
		t.Fatalf("reused result has %d keys, want 1", len(res[0].Found))
	}
	checkNotFound(t, res[0], 0)
}

func testConcurrentWriters(t *testing.T, open Opener) {
	s := mustOpen(t, open, "concurrent")
	const writers, keys, rounds = 6, 40, 15
	fs := []string{"ts"}
	want := make([]int64, keys)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for range rounds {
				rows := make([]online.Row, 0, keys)
				for k := range keys {
					// Distinct event times per write, in random order across writers;
					// the value records the event time so the winner is checkable.
					ts := t0.Add(time.Duration(rng.IntN(1_000_000))*time.Millisecond + time.Duration(w))
					rows = append(rows, row(online.MustKey(int64(k)), ts, online.Int64(ts.UnixNano())))
					mu.Lock()
					want[k] = max(want[k], ts.UnixNano())
					mu.Unlock()
				}
				if err := s.Write(context.Background(), "c", fs, rows); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Write: %v", err)
	}
	q := online.Query{Set: "c", Features: fs}
	for k := range keys {
		q.Keys = append(q.Keys, online.MustKey(int64(k)))
	}
	r := read(t, s, q)
	for k := range keys {
		checkRow(t, r[0], k, time.Unix(0, want[k]).UTC(), online.Int64(want[k]))
	}
}

func testConcurrentReadWrite(t *testing.T, open Opener) {
	s := mustOpen(t, open, "readwrite")
	fs := []string{"n"}
	k := online.MustKey("k")
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			// Features change now and then, so readers meet new layouts.
			f := fs
			if i%50 == 49 {
				f = []string{"n", fmt.Sprint("extra", i)}
			}
			vals := []online.Value{online.Int64(int64(i))}
			if len(f) == 2 {
				vals = append(vals, online.Null)
			}
			if err := s.Write(ctx, "rw", f, []online.Row{{Key: k, TS: t0.Add(time.Duration(i)), Values: vals}}); err != nil {
				errs <- err
				return
			}
		}
	}()
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := make([]online.Result, 1)
			last := int64(-1)
			for range 200 {
				if err := s.Read(ctx, []online.Query{{Set: "rw", Features: fs, Keys: []online.Key{k}}}, res); err != nil {
					errs <- err
					return
				}
				if !res[0].Found[0] {
					continue
				}
				n := res[0].Values[0].Int64()
				if n < last {
					errs <- fmt.Errorf("read went back in time: %d after %d", n, last)
					return
				}
				last = n
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func testInvalid(t *testing.T, open Opener) {
	s := mustOpen(t, open, "invalid")
	ctx := context.Background()
	k := online.MustKey("k")
	writes := []struct {
		name     string
		set      string
		features []string
		rows     []online.Row
	}{
		{"empty set", "", []string{"a"}, []online.Row{row(k, t0, online.Int64(1))}},
		{"too few values", "s", []string{"a", "b"}, []online.Row{row(k, t0, online.Int64(1))}},
		{"duplicate feature", "s", []string{"a", "a"}, []online.Row{row(k, t0, online.Int64(1), online.Int64(1))}},
		{"malformed key", "s", []string{"a"}, []online.Row{row(online.Key("zz"), t0, online.Int64(1))}},
		{"empty key", "s", []string{"a"}, []online.Row{row("", t0, online.Int64(1))}},
		{"no event time", "s", []string{"a"}, []online.Row{row(k, time.Time{}, online.Int64(1))}},
		{"missing value", "s", []string{"a"}, []online.Row{row(k, t0, online.Missing)}},
	}
	for _, w := range writes {
		if err := s.Write(ctx, w.set, w.features, w.rows); !errors.Is(err, online.ErrInvalid) {
			t.Errorf("Write with %s: %v, want ErrInvalid", w.name, err)
		}
	}
	// Nothing of the rejected writes was stored.
	r := read(t, s, online.Query{Set: "s", Features: []string{"a"}, Keys: []online.Key{k}})
	checkNotFound(t, r[0], 0)

	if err := s.Read(ctx, []online.Query{{Set: "s"}}, nil); !errors.Is(err, online.ErrInvalid) {
		t.Errorf("Read with too few results: %v, want ErrInvalid", err)
	}
	if err := s.Read(ctx, []online.Query{{Set: "s", Keys: []online.Key{"i1"}}}, make([]online.Result, 1)); !errors.Is(err, online.ErrInvalid) {
		t.Errorf("Read with a malformed key: %v, want ErrInvalid", err)
	}
}

func testCloseReopen(t *testing.T, open Opener) {
	s := open(t, "reopen")
	fs := []string{"a", "b"}
	k := online.MustKey(int64(42))
	write(t, s, "s", fs, row(k, t0, online.String("kept"), online.Float64(2.5)))
	write(t, s, "s", []string{"b"}, row(online.MustKey(int64(43)), t0, online.Float64(1)))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	ctx := context.Background()
	if err := s.Write(ctx, "s", fs, []online.Row{row(k, t0, online.Null, online.Null)}); !errors.Is(err, online.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if err := s.Read(ctx, []online.Query{{Set: "s", Features: fs, Keys: []online.Key{k}}}, make([]online.Result, 1)); !errors.Is(err, online.ErrClosed) {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}

	s2 := mustOpen(t, open, "reopen")
	r := read(t, s2, online.Query{Set: "s", Features: fs, Keys: []online.Key{k, online.MustKey(int64(43))}})
	checkRow(t, r[0], 0, t0, online.String("kept"), online.Float64(2.5))
	checkRow(t, r[0], 1, t0, online.Missing, online.Float64(1))
	// The guard still holds after reopening.
	write(t, s2, "s", fs, row(k, t0.Add(-time.Minute), online.String("older"), online.Null))
	r = read(t, s2, online.Query{Set: "s", Features: fs, Keys: []online.Key{k}})
	checkRow(t, r[0], 0, t0, online.String("kept"), online.Float64(2.5))
}

// testDelete checks online.Deleter's tombstone semantics, step by step on one
// store, and that a tombstone survives reopening. Every backend must delete.
func testDelete(t *testing.T, open Opener) {
	s := mustOpen(t, open, "delete")
	d, ok := s.(online.Deleter)
	if !ok {
		t.Fatalf("%T does not implement online.Deleter", s)
	}
	ctx := context.Background()
	fs := []string{"v"}
	k, other := online.MustKey("k"), online.MustKey("other")
	q := online.Query{Set: "d", Features: fs, Keys: []online.Key{k, other}}
	future := time.Date(2260, 1, 1, 0, 0, 0, 0, time.UTC)
	write(t, s, "d", fs, row(other, t0, online.Int64(100)))

	steps := []struct {
		comment string
		del     time.Time // delete k at this time, or write:
		ts      time.Time
		v       int64
		// want: found with wantV at wantTS, or not found when wantTS is zero.
		wantTS time.Time
		wantV  int64
	}{
		{comment: "a row far in the future", ts: future, v: 1, wantTS: future, wantV: 1},
		{comment: "a delete removes it whatever its event time", del: t0},
		{comment: "an older row does not resurrect the key", ts: t0.Add(-time.Hour), v: 2},
		{comment: "a row at the delete's time does not either", ts: t0, v: 3},
		{comment: "a newer row is stored", ts: t0.Add(time.Second), v: 4, wantTS: t0.Add(time.Second), wantV: 4},
		{comment: "a newer row is kept over an older one as usual", ts: t0, v: 5, wantTS: t0.Add(time.Second), wantV: 4},
		{comment: "deleting again", del: t0.Add(time.Minute)},
		{comment: "a second delete with an earlier time replaces the tombstone", del: t0.Add(-time.Minute)},
		{comment: "so a row after that time is stored", ts: t0, v: 6, wantTS: t0, wantV: 6},
	}
	for _, st := range steps {
		if !st.del.IsZero() {
			if err := d.Delete(ctx, "d", []online.Key{k}, st.del); err != nil {
				t.Fatalf("%s: Delete: %v", st.comment, err)
			}
		} else {
			write(t, s, "d", fs, row(k, st.ts, online.Int64(st.v)))
		}
		r := read(t, s, q)
		if st.wantTS.IsZero() {
			if r[0].Found[0] {
				t.Fatalf("%s: found %s at %s, want not found", st.comment, r[0].Row(0)[0], r[0].TS[0])
			}
			checkNotFound(t, r[0], 0)
		} else {
			checkRow(t, r[0], 0, st.wantTS, online.Int64(st.wantV))
		}
		checkRow(t, r[0], 1, t0, online.Int64(100)) // the other key is untouched
	}

	// A key that never had a row gets a tombstone too; with many keys in one call.
	keys := make([]online.Key, 3000)
	rows := make([]online.Row, len(keys))
	for i := range keys {
		keys[i] = online.MustKey(int64(i))
		rows[i] = row(keys[i], t0, online.Int64(int64(i)))
	}
	write(t, s, "many", fs, rows[:len(rows)/2]...)
	if err := d.Delete(ctx, "many", keys, t0); err != nil {
		t.Fatalf("Delete %d keys: %v", len(keys), err)
	}
	write(t, s, "many", fs, rows...) // all at the tombstones' time: dropped
	r := read(t, s, online.Query{Set: "many", Features: fs, Keys: keys})
	for j := range keys {
		if r[0].Found[j] {
			t.Fatalf("key %d of %d: found after Delete and an equal-time write", j, len(keys))
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, open, "delete")
	write(t, s2, "many", fs, row(keys[0], t0.Add(-time.Hour), online.Int64(-1)))
	r = read(t, s2, online.Query{Set: "many", Features: fs, Keys: keys[:1]})
	checkNotFound(t, r[0], 0)

	// Invalid arguments and a closed store.
	d2 := s2.(online.Deleter)
	if err := d2.Delete(ctx, "", keys[:1], t0); !errors.Is(err, online.ErrInvalid) {
		t.Errorf("Delete with no set: %v, want ErrInvalid", err)
	}
	if err := d2.Delete(ctx, "d", keys[:1], time.Time{}); !errors.Is(err, online.ErrInvalid) {
		t.Errorf("Delete with no time: %v, want ErrInvalid", err)
	}
	if err := d2.Delete(ctx, "d", []online.Key{""}, t0); !errors.Is(err, online.ErrInvalid) {
		t.Errorf("Delete of an empty key: %v, want ErrInvalid", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d2.Delete(ctx, "d", keys[:1], t0); !errors.Is(err, online.ErrClosed) {
		t.Errorf("Delete after Close: %v, want ErrClosed", err)
	}
}

// ReadRandom is the loop of the stores' read benchmarks: each iteration
// reads n keys drawn at random from keys (all written), features of set,
// in one Read, and fails if the last key read was not found.
func ReadRandom(b *testing.B, s online.Store, set string, features []string, keys []online.Key, n int, rng *rand.Rand) {
	ctx := context.Background()
	q := []online.Query{{Set: set, Features: features, Keys: make([]online.Key, n)}}
	res := make([]online.Result, 1)
	for b.Loop() {
		for j := range q[0].Keys {
			q[0].Keys[j] = keys[rng.IntN(len(keys))]
		}
		if err := s.Read(ctx, q, res); err != nil {
			b.Fatal(err)
		}
		if !res[0].Found[n-1] {
			b.Fatal("a written key was not found")
		}
	}
}
