package gbdt

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// forEachForm runs f with rows scored in pairs and, where orMasks4 can run,
// in quads: both forms must predict the same bits.
func forEachForm(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	defer func(q bool) { quads = q }(quads)
	for _, q := range []bool{false, true} {
		if q && !canQuads {
			continue
		}
		quads = q
		name := "pairs"
		if q {
			name = "quads"
		}
		t.Run(name, f)
	}
}

// orMasks4 (AVX2 on amd64) marks exactly what its Go form does, for every
// set of lanes, runs of every length, and nodes that share a tree (whose
// second or must see the first's).
func TestOrMasks4(t *testing.T) {
	if !canQuads {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const trees = 7
	for set := range quadLanes {
		for n := range 12 {
			ns := make([]qsNode, n)
			for i := range ns {
				ns[i] = qsNode{mask: rng.Uint64() & rng.Uint64(), tree: uint32(rng.IntN(trees))}
			}
			start := make([]uint64, 4*trees)
			for i := range start {
				start[i] = rng.Uint64() & rng.Uint64() & rng.Uint64()
			}
			got, want := slices.Clone(start), slices.Clone(start)
			orMasks4(unsafe.Pointer(&got[0]), ns, &quadLanes[set])
			orMasks4Go(unsafe.Pointer(&want[0]), ns, &quadLanes[set])
			if !slices.Equal(got, want) {
				t.Fatalf("lanes %04b, %d nodes: %x, want %x", set, n, got, want)
			}
			// The Go form itself: lane j of tree t gains exactly the masks
			// of t's nodes when j is in the set.
			for tr := range trees {
				for j := range 4 {
					w := start[4*tr+j]
					for _, nd := range ns {
						if int(nd.tree) == tr && set>>j&1 != 0 {
							w |= nd.mask
						}
					}
					if want[4*tr+j] != w {
						t.Fatalf("lanes %04b, %d nodes: tree %d lane %d: %x, want %x", set, n, tr, j, want[4*tr+j], w)
					}
				}
			}
		}
	}
}
