package pebble

import "github.com/prometheus/client_golang/prometheus"

// The Store's metrics (Store is a prometheus.Collector): its row cache's,
// from otter's own counts, and a few of Pebble's, from DB.Metrics. They
// are read when the registry is scraped. They carry no label telling
// stores apart: register at most one Store on a registry.
var (
	rowCacheHitsDesc = prometheus.NewDesc("atrium_online_row_cache_hits_total",
		"Keys read from the Pebble online store that its row cache (row_cache_mb) held: served without reading Pebble.", nil, nil)
	rowCacheMissesDesc = prometheus.NewDesc("atrium_online_row_cache_misses_total",
		"Keys read from the Pebble online store that its row cache did not hold: read from Pebble (found there or not).", nil, nil)
	rowCacheEvictionsDesc = prometheus.NewDesc("atrium_online_row_cache_evictions_total",
		"Rows evicted from the row cache to keep it within its capacity; rows removed because their key was written are not counted.", nil, nil)
	rowCacheBytesDesc = prometheus.NewDesc("atrium_online_row_cache_bytes",
		"Bytes the row cache holds, as weighed against its capacity: the rows' keys and records and a fixed cost per row.", nil, nil)
	rowCacheCapacityDesc = prometheus.NewDesc("atrium_online_row_cache_capacity_bytes",
		"Most bytes the row cache holds (row_cache_mb).", nil, nil)

	blockCacheHitsDesc = prometheus.NewDesc("atrium_online_pebble_block_cache_hits_total",
		"Lookups of a table block in Pebble's block cache (cache_mb) that found it.", nil, nil)
	blockCacheMissesDesc = prometheus.NewDesc("atrium_online_pebble_block_cache_misses_total",
		"Lookups of a table block in Pebble's block cache that did not find it: the block was read from its file and decompressed.", nil, nil)
	blockCacheBytesDesc = prometheus.NewDesc("atrium_online_pebble_block_cache_bytes",
		"Bytes of table blocks in Pebble's block cache (the memtables' reservations in it not counted).", nil, nil)
	readAmpDesc = prometheus.NewDesc("atrium_online_pebble_read_amplification",
		"Pebble's read amplification: the sublevels of L0 plus the non-empty levels below it, the sorted runs a point read may have to consult.", nil, nil)
	memTableBytesDesc = prometheus.NewDesc("atrium_online_pebble_memtable_bytes",
		"Bytes allocated by Pebble's memtables (memtable_mb each; two while one is flushed).", nil, nil)
)

var _ prometheus.Collector = (*Store)(nil)

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		rowCacheHitsDesc, rowCacheMissesDesc, rowCacheEvictionsDesc, rowCacheBytesDesc, rowCacheCapacityDesc,
		blockCacheHitsDesc, blockCacheMissesDesc, blockCacheBytesDesc, readAmpDesc, memTableBytesDesc,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Without a row cache
// (RowCacheSize negative) the atrium_online_row_cache_ metrics are absent;
// after Close, all of them are.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	if s.gate.Enter() != nil {
		return // closed
	}
	defer s.gate.Leave()
	s.rows.collect(ch)
	m := s.db.Metrics()
	ch <- prometheus.MustNewConstMetric(blockCacheHitsDesc, prometheus.CounterValue, float64(m.BlockCache.Hits))
	ch <- prometheus.MustNewConstMetric(blockCacheMissesDesc, prometheus.CounterValue, float64(m.BlockCache.Misses))
	ch <- prometheus.MustNewConstMetric(blockCacheBytesDesc, prometheus.GaugeValue, float64(m.BlockCache.Size))
	ch <- prometheus.MustNewConstMetric(readAmpDesc, prometheus.GaugeValue, float64(m.ReadAmp()))
	ch <- prometheus.MustNewConstMetric(memTableBytesDesc, prometheus.GaugeValue, float64(m.MemTable.Size))
}

// collect sends the row cache's metrics, none for a nil cache. Its weight
// is otter's after the maintenance WeightedSize runs first, so it counts
// the rows added until now.
func (c *rowCache) collect(ch chan<- prometheus.Metric) {
	if c == nil {
		return
	}
	st := c.cache.Stats()
	ch <- prometheus.MustNewConstMetric(rowCacheHitsDesc, prometheus.CounterValue, float64(st.Hits))
	ch <- prometheus.MustNewConstMetric(rowCacheMissesDesc, prometheus.CounterValue, float64(st.Misses))
	ch <- prometheus.MustNewConstMetric(rowCacheEvictionsDesc, prometheus.CounterValue, float64(st.Evictions))
	ch <- prometheus.MustNewConstMetric(rowCacheBytesDesc, prometheus.GaugeValue, float64(c.cache.WeightedSize()))
	ch <- prometheus.MustNewConstMetric(rowCacheCapacityDesc, prometheus.GaugeValue, float64(c.cache.GetMaximum()))
}
