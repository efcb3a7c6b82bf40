package gbdt

import (
	"fmt"
	"math"
	"runtime"
	"sync/atomic"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// ModelVersion is the version of Model's JSON form. Readers reject other
// versions.
const ModelVersion = 1

// MaxClasses bounds num_class (of training and of models read from files).
const MaxClasses = 1 << 16

// Feature describes one input column of a model, in the training dataset's
// column order.
type Feature struct {
	Name        string `json:"name"`
	Categorical bool   `json:"categorical,omitempty"`
	// Unused marks a column no split can use (a single value in training).
	Unused bool `json:"unused,omitempty"`
	// Min and Max are the range of a numeric column's training values.
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// Categories are the codes of a categorical column that got a bin of
	// their own in training, most frequent first (LightGBM's feature_infos).
	Categories []int `json:"categories,omitempty"`
}

// Model is a trained gradient-boosted tree ensemble. Its exported fields are
// its JSON form (embedded in Atrium model files); call Validate after
// decoding one from an untrusted source (Predict does it too).
//
// Prediction takes a Dataset whose columns are the model's Features, in the
// same order; categorical columns hold the codes the model was trained on.
type Model struct {
	Version   int    `json:"version"`
	Objective string `json:"objective"`
	// NumClass is the number of outputs per row: K for multiclass, else 1.
	NumClass int `json:"num_class"`
	// Sigmoid is the slope of the logistic link (binary).
	Sigmoid  float64   `json:"sigmoid,omitempty"`
	Features []Feature `json:"features"`
	// Trees are in iteration order, NumClass trees per iteration (class k of
	// iteration i is Trees[i*NumClass+k]). The initial score is folded into
	// the first iteration's trees, as in LightGBM.
	Trees []Tree `json:"trees"`
	// BestIteration is the iteration early stopping chose (1-based; 0 when
	// training ran to the end). The model keeps only the trees up to it.
	BestIteration int `json:"best_iteration"`
	// Params are the parameters the model was trained with (nil for models
	// read from other formats).
	Params *Params `json:"params,omitempty"`

	compiled atomic.Pointer[predictor]
}

// NumOutputs is the number of values Predict returns per row.
func (m *Model) NumOutputs() int {
	if m.NumClass < 1 {
		return 1
	}
	return m.NumClass
}

// NumIterations is the number of boosting iterations in the model.
func (m *Model) NumIterations() int { return len(m.Trees) / m.NumOutputs() }

// Validate checks the model's consistency: version, objective, tree count,
// and each tree's arrays, indices and structure.
func (m *Model) Validate() error {
	if m.Version != ModelVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrModel, m.Version, ModelVersion)
	}
	switch m.Objective {
	case ObjBinary, ObjRegression, ObjRegressionL1, ObjHuber, ObjLambdarank:
		if m.NumClass != 1 {
			return fmt.Errorf("%w: num_class %d, want 1 for %s", ErrModel, m.NumClass, m.Objective)
		}
	case ObjMulticlass:
		if m.NumClass < 2 || m.NumClass > MaxClasses {
			return fmt.Errorf("%w: num_class %d, want 2..%d for multiclass", ErrModel, m.NumClass, MaxClasses)
		}
	default:
		return fmt.Errorf("%w: unknown objective %q", ErrModel, m.Objective)
	}
	if m.Objective == ObjBinary && !(m.Sigmoid > 0) {
		return fmt.Errorf("%w: sigmoid %v, want > 0 for binary", ErrModel, m.Sigmoid)
	}
	if len(m.Trees)%m.NumClass != 0 {
		return fmt.Errorf("%w: %d trees, want a multiple of num_class %d", ErrModel, len(m.Trees), m.NumClass)
	}
	for i := range m.Trees {
		if err := m.Trees[i].validate(len(m.Features)); err != nil {
			return fmt.Errorf("%w: tree %d: %v", ErrModel, i, err)
		}
	}
	return nil
}

// PredictRaw returns the raw scores (before the link function), row-major:
// rows x NumOutputs.
func (m *Model) PredictRaw(ds *ml.Dataset) ([]float64, error) {
	pr, err := m.predictor()
	if err != nil {
		return nil, err
	}
	if err := m.checkData(ds); err != nil {
		return nil, err
	}
	return pr.predict(ds, 0), nil
}

// Predict returns the model's outputs, row-major rows x NumOutputs:
// probabilities for binary (of class 1) and multiclass, raw scores otherwise.
func (m *Model) Predict(ds *ml.Dataset) ([]float64, error) {
	out, err := m.PredictRaw(ds)
	if err != nil {
		return nil, err
	}
	m.transform(out)
	return out, nil
}

// transform applies the link function to raw scores in place.
func (m *Model) transform(out []float64) {
	switch m.Objective {
	case ObjBinary:
		for i, v := range out {
			out[i] = sigmoid(v, m.Sigmoid)
		}
	case ObjMulticlass:
		k := m.NumClass
		for i := 0; i+k <= len(out); i += k {
			softmax(out[i:i+k], out[i:i+k])
		}
	}
}

func (m *Model) checkData(ds *ml.Dataset) error {
	if ds == nil {
		return fmt.Errorf("%w: no dataset", ErrData)
	}
	if ds.NumFeatures() != len(m.Features) {
		return fmt.Errorf("%w: dataset has %d feature columns, the model wants %d", ErrData, ds.NumFeatures(), len(m.Features))
	}
	n := ds.NumRows()
	for i := range ds.Columns {
		if len(ds.Columns[i].Values) != n {
			return fmt.Errorf("%w: column %q has %d rows, want %d", ErrData, ds.Columns[i].Name, len(ds.Columns[i].Values), n)
		}
	}
	return nil
}

func (m *Model) predictor() (*predictor, error) {
	if p := m.compiled.Load(); p != nil {
		return p, nil
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	p := compile(m)
	m.compiled.Store(p)
	return p, nil
}

// predictor is the model compiled for fast prediction: each tree's nodes
// flattened into one array of small structs, thresholds in float32.
type predictor struct {
	k     int
	trees []flatTree
}

// Node kinds of flatNode.
const (
	kindNumeric  = iota // value <= thr goes left; NaN goes to child[nanDir]
	kindZero            // zero and NaN are missing and go to child[nanDir]
	kindCategory        // category in cats[catLo:catHi] goes left; NaN and negatives to child[nanDir]
)

// flatNode is one internal node. Thresholds are stored as the largest
// float32 not above the tree's float64 threshold: for the float32 values of a
// Dataset, v <= thr32 exactly when float64(v) <= thr, so the comparison stays
// exact while the node shrinks to 20 bytes.
type flatNode struct {
	thr    float32
	feat   int32
	child  [2]int32 // [left, right]; >= 0: node; < 0: ^leaf
	kind   uint8
	nanDir uint8 // 0: missing values go left, 1: right
	// Categorical nodes: the bitset of left-going categories is
	// flatTree.cats[catLo : catLo+catLen].
	catLo, catLen uint16
}

type flatTree struct {
	// nodes holds the internal nodes, then one pseudo-node per leaf that
	// sends every row to itself, so that walking depth levels from the root
	// ends on leaf l's pseudo-node, numInternal+l, whatever the path.
	nodes       []flatNode
	numInternal int
	depth       int
	leaves      []float64
	cats        []uint32
	// slow marks trees the compact nodes cannot express (zero as missing,
	// very long category bitsets): they take the general path.
	slow bool
	tree *Tree
}

// float32Below returns the largest float32 <= v.
func float32Below(v float64) float32 {
	f := float32(v)
	if float64(f) > v {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

func compile(m *Model) *predictor {
	p := &predictor{k: m.NumOutputs(), trees: make([]flatTree, len(m.Trees))}
	for ti := range m.Trees {
		t := &m.Trees[ti]
		ni := t.NumLeaves - 1
		ft := flatTree{leaves: t.LeafValue, tree: t, numInternal: ni, depth: t.maxDepth(), cats: t.CatThreshold}
		node := func(c int) int32 {
			if c < 0 {
				return int32(ni + ^c)
			}
			return int32(c)
		}
		for i := 0; i < ni; i++ {
			n := flatNode{thr: float32Below(t.Threshold[i]), feat: int32(t.SplitFeature[i]),
				child: [2]int32{node(t.LeftChild[i]), node(t.RightChild[i])}}
			left := t.DefaultLeft(i)
			if !left {
				n.nanDir = 1
			}
			switch {
			case t.IsCategorical(i):
				n.kind = kindCategory
				c := int(t.Threshold[i])
				lo, hi := t.CatBoundaries[c], t.CatBoundaries[c+1]
				if hi > math.MaxUint16 {
					ft.slow = true
				}
				n.catLo, n.catLen = uint16(lo), uint16(hi-lo)
			case t.MissingType(i) == missingZero:
				n.kind = kindZero
				ft.slow = true
			case t.MissingType(i) == missingNaN:
				n.kind = kindNumeric
			default:
				// Missing type None: NaN is predicted as 0.
				n.kind = kindNumeric
				n.nanDir = uint8(b2int(!(0 <= t.Threshold[i])))
			}
			ft.nodes = append(ft.nodes, n)
		}
		for l := 0; l < t.NumLeaves; l++ {
			self := int32(ni + l)
			ft.nodes = append(ft.nodes, flatNode{thr: float32(math.Inf(1)), child: [2]int32{self, self}})
		}
		p.trees[ti] = ft
	}
	return p
}

// leaves4 finds the leaves of four rows (x0..x3 their feature values) in a
// tree of numeric nodes: depth levels of one load, one comparison and one
// branch-free child choice each, the four walks interleaved so that the
// processor overlaps them.
func (t *flatTree) leaves4(x0, x1, x2, x3 []float32) (int, int, int, int) {
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
func (t *flatTree) leaf1(x []float32) int {
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
// numeric node it returns numDir, the direction nodeDir found.
func (t *flatTree) catDir(n *flatNode, v float32, numDir int) int {
	if n.kind == kindNumeric {
		return numDir
	}
	// Categorical: NaN and negative codes go the missing way, codes in the
	// bitset left, others right.
	if !(v >= 0) {
		return int(n.nanDir)
	}
	if v >= 1<<24 {
		return 1
	}
	c := uint32(v)
	w := c >> 5
	if w >= uint32(n.catLen) {
		return 1
	}
	return 1 - int(t.cats[uint32(n.catLo)+w]>>(c&31)&1)
}

// nodeDir is 0 (left) or 1 (right) for value v at a numeric node: right when
// v > thr, the node's missing direction for NaN. No branches.
func nodeDir(n *flatNode, v float32) int {
	gt := b2int(!(v <= n.thr)) // 1 for NaN too
	nan := b2int(v != v)
	return gt ^ (nan & (gt ^ int(n.nanDir)))
}

// leafSlow returns the leaf for trees with categorical or zero-missing
// nodes, with the tree's general decision rule.
func (t *flatTree) leafSlow(x []float32) int {
	return t.tree.leafOf(func(f int) float64 { return float64(x[f]) })
}

// predictBlockRows is how many rows predict transposes at a time.
const predictBlockRows = 128

// predict returns raw scores, row-major, using the first iterations trees
// (0: all), in parallel over blocks of rows. Each block is first copied
// row-major so that a row's features sit together.
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
		x := make([]float32, rows*max(nf, 1))
		for f := range cols {
			for r, v := range cols[f].Values[lo:hi] {
				x[r*nf+f] = v
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

// leafRange returns the smallest and largest leaf value of the model's trees
// summed per output (bounds on any raw prediction).
func (m *Model) leafRange() (lo, hi []float64) {
	k := m.NumOutputs()
	lo, hi = make([]float64, k), make([]float64, k)
	for i := range m.Trees {
		mn, mx := math.Inf(1), math.Inf(-1)
		for _, v := range m.Trees[i].LeafValue {
			mn, mx = min(mn, v), max(mx, v)
		}
		lo[i%k] += mn
		hi[i%k] += mx
	}
	return lo, hi
}
