package gbdt

import (
	"fmt"
	"math"
	"runtime"
	"slices"

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

// predictor is the model compiled for fast prediction: each tree's nodes
// flattened into one array of small structs.
type predictor struct {
	k     int
	trees []flatTree
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
// in flatTree.cats (see catBits), which keeps the node in one cache line
// (nodeDir's answer on those bits is ignored).
type flatNode struct {
	thr    float64
	feat   int32
	child  [2]int32 // [left, right]; >= 0: node; < 0: ^leaf
	kind   uint8
	nanDir uint8 // 0: missing values go left, 1: right
}

// catBits packs the bitset cats[lo:lo+n] of a categorical node into its thr.
func catBits(lo, n uint32) float64 { return math.Float64frombits(uint64(lo)<<32 | uint64(n)) }

type flatTree struct {
	// nodes holds the internal nodes, then one pseudo-node per leaf that
	// sends every row to itself, so that walking depth levels from the root
	// ends on leaf l's pseudo-node, numInternal+l, whatever the path.
	nodes       []flatNode
	numInternal int
	depth       int
	leaves      []float64
	cats        []uint32
	f32         bool // Model.Float32Inputs
	// slow marks trees the compact nodes cannot express (zero as missing):
	// they take the general path.
	slow bool
	tree *Tree
}

func compile(m *Model) *predictor {
	p := &predictor{k: m.NumOutputs(), trees: make([]flatTree, len(m.Trees))}
	f32 := m.Float32Inputs
	for ti := range m.Trees {
		t := &m.Trees[ti]
		ni := t.NumLeaves - 1
		ft := flatTree{leaves: t.LeafValue, tree: t, numInternal: ni, depth: t.maxDepth(), cats: t.CatThreshold, f32: f32}
		node := func(c int) int32 {
			if c < 0 {
				return int32(ni + ^c)
			}
			return int32(c)
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
				n.thr = catBits(uint32(lo), uint32(hi-lo))
			case t.MissingType(i) == missingZero:
				n.kind = kindZero
				ft.slow = true
			case t.MissingType(i) == missingNaN:
				n.kind = kindNumeric
				n.thr = numericThreshold(t.Threshold[i], f32)
			default:
				// Missing type None: NaN is predicted as 0 (float32(0) is 0).
				n.kind = kindNumeric
				n.thr = numericThreshold(t.Threshold[i], f32)
				n.nanDir = uint8(b2int(!(0 <= t.Threshold[i])))
			}
			ft.nodes = append(ft.nodes, n)
		}
		for l := 0; l < t.NumLeaves; l++ {
			self := int32(ni + l)
			ft.nodes = append(ft.nodes, flatNode{thr: math.Inf(1), child: [2]int32{self, self}})
		}
		p.trees[ti] = ft
	}
	return p
}

// leaves4 finds the leaves of four rows (x0..x3 their feature values) in a
// tree: depth levels of one load, one comparison and one branch-free child
// choice each, the four walks interleaved so that the processor overlaps
// them.
func (t *flatTree) leaves4(x0, x1, x2, x3 []float64) (int, int, int, int) {
	nodes := t.nodes
	var i0, i1, i2, i3 int32
	for d := 0; d < t.depth; d++ {
		n0, n1, n2, n3 := &nodes[i0], &nodes[i1], &nodes[i2], &nodes[i3]
		v0, v1, v2, v3 := x0[n0.feat], x1[n1.feat], x2[n2.feat], x3[n3.feat]
		d0, d1, d2, d3 := nodeDir(n0, v0), nodeDir(n1, v1), nodeDir(n2, v2), nodeDir(n3, v3)
		if n0.kind|n1.kind|n2.kind|n3.kind != kindNumeric {
			d0, d1, d2, d3 = t.catDir(n0, v0, d0), t.catDir(n1, v1, d1), t.catDir(n2, v2, d2), t.catDir(n3, v3, d3)
		}
		i0, i1, i2, i3 = n0.child[d0], n1.child[d1], n2.child[d2], n3.child[d3]
	}
	ni := int32(t.numInternal)
	return int(i0 - ni), int(i1 - ni), int(i2 - ni), int(i3 - ni)
}

// leaf1 is leaves4 for one row.
func (t *flatTree) leaf1(x []float64) int {
	nodes := t.nodes
	var i int32
	for d := 0; d < t.depth; d++ {
		n := &nodes[i]
		v := x[n.feat]
		i = n.child[t.catDir(n, v, nodeDir(n, v))]
	}
	return int(i) - t.numInternal
}

// catDir is 0 (left) or 1 (right) for value v at a categorical node; at a
// numeric node it returns numDir, the direction nodeDir found. Small enough
// to inline into the walks; categorical nodes take catSplit.
func (t *flatTree) catDir(n *flatNode, v float64, numDir int) int {
	if n.kind == kindNumeric {
		return numDir
	}
	return t.catSplit(n, v)
}

// catSplit is Tree.decide for a categorical node: 0 (left) or 1 (right).
func (t *flatTree) catSplit(n *flatNode, v float64) int {
	if v != v {
		return int(n.nanDir)
	}
	if t.f32 {
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
	return 1 - int(t.cats[uint32(bits>>32)+w]>>(c&31)&1)
}

// nodeDir is 0 (left) or 1 (right) for value v at a numeric node: right when
// v > thr, the node's missing direction for NaN. No branches.
func nodeDir(n *flatNode, v float64) int {
	gt := b2int(!(v <= n.thr)) // 1 for NaN too
	nan := b2int(v != v)
	return gt ^ (nan & (gt ^ int(n.nanDir)))
}

// leafSlow returns the leaf for trees with zero-as-missing nodes, with the
// tree's general decision rule.
func (t *flatTree) leafSlow(x []float64) int {
	return t.tree.leafFor(func(f int) float64 { return x[f] }, t.f32)
}

// predictBlockRows is how many rows predict transposes at a time. (64 rows
// of doubles would keep the cache footprint of 128 rows of float32, but
// twice the passes over the trees cost more than it saved: measured with
// BenchmarkPredict.)
const predictBlockRows = 128

// predict returns raw scores, row-major, using the first iterations trees
// (0: all), in parallel over blocks of rows. Each block is first copied
// row-major as doubles, from a column's Float64 values when it has them,
// so that a row's features sit together.
func (p *predictor) predict(ds *ml.Dataset, iterations int) []float64 {
	n := ds.NumRows()
	k := p.k
	trees := p.trees
	if iterations > 0 && iterations*k < len(trees) {
		trees = trees[:iterations*k]
	}
	out := make([]float64, n*k)
	cols := ds.Columns
	nf := len(cols)
	nb := (n + predictBlockRows - 1) / predictBlockRows
	parallelFor(runtime.GOMAXPROCS(0), nb, func(b int) {
		lo, hi := b*predictBlockRows, min(n, (b+1)*predictBlockRows)
		rows := hi - lo
		x := make([]float64, rows*max(nf, 1))
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
		for ti := range trees {
			t := &trees[ti]
			c := ti % k
			if t.slow {
				for r := 0; r < rows; r++ {
					o[r*k+c] += t.leaves[t.leafSlow(x[r*nf:(r+1)*nf])]
				}
				continue
			}
			r := 0
			for ; r+4 <= rows; r += 4 {
				l0, l1, l2, l3 := t.leaves4(x[r*nf:(r+1)*nf], x[(r+1)*nf:(r+2)*nf], x[(r+2)*nf:(r+3)*nf], x[(r+3)*nf:(r+4)*nf])
				o[r*k+c] += t.leaves[l0]
				o[(r+1)*k+c] += t.leaves[l1]
				o[(r+2)*k+c] += t.leaves[l2]
				o[(r+3)*k+c] += t.leaves[l3]
			}
			for ; r < rows; r++ {
				o[r*k+c] += t.leaves[t.leaf1(x[r*nf:(r+1)*nf])]
			}
		}
	})
	return out
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
