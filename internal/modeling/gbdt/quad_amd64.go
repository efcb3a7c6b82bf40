package gbdt

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// canQuads says whether orMasks4 can run here (AVX2), and quads whether
// predictRowsQS scores rows four at a time: where orMasks4 is one vector
// operation per node. Without AVX2, pairs. A variable for the tests, which
// run both forms.
var canQuads = cpu.X86.HasAVX2

var quads = canQuads

// orMasks4 is orMasks4Go in AVX2 (quad_amd64.s): the node's mask
// broadcast, and-ed with the lanes, or-ed into the tree's 32 bytes.
// Unchecked: every node's tree is below the bitvectors' count.
//
//go:noescape
func orMasks4(v unsafe.Pointer, ns []qsNode, lanes *[4]uint64)
