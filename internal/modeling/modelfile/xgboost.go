package modelfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
)

// XGBoost models (dmlc/xgboost doc/model.schema), saved as JSON or UBJSON
// (XGBoost's default since 2.1), read into gbdt models that predict the
// same. XGBoost rounds every input to float32 and sends a row left when
// float32(value) < split_condition (a float32). The gbdt model keeps those
// semantics (Float32Inputs): a threshold becomes the largest float32 below
// the condition, and the predictor compares the unrounded double with the
// exact double boundary of that rounding (gbdt's float32Boundary), so a
// value between two float32 numbers takes XGBoost's branch. XGBoost
// accumulates predictions in float32, Atrium in float64, so the two agree
// to float32 rounding (about 1e-7 relative) with the same leaves.

// maxXGBoostNodes bounds the nodes of one tree read from a file.
const maxXGBoostNodes = 1 << 24

// maxFeatures bounds the features of a model read from a file, which a
// corrupt header could otherwise set to billions.
const maxFeatures = 1 << 20

type xgbFile struct {
	Version []int `json:"version"`
	Learner *struct {
		FeatureNames      []string `json:"feature_names"`
		FeatureTypes      []string `json:"feature_types"`
		LearnerModelParam struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
			NumTarget  string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
		GradientBooster xgbBooster `json:"gradient_booster"`
	} `json:"learner"`
}

// xgbBooster is decoded in the same pass as the rest of the file (a
// 1000-tree model is megabytes of trees: each pass over them counts). A
// gblinear booster's model has no trees and is refused by name.
type xgbBooster struct {
	Name  string       `json:"name"`
	Model xgbTreeModel `json:"model"`
	// dart
	Gbtree *struct {
		Model xgbTreeModel `json:"model"`
	} `json:"gbtree"`
	WeightDrop []float64 `json:"weight_drop"`
}

type xgbTreeModel struct {
	Trees    []xgbTree `json:"trees"`
	TreeInfo []int     `json:"tree_info"`
}

type xgbTree struct {
	LeftChildren       []int     `json:"left_children"`
	RightChildren      []int     `json:"right_children"`
	SplitIndices       []int     `json:"split_indices"`
	SplitConditions    []float64 `json:"split_conditions"`
	DefaultLeft        []int     `json:"default_left"`
	SplitType          []int     `json:"split_type"`
	SumHessian         []float64 `json:"sum_hessian"`
	LossChanges        []float64 `json:"loss_changes"`
	Categories         []int     `json:"categories"`
	CategoriesNodes    []int     `json:"categories_nodes"`
	CategoriesSegments []int     `json:"categories_segments"`
	CategoriesSizes    []int     `json:"categories_sizes"`
	TreeParam          struct {
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
}

// ReadXGBoost reads an XGBoost model saved as JSON or UBJSON (recognised by
// content) by XGBoost 1.0 or later: gbtree or dart boosters with binary,
// regression (squared, absolute, pseudo-Huber), multiclass and ranking
// objectives.
func ReadXGBoost(r io.Reader) (*gbdt.Model, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read xgboost model: %w", err)
	}
	m, err := parseXGBoost(data)
	if err != nil {
		return nil, fmt.Errorf("read xgboost model: %w", err)
	}
	return m, nil
}

func parseXGBoost(data []byte) (*gbdt.Model, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty file", errFormat)
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: not JSON or UBJSON (first byte %q, want '{')", errFormat, trimmed[0])
	}
	var f xgbFile
	err := json.Unmarshal(data, &f)
	if _, syntax := err.(*json.SyntaxError); syntax {
		// UBJSON: decode and re-encode as JSON for one decoding path.
		v, uerr := decodeUBJSON(data)
		if uerr != nil {
			return nil, fmt.Errorf("%w: neither JSON nor UBJSON: %v", errFormat, uerr)
		}
		if data, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("%w: %v", errFormat, err)
		}
		f = xgbFile{}
		err = json.Unmarshal(data, &f)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errFormat, err)
	}
	if f.Learner == nil || len(f.Version) == 0 {
		return nil, fmt.Errorf("%w: no \"learner\" or \"version\": not an XGBoost model", errFormat)
	}
	if f.Version[0] < 1 || f.Version[0] > 3 {
		return nil, fmt.Errorf("%w: XGBoost version %v, want 1.x to 3.x", ErrUnsupported, f.Version)
	}
	l := f.Learner
	numFeature, err := strconv.Atoi(l.LearnerModelParam.NumFeature)
	if err != nil || numFeature < 0 || numFeature > maxFeatures {
		return nil, fmt.Errorf("%w: num_feature %q, want a count up to %d", errFormat, l.LearnerModelParam.NumFeature, maxFeatures)
	}
	if t := l.LearnerModelParam.NumTarget; t != "" && t != "0" && t != "1" {
		return nil, fmt.Errorf("%w: multi-target models (num_target=%s) are not supported", ErrUnsupported, t)
	}
	numClass := 0
	if s := l.LearnerModelParam.NumClass; s != "" {
		if numClass, err = strconv.Atoi(s); err != nil || numClass < 0 || numClass > 1<<16 {
			return nil, fmt.Errorf("%w: num_class %q, want a count", errFormat, s)
		}
	}
	m := &gbdt.Model{Version: gbdt.ModelVersion, NumClass: 1, Float32Inputs: true}
	objective := l.Objective.Name
	probLink := false // base_score is a probability: margin = logit(base_score)
	switch objective {
	case "binary:logistic", "reg:logistic":
		m.Objective, m.Sigmoid, probLink = gbdt.ObjBinary, 1, true
	case "binary:logitraw":
		m.Objective = gbdt.ObjRegression // XGBoost outputs the raw margin
		probLink = true
	case "reg:squarederror", "reg:linear":
		m.Objective = gbdt.ObjRegression
	case "reg:pseudohubererror":
		m.Objective = gbdt.ObjHuber
	case "reg:absoluteerror":
		m.Objective = gbdt.ObjRegressionL1
	case "multi:softprob", "multi:softmax":
		if numClass < 2 {
			return nil, fmt.Errorf("%w: %s with num_class %d", errFormat, objective, numClass)
		}
		m.Objective, m.NumClass = gbdt.ObjMulticlass, numClass
	case "rank:ndcg", "rank:pairwise", "rank:map":
		m.Objective = gbdt.ObjLambdarank
	default:
		return nil, fmt.Errorf("%w: objective %q is not supported", ErrUnsupported, objective)
	}
	k := m.NumClass
	base, err := parseBaseScore(l.LearnerModelParam.BaseScore, k)
	if err != nil {
		return nil, err
	}
	if probLink {
		for i, b := range base {
			if !(b > 0 && b < 1) {
				return nil, fmt.Errorf("%w: base_score %v, want a probability for %s", errFormat, b, objective)
			}
			base[i] = math.Log(b / (1 - b))
		}
	}

	gb := &l.GradientBooster
	var tm *xgbTreeModel
	var weights []float64
	switch gb.Name {
	case "gbtree":
		tm = &gb.Model
	case "dart":
		if gb.Gbtree == nil {
			return nil, fmt.Errorf("%w: dart booster without \"gbtree\"", errFormat)
		}
		tm = &gb.Gbtree.Model
		weights = gb.WeightDrop
	case "gblinear":
		return nil, fmt.Errorf("%w: linear boosters (gblinear) are not supported", ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: booster %q, want gbtree or dart", errFormat, gb.Name)
	}
	if len(tm.TreeInfo) != len(tm.Trees) {
		return nil, fmt.Errorf("%w: tree_info has %d entries for %d trees", errFormat, len(tm.TreeInfo), len(tm.Trees))
	}
	if weights != nil && len(weights) != len(tm.Trees) {
		return nil, fmt.Errorf("%w: weight_drop has %d entries for %d trees", errFormat, len(weights), len(tm.Trees))
	}

	m.Features = make([]gbdt.Feature, numFeature)
	if n := len(l.FeatureNames); n != 0 && n != numFeature {
		return nil, fmt.Errorf("%w: %d feature_names for num_feature %d", errFormat, n, numFeature)
	}
	if n := len(l.FeatureTypes); n != 0 && n != numFeature {
		return nil, fmt.Errorf("%w: %d feature_types for num_feature %d", errFormat, n, numFeature)
	}
	for i := range m.Features {
		name := "f" + strconv.Itoa(i)
		if len(l.FeatureNames) > 0 {
			name = l.FeatureNames[i]
		}
		m.Features[i] = gbdt.Feature{Name: name}
		if len(l.FeatureTypes) > 0 && l.FeatureTypes[i] == "c" {
			m.Features[i].Categorical = true
		}
	}

	// Trees per class, in file order; Atrium's layout wants one tree per
	// class per iteration, so classes with fewer trees get constant ones.
	perClass := make([][]gbdt.Tree, k)
	for i := range tm.Trees {
		c := tm.TreeInfo[i]
		if c < 0 || c >= k {
			return nil, fmt.Errorf("%w: tree %d is for class %d, want 0..%d", errFormat, i, c, k-1)
		}
		w := 1.0
		if weights != nil {
			w = weights[i]
		}
		t, err := convertXGBTree(&tm.Trees[i], w, numFeature)
		if err != nil {
			return nil, fmt.Errorf("%w: tree %d: %w", errFormat, i, err)
		}
		perClass[c] = append(perClass[c], *t)
	}
	iters := 1
	for _, ts := range perClass {
		iters = max(iters, len(ts))
	}
	if pad := iters*k - len(tm.Trees); pad > len(tm.Trees)+k {
		return nil, fmt.Errorf("%w: tree_info gives the %d classes very uneven tree counts (%d trees, up to %d for one class)",
			errFormat, k, len(tm.Trees), iters)
	}
	for it := 0; it < iters; it++ {
		for c := 0; c < k; c++ {
			var t gbdt.Tree
			if it < len(perClass[c]) {
				t = perClass[c][it]
			} else {
				t = constantTree(0)
			}
			if it == 0 {
				// Fold the base score into the first tree, as LightGBM folds
				// its initial score.
				for j := range t.LeafValue {
					t.LeafValue[j] += base[c]
				}
			}
			m.Trees = append(m.Trees, t)
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func constantTree(v float64) gbdt.Tree {
	return gbdt.Tree{NumLeaves: 1, LeafValue: []float64{v}, Shrinkage: 1}
}

// parseBaseScore reads base_score: a number, or (XGBoost >= 2) a bracketed
// list, one per class for multiclass models of XGBoost >= 3.1.
func parseBaseScore(s string, k int) ([]float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return make([]float64, k), nil
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	parts := strings.Split(inner, ",")
	vals := make([]float64, 0, len(parts))
	for _, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: base_score %q, want numbers", errFormat, clip(s))
		}
		vals = append(vals, float64(float32(v))) // a float32 in XGBoost, printed as a decimal
	}
	switch len(vals) {
	case k:
		return vals, nil
	case 1:
		out := make([]float64, k)
		for i := range out {
			out[i] = vals[0]
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: base_score has %d values, want 1 or %d", errFormat, len(vals), k)
}

// convertXGBTree maps an XGBoost tree onto Atrium's layout: internal nodes
// and leaves numbered in breadth-first order, thresholds moved from "<" to
// "<=", categorical splits with their children swapped (XGBoost sends the
// listed categories right, Atrium left).
func convertXGBTree(x *xgbTree, weight float64, numFeature int) (*gbdt.Tree, error) {
	n := len(x.LeftChildren)
	if n == 0 || n > maxXGBoostNodes {
		return nil, fmt.Errorf("%d nodes", n)
	}
	if s := x.TreeParam.SizeLeafVector; s != "" && s != "0" && s != "1" {
		return nil, fmt.Errorf("%w: vector leaves (size_leaf_vector=%s) are not supported", ErrUnsupported, s)
	}
	for _, a := range []struct {
		name string
		l    int
	}{{"right_children", len(x.RightChildren)}, {"split_indices", len(x.SplitIndices)},
		{"split_conditions", len(x.SplitConditions)}, {"default_left", len(x.DefaultLeft)}} {
		if a.l != n {
			return nil, fmt.Errorf("%s has %d entries, want %d", a.name, a.l, n)
		}
	}
	if len(x.SplitType) != 0 && len(x.SplitType) != n {
		return nil, fmt.Errorf("split_type has %d entries, want %d", len(x.SplitType), n)
	}
	hasCover := len(x.SumHessian) == n
	// Categories of each categorical node.
	cats := map[int][]int{}
	if len(x.CategoriesNodes) != len(x.CategoriesSegments) || len(x.CategoriesNodes) != len(x.CategoriesSizes) {
		return nil, fmt.Errorf("categories_nodes, _segments and _sizes have %d, %d and %d entries",
			len(x.CategoriesNodes), len(x.CategoriesSegments), len(x.CategoriesSizes))
	}
	for j, node := range x.CategoriesNodes {
		lo, size := x.CategoriesSegments[j], x.CategoriesSizes[j]
		if lo < 0 || size < 0 || lo+size > len(x.Categories) || node < 0 || node >= n {
			return nil, fmt.Errorf("categories entry %d out of range", j)
		}
		cats[node] = x.Categories[lo : lo+size]
	}

	t := &gbdt.Tree{Shrinkage: 1}
	internalID := make([]int, n) // XGBoost node -> Atrium internal node, or ^leaf
	seen := make([]bool, n)
	queue := []int{0}
	seen[0] = true
	var order []int
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		order = append(order, i)
		if x.LeftChildren[i] == -1 {
			internalID[i] = ^t.NumLeaves
			t.NumLeaves++
			continue
		}
		internalID[i] = len(t.SplitFeature)
		t.SplitFeature = append(t.SplitFeature, 0) // filled below
		for _, c := range [2]int{x.LeftChildren[i], x.RightChildren[i]} {
			if c <= 0 || c >= n || seen[c] {
				return nil, fmt.Errorf("node %d has child %d: not a tree", i, c)
			}
			seen[c] = true
			queue = append(queue, c)
		}
	}
	ni := len(t.SplitFeature)
	if t.NumLeaves != ni+1 {
		return nil, fmt.Errorf("%d leaves for %d splits", t.NumLeaves, ni)
	}
	t.Threshold = make([]float64, ni)
	t.DecisionType = make([]uint8, ni)
	t.LeftChild = make([]int, ni)
	t.RightChild = make([]int, ni)
	t.SplitGain = make([]float64, ni)
	t.LeafValue = make([]float64, t.NumLeaves)
	if hasCover {
		t.InternalWeight = make([]float64, ni)
		t.LeafWeight = make([]float64, t.NumLeaves)
	}
	childID := func(c int) int { return internalID[c] }
	for _, i := range order {
		id := internalID[i]
		if id < 0 {
			leaf := ^id
			// XGBoost's leaf values are float32: JSON prints them as the
			// shortest decimal, which is not the float32 value itself.
			v := float64(float32(x.SplitConditions[i])) * weight
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("leaf node %d has value %v", i, v)
			}
			t.LeafValue[leaf] = v
			if hasCover {
				t.LeafWeight[leaf] = x.SumHessian[i]
			}
			continue
		}
		f := x.SplitIndices[i]
		if f < 0 || f >= numFeature {
			return nil, fmt.Errorf("node %d splits on feature %d, want 0..%d", i, f, numFeature-1)
		}
		t.SplitFeature[id] = f
		if len(x.LossChanges) == n {
			t.SplitGain[id] = x.LossChanges[i]
		}
		if hasCover {
			t.InternalWeight[id] = x.SumHessian[i]
		}
		left, right := childID(x.LeftChildren[i]), childID(x.RightChildren[i])
		defaultLeft := x.DefaultLeft[i] != 0
		if len(x.SplitType) == n && x.SplitType[i] == 1 {
			cs, ok := cats[i]
			if !ok {
				return nil, fmt.Errorf("categorical node %d has no categories", i)
			}
			for _, c := range cs {
				if c < 0 || c >= 1<<24 {
					return nil, fmt.Errorf("categorical node %d has category %d", i, c)
				}
			}
			// Listed categories go right in XGBoost: make them Atrium's left.
			t.LeftChild[id], t.RightChild[id] = right, left
			t.Threshold[id] = float64(t.AddCatBitset(cs))
			t.DecisionType[id] = 1 | 2<<2 // categorical, missing NaN
			if !defaultLeft {
				t.DecisionType[id] |= 2 // NaN to XGBoost's right = Atrium's left
			}
			continue
		}
		c := x.SplitConditions[i]
		if math.IsNaN(c) {
			return nil, fmt.Errorf("node %d has split condition NaN", i)
		}
		if math.IsInf(float64(float32(c)), -1) {
			// Nothing is below -Inf: no "<=" threshold expresses it.
			return nil, fmt.Errorf("node %d has split condition %v: no value is below it", i, c)
		}
		t.LeftChild[id], t.RightChild[id] = left, right
		// value < c for float32 values is value <= the float32 before c.
		// (c is a float32 number: XGBoost writes float32 values.)
		t.Threshold[id] = float64(math.Nextafter32(float32(c), float32(math.Inf(-1))))
		t.DecisionType[id] = 2 << 2 // missing NaN
		if defaultLeft {
			t.DecisionType[id] |= 2
		}
	}
	return t, nil
}
