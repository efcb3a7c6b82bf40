package drift

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

type expectedCase struct {
	Name        string          `json:"name"`
	Categorical bool            `json:"categorical"`
	Reference   json.RawMessage `json:"reference"`
	Current     json.RawMessage `json:"current"`
	Results     []struct {
		Override string   `json:"override"`
		Method   Method   `json:"method"`
		Score    *float64 `json:"score"` // null where scipy gives NaN
		Drift    bool     `json:"drift"`
	} `json:"results"`
}

type expectedFile struct {
	Scipy string         `json:"scipy"`
	Cases []expectedCase `json:"cases"`
	// KSAsymptotic holds scipy's kstwo.sf(d, round(mn/(m+n))), the p-value
	// ks_2samp gives above 10,000 values per sample.
	KSAsymptotic []struct {
		M, N int
		D, P float64
	} `json:"ks_asymptotic"`
}

// compare runs the case's column through CompareNumeric or
// CompareCategorical; the inputs are decoded by kind (see gen.py's num).
func (c expectedCase) compare(t *testing.T, opt Options) (ColumnResult, error) {
	t.Helper()
	if c.Categorical {
		var r, cur []string
		must(t, json.Unmarshal(c.Reference, &r))
		must(t, json.Unmarshal(c.Current, &cur))
		return CompareCategorical(c.Name, r, cur, opt)
	}
	var r, cur []any
	must(t, json.Unmarshal(c.Reference, &r))
	must(t, json.Unmarshal(c.Current, &cur))
	return CompareNumeric(c.Name, floats(r), floats(cur), opt)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// floats decodes gen.py's numeric encoding: null is NaN, "inf"/"-inf" are
// infinities.
func floats(p []any) []float64 {
	out := make([]float64, len(p))
	for i, v := range p {
		switch v := v.(type) {
		case nil:
			out[i] = math.NaN()
		case float64:
			out[i] = v
		case string:
			out[i] = math.Inf(1)
			if v == "-inf" {
				out[i] = math.Inf(-1)
			}
		}
	}
	return out
}

// TestAgainstScipy checks every method on every case in testdata/expected.json
// (inputs and the scores scipy/numpy compute for them, see testdata/gen.py).
func TestAgainstScipy(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	must(t, err)
	var f expectedFile
	must(t, json.Unmarshal(raw, &f))
	if len(f.Cases) < 10 {
		t.Fatalf("expected.json has %d cases", len(f.Cases))
	}
	for _, c := range f.Cases {
		for _, want := range c.Results {
			t.Run(c.Name+"/"+string(want.Method)+"/override="+want.Override, func(t *testing.T) {
				got, err := c.compare(t, Options{Method: Method(want.Override)})
				must(t, err)
				if got.Method != want.Method {
					t.Fatalf("method %q, want %q", got.Method, want.Method)
				}
				if got.Drift != want.Drift {
					t.Errorf("drift %v, want %v (score %g)", got.Drift, want.Drift, got.Score)
				}
				if want.Score == nil {
					// scipy's chisquare gives NaN with one category; we give 1.
					if got.Score != 1 {
						t.Errorf("score %g, want 1 where scipy gives NaN", got.Score)
					}
					return
				}
				rel, abs := 1e-9, 1e-12
				if c.Name == "ks_asymptotic" {
					rel = 0.01 // Stephens-corrected Kolmogorov limit, see KS.
				}
				if want.Method == MethodKS && c.Name != "ks_asymptotic" {
					abs = 1e-10 // 1 - inside probability, see KS.
				}
				if d := math.Abs(got.Score - *want.Score); d > abs && d > rel*math.Abs(*want.Score) {
					t.Errorf("score %.15g, want %.15g (scipy %s)", got.Score, *want.Score, f.Scipy)
				}
			})
		}
	}
}

// TestKSAsymptotic checks the p-value above 10,000 values per sample against
// scipy's kstwo.sf: to 1e-5 relative where the exact matrix method applies
// (floor(n·d) < mtwMaxK), to 1% where the Stephens approximation is used
// (observed: under 0.9%, and 0.02% near p = 0.05).
func TestKSAsymptotic(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	must(t, err)
	var f expectedFile
	must(t, json.Unmarshal(raw, &f))
	if len(f.KSAsymptotic) == 0 {
		t.Fatal("no ks_asymptotic values in expected.json")
	}
	exact := 0
	for _, c := range f.KSAsymptotic {
		en := int(math.Round(float64(c.M) * float64(c.N) / float64(c.M+c.N)))
		tol := 0.01
		if _, ok := kolmogorovCDF(en, c.D); ok {
			tol = 1e-5
			exact++
		}
		got := ksAsympP(c.M, c.N, c.D)
		if math.Abs(got-c.P) > tol*c.P {
			t.Errorf("m=%d n=%d d=%g: p = %g, scipy %g (%.2e relative, tolerance %g)", c.M, c.N, c.D, got, c.P, (got-c.P)/c.P, tol)
		}
	}
	if exact == 0 || exact == len(f.KSAsymptotic) {
		t.Fatalf("%d of %d cases use the matrix method; want both methods covered", exact, len(f.KSAsymptotic))
	}
}

// runScript runs testdata/script with the Python named by the environment
// variable env, skipping the test when it is unset, and returns its stdout.
func runScript(t *testing.T, env, script string) []byte {
	t.Helper()
	py := os.Getenv(env)
	if py == "" {
		t.Skipf("%s not set; %s not run", env, script)
	}
	cmd := exec.Command(py, script)
	cmd.Dir = "testdata"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s%s", script, err, out, stderr.String())
	}
	return out
}

// TestRegenerate reruns gen.py when ATRIUM_TEST_PYTHON is set and checks the
// stored expected.json is what it produces, so the stored numbers cannot
// drift from their generator. Numbers agree to 1e-12 relative, not bit for
// bit: the virtualenv's numpy and scipy are whatever pip resolves for the
// pinned clients, and their builds differ in the last bits of a score
// (0.14587603599615095 against ...098 between scipy releases).
func TestRegenerate(t *testing.T) {
	out := runScript(t, "ATRIUM_TEST_PYTHON", "gen.py")
	stored, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	must(t, err)
	var got, want any
	must(t, json.Unmarshal(out, &got))
	must(t, json.Unmarshal(stored, &want))
	if where := jsonDiff("$", got, want, 1e-12); where != "" {
		t.Fatalf("testdata/expected.json differs from gen.py's output at %s: regenerate it (python gen.py > expected.json) and review the diff", where)
	}
}

// jsonDiff returns the path of the first difference between two decoded
// JSON values, numbers equal within tol relative, or "" when there is none.
func jsonDiff(path string, got, want any, tol float64) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return path
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return path + "." + k
			}
			if d := jsonDiff(path+"."+k, gv, wv, tol); d != "" {
				return d
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return path
		}
		for i := range w {
			if d := jsonDiff(fmt.Sprintf("%s[%d]", path, i), g[i], w[i], tol); d != "" {
				return d
			}
		}
	case float64:
		g, ok := got.(float64)
		if !ok || math.Abs(g-w) > tol*max(math.Abs(g), math.Abs(w)) {
			return fmt.Sprintf("%s (%v, stored %v)", path, got, w)
		}
	default:
		if got != want {
			return fmt.Sprintf("%s (%v, stored %v)", path, got, want)
		}
	}
	return ""
}

// TestEvidently runs testdata/evidently_check.py, which compares
// expected.json (and so this package, see TestAgainstScipy) with the real
// evidently package, when ATRIUM_TEST_EVIDENTLY_PYTHON names a Python that
// has it (evidently 0.7 with pandas<3). The script exits 1 on a mismatch.
func TestEvidently(t *testing.T) {
	t.Logf("%s", runScript(t, "ATRIUM_TEST_EVIDENTLY_PYTHON", "evidently_check.py"))
}

func TestEmptyWindows(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		run  func() error
	}{
		{"current empty", func() error { _, err := CompareNumeric("x", []float64{1, 2}, nil, Options{}); return err }},
		{"current all NaN", func() error {
			_, err := CompareNumeric("x", []float64{1, 2}, []float64{nan, math.Inf(1)}, Options{})
			return err
		}},
		{"reference all NaN", func() error { _, err := CompareNumeric("x", []float64{nan}, []float64{1}, Options{}); return err }},
		{"categorical current all missing", func() error {
			_, err := CompareCategorical("c", []string{"a"}, []string{"", ""}, Options{})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, ErrEmpty) {
				t.Fatalf("err = %v, want ErrEmpty", err)
			}
		})
	}
}

func TestMethodNotApplicable(t *testing.T) {
	for _, m := range []Method{MethodKS, MethodWasserstein, "nope"} {
		if _, err := CompareCategorical("c", []string{"a"}, []string{"b"}, Options{Method: m}); !errors.Is(err, ErrMethod) {
			t.Errorf("%s on categorical: err = %v, want ErrMethod", m, err)
		}
	}
	if _, err := CompareNumeric("x", []float64{1}, []float64{2}, Options{Method: "nope"}); !errors.Is(err, ErrMethod) {
		t.Errorf("unknown method on numeric: err = %v", err)
	}
}

func TestDefaultMethod(t *testing.T) {
	tests := []struct {
		numeric  bool
		ref      int
		distinct int
		want     Method
	}{
		{true, 1000, 6, MethodKS},
		{true, 1000, 5, MethodChiSquare},
		{true, 1000, 2, MethodZTest},
		{false, 10, 3, MethodChiSquare},
		{false, 10, 2, MethodZTest},
		{false, 10, 1, MethodZTest},
		{true, 1001, 6, MethodWasserstein},
		{true, 1001, 5, MethodJensenShannon},
		{false, 1001, 100, MethodJensenShannon},
	}
	for _, tt := range tests {
		if got := DefaultMethod(tt.numeric, tt.ref, tt.distinct); got != tt.want {
			t.Errorf("DefaultMethod(%v, %d, %d) = %s, want %s", tt.numeric, tt.ref, tt.distinct, got, tt.want)
		}
	}
}

func TestCompareDataset(t *testing.T) {
	ref := []Sample{
		{Name: "same", Numeric: []float64{1, 2, 3, 4, 5, 6, 7, 8}},
		{Name: "shifted", Numeric: []float64{1, 2, 3, 4, 5, 6, 7, 8}},
		{Name: "cat", Categorical: []string{"a", "a", "b", "b"}},
	}
	cur := []Sample{
		{Name: "cat", Categorical: []string{"a", "b", "a", "b"}},
		{Name: "shifted", Numeric: []float64{101, 102, 103, 104, 105, 106, 107, 108}},
		{Name: "same", Numeric: []float64{1, 2, 3, 4, 5, 6, 7, 8}},
	}
	got, err := Compare(ref, cur, nil, 0)
	must(t, err)
	if got.DriftedCount != 1 || got.DatasetDrift || math.Abs(got.DriftedShare-1.0/3) > 1e-15 {
		t.Fatalf("got %+v, want 1 of 3 drifted, no dataset drift", got)
	}
	if got.Columns[1].Column != "shifted" || !got.Columns[1].Drift || got.Columns[1].Method != MethodKS {
		t.Fatalf("column 1 = %+v, want shifted drifting by ks", got.Columns[1])
	}
	// Overriding "cat" with a threshold that any distance reaches makes two of
	// three columns drift: dataset drift at share >= 0.5.
	got, err = Compare(ref, cur, map[string]Options{"same": {Method: MethodWasserstein, Threshold: 1e-300}, "cat": {Method: MethodPSI, Threshold: -1}}, 0)
	must(t, err)
	if got.DriftedCount != 2 || !got.DatasetDrift {
		t.Fatalf("with overrides: %+v, want 2 drifted and dataset drift", got)
	}
	if got.Columns[0].Method != MethodWasserstein || got.Columns[0].Threshold != 1e-300 || got.Columns[0].Drift {
		t.Fatalf("override on same: %+v (distance 0 is below any positive threshold)", got.Columns[0])
	}

	bad := []struct {
		name string
		cur  []Sample
		ovr  map[string]Options
	}{
		{"missing column", cur[:2], nil},
		{"kind mismatch", []Sample{cur[0], cur[1], {Name: "same", Categorical: []string{"1"}}}, nil},
		{"unknown override", cur, map[string]Options{"nope": {}}},
	}
	for _, tt := range bad {
		if _, err := Compare(ref, tt.cur, tt.ovr, 0); !errors.Is(err, ErrColumns) {
			t.Errorf("%s: err = %v, want ErrColumns", tt.name, err)
		}
	}
}

// The exported statistics take unsorted samples and leave them as they are;
// the expected values are scipy's (wasserstein_distance, ks_2samp) for the
// same inputs.
func TestStatisticsKeepInputs(t *testing.T) {
	a, b := []float64{3, 0, 1}, []float64{8, 5, 6}
	if got := Wasserstein(a, b); got != 5 {
		t.Errorf("Wasserstein = %g, want 5", got)
	}
	if got := Wasserstein([]float64{0, 1, 3}, []float64{0, 1}); math.Abs(got-5.0/6) > 1e-15 {
		t.Errorf("Wasserstein = %g, want 5/6", got)
	}
	d, p := KS(a, b)
	// Disjoint samples of 3: D = 1, exact p = 2/C(6,3) = 0.1.
	if d != 1 || math.Abs(p-0.1) > 1e-15 {
		t.Errorf("KS = %g, %g; want 1, 0.1", d, p)
	}
	if a[0] != 3 || b[0] != 8 {
		t.Errorf("inputs modified: %v %v", a, b)
	}
}

// CompareCategoricalCounts on counts gives exactly CompareCategorical on the
// samples they count, for each default method; the empty string (missing) and
// non-positive counts are left out.
func TestCompareCategoricalCounts(t *testing.T) {
	repeat := func(counts map[string]int64) []string {
		var out []string
		for v, n := range counts {
			for range max(n, 0) {
				out = append(out, v)
			}
		}
		return out
	}
	tests := []struct {
		name     string
		ref, cur map[string]int64
		want     Method
	}{
		{"two values: z", map[string]int64{"a": 300, "b": 200}, map[string]int64{"a": 250, "b": 260}, MethodZTest},
		{"small: chi-square, missing ignored", map[string]int64{"a": 300, "b": 200, "c": 90, "": 40}, map[string]int64{"a": 250, "b": 260, "d": 3, "": 7}, MethodChiSquare},
		{"large: jensen-shannon, zero count ignored", map[string]int64{"a": 3000, "b": 2000, "c": 0}, map[string]int64{"a": 2500, "b": 2600, "c": -1}, MethodJensenShannon},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CompareCategoricalCounts("col", tc.ref, tc.cur, Options{})
			must(t, err)
			want, err := CompareCategorical("col", repeat(tc.ref), repeat(tc.cur), Options{})
			must(t, err)
			if got != want || got.Method != tc.want {
				t.Errorf("counts gave %+v, samples %+v (want method %s)", got, want, tc.want)
			}
		})
	}
	if _, err := CompareCategoricalCounts("col", map[string]int64{"": 5, "a": 0}, map[string]int64{"a": 1}, Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("reference of only missing values: %v, want ErrEmpty", err)
	}
}
