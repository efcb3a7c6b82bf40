package modelfile

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// thousandTrees returns a LightGBM text and an XGBoost JSON model of 1000
// trees each, the golden models' trees repeated (bench/serving/trees
// measures models trained with 1000 iterations).
func thousandTrees(b *testing.B) (lgb, xgb []byte) {
	b.Helper()
	f, err := os.Open(filepath.Join("testdata", "lightgbm_binary.txt"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	m, err := ReadLightGBM(f)
	if err != nil {
		b.Fatal(err)
	}
	base := m.Trees
	m.Trees = nil
	for len(m.Trees) < 1000 {
		m.Trees = append(m.Trees, base[len(m.Trees)%len(base)])
	}
	var buf bytes.Buffer
	if err := WriteLightGBM(&buf, m); err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "xgboost_categorical.json"))
	if err != nil {
		b.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		b.Fatal(err)
	}
	tm := doc["learner"].(map[string]any)["gradient_booster"].(map[string]any)["model"].(map[string]any)
	trees, info := tm["trees"].([]any), tm["tree_info"].([]any)
	var nt, ni, indptr []any
	for i := range 1000 {
		t := trees[i%len(trees)].(map[string]any)
		c := make(map[string]any, len(t))
		for k, v := range t {
			c[k] = v
		}
		c["id"] = i
		nt = append(nt, c)
		ni = append(ni, info[i%len(info)])
		indptr = append(indptr, i)
	}
	tm["trees"], tm["tree_info"], tm["iteration_indptr"] = nt, ni, append(indptr, 1000)
	tm["gbtree_model_param"].(map[string]any)["num_trees"] = strconv.Itoa(1000)
	xgb, err = json.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	return buf.Bytes(), xgb
}

// BenchmarkLoad1000Trees reads a 1000-tree model and compiles its
// predictor (the first prediction): what a server pays to load a version.
func BenchmarkLoad1000Trees(b *testing.B) {
	lgb, xgb := thousandTrees(b)
	for _, c := range []struct {
		name string
		data []byte
		read func([]byte) (*gbdt.Model, error)
	}{
		{"lightgbm", lgb, func(d []byte) (*gbdt.Model, error) { return ReadLightGBM(bytes.NewReader(d)) }},
		{"xgboost", xgb, func(d []byte) (*gbdt.Model, error) { return ReadXGBoost(bytes.NewReader(d)) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				m, err := c.read(c.data)
				if err != nil {
					b.Fatal(err)
				}
				if len(m.Trees) != 1000 {
					b.Fatalf("%d trees", len(m.Trees))
				}
				ds := &ml.Dataset{Columns: make([]ml.Column, len(m.Features))}
				for i := range ds.Columns {
					ds.Columns[i] = ml.Column{Name: m.Features[i].Name, Values: []float32{0}}
				}
				if _, err := m.Predict(ds); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
