package gbdt

import (
	"fmt"
	"math"
)

// decision_type bits, as in LightGBM's include/LightGBM/tree.h.
const (
	dtCategorical = 1 << 0
	dtDefaultLeft = 1 << 1
	// bits 2-3: missing type (missingNone, missingZero, missingNaN)
)

// Tree is one regression tree in LightGBM's layout, so that LightGBM text
// models map onto it field for field.
//
// Internal nodes are numbered 0..NumLeaves-2, node 0 the root (for a tree of
// more than one leaf). A child c >= 0 is an internal node; c < 0 is the leaf
// ^c. A numeric node sends a row left when its value <= Threshold; a missing
// value (NaN, when the missing type is NaN; zero, when it is Zero) goes to the
// default side; with missing type None a NaN is treated as 0. A categorical
// node's Threshold indexes CatBoundaries: the row goes left when its category
// code (truncated toward zero) is in the bitset
// CatThreshold[CatBoundaries[i]:CatBoundaries[i+1]]; NaN goes right (left
// when the node's default-left bit is set, which only models read from
// XGBoost use), codes <= -1 right. Values are compared as the model's
// library sees them (Model.Float32Inputs; see predict.go).
type Tree struct {
	NumLeaves      int       `json:"num_leaves"`
	NumCat         int       `json:"num_cat"`
	SplitFeature   []int     `json:"split_feature"`
	SplitGain      []float64 `json:"split_gain"`
	Threshold      []float64 `json:"threshold"`
	DecisionType   []uint8   `json:"decision_type"`
	LeftChild      []int     `json:"left_child"`
	RightChild     []int     `json:"right_child"`
	LeafValue      []float64 `json:"leaf_value"`
	LeafWeight     []float64 `json:"leaf_weight"`
	LeafCount      []int     `json:"leaf_count"`
	InternalValue  []float64 `json:"internal_value"`
	InternalWeight []float64 `json:"internal_weight"`
	InternalCount  []int     `json:"internal_count"`
	CatBoundaries  []int     `json:"cat_boundaries,omitempty"`
	CatThreshold   []uint32  `json:"cat_threshold,omitempty"`
	Shrinkage      float64   `json:"shrinkage"`
}

// newTree returns a one-leaf tree with room for maxLeaves leaves.
func newTree(maxLeaves int) *Tree {
	t := &Tree{NumLeaves: 1, Shrinkage: 1}
	t.SplitFeature = make([]int, 0, maxLeaves-1)
	t.LeafValue = make([]float64, 1, maxLeaves)
	t.LeafWeight = make([]float64, 1, maxLeaves)
	t.LeafCount = make([]int, 1, maxLeaves)
	return t
}

// MissingType returns the missing type (0 None, 1 Zero, 2 NaN) of node i.
func (t *Tree) MissingType(i int) int { return int(t.DecisionType[i]>>2) & 3 }

// IsCategorical reports whether node i is a categorical split.
func (t *Tree) IsCategorical(i int) bool { return t.DecisionType[i]&dtCategorical != 0 }

// DefaultLeft reports whether missing values go left at node i.
func (t *Tree) DefaultLeft(i int) bool { return t.DecisionType[i]&dtDefaultLeft != 0 }

// split turns leaf into an internal node with children leaf (left) and a new
// leaf NumLeaves (right), the way LightGBM's Tree::Split numbers them, and
// returns the new leaf's index. parent is leaf's parent node (-1 for the root).
func (t *Tree) split(leaf, parent, feature int, threshold float64, dtype uint8, gain float64,
	leftOut, rightOut float64, leftCnt, rightCnt int, leftW, rightW float64) int {
	node := t.NumLeaves - 1
	if parent >= 0 {
		if t.LeftChild[parent] == ^leaf {
			t.LeftChild[parent] = node
		} else {
			t.RightChild[parent] = node
		}
	}
	t.SplitFeature = append(t.SplitFeature, feature)
	t.SplitGain = append(t.SplitGain, gain)
	t.Threshold = append(t.Threshold, threshold)
	t.DecisionType = append(t.DecisionType, dtype)
	t.LeftChild = append(t.LeftChild, ^leaf)
	t.RightChild = append(t.RightChild, ^t.NumLeaves)
	t.InternalValue = append(t.InternalValue, t.LeafValue[leaf])
	t.InternalWeight = append(t.InternalWeight, leftW+rightW)
	t.InternalCount = append(t.InternalCount, leftCnt+rightCnt)
	t.LeafValue[leaf], t.LeafWeight[leaf], t.LeafCount[leaf] = leftOut, leftW, leftCnt
	t.LeafValue = append(t.LeafValue, rightOut)
	t.LeafWeight = append(t.LeafWeight, rightW)
	t.LeafCount = append(t.LeafCount, rightCnt)
	t.NumLeaves++
	return t.NumLeaves - 1
}

// AddCatBitset appends the bitset of categories cats (codes >= 0) and
// returns its index, the Threshold of a categorical node using it.
func (t *Tree) AddCatBitset(cats []int) int {
	if len(t.CatBoundaries) == 0 {
		t.CatBoundaries = []int{0}
	}
	maxCat := 0
	for _, c := range cats {
		maxCat = max(maxCat, c)
	}
	words := make([]uint32, maxCat/32+1)
	for _, c := range cats {
		words[c/32] |= 1 << (c % 32)
	}
	t.CatThreshold = append(t.CatThreshold, words...)
	t.CatBoundaries = append(t.CatBoundaries, len(t.CatThreshold))
	t.NumCat++
	return t.NumCat - 1
}

// shrink multiplies the tree's outputs by rate (LightGBM's Tree::Shrinkage).
func (t *Tree) shrink(rate float64) {
	for i := range t.LeafValue {
		t.LeafValue[i] *= rate
	}
	for i := range t.InternalValue {
		t.InternalValue[i] *= rate
	}
	t.Shrinkage *= rate
}

// addBias adds v to every output (LightGBM's Tree::AddBias, used to fold the
// initial score into the first tree).
func (t *Tree) addBias(v float64) {
	for i := range t.LeafValue {
		t.LeafValue[i] += v
	}
	for i := range t.InternalValue {
		t.InternalValue[i] += v
	}
	t.Shrinkage = 1
}

// catIn reports whether category code v (> -1, truncated) is in bitset i
// of the tree.
func (t *Tree) catIn(i int, v float64) bool {
	if v >= 1<<31 {
		return false
	}
	c := int(v)
	lo, hi := t.CatBoundaries[i], t.CatBoundaries[i+1]
	w := c / 32
	if w >= hi-lo {
		return false
	}
	return t.CatThreshold[lo+w]>>(c%32)&1 != 0
}

// next returns the child of node i for feature value v, by LightGBM's
// Tree::NumericalDecision and CategoricalDecision (v as LightGBM sees it:
// see decide, which callers use). A categorical node truncates v toward
// zero, as LightGBM's cast to int does, so (-1, 0) is category 0, and sends
// NaN to the default side (right, except in models read from XGBoost) and
// values <= -1 or >= 2^31 right.
func (t *Tree) next(i int, v float64) int {
	dt := t.DecisionType[i]
	if dt&dtCategorical != 0 {
		if math.IsNaN(v) {
			if dt&dtDefaultLeft != 0 {
				return t.LeftChild[i]
			}
			return t.RightChild[i]
		}
		if v > -1 && t.catIn(int(t.Threshold[i]), v) {
			return t.LeftChild[i]
		}
		return t.RightChild[i]
	}
	mt := int(dt>>2) & 3
	if math.IsNaN(v) && mt != missingNaN {
		v = 0
	}
	if (mt == missingZero && v >= -kZeroThreshold && v <= kZeroThreshold) || (mt == missingNaN && math.IsNaN(v)) {
		if dt&dtDefaultLeft != 0 {
			return t.LeftChild[i]
		}
		return t.RightChild[i]
	}
	if v <= t.Threshold[i] {
		return t.LeftChild[i]
	}
	return t.RightChild[i]
}

// maxDepth returns the depth of the deepest leaf (0 for a one-leaf tree).
func (t *Tree) maxDepth() int {
	if t.NumLeaves <= 1 {
		return 0
	}
	var walk func(n, d int) int
	walk = func(n, d int) int {
		if n < 0 {
			return d
		}
		return max(walk(t.LeftChild[n], d+1), walk(t.RightChild[n], d+1))
	}
	return walk(0, 0)
}

// validate checks that the arrays agree in length, that every index is in
// range and that the nodes form a tree reaching each leaf exactly once, so
// that prediction never indexes out of range or loops.
func (t *Tree) validate(numFeatures int) error {
	nl := t.NumLeaves
	if nl < 1 {
		return fmt.Errorf("num_leaves %d, want >= 1", nl)
	}
	ni := nl - 1
	for _, a := range []struct {
		name string
		n    int
		want int
	}{
		{"split_feature", len(t.SplitFeature), ni},
		{"threshold", len(t.Threshold), ni},
		{"decision_type", len(t.DecisionType), ni},
		{"left_child", len(t.LeftChild), ni},
		{"right_child", len(t.RightChild), ni},
		{"leaf_value", len(t.LeafValue), nl},
	} {
		if a.n != a.want {
			return fmt.Errorf("%s has %d entries, want %d (num_leaves=%d)", a.name, a.n, a.want, nl)
		}
	}
	for _, a := range []struct {
		name string
		n    int
		want int
	}{
		{"split_gain", len(t.SplitGain), ni},
		{"internal_value", len(t.InternalValue), ni},
		{"internal_weight", len(t.InternalWeight), ni},
		{"internal_count", len(t.InternalCount), ni},
		{"leaf_weight", len(t.LeafWeight), nl},
		{"leaf_count", len(t.LeafCount), nl},
	} {
		// Optional arrays (XGBoost models have no weights), but never partial.
		if a.n != 0 && a.n != a.want {
			return fmt.Errorf("%s has %d entries, want %d (num_leaves=%d)", a.name, a.n, a.want, nl)
		}
	}
	if t.NumCat > 0 {
		if len(t.CatBoundaries) != t.NumCat+1 {
			return fmt.Errorf("cat_boundaries has %d entries, want num_cat+1 = %d", len(t.CatBoundaries), t.NumCat+1)
		}
		if t.CatBoundaries[0] != 0 {
			return fmt.Errorf("cat_boundaries starts at %d, want 0", t.CatBoundaries[0])
		}
		for i := 1; i < len(t.CatBoundaries); i++ {
			if t.CatBoundaries[i] < t.CatBoundaries[i-1] {
				return fmt.Errorf("cat_boundaries decreases at entry %d", i)
			}
		}
		if last := t.CatBoundaries[t.NumCat]; last != len(t.CatThreshold) {
			return fmt.Errorf("cat_boundaries ends at %d, want len(cat_threshold) = %d", last, len(t.CatThreshold))
		}
	} else if t.NumCat < 0 {
		return fmt.Errorf("num_cat %d, want >= 0", t.NumCat)
	}
	for i := 0; i < ni; i++ {
		if f := t.SplitFeature[i]; f < 0 || f >= numFeatures {
			return fmt.Errorf("node %d splits on feature %d, want 0..%d", i, f, numFeatures-1)
		}
		if t.IsCategorical(i) {
			c := t.Threshold[i]
			if c != math.Trunc(c) || c < 0 || int(c) >= t.NumCat {
				return fmt.Errorf("categorical node %d has threshold %v, want a bitset index 0..%d", i, c, t.NumCat-1)
			}
		} else if math.IsNaN(t.Threshold[i]) {
			return fmt.Errorf("node %d has threshold NaN", i)
		}
		if t.MissingType(i) > missingNaN {
			return fmt.Errorf("node %d has decision_type %d with an unknown missing type", i, t.DecisionType[i])
		}
	}
	for i, v := range t.LeafValue {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("leaf %d has value %v", i, v)
		}
	}
	if ni == 0 {
		return nil
	}
	// Every node and leaf must be reached exactly once from the root.
	seenNode := make([]bool, ni)
	seenLeaf := make([]bool, nl)
	stack := []int{0}
	seenNode[0] = true
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range [2]int{t.LeftChild[n], t.RightChild[n]} {
			if c >= 0 {
				if c >= ni {
					return fmt.Errorf("node %d has child node %d, want < %d", n, c, ni)
				}
				if seenNode[c] {
					return fmt.Errorf("node %d is reached twice", c)
				}
				seenNode[c] = true
				stack = append(stack, c)
			} else {
				l := ^c
				if l >= nl {
					return fmt.Errorf("node %d has child leaf %d, want < %d", n, l, nl)
				}
				if seenLeaf[l] {
					return fmt.Errorf("leaf %d is reached twice", l)
				}
				seenLeaf[l] = true
			}
		}
	}
	for i, ok := range seenNode {
		if !ok {
			return fmt.Errorf("node %d is unreachable", i)
		}
	}
	for i, ok := range seenLeaf {
		if !ok {
			return fmt.Errorf("leaf %d is unreachable", i)
		}
	}
	return nil
}
