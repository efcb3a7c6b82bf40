package gbdt

import "unsafe"

// prefetch asks the CPU to bring the cache line at addr into the cache
// without waiting for it (PREFETCHT0): the histogram loops read rows and
// gradients in a random order that the hardware prefetcher cannot predict, so
// they announce the rows they will read a few iterations ahead. It never
// faults, whatever the address.
//
//go:noescape
func prefetch(addr unsafe.Pointer)

// prefetch2 prefetches two cache lines in one call.
//
//go:noescape
func prefetch2(a, b unsafe.Pointer)
