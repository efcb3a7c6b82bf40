package gbdt

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// LightGBM's kZeroThreshold is the float 1e-35f, printed in its models as
// 1.0000000180025095e-35.
func TestZeroThresholdIsLightGBMs(t *testing.T) {
	if kZeroThreshold != 1.0000000180025095e-35 {
		t.Fatalf("kZeroThreshold = %v, want 1.0000000180025095e-35", kZeroThreshold)
	}
}

// float32Boundary(t) is the largest double that rounds to a float32 <= t:
// checked against Go's own rounding on both sides of it, for random float32
// values and the special ones (zeros, subnormals, the largest, infinities).
func TestFloat32Boundary(t *testing.T) {
	ts := []float32{0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
		math.MaxFloat32, -math.MaxFloat32, float32(math.Inf(-1)), 1, -1, 0.1, 0.5, 1 << 24, 0x1p-126, -0x1p-126}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		f := math.Float32frombits(r.Uint32())
		if f == f && !math.IsInf(float64(f), 0) {
			ts = append(ts, f)
		}
	}
	for _, th := range ts {
		b := float32Boundary(th)
		if !(float32(b) <= th) {
			t.Fatalf("t=%v: boundary %v rounds to %v > t", th, b, float32(b))
		}
		if up := math.Nextafter(b, math.Inf(1)); float32(up) <= th {
			t.Fatalf("t=%v: the double after boundary %v, %v, still rounds to %v <= t", th, b, up, float32(up))
		}
	}
	if b := float32Boundary(float32(math.Inf(1))); !math.IsInf(b, 1) {
		t.Fatalf("boundary of +Inf is %v", b)
	}
}

// zeroDropThreshold folds LightGBM's reading of |x| <= kZeroThreshold as 0
// into the threshold: the same decision for values around the band.
func TestZeroDropThreshold(t *testing.T) {
	kz := kZeroThreshold
	probe := []float64{0, math.Copysign(0, -1), 5e-36, -5e-36, kz, -kz, 1e-35, -1e-35, 1e-30, -1e-30, 1, -1,
		math.Nextafter(kz, 1), math.Nextafter(-kz, -1), math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64}
	for _, th := range probe {
		m := zeroDropThreshold(th)
		for _, x := range probe {
			xd := x
			if math.Abs(x) <= kz {
				xd = 0
			}
			if want, got := xd <= th, x <= m; want != got {
				t.Errorf("threshold %v (moved to %v), x=%v: left=%v, want %v", th, m, x, got, want)
			}
		}
	}
}

// thresholdProbes returns the values around threshold th a parity test
// needs: th itself, the doubles next to it, its float32 neighbours and a
// double between th and its float32 rounding.
func thresholdProbes(th float64) []float64 {
	f := float32(th)
	out := []float64{th, math.Nextafter(th, math.Inf(1)), math.Nextafter(th, math.Inf(-1)), float64(f),
		float64(math.Nextafter32(f, float32(math.Inf(1)))), float64(math.Nextafter32(f, float32(math.Inf(-1)))),
		th + (float64(f)-th)/2}
	b := float32Boundary(float32Below(th))
	return append(out, b, math.Nextafter(b, math.Inf(1)))
}

// handModel is one tree per kind of node: numeric (missing NaN, None,
// Zero) with thresholds that are not float32 values, in and around
// LightGBM's zero band, and categorical.
func handModel(f32 bool) *Model {
	thr := []float64{0.1, 1.0000000180025095e-35, -5e-36, 0.30000000000000004, 2}
	m := &Model{Version: ModelVersion, Objective: ObjRegression, NumClass: 1, Float32Inputs: f32,
		Features: []Feature{{Name: "a"}, {Name: "b"}, {Name: "c", Categorical: true}}}
	for i, th := range thr {
		for _, mt := range []uint8{missingNone, missingNaN, missingZero} {
			if f32 && mt == missingZero {
				continue
			}
			// Three nodes: root on a, then on b, so leaves differ per path.
			tr := Tree{NumLeaves: 4, SplitFeature: []int{0, 1, 1}, Threshold: []float64{th, -th, th * 3},
				DecisionType: []uint8{mt<<2 | uint8(i%2)<<1, mt << 2, mt<<2 | dtDefaultLeft},
				LeftChild:    []int{1, ^0, ^1}, RightChild: []int{2, ^2, ^3}, LeafValue: []float64{1, 10, 100, 1000}, Shrinkage: 1}
			m.Trees = append(m.Trees, tr)
		}
	}
	cat := Tree{NumLeaves: 2, SplitFeature: []int{2}, Threshold: []float64{0}, DecisionType: []uint8{dtCategorical | missingNaN<<2},
		LeftChild: []int{^0}, RightChild: []int{^1}, LeafValue: []float64{10000, 20000}, Shrinkage: 1}
	cat.AddCatBitset([]int{0, 3, 40})
	m.Trees = append(m.Trees, cat)
	return m
}

// The compiled predictor, fed doubles (Column.Float64), finds the leaf the
// model's decision rule does for values at, above and below each threshold
// and its float32 rounding, NaN, infinities and odd category codes, on the
// one-row, four-row and slow paths, with both semantics.
func TestPredictorAtThresholds(t *testing.T) {
	for _, f32 := range []bool{false, true} {
		m := handModel(f32)
		var vals []float64
		for _, tr := range m.Trees {
			for _, th := range tr.Threshold {
				vals = append(vals, thresholdProbes(th)...)
			}
		}
		vals = append(vals, math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), 1e-40, -1e-40, 1e39)
		cats := []float64{math.NaN(), 0, -0.5, -1, 2.9999999999, 3, 3.5, 40, 1 << 24, 1 << 31, -1e-46, 1e10}
		n := len(vals) * 3
		ds := &ml.Dataset{Columns: []ml.Column{{Name: "a"}, {Name: "b"}, {Name: "c", Kind: ml.Categorical}}}
		for i := range ds.Columns {
			ds.Columns[i].Values = make([]float32, n)
			ds.Columns[i].Float64 = make([]float64, n)
		}
		for r := range n {
			row := []float64{vals[r%len(vals)], vals[(r*7+3)%len(vals)], cats[r%len(cats)]}
			for f, v := range row {
				ds.Columns[f].Float64[r] = v
				ds.Columns[f].Values[r] = float32(v)
			}
		}
		raw, err := m.PredictRaw(ds)
		if err != nil {
			t.Fatal(err)
		}
		for r := range n {
			var want float64
			for ti := range m.Trees {
				tr := &m.Trees[ti]
				want += tr.LeafValue[tr.leafFor(func(f int) float64 { return ds.Columns[f].Float64[r] }, f32)]
			}
			if raw[r] != want {
				t.Fatalf("f32=%v row %d (a=%v b=%v c=%v): predictor %v, decision rule %v", f32, r,
					ds.Columns[0].Float64[r], ds.Columns[1].Float64[r], ds.Columns[2].Float64[r], raw[r], want)
			}
		}
	}
}

// The decision rule itself, on hand-picked cases: LightGBM compares the
// double, XGBoost its float32 rounding.
func TestDecideSemantics(t *testing.T) {
	tr := Tree{NumLeaves: 2, SplitFeature: []int{0}, Threshold: []float64{0.1}, DecisionType: []uint8{missingNaN << 2},
		LeftChild: []int{^0}, RightChild: []int{^1}, LeafValue: []float64{0, 1}}
	below := 0.1 - 1e-17 // rounds to 0.1 in float32, which is above 0.1
	if got := tr.decide(0, below, false); got != ^0 {
		t.Errorf("LightGBM semantics: %v <= 0.1 went right", below)
	}
	// As XGBoost: the threshold is a float32, the input rounded.
	tr.Threshold[0] = float64(float32Below(0.1))
	if got := tr.decide(0, below, true); got != ^1 {
		t.Errorf("float32 semantics: float32(%v) = %v > %v went left", below, float32(below), tr.Threshold[0])
	}
	cat := Tree{NumLeaves: 2, SplitFeature: []int{0}, Threshold: []float64{0}, DecisionType: []uint8{dtCategorical},
		LeftChild: []int{^0}, RightChild: []int{^1}, LeafValue: []float64{0, 1}}
	cat.AddCatBitset([]int{0, 3})
	for _, c := range []struct {
		v         float64
		f32, left bool
	}{
		{-0.5, false, true}, {-0.5, true, false}, {-1, false, false}, {2.9999999999, false, false},
		{2.9999999999, true, true}, {3.7, false, true}, {math.NaN(), false, false}, {1 << 31, false, false},
	} {
		if got := cat.decide(0, c.v, c.f32) == ^0; got != c.left {
			t.Errorf("category %v (f32=%v): left=%v, want %v", c.v, c.f32, got, c.left)
		}
	}
}

// A float32-input model converts to LightGBM's semantics exactly (numeric
// nodes), or says why it cannot.
func TestWithFloat64Inputs(t *testing.T) {
	m := handModel(true)
	m.Trees = m.Trees[:len(m.Trees)-1] // no categorical tree
	_, err := m.WithFloat64Inputs()
	if !errors.Is(err, ErrModel) {
		t.Fatalf("thresholds in the zero band: %v, want ErrModel", err)
	}
	var keep []Tree
	for _, tr := range m.Trees {
		if math.Abs(tr.Threshold[0]) > 1e-30 {
			keep = append(keep, tr)
		}
	}
	m.Trees = keep
	conv, err := m.WithFloat64Inputs()
	if err != nil {
		t.Fatal(err)
	}
	if conv.Float32Inputs || m.Trees[0].Threshold[0] == conv.Trees[0].Threshold[0] {
		t.Fatalf("converted model keeps float32 semantics or the original was modified")
	}
	for _, tr := range m.Trees {
		for _, th := range tr.Threshold {
			for _, x := range append(thresholdProbes(th), thresholdProbes(-th)...) {
				for ti := range m.Trees {
					a := m.Trees[ti].leafFor(func(int) float64 { return x }, true)
					b := conv.Trees[ti].leafFor(func(int) float64 { return x }, false)
					if a != b {
						t.Fatalf("tree %d, x=%v: leaf %d with float32 inputs, %d converted", ti, x, a, b)
					}
				}
			}
		}
	}
	if _, err := handModel(true).WithFloat64Inputs(); !errors.Is(err, ErrModel) {
		t.Fatalf("categorical float32 model converted: %v", err)
	}
}

// TestLeafOfRow: the closure-free walk of training's validation scores
// reaches the leaf leafFor reaches, on every tree and row of data with
// categories, missing values and exact zeros.
func TestLeafOfRow(t *testing.T) {
	train := gbdttest.Synth(ObjBinary, 3000, 7)
	rows := gbdttest.Synth(ObjBinary, 500, 8)
	// Zero is its own bin, and values within kZeroThreshold of it are zero.
	tiny := []float32{0, 1e-38, -1e-38, float32(math.Copysign(0, -1))}
	for j := range train.Columns {
		if train.Columns[j].Kind == ml.Categorical {
			continue
		}
		for r := 0; r < train.NumRows(); r += 5 {
			train.Columns[j].Values[r] = 0
		}
		for r := j; r < rows.NumRows(); r += 3 {
			rows.Columns[j].Values[r] = tiny[r%len(tiny)]
		}
	}
	m := trainOrFatal(t, train, nil, map[string]string{"objective": "binary", "num_iterations": "30", "num_leaves": "15"})
	for i := range m.Trees {
		tr := &m.Trees[i]
		for r := range rows.NumRows() {
			want := tr.leafFor(func(f int) float64 { return float64(rows.Columns[f].Values[r]) }, false)
			if got := tr.leafOfRow(rows.Columns, r); got != want {
				t.Fatalf("tree %d, row %d: leafOfRow %d, leafFor %d", i, r, got, want)
			}
		}
	}
}
