package pebble

import (
	"sync"
	"sync/atomic"
	"unsafe"

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
// The cache counts its hits, misses and evictions itself (otter's
// stats.Counter), for the Store's metrics (metrics.go).
//
// A nil *rowCache caches nothing.
type rowCache struct {
	mu    sync.RWMutex
	gen   atomic.Uint64
	cache *otter.Cache[string, []byte]
}

// rowCacheEntryOverhead is what an entry costs beyond its key and record
// (otter's node, the string and slice headers), for the weight bound.
const rowCacheEntryOverhead = 96

// newRowCache returns a cache of at most size bytes, or nil when size is
// not positive.
func newRowCache(size int64) *rowCache {
	if size <= 0 {
		return nil
	}
	return &rowCache{cache: otter.Must(&otter.Options[string, []byte]{
		MaximumWeight: uint64(size),
		StatsRecorder: stats.NewCounter(),
		Weigher: func(k string, v []byte) uint32 {
			return uint32(min(len(k)+cap(v)+rowCacheEntryOverhead, 1<<31))
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
	// The key is only looked up, not kept: no copy.
	return c.cache.GetIfPresent(unsafe.String(unsafe.SliceData(key), len(key)))
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
	c.cache.Set(string(key), append([]byte(nil), rec...))
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
		c.cache.Invalidate(k)
	}
}
