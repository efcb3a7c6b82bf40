package gbdt

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

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
	} else if x >= -kZeroThreshold && x <= kZeroThreshold {
		x = 0
	}
	return t.next(i, x)
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

// predictor is the model compiled for fast prediction: every tree's nodes
// flattened into one array of small structs, so that walks of several trees
// at once share one base pointer.
type predictor struct {
	k   int
	f32 bool // Model.Float32Inputs
	// nodes holds each tree's internal nodes, then one pseudo-node per leaf
	// that sends every row to itself and holds the leaf's value in thr, so
	// that walking depth levels from the root ends on the leaf's
	// pseudo-node, whatever the path, and the value is one load away.
	// Children are indices into nodes.
	nodes []flatNode
	// cats holds the bitsets of every categorical node (see catBits).
	cats  []uint32
	trees []flatTree
	// byDepth lists the trees the compact nodes express, shallowest first
	// (ties in model order): a single row walks four consecutive ones at a
	// time, which all take as many levels as the deepest of the four.
	byDepth []int32
	// slow lists the trees the compact nodes cannot express (zero as
	// missing): they take the general path.
	slow []int32
}

// Node kinds of flatNode.
const (
	kindNumeric  = iota // value <= thr goes left; NaN goes to child[nanDir]
	kindZero            // zero and NaN are missing and go to child[nanDir]
	kindCategory        // category in the node's bitset goes left; NaN to child[nanDir]
)

// flatNode is one internal node (24 bytes). At a numeric node, thr is the
// node's threshold moved by numericThreshold, so that "x <= thr" on the
// unrounded double is the model's own decision. A categorical node has no
// threshold: thr's bits hold where its bitset of left-going categories is
// in predictor.cats (see catBits), which keeps the node in one cache line
// (nodeDir's answer on those bits is ignored). A leaf's pseudo-node holds
// the leaf value in thr.
type flatNode struct {
	thr    float64
	feat   int32
	child  [2]int32 // [left, right]: indices into predictor.nodes
	kind   uint8
	nanDir uint8 // 0: missing values go left, 1: right
}

// catBits packs the bitset cats[lo:lo+n] of a categorical node into its thr.
func catBits(lo, n uint32) float64 { return math.Float64frombits(uint64(lo)<<32 | uint64(n)) }

type flatTree struct {
	root  int32 // the root's index in predictor.nodes (a one-leaf tree: its leaf's pseudo-node)
	depth int
	slow  bool
	tree  *Tree
}

func compile(m *Model) *predictor {
	p := &predictor{k: m.NumOutputs(), f32: m.Float32Inputs, trees: make([]flatTree, len(m.Trees))}
	total := 0
	for ti := range m.Trees {
		total += 2*m.Trees[ti].NumLeaves - 1
	}
	p.nodes = make([]flatNode, 0, total)
	for ti := range m.Trees {
		t := &m.Trees[ti]
		ni := t.NumLeaves - 1
		base := int32(len(p.nodes))
		catBase := uint32(len(p.cats))
		p.cats = append(p.cats, t.CatThreshold...)
		ft := flatTree{root: base, tree: t, depth: t.maxDepth()}
		node := func(c int) int32 {
			if c < 0 {
				return base + int32(ni+^c)
			}
			return base + int32(c)
		}
		for i := 0; i < ni; i++ {
			n := flatNode{feat: int32(t.SplitFeature[i]), child: [2]int32{node(t.LeftChild[i]), node(t.RightChild[i])}}
			if !t.DefaultLeft(i) {
				n.nanDir = 1
			}
			switch {
			case t.IsCategorical(i):
				n.kind = kindCategory
				c := int(t.Threshold[i])
				lo, hi := t.CatBoundaries[c], t.CatBoundaries[c+1]
				n.thr = catBits(catBase+uint32(lo), uint32(hi-lo))
			case t.MissingType(i) == missingZero:
				n.kind = kindZero
				ft.slow = true
			case t.MissingType(i) == missingNaN:
				n.kind = kindNumeric
				n.thr = numericThreshold(t.Threshold[i], p.f32)
			default:
				// Missing type None: NaN is predicted as 0 (float32(0) is 0).
				n.kind = kindNumeric
				n.thr = numericThreshold(t.Threshold[i], p.f32)
				n.nanDir = uint8(b2int(!(0 <= t.Threshold[i])))
			}
			p.nodes = append(p.nodes, n)
		}
		for l := 0; l < t.NumLeaves; l++ {
			self := base + int32(ni+l)
			p.nodes = append(p.nodes, flatNode{thr: t.LeafValue[l], child: [2]int32{self, self}})
		}
		p.trees[ti] = ft
		if ft.slow {
			p.slow = append(p.slow, int32(ti))
		} else {
			p.byDepth = append(p.byDepth, int32(ti))
		}
	}
	slices.SortStableFunc(p.byDepth, func(a, b int32) int { return p.trees[a].depth - p.trees[b].depth })
	return p
}

// rows4 walks four rows (x0..x3 their feature values) depth levels down
// from node root and returns the nodes they reach: levels of one load, one
// comparison and one branch-free child choice each, the four walks
// interleaved so that the processor overlaps them.
func (p *predictor) rows4(root int32, depth int, x0, x1, x2, x3 []float64) (int32, int32, int32, int32) {
	nodes := p.nodes
	i0, i1, i2, i3 := root, root, root, root
	for d := 0; d < depth; d++ {
		n0, n1, n2, n3 := &nodes[i0], &nodes[i1], &nodes[i2], &nodes[i3]
		v0, v1, v2, v3 := x0[n0.feat], x1[n1.feat], x2[n2.feat], x3[n3.feat]
		d0, d1, d2, d3 := nodeDir(n0, v0), nodeDir(n1, v1), nodeDir(n2, v2), nodeDir(n3, v3)
		if n0.kind|n1.kind|n2.kind|n3.kind != kindNumeric {
			d0, d1, d2, d3 = p.catDir(n0, v0, d0), p.catDir(n1, v1, d1), p.catDir(n2, v2, d2), p.catDir(n3, v3, d3)
		}
		i0, i1, i2, i3 = n0.child[d0], n1.child[d1], n2.child[d2], n3.child[d3]
	}
	return i0, i1, i2, i3
}

// trees4 is rows4 for one row (x) in four trees (roots r0..r3), depth
// levels down: a single row's walks are as independent as four rows'.
func (p *predictor) trees4(r0, r1, r2, r3 int32, depth int, x []float64) (int32, int32, int32, int32) {
	nodes := p.nodes
	i0, i1, i2, i3 := r0, r1, r2, r3
	for d := 0; d < depth; d++ {
		n0, n1, n2, n3 := &nodes[i0], &nodes[i1], &nodes[i2], &nodes[i3]
		v0, v1, v2, v3 := x[n0.feat], x[n1.feat], x[n2.feat], x[n3.feat]
		d0, d1, d2, d3 := nodeDir(n0, v0), nodeDir(n1, v1), nodeDir(n2, v2), nodeDir(n3, v3)
		if n0.kind|n1.kind|n2.kind|n3.kind != kindNumeric {
			d0, d1, d2, d3 = p.catDir(n0, v0, d0), p.catDir(n1, v1, d1), p.catDir(n2, v2, d2), p.catDir(n3, v3, d3)
		}
		i0, i1, i2, i3 = n0.child[d0], n1.child[d1], n2.child[d2], n3.child[d3]
	}
	return i0, i1, i2, i3
}

// walk1 is rows4 for one row in one tree.
func (p *predictor) walk1(root int32, depth int, x []float64) int32 {
	nodes := p.nodes
	i := root
	for d := 0; d < depth; d++ {
		n := &nodes[i]
		v := x[n.feat]
		i = n.child[p.catDir(n, v, nodeDir(n, v))]
	}
	return i
}

// catDir is 0 (left) or 1 (right) for value v at a categorical node; at a
// numeric node it returns numDir, the direction nodeDir found. Small enough
// to inline into the walks; categorical nodes take catSplit.
func (p *predictor) catDir(n *flatNode, v float64, numDir int) int {
	if n.kind == kindNumeric {
		return numDir
	}
	return p.catSplit(n, v)
}

// catSplit is Tree.decide for a categorical node: 0 (left) or 1 (right).
func (p *predictor) catSplit(n *flatNode, v float64) int {
	if v != v {
		return int(n.nanDir)
	}
	if p.f32 {
		v = float64(float32(v))
		if v < 0 {
			return 1
		}
	}
	// LightGBM truncates toward zero: (-1, 0) is category 0.
	if !(v > -1) || v >= 1<<31 {
		return 1
	}
	c := uint32(int32(v))
	w := c >> 5
	bits := math.Float64bits(n.thr)
	if w >= uint32(bits) {
		return 1
	}
	return 1 - int(p.cats[uint32(bits>>32)+w]>>(c&31)&1)
}

// nodeDir is 0 (left) or 1 (right) for value v at a numeric node: right when
// v > thr, the node's missing direction for NaN. No branches.
func nodeDir(n *flatNode, v float64) int {
	gt := b2int(!(v <= n.thr)) // 1 for NaN too
	nan := b2int(v != v)
	return gt ^ (nan & (gt ^ int(n.nanDir)))
}

// leafSlow returns tree t's leaf value for row x when the tree has
// zero-as-missing nodes, with the tree's general decision rule.
func (p *predictor) leafSlow(t *flatTree, x []float64) float64 {
	return t.tree.LeafValue[t.tree.leafFor(func(f int) float64 { return x[f] }, p.f32)]
}

// predictBlockRows is how many rows predict transposes at a time. (64 rows
// of doubles would keep the cache footprint of 128 rows of float32, but
// twice the passes over the trees cost more than it saved: measured with
// BenchmarkPredict.)
const predictBlockRows = 128

// parallelMinRows is the fewest rows Predict spreads over goroutines. A
// smaller batch (a serving request) runs on the calling goroutine: its
// goroutine fan-out would cost more than it saves, and a server spreads its
// concurrent requests over the cores anyway.
const parallelMinRows = 1024

// scratch is the per-call working memory of predictInto, pooled so that a
// serving request allocates nothing.
type scratch struct {
	x    []float64 // a block of rows, row-major
	vals []float64 // one row's value in each tree (single rows)
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// grow returns s[:n], reallocated when too small.
func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// predictInto writes raw scores, row-major, into out (rows x k): blocks of
// rows in parallel for large batches, on the calling goroutine for small
// ones. Each block is first copied row-major as doubles, from a column's
// Float64 values when it has them, so that a row's features sit together.
// Every output is the sum of its trees' leaf values in model order, from 0,
// whichever path computes it: the paths agree bit for bit.
func (p *predictor) predictInto(ds *ml.Dataset, out []float64) {
	n := ds.NumRows()
	nf := max(ds.NumFeatures(), 1)
	clear(out)
	nb := (n + predictBlockRows - 1) / predictBlockRows
	if n < parallelMinRows {
		s := scratchPool.Get().(*scratch)
		s.x = grow(s.x, min(n, predictBlockRows)*nf)
		s.vals = grow(s.vals, len(p.trees))
		for b := range nb {
			p.predictBlock(ds, b, s.x, s.vals, out)
		}
		scratchPool.Put(s)
		return
	}
	parallelFor(runtime.GOMAXPROCS(0), nb, func(b int) {
		p.predictBlock(ds, b, make([]float64, predictBlockRows*nf), make([]float64, len(p.trees)), out)
	})
}

// predictBlock predicts block b of ds's rows into out, with x (room for
// the block's rows) and vals (one value per tree) as working memory.
func (p *predictor) predictBlock(ds *ml.Dataset, b int, x, vals, out []float64) {
	n := ds.NumRows()
	k := p.k
	cols := ds.Columns
	nf := max(len(cols), 1)
	lo, hi := b*predictBlockRows, min(n, (b+1)*predictBlockRows)
	rows := hi - lo
	for f := range cols {
		if exact := cols[f].Float64; exact != nil {
			for r, v := range exact[lo:hi] {
				x[r*nf+f] = v
			}
			continue
		}
		for r, v := range cols[f].Values[lo:hi] {
			x[r*nf+f] = float64(v)
		}
	}
	o := out[lo*k : hi*k]
	if rows < 4 {
		for r := range rows {
			p.predictRow(x[r*nf:(r+1)*nf], vals, o[r*k:(r+1)*k])
		}
		return
	}
	nodes := p.nodes
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
			e0, e1, e2, e3 := p.rows4(t.root, t.depth, x[r*nf:(r+1)*nf], x[(r+1)*nf:(r+2)*nf], x[(r+2)*nf:(r+3)*nf], x[(r+3)*nf:(r+4)*nf])
			o[r*k+c] += nodes[e0].thr
			o[(r+1)*k+c] += nodes[e1].thr
			o[(r+2)*k+c] += nodes[e2].thr
			o[(r+3)*k+c] += nodes[e3].thr
		}
		for ; r < rows; r++ {
			o[r*k+c] += nodes[p.walk1(t.root, t.depth, x[r*nf:(r+1)*nf])].thr
		}
	}
}

// predictRow adds one row's tree values (x its features) to o (k values):
// the trees walked four at a time in depth order, each tree's value kept in
// vals, then summed in model order.
func (p *predictor) predictRow(x, vals, o []float64) {
	nodes, trees, ord := p.nodes, p.trees, p.byDepth
	i := 0
	for ; i+4 <= len(ord); i += 4 {
		t0, t1, t2, t3 := &trees[ord[i]], &trees[ord[i+1]], &trees[ord[i+2]], &trees[ord[i+3]]
		e0, e1, e2, e3 := p.trees4(t0.root, t1.root, t2.root, t3.root, t3.depth, x) // t3 is the deepest
		vals[ord[i]], vals[ord[i+1]], vals[ord[i+2]], vals[ord[i+3]] = nodes[e0].thr, nodes[e1].thr, nodes[e2].thr, nodes[e3].thr
	}
	for ; i < len(ord); i++ {
		t := &trees[ord[i]]
		vals[ord[i]] = nodes[p.walk1(t.root, t.depth, x)].thr
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
