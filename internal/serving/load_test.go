package serving

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// Every served flavor loads from a registered version's artifacts and
// predicts what the library itself predicted (Booster.predict) on the
// golden rows, to 1e-6 relative.
func TestLoadFlavorsPredictLikeTheLibrary(t *testing.T) {
	atriumModel, err := modelfile.Parse(fixture(t, "lightgbm_binary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	atriumFiles, err := MLmodelFiles(atriumModel, timeZero)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		files    map[string][]byte
		golden   string
		platform string
		outputs  int
	}{
		{"lightgbm binary", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_binary.txt"), ""), "lightgbm_binary", "lightgbm", 1},
		{"lightgbm regression", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_regression.txt"), ""), "lightgbm_regression", "lightgbm", 1},
		{"lightgbm multiclass", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_multiclass.txt"), ""), "lightgbm_multiclass", "lightgbm", 3},
		{"xgboost binary json", flavorDir("xgboost", "model.json", fixture(t, "xgboost_binary.json"), ""), "xgboost_binary", "xgboost", 1},
		{"xgboost binary ubjson", flavorDir("xgboost", "model.xgb", fixture(t, "xgboost_binary.ubj"), ""), "xgboost_binary", "xgboost", 1},
		{"xgboost regression ubjson", flavorDir("xgboost", "model.xgb", fixture(t, "xgboost_regression.ubj"), ""), "xgboost_regression", "xgboost", 1},
		{"xgboost multiclass ubjson", flavorDir("xgboost", "model.ubj", fixture(t, "xgboost_multiclass.ubj"), ""), "xgboost_multiclass", "xgboost", 3},
		{"xgboost categorical", flavorDir("xgboost", "model.json", fixture(t, "xgboost_categorical.json"), ""), "xgboost_categorical", "xgboost", 1},
		{"atrium", atriumFiles, "lightgbm_binary", "atrium", 1},
	}
	w := newWorld(t)
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			v := w.register(t, name, tc.files, tracking.KV{Key: FeatureServiceTag, Value: "ranker_v1"})
			w.alias(t, name, "champion", v)
			d, err := w.loader.LoadURI(ctx, "models:/"+name+"@champion")
			if err != nil {
				t.Fatal(err)
			}
			if d.Name != name || d.Version != v || d.Platform != tc.platform || d.NumOutputs() != tc.outputs || d.FeatureService != "ranker_v1" {
				t.Fatalf("loaded %s v%s platform %s, %d outputs, feature service %q", d.Name, d.Version, d.Platform, d.NumOutputs(), d.FeatureService)
			}
			// XGBoost's numeric goldens were trained on the three numeric
			// columns only.
			want := "x0 x1 x2 c3"
			if tc.platform == "xgboost" && tc.golden != "xgboost_categorical" {
				want = "x0 x1 x2"
			}
			if got := names(d.Inputs); got != want {
				t.Fatalf("inputs %s, want %s", got, want)
			}
			if len(d.Inputs) == 4 && d.Inputs[3].Kind != ml.Categorical {
				t.Fatalf("c3 is %v, want categorical", d.Inputs[3].Kind)
			}
			ds := golden(t, d)
			if tc.golden == "xgboost_categorical" {
				// XGBoost refuses unseen and negative categories; the
				// generator predicted those rows as missing.
				ds.Columns[3].Values[1] = float32(math.NaN())
				ds.Columns[3].Values[2] = float32(math.NaN())
			}
			got, err := d.Predict(ctx, ds)
			if err != nil {
				t.Fatal(err)
			}
			closeTo(t, tc.name, got, goldenPred(t, tc.golden))
			buf := make([]float64, len(got)+5)
			into, err := d.PredictInto(ctx, ds, buf)
			if err != nil || !slices.Equal(into, got) || &into[0] != &buf[0] {
				t.Fatalf("PredictInto: %v, same values %v, into the buffer %v", err, slices.Equal(into, got), err == nil && &into[0] == &buf[0])
			}
		})
	}
}

func names(fs []modelfile.Feature) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.Name
	}
	return strings.Join(s, " ")
}

// A version whose files Atrium does not serve is refused when loaded, with
// a message naming what it found and what is supported.
func TestLoadRefuses(t *testing.T) {
	lgbText := fixture(t, "lightgbm_binary.txt")
	tests := []struct {
		name     string
		files    map[string][]byte
		sentinel error
		want     string
	}{
		{"sklearn pickle", map[string][]byte{
			MLmodelFile: []byte("flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: cloudpickle\n"),
			"model.pkl": []byte("\x80\x04junk")},
			ErrUnsupportedFlavor, "flavor(s) python_function, sklearn; Atrium serves atrium, lightgbm, xgboost"},
		{"lightgbm sklearn API", map[string][]byte{
			MLmodelFile: []byte("flavors:\n  lightgbm:\n    data: model.pkl\n    model_class: lightgbm.sklearn.LGBMClassifier\n"),
			"model.pkl": []byte("\x80\x04junk")},
			ErrUnsupportedFlavor, "log the Booster instead (mlflow.lightgbm.log_model(model.booster_"},
		// MLflow 3 writes model.skops for a scikit-learn API estimator,
		// or cloudpickle under another name: the class tells, whatever the
		// file, and the version is refused as a flavor, not a corrupt file.
		{"lightgbm sklearn API, skops", map[string][]byte{
			MLmodelFile:   []byte("flavors:\n  lightgbm:\n    data: model.skops\n    model_class: lightgbm.sklearn.LGBMClassifier\n    serialization_format: skops\n"),
			"model.skops": []byte("PK\x03\x04junk")},
			ErrUnsupportedFlavor, "scikit-learn API estimator (lightgbm.sklearn.LGBMClassifier in model.skops), not a lightgbm model file; Atrium serves the library's own model file: log the Booster instead (mlflow.lightgbm.log_model(model.booster_"},
		{"skops without a class", map[string][]byte{
			MLmodelFile:   []byte("flavors:\n  lightgbm:\n    data: model.skops\n"),
			"model.skops": []byte("PK\x03\x04junk")},
			ErrUnsupportedFlavor, "(model.skops), not a lightgbm model file"},
		{"lightgbm sklearn API, cloudpickle", map[string][]byte{
			MLmodelFile: []byte("flavors:\n  lightgbm:\n    data: model\n    model_class: lightgbm.sklearn.LGBMRanker\n"),
			"model":     []byte("\x80\x05junk")},
			ErrUnsupportedFlavor, "(lightgbm.sklearn.LGBMRanker in model)"},
		{"subclass of an estimator", map[string][]byte{
			MLmodelFile: []byte("flavors:\n  lightgbm:\n    data: model.pkl\n    model_class: myteam.models.LGBMWithPrior\n"),
			"model.pkl": []byte("\x80\x05junk")},
			ErrUnsupportedFlavor, "log the Booster instead"},
		{"no MLmodel", map[string][]byte{"model.lgb": lgbText}, ErrModelFormat, "no MLmodel file"},
		{"missing data file", map[string][]byte{MLmodelFile: []byte("flavors:\n  lightgbm:\n    data: model.lgb\n")},
			ErrModelFormat, "flavors.lightgbm.data names model.lgb, which the model directory lacks"},
		{"data outside the directory", map[string][]byte{MLmodelFile: []byte("flavors:\n  lightgbm:\n    data: ../../x\n")},
			ErrModelFormat, "is not a path inside the model directory"},
		{"wrong format for the flavor", flavorDir("xgboost", "model.xgb", lgbText, ""), ErrModelFormat, "holds a lightgbm model"},
		{"corrupt model", flavorDir("lightgbm", "model.lgb", lgbText[:len(lgbText)/2], ""), ErrModelFormat, "model.lgb (lightgbm flavor)"},
		{"signature of another width", flavorDir("lightgbm", "model.lgb", lgbText, `[{"type": "double", "name": "a"}]`),
			ErrModelFormat, "the signature has 1 inputs, the model file 4 features"},
		{"string for a numeric feature", flavorDir("lightgbm", "model.lgb", lgbText,
			`[{"type": "string", "name": "a"}, {"type": "double", "name": "b"}, {"type": "double", "name": "c"}, {"type": "long", "name": "d"}]`),
			ErrModelFormat, `signature input "a" is string, but feature 0 of the model ("x0") is numeric`},
		{"not YAML", map[string][]byte{MLmodelFile: []byte("flavors: [\n")}, ErrModelFormat, "MLmodel is not valid YAML"},
		// A "billion laughs": each level repeats the previous nine times;
		// decoding it expanded to seconds and hundreds of MiB.
		{"alias bomb", map[string][]byte{MLmodelFile: []byte(aliasBomb(7))}, ErrModelFormat, "MLmodel line 1: YAML anchors and aliases are not accepted"},
		{"merge key", map[string][]byte{MLmodelFile: []byte("base: &b\n  data: model.lgb\nflavors:\n  lightgbm:\n    <<: *b\n")},
			ErrModelFormat, "MLmodel line 1: YAML anchors and aliases are not accepted"},
	}
	w := newWorld(t)
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			v := w.register(t, name, tc.files)
			_, err := w.loader.Load(ctx, name, v)
			if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %v containing %q", err, tc.sentinel, tc.want)
			}
		})
	}
}

// aliasBomb writes a YAML document of levels anchors, each a list of nine
// aliases of the previous one: 9^levels strings once expanded.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [\"lol\"]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("flavors:\n  lightgbm:\n    data: model.lgb\n")
	return b.String()
}

// The signature names the inputs of a model file that has only generated
// names, and unknown models, versions and aliases are ErrNotFound.
func TestLoadSignatureNamesAndNotFound(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sig := `[{"type": "double", "name": "price"}, {"type": "double", "name": "rooms"}, {"type": "float", "name": "age"}, {"type": "string", "name": "city"}]`
	v := w.register(t, "m", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_binary.txt"), sig))
	d, err := w.loader.Load(ctx, "m", v)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(d.Inputs); got != "price rooms age city" {
		t.Fatalf("inputs %s", got)
	}
	if d.InputIndex("city") != 3 || d.InputIndex("nope") != -1 {
		t.Fatalf("InputIndex city %d, nope %d", d.InputIndex("city"), d.InputIndex("nope"))
	}
	if c, ok := d.CategoryCode(3, "4"); !ok || c != 4 {
		t.Fatalf("CategoryCode(3, 4) = %v, %v", c, ok)
	}
	if _, ok := d.CategoryCode(3, "red"); ok {
		t.Fatal("a non-integer category of a model without category names has a code")
	}
	for _, tc := range []struct{ name, version, want string }{
		{"nope", "1", "(name=nope, version=1) not found"},
		{"m", "7", "Model Version (name=m, version=7) not found"},
		{"m", "@champion", `model "m" has no alias "champion": set it with`},
		{"m", "x", "must be an integer"},
	} {
		_, err := w.loader.Load(ctx, tc.name, tc.version)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%s, %s): %v, want ErrNotFound containing %q", tc.name, tc.version, err, tc.want)
		}
	}
}

// A tree model's directory also holds its trees as LightGBM text under the
// lightgbm and python_function flavors (for mlflow.lightgbm and
// mlflow.pyfunc, which tests/interop/mlflow runs); a linear model's has
// the atrium flavor only. Load still prefers the atrium flavor (the
// "atrium" case of TestLoadFlavorsPredictLikeTheLibrary).
func TestMLmodelFilesFlavors(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    []string // flavors
	}{
		{"lightgbm_binary.txt", []string{"atrium", "lightgbm", "python_function"}},
		{"linear_multiclass.atrium.json", []string{"atrium"}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			m, err := modelfile.Parse(fixture(t, tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			files, err := MLmodelFiles(m, timeZero)
			if err != nil {
				t.Fatal(err)
			}
			mm, err := parseMLmodel(files[MLmodelFile])
			if err != nil {
				t.Fatal(err)
			}
			if got := mm.flavorNames(); !slices.Equal(got, tc.want) {
				t.Fatalf("flavors %v, want %v", got, tc.want)
			}
			lgb, has := files[LightGBMModelFile]
			if has != (len(tc.want) > 1) {
				t.Fatalf("model.lgb present: %v, want %v", has, !has)
			}
			if has {
				want, _ := m.MarshalLightGBM()
				if !bytes.Equal(lgb, want) || mm.Flavors["lightgbm"]["data"] != LightGBMModelFile || mm.Flavors["python_function"]["loader_module"] != "mlflow.lightgbm" {
					t.Fatalf("lightgbm flavors %v, model.lgb %d bytes (want %d)", mm.Flavors, len(lgb), len(want))
				}
			}
			if order := ModelDirOrder(files); order[len(order)-1] != MLmodelFile {
				t.Fatalf("store order %v: MLmodel must be last", order)
			}
		})
	}
}
