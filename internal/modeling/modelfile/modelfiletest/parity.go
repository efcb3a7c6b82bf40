// Package modelfiletest checks that model files predict in Atrium what the
// library that wrote them predicts, from cases written by that library
// (tests/interop/modelfile/thresholds.py): the unit tests run it on the
// committed cases, the interop tests on cases made fresh.
package modelfiletest

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
)

// Tolerance is the relative difference allowed between Atrium's raw score
// and the peer's: summation order only. A different leaf is off by a leaf
// value, many orders of magnitude more.
const Tolerance = 1e-12

// Cases lists the parity cases in dir: the NAME of every NAME.pred.json.
func Cases(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.pred.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no parity cases in %s (%v)", dir, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".pred.json"))
	}
	return names
}

// CheckCase predicts NAME.data.csv with each of the case's model files
// (NAME.txt, NAME.json, NAME.ubj), loaded and read the way `atrium predict`
// does, and compares the raw scores with NAME.pred.json's.
func CheckCase(t *testing.T, dir, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name+".pred.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Source string    `json:"source"`
		Raw    []float64 `json:"raw"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s.pred.json: %v", name, err)
	}
	models := 0
	for _, ext := range []string{".txt", ".json", ".ubj"} {
		path := filepath.Join(dir, name+ext)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		models++
		m, err := modelfile.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		data := filepath.Join(dir, name+".data.csv")
		tab, err := ml.LoadTable(context.Background(), data, m.LoadOptions())
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.PredictRaw(tab.Dataset)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want.Raw) {
			t.Fatalf("%s: %d predictions, %s made %d", path, len(got), want.Source, len(want.Raw))
		}
		bad := 0
		for r := range got {
			if d := math.Abs(got[r] - want.Raw[r]); !(d <= Tolerance*math.Max(1, math.Abs(want.Raw[r]))) {
				if bad < 5 {
					t.Errorf("%s row %d (%s): Atrium %v, %s %v", filepath.Base(path), r+2, rowText(tab.Dataset, r), got[r], want.Source, want.Raw[r])
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d rows differ from %s", filepath.Base(path), bad, len(got), want.Source)
		}
	}
	if models == 0 {
		t.Fatalf("case %s has no model file", name)
	}
}

// rowText shows a row's values as predicted (doubles where loaded).
func rowText(ds *ml.Dataset, r int) string {
	var s []string
	for _, c := range ds.Columns {
		v := float64(c.Values[r])
		if c.Float64 != nil {
			v = c.Float64[r]
		}
		s = append(s, c.Name+"="+formatFloat(v))
	}
	return strings.Join(s, " ")
}

func formatFloat(v float64) string {
	b, _ := json.Marshal(v)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return map[bool]string{true: "NaN", false: "Inf"}[math.IsNaN(v)]
	}
	return string(b)
}
