package gbdt

import "unsafe"

// prefetch2 asks the CPU to bring the cache lines at a and b into the cache
// without waiting for them (PREFETCHT0): the histogram loop reads rows and
// gradients in an order the hardware prefetcher cannot predict, so it
// announces the row it will read a few iterations ahead. It never faults,
// whatever the addresses.
//
//go:noescape
func prefetch2(a, b unsafe.Pointer)
