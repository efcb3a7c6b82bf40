package ml

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func preprocessData() *Dataset {
	return &Dataset{Columns: []Column{
		{Name: "x", Kind: Numeric, Values: []float32{1, 2, nan, 5}},
		{Name: "const", Kind: Numeric, Values: []float32{3, 3, 3, 3}},
		// "c" is in the category list but in no training row: no output for it.
		{Name: "hood", Kind: Categorical, Values: []float32{0, 1, 0, nan}, Categories: []string{"a", "b", "c"}},
	}}
}

func TestPreprocessorFitTransform(t *testing.T) {
	p, err := FitPreprocessor(preprocessData(), PreprocessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mean := 8.0 / 3
	std := math.Sqrt(((1-mean)*(1-mean) + (2-mean)*(2-mean) + (5-mean)*(5-mean)) / 3)
	want := []InputTransform{
		{Name: "x", Kind: Numeric, Fill: mean, Center: mean, Scale: std},
		{Name: "const", Kind: Numeric, Fill: 3, Center: 3, Scale: 1},
		{Name: "hood", Kind: Categorical, Categories: []string{"a", "b"}},
	}
	if !reflect.DeepEqual(p.Inputs, want) || p.Unknown != UnknownIgnore {
		t.Fatalf("fitted %+v, want %+v", p.Inputs, want)
	}
	if got := p.OutputNames(); !reflect.DeepEqual(got, []string{"x", "const", "hood=a", "hood=b"}) {
		t.Errorf("output names %v", got)
	}
	// New data: columns in another order, category codes in another order, an
	// unseen category "z" and the training-only-listed "c".
	data := &Dataset{Columns: []Column{
		{Name: "hood", Kind: Categorical, Values: []float32{0, 1, 2, 3}, Categories: []string{"b", "a", "z", "c"}},
		{Name: "const", Kind: Numeric, Values: []float32{3, 4, 3, 3}},
		{Name: "x", Kind: Numeric, Values: []float32{float32(mean), nan, 1, 2}},
	}}
	d, err := p.Transform(data)
	if err != nil {
		t.Fatal(err)
	}
	rows := [][]float64{
		{0, 0, 0, 1},
		{0, 1, 1, 0},
		{(1 - mean) / std, 0, 0, 0},
		{(2 - mean) / std, 0, 0, 0},
	}
	row := make([]float64, 4)
	for i, w := range rows {
		d.Row(i, row)
		for j := range w {
			if math.Abs(row[j]-w[j]) > 1e-6 {
				t.Errorf("row %d = %v, want %v", i, row, w)
				break
			}
		}
	}
	p.Unknown = UnknownError
	if _, err := p.Transform(data); err == nil || !strings.Contains(err.Error(), `column "hood" row 3: category "z" was not seen in training`) {
		t.Errorf("unknown category with policy error: %v", err)
	}
	data.Columns[0].Name = "district"
	if _, err := p.Transform(data); !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), `column "hood", an input of the model, is missing`) {
		t.Errorf("missing column: %v", err)
	}
	data.Columns[0].Name, data.Columns[2].Kind = "hood", Categorical
	if _, err := p.Transform(data); err == nil || !strings.Contains(err.Error(), `column "x" is categorical, the model was trained with it numeric`) {
		t.Errorf("kind mismatch: %v", err)
	}
}

// TestPreprocessorCodesWithoutNames: a categorical column aligned to features
// without category names (an all-missing training column, whose empty list
// an Atrium model file does not keep) holds the data's integers as codes;
// codes outside the column's categories are unseen, never an index panic.
func TestPreprocessorCodesWithoutNames(t *testing.T) {
	p, err := FitPreprocessor(preprocessData(), PreprocessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	aligned, err := Align(&Dataset{Columns: []Column{
		{Name: "x", Kind: Numeric, Values: []float32{1, 2}},
		{Name: "const", Kind: Numeric, Values: []float32{3, 3}},
		{Name: "hood", Kind: Numeric, Values: []float32{3, -1}},
	}}, []Feature{{Name: "x"}, {Name: "const"}, {Name: "hood", Kind: Categorical}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Transform(aligned)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float64, 4)
	for i := range 2 {
		if d.Row(i, row); row[2] != 0 || row[3] != 0 {
			t.Errorf("row %d = %v, want no category set", i, row)
		}
	}
	p.Unknown = UnknownError
	if _, err := p.Transform(aligned); err == nil || !strings.Contains(err.Error(), `column "hood" row 1: category code 3 was not seen in training`) {
		t.Errorf("code without a name, policy error: %v", err)
	}
}

func TestPreprocessorNoStandardizeAndJSON(t *testing.T) {
	p, err := FitPreprocessor(preprocessData(), PreprocessOptions{NoStandardize: true, Unknown: UnknownError})
	if err != nil {
		t.Fatal(err)
	}
	if in := p.Inputs[0]; in.Center != 0 || in.Scale != 1 || in.Fill != 8.0/3 {
		t.Errorf("unstandardised input %+v, want center 0, scale 1, fill the mean", in)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"kind":"categorical"`) {
		t.Errorf("JSON %s does not spell out kinds", b)
	}
	var back Preprocessor
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(&back, p) || back.Validate() != nil {
		t.Errorf("round trip: %v %+v", err, back)
	}
	back.Inputs[0].Scale = 0
	if err := back.Validate(); err == nil {
		t.Error("scale 0 accepted")
	}
	if _, err := FitPreprocessor(preprocessData(), PreprocessOptions{Unknown: "drop"}); err == nil {
		t.Error("unknown policy accepted")
	}
}

// TestDesignProducts checks Mul and MulT against the dense matrix, on enough
// rows to run several row blocks in parallel.
func TestDesignProducts(t *testing.T) {
	const n = 20000
	r := rand.New(rand.NewPCG(1, 2))
	ds := &Dataset{Columns: []Column{
		{Name: "a", Kind: Numeric, Values: make([]float32, n)},
		{Name: "b", Kind: Numeric, Values: make([]float32, n)},
		{Name: "c", Kind: Categorical, Values: make([]float32, n), Categories: []string{"x", "y", "z"}},
	}}
	for i := range n {
		ds.Columns[0].Values[i] = float32(r.NormFloat64())
		ds.Columns[1].Values[i] = float32(r.Float64() * 10)
		ds.Columns[2].Values[i] = float32(r.IntN(3))
		if i%17 == 0 {
			ds.Columns[1].Values[i] = nan
			ds.Columns[2].Values[i] = nan
		}
	}
	p, err := FitPreprocessor(ds, PreprocessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Transform(ds)
	if err != nil {
		t.Fatal(err)
	}
	cols := d.NumCols()
	dense := make([]float64, n*cols)
	for i := range n {
		d.Row(i, dense[i*cols:(i+1)*cols])
	}
	for _, k := range []int{1, 3} {
		w := make([]float64, cols*k)
		for j := range w {
			w[j] = r.NormFloat64()
		}
		got := make([]float64, n*k)
		d.Mul(w, k, got)
		for i := range n {
			for m := range k {
				want := 0.0
				for j := range cols {
					want += dense[i*cols+j] * w[j*k+m]
				}
				if math.Abs(got[i*k+m]-want) > 1e-9 {
					t.Fatalf("k=%d: (XW)[%d,%d] = %v, want %v", k, i, m, got[i*k+m], want)
				}
			}
		}
		res := make([]float64, n*k)
		for i := range res {
			res[i] = r.NormFloat64()
		}
		gotT := make([]float64, cols*k)
		d.MulT(res, k, gotT)
		for j := range cols {
			for m := range k {
				want := 0.0
				for i := range n {
					want += dense[i*cols+j] * res[i*k+m]
				}
				if math.Abs(gotT[j*k+m]-want) > 1e-8 {
					t.Fatalf("k=%d: (XᵀR)[%d,%d] = %v, want %v", k, j, m, gotT[j*k+m], want)
				}
			}
		}
	}
}

// TestPreprocessorInfinities: ±Inf (a CSV number beyond float32's range) is
// imputed like a missing value, so a linear model never sees it.
func TestPreprocessorInfinities(t *testing.T) {
	inf := float32(math.Inf(1))
	ds := &Dataset{Columns: []Column{{Name: "x", Kind: Numeric, Values: []float32{1, inf, 3, -inf}}}}
	p, err := FitPreprocessor(ds, PreprocessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in := p.Inputs[0]; in.Center != 2 || in.Scale != 1 || in.Fill != 2 {
		t.Fatalf("fitted %+v, want mean 2 and deviation 1 of the finite values", in)
	}
	d, _ := p.Transform(ds)
	row := make([]float64, 1)
	for i, want := range []float64{-1, 0, 1, 0} {
		if d.Row(i, row); row[0] != want {
			t.Errorf("row %d = %v, want %v", i, row[0], want)
		}
	}
}
