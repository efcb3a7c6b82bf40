package gbdt

import (
	"sync"
	"sync/atomic"
)

// parallelFor runs fn(i) for i in [0, n) on up to nt goroutines, handing out
// indices one at a time (for uneven work such as one feature's histogram).
// Results must not depend on which goroutine runs which i.
//
// The calling goroutine works too, and waits only for indices other
// goroutines have claimed, never for a helper to start: on a busy machine
// a helper may be scheduled late, and the caller then simply does its share.
func parallelFor(nt, n int, fn func(i int)) {
	if nt <= 1 || n <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(n)
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(i)
			wg.Done()
		}
	}
	for w := 1; w < min(nt, n); w++ {
		go work()
	}
	work()
	wg.Wait()
}

// parallelRange splits [0, n) into blocks of at least minBlock and runs
// fn(block, lo, hi) on up to nt goroutines. The blocks depend only on n, nt and
// minBlock, so a caller combining per-block results in block order gets the
// same result every run.
func parallelRange(nt, n, minBlock int, fn func(block, lo, hi int)) int {
	blocks := numBlocks(nt, n, minBlock)
	size := (n + blocks - 1) / blocks
	parallelFor(nt, blocks, func(b int) {
		lo := b * size
		hi := min(n, lo+size)
		fn(b, lo, hi)
	})
	return blocks
}

// numBlocks is the number of blocks parallelRange uses: up to four per
// thread, so that a thread the machine schedules late leaves blocks to the
// others instead of holding up the loop.
func numBlocks(nt, n, minBlock int) int {
	if n <= 0 || nt <= 1 {
		return 1
	}
	return max(1, min(4*nt, (n+minBlock-1)/minBlock))
}
