package gbdt

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// Decision semantics. A tree model must send a row where the library that
// trained it would, including for values that lie between a split threshold
// and its float32 rounding, so the comparison sees the input with the
// precision that library uses:
//
//   - LightGBM (its text files, and Atrium's trainer, whose thresholds are
//     LightGBM's bin bounds): the input is a double; |x| <= kZeroThreshold
//     is read as 0 (LightGBM drops such values when it builds a row); a
//     numeric node sends x left when x <= threshold (a double), NaN to the
//     default side (missing type NaN) or as 0 (None); missing type Zero
//     sends 0 and NaN to the default side. A categorical node sends NaN and
//     values <= -1 or >= 2^31 right, others by their truncated code.
//   - XGBoost (Model.Float32Inputs): the input is rounded to float32 first,
//     then compared with the float32 threshold; a negative rounded value at
//     a categorical node goes right (XGBoost's "not in the set").
//
// The compiled predictor turns both into one rule on the unrounded double,
// "left when x <= thr", by moving each numeric threshold once, exactly:
// zeroDropThreshold folds LightGBM's reading of tiny values as 0 into it,
// float32Boundary the rounding to float32 (the largest double that rounds to
// at most the threshold). So the hot path stays one load and one comparison
// per node, and float32 inputs (a float64 conversion is exact) take the
// same path.

// decide returns the child of node i for input x under the model's
// semantics (f32: Model.Float32Inputs): the rule the compiled predictor
// must reproduce.
func (t *Tree) decide(i int, x float64, f32 bool) int {
	if f32 {
		x = float64(float32(x))
		if x < 0 && t.IsCategorical(i) {
			x = -1 // XGBoost: an invalid category, not a missing one
		}
	} else {
		x = zeroDrop(x)
	}
	return t.next(i, x)
}

// zeroDrop reads x as LightGBM does before a numeric decision: 0 when
// within kZeroThreshold of it.
func zeroDrop(x float64) float64 {
	if x >= -kZeroThreshold && x <= kZeroThreshold {
		return 0
	}
	return x
}

// leafFor returns the leaf a row reaches under the model's semantics;
// value(f) is the row's feature f.
func (t *Tree) leafFor(value func(f int) float64, f32 bool) int {
	if t.NumLeaves <= 1 {
		return 0
	}
	n := 0
	for n >= 0 {
		n = t.decide(n, value(t.SplitFeature[n]), f32)
	}
	return ^n
}

// leafOfRow is leafFor(row r of cols, false) without its closure: the
// walk of every validation row after every boosting iteration.
func (t *Tree) leafOfRow(cols []ml.Column, r int) int {
	if t.NumLeaves <= 1 {
		return 0
	}
	n := 0
	for n >= 0 {
		n = t.next(n, zeroDrop(float64(cols[t.SplitFeature[n]].Values[r])))
	}
	return ^n
}

// zeroDropThreshold returns the threshold that gives, on the raw double x,
// LightGBM's decision x' <= thr where x' is x read as 0 when |x| <=
// kZeroThreshold. Only thresholds inside (-kZeroThreshold, kZeroThreshold)
// move: the zeros then all go one way.
func zeroDropThreshold(thr float64) float64 {
	switch {
	case thr >= kZeroThreshold || thr < -kZeroThreshold:
		return thr
	case thr >= 0: // x' = 0 <= thr: everything up to kZeroThreshold goes left
		return kZeroThreshold
	default: // x' = 0 > thr: only values below -kZeroThreshold go left
		return math.Nextafter(-kZeroThreshold, math.Inf(-1))
	}
}

// float32Boundary returns the largest double x with float32(x) <= t (NaN
// aside), so that float32(x) <= t exactly when x <= float32Boundary(t).
// Rounding to nearest sends x to t or below while x is under the midpoint m
// of t and the next float32 up; m itself rounds to whichever of the two has
// an even significand. m is exact in float64 (two adjacent float32 values
// need 25 bits). Beyond MaxFloat32 the next value is +Inf, which rounding
// reaches from 2^128 - 2^103 on (MaxFloat32 + half an ulp, a tie going to
// the even 2^128): so ±Inf count as ±2^128 here.
func float32Boundary(t float32) float64 {
	if math.IsInf(float64(t), 1) {
		return math.Inf(1)
	}
	up := math.Nextafter32(t, float32(math.Inf(1)))
	lo, hi := float64(t), float64(up)
	if math.IsInf(lo, -1) {
		lo = -0x1p128
	}
	if math.IsInf(hi, 1) {
		hi = 0x1p128
	}
	m := lo/2 + hi/2 // exact: halving a float32 value loses no bits in float64
	if math.Float32bits(t)&1 == 0 {
		return m
	}
	return math.Nextafter(m, math.Inf(-1))
}

// float32Below returns the largest float32 <= v.
func float32Below(v float64) float32 {
	f := float32(v)
	if float64(f) > v {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

// numericThreshold returns the threshold the compiled predictor compares raw
// doubles with for node threshold thr.
func numericThreshold(thr float64, f32 bool) float64 {
	if f32 {
		return float32Boundary(float32Below(thr))
	}
	return zeroDropThreshold(thr)
}

// predictor is the model compiled for fast prediction. Walking a tree
// compares small integers rather than doubles: each input value is first
// mapped to its bin, the number of the model's thresholds on its feature
// below it (a binary search per value, not per node), so that "x <= thr"
// at a node whose threshold is the feature's j-th becomes "bin <= j",
// exactly. Categorical values become their category code the same way, so
// a tree walk never looks at a double.
type predictor struct {
	k   int
	f32 bool // Model.Float32Inputs
	nf  int  // the model's features
	// nodes holds each tree's nodes in preorder, leaves included: a node's
	// left child is the next node. A leaf's node sends every row to itself,
	// so that walking depth levels from the root ends on the leaf whatever
	// the path; its value is in leafVal, at the same index.
	nodes   []flatNode
	leafVal []float64
	// cats holds the bitsets of every categorical node.
	cats []uint32
	// thr[f] are the distinct (moved) thresholds of the numeric nodes on
	// feature f, ascending; catUsed[f] tells whether a categorical node
	// splits on f. A row's bins are 2*nf uint32: the numeric bin of
	// feature f at f, its category code at nf+f.
	thr     [][]float64
	search  []*boundSearch // over thr[f]; nil when f has none
	catUsed []bool
	trees   []flatTree
	// byDepth lists the trees the compact nodes express, shallowest first
	// (ties in model order): a single row walks four consecutive ones at a
	// time, which all take as many levels as the deepest of the four.
	byDepth []int32
	// slow lists the trees the compact nodes cannot express (zero as
	// missing, a NaN threshold, or so many features that 2*nf slots
	// exceed metaFeatMask): they take the general path, on the row's
	// doubles.
	slow []int32
	// qs is the model in the bitvector form (predict_qs.go), which every
	// prediction takes when it exists.
	qs *qsForm
}

// flatNode is one node (16 bytes). meta packs what the walk needs from one
// load: bits 0-31 the right child's index minus the left child's (int32),
// bits 32-55 the slot of the row's bins to read (see predictor.thr), and
// the flags below. At a numeric node whose threshold is the j-th of its
// feature, arg is j, or j+1 with metaAddOne, and the row goes right when
// uint32(bin + addOne) > arg: a missing value's bin, nanBin, wraps to 0
// with metaAddOne (left) and stays the largest without (right). A leaf has
// arg -1 and a right child of itself: every row stays. A categorical node
// (metaCategorical) has its bitset at cats[arg>>32 :][:uint32(arg)].
type flatNode struct {
	meta uint64
	arg  int64
}

const (
	metaFeatShift   = 32
	metaFeatMask    = 1<<24 - 1
	metaNaNRight    = 1 << 56 // categorical: missing values go right
	metaCategorical = 1 << 57
	metaLeaf        = 1 << 58
	metaAddOne      = 1 << 59
)

// Bins of values no threshold compares: a missing value, and a category
// code no bitset holds (a value of -1 or less, or 2^31 or more; any
// negative value under float32 semantics).
const (
	nanBin      = math.MaxUint32
	invalidCode = math.MaxUint32 - 1
)

type flatTree struct {
	root  int32 // the root's index in predictor.nodes
	depth int
	slow  bool
	tree  *Tree
}

func compile(m *Model) *predictor {
	nf := len(m.Features)
	p := &predictor{k: m.NumOutputs(), f32: m.Float32Inputs, nf: nf, trees: make([]flatTree, len(m.Trees)),
		thr: make([][]float64, nf), catUsed: make([]bool, nf)}
	total := 0
	for ti := range m.Trees {
		t := &m.Trees[ti]
		total += 2*t.NumLeaves - 1
		for i := 0; i < t.NumLeaves-1; i++ {
			if f := t.SplitFeature[i]; t.IsCategorical(i) {
				p.catUsed[f] = true
			} else if th := numericThreshold(t.Threshold[i], p.f32); th == th {
				p.thr[f] = append(p.thr[f], th)
			}
		}
	}
	p.search = make([]*boundSearch, nf)
	for f, ts := range p.thr {
		slices.Sort(ts)
		p.thr[f] = slices.Compact(ts)
		if len(ts) > 0 {
			p.search[f] = newBoundSearch(p.thr[f])
		}
	}
	p.nodes = make([]flatNode, 0, total)
	p.leafVal = make([]float64, total)
	for ti := range m.Trees {
		t := &m.Trees[ti]
		catBase := uint32(len(p.cats))
		p.cats = append(p.cats, t.CatThreshold...)
		ft := flatTree{root: int32(len(p.nodes)), tree: t, depth: t.maxDepth()}
		// emit appends the subtree of child code c (>= 0 a node, < 0 the
		// leaf ^c) in preorder. Its recursion is as deep as the tree,
		// which Validate proved finite.
		var emit func(c int)
		emit = func(c int) {
			at := len(p.nodes)
			if c < 0 || t.NumLeaves <= 1 {
				leaf := 0
				if c < 0 {
					leaf = ^c
				}
				p.nodes = append(p.nodes, flatNode{meta: uint64(math.MaxUint32) | metaLeaf, arg: -1})
				p.leafVal[at] = t.LeafValue[leaf]
				return
			}
			p.nodes = append(p.nodes, flatNode{})
			emit(t.LeftChild[c])
			right := len(p.nodes)
			emit(t.RightChild[c])
			f := t.SplitFeature[c]
			meta := uint64(uint32(int32(right - (at + 1))))
			nanRight := !t.DefaultLeft(c)
			var arg int64
			switch {
			case 2*nf > metaFeatMask:
				ft.slow = true
			case t.IsCategorical(c):
				meta |= uint64(nf+f)<<metaFeatShift | metaCategorical
				ci := int(t.Threshold[c])
				lo, hi := t.CatBoundaries[ci], t.CatBoundaries[ci+1]
				arg = int64(catBase+uint32(lo))<<32 | int64(hi-lo)
			case t.MissingType(c) == missingZero:
				ft.slow = true
			default:
				th := numericThreshold(t.Threshold[c], p.f32)
				j, found := slices.BinarySearch(p.thr[f], th)
				if !found { // a NaN threshold
					ft.slow = true
					break
				}
				meta |= uint64(f) << metaFeatShift
				if t.MissingType(c) != missingNaN {
					// Missing type None: NaN is predicted as 0 (float32(0) is 0).
					nanRight = !(0 <= t.Threshold[c])
				}
				arg = int64(j)
				if !nanRight {
					meta |= metaAddOne
					arg++
				}
			}
			if nanRight {
				meta |= metaNaNRight
			}
			p.nodes[at] = flatNode{meta: meta, arg: arg}
		}
		emit(0)
		p.trees[ti] = ft
		if ft.slow {
			p.slow = append(p.slow, int32(ti))
		} else {
			p.byDepth = append(p.byDepth, int32(ti))
		}
	}
	slices.SortStableFunc(p.byDepth, func(a, b int32) int { return p.trees[a].depth - p.trees[b].depth })
	p.qs = compileQS(p)
	return p
}

// numBin is value v's bin among the thresholds s searches (ascending): how
// many are below it, so that v <= ts[j] exactly when numBin(s, v) <= j.
func numBin(s *boundSearch, v float64) uint32 {
	if v != v {
		return nanBin
	}
	return uint32(s.find(v))
}

// binColumn writes numBin of each of vals (a block's rows) at slot f of
// its row's bins, four searches at a time: find4 has no branch on the
// data, so the processor overlaps the four (a search of a few hundred
// thresholds is a chain of dependent loads). A group of four equal to the
// value before takes its bin without a search: a column repeating one
// value (a rank request's user features) is searched once.
func binColumn[T float32 | float64](s *boundSearch, vals []T, bins []uint32, w, f int) {
	prev, b := math.NaN(), uint32(0) // NaN equals nothing: always searched
	n := len(vals) &^ 3
	var v [4]float64
	for r := 0; r < n; r += 4 {
		v[0], v[1], v[2], v[3] = float64(vals[r]), float64(vals[r+1]), float64(vals[r+2]), float64(vals[r+3])
		// The group's four bins are adjacent (binIndex): r is a multiple of 4.
		at := binIndex(w, r, f)
		out := bins[at : at+4 : at+4]
		if v[0] == prev && v[1] == prev && v[2] == prev && v[3] == prev {
			out[0], out[1], out[2], out[3] = b, b, b, b
			continue
		}
		got := s.find4(&v)
		for k, i := range got {
			out[k] = uint32(i)
			if v[k] != v[k] {
				out[k] = nanBin
			}
		}
		prev, b = v[3], out[3]
	}
	for r := n; r < len(vals); r++ {
		if x := float64(vals[r]); x != prev {
			prev, b = x, numBin(s, x)
		}
		bins[binIndex(w, r, f)] = b
	}
}

// catCode is value v's category code as Tree.decide reads it at a
// categorical node: nanBin for NaN, invalidCode for a value that goes
// right whatever the bitset.
func catCode(v float64, f32 bool) uint32 {
	if v != v {
		return nanBin
	}
	if f32 {
		v = float64(float32(v))
		if v < 0 {
			return invalidCode // XGBoost: an invalid category, not a missing one
		}
	}
	// LightGBM truncates toward zero: (-1, 0) is category 0.
	if !(v > -1) || v >= 1<<31 {
		return invalidCode
	}
	return uint32(int32(v))
}

// binRows fills bins (see binIndex; rows of width 2*nf) with the bins of
// ds's rows lo.. of the features some node reads.
func (p *predictor) binRows(ds *ml.Dataset, lo, rows int, bins []uint32) {
	w := max(2*p.nf, 1)
	for f := range ds.Columns {
		c := &ds.Columns[f]
		if s := p.search[f]; s != nil {
			if exact := c.Float64; exact != nil {
				binColumn(s, exact[lo:lo+rows], bins, w, f)
			} else {
				binColumn(s, c.Values[lo:lo+rows], bins, w, f)
			}
		}
		if p.catUsed[f] {
			if exact := c.Float64; exact != nil {
				for r, v := range exact[lo : lo+rows] {
					bins[binIndex(w, r, p.nf+f)] = catCode(v, p.f32)
				}
			} else {
				for r, v := range c.Values[lo : lo+rows] {
					bins[binIndex(w, r, p.nf+f)] = catCode(float64(v), p.f32)
				}
			}
		}
	}
}

// binIndex is where the bin of slot s of row r (of a block) is in the
// block's bins, rows of w slots: rows in groups of four, each group's
// slots interleaved (slot s of its four rows, then slot s+1...), so that
// rows4 reads all four rows from one base at constant distances.
func binIndex(w, r, s int) int { return (r>>2*w+s)*4 + r&3 }

// step returns the node after node i (n = &nodes[i]): the left child (i+1)
// when dir is 0, the right one when 1, with no branch on the data.
func step(i int32, n *flatNode, dir int) int32 {
	return i + 1 + int32(uint32(n.meta))&-int32(dir)
}

// nodeDir is 0 (left) or 1 (right) for a row whose bin at the node's slot
// is b, at a numeric node or a leaf (see flatNode). No branches.
func nodeDir(n *flatNode, b uint32) int {
	return b2int(int64(b+uint32(n.meta>>59&1)) > n.arg)
}

// rows4 walks a group of four rows (b points to their bins, see binIndex)
// down from node root,
// at most depth levels, and returns the nodes they reach: levels of one
// load of each node and of one bin, one comparison and one branch-free
// child choice each, the four walks interleaved so that the processor
// overlaps them, and left as soon as all four stand on leaves.
//
// The walks are the hot loop of prediction and index without bounds
// checks (which, with the registers their lengths take, cost a good part
// of the time), on invariants compile and Model.PredictRawInto establish:
// every child index lies in p.nodes (compile computes them from a
// validated tree), and every node's slot is below 2*nf, the width of each
// row's bins (Validate, checkData). nodeAt walks the nodes, binAt reads a
// row's bin.
func (p *predictor) rows4(root int32, depth int, b unsafe.Pointer) (int32, int32, int32, int32) {
	base := unsafe.Pointer(unsafe.SliceData(p.nodes))
	i0, i1, i2, i3 := root, root, root, root
	for d := 0; d < depth; d++ {
		n0, n1, n2, n3 := nodeAt(base, i0), nodeAt(base, i1), nodeAt(base, i2), nodeAt(base, i3)
		if n0.meta&n1.meta&n2.meta&n3.meta&metaLeaf != 0 {
			break // all four at their leaves
		}
		v0, v1, v2, v3 := binAt(b, n0), binAt(unsafe.Add(b, 4), n1), binAt(unsafe.Add(b, 8), n2), binAt(unsafe.Add(b, 12), n3)
		d0, d1, d2, d3 := nodeDir(n0, v0), nodeDir(n1, v1), nodeDir(n2, v2), nodeDir(n3, v3)
		if (n0.meta|n1.meta|n2.meta|n3.meta)&metaCategorical != 0 {
			d0, d1, d2, d3 = p.catDir(n0, v0, d0), p.catDir(n1, v1, d1), p.catDir(n2, v2, d2), p.catDir(n3, v3, d3)
		}
		i0, i1, i2, i3 = step(i0, n0, d0), step(i1, n1, d1), step(i2, n2, d2), step(i3, n3, d3)
	}
	return i0, i1, i2, i3
}

// trees4 is rows4 for one row (b its bins) in four trees (roots r0..r3):
// a single row's walks are as independent as four rows'.
func (p *predictor) trees4(r0, r1, r2, r3 int32, depth int, b unsafe.Pointer) (int32, int32, int32, int32) {
	base := unsafe.Pointer(unsafe.SliceData(p.nodes))
	i0, i1, i2, i3 := r0, r1, r2, r3
	for d := 0; d < depth; d++ {
		n0, n1, n2, n3 := nodeAt(base, i0), nodeAt(base, i1), nodeAt(base, i2), nodeAt(base, i3)
		if n0.meta&n1.meta&n2.meta&n3.meta&metaLeaf != 0 {
			break // all four at their leaves
		}
		v0, v1, v2, v3 := binAt(b, n0), binAt(b, n1), binAt(b, n2), binAt(b, n3)
		d0, d1, d2, d3 := nodeDir(n0, v0), nodeDir(n1, v1), nodeDir(n2, v2), nodeDir(n3, v3)
		if (n0.meta|n1.meta|n2.meta|n3.meta)&metaCategorical != 0 {
			d0, d1, d2, d3 = p.catDir(n0, v0, d0), p.catDir(n1, v1, d1), p.catDir(n2, v2, d2), p.catDir(n3, v3, d3)
		}
		i0, i1, i2, i3 = step(i0, n0, d0), step(i1, n1, d1), step(i2, n2, d2), step(i3, n3, d3)
	}
	return i0, i1, i2, i3
}

// nodeAt is &nodes[i] for nodes starting at base, unchecked (see rows4).
func nodeAt(base unsafe.Pointer, i int32) *flatNode {
	return (*flatNode)(unsafe.Add(base, uintptr(i)*unsafe.Sizeof(flatNode{})))
}

// binAt is the bin node n reads in the row whose first bin b points to
// (rows interleaved by four: see binIndex), unchecked (see rows4).
func binAt(b unsafe.Pointer, n *flatNode) uint32 {
	return *(*uint32)(unsafe.Add(b, uintptr(n.meta>>metaFeatShift&metaFeatMask)*16))
}

// walk1 is rows4 for one row in one tree: row r&3 of the group whose bins
// are group.
func (p *predictor) walk1(root int32, depth int, group []uint32, r int) int32 {
	nodes := p.nodes
	i := root
	for d := 0; d < depth; d++ {
		n := &nodes[i]
		v := group[int(n.meta>>metaFeatShift&metaFeatMask)*4+r&3]
		i = step(i, n, p.catDir(n, v, nodeDir(n, v)))
	}
	return i
}

// catDir is 0 (left) or 1 (right) for code c at a categorical node; at
// any other node it returns numDir, the direction nodeDir found. Small
// enough to inline into the walks; categorical nodes take catSplit.
func (p *predictor) catDir(n *flatNode, c uint32, numDir int) int {
	if n.meta&metaCategorical == 0 {
		return numDir
	}
	return p.catSplit(n, c)
}

// catSplit is Tree.decide for a categorical node and code c (catCode's):
// 0 (left) or 1 (right).
func (p *predictor) catSplit(n *flatNode, c uint32) int {
	if c == nanBin {
		return b2int(n.meta&metaNaNRight != 0)
	}
	w := c >> 5
	if w >= uint32(n.arg) { // invalidCode too: no bitset has 2^27 words
		return 1
	}
	return 1 - int(p.cats[uint32(n.arg>>32)+w]>>(c&31)&1)
}

// leafSlow returns tree t's leaf value for row x (its doubles) when the
// tree has nodes the compact form cannot express, with the tree's general
// decision rule.
func (p *predictor) leafSlow(t *flatTree, x []float64) float64 {
	return t.tree.LeafValue[t.tree.leafFor(func(f int) float64 { return x[f] }, p.f32)]
}

// predictBlockRows is how many rows predict bins at a time.
const predictBlockRows = 128

// parallelMinRows is the fewest rows Predict spreads over goroutines. A
// smaller batch (a serving request) runs on the calling goroutine: its
// goroutine fan-out would cost more than it saves, and a server spreads its
// concurrent requests over the cores anyway.
const parallelMinRows = 1024

// scratch is the working memory of predicting one block of rows, pooled
// so that a serving request allocates nothing.
type scratch struct {
	bins []uint32  // the block's rows' bins (predictor.thr)
	x    []float64 // the block's rows, row-major (slow trees only)
	vals []float64 // one row's value in each tree (single rows)
	v    []uint64  // one row's bitvector of each tree (predictor.qs)
	v2   []uint64  // a pair of rows' bitvectors, interleaved (predictPairsQS)
	v4   []uint64  // four rows' bitvectors, interleaved (predictQuadsQS)
	// base are the bitvectors the block's constant features mark, and
	// numVary, catVary the features left to each row (predictor.qs).
	base             []uint64
	numVary, catVary []int32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// grow returns s[:n], reallocated when too small.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// predictInto writes raw scores, row-major, into out (rows x k): blocks of
// rows in parallel for large batches, on the calling goroutine for small
// ones. Every output is the sum of its trees' leaf values in model order,
// from 0, whichever path computes it: the paths agree bit for bit.
func (p *predictor) predictInto(ds *ml.Dataset, out []float64) {
	n := ds.NumRows()
	clear(out)
	nb := (n + predictBlockRows - 1) / predictBlockRows
	if n < parallelMinRows {
		s := scratchPool.Get().(*scratch)
		for b := range nb {
			p.predictBlock(ds, b, s, out)
		}
		scratchPool.Put(s)
		return
	}
	parallelFor(runtime.GOMAXPROCS(0), nb, func(b int) {
		s := scratchPool.Get().(*scratch)
		p.predictBlock(ds, b, s, out)
		scratchPool.Put(s)
	})
}

// predictBlock predicts block b of ds's rows into out.
func (p *predictor) predictBlock(ds *ml.Dataset, b int, s *scratch, out []float64) {
	n := ds.NumRows()
	k := p.k
	lo, hi := b*predictBlockRows, min(n, (b+1)*predictBlockRows)
	rows := hi - lo
	w := max(2*p.nf, 1)                   // a leaf reads slot 0 (and ignores it)
	s.bins = grow(s.bins, (rows+3)/4*4*w) // whole groups of four rows (binIndex)
	bins := s.bins
	p.binRows(ds, lo, rows, bins)
	var x []float64
	nf := max(p.nf, 1)
	if len(p.slow) > 0 {
		s.x = grow(s.x, rows*nf)
		x = s.x
		for f := range ds.Columns {
			if exact := ds.Columns[f].Float64; exact != nil {
				for r, v := range exact[lo:hi] {
					x[r*nf+f] = v
				}
				continue
			}
			for r, v := range ds.Columns[f].Values[lo:hi] {
				x[r*nf+f] = float64(v)
			}
		}
	}
	o := out[lo*k : hi*k]
	if p.qs != nil {
		s.v = grow(s.v, len(p.trees))
		p.predictRowsQS(bins, w, rows, x, nf, s, o)
		return
	}
	if rows < 4 {
		s.vals = grow(s.vals, len(p.trees))
		for r := range rows {
			var xr []float64
			if x != nil {
				xr = x[r*nf : (r+1)*nf]
			}
			p.predictRow(bins[:4*w], r, xr, s.vals, o[r*k:(r+1)*k])
		}
		return
	}
	for ti := range p.trees {
		t := &p.trees[ti]
		c := ti % k
		if t.slow {
			for r := 0; r < rows; r++ {
				o[r*k+c] += p.leafSlow(t, x[r*nf:(r+1)*nf])
			}
			continue
		}
		r := 0
		for ; r+4 <= rows; r += 4 {
			four := bins[r*w : (r+4)*w] // a whole group: rows4 reads it unchecked
			e0, e1, e2, e3 := p.rows4(t.root, t.depth, unsafe.Pointer(&four[0]))
			o[r*k+c] += p.leafVal[e0]
			o[(r+1)*k+c] += p.leafVal[e1]
			o[(r+2)*k+c] += p.leafVal[e2]
			o[(r+3)*k+c] += p.leafVal[e3]
		}
		for ; r < rows; r++ {
			o[r*k+c] += p.leafVal[p.walk1(t.root, t.depth, bins[r>>2*4*w:][:4*w], r)]
		}
	}
}

// predictRow adds one row's tree values (bins its bins, x its doubles
// when there are slow trees) to o (k values): the trees walked four at a
// time in depth order, each tree's value kept in vals, then summed in
// model order.
func (p *predictor) predictRow(group []uint32, r int, x, vals, o []float64) {
	trees, ord := p.trees, p.byDepth
	i := 0
	for ; i+4 <= len(ord); i += 4 {
		t0, t1, t2, t3 := &trees[ord[i]], &trees[ord[i+1]], &trees[ord[i+2]], &trees[ord[i+3]]
		e0, e1, e2, e3 := p.trees4(t0.root, t1.root, t2.root, t3.root, t3.depth, unsafe.Pointer(&group[r&3])) // t3 is the deepest; group is whole
		vals[ord[i]], vals[ord[i+1]], vals[ord[i+2]], vals[ord[i+3]] = p.leafVal[e0], p.leafVal[e1], p.leafVal[e2], p.leafVal[e3]
	}
	for ; i < len(ord); i++ {
		t := &trees[ord[i]]
		vals[ord[i]] = p.leafVal[p.walk1(t.root, t.depth, group, r)]
	}
	for _, ti := range p.slow {
		vals[ti] = p.leafSlow(&trees[ti], x)
	}
	if k := p.k; k > 1 {
		for ti, v := range vals[:len(trees)] {
			o[ti%k] += v
		}
		return
	}
	sum := o[0]
	for _, v := range vals[:len(trees)] {
		sum += v
	}
	o[0] = sum
}

// WithFloat64Inputs returns the model with LightGBM's semantics
// (Float32Inputs unset) that predicts exactly what m predicts, for writing
// m where only those semantics exist (LightGBM text): m itself when it has
// them; for a model read from XGBoost, a copy whose numeric thresholds are
// moved by float32Boundary. It is an error (ErrModel) when no LightGBM
// threshold can be exact: a categorical node (XGBoost rounds 2.9999999999 to
// category 3, LightGBM truncates it to 2), a zero-as-missing node, or a
// threshold that moves inside (-kZeroThreshold, kZeroThreshold), where
// LightGBM reads every value as 0.
func (m *Model) WithFloat64Inputs() (*Model, error) {
	if !m.Float32Inputs {
		return m, nil
	}
	out := &Model{Version: m.Version, Objective: m.Objective, NumClass: m.NumClass, Sigmoid: m.Sigmoid,
		Features: m.Features, BestIteration: m.BestIteration, Params: m.Params, Trees: make([]Tree, len(m.Trees))}
	for ti := range m.Trees {
		t := m.Trees[ti]
		t.Threshold = slices.Clone(t.Threshold)
		for i := range t.Threshold {
			switch {
			case t.IsCategorical(i):
				return nil, fmt.Errorf("%w: tree %d node %d: a categorical split of a float32-input (XGBoost) model has no exact double form", ErrModel, ti, i)
			case t.MissingType(i) == missingZero:
				return nil, fmt.Errorf("%w: tree %d node %d: a zero-as-missing split of a float32-input model has no exact double form", ErrModel, ti, i)
			}
			b := float32Boundary(float32Below(t.Threshold[i]))
			if zeroDropThreshold(b) != b {
				return nil, fmt.Errorf("%w: tree %d node %d: threshold %v is within LightGBM's zero band (|x| <= %v)", ErrModel, ti, i, b, kZeroThreshold)
			}
			t.Threshold[i] = b
		}
		out.Trees[ti] = t
	}
	return out, nil
}
