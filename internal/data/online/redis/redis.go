// Package redis is the online store on Redis (or a Redis-compatible server such
// as Valkey), for several serving replicas and writers sharing one store:
//
//	redis://[user:password@]host:port/db[?prefix=atrium:&key_ttl=720h]
//	rediss://...  (TLS)
//
// Layout: one hash per (set, entity key), named <prefix><set>\x00<encoded key>,
// with two fields:
//
//	"\x00ts"   the row's event time as 20 decimal digits (unix nanoseconds plus
//	           2^63: never negative, compared in Lua without float rounding)
//	"\x00row"  [online.FormatVersion][layout id, 8 bytes][the values, in
//	           online.AppendValue's encoding, in the layout's order]
//
// and one hash per set, <prefix><set>\x00L, from layout id to layout
// (online.AppendLayout). A layout id is the FNV-64a hash of the feature names,
// so every writer process derives the same id without coordinating; a writer
// checks the stored layout of an id it uses once, which also catches a hash
// collision. One field per row, not per feature (Feast's layout), makes Redis
// do two field lookups per key instead of one per feature: a read of 100 keys x
// 50 features is 200 lookups, not 5,100.
//
// Writes run a Lua script per row that compares event times and replaces the
// row only when the new one is not older, atomically on the server (so writers
// in any number of processes never put an older row over a newer one); a
// Write's rows go in pipelined batches, a one-row Write is one EVALSHA. Reads
// pipeline one HMGET per (set, key) through rueidis, which sends them in one
// round trip per Redis node (plus one more, rarely, for a layout this process
// has not seen yet).
package redis

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/atrium-ml/atrium/internal/data/online"
)

func init() {
	for _, scheme := range []string{"redis", "rediss"} {
		online.Register(scheme, func(ctx context.Context, u *url.URL, _ online.OpenOptions) (online.Store, error) {
			return Open(ctx, u.String())
		})
	}
}

// Client timeouts of Open, unless the URL sets dial_timeout or write_timeout.
const (
	// DefaultDialTimeout bounds connecting to Redis.
	DefaultDialTimeout = 2 * time.Second
	// DefaultConnTimeout: a connection whose commands get no answer that
	// long is closed and replaced.
	DefaultConnTimeout = 3 * time.Second
)

// DefaultPrefix starts every key the store writes, so a Redis can be shared.
const DefaultPrefix = "atrium:"

const (
	tsField  = "\x00ts"
	rowField = "\x00row"
)

// A deleted key's hash holds the delete's time in "\x00ts" and the one byte
// tombstone in "\x00row" (see online.Deleter); a row is never that short.
var tombstone = string([]byte{online.FormatVersion})

// writeScript replaces a row unless the stored one is newer, or is a
// tombstone at or after the row's time.
// KEYS[1]: the row's hash. ARGV[1]: event time (20 digits). ARGV[2]: expiry in
// milliseconds, 0 for none (an expiry a previous write set is removed: the
// row's lifetime is that of the store's key_ttl when it was written). ARGV[3]:
// the row. ARGV[4]: the tombstone.
var writeScript = rueidis.NewLuaScript(`
local cur = redis.call('HGET', KEYS[1], '\0ts')
if cur then
  local c1, c2 = tonumber(string.sub(cur, 1, 10)), tonumber(string.sub(cur, 11))
  local n1, n2 = tonumber(string.sub(ARGV[1], 1, 10)), tonumber(string.sub(ARGV[1], 11))
  if c1 == nil or c2 == nil or #cur ~= 20 then
    return redis.error_reply('atrium: stored event time is malformed')
  end
  if c1 > n1 or (c1 == n1 and c2 > n2) then
    return 0
  end
  if c1 == n1 and c2 == n2 and redis.call('HSTRLEN', KEYS[1], '\0row') == #ARGV[4] then
    return 0
  end
end
redis.call('HSET', KEYS[1], '\0ts', ARGV[1], '\0row', ARGV[3])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
return 1
`)

// deleteScript makes a key's hash a tombstone, atomically with its expiry.
// KEYS[1]: the row's hash. ARGV[1]: the delete's time (20 digits). ARGV[2]:
// expiry as in writeScript. ARGV[3]: the tombstone.
var deleteScript = rueidis.NewLuaScript(`
redis.call('HSET', KEYS[1], '\0ts', ARGV[1], '\0row', ARGV[3])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
return 1
`)

// Store is an online.Store on Redis.
type Store struct {
	client rueidis.Client
	prefix string
	keyTTL time.Duration

	gate online.Gate

	// layouts caches the layouts this process wrote (checked against Redis)
	// or read, by set and id.
	layouts online.LayoutCache
}

type layoutKey struct {
	set string
	id  uint64
}

var (
	_ online.Store   = (*Store)(nil)
	_ online.Deleter = (*Store)(nil)
)

// Open connects to the Redis named by rawURL. Besides rueidis's URL options
// (dial_timeout, write_timeout: Go durations, defaults DefaultDialTimeout and
// DefaultConnTimeout) it reads prefix (default "atrium:") and key_ttl (a Go duration; each written row
// expires that long after its write, so keys of entities that stop being
// materialized do not pile up forever; default none).
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	s := &Store{prefix: DefaultPrefix}
	if q.Has("prefix") {
		s.prefix = q.Get("prefix")
	}
	if v := q.Get("key_ttl"); v != "" {
		if s.keyTTL, err = time.ParseDuration(v); err != nil || s.keyTTL < time.Millisecond {
			return nil, fmt.Errorf("%w: key_ttl=%q: want a duration of at least 1ms such as 720h", online.ErrInvalid, v)
		}
	}
	q.Del("prefix")
	q.Del("key_ttl")
	u.RawQuery = q.Encode()
	opt, err := rueidis.ParseURL(u.String())
	if err != nil {
		return nil, err
	}
	// Server-assisted client caching is for DoCache, which the store never uses.
	opt.DisableCache = true
	// Client timeouts (the URL's dial_timeout and write_timeout override
	// them): every call also carries its caller's deadline, which bounds what
	// a request waits; these bound what a connection does without one, and
	// detect a server that stopped answering (paused, partitioned) so its
	// connection is replaced rather than left waiting on TCP keep-alives
	// (rueidis's default: 10s), and a Redis that returns is used again
	// without a restart.
	if !q.Has("dial_timeout") {
		opt.Dialer.Timeout = DefaultDialTimeout
	}
	if !q.Has("write_timeout") {
		opt.ConnWriteTimeout = DefaultConnTimeout
	}
	if s.client, err = rueidis.NewClient(opt); err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, opt.Dialer.Timeout+opt.ConnWriteTimeout)
	defer cancel()
	if err := s.client.Do(pingCtx, s.client.B().Ping().Build()).Error(); err != nil {
		s.client.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the connections.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		s.client.Close()
		return nil
	})
}

func (s *Store) hashKey(dst []byte, set string, k online.Key) []byte {
	dst = append(dst, s.prefix...)
	dst = append(dst, set...)
	dst = append(dst, 0)
	return append(dst, k...)
}

// layoutsKey names the hash of a set's layouts. Entity keys start with a type
// tag ('s' or 'i'), so it cannot be a row's key.
func (s *Store) layoutsKey(set string) string { return s.prefix + set + "\x00L" }

// storeLayout makes sure Redis holds the layout of features under its id
// before rows use it, and that an id already there means the same features.
func (s *Store) storeLayout(ctx context.Context, set string, features []string) (uint64, error) {
	id := online.LayoutID(features)
	if known, err := s.layouts.Known(set, id, features); known || err != nil {
		return id, err
	}
	field := idField(id)
	enc := online.AppendLayout(nil, features)
	key := s.layoutsKey(set)
	if err := s.client.Do(ctx, s.client.B().Hsetnx().Key(key).Field(field).Value(string(enc)).Build()).Error(); err != nil {
		return 0, err
	}
	stored, err := s.client.Do(ctx, s.client.B().Hget().Key(key).Field(field).Build()).AsBytes()
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(stored, enc) {
		return 0, online.LayoutCollision(set, id)
	}
	s.layouts.Put(set, id, online.NewLayout(features))
	return id, nil
}

func idField(id uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return string(b[:])
}

// formatTS renders an event time as the 20 digits the write script compares.
func formatTS(t time.Time) string {
	b := make([]byte, 0, 20)
	b = strconv.AppendUint(b, uint64(t.UnixNano())^(1<<63), 10)
	for len(b) < 20 {
		b = append([]byte{'0'}, b...)
	}
	return string(b)
}

func parseTS(s string) (time.Time, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || len(s) != 20 {
		return time.Time{}, fmt.Errorf("%w: event time %q", online.ErrFormat, s)
	}
	return time.Unix(0, int64(n^(1<<63))).UTC(), nil
}

// writeChunk bounds the rows of one pipeline, so a large Write does not hold
// a huge request in memory or block the server on one giant batch.
const writeChunk = 2000

// Write implements online.Store.
func (s *Store) Write(ctx context.Context, set string, features []string, rows []online.Row) error {
	if err := online.CheckWrite(set, features, rows); err != nil {
		return err
	}
	if err := s.gate.Enter(); err != nil {
		return err
	}
	defer s.gate.Leave()
	id, err := s.storeLayout(ctx, set, features)
	if err != nil {
		return fmt.Errorf("write %s: layout: %w", set, err)
	}
	ttl := strconv.FormatInt(s.keyTTL.Milliseconds(), 10)
	var key, row []byte
	exec := func(r *online.Row) rueidis.LuaExec {
		key = s.hashKey(key[:0], set, r.Key)
		row = binary.BigEndian.AppendUint64(append(row[:0], online.FormatVersion), id)
		for _, v := range r.Values {
			row = online.AppendValue(row, v)
		}
		return rueidis.LuaExec{Keys: []string{string(key)}, Args: []string{formatTS(r.TS), ttl, string(row), tombstone}}
	}
	if len(rows) == 1 {
		// One row (a push): EVALSHA, one round trip. ExecMulti would first
		// load the script on every node, a second one.
		e := exec(&rows[0])
		if err := writeScript.Exec(ctx, s.client, e.Keys, e.Args).Error(); err != nil {
			return fmt.Errorf("write %s %s: %w", set, rows[0].Key, err)
		}
		return nil
	}
	for start := 0; start < len(rows); start += writeChunk {
		chunk := rows[start:min(start+writeChunk, len(rows))]
		execs := make([]rueidis.LuaExec, len(chunk))
		for i := range chunk {
			execs[i] = exec(&chunk[i])
		}
		for i, res := range writeScript.ExecMulti(ctx, s.client, execs...) {
			if err := res.Error(); err != nil {
				return fmt.Errorf("write %s %s: %w", set, chunk[i].Key, err)
			}
		}
	}
	return nil
}

// Delete implements online.Deleter: each key's hash becomes a tombstone
// stamped at, whatever it held, with the expiry a Write would give it (so
// with key_ttl set, tombstones do not pile up either).
func (s *Store) Delete(ctx context.Context, set string, keys []online.Key, at time.Time) error {
	if err := online.CheckDelete(set, keys, at); err != nil {
		return err
	}
	if err := s.gate.Enter(); err != nil {
		return err
	}
	defer s.gate.Leave()
	ts := formatTS(at)
	ttl := strconv.FormatInt(s.keyTTL.Milliseconds(), 10)
	var key []byte
	for start := 0; start < len(keys); start += writeChunk {
		chunk := keys[start:min(start+writeChunk, len(keys))]
		execs := make([]rueidis.LuaExec, len(chunk))
		for i, k := range chunk {
			key = s.hashKey(key[:0], set, k)
			execs[i] = rueidis.LuaExec{Keys: []string{string(key)}, Args: []string{ts, ttl, tombstone}}
		}
		for i, res := range deleteScript.ExecMulti(ctx, s.client, execs...) {
			if err := res.Error(); err != nil {
				return fmt.Errorf("delete %s %s: %w", set, chunk[i], err)
			}
		}
	}
	return nil
}

// readState is the scratch memory of one Read call, pooled.
type readState struct {
	key     []byte
	cmds    rueidis.Commands
	rows    []rawRow
	missing []layoutKey
	scratch []online.Value
	projs   []projection
}

var readStates = sync.Pool{New: func() any { return new(readState) }}

// projection is how one layout maps onto one query's features.
type projection struct {
	query  int
	id     uint64
	layout *online.Layout
	online.Projection
}

// projection returns how layout id maps onto query q's features, building it
// on first use in this Read; nil when the layout is not in the cache. Rows of
// a set nearly always share one layout, so the list is short and the shared
// cache is consulted once per query, not once per key.
func (s *Store) projection(st *readState, q int, set string, id uint64, features []string) *projection {
	for i := range st.projs {
		if st.projs[i].query == q && st.projs[i].id == id {
			return &st.projs[i]
		}
	}
	l := s.layouts.Get(set, id)
	if l == nil {
		return nil
	}
	if len(st.projs) < cap(st.projs) {
		st.projs = st.projs[:len(st.projs)+1]
	} else {
		st.projs = append(st.projs, projection{})
	}
	p := &st.projs[len(st.projs)-1]
	p.query, p.id, p.layout = q, id, l
	p.Project(l, features)
	return p
}

// Read implements online.Store: one pipelined HMGET per (query, key).
func (s *Store) Read(ctx context.Context, queries []online.Query, results []online.Result) error {
	if err := online.CheckRead(queries, results); err != nil {
		return err
	}
	if err := s.gate.Enter(); err != nil {
		return err
	}
	defer s.gate.Leave()
	n := 0
	for i := range queries {
		n += len(queries[i].Keys)
		results[i].Reset(len(queries[i].Keys), len(queries[i].Features))
	}
	if n == 0 {
		return nil
	}
	st := readStates.Get().(*readState)
	defer func() {
		if ctx.Err() != nil {
			// DoMulti returned on the context while rueidis's writer may
			// still hold the command slice: clearing it under the writer
			// made it send a nil command (a panic seen in
			// TestOnlineStoreFailures). Leave the slice to rueidis.
			st.cmds = nil
		}
		clear(st.cmds) // the commands are not reused: drop them for the GC
		clear(st.rows) // views of replies
		st.cmds, st.rows, st.missing, st.projs = st.cmds[:0], st.rows[:0], st.missing[:0], st.projs[:0]
		readStates.Put(st)
	}()
	for i := range queries {
		q := &queries[i]
		for _, k := range q.Keys {
			st.key = s.hashKey(st.key[:0], q.Set, k)
			st.cmds = append(st.cmds, s.client.B().Hmget().Key(string(st.key)).Field(tsField, rowField).Build())
		}
	}
	replies := s.client.DoMulti(ctx, st.cmds...)

	// Rows name their layout; fetch, in one more round trip, the few this
	// process has not seen yet.
	st.rows = slices.Grow(st.rows[:0], n)[:n]
	c := 0
	for i := range queries {
		q := &queries[i]
		for j, k := range q.Keys {
			r, err := splitReply(replies[c])
			if err != nil {
				return fmt.Errorf("read %s %s: %w", q.Set, k, err)
			}
			st.rows[c] = r
			c++
			if !r.found {
				continue
			}
			results[i].Found[j] = true
			results[i].TS[j] = r.ts
			if s.projection(st, i, q.Set, r.layout, q.Features) == nil && !slices.Contains(st.missing, layoutKey{q.Set, r.layout}) {
				st.missing = append(st.missing, layoutKey{q.Set, r.layout})
			}
		}
	}
	if err := s.fetchLayouts(ctx, st.missing); err != nil {
		return err
	}
	c = 0
	for i := range queries {
		q, res := &queries[i], &results[i]
		nf := len(q.Features)
		for j, k := range q.Keys {
			r := &st.rows[c]
			c++
			if !r.found {
				continue
			}
			p := s.projection(st, i, q.Set, r.layout, q.Features)
			if p == nil { // fetchLayouts cached every layout it did not fail on
				return fmt.Errorf("read %s %s: %w: layout %016x vanished from the cache", q.Set, k, online.ErrFormat, r.layout)
			}
			var err error
			if st.scratch, err = online.DecodeValues(r.values, p.layout, &p.Projection, res.Values[j*nf:(j+1)*nf], st.scratch); err != nil {
				return fmt.Errorf("read %s %s: %w", q.Set, k, err)
			}
		}
	}
	return nil
}

// fetchLayouts loads layouts into the cache, in one pipeline.
func (s *Store) fetchLayouts(ctx context.Context, keys []layoutKey) error {
	if len(keys) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = s.client.B().Hget().Key(s.layoutsKey(k.set)).Field(idField(k.id)).Build()
	}
	for i, reply := range s.client.DoMulti(ctx, cmds...) {
		b, err := reply.AsBytes()
		if rueidis.IsRedisNil(err) {
			return fmt.Errorf("%w: set %s: rows name layout %016x, which is not stored", online.ErrFormat, keys[i].set, keys[i].id)
		}
		if err != nil {
			return fmt.Errorf("read layout of %s: %w", keys[i].set, err)
		}
		l, err := online.DecodeLayout(b)
		if err != nil {
			return fmt.Errorf("set %s layout %016x: %w", keys[i].set, keys[i].id, err)
		}
		s.layouts.Put(keys[i].set, keys[i].id, l)
	}
	return nil
}

// rawRow is an HMGET reply [ts, row] split into its parts.
type rawRow struct {
	found  bool
	ts     time.Time
	layout uint64
	values []byte // read-only view of the reply
}

func splitReply(reply rueidis.RedisResult) (rawRow, error) {
	arr, err := reply.ToArray()
	if err != nil {
		return rawRow{}, err
	}
	if len(arr) != 2 {
		return rawRow{}, fmt.Errorf("%w: HMGET returned %d fields, want 2", online.ErrFormat, len(arr))
	}
	if arr[0].IsNil() {
		return rawRow{}, nil
	}
	rawTS, err := arr[0].ToString()
	if err != nil {
		return rawRow{}, err
	}
	ts, err := parseTS(rawTS)
	if err != nil {
		return rawRow{}, err
	}
	if arr[1].IsNil() {
		return rawRow{}, fmt.Errorf("%w: a row with an event time but no values", online.ErrFormat)
	}
	raw, err := arr[1].ToString()
	if err != nil {
		return rawRow{}, err
	}
	if raw == tombstone {
		return rawRow{}, nil // deleted: not found
	}
	if len(raw) < 9 || raw[0] != online.FormatVersion {
		return rawRow{}, fmt.Errorf("%w: row format %q, this binary reads version %d", online.ErrFormat, raw[:min(len(raw), 1)], online.FormatVersion)
	}
	// A read-only view of the reply's string: DecodeValue copies what it keeps.
	b := unsafe.Slice(unsafe.StringData(raw), len(raw))
	return rawRow{found: true, ts: ts, layout: binary.BigEndian.Uint64(b[1:9]), values: b[9:]}, nil
}
