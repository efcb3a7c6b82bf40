package gbdt

import (
	"math/bits"
	"unsafe"
)

// Rows four at a time in the bitvector form (predictQuadsQS), where the CPU
// can or a node's mask into four rows' bitvectors with one 32-byte
// operation (orMasks4, AVX2). A numeric feature's false nodes are a prefix
// of its sorted nodes for each row; with the four prefixes sorted, the
// nodes up to the shortest are marked in all four rows at once, those up to
// the second shortest in the three others, and so on: a block of four rows
// visits as many nodes as its longest prefix, where pairs visit each
// pair's longest (for uniform prefixes of n nodes, 4n/5 per four rows
// against 4n/3). The per-row work of pairs, which or a mask into each row
// separately, becomes one vector operation per node.

// quadLanes[m] is the lane mask of orMasks4 for the rows in the 4-bit set
// m: lane j all ones when bit j of m is set.
var quadLanes = func() (t [16][4]uint64) {
	for m := range t {
		for j := range 4 {
			if m>>j&1 != 0 {
				t[m][j] = ^uint64(0)
			}
		}
	}
	return t
}()

// orMasks4Go is orMasks4 in Go: for each node of ns, its mask or-ed into
// the bitvectors of the rows whose lanes are set (v points to four rows'
// interleaved bitvectors, 32 bytes per tree). The reference the assembly
// is tested against, and the form where it is not available.
func orMasks4Go(v unsafe.Pointer, ns []qsNode, lanes *[4]uint64) {
	for i := range ns {
		m := (*[4]uint64)(unsafe.Add(v, uintptr(ns[i].tree)*32))
		mask := ns[i].mask
		m[0] |= mask & lanes[0]
		m[1] |= mask & lanes[1]
		m[2] |= mask & lanes[2]
		m[3] |= mask & lanes[3]
	}
}

// predictQuadsQS predicts the rows of a block four at a time, as far as
// their number is a multiple of four, and returns how many it did: the
// k == 1 case of predictRowsQS without slow trees, as predictPairsQS. The
// four rows of a quad are a group of four of the block's bins. Each row's
// sum is over its trees in model order: the same bits as single rows.
func (p *predictor) predictQuadsQS(bins []uint32, w, rows int, numFeats, catFeats []int32, base []uint64, s *scratch, o []float64) int {
	q := p.qs
	nt := len(p.trees)
	s.v4 = grow(s.v4, 4*nt)
	v := s.v4
	vp := unsafe.Pointer(unsafe.SliceData(v))
	for r := 0; r+3 < rows; r += 4 {
		if base != nil {
			for t, m := range base {
				v[4*t], v[4*t+1], v[4*t+2], v[4*t+3] = m, m, m, m
			}
		} else {
			clear(v)
		}
		g := bins[r>>2*4*w:][:4*w]
		for _, f := range numFeats {
			p.markNumQuad(vp, f, (*[4]uint32)(g[int(f)*4:]))
		}
		for _, f := range catFeats {
			p.markCatQuad(v, f, (*[4]uint32)(g[(p.nf+int(f))*4:]))
		}
		sumQuad(v, q.leafBase, q.leaves, (*[4]float64)(o[r:]))
	}
	return rows &^ 3
}

// markNumQuad marks numeric feature f's false nodes for four rows whose
// bins are b: a row of a missing value takes the feature's NaN list on its
// own; the others' prefixes are sorted and marked from the longest row set
// down (see the top of this file).
//
// The sort is a network of min and max on keys prefix<<2 | lane, which the
// compiler makes conditional moves where an insertion sort branched on the
// data (callgrind's branch simulation, BenchmarkInfer of internal/serving:
// 2.7 mispredicted branches a call, against 4.0 with the insertion sort). A
// missing value's row takes prefix 0, so it is out of the set before any
// node is marked. Ties sort by lane, as the insertion sort kept them. A
// prefix is at most the feature's node count, far below 2^29, so the
// shifted key fits an int32.
func (p *predictor) markNumQuad(v unsafe.Pointer, f int32, b *[4]uint32) {
	q := p.qs
	off := q.off[f]
	var key [4]int32
	for j, bj := range b {
		if bj == nanBin {
			orMasks4(v, q.nan[f], &quadLanes[1<<j])
			key[j] = int32(j)
			continue
		}
		key[j] = off[bj]<<2 | int32(j)
	}
	k0, k1 := min(key[0], key[1]), max(key[0], key[1])
	k2, k3 := min(key[2], key[3]), max(key[2], key[3])
	k0, k2 = min(k0, k2), max(k0, k2)
	k1, k3 = min(k1, k3), max(k1, k3)
	k1, k2 = min(k1, k2), max(k1, k2)
	ns := q.num[f]
	set, lo := uint8(15), int32(0)
	for i, k := range [4]int32{k0, k1, k2, k3} {
		lane := k & 3
		if hi := k >> 2; hi > lo {
			if i == 3 {
				// One row left: a scalar or, a quarter of the bytes.
				orMasksQuadRow(unsafe.Add(v, 8*uintptr(lane)), ns[lo:hi])
			} else {
				orMasks4(v, ns[lo:hi], &quadLanes[set])
			}
			lo = hi
		}
		set &^= 1 << lane
	}
}

// orMasksQuadRow marks the nodes ns in one row of a quad (v points to that
// row's first bitvector; a row's bitvectors are 32 bytes apart).
//
//go:noinline
func orMasksQuadRow(v unsafe.Pointer, ns []qsNode) {
	for i := range ns {
		m := (*uint64)(unsafe.Add(v, uintptr(ns[i].tree)*32))
		*m |= ns[i].mask
	}
}

// markCatQuad marks categorical feature f's false nodes for four rows of
// codes c: rows sharing a list are marked together.
func (p *predictor) markCatQuad(v []uint64, f int32, c *[4]uint32) {
	q := p.qs
	if lists := q.catList[f]; lists != nil {
		vp := unsafe.Pointer(unsafe.SliceData(v))
		var k [4]uint32
		for j := range 4 {
			k[j] = q.catListIndex(f, c[j])
		}
		done := uint8(0)
		for j := range 4 {
			if done>>j&1 != 0 {
				continue
			}
			set := uint8(0)
			for i := j; i < 4; i++ {
				if k[i] == k[j] {
					set |= 1 << i
				}
			}
			orMasks4(vp, lists[k[j]], &quadLanes[set])
			done |= set
		}
		return
	}
	// The codes in locals: loaded through c, they were reloaded after every
	// store to v (the compiler cannot tell the two apart).
	c0, c1, c2, c3 := c[0], c[1], c[2], c[3]
	for i := range q.cat[f] {
		n := &q.cat[f][i]
		m := (*[4]uint64)(v[4*n.tree:])
		m[0] |= n.mask & -uint64(p.catSplit(&n.node, c0))
		m[1] |= n.mask & -uint64(p.catSplit(&n.node, c1))
		m[2] |= n.mask & -uint64(p.catSplit(&n.node, c2))
		m[3] |= n.mask & -uint64(p.catSplit(&n.node, c3))
	}
}

// sumQuad adds to s the leaf values four rows reach in each tree (v their
// interleaved bitvectors), in model order: sumPair for four rows, unchecked
// for the same reason.
//
//go:noinline
func sumQuad(v []uint64, leafBase []int32, leaves []float64, s *[4]float64) {
	v = v[:4*len(leafBase)]
	lp := unsafe.Pointer(unsafe.SliceData(leaves))
	s0, s1, s2, s3 := s[0], s[1], s[2], s[3]
	for t, lb := range leafBase {
		m := (*[4]uint64)(v[4*t:])
		s0 += *(*float64)(unsafe.Add(lp, (int(lb)+bits.TrailingZeros64(^m[0]))*8))
		s1 += *(*float64)(unsafe.Add(lp, (int(lb)+bits.TrailingZeros64(^m[1]))*8))
		s2 += *(*float64)(unsafe.Add(lp, (int(lb)+bits.TrailingZeros64(^m[2]))*8))
		s3 += *(*float64)(unsafe.Add(lp, (int(lb)+bits.TrailingZeros64(^m[3]))*8))
	}
	s[0], s[1], s[2], s[3] = s0, s1, s2, s3
}
