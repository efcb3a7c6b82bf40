package gbdt

import (
	"sync"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// BinCache keeps the binned training data of datasets that several Train
// calls share. A tuning study's trials fit the same rows with different
// parameters, and finding the bins (sampling and sorting every feature) and
// binning every value is the same work in each: with a cache it is done
// once per dataset, as LightGBM users build one lgb.Dataset for a study.
//
// An entry is keyed by the dataset's pointer and the parameters that shape
// the bins (max_bin, min_data_in_bin, use_missing, and when the dataset has
// more rows than bin_construct_sample_cnt, that and data_random_seed), so a
// dataset must not be changed while it is cached. Entries live as long as
// the cache (k folds keep k). Safe for concurrent use (a study's parallel
// trials wait for one binning); the zero value is ready.
type BinCache struct {
	mu      sync.Mutex
	entries map[binKey]*binEntry
}

// binKey is what binDataset's result depends on.
type binKey struct {
	ds           *ml.Dataset
	maxBin       int
	minDataInBin int
	sampleCnt    int
	seed         int64
	useMissing   bool
}

type binEntry struct {
	once sync.Once
	bd   *binnedData
}

// binned returns ds's binned data under p, from the cache when c holds it
// (c may be nil: no cache).
func (c *BinCache) binned(ds *ml.Dataset, p *Params, nt int) *binnedData {
	if c == nil {
		return binDataset(ds, p, nt)
	}
	k := binKey{ds: ds, maxBin: p.MaxBin, minDataInBin: p.MinDataInBin, sampleCnt: p.BinConstructSampleCnt,
		seed: p.DataRandomSeed, useMissing: p.UseMissing}
	if ds.NumRows() <= k.sampleCnt {
		// Every row is the sample (sampleRows): neither the sample size nor
		// its seed (derived from `seed`, which a study may vary) matters.
		k.sampleCnt, k.seed = 0, 0
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[binKey]*binEntry{}
	}
	e := c.entries[k]
	if e == nil {
		e = &binEntry{}
		c.entries[k] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.bd = binDataset(ds, p, nt) })
	return e.bd
}
