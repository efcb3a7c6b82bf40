//go:build !amd64

package gbdt

import "unsafe"

// Without a vector form of orMasks4, predictRowsQS scores pairs, which are
// as fast; the quads' Go form stays testable (canQuads).
var canQuads = true

var quads = false

func orMasks4(v unsafe.Pointer, ns []qsNode, lanes *[4]uint64) { orMasks4Go(v, ns, lanes) }
