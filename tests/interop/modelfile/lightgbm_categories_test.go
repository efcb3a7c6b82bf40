// Package modelfile checks Atrium's model files with the real peers that read
// them, run from $ATRIUM_TEST_PYTHON (.ci/python.sh sets it).
package modelfile

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestLightGBMTextKeepsCategoryNames trains trees on text categories, writes
// them as LightGBM text, and has the lightgbm Python package predict from a
// pandas DataFrame with those categories: the same predictions show that the
// pandas_categorical line maps the names to the codes Atrium trained with.
func TestLightGBMTextKeepsCategoryNames(t *testing.T) {
	py := interoptest.Python(t, "the model-file parity test")
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 3))
	var b strings.Builder
	b.WriteString("size,colour,store,y\n")
	colours := []string{"red", "green", "blue", "amber"}
	for range 500 {
		c, store := r.IntN(4), 10+r.IntN(3)*7
		size := r.NormFloat64()
		y := 0
		if size+float64(c%2)-float64(store-10)/10+r.NormFloat64()*0.3 > 0.5 {
			y = 1
		}
		fmt.Fprintf(&b, "%.4f,%s,%d,%d\n", size, colours[c], store, y)
	}
	data := filepath.Join(dir, "data.csv")
	if err := os.WriteFile(data, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, _, m := trainFile(t, data, map[string]string{"objective": "binary", "num_iterations": "20", "num_leaves": "8",
		"min_data_per_group": "5", "cat_smooth": "1", "max_cat_to_onehot": "8"})
	model := filepath.Join(dir, "model.txt")
	if err := m.SaveLightGBM(model); err != nil {
		t.Fatal(err)
	}
	want, err := m.Predict(ds)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "predict_pandas.py", model, data)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("predict_pandas.py: %v\n%s", err, stderr.String())
	}
	var got struct {
		PandasCategorical [][]any `json:"pandas_categorical"`
		Pred              []float64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.PandasCategorical) != "[[amber blue green red]]" || len(got.Pred) != len(want) {
		t.Fatalf("lightgbm read categories %v and made %d predictions", got.PandasCategorical, len(got.Pred))
	}
	for i := range want {
		if math.Abs(got.Pred[i]-want[i]) > 1e-6 {
			t.Fatalf("row %d: lightgbm %v, Atrium %v", i, got.Pred[i], want[i])
		}
	}
}
