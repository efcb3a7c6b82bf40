package main

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		name          string
		a, b          []float64
		pBetter, pVal float64 // pVal < 0: not checked
		diffLo        float64
		diffHi        float64
	}{
		// Every value of ours below every one of theirs: U = 0.
		{"all better", []float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 1, 0.009023, -9, -1},
		{"all worse", []float64{6, 7, 8, 9, 10}, []float64{1, 2, 3, 4, 5}, 0, 0.009023, 1, 9},
		// Identical samples: every pair ties, P = 0.5, z = 0.
		{"same", []float64{1, 2, 3}, []float64{1, 2, 3}, 0.5, 1, -2, 2},
		// 1 beats 2 and 4 (2 pairs), 3 beats 4 (1 pair), of 4: 0.75.
		{"mixed", []float64{1, 3}, []float64{2, 4}, 0.75, -1, -3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := compare(tc.a, tc.b)
			if math.Abs(c.pBetter-tc.pBetter) > 1e-12 {
				t.Errorf("pBetter %v, want %v", c.pBetter, tc.pBetter)
			}
			if tc.pVal >= 0 && math.Abs(c.pValue-tc.pVal) > 1e-4 {
				t.Errorf("pValue %v, want %v", c.pValue, tc.pVal)
			}
			if c.diffLo < tc.diffLo || c.diffHi > tc.diffHi || c.diffLo > c.diffHi {
				t.Errorf("median difference interval [%v, %v] outside [%v, %v]", c.diffLo, c.diffHi, tc.diffLo, tc.diffHi)
			}
		})
	}
}

// TestCompareRosenbrock checks compare on the 1,000-seed rosenbrock2 run
// recorded in docs/benchmarks.md (testdata: every study's best value)
// against the same statistics computed with NumPy: P = 0.49586, z = 0.3206,
// p = 0.7485.
func TestCompareRosenbrock(t *testing.T) {
	b, err := os.ReadFile("testdata/rosenbrock2-1000-seeds.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]map[string][]float64
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("testdata/rosenbrock2-1000-seeds.json: %v", err)
	}
	c := compare(raw["atrium"]["rosenbrock2"], raw["optuna"]["rosenbrock2"])
	if math.Abs(c.pBetter-0.49586) > 1e-9 || math.Abs(c.pValue-0.7485) > 1e-4 {
		t.Errorf("P(Atrium < Optuna) %v p %v, NumPy: 0.49586 and 0.7485", c.pBetter, c.pValue)
	}
	if c.diffLo >= 0 || c.diffHi <= 0 {
		t.Errorf("median difference interval [%v, %v] excludes 0", c.diffLo, c.diffHi)
	}
	t.Logf("median difference 95%% interval [%.4f, %.4f]", c.diffLo, c.diffHi)
}
