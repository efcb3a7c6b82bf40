package modelfile

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Models XGBoost wrote (JSON and UBJSON) predict in Atrium what XGBoost
// predicted. XGBoost sums in float32, so the tolerance is 1e-6 relative to
// the prediction's size (absolute below 1).
func TestReadXGBoostGolden(t *testing.T) {
	for _, file := range []string{"xgboost_binary.json", "xgboost_binary.ubj", "xgboost_regression.json",
		"xgboost_regression.ubj", "xgboost_multiclass.json", "xgboost_multiclass.ubj", "xgboost_categorical.json"} {
		name := strings.TrimSuffix(strings.TrimSuffix(file, ".json"), ".ubj")
		f, err := os.Open(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		m, err := ReadXGBoost(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		ds := goldenData(t, len(m.Features))
		if name == "xgboost_categorical" {
			// XGBoost refuses unseen and negative categories; the generator
			// predicted those rows with missing values.
			ds.Columns[3].Values[1] = float32(math.NaN())
			ds.Columns[3].Values[2] = float32(math.NaN())
		}
		got, err := m.Predict(ds)
		if err != nil {
			t.Fatal(err)
		}
		want := goldenPred(t, name)
		if len(got) != len(want) {
			t.Fatalf("%s: %d predictions, want %d", file, len(got), len(want))
		}
		for i := range got {
			if d := math.Abs(got[i] - want[i]); d > 1e-6*math.Max(1, math.Abs(want[i])) {
				t.Errorf("%s: prediction %d is %v, XGBoost's %v", file, i, got[i], want[i])
				break
			}
		}
	}
}

func TestReadXGBoostErrors(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "xgboost_binary.json"))
	if err != nil {
		t.Fatal(err)
	}
	g := string(good)
	ubj, _ := os.ReadFile(filepath.Join("testdata", "xgboost_binary.ubj"))
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", "empty file"},
		{"not json", "tree\nversion=v4\n", "not JSON or UBJSON"},
		{"other json", `{"format": "something"}`, "not an XGBoost model"},
		{"version", strings.Replace(g, `"version":[3,`, `"version":[9,`, 1), "XGBoost version [9"},
		{"objective", strings.Replace(g, `"binary:logistic"`, `"survival:cox"`, 1), `objective "survival:cox" is not supported`},
		{"truncated json", g[:len(g)/2], "neither JSON nor UBJSON"},
		{"truncated ubjson", string(ubj[:len(ubj)/2]), "truncated"},
		{"arrays", strings.Replace(g, `"right_children":[`, `"right_children":[1,`, 1), "right_children has"},
		{"cycle", strings.Replace(g, `"left_children":[1,`, `"left_children":[0,`, 1), "not a tree"},
		{"tree_info", strings.Replace(g, `"tree_info":[0,`, `"tree_info":[`, 1), "tree_info has"},
	}
	for _, tc := range tests {
		_, err := ReadXGBoost(strings.NewReader(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// FuzzReadXGBoost: no input makes the JSON/UBJSON reader panic, and whatever
// it accepts predicts.
func FuzzReadXGBoost(f *testing.F) {
	for _, name := range []string{"xgboost_binary.json", "xgboost_multiclass.ubj", "xgboost_categorical.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("{[$d#U\x02\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadXGBoost(bytes.NewReader(data))
		if err != nil {
			return
		}
		checkAccepted(t, m)
	})
}
