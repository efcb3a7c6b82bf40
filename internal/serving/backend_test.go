package serving

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/serving/oip"
)

// goldenRows returns golden_data.csv as rows of 4 doubles (NaN = missing).
func goldenRows(t *testing.T, d *Deployed) [][]float64 {
	ds := golden(t, d)
	rows := make([][]float64, ds.NumRows())
	for r := range rows {
		for j := range ds.Columns {
			c := &ds.Columns[j]
			if c.Float64 != nil {
				rows[r] = append(rows[r], c.Float64[r])
			} else {
				rows[r] = append(rows[r], float64(c.Values[r]))
			}
		}
	}
	return rows
}

func backendWorld(t *testing.T) (*Backend, *world, string) {
	w := newWorld(t)
	v1, _ := twoModels(t, w, "m")
	w.alias(t, "m", "champion", v1)
	return NewBackend(newService(t, w, Options{})), w, v1
}

// Infer answers LightGBM's own predictions whether the rows come as one
// [batch, n] tensor (FP64 or FP32) or one tensor per feature, with the
// category as BYTES text.
func TestBackendInfer(t *testing.T) {
	b, _, v1 := backendWorld(t)
	ctx := context.Background()
	d, err := b.svc.Resolve(ctx, "m", "", "")
	if err != nil {
		t.Fatal(err)
	}
	rows := goldenRows(t, d)
	want := goldenPred(t, "lightgbm_binary")
	n := int64(len(rows))

	var matrix []float64
	for _, r := range rows {
		matrix = append(matrix, r...)
	}
	perFeature := make([]oip.Tensor, 4)
	for j, name := range []string{"x0", "x1", "x2"} {
		perFeature[j] = oip.Tensor{Name: name, Datatype: oip.FP64, Shape: []int64{n}}
		for _, r := range rows {
			perFeature[j].FP64 = append(perFeature[j].FP64, r[j])
		}
	}
	perFeature[3] = oip.Tensor{Name: "c3", Datatype: oip.BYTES, Shape: []int64{n, 1}}
	for _, r := range rows {
		s := ""
		if !math.IsNaN(r[3]) {
			s = strconv.Itoa(int(r[3]))
		}
		perFeature[3].Bytes = append(perFeature[3].Bytes, []byte(s))
	}
	slices.Reverse(perFeature) // order does not matter: names do
	for _, tc := range []struct {
		name   string
		inputs []oip.Tensor
	}{
		{"matrix FP64", []oip.Tensor{{Name: "input-0", Datatype: oip.FP64, Shape: []int64{n, 4}, FP64: matrix}}},
		{"per feature, BYTES category", perFeature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := b.Infer(ctx, "m", "", &oip.InferRequest{ID: "r1", Inputs: tc.inputs})
			if err != nil {
				t.Fatal(err)
			}
			if res.ModelName != "m" || res.ModelVersion != v1 || res.ID != "r1" || len(res.Outputs) != 1 {
				t.Fatalf("response %+v", res)
			}
			o := res.Outputs[0]
			if o.Name != "predict" || o.Datatype != oip.FP64 || !slices.Equal(o.Shape, []int64{n}) {
				t.Fatalf("output %s %s %v", o.Name, o.Datatype, o.Shape)
			}
			// Row 1 holds category 17, which the model never saw: LightGBM
			// and Atrium both score it as the "other" branch, whether it
			// comes as a number or as text.
			closeTo(t, tc.name, o.FP64, want)
		})
	}
	md, err := b.ModelMetadata(ctx, "m", "")
	if err != nil {
		t.Fatal(err)
	}
	if md.Platform != "lightgbm" || md.Versions[0] != v1 || len(md.Inputs) != 4 || md.Inputs[3].Datatype != oip.BYTES || md.Inputs[0].Datatype != oip.FP64 || md.Outputs[0].Name != "predict" {
		t.Fatalf("metadata %+v", md)
	}
	if ok, err := b.ModelReady(ctx, "m", ""); !ok || err != nil {
		t.Fatalf("ready = %v, %v", ok, err)
	}
	if !b.ServerReady(ctx) {
		t.Fatal("server not ready")
	}
}

// Bad requests are errors wrapping the protocol's sentinels, naming the
// part at fault; never a panic.
func TestBackendInferErrors(t *testing.T) {
	b, w, _ := backendWorld(t)
	w.register(t, "nochampion", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_binary.txt"), ""))
	sk := w.register(t, "sk", map[string][]byte{MLmodelFile: []byte("flavors:\n  sklearn:\n    pickled_model: model.pkl\n")})
	w.alias(t, "sk", "champion", sk)
	f64 := func(name string, shape []int64, v ...float64) oip.Tensor {
		return oip.Tensor{Name: name, Datatype: oip.FP64, Shape: shape, FP64: v}
	}
	ok4 := []oip.Tensor{f64("x0", []int64{1}, 1), f64("x1", []int64{1}, 1), f64("x2", []int64{1}, 1), f64("c3", []int64{1}, 1)}
	tests := []struct {
		name, model, version string
		inputs               []oip.Tensor
		outputs              []oip.RequestedOutput
		sentinel             error
		want                 string
	}{
		{"unknown model", "nope", "", ok4, nil, oip.ErrModelNotFound, "not found"},
		{"unknown version", "m", "9", ok4, nil, oip.ErrModelNotFound, "version=9) not found"},
		{"no champion", "nochampion", "", ok4, nil, oip.ErrModelNotFound, `model "nochampion" has no alias "champion": set it with`},
		{"unsupported flavor", "sk", "", ok4, nil, oip.ErrModelUnusable, "flavor(s) sklearn; Atrium serves atrium, lightgbm, xgboost"},
		{"no inputs", "m", "", nil, nil, oip.ErrInvalidInput, "no inputs: send one [batch, 4] tensor or one tensor per feature (x0, x1, x2, c3)"},
		{"matrix width", "m", "", []oip.Tensor{f64("in", []int64{1, 3}, 1, 2, 3)}, nil, oip.ErrInvalidInput, `input "in" has shape [1 3], expected [batch, 4]`},
		{"unknown feature", "m", "", append(ok4[:3:3], f64("zz", []int64{1}, 1)), nil, oip.ErrInvalidInput, `input "zz" is not a feature of model m version 1; its features are x0, x1, x2, c3`},
		{"missing feature", "m", "", ok4[:3], nil, oip.ErrInvalidInput, "missing input(s) c3"},
		{"feature twice", "m", "", append(ok4[:4:4], ok4[0]), nil, oip.ErrInvalidInput, `input "x0" is given twice`},
		{"feature shape", "m", "", append(ok4[:3:3], f64("c3", []int64{1, 2}, 1, 2)), nil, oip.ErrInvalidInput, `input "c3" has shape [1 2], expected [batch] or [batch, 1]`},
		{"batch mismatch", "m", "", append(ok4[:3:3], f64("c3", []int64{2}, 1, 2)), nil, oip.ErrInvalidInput, `input "c3" has 2 rows, the other inputs 1`},
		{"BYTES for a number", "m", "", append(ok4[1:4:4], oip.Tensor{Name: "x0", Datatype: oip.BYTES, Shape: []int64{1}, Bytes: [][]byte{[]byte("1")}}),
			nil, oip.ErrInvalidInput, `input "x0" is BYTES, but feature "x0" of model m version 1 is numeric`},
		{"values short of the shape", "m", "", append(ok4[:3:3], f64("c3", []int64{3})), nil, oip.ErrInvalidInput, `input "c3" has 0 values, its shape [3] needs 3`},
		{"negative shape", "m", "", append(ok4[:3:3], f64("c3", []int64{-1})), nil, oip.ErrInvalidInput, "expected non-negative dimensions"},
		{"datatype", "m", "", append(ok4[:3:3], oip.Tensor{Name: "c3", Datatype: "UINT8", Shape: []int64{1}}), nil, oip.ErrInvalidInput, "datatype UINT8, expected FP32"},
		{"unknown output", "m", "", ok4, []oip.RequestedOutput{{Name: "probabilities"}}, oip.ErrInvalidInput, `requested output "probabilities": model m has one output, "predict"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Infer(context.Background(), tc.model, tc.version, &oip.InferRequest{Inputs: tc.inputs, Outputs: tc.outputs})
			if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %v containing %q", err, tc.sentinel, tc.want)
			}
		})
	}
	if ok, err := b.ModelReady(context.Background(), "nope", ""); ok || !errors.Is(err, oip.ErrModelNotFound) {
		t.Fatalf("ModelReady(nope) = %v, %v", ok, err)
	}
	if _, err := b.ModelMetadata(context.Background(), "nochampion", ""); !errors.Is(err, oip.ErrModelNotFound) {
		t.Fatalf("ModelMetadata(nochampion) = %v", err)
	}
}

// A linear Atrium model (standardisation and one-hot encoding inside)
// serves through the atrium flavor, its category named in BYTES, and
// predicts what the model file predicts; an unknown category is missing.
func TestBackendLinearAtriumModel(t *testing.T) {
	m, err := modelfile.Parse(fixture(t, "linear_multiclass.atrium.json"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := MLmodelFiles(m, timeZero)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	w.alias(t, "lin", "champion", w.register(t, "lin", files))
	b := NewBackend(newService(t, w, Options{}))
	x := [][]float64{{1.5007411241531372, 4.475118160247803, -0.8615694046020508, 106.23473358154297},
		{-0.9027822017669678, 5.028663158416748, -0.3963274657726288, 98.66604614257812}, {0, 5, 0, 100}}
	hoods := []string{"south", "east", "atlantis"}
	var in []oip.Tensor
	for j, name := range []string{"x1", "x2", "x3", "x4"} {
		tn := oip.Tensor{Name: name, Datatype: oip.FP64, Shape: []int64{3}}
		for _, r := range x {
			tn.FP64 = append(tn.FP64, r[j])
		}
		in = append(in, tn)
	}
	in = append(in, oip.Tensor{Name: "hood", Datatype: oip.BYTES, Shape: []int64{3}, Bytes: [][]byte{[]byte(hoods[0]), []byte(hoods[1]), []byte(hoods[2])}})
	res, err := b.Infer(context.Background(), "lin", "", &oip.InferRequest{Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Outputs[0]; !slices.Equal(o.Shape, []int64{3, 3}) || res.ModelVersion != "1" {
		t.Fatalf("output shape %v, version %s", o.Shape, res.ModelVersion)
	}
	ds := &ml.Dataset{}
	for j, name := range []string{"x1", "x2", "x3", "x4"} {
		c := ml.Column{Name: name, Kind: ml.Numeric}
		for _, r := range x {
			c.Values = append(c.Values, float32(r[j]))
			c.Float64 = append(c.Float64, r[j])
		}
		ds.Columns = append(ds.Columns, c)
	}
	ds.Columns = append(ds.Columns, ml.Column{Name: "hood", Kind: ml.Categorical, Categories: []string{"east", "north", "south"},
		Values: []float32{2, 0, float32(math.NaN())}})
	want, err := m.Predict(ds)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "linear", res.Outputs[0].FP64, want)
}
