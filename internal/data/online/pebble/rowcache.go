package pebble

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
)

// rowCache holds stored records of rows read, by key, in front of Pebble:
// a hit costs a hash lookup where Pebble seeks its memtables and tables
// (about 2.7 us a key from cached blocks; a rank request reads 201 keys).
//
// It can be exact because every write to a Pebble directory goes through
// the one Store holding its lock (atrium materialize writes through the
// server while it runs), and Write and Delete remove the keys they wrote
// once their batch is committed. What is left to rule out is a reader that
// read a record before a write and inserts it after the write removed the
// key: that would serve the old row until evicted. So a reader takes the
// generation before reading Pebble and inserts only if it is unchanged,
// under mu held shared; a writer bumps the generation and removes its keys
// under mu held exclusively. A record read before the write either meets
// the new generation (and is not inserted), or was inserted before the
// writer's removal (and is removed by it).
//
// Entries are found by a 64-bit hash of the key, and hold the key itself
// before the record (its length as a uvarint, its bytes, then the record):
// a lookup compares the hash inside otter's node and the key in the line it
// loads for the record anyway. With the key as a string, the key's bytes
// were one more cache miss per key, a third of a lookup's time at 500 rank
// requests a second. A hash that two keys share (one chance in 2^64 per
// pair) costs a miss and an eviction, never a wrong row: the key is checked.
//
// The cache counts its hits, misses and evictions itself (otter's
// stats.Counter), for the Store's metrics (metrics.go).
//
// A nil *rowCache caches nothing.
type rowCache struct {
	mu    sync.RWMutex
	gen   atomic.Uint64
	seed  maphash.Seed
	cache *otter.Cache[uint64, []byte]
}

// rowCacheEntryOverhead is what an entry costs beyond its key and record
// (otter's node, the slice header), for the weight bound.
const rowCacheEntryOverhead = 96

// newRowCache returns a cache of at most size bytes, or nil when size is
// not positive.
func newRowCache(size int64) *rowCache {
	if size <= 0 {
		return nil
	}
	return &rowCache{seed: maphash.MakeSeed(), cache: otter.Must(&otter.Options[uint64, []byte]{
		MaximumWeight: uint64(size),
		StatsRecorder: stats.NewCounter(),
		Weigher: func(_ uint64, v []byte) uint32 {
			return uint32(min(cap(v)+rowCacheEntryOverhead, 1<<31))
		},
	})}
}

// generation is the count of write batches removed so far; take it before
// reading Pebble and pass it to add.
func (c *rowCache) generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

// get returns the record cached for key. The record must not be modified.
func (c *rowCache) get(key []byte) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	e, ok := c.cache.GetIfPresent(maphash.Bytes(c.seed, key))
	if !ok {
		return nil, false
	}
	n, w := binary.Uvarint(e)
	if w <= 0 || n != uint64(len(key)) || !bytes.Equal(e[w:w+int(n)], key) {
		return nil, false // another key's entry under the same hash
	}
	return e[w+int(n):], true
}

// add caches a copy of rec, read from Pebble for key after generation gen
// was taken, unless a write batch was removed since.
func (c *rowCache) add(gen uint64, key, rec []byte) {
	if c == nil {
		return
	}
	if testHookRowCacheAdd != nil {
		testHookRowCacheAdd()
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen.Load() != gen {
		return
	}
	e := make([]byte, 0, binary.MaxVarintLen64+len(key)+len(rec))
	e = binary.AppendUvarint(e, uint64(len(key)))
	e = append(append(e, key...), rec...)
	c.cache.Set(maphash.Bytes(c.seed, key), e)
}

// testHookRowCacheAdd, when set, runs in add before the generation is
// checked: the tests write there, between a read and its insertion.
var testHookRowCacheAdd func()

// invalidate removes keys, written by a batch that is committed (or failed),
// and starts a new generation.
func (c *rowCache) invalidate(keys []string) {
	if c == nil || len(keys) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for _, k := range keys {
		c.cache.Invalidate(maphash.String(c.seed, k))
	}
}
