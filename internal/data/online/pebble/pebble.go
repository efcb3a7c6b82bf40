// Package pebble is the embedded online store, on Pebble (CockroachDB's LSM
// key-value store). It is the default backend: pebble://<dir>.
//
// Layout (all keys in one keyspace):
//
//	"\x00format"                    -> [FormatVersion]
//	'l' set 0x00 id(uint32 BE)       -> layout: the feature names of rows written with it
//	'r' set 0x00 encoded-entity-key  -> row record
//
// A row record is [online.FormatVersion][layout id uvarint][event time unix ns
// varint][values...], each value in online.AppendValue's encoding, in its
// layout's order. Layouts let a set gain or lose features without rewriting
// rows: a row keeps the layout it was written with, and a feature its layout
// lacks reads as online.Missing.
//
// A Pebble directory is open in one Store at a time: while `atrium serve`
// holds it, other processes (materialize) get ErrLocked, which wraps
// online.ErrInUse; use a shared backend (redis://) to write from several
// processes.
package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/platform/storeurl"
)

// ErrLocked is returned by Open when the directory is open elsewhere: in
// another process, or another Store of this one.
var ErrLocked = fmt.Errorf("%w: the pebble directory is open elsewhere (atrium serve?); stop it, or use a shared store such as redis://", online.ErrInUse)

func init() {
	online.Register("pebble", func(ctx context.Context, u *url.URL, oo online.OpenOptions) (online.Store, error) {
		opts := Options{Logger: oo.Logger}
		q := u.Query()
		if v := q.Get("memtable_mb"); v != "" {
			mb, err := strconv.Atoi(v)
			if err != nil || mb <= 0 || mb >= 4096 {
				return nil, fmt.Errorf("%w: memtable_mb=%q: want a number of MiB below 4096", online.ErrInvalid, v)
			}
			opts.MemTableSize = int64(mb) << 20
		}
		if v := q.Get("row_cache_mb"); v != "" {
			mb, err := strconv.Atoi(v)
			if err != nil || mb < 0 {
				return nil, fmt.Errorf("%w: row_cache_mb=%q: want a number of MiB (0: no row cache)", online.ErrInvalid, v)
			}
			opts.RowCacheSize = int64(mb) << 20
			if mb == 0 {
				opts.RowCacheSize = -1
			}
		}
		if v := q.Get("cache_mb"); v != "" {
			mb, err := strconv.Atoi(v)
			if err != nil || mb <= 0 {
				return nil, fmt.Errorf("%w: cache_mb=%q: want a positive number of MiB", online.ErrInvalid, v)
			}
			opts.CacheSize = int64(mb) << 20
		}
		dir, err := storeurl.LocalPath(u)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", online.ErrUnsupportedURL, u.Redacted(), err)
		}
		return Open(dir, opts)
	})
}

// Options configure a Store.
type Options struct {
	// CacheSize is the block cache size in bytes. Default 64 MiB
	// (URL: pebble://dir?cache_mb=64).
	CacheSize int64
	// MemTableSize is the size of a memtable in bytes. Default 64 MiB, not
	// Pebble's 4 MiB: materialization writes in bulk, and bigger memtables
	// mean fewer, larger flushes and less compaction work per row (it halved
	// the time to materialize 1M keys x 50 features). URL: memtable_mb=64.
	MemTableSize int64
	// RowCacheSize bounds, in bytes, the cache of rows read (their stored
	// records, by key), in front of Pebble. Default 64 MiB (URL:
	// row_cache_mb=64); negative: no row cache (URL: row_cache_mb=0). See
	// rowCache.
	RowCacheSize int64
	// Logger receives Pebble's messages, info at debug level. Default: discard.
	Logger *slog.Logger
}

func (o *Options) ensureDefaults() {
	if o.CacheSize <= 0 {
		o.CacheSize = 64 << 20
	}
	if o.MemTableSize <= 0 {
		o.MemTableSize = 64 << 20
	}
	if o.RowCacheSize == 0 {
		o.RowCacheSize = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is an online.Store on a Pebble directory.
type Store struct {
	db *pebble.DB
	// unlock releases the directory's lock (lockDir); Close calls it after
	// Pebble's own close.
	unlock func() error

	// gate keeps db from being used after Close.
	gate online.Gate

	// writeMu serializes writers: the event-time guard reads the stored row and
	// then replaces it, which must not interleave with another writer's.
	writeMu sync.Mutex

	// layouts holds every set's layouts; the map and each *layouts are replaced,
	// never mutated, so readers use a pointer taken under layoutsMu freely.
	layoutsMu sync.RWMutex
	layouts   map[string]*layouts

	rows *rowCache // nil: no row cache
}

var (
	_ online.Store   = (*Store)(nil)
	_ online.Deleter = (*Store)(nil)
)

// layouts are the layouts rows of one set were written with, by id.
type layouts struct {
	byID   []*online.Layout
	byList map[string]uint32 // features joined by NUL -> id
}

func (ls *layouts) add(l *online.Layout) {
	ls.byList[strings.Join(l.Features(), "\x00")] = uint32(len(ls.byID))
	ls.byID = append(ls.byID, l)
}

var formatKey = []byte("\x00format")

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty directory (want pebble://path/to/dir)", online.ErrInvalid)
	}
	opts.ensureDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	// Pebble charges its memtables to the block cache (each reserves its
	// size there), so a cache of CacheSize alone is left with no room for
	// blocks once a 64 MiB memtable and the one being flushed exist: every
	// read then decompressed its blocks from the file again. The cache is
	// sized for the blocks plus the two memtables Pebble keeps before it
	// stalls writes (MemTableStopWritesThreshold); the reservation is
	// accounting, memory is used only by what is cached.
	cache := pebble.NewCache(opts.CacheSize + 2*opts.MemTableSize)
	defer cache.Unref()
	popts := &pebble.Options{Cache: cache, Logger: slogLogger{opts.Logger}, MemTableSize: uint64(opts.MemTableSize)}
	// Bloom filters let a Get of an absent key (a cold entity, a first write)
	// skip every table that cannot hold it.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	s := &Store{db: db, unlock: unlock, layouts: map[string]*layouts{}, rows: newRowCache(opts.RowCacheSize)}
	if err := s.init(); err != nil {
		db.Close()
		unlock()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return s, nil
}

// init checks the stored format version (writing it into a new store) and loads layouts.
func (s *Store) init() error {
	v, closer, err := s.db.Get(formatKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(formatKey, []byte{online.FormatVersion}, pebble.Sync); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		ok := len(v) == 1 && v[0] == online.FormatVersion
		got := fmt.Sprintf("%x", v)
		closer.Close()
		if !ok {
			return fmt.Errorf("%w: store format %s, this binary reads version %d", online.ErrFormat, got, online.FormatVersion)
		}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'l'}, UpperBound: []byte{'l' + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		i := len(k) - 5
		if i < 1 || k[i] != 0 {
			return fmt.Errorf("%w: malformed layout key %q", online.ErrFormat, k)
		}
		set, id := string(k[1:i]), binary.BigEndian.Uint32(k[i+1:])
		l, err := online.DecodeLayout(it.Value())
		if err != nil {
			return fmt.Errorf("set %s layout %d: %w", set, id, err)
		}
		ls := s.layouts[set]
		if ls == nil {
			ls = &layouts{byList: map[string]uint32{}}
			s.layouts[set] = ls
		}
		if int(id) != len(ls.byID) {
			return fmt.Errorf("%w: set %s: layout %d follows %d layouts", online.ErrFormat, set, id, len(ls.byID))
		}
		ls.add(l)
	}
	return it.Error()
}

// Close flushes and closes the store.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		return errors.Join(s.db.Close(), s.unlock())
	})
}

func rowKey(dst []byte, set string, k online.Key) []byte {
	dst = append(dst, 'r')
	dst = append(dst, set...)
	dst = append(dst, 0)
	return append(dst, k...)
}

func layoutKey(set string, id uint32) []byte {
	k := append([]byte{'l'}, set...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, id)
}

// header decodes a row record's version, layout id and event time, and returns
// the values' bytes.
func header(rec []byte) (layout uint32, ts int64, values []byte, err error) {
	if len(rec) == 0 || rec[0] != online.FormatVersion {
		return 0, 0, nil, fmt.Errorf("%w: row format %x, this binary reads version %d", online.ErrFormat, rec[:min(len(rec), 1)], online.FormatVersion)
	}
	id, w := binary.Uvarint(rec[1:])
	if w <= 0 || id > 1<<32-1 {
		return 0, 0, nil, fmt.Errorf("%w: truncated row", online.ErrFormat)
	}
	rest := rec[1+w:]
	ts, w = binary.Varint(rest)
	if w <= 0 {
		return 0, 0, nil, fmt.Errorf("%w: truncated row", online.ErrFormat)
	}
	return uint32(id), ts, rest[w:], nil
}

// tombstoneLayout is the layout id of a deleted key's record: a header with
// the delete's time and no values (see online.Deleter). Layout ids count up
// from 0 per set and never reach it.
const tombstoneLayout = 1<<32 - 1

func (s *Store) setLayouts(set string) *layouts {
	s.layoutsMu.RLock()
	defer s.layoutsMu.RUnlock()
	return s.layouts[set]
}

// Write implements online.Store.
func (s *Store) Write(ctx context.Context, set string, features []string, rows []online.Row) error {
	if err := online.CheckWrite(set, features, rows); err != nil {
		return err
	}
	if err := s.gate.Enter(); err != nil {
		return err
	}
	defer s.gate.Leave()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	id, err := s.layoutID(set, features)
	if err != nil {
		return fmt.Errorf("write %s: %w", set, err)
	}

	// The guard reads the stored row of every key. Keys are visited in sorted
	// order through one iterator, so successive seeks move forward instead of
	// starting over, and each is a prefix seek (the whole key is the prefix), so
	// bloom filters skip tables that cannot hold it. Rows of the same key in this
	// call are settled in memory: the newest wins, the later one on a tie, as if
	// they had been written one after the other.
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(string(rows[a].Key), string(rows[b].Key)) })
	lower := rowKey(nil, set, "")
	upper := append(append([]byte(nil), lower[:len(lower)-1]...), 1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("write %s: %w", set, err)
	}
	defer it.Close()
	b := s.db.NewBatch()
	defer b.Close()
	// The keys of the batch leave the row cache once it is committed (or
	// not: a failed commit changed nothing, and dropping them is harmless).
	var written []string
	defer func() { s.rows.invalidate(written) }()

	var key, rec []byte
	for i, n := 0, 0; i < len(order); n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		best := order[i]
		for i++; i < len(order) && rows[order[i]].Key == rows[best].Key; i++ {
			if !rows[order[i]].TS.Before(rows[best].TS) {
				best = order[i]
			}
		}
		r := &rows[best]
		key = rowKey(key[:0], set, r.Key)
		ts := r.TS.UnixNano()
		if it.SeekPrefixGE(key) && bytes.Equal(it.Key(), key) {
			old, err := it.ValueAndErr()
			if err != nil {
				return fmt.Errorf("write %s %s: %w", set, r.Key, err)
			}
			oldID, oldTS, _, herr := header(old)
			if herr != nil {
				return fmt.Errorf("write %s %s: stored row: %w", set, r.Key, herr)
			}
			if oldTS > ts || (oldID == tombstoneLayout && oldTS == ts) {
				continue // the stored row is newer, or a delete at or after this row: keep it
			}
		} else if err := it.Error(); err != nil {
			return fmt.Errorf("write %s %s: %w", set, r.Key, err)
		}
		rec = append(rec[:0], online.FormatVersion)
		rec = binary.AppendUvarint(rec, uint64(id))
		rec = binary.AppendVarint(rec, ts)
		for _, v := range r.Values {
			rec = online.AppendValue(rec, v)
		}
		if err := b.Set(key, rec, nil); err != nil {
			return err
		}
		if s.rows != nil {
			written = append(written, string(key))
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("write %s: %w", set, err)
	}
	return nil
}

// Delete implements online.Deleter: each key's record becomes a tombstone
// stamped at, whatever it held.
func (s *Store) Delete(ctx context.Context, set string, keys []online.Key, at time.Time) error {
	if err := online.CheckDelete(set, keys, at); err != nil {
		return err
	}
	if err := s.gate.Enter(); err != nil {
		return err
	}
	defer s.gate.Leave()
	// writeMu orders the delete with Writes, whose guard reads then writes.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	var written []string // leave the row cache after the commit, as in Write
	defer func() { s.rows.invalidate(written) }()
	rec := binary.AppendUvarint([]byte{online.FormatVersion}, tombstoneLayout)
	rec = binary.AppendVarint(rec, at.UnixNano())
	var key []byte
	for i, k := range keys {
		if i%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		key = rowKey(key[:0], set, k)
		if err := b.Set(key, rec, nil); err != nil {
			return fmt.Errorf("delete %s %s: %w", set, k, err)
		}
		if s.rows != nil {
			written = append(written, string(key))
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("delete %s: %w", set, err)
	}
	return nil
}

// layoutID returns the id of the layout of features in set, storing a new layout
// first when there is none. The layout is durable and published before any row
// uses it, so a reader never meets a row whose layout it cannot find; a layout
// whose rows then fail to commit is harmless. Callers hold writeMu.
func (s *Store) layoutID(set string, features []string) (uint32, error) {
	joined := strings.Join(features, "\x00")
	ls := s.setLayouts(set)
	var id uint32
	if ls != nil {
		if id, ok := ls.byList[joined]; ok {
			return id, nil
		}
		id = uint32(len(ls.byID))
	}
	if err := s.db.Set(layoutKey(set, id), online.AppendLayout(nil, features), pebble.Sync); err != nil {
		return 0, err
	}
	s.publishLayout(set, features)
	return id, nil
}

// publishLayout adds a stored layout to memory (copy on write; see Store.layouts).
func (s *Store) publishLayout(set string, features []string) {
	s.layoutsMu.Lock()
	defer s.layoutsMu.Unlock()
	next := &layouts{byList: map[string]uint32{}}
	if old := s.layouts[set]; old != nil {
		next.byID = append(next.byID, old.byID...)
		for k, v := range old.byList {
			next.byList[k] = v
		}
	}
	next.add(online.NewLayout(features))
	m := make(map[string]*layouts, len(s.layouts)+1)
	for k, v := range s.layouts {
		m[k] = v
	}
	m[set] = next
	s.layouts = m
}

// projection is how one layout maps onto one query's features.
type projection struct {
	layout uint32
	online.Projection
}

// readState is the scratch memory of one Read call, pooled.
type readState struct {
	scratch []online.Value
	projs   []projection
	// keys holds a query's row keys back to back, ends[j] where key j ends,
	// order the key indexes in key order.
	keys  []byte
	ends  []int
	order []int
}

var readStates = sync.Pool{New: func() any { return new(readState) }}

// Read implements online.Store. A query of several keys is read through one
// iterator, its keys in key order: a rank request's 200 listings are then
// 200 seeks of one iterator over tables it has already opened, each
// starting from the last one's position, where a Get per key opened and
// closed the tables' iterators 200 times (BenchmarkRead from tables:
// 0.52-0.65 ms against 0.76 ms; even at 8 keys). A query of one key is a
// Get: opening an iterator for it costs more than the Get (about 1.5x in
// the memtable). Keys in the row cache (rowCache) are served from it before
// either; a read gives no snapshot across keys, cached or not.
func (s *Store) Read(ctx context.Context, queries []online.Query, results []online.Result) error {
	if err := online.CheckRead(queries, results); err != nil {
		return err
	}
	if err := s.gate.Enter(); err != nil {
		return err
	}
	defer s.gate.Leave()
	st := readStates.Get().(*readState)
	defer readStates.Put(st)
	var it *pebble.Iterator // opened by the first query of several keys
	var itGen uint64        // the row cache's generation when it was opened
	defer func() {
		if it != nil {
			it.Close()
		}
	}()
	for qi := range queries {
		q, res := &queries[qi], &results[qi]
		res.Reset(len(q.Keys), len(q.Features))
		ls := s.setLayouts(q.Set)
		st.projs = st.projs[:0]
		st.keys, st.ends, st.order = st.keys[:0], st.ends[:0], st.order[:0]
		for j, k := range q.Keys {
			st.keys = rowKey(st.keys, q.Set, k)
			st.ends = append(st.ends, len(st.keys))
			st.order = append(st.order, j)
		}
		key := func(j int) []byte {
			lo := 0
			if j > 0 {
				lo = st.ends[j-1]
			}
			return st.keys[lo:st.ends[j]]
		}
		// Keys in the row cache are decoded from it; the others are read
		// below and offered to it, stamped with the generation before the
		// read (rowCache).
		gen := s.rows.generation()
		missed := st.order[:0]
		for _, j := range st.order {
			rec, ok := s.rows.get(key(j))
			if !ok {
				missed = append(missed, j)
				continue
			}
			if err := s.decode(st, &ls, q, rec, res, j); err != nil {
				return fmt.Errorf("read %s %s: %w", q.Set, q.Keys[j], err)
			}
		}
		st.order = missed
		if len(st.order) == 0 {
			continue
		}
		if len(q.Keys) == 1 {
			rec, closer, err := s.db.Get(key(0))
			if errors.Is(err, pebble.ErrNotFound) {
				continue
			}
			if err == nil {
				s.rows.add(gen, key(0), rec)
				err = s.decode(st, &ls, q, rec, res, 0)
				closer.Close()
			}
			if err != nil {
				return fmt.Errorf("read %s %s: %w", q.Set, q.Keys[0], err)
			}
			continue
		}
		if it == nil {
			var err error
			// The iterator reads the state as of its opening, for every
			// query of this call: what it reads is offered to the cache
			// with the generation taken before it opened.
			itGen = s.rows.generation()
			if it, err = s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{'r'}, UpperBound: []byte{'r' + 1}}); err != nil {
				return fmt.Errorf("read %s: %w", q.Set, err)
			}
		}
		slices.SortFunc(st.order, func(a, b int) int { return bytes.Compare(key(a), key(b)) })
		for n, j := range st.order {
			if n%256 == 255 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			k := key(j)
			// A prefix seek consults the tables' bloom filters for the
			// whole key (the default comparer's prefix is the key).
			if !it.SeekPrefixGE(k) || !bytes.Equal(it.Key(), k) {
				if err := it.Error(); err != nil {
					return fmt.Errorf("read %s %s: %w", q.Set, q.Keys[j], err)
				}
				continue
			}
			rec, err := it.ValueAndErr()
			if err == nil {
				s.rows.add(itGen, k, rec)
				err = s.decode(st, &ls, q, rec, res, j)
			}
			if err != nil {
				return fmt.Errorf("read %s %s: %w", q.Set, q.Keys[j], err)
			}
		}
	}
	return nil
}

// decode fills key j of res from a row record. *lsp is the set's layouts as
// the Read call saw them; a row written since with a newer layout makes decode
// look them up again.
func (s *Store) decode(st *readState, lsp **layouts, q *online.Query, rec []byte, res *online.Result, j int) error {
	id, ts, vals, err := header(rec)
	if err != nil {
		return err
	}
	if id == tombstoneLayout {
		return nil // deleted: not found
	}
	ls := *lsp
	if ls == nil || int(id) >= len(ls.byID) {
		ls = s.setLayouts(q.Set)
		*lsp = ls
		if ls == nil || int(id) >= len(ls.byID) {
			return fmt.Errorf("%w: row has unknown layout %d", online.ErrFormat, id)
		}
	}
	l := ls.byID[id]
	p := st.projection(l, id, q.Features)
	out := res.Values[j*len(q.Features) : (j+1)*len(q.Features)]
	if st.scratch, err = online.DecodeValues(vals, l, &p.Projection, out, st.scratch); err != nil {
		return err
	}
	res.Found[j] = true
	res.TS[j] = time.Unix(0, ts).UTC()
	return nil
}

// projection returns (building once per query and layout) how layout id maps
// onto features. Rows of a set nearly always share one layout, so the list is short.
func (st *readState) projection(l *online.Layout, id uint32, features []string) *projection {
	for i := range st.projs {
		if st.projs[i].layout == id {
			return &st.projs[i]
		}
	}
	if len(st.projs) < cap(st.projs) {
		st.projs = st.projs[:len(st.projs)+1]
	} else {
		st.projs = append(st.projs, projection{})
	}
	p := &st.projs[len(st.projs)-1]
	p.layout = id
	p.Project(l, features)
	return p
}

// slogLogger routes Pebble's log lines to slog: info at debug level (Pebble is
// chatty about compactions), errors at error level.
type slogLogger struct{ l *slog.Logger }

func (l slogLogger) Infof(format string, args ...any) {
	l.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l slogLogger) Errorf(format string, args ...any) {
	l.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf is called by Pebble on unrecoverable corruption; Pebble expects it not
// to return, so it logs and exits like Pebble's own default logger.
func (l slogLogger) Fatalf(format string, args ...any) {
	l.l.Error("pebble: fatal: " + fmt.Sprintf(format, args...))
	_, _ = io.WriteString(os.Stderr, "pebble: fatal: "+fmt.Sprintf(format, args...)+"\n")
	os.Exit(1)
}
