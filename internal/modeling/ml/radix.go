package ml

import "math"

// SortFloats sorts v ascending, in place, by a least-significant-digit
// radix sort of the values' bits (8 passes of one byte, skipping a pass
// where every value has the same byte). The standard library has no radix
// sort, and a tuning study sorts large float slices on its hot paths: AUC
// sorts the validation scores every boosting iteration, and each fit's
// bin finding sorts a sample of every feature. At 150,000 values this is
// several times faster than slices.Sort's comparisons.
//
// v must hold no NaN. Negative zero is sorted as zero (it is rewritten to
// +0), so that equal values end up adjacent as the AUC's tie counting
// expects.
func SortFloats(v []float64) {
	n := len(v)
	if n < 256 {
		// A pass costs 256 counters; comparisons win on tiny inputs.
		insertionSortFloats(v)
		return
	}
	// keys: the bits mapped so that unsigned order is numeric order
	// (negative values have every bit flipped, others the sign bit set).
	keys := make([]uint64, 2*n)
	src, dst := keys[:n], keys[n:]
	var counts [8][256]int
	for i, f := range v {
		if f == 0 {
			f = 0 // -0 to +0
		}
		k := math.Float64bits(f)
		if k>>63 != 0 {
			k = ^k
		} else {
			k |= 1 << 63
		}
		src[i] = k
		for d := range 8 {
			counts[d][byte(k>>(8*d))]++
		}
	}
	for d := range 8 {
		c := &counts[d]
		if c[byte(src[0]>>(8*d))] == n {
			continue // every key has this byte: the pass would not move anything
		}
		sum := 0
		for b := range c {
			c[b], sum = sum, sum+c[b]
		}
		shift := 8 * uint(d)
		for _, k := range src {
			b := byte(k >> shift)
			dst[c[b]] = k
			c[b]++
		}
		src, dst = dst, src
	}
	for i, k := range src {
		if k>>63 != 0 {
			k &^= 1 << 63
		} else {
			k = ^k
		}
		v[i] = math.Float64frombits(k)
	}
}

func insertionSortFloats(v []float64) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}
