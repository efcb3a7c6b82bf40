package gbdt

import (
	"context"
	"sync"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
)

// TestBinCache: fits through a shared cache train the models that fits
// without one train, whichever parameters change between them; the cache
// bins a dataset once per set of binning parameters, also when parallel
// fits ask at once, and keys another dataset apart.
func TestBinCache(t *testing.T) {
	train := gbdttest.Synth(ObjBinary, 3000, 3)
	valid := gbdttest.Synth(ObjBinary, 500, 4)
	other := gbdttest.Synth(ObjBinary, 2000, 5)
	fits := []struct {
		name    string
		kv      map[string]string
		entries int // cache entries after this fit
	}{
		{"first", map[string]string{"num_leaves": "15", "learning_rate": "0.1"}, 1},
		// seed derives data_random_seed, which draws no sample of 3,000 rows
		{"other tree parameters", map[string]string{"num_leaves": "63", "min_data_in_leaf": "5", "feature_fraction": "0.6", "seed": "3"}, 1},
		{"max_bin", map[string]string{"max_bin": "31"}, 2},
		{"bin sample", map[string]string{"bin_construct_sample_cnt": "1000"}, 3},
		{"data_random_seed", map[string]string{"bin_construct_sample_cnt": "1000", "data_random_seed": "9"}, 4},
		{"use_missing", map[string]string{"use_missing": "false"}, 5},
		{"first again", map[string]string{"num_leaves": "15", "learning_rate": "0.1"}, 5},
	}
	var cache BinCache
	for _, f := range fits {
		kv := map[string]string{"objective": "binary", "metric": "auc", "num_iterations": "15", "num_threads": "2"}
		for k, v := range f.kv {
			kv[k] = v
		}
		want := modelJSON(t, trainOrFatal(t, train, valid, kv))
		m, err := Train(context.Background(), train, valid, mustParams(t, kv), TrainOptions{Bins: &cache})
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if modelJSON(t, m) != want {
			t.Errorf("%s: the model trained through the cache differs from the one trained without", f.name)
		}
		if n := len(cache.entries); n != f.entries {
			t.Errorf("%s: %d cache entries, want %d", f.name, n, f.entries)
		}
	}

	// Parallel fits of a new dataset: one entry, one binning, one result.
	var wg sync.WaitGroup
	bds := make([]*binnedData, 4)
	p := mustParams(t, map[string]string{"objective": "binary"})
	for i := range bds {
		wg.Go(func() { bds[i] = cache.binned(other, &p, 1) })
	}
	wg.Wait()
	for i, bd := range bds {
		if bd != bds[0] || bd.n != other.NumRows() {
			t.Fatalf("parallel binning %d: got %p (%d rows), want the shared %p (%d rows)", i, bd, bd.n, bds[0], other.NumRows())
		}
	}
	if n := len(cache.entries); n != 6 {
		t.Errorf("after another dataset: %d cache entries, want 6", n)
	}
}
