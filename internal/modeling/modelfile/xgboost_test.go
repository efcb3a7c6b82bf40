package modelfile

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"runtime"
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

// ubjCount writes a UBJSON count: marker l and a big-endian int32.
func ubjCount(n int) []byte {
	return []byte{'l', byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// TestUBJSONCountsBoundedByBytes: a container's count must fit in the bytes
// left at its elements' smallest size. Before, counts were checked only
// against the file's length, and typed containers of Z (no bytes an
// element) turned 64 KiB into 7.3 GiB of values.
func TestUBJSONCountsBoundedByBytes(t *testing.T) {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		data []byte
		want string // "" when it decodes
	}{
		{"typed Z", cat([]byte("[$Z#"), ubjCount(3)), `typed container of 'Z'`},
		{"typed T", cat([]byte("[$T#"), ubjCount(1)), `typed container of 'T'`},
		{"typed F array", cat([]byte("[$F#"), ubjCount(1)), `typed container of 'F'`},
		{"typed F object past bytes", cat([]byte("{$F#"), ubjCount(2), []byte("U\x01a")), "count 2 exceeds the 3 bytes left"},
		{"typed F object fits", cat([]byte("{$F#"), ubjCount(1), []byte("U\x01a")), ""},
		{"int32 count past bytes", cat([]byte("[$l#"), ubjCount(2), []byte("\x00\x00\x00\x01")), "count 2 exceeds the 4 bytes left"},
		{"float64 count past bytes", cat([]byte("[$D#"), ubjCount(1), []byte("\x00\x00\x00")), "count 1 exceeds the 3 bytes left"},
		{"untyped count past bytes", cat([]byte("[#"), ubjCount(3), []byte("ZZ")), "count 3 exceeds the 2 bytes left"},
		{"object count past bytes", cat([]byte("{#"), ubjCount(2), []byte("U\x01aZ")), "count 2 exceeds the 4 bytes left"},
		{"typed uint8 fits", cat([]byte("[$U#"), ubjCount(3), []byte("\x01\x02\x03")), ""},
		{"untyped fits", cat([]byte("[#"), ubjCount(2), []byte("ZT")), ""},
		{"object fits", cat([]byte("{#"), ubjCount(1), []byte("U\x01aT")), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeUBJSON(tc.data)
			if tc.want == "" && err != nil {
				t.Fatalf("error %v, want none", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestUBJSONAllocationBounded decodes the reviewer's 64 KiB file of typed Z
// containers, each claiming 64 Ki elements, and checks it allocates a small
// multiple of its size.
func TestUBJSONAllocationBounded(t *testing.T) {
	const size = 64 << 10
	inner := append([]byte("[$Z#"), ubjCount(size)...)
	n := (size - 7) / len(inner)
	data := append([]byte("[#"), ubjCount(n)...)
	for range n {
		data = append(data, inner...)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := decodeUBJSON(data)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "typed container of 'Z'") {
		t.Errorf("error %v, want the typed Z container refused", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16*size {
		t.Errorf("decoding %d KiB allocated %d KiB, want at most %d KiB", len(data)>>10, got>>10, 16*size>>10)
	}
}
