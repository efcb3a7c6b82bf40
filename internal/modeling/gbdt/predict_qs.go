package gbdt

import (
	"math/bits"
	"slices"
	"unsafe"
)

// The compiled predictor's second form, after QuickScorer (Lucchese et al.,
// "QuickScorer: a fast algorithm to rank documents with additive ensembles
// of regression trees", SIGIR 2015): instead of walking each tree from its
// root, a row visits, feature by feature, every node whose test sends it
// right (a "false" node), and marks in its tree's bitvector the leaves of
// that node's left subtree as unreachable. Once all features are done, the
// leaf a row reaches in a tree is the leftmost leaf not marked: every leaf
// left of it lies in the left subtree of a node on its path where the row
// went right (their lowest common ancestor), and no node where the row went
// right has it in its left subtree.
//
// With bins the false nodes need no comparison at all: a numeric node whose
// threshold is its feature's j-th sends a row of bin b right exactly when
// j < b, so with the feature's nodes sorted by j the false ones are a
// prefix, whose length is looked up by bin. A missing value's false nodes
// are the feature's nodes that send it right, listed apart. Categorical
// nodes are tested one by one (catSplit). The inner loop is then one load
// of a 16-byte node and one or-into-memory per false node, with no
// dependency between nodes and a sequential read the hardware prefetches,
// where a walk pays a dependent load chain per level: about half of all
// nodes against depth x trees, 3-4x faster for ensembles of 31-leaf trees.
// Rows go two at a time (predictPairsQS): the shorter of a pair's two
// prefixes is loaded once for both rows; with AVX2, four at a time
// (predictQuadsQS, predict_quad.go), each node or-ed into the rows that
// need it with one vector operation.
//
// A tree's bitvector is one uint64, so the form exists only when every
// compact tree has at most 64 leaves; otherwise the model keeps the walks.
// Trees the compact nodes cannot express (predictor.slow) take the general
// rule in both forms. The sum of the trees' values is in model order, from
// 0, as in the walks: both forms agree bit for bit.

// qsMaxLeaves is the most leaves a tree may have for the bitvector form.
const qsMaxLeaves = 64

// qsNode is a node of the bitvector form: the tree it belongs to, and the
// bits of the leaves of its left subtree (leaves numbered left to right).
// quad_amd64.s reads it as 16 bytes, mask at 0 and tree at 8.
type qsNode struct {
	mask uint64
	tree uint32
}

// qsCat is a categorical node of the bitvector form, with its compact
// node for catSplit.
type qsCat struct {
	node flatNode
	mask uint64
	tree uint32
}

// qsForm is the model in the bitvector form.
type qsForm struct {
	// numFeats are the features numeric nodes split on, catFeats those
	// categorical nodes split on.
	numFeats, catFeats []int32
	// num[f] are feature f's numeric nodes, by threshold index; off[f][b]
	// is how many of them send a value of bin b right (those with a
	// threshold index below b), for b in [0, len(thr[f])].
	num [][]qsNode
	off [][]int32
	// nan[f] are feature f's numeric nodes that send a missing value right.
	nan [][]qsNode
	// A categorical feature f's nodes are either listed by code, when the
	// lists stay small (catLimit), or tested one by one: catList[f][k] are
	// the nodes that send code k right, for k below catCodes[f]; code
	// catCodes[f] stands for every code at or beyond it (no bitset holds
	// them: every node sends them right) and invalidCode, catCodes[f]+1
	// for a missing value. Without lists, cat[f] are the nodes.
	catList  [][][]qsNode
	catCodes []uint32
	cat      [][]qsCat
	// leafBase[t] is where tree t's leaves, left to right, start in leaves.
	leafBase []int32
	leaves   []float64
}

// compileQS builds p's bitvector form from its compact nodes, or returns
// nil when a compact tree has more than qsMaxLeaves leaves.
func compileQS(p *predictor) *qsForm {
	nf := p.nf
	q := &qsForm{num: make([][]qsNode, nf), off: make([][]int32, nf), nan: make([][]qsNode, nf), cat: make([][]qsCat, nf),
		leafBase: make([]int32, len(p.trees))}
	type numRef struct {
		node qsNode
		j    int64
	}
	num := make([][]numRef, nf)
	for ti := range p.trees {
		t := &p.trees[ti]
		q.leafBase[ti] = int32(len(q.leaves))
		if t.slow {
			continue
		}
		if t.tree.NumLeaves > qsMaxLeaves {
			return nil
		}
		// visit numbers the leaves of the subtree at node i from next on,
		// left to right, records the subtree's nodes, and returns the
		// number after its last leaf. Its recursion is as deep as the tree.
		var visit func(i int32, next uint) uint
		visit = func(i int32, next uint) uint {
			n := &p.nodes[i]
			if n.meta&metaLeaf != 0 {
				q.leaves = append(q.leaves, p.leafVal[i])
				return next + 1
			}
			mid := visit(i+1, next)
			end := visit(i+1+int32(uint32(n.meta)), mid)
			// The leaves next..mid-1 are the left subtree's (mid-next >= 1).
			mask := (^uint64(0) >> (64 - (mid - next))) << next
			slot := int(n.meta >> metaFeatShift & metaFeatMask)
			if n.meta&metaCategorical != 0 {
				f := slot - nf
				q.cat[f] = append(q.cat[f], qsCat{node: *n, mask: mask, tree: uint32(ti)})
				return end
			}
			qn := qsNode{mask: mask, tree: uint32(ti)}
			j := n.arg
			if n.meta&metaAddOne != 0 {
				j--
			}
			num[slot] = append(num[slot], numRef{qn, j})
			if n.meta&metaNaNRight != 0 {
				q.nan[slot] = append(q.nan[slot], qn)
			}
			return end
		}
		visit(t.root, 0)
	}
	for f := range nf {
		if len(num[f]) > 0 {
			slices.SortStableFunc(num[f], func(a, b numRef) int { return int(a.j - b.j) })
			q.numFeats = append(q.numFeats, int32(f))
			q.num[f] = make([]qsNode, len(num[f]))
			// off[f][b] counts the nodes of threshold index below b.
			off := make([]int32, len(p.thr[f])+1)
			for i, r := range num[f] {
				q.num[f][i] = r.node
				off[r.j+1]++
			}
			for b := 1; b < len(off); b++ {
				off[b] += off[b-1]
			}
			q.off[f] = off
		}
		if len(q.cat[f]) > 0 {
			q.catFeats = append(q.catFeats, int32(f))
			q.listCategories(p, f)
		}
	}
	return q
}

// catLimit bounds the nodes the lists of one categorical feature hold
// (codes x nodes, 16 bytes each: 1 MiB). A variable for the tests, which
// check the one-by-one path too.
var catLimit = 1 << 16

// listCategories lists categorical feature f's nodes by the codes they
// send right (qsForm.catList), when the lists fit in catLimit.
func (q *qsForm) listCategories(p *predictor, f int) {
	if q.catList == nil {
		q.catList, q.catCodes = make([][][]qsNode, p.nf), make([]uint32, p.nf)
	}
	nodes := q.cat[f]
	codes := 0 // codes beyond every node's bitset go right everywhere
	for i := range nodes {
		codes = max(codes, 32*int(uint32(nodes[i].node.arg)))
	}
	if (codes+2)*len(nodes) > catLimit {
		return
	}
	lists := make([][]qsNode, codes+2)
	for c := range codes + 2 {
		code := uint32(c)
		switch c {
		case codes:
			code = invalidCode
		case codes + 1:
			code = nanBin
		}
		for i := range nodes {
			if n := &nodes[i]; p.catSplit(&n.node, code) == 1 {
				lists[c] = append(lists[c], qsNode{mask: n.mask, tree: n.tree})
			}
		}
	}
	q.catList[f], q.catCodes[f] = lists, uint32(codes)
}

// predictRowsQS predicts rows rows of a block into o (rows x k) in the
// bitvector form: bins are the block's bins (binIndex's layout, width w),
// x its doubles (row-major, nf a row; slow trees only); s holds the rows'
// working bitvectors (one per tree).
//
// A feature whose bin is the same in every row of the block (a rank
// request's user features, broadcast to each of its candidates) marks the
// same leaves for every row: it is marked once, into s.base, and each row
// starts from a copy of it and marks only the features that vary. The
// bitvectors are an or of the same masks in another order, so the leaves,
// and the predictions, are exactly those of marking every feature per row.
func (p *predictor) predictRowsQS(bins []uint32, w, rows int, x []float64, nf int, s *scratch, o []float64) {
	q, trees, k := p.qs, p.trees, p.k
	v := s.v
	vp := unsafe.Pointer(unsafe.SliceData(v))
	numFeats, catFeats, base := q.numFeats, q.catFeats, []uint64(nil)
	if rows > 1 {
		numFeats, catFeats, base = p.markConstant(bins, w, rows, s)
	}
	r0 := 0
	if k == 1 && len(p.slow) == 0 {
		if quads {
			r0 = p.predictQuadsQS(bins, w, rows, numFeats, catFeats, base, s, o)
		}
		r0 += p.predictPairsQS(bins, w, r0, rows, numFeats, catFeats, base, s, o)
	}
	for r := r0; r < rows; r++ {
		if base != nil {
			copy(v, base)
		} else {
			clear(v)
		}
		g := bins[r>>2*4*w:][:4*w]
		for _, f := range numFeats {
			p.markNum(vp, f, g[int(f)*4+r&3])
		}
		for _, f := range catFeats {
			p.markCat(v, f, g[(p.nf+int(f))*4+r&3])
		}
		var xr []float64
		if x != nil {
			xr = x[r*nf : (r+1)*nf]
		}
		or := o[r*k : (r+1)*k]
		if k == 1 && len(p.slow) == 0 {
			or[0] = sumRow(v, q.leafBase, q.leaves, or[0])
			continue
		}
		for ti, m := range v {
			if trees[ti].slow {
				or[ti%k] += p.leafSlow(&trees[ti], xr)
				continue
			}
			or[ti%k] += q.leaves[int(q.leafBase[ti])+bits.TrailingZeros64(^m)]
		}
	}
}

// markConstant marks the features whose bin is the same in all rows of the
// block into s.base, and returns the features that vary, numeric and
// categorical, with s.base; a nil base when every feature varies. A varying
// feature usually shows it at the second row, so the check costs about one
// comparison per feature.
func (p *predictor) markConstant(bins []uint32, w, rows int, s *scratch) (numVary, catVary []int32, base []uint64) {
	q := p.qs
	constant := func(slot int) bool {
		b0 := bins[slot*4]
		for r := 1; r < rows; r++ {
			if bins[r>>2*4*w+slot*4+r&3] != b0 {
				return false
			}
		}
		return true
	}
	s.base = grow(s.base, len(p.trees))
	clear(s.base)
	bp := unsafe.Pointer(unsafe.SliceData(s.base))
	s.numVary, s.catVary = s.numVary[:0], s.catVary[:0]
	for _, f := range q.numFeats {
		if constant(int(f)) {
			p.markNum(bp, f, bins[int(f)*4])
		} else {
			s.numVary = append(s.numVary, f)
		}
	}
	for _, f := range q.catFeats {
		if constant(p.nf + int(f)) {
			p.markCat(s.base, f, bins[(p.nf+int(f))*4])
		} else {
			s.catVary = append(s.catVary, f)
		}
	}
	if len(s.numVary) == len(q.numFeats) && len(s.catVary) == len(q.catFeats) {
		return q.numFeats, q.catFeats, nil
	}
	return s.numVary, s.catVary, s.base
}

// markNum marks, in the bitvectors at v, the leaves numeric feature f's
// false nodes rule out for a value of bin b.
func (p *predictor) markNum(v unsafe.Pointer, f int32, b uint32) {
	orMasks(v, p.numFalse(f, b))
}

// markCat marks, in v, the leaves categorical feature f's false nodes rule
// out for a value of code c.
func (p *predictor) markCat(v []uint64, f int32, c uint32) {
	q := p.qs
	if lists := q.catList[f]; lists != nil {
		orMasks(unsafe.Pointer(unsafe.SliceData(v)), lists[q.catListIndex(f, c)])
		return
	}
	for i := range q.cat[f] {
		n := &q.cat[f][i]
		v[n.tree] |= n.mask & -uint64(p.catSplit(&n.node, c))
	}
}

// catListIndex is the index in catList[f] of code c's list.
func (q *qsForm) catListIndex(f int32, c uint32) uint32 {
	if c == nanBin {
		return q.catCodes[f] + 1
	}
	return min(c, q.catCodes[f]) // invalidCode: catCodes[f]
}

// orMasks marks, for each node of ns, the leaves of its left subtree in its
// tree's bitvector (v points to them): the hot loop of the bitvector form.
// It is a function of its own so that the loop keeps its counter in a
// register (inlined into predictRowsQS, the compiler spilled it to the
// stack, a store and a load per node that tripled the loop's time).
// Unchecked: every node's tree is below the bitvectors' count (compileQS).
//
//go:noinline
func orMasks(v unsafe.Pointer, ns []qsNode) {
	for i := range ns {
		m := (*uint64)(unsafe.Add(v, uintptr(ns[i].tree)*8))
		*m |= ns[i].mask
	}
}

// predictPairsQS predicts the rows of a block from row from (a multiple of
// four) two at a time, as far as their number is even, and returns how
// many it did: the k == 1 case of
// predictRowsQS without slow trees. The pair's bitvectors are interleaved
// (s.v2[2t] row r's for tree t, s.v2[2t+1] row r+1's), and a feature's
// false nodes common to both rows (the shorter of their two prefixes) are
// loaded once and marked in both: each node costs one load of itself for
// two rows where single rows pay one each. Each row's sum is over its
// trees in model order, as single rows do: the same bits.
func (p *predictor) predictPairsQS(bins []uint32, w, from, rows int, numFeats, catFeats []int32, base []uint64, s *scratch, o []float64) int {
	q := p.qs
	nt := len(p.trees)
	s.v2 = grow(s.v2, 2*nt)
	v := s.v2
	vp := unsafe.Pointer(unsafe.SliceData(v))
	for r := from; r+1 < rows; r += 2 {
		if base != nil {
			for t, m := range base {
				v[2*t], v[2*t+1] = m, m
			}
		} else {
			clear(v)
		}
		// Rows r and r+1 are in the same group of four (r is even).
		g := bins[r>>2*4*w:][:4*w]
		j := r & 3
		for _, f := range numFeats {
			p.markNumPair(vp, f, g[int(f)*4+j], g[int(f)*4+j+1])
		}
		for _, f := range catFeats {
			p.markCatPair(v, f, g[(p.nf+int(f))*4+j], g[(p.nf+int(f))*4+j+1])
		}
		o[r], o[r+1] = sumPair(v, q.leafBase, q.leaves, o[r], o[r+1])
	}
	return (rows - from) &^ 1
}

// sumRow adds to s the leaf value a row reaches in each tree (v its
// bitvectors), in model order: sumPair for one row.
//
//go:noinline
func sumRow(v []uint64, leafBase []int32, leaves []float64, s float64) float64 {
	v = v[:len(leafBase)]
	lp := unsafe.Pointer(unsafe.SliceData(leaves))
	for t, lb := range leafBase {
		s += *(*float64)(unsafe.Add(lp, (int(lb)+bits.TrailingZeros64(^v[t]))*8))
	}
	return s
}

// sumPair adds to s0 and s1 the leaf values a pair of rows reach in each
// tree (v their interleaved bitvectors, leafBase and leaves the qsForm's),
// in model order. A function of its own for the registers: inlined into
// predictPairsQS, the loop reloaded its slices from the stack on every tree.
// Unchecked: a row's bitvector has a zero bit at most at the tree's last
// leaf (compileQS numbers them), so every index is inside leaves.
//
//go:noinline
func sumPair(v []uint64, leafBase []int32, leaves []float64, s0, s1 float64) (float64, float64) {
	v = v[:2*len(leafBase)]
	lp := unsafe.Pointer(unsafe.SliceData(leaves))
	for t, lb := range leafBase {
		m0, m1 := v[2*t], v[2*t+1]
		s0 += *(*float64)(unsafe.Add(lp, (int(lb)+bits.TrailingZeros64(^m0))*8))
		s1 += *(*float64)(unsafe.Add(lp, (int(lb)+bits.TrailingZeros64(^m1))*8))
	}
	return s0, s1
}

// markNumPair is markNum for a pair of rows (interleaved bitvectors at v)
// whose bins of numeric feature f are b0 and b1.
func (p *predictor) markNumPair(v unsafe.Pointer, f int32, b0, b1 uint32) {
	q := p.qs
	if b0 == nanBin || b1 == nanBin {
		orMasksOne(v, p.numFalse(f, b0))
		orMasksOne(unsafe.Add(v, 8), p.numFalse(f, b1))
		return
	}
	ns := q.num[f]
	n0, n1 := q.off[f][b0], q.off[f][b1]
	both := min(n0, n1)
	orMasksPair(v, ns[:both])
	if n0 > both {
		orMasksOne(v, ns[both:n0])
	} else if n1 > both {
		orMasksOne(unsafe.Add(v, 8), ns[both:n1])
	}
}

// numFalse are numeric feature f's false nodes for a value of bin b.
func (p *predictor) numFalse(f int32, b uint32) []qsNode {
	if b == nanBin {
		return p.qs.nan[f]
	}
	return p.qs.num[f][:p.qs.off[f][b]]
}

// markCatPair is markCat for a pair of rows whose codes of categorical
// feature f are c0 and c1.
func (p *predictor) markCatPair(v []uint64, f int32, c0, c1 uint32) {
	q := p.qs
	if lists := q.catList[f]; lists != nil {
		vp := unsafe.Pointer(unsafe.SliceData(v))
		k0, k1 := q.catListIndex(f, c0), q.catListIndex(f, c1)
		if k0 == k1 {
			orMasksPair(vp, lists[k0])
			return
		}
		orMasksOne(vp, lists[k0])
		orMasksOne(unsafe.Add(vp, 8), lists[k1])
		return
	}
	for i := range q.cat[f] {
		n := &q.cat[f][i]
		v[2*n.tree] |= n.mask & -uint64(p.catSplit(&n.node, c0))
		v[2*n.tree+1] |= n.mask & -uint64(p.catSplit(&n.node, c1))
	}
}

// orMasksPair marks the nodes ns in both rows of a pair (v points to their
// interleaved bitvectors): one load of a node for two rows.
//
//go:noinline
func orMasksPair(v unsafe.Pointer, ns []qsNode) {
	for i := range ns {
		m := (*[2]uint64)(unsafe.Add(v, uintptr(ns[i].tree)*16))
		mask := ns[i].mask
		m[0] |= mask
		m[1] |= mask
	}
}

// orMasksOne marks the nodes ns in one row of a pair (v points to that
// row's first bitvector; a row's bitvectors are 16 bytes apart).
//
//go:noinline
func orMasksOne(v unsafe.Pointer, ns []qsNode) {
	for i := range ns {
		m := (*uint64)(unsafe.Add(v, uintptr(ns[i].tree)*16))
		*m |= ns[i].mask
	}
}
