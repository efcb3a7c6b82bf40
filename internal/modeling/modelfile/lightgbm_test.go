package modelfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

var update = flag.Bool("update", false, "rewrite the golden files Atrium writes")

// goldenData reads testdata/golden_data.csv: columns x0,x1,x2 numeric and c3
// categorical (codes); empty cells are missing.
func goldenData(t *testing.T, cols int) *ml.Dataset {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden_data.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	names := strings.Split(lines[0], ",")[:cols]
	ds := &ml.Dataset{}
	for _, n := range names {
		c := ml.Column{Name: n}
		if strings.HasPrefix(n, "c") {
			c.Kind = ml.Categorical
		}
		ds.Columns = append(ds.Columns, c)
	}
	for _, line := range lines[1:] {
		cells := strings.Split(line, ",")
		for j := range ds.Columns {
			v := float32(math.NaN())
			if cells[j] != "" {
				f, err := strconv.ParseFloat(cells[j], 32)
				if err != nil && !errors.Is(err, strconv.ErrRange) {
					t.Fatal(err)
				}
				v = float32(f)
			}
			ds.Columns[j].Values = append(ds.Columns[j].Values, v)
		}
	}
	return ds
}

func goldenPred(t *testing.T, name string) []float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".pred.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Pred []float64 `json:"pred"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p.Pred
}

func maxAbsDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// Models LightGBM wrote predict in Atrium what LightGBM predicted, NaN,
// unseen and negative categories included.
func TestReadLightGBMGolden(t *testing.T) {
	for _, name := range []string{"lightgbm_binary", "lightgbm_regression", "lightgbm_multiclass"} {
		f, err := os.Open(filepath.Join("testdata", name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := ReadLightGBM(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ds := goldenData(t, len(m.Features))
		got, err := m.Predict(ds)
		if err != nil {
			t.Fatal(err)
		}
		want := goldenPred(t, name)
		if len(got) != len(want) {
			t.Fatalf("%s: %d predictions, want %d", name, len(got), len(want))
		}
		if d := maxAbsDiff(got, want); d > 1e-6 {
			t.Errorf("%s: predictions differ from LightGBM's by up to %g", name, d)
		}
	}
}

// Reading a model and writing it back gives a file that reads back to the
// same model.
func TestLightGBMRoundTrip(t *testing.T) {
	for _, name := range []string{"lightgbm_binary", "lightgbm_multiclass"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name+".txt"))
		m, err := ReadLightGBM(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := WriteLightGBM(&out, m); err != nil {
			t.Fatal(err)
		}
		back, err := ReadLightGBM(&out)
		if err != nil {
			t.Fatal(err)
		}
		ds := goldenData(t, len(m.Features))
		a, _ := m.Predict(ds)
		c, _ := back.Predict(ds)
		if d := maxAbsDiff(a, c); d != 0 {
			t.Errorf("%s: round trip changed predictions by %g", name, d)
		}
	}
}

// The file Atrium writes for a fixed model is stable (golden file; rerun
// with -update after an intended format change). LightGBM loading it is
// checked by tests/interop/lightgbm.
func TestWriteLightGBMGolden(t *testing.T) {
	train := gbdttest.Synth("binary", 500, 1)
	p, err := gbdt.ParseParams(map[string]string{"objective": "binary", "num_iterations": "3", "num_leaves": "4", "min_data_per_group": "5"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := gbdt.Train(context.Background(), train, nil, p, gbdt.TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteLightGBM(&out, m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "atrium_binary.lightgbm.txt")
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("WriteLightGBM output differs from %s (run with -update if intended):\n%s", path, out.String())
	}
	// tree_sizes are the byte lengths of the tree blocks, as LightGBM checks.
	text := out.String()
	var sizes []string
	for _, l := range strings.Split(text, "\n") {
		if s, ok := strings.CutPrefix(l, "tree_sizes="); ok {
			sizes = strings.Fields(s)
		}
	}
	blocks := strings.Split(text[strings.Index(text, "Tree=0"):strings.Index(text, "end of trees")], "Tree=")[1:]
	if len(blocks) != len(sizes) {
		t.Fatalf("%d tree blocks, %d sizes", len(blocks), len(sizes))
	}
	for i, blk := range blocks {
		if strconv.Itoa(len("Tree="+blk)) != sizes[i] {
			t.Errorf("tree %d: block of %d bytes, tree_sizes says %s", i, len("Tree="+blk), sizes[i])
		}
	}
}

func TestReadLightGBMErrors(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "lightgbm_binary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	g := string(good)
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", "empty file"},
		{"not lightgbm", "{\"format\": 1}\n", "not a LightGBM text model"},
		{"version", strings.Replace(g, "version=v4", "version=v9", 1), `version "v9", want v3 or v4`},
		{"no version", strings.Replace(g, "version=v4\n", "", 1), "no version"},
		{"objective", strings.Replace(g, "objective=binary sigmoid:1", "objective=poisson", 1), `objective "poisson" is not supported`},
		{"truncated", g[:len(g)/2], "truncated"},
		{"no end", g[:strings.Index(g, "end of trees")], "truncated"},
		{"array length", strings.Replace(g, "leaf_count=", "leaf_count=1 ", 1), "leaf_count has"},
		{"bad number", strings.Replace(g, "threshold=", "threshold=abc ", 1), `threshold entry 0 is "abc"`},
		{"child out of range", strings.Replace(g, "right_child=1 3 -4", "right_child=1 3 -99", 1), "leaf 98"},
		{"feature out of range", strings.Replace(g, "split_feature=1", "split_feature=7", 1), "feature 7"},
		{"tree numbering", strings.Replace(g, "Tree=1\n", "Tree=5\n", 1), "want Tree=1"},
		{"names", strings.Replace(g, "feature_names=x0 x1", "feature_names=x0", 1), "feature_names lists 3 names"},
		{"linear", strings.Replace(g, "is_linear=0", "is_linear=1", 1), "linear trees"},
		{"tree sizes", strings.Replace(g, "tree_sizes=", "tree_sizes=1 ", 1), "tree_sizes lists"},
	}
	for _, tc := range tests {
		_, err := ReadLightGBM(strings.NewReader(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// FuzzReadLightGBM: no input makes the reader panic, and whatever it accepts
// predicts without panicking and writes back.
func FuzzReadLightGBM(f *testing.F) {
	for _, name := range []string{"lightgbm_binary.txt", "lightgbm_multiclass.txt", "atrium_binary.lightgbm.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("tree\nversion=v4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadLightGBM(bytes.NewReader(data))
		if err != nil {
			return
		}
		checkAccepted(t, m)
		_ = WriteLightGBM(&bytes.Buffer{}, m)
	})
}

// checkAccepted: a model a reader accepted predicts (NaN, negative and huge
// values included) and explains its predictions without error.
func checkAccepted(t *testing.T, m *gbdt.Model) {
	t.Helper()
	if len(m.Features) > 1000 {
		return // a legal but huge header; predicting would only be slow
	}
	ds := &ml.Dataset{}
	for i := range m.Features {
		ds.Columns = append(ds.Columns, ml.Column{Name: m.Features[i].Name,
			Values: []float32{0, float32(math.NaN()), -1, 3, 1e30}})
	}
	if _, err := m.Predict(ds); err != nil {
		t.Fatalf("accepted model fails to predict: %v", err)
	}
	if _, err := m.Contributions(ds); err != nil {
		t.Fatalf("accepted model fails to explain: %v", err)
	}
}
