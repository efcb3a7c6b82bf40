// Package floatsort sorts float64 slices by radix: the standard library has
// no radix sort, and the platform sorts large float samples on hot paths
// (drift statistics over a report's samples, a tuning trial's validation
// AUC every boosting iteration, the bin finding of every fit).
package floatsort

import (
	"math"
	"slices"
)

// radixMin is the length from which Sort radix-sorts: below it slices.Sort
// is as fast and allocates nothing.
const radixMin = 1 << 12

// Sort sorts values without NaN (infinities are fine) in increasing
// order. Large slices are radix-sorted (LSD, one byte per pass, passes
// where every value shares the byte skipped): for 1M values about 4x faster
// than slices.Sort (which was a third of a 1M x 50 drift report's time),
// for 150,000 about 1.5x. -0 sorts before +0; slices.Sort leaves them in
// any order, and callers that compare them equal see no difference.
func Sort(x []float64) {
	if len(x) < radixMin {
		slices.Sort(x)
		return
	}
	// Order-preserving map to uint64: negative numbers flip every bit (larger
	// magnitude, smaller key), positive ones only the sign bit.
	keys := make([]uint64, len(x))
	var counts [8][256]int
	for i, v := range x {
		b := math.Float64bits(v)
		if b>>63 == 1 {
			b = ^b
		} else {
			b |= 1 << 63
		}
		keys[i] = b
		for p := range 8 {
			counts[p][byte(b>>(8*p))]++
		}
	}
	buf := make([]uint64, len(x))
	src, dst := keys, buf
	for p := range 8 {
		c := &counts[p]
		if c[byte(src[0]>>(8*p))] == len(src) {
			continue // every key has this byte: the pass would not move anything
		}
		var offs [256]int
		sum := 0
		for d, n := range c {
			offs[d] = sum
			sum += n
		}
		shift := uint(8 * p)
		for _, k := range src {
			d := byte(k >> shift)
			dst[offs[d]] = k
			offs[d]++
		}
		src, dst = dst, src
	}
	for i, b := range src {
		if b>>63 == 1 {
			b &^= 1 << 63
		} else {
			b = ^b
		}
		x[i] = math.Float64frombits(b)
	}
}
