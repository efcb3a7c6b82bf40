package gbdt

import (
	"math"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
)

// Contributions plus the expected value sum to the raw prediction, for every
// row and output.
func TestContributionsSumToRaw(t *testing.T) {
	for _, task := range []string{ObjBinary, ObjMulticlass, ObjRegression} {
		kv := map[string]string{"objective": task, "num_iterations": "12", "num_leaves": "15"}
		if task == ObjMulticlass {
			kv["num_class"] = "3"
		}
		m := trainOrFatal(t, gbdttest.Synth(task, 1500, 3), nil, kv)
		probe := gbdttest.Synth(task, 200, 4)
		raw, _ := m.PredictRaw(probe)
		phi, err := m.Contributions(probe)
		if err != nil {
			t.Fatal(err)
		}
		k, nf := m.NumOutputs(), len(m.Features)
		if len(phi) != probe.NumRows()*k*(nf+1) {
			t.Fatalf("%d contributions, want %d", len(phi), probe.NumRows()*k*(nf+1))
		}
		for r := 0; r < probe.NumRows(); r++ {
			for c := 0; c < k; c++ {
				var s float64
				for _, v := range phi[(r*k+c)*(nf+1) : (r*k+c+1)*(nf+1)] {
					s += v
				}
				if math.Abs(s-raw[r*k+c]) > 1e-9 {
					t.Fatalf("%s row %d output %d: contributions sum to %v, raw %v", task, r, c, s, raw[r*k+c])
				}
			}
		}
	}
}

// TreeSHAP equals the Shapley values computed by brute force over all
// feature subsets, with the tree's path-dependent conditional expectations.
func TestContributionsMatchShapleyDefinition(t *testing.T) {
	train := gbdttest.Synth(ObjRegression, 1000, 5)
	train.Columns = train.Columns[:4]
	m := trainOrFatal(t, train, nil, map[string]string{"objective": "regression", "num_iterations": "3", "num_leaves": "12", "min_data_in_leaf": "5"})
	probe := gbdttest.Synth(ObjRegression, 20, 6)
	probe.Columns = probe.Columns[:4]
	phi, err := m.Contributions(probe)
	if err != nil {
		t.Fatal(err)
	}
	nf := 4
	fact := func(n int) float64 {
		f := 1.0
		for i := 2; i <= n; i++ {
			f *= float64(i)
		}
		return f
	}
	for r := 0; r < probe.NumRows(); r++ {
		x := func(f int) float64 { return float64(probe.Columns[f].Values[r]) }
		// v(S): expected output when only the features in S are known.
		v := func(mask int) float64 {
			var total float64
			for ti := range m.Trees {
				tr := &m.Trees[ti]
				st := newShapTree(tr)
				var walk func(n int) float64
				walk = func(n int) float64 {
					if n < 0 {
						return tr.LeafValue[^n]
					}
					f := tr.SplitFeature[n]
					if mask&(1<<f) != 0 {
						return walk(tr.decide(n, x(f), false))
					}
					l, rr := tr.LeftChild[n], tr.RightChild[n]
					return (st.weight(l)*walk(l) + st.weight(rr)*walk(rr)) / st.nodeW[n]
				}
				if tr.NumLeaves == 1 {
					total += tr.LeafValue[0]
				} else {
					total += walk(0)
				}
			}
			return total
		}
		for i := 0; i < nf; i++ {
			var want float64
			for mask := 0; mask < 1<<nf; mask++ {
				if mask&(1<<i) != 0 {
					continue
				}
				size := 0
				for j := 0; j < nf; j++ {
					if mask&(1<<j) != 0 {
						size++
					}
				}
				w := fact(size) * fact(nf-size-1) / fact(nf)
				want += w * (v(mask|1<<i) - v(mask))
			}
			if got := phi[r*(nf+1)+i]; math.Abs(got-want) > 1e-9 {
				t.Errorf("row %d feature %d: TreeSHAP %v, Shapley %v", r, i, got, want)
			}
		}
		if got, want := phi[r*(nf+1)+nf], v(0); math.Abs(got-want) > 1e-9 {
			t.Errorf("row %d: expected value %v, want %v", r, got, want)
		}
	}
}

func TestImportance(t *testing.T) {
	m := trainOrFatal(t, gbdttest.Synth(ObjBinary, 1500, 3), nil, map[string]string{"objective": "binary", "num_iterations": "10"})
	split, gain := SplitImportance(m), GainImportance(m)
	var splits float64
	for i := range m.Trees {
		splits += float64(m.Trees[i].NumLeaves - 1)
	}
	var sum float64
	for _, s := range split {
		sum += s
	}
	if sum != splits {
		t.Errorf("split importances sum to %v, the model has %v splits", sum, splits)
	}
	// x0 and the category c0 drive the label in gbdttest.Synth; x4 and x5
	// are noise.
	if !(gain[0] > gain[4] && gain[0] > gain[5] && gain[6] > gain[4]) {
		t.Errorf("gain importance %v: want x0 and c0 above the noise features x4, x5", gain)
	}
}
