package gbdt

import (
	"runtime"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// Contributions returns each feature's SHAP value for each prediction,
// computed exactly with TreeSHAP (Lundberg, Erion and Lee, "Consistent
// Individualized Feature Attribution for Tree Ensembles", algorithm 2), the
// polynomial-time algorithm behind LightGBM's pred_contrib.
//
// The result is row-major: for each row, for each output, len(Features)
// contributions followed by the expected value (the model's mean raw
// output over the training data); per row and output they sum to the raw
// score PredictRaw returns. Node weights are the training row counts (or,
// for models without counts such as XGBoost's, the hessian sums).
func (m *Model) Contributions(ds *ml.Dataset) ([]float64, error) {
	if _, err := m.predictor(); err != nil {
		return nil, err
	}
	if err := m.checkData(ds); err != nil {
		return nil, err
	}
	n := ds.NumRows()
	k := m.NumOutputs()
	nf := len(m.Features)
	width := k * (nf + 1)
	out := make([]float64, n*width)
	trees := make([]shapTree, len(m.Trees))
	maxDepth := 0
	for i := range m.Trees {
		trees[i] = newShapTree(&m.Trees[i])
		maxDepth = max(maxDepth, m.Trees[i].maxDepth())
	}
	const block = 64
	nb := (n + block - 1) / block
	parallelFor(runtime.GOMAXPROCS(0), nb, func(b int) {
		path := make([]pathElem, (maxDepth+2)*(maxDepth+3)/2)
		for r := b * block; r < min(n, (b+1)*block); r++ {
			value := func(f int) float64 {
				if x := ds.Columns[f].Float64; x != nil {
					return x[r]
				}
				return float64(ds.Columns[f].Values[r])
			}
			row := out[r*width : (r+1)*width]
			for ti := range trees {
				c := ti % k
				phi := row[c*(nf+1) : (c+1)*(nf+1)]
				st := &trees[ti]
				phi[nf] += st.expected
				if st.t.NumLeaves <= 1 {
					continue
				}
				st.recurse(value, phi, 0, 0, path, 1, 1, -1, m.Float32Inputs)
			}
		}
	})
	return out, nil
}

// shapTree is a tree with the node weights TreeSHAP needs.
type shapTree struct {
	t            *Tree
	nodeW, leafW []float64
	expected     float64
}

func newShapTree(t *Tree) shapTree {
	s := shapTree{t: t}
	ni := t.NumLeaves - 1
	switch {
	case len(t.InternalCount) == ni && len(t.LeafCount) == t.NumLeaves && (ni == 0 || t.InternalCount[0] > 0):
		s.nodeW = make([]float64, ni)
		s.leafW = make([]float64, t.NumLeaves)
		for i, c := range t.InternalCount {
			s.nodeW[i] = float64(c)
		}
		for i, c := range t.LeafCount {
			s.leafW[i] = float64(c)
		}
	case len(t.InternalWeight) == ni && len(t.LeafWeight) == t.NumLeaves:
		s.nodeW, s.leafW = t.InternalWeight, t.LeafWeight
	default:
		// No weights: every branch weighs the same.
		s.nodeW = make([]float64, ni)
		s.leafW = make([]float64, t.NumLeaves)
		for i := range s.leafW {
			s.leafW[i] = 1
		}
		var fill func(n int) float64
		fill = func(n int) float64 {
			if n < 0 {
				return 1
			}
			s.nodeW[n] = fill(t.LeftChild[n]) + fill(t.RightChild[n])
			return s.nodeW[n]
		}
		if ni > 0 {
			fill(0)
		}
	}
	if t.NumLeaves <= 1 {
		s.expected = t.LeafValue[0]
		return s
	}
	var total float64
	for i, v := range t.LeafValue {
		s.expected += v * s.leafW[i]
		total += s.leafW[i]
	}
	if total > 0 {
		s.expected /= total
	} else {
		s.expected = 0
	}
	return s
}

func (s *shapTree) weight(child int) float64 {
	if child < 0 {
		return s.leafW[^child]
	}
	return s.nodeW[child]
}

type pathElem struct {
	feature                   int
	zeroFraction, oneFraction float64
	pweight                   float64
}

func extendPath(path []pathElem, depth int, zero, one float64, feature int) {
	path[depth] = pathElem{feature: feature, zeroFraction: zero, oneFraction: one}
	if depth == 0 {
		path[depth].pweight = 1
	}
	for i := depth - 1; i >= 0; i-- {
		path[i+1].pweight += one * path[i].pweight * float64(i+1) / float64(depth+1)
		path[i].pweight = zero * path[i].pweight * float64(depth-i) / float64(depth+1)
	}
}

func unwindPath(path []pathElem, depth, index int) {
	one, zero := path[index].oneFraction, path[index].zeroFraction
	next := path[depth].pweight
	for i := depth - 1; i >= 0; i-- {
		if one != 0 {
			tmp := path[i].pweight
			path[i].pweight = next * float64(depth+1) / (float64(i+1) * one)
			next = tmp - path[i].pweight*zero*float64(depth-i)/float64(depth+1)
		} else {
			path[i].pweight = path[i].pweight * float64(depth+1) / (zero * float64(depth-i))
		}
	}
	for i := index; i < depth; i++ {
		path[i].feature = path[i+1].feature
		path[i].zeroFraction = path[i+1].zeroFraction
		path[i].oneFraction = path[i+1].oneFraction
	}
}

func unwoundPathSum(path []pathElem, depth, index int) float64 {
	one, zero := path[index].oneFraction, path[index].zeroFraction
	next := path[depth].pweight
	total := 0.0
	for i := depth - 1; i >= 0; i-- {
		if one != 0 {
			tmp := next * float64(depth+1) / (float64(i+1) * one)
			total += tmp
			next = path[i].pweight - tmp*zero*float64(depth-i)/float64(depth+1)
		} else if zero != 0 {
			total += path[i].pweight / zero / (float64(depth-i) / float64(depth+1))
		}
	}
	return total
}

// recurse walks node with the path of features split on so far
// (parent[:depth]), extending it with the parent split's fractions.
func (s *shapTree) recurse(value func(int) float64, phi []float64, node, depth int, parent []pathElem,
	zero, one float64, feature int, f32 bool) {
	// This call's path lives after the parent's in the buffer.
	path := parent[depth:]
	copy(path[:depth], parent[:depth])
	extendPath(path, depth, zero, one, feature)
	t := s.t
	if node < 0 {
		v := t.LeafValue[^node]
		for i := 1; i <= depth; i++ {
			w := unwoundPathSum(path, depth, i)
			e := path[i]
			phi[e.feature] += w * (e.oneFraction - e.zeroFraction) * v
		}
		return
	}
	f := t.SplitFeature[node]
	hot := t.decide(node, value(f), f32)
	cold := t.LeftChild[node]
	if hot == cold {
		cold = t.RightChild[node]
	}
	w := s.nodeW[node]
	hotZero, coldZero := 0.0, 0.0
	if w > 0 {
		hotZero = s.weight(hot) / w
		coldZero = s.weight(cold) / w
	}
	inZero, inOne := 1.0, 1.0
	idx := 0
	for ; idx <= depth; idx++ {
		if path[idx].feature == f {
			break
		}
	}
	if idx != depth+1 {
		inZero, inOne = path[idx].zeroFraction, path[idx].oneFraction
		unwindPath(path, depth, idx)
		depth--
	}
	s.recurse(value, phi, hot, depth+1, path, hotZero*inZero, inOne, f, f32)
	s.recurse(value, phi, cold, depth+1, path, coldZero*inZero, 0, f, f32)
}
