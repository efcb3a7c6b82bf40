package gbdt

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// pathModels are the models every prediction path must agree on: the hand
// model of each semantics (every kind of node, zero-as-missing trees that
// take the slow path, thresholds in and around LightGBM's zero band,
// categories beyond one bitset word), and trained binary, multiclass and
// regression models (categorical splits, missing values), also read with
// XGBoost's float32 semantics.
func pathModels(t *testing.T) map[string]*Model {
	binary := trainOrFatal(t, gbdttest.Synth(ObjBinary, 3000, 1), nil, map[string]string{"objective": "binary", "num_iterations": "30", "num_leaves": "31"})
	multi := trainOrFatal(t, gbdttest.Synth(ObjMulticlass, 3000, 2), nil, map[string]string{"objective": "multiclass", "num_class": "3", "num_iterations": "10", "num_leaves": "15"})
	deep := trainOrFatal(t, gbdttest.Synth(ObjRegression, 3000, 3), nil, map[string]string{"objective": "regression", "num_iterations": "20", "num_leaves": "63", "min_data_in_leaf": "2"})
	// Trees of more than 64 leaves: too wide for the bitvector form, the
	// model keeps the walks.
	wide := trainOrFatal(t, gbdttest.Synth(ObjRegression, 3000, 4), nil, map[string]string{"objective": "regression", "num_iterations": "12", "num_leaves": "100", "min_data_in_leaf": "2"})
	f32 := &Model{Version: binary.Version, Objective: binary.Objective, NumClass: binary.NumClass, Sigmoid: binary.Sigmoid,
		Features: binary.Features, Trees: binary.Trees, Float32Inputs: true}
	return map[string]*Model{
		"hand, LightGBM semantics":  handModel(false),
		"hand, float32 semantics":   handModel(true),
		"trained binary":            binary,
		"trained multiclass":        multi,
		"trained regression, deep":  deep,
		"trained regression, wide":  wide,
		"binary, float32 semantics": f32,
	}
}

// pathProbe returns n rows for model m drawn to reach every branch: normal
// values, each node's threshold and its neighbours, NaN, infinities, zeros
// and odd category codes (negative, fractional, beyond 2^31). Numeric
// columns carry Float64 when exact is set.
func pathProbe(m *Model, n int, exact bool, seed uint64) *ml.Dataset {
	r := rand.New(rand.NewPCG(seed, 11))
	var near [][]float64 // per feature: values around its thresholds
	cat := make([]bool, len(m.Features))
	near = make([][]float64, len(m.Features))
	for ti := range m.Trees {
		tr := &m.Trees[ti]
		for i := 0; i < tr.NumLeaves-1; i++ {
			f := tr.SplitFeature[i]
			if tr.IsCategorical(i) {
				cat[f] = true
				continue
			}
			near[f] = append(near[f], thresholdProbes(tr.Threshold[i])...)
		}
	}
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), 1e-40, -1e-40}
	codes := []float64{math.NaN(), -0.5, -1, -2, 2.9999999999, 3.5, 40, 1 << 31, 1e10, -1e-46}
	ds := &ml.Dataset{}
	for f := range m.Features {
		c := ml.Column{Name: m.Features[f].Name, Values: make([]float32, n)}
		if cat[f] || m.Features[f].Categorical {
			c.Kind = ml.Categorical
		}
		if exact && c.Kind == ml.Numeric {
			c.Float64 = make([]float64, n)
		}
		for i := range n {
			var v float64
			switch u := r.Float64(); {
			case c.Kind == ml.Categorical && u < 0.2:
				v = codes[r.IntN(len(codes))]
			case c.Kind == ml.Categorical:
				v = float64(r.IntN(48))
			case u < 0.15:
				v = specials[r.IntN(len(specials))]
			case u < 0.6 && len(near[f]) > 0:
				v = near[f][r.IntN(len(near[f]))]
			default:
				v = r.NormFloat64() * 2
			}
			c.Values[i] = float32(v)
			if c.Float64 != nil {
				c.Float64[i] = v
			}
		}
		ds.Columns = append(ds.Columns, c)
	}
	return ds
}

// treeRule is the raw prediction of ds's rows by each tree's own decision
// rule (Tree.leafFor), summed in model order: what every compiled path must
// reproduce bit for bit.
func treeRule(m *Model, ds *ml.Dataset) []float64 {
	k := m.NumOutputs()
	out := make([]float64, ds.NumRows()*k)
	for row := range ds.NumRows() {
		value := func(f int) float64 {
			if x := ds.Columns[f].Float64; x != nil {
				return x[row]
			}
			return float64(ds.Columns[f].Values[row])
		}
		for ti := range m.Trees {
			tr := &m.Trees[ti]
			out[row*k+ti%k] += tr.LeafValue[tr.leafFor(value, m.Float32Inputs)]
		}
	}
	return out
}

// rowsOf returns rows [lo, lo+n) of ds.
func rowsOf(ds *ml.Dataset, lo, n int) *ml.Dataset {
	sub := &ml.Dataset{Columns: make([]ml.Column, len(ds.Columns))}
	for i, c := range ds.Columns {
		c.Values = c.Values[lo : lo+n]
		if c.Float64 != nil {
			c.Float64 = c.Float64[lo : lo+n]
		}
		sub.Columns[i] = c
	}
	return sub
}

// Every path of the compiled predictor (one row walking four trees at a
// time, blocks of rows walking four rows at a time with their remainders,
// the parallel path of large batches, the slow path of zero-as-missing
// trees) predicts exactly what the trees' own decision rule does, on
// random rows with missing values, values at thresholds and odd category
// codes, for binary, multiclass and regression models of both semantics,
// with and without the inputs' doubles.
func TestPredictPathsAgree(t *testing.T) { forEachForm(t, testPredictPathsAgree) }

func testPredictPathsAgree(t *testing.T) {
	sizes := []int{1, 2, 3, 4, 5, 6, 7, 128, 131, 200, 1500}
	for name, m := range pathModels(t) {
		for _, exact := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/float64=%v", name, exact), func(t *testing.T) {
				probe := pathProbe(m, 1500+7, exact, 7)
				want := treeRule(m, probe)
				k := m.NumOutputs()
				for _, n := range sizes {
					lo := (n * 7) % (probe.NumRows() - n + 1)
					out := make([]float64, n*k)
					if err := m.PredictRawInto(rowsOf(probe, lo, n), out); err != nil {
						t.Fatal(err)
					}
					for i, v := range out {
						if w := want[lo*k+i]; v != w {
							t.Fatalf("%d rows: row %d output %d: %v, the trees' rule %v", n, lo+i/k, i%k, v, w)
						}
					}
				}
			})
		}
	}
}

// A batch whose columns are partly constant (a rank request: the user's
// features repeated on every candidate) predicts exactly what the trees'
// own rule does: the bitvector form marks those columns once for the block
// and each row starts from that. Constant columns of every kind (a number,
// a threshold, NaN, a category code, an odd code), alone, mixed with
// varying ones, or all of them, in blocks of one row to several.
func TestPredictConstantColumns(t *testing.T) { forEachForm(t, testPredictConstantColumns) }

func testPredictConstantColumns(t *testing.T) {
	for name, m := range pathModels(t) {
		t.Run(name, func(t *testing.T) {
			for seed := range uint64(6) {
				probe := pathProbe(m, 300, seed%2 == 0, 20+seed)
				nc := len(probe.Columns)
				for _, pick := range []struct {
					name  string
					fixed func(j int) bool
				}{
					{"none", func(int) bool { return false }},
					{"every other", func(j int) bool { return j%2 == int(seed%2) }},
					{"first half", func(j int) bool { return j < nc/2 }},
					{"all but one", func(j int) bool { return j != int(seed)%nc }},
					{"all", func(int) bool { return true }},
				} {
					for _, n := range []int{1, 2, 5, 200, 300} {
						ds := constantColumns(probe, n, pick.fixed, func(j int) int { return j*37 + int(seed)*11 })
						want := treeRule(m, ds)
						got := make([]float64, len(want))
						if err := m.PredictRawInto(ds, got); err != nil {
							t.Fatal(err)
						}
						for i := range got {
							if got[i] != want[i] && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
								t.Fatalf("seed %d, %s constant, %d rows: output %d: %v, the trees' rule %v", seed, pick.name, n, i, got[i], want[i])
							}
						}
					}
				}
			}
		})
	}
}

// constantColumns returns the first n rows of probe, with each column j
// that fixed picks set on every row to its value at row src(j) (modulo the
// probe's rows).
func constantColumns(probe *ml.Dataset, n int, fixed func(j int) bool, src func(j int) int) *ml.Dataset {
	ds := rowsOf(probe, 0, n)
	for j := range ds.Columns {
		if !fixed(j) {
			continue
		}
		c, from := &ds.Columns[j], &probe.Columns[j]
		at := src(j) % probe.NumRows()
		c.Values = slices.Repeat(from.Values[at:at+1], n)
		if from.Float64 != nil {
			c.Float64 = slices.Repeat(from.Float64[at:at+1], n)
		}
	}
	return ds
}

// PredictInto is Predict into the caller's slice, and says so when the
// slice has the wrong size.
func TestPredictInto(t *testing.T) {
	m := pathModels(t)["trained multiclass"]
	probe := pathProbe(m, 50, true, 3)
	want, err := m.Predict(probe)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(want))
	for i := range out {
		out[i] = 42 // overwritten, not added to
	}
	if err := m.PredictInto(probe, out); err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if out[i] != want[i] {
			t.Fatalf("output %d: PredictInto %v, Predict %v", i, out[i], want[i])
		}
	}
	for _, size := range []int{0, len(want) - 1, len(want) + 3} {
		if err := m.PredictInto(probe, make([]float64, size)); !errors.Is(err, ErrData) {
			t.Errorf("output of %d values for %d: %v, want ErrData", size, len(want), err)
		}
	}
}

// With the caller's output slice, predicting a serving request (one row, a
// batch of 200) allocates nothing.
func TestPredictIntoAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop its items")
	}
	for name, m := range pathModels(t) {
		for _, n := range []int{1, 200} {
			probe := pathProbe(m, n, true, 5)
			out := make([]float64, n*m.NumOutputs())
			if allocs := testing.AllocsPerRun(50, func() {
				if err := m.PredictInto(probe, out); err != nil {
					t.Fatal(err)
				}
			}); allocs != 0 {
				t.Errorf("%s, %d rows: %v allocations per call", name, n, allocs)
			}
		}
	}
}

// Bins are exact: a value's bin among a feature's thresholds orders it as
// the double does, at every threshold, whether searched alone (numBin) or
// in a column (binColumn: groups of four, a tail, repeated values).
func TestNumBin(t *testing.T) {
	ts := []float64{math.Inf(-1), -2, -kZeroThreshold, 0, 1e-40, 0.1, 3, math.Inf(1)}
	vals := []float64{math.Inf(-1), -3, -2, math.Nextafter(-2, 0), -1e-35, 0, math.Copysign(0, -1), 1e-41, 1e-40, 0.1,
		math.Nextafter(0.1, 1), 3, 4, math.Inf(1), math.MaxFloat64, -math.MaxFloat64}
	check := func(how string, ts []float64, v float64, b uint32) {
		t.Helper()
		if v != v {
			if b != nanBin {
				t.Errorf("%s: NaN's bin is %d, want nanBin", how, b)
			}
			return
		}
		for j, th := range ts {
			if (v <= th) != (b <= uint32(j)) {
				t.Errorf("%s: value %v, threshold %d (%v): v <= t is %v, bin %d <= %d is %v", how, v, j, th, v <= th, b, j, b <= uint32(j))
			}
		}
	}
	for _, thr := range [][]float64{ts, ts[:7], ts[1:6]} {
		s := newBoundSearch(thr)
		for _, v := range append(vals, math.NaN()) {
			check(fmt.Sprintf("numBin, %d thresholds", len(thr)), thr, v, numBin(s, v))
		}
	}
	// A column of the values, each repeated r times, NaN among them: every
	// group of four and the tail, equal runs across groups and within one.
	s := newBoundSearch(ts)
	for _, rep := range []int{1, 3, 4, 5} {
		var col []float64
		for _, v := range append([]float64{math.NaN(), math.NaN()}, append(vals, math.NaN())...) {
			for range rep {
				col = append(col, v)
			}
		}
		const w, f = 6, 2
		bins := make([]uint32, (len(col)+3)/4*4*w)
		binColumn(s, col, bins, w, f)
		for r, v := range col {
			check(fmt.Sprintf("binColumn, runs of %d, row %d", rep, r), ts, v, bins[binIndex(w, r, f)])
		}
		col32 := make([]float32, len(col))
		for r, v := range col {
			col32[r] = float32(v)
		}
		binColumn(s, col32, bins, w, f)
		for r, v := range col32 {
			check(fmt.Sprintf("binColumn float32, runs of %d, row %d", rep, r), ts, float64(v), bins[binIndex(w, r, f)])
		}
	}
}

// The bitvector form exists exactly for the models whose compact trees all
// have at most 64 leaves (so that TestPredictPathsAgree checks both it and
// the walks), and its per-tree leaves are each tree's, left to right.
func TestBitvectorFormChosen(t *testing.T) {
	forms := map[bool]int{}
	for name, m := range pathModels(t) {
		p, err := m.predictor()
		if err != nil {
			t.Fatal(err)
		}
		forms[p.qs != nil]++
		widest := 0
		for _, ft := range p.trees {
			if !ft.slow {
				widest = max(widest, ft.tree.NumLeaves)
			}
		}
		if got, want := p.qs != nil, widest <= qsMaxLeaves; got != want {
			t.Errorf("%s: widest compact tree has %d leaves, bitvector form %v, want %v", name, widest, got, want)
		}
		if p.qs == nil {
			continue
		}
		for ti, ft := range p.trees {
			if ft.slow {
				continue
			}
			base := int(p.qs.leafBase[ti])
			// A tree's leaves, left to right, are its leaf nodes in
			// preorder (the tree's nodes run up to the next tree's root).
			var want []float64
			for i := int(ft.root); i < len(p.nodes) && (ti+1 == len(p.trees) || i < int(p.trees[ti+1].root)); i++ {
				if p.nodes[i].meta&metaLeaf != 0 {
					want = append(want, p.leafVal[i])
				}
			}
			got := p.qs.leaves[base : base+len(want)]
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s: tree %d leaf %d: %v, want %v", name, ti, i, got[i], want[i])
				}
			}
		}
	}
	if forms[true] == 0 || forms[false] == 0 {
		t.Errorf("models in the bitvector form: %d, with walks: %d; the path tests need both", forms[true], forms[false])
	}
}

// Categorical nodes tested one by one (a feature whose per-code lists
// would exceed catLimit) predict what the lists do: the trees' own rule.
func TestCategoriesOneByOne(t *testing.T) { forEachForm(t, testCategoriesOneByOne) }

func testCategoriesOneByOne(t *testing.T) {
	defer func(l int) { catLimit = l }(catLimit)
	catLimit = 0
	tested := 0
	for name, m := range pathModels(t) {
		p := compile(m)
		if p.qs == nil || len(p.qs.catFeats) == 0 {
			continue
		}
		for _, f := range p.qs.catFeats {
			if p.qs.catList != nil && p.qs.catList[f] != nil {
				t.Fatalf("%s: feature %d listed by code with catLimit 0", name, f)
			}
		}
		tested++
		for _, n := range []int{1, 200} {
			probe := pathProbe(m, n, true, 9)
			// And with every other column constant, which the block marks
			// once (markConstant), categorical nodes one by one included.
			for _, ds := range []*ml.Dataset{probe, constantColumns(probe, n, func(j int) bool { return j%2 == 0 }, func(j int) int { return 3 * j })} {
				want := treeRule(m, ds)
				out := make([]float64, len(want))
				p.predictInto(ds, out)
				for i := range out {
					if out[i] != want[i] {
						t.Fatalf("%s, %d rows: output %d: %v, the trees' rule %v", name, n, i, out[i], want[i])
					}
				}
			}
		}
	}
	if tested == 0 {
		t.Fatal("no model in the bitvector form has categorical nodes")
	}
}
