// Package redis is the online store on Redis (or a Redis-compatible server such
// as Valkey), for several serving replicas and writers sharing one store:
//
//	redis://[user:password@]host:port/db[?prefix=atrium:&key_ttl=720h]
//	rediss://...  (TLS)
//
// Layout, after Feast's: one hash per (set, entity key), named
// <prefix><set>\x00<encoded key>, with one field per feature holding
// [online.FormatVersion][value in online.AppendValue's encoding], and a field
// "\x00ts" holding the row's event time as 20 decimal digits (unix nanoseconds
// plus 2^63, so it is never negative and compares in Lua without float rounding).
//
// Writes run a Lua script per row that compares event times and replaces the
// hash only when the new row is not older, atomically on the server. Reads
// pipeline one HMGET per (set, key) through rueidis, which sends them in one
// round trip per Redis node.
package redis

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/atrium-ml/atrium/internal/data/online"
)

func init() {
	for _, scheme := range []string{"redis", "rediss"} {
		online.Register(scheme, func(ctx context.Context, u *url.URL) (online.Store, error) {
			return Open(ctx, u.String())
		})
	}
}

// DefaultPrefix starts every key the store writes, so a Redis can be shared.
const DefaultPrefix = "atrium:"

const tsField = "\x00ts"

// writeScript replaces a row unless the stored one is newer.
// KEYS[1]: the row's hash. ARGV[1]: event time (20 digits). ARGV[2]: expiry in
// milliseconds, 0 for none. ARGV[3...]: field, value pairs.
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
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], '\0ts', ARGV[1])
-- unpack has a stack limit: set fields in slices of 100 pairs.
for i = 3, #ARGV, 200 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 199, #ARGV)))
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
`)

// Store is an online.Store on Redis.
type Store struct {
	client rueidis.Client
	prefix string
	keyTTL time.Duration

	gate online.Gate
}

var _ online.Store = (*Store)(nil)

// Open connects to the Redis named by rawURL. Besides rueidis's URL options it
// reads prefix (default "atrium:") and key_ttl (a Go duration; each written row
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
	if s.client, err = rueidis.NewClient(opt); err != nil {
		return nil, err
	}
	if err := s.client.Do(ctx, s.client.B().Ping().Build()).Error(); err != nil {
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
	ttl := strconv.FormatInt(s.keyTTL.Milliseconds(), 10)
	var key, val []byte
	for start := 0; start < len(rows); start += writeChunk {
		chunk := rows[start:min(start+writeChunk, len(rows))]
		execs := make([]rueidis.LuaExec, len(chunk))
		for i := range chunk {
			r := &chunk[i]
			key = s.hashKey(key[:0], set, r.Key)
			args := make([]string, 0, 2+2*len(features))
			args = append(args, formatTS(r.TS), ttl)
			for f, v := range r.Values {
				val = online.AppendValue(append(val[:0], online.FormatVersion), v)
				args = append(args, features[f], string(val))
			}
			execs[i] = rueidis.LuaExec{Keys: []string{string(key)}, Args: args}
		}
		for i, res := range writeScript.ExecMulti(ctx, s.client, execs...) {
			if err := res.Error(); err != nil {
				return fmt.Errorf("write %s %s: %w", set, chunk[i].Key, err)
			}
		}
	}
	return nil
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
	}
	if n == 0 {
		for i := range queries {
			results[i].Reset(0, len(queries[i].Features))
		}
		return nil
	}
	cmds := make(rueidis.Commands, 0, n)
	var key []byte
	for i := range queries {
		q := &queries[i]
		fields := make([]string, 0, 1+len(q.Features))
		fields = append(fields, tsField)
		fields = append(fields, q.Features...)
		for _, k := range q.Keys {
			key = s.hashKey(key[:0], q.Set, k)
			cmds = append(cmds, s.client.B().Hmget().Key(string(key)).Field(fields...).Build())
		}
	}
	replies := s.client.DoMulti(ctx, cmds...)
	c := 0
	for i := range queries {
		q, res := &queries[i], &results[i]
		res.Reset(len(q.Keys), len(q.Features))
		for j, k := range q.Keys {
			if err := decodeReply(replies[c], res, j, len(q.Features)); err != nil {
				return fmt.Errorf("read %s %s: %w", q.Set, k, err)
			}
			c++
		}
	}
	return nil
}

// decodeReply fills key j of res from an HMGET reply [ts, feature values...].
func decodeReply(reply rueidis.RedisResult, res *online.Result, j, nf int) error {
	arr, err := reply.ToArray()
	if err != nil {
		return err
	}
	if len(arr) != 1+nf {
		return fmt.Errorf("%w: HMGET returned %d fields, want %d", online.ErrFormat, len(arr), 1+nf)
	}
	if arr[0].IsNil() {
		return nil // no row
	}
	raw, err := arr[0].ToString()
	if err != nil {
		return err
	}
	if res.TS[j], err = parseTS(raw); err != nil {
		return err
	}
	res.Found[j] = true
	out := res.Values[j*nf : (j+1)*nf]
	for f := range out {
		m := &arr[1+f]
		if m.IsNil() {
			continue // stays Missing: the row does not hold this feature
		}
		raw, err := m.ToString()
		if err != nil {
			return err
		}
		if len(raw) == 0 || raw[0] != online.FormatVersion {
			return fmt.Errorf("%w: value format %q, this binary reads version %d", online.ErrFormat, raw[:min(len(raw), 1)], online.FormatVersion)
		}
		// A read-only view of the reply's string: DecodeValue copies what it keeps.
		b := unsafe.Slice(unsafe.StringData(raw), len(raw))
		v, n, err := online.DecodeValue(b[1:], false)
		if err != nil {
			return err
		}
		if 1+n != len(raw) {
			return fmt.Errorf("%w: %d trailing bytes after a value", online.ErrFormat, len(raw)-1-n)
		}
		out[f] = v
	}
	return nil
}
