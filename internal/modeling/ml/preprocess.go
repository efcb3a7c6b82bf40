package ml

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// UnknownCategory says what a Preprocessor does with a category it did not see
// in training.
type UnknownCategory string

const (
	// UnknownIgnore encodes an unseen category as all zeros, like a missing
	// value (scikit-learn's OneHotEncoder(handle_unknown="ignore")). Default.
	UnknownIgnore UnknownCategory = "ignore"
	// UnknownError makes Transform fail, naming the column, value and row.
	UnknownError UnknownCategory = "error"
)

// PreprocessOptions configures FitPreprocessor.
type PreprocessOptions struct {
	// NoStandardize leaves numeric columns unscaled (missing values still
	// become the training mean). By default numeric columns are standardised
	// to mean 0 and standard deviation 1 (population deviation, as
	// scikit-learn's StandardScaler).
	NoStandardize bool
	// Unknown is the policy for unseen categories; "" means UnknownIgnore.
	Unknown UnknownCategory
}

// Preprocessor turns a Dataset's columns into the numeric inputs of a linear
// model: numeric columns standardised (missing values, and ±Inf, imputed with
// the training mean), categorical columns one-hot encoded (one output per category
// seen in training; missing and, by default, unseen categories are all zeros).
// It is fitted on the training set and saved with the model, so prediction
// applies exactly the training transformation. Categories are matched by their
// text, so a dataset whose category codes differ from training's is handled.
type Preprocessor struct {
	Inputs  []InputTransform `json:"inputs"`
	Unknown UnknownCategory  `json:"unknown_category"`
}

// InputTransform is how one input column becomes outputs.
type InputTransform struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Numeric: output = (x - Center) / Scale, with x = Fill when missing.
	Fill   float64 `json:"fill,omitempty"`
	Center float64 `json:"center,omitempty"`
	Scale  float64 `json:"scale,omitempty"`
	// Categorical: one output per category, in this order.
	Categories []string `json:"categories,omitempty"`
}

// FitPreprocessor fits the transformation on a training dataset.
func FitPreprocessor(ds *Dataset, opts PreprocessOptions) (*Preprocessor, error) {
	unknown := opts.Unknown
	if unknown == "" {
		unknown = UnknownIgnore
	}
	if unknown != UnknownIgnore && unknown != UnknownError {
		return nil, fmt.Errorf("unknown-category policy %q: want ignore or error", unknown)
	}
	p := &Preprocessor{Inputs: make([]InputTransform, len(ds.Columns)), Unknown: unknown}
	for j, c := range ds.Columns {
		in := InputTransform{Name: c.Name, Kind: c.Kind}
		switch c.Kind {
		case Numeric:
			mean, std := meanStd(c.Values)
			in.Fill, in.Center, in.Scale = mean, 0, 1
			if !opts.NoStandardize {
				in.Center = mean
				if std > 0 {
					in.Scale = std
				}
			}
		case Categorical:
			seen := make([]bool, len(c.Categories))
			for _, v := range c.Values {
				if v == v {
					seen[int(v)] = true
				}
			}
			for code, ok := range seen {
				if ok {
					in.Categories = append(in.Categories, c.Categories[code])
				}
			}
		default:
			return nil, fmt.Errorf("column %q: unsupported kind %v", c.Name, c.Kind)
		}
		p.Inputs[j] = in
	}
	return p, nil
}

// finite reports whether x is neither NaN nor ±Inf (x-x is NaN for both).
func finite(x float64) bool { return x-x == 0 }

// meanStd returns the mean and population standard deviation of the finite
// values (0 and 0 when there are none). Two passes for accuracy.
func meanStd(values []float32) (float64, float64) {
	sum, n := 0.0, 0
	for _, v := range values {
		if finite(float64(v)) {
			sum += float64(v)
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	mean := sum / float64(n)
	ss := 0.0
	for _, v := range values {
		if finite(float64(v)) {
			d := float64(v) - mean
			ss += d * d
		}
	}
	return mean, math.Sqrt(ss / float64(n))
}

// NumOutputs is the number of output columns.
func (p *Preprocessor) NumOutputs() int {
	n := 0
	for _, in := range p.Inputs {
		if in.Kind == Categorical {
			n += len(in.Categories)
		} else {
			n++
		}
	}
	return n
}

// OutputNames names the output columns: the input name for a numeric column,
// "name=category" for each one-hot output.
func (p *Preprocessor) OutputNames() []string {
	var names []string
	for _, in := range p.Inputs {
		if in.Kind == Numeric {
			names = append(names, in.Name)
			continue
		}
		for _, c := range in.Categories {
			names = append(names, in.Name+"="+c)
		}
	}
	return names
}

// Validate checks a decoded Preprocessor.
func (p *Preprocessor) Validate() error {
	if p.Unknown != UnknownIgnore && p.Unknown != UnknownError {
		return fmt.Errorf("preprocessing: unknown-category policy %q: want ignore or error", p.Unknown)
	}
	for _, in := range p.Inputs {
		if in.Kind == Numeric && (!(in.Scale > 0) || math.IsInf(in.Scale, 0) || math.IsNaN(in.Center) || math.IsNaN(in.Fill)) {
			return fmt.Errorf("preprocessing: column %q: scale %v, center %v, fill %v: want a finite scale > 0", in.Name, in.Scale, in.Center, in.Fill)
		}
		if in.Kind != Numeric && in.Kind != Categorical {
			return fmt.Errorf("preprocessing: column %q: unsupported kind %v", in.Name, in.Kind)
		}
	}
	return nil
}

// Transform applies the transformation to ds, whose columns are matched by
// name (any order; extra columns are ignored). The result is a view of ds, not
// a copy: one-hot outputs are never materialised.
func (p *Preprocessor) Transform(ds *Dataset) (*Design, error) {
	d := &Design{n: ds.NumRows(), p: p.NumOutputs()}
	out := 0
	for _, in := range p.Inputs {
		j := ds.ColumnIndex(in.Name)
		if j < 0 {
			return nil, fmt.Errorf("%w: column %q, an input of the model, is missing", ErrBadData, in.Name)
		}
		c := &ds.Columns[j]
		if c.Kind != in.Kind {
			return nil, fmt.Errorf("%w: column %q is %v, the model was trained with it %v", ErrBadData, in.Name, c.Kind, in.Kind)
		}
		if in.Kind == Numeric {
			d.num = append(d.num, numericView{values: c.Values, fill: in.Fill, center: in.Center, inv: 1 / in.Scale, out: out})
			out++
			continue
		}
		trained := make(map[string]int32, len(in.Categories))
		for k, cat := range in.Categories {
			trained[cat] = int32(out + k)
		}
		index := make([]int32, len(c.Categories)) // dataset code -> output column, -1 if unseen
		for code, cat := range c.Categories {
			o, ok := trained[cat]
			if !ok {
				o = -1
			}
			index[code] = o
		}
		if p.Unknown == UnknownError {
			for r, v := range c.Values {
				switch {
				case v != v:
				case v < 0 || int(v) >= len(index):
					// A code without a category name: a column aligned to a
					// model that takes integer codes (ml.Align).
					return nil, fmt.Errorf("%w: column %q row %d: category code %v was not seen in training", ErrBadData, in.Name, r+1, v)
				case index[int(v)] < 0:
					return nil, fmt.Errorf("%w: column %q row %d: category %q was not seen in training", ErrBadData, in.Name, r+1, c.Categories[int(v)])
				}
			}
		}
		d.cat = append(d.cat, categoricalView{codes: c.Values, index: index})
		out += len(in.Categories)
	}
	return d, nil
}

// Design is the numeric input matrix of a linear model, n rows by p columns,
// as a view over a Dataset (see Preprocessor.Transform). It offers the two
// products a linear model needs, computed in float64 on all cores.
type Design struct {
	n, p int
	num  []numericView
	cat  []categoricalView
}

type numericView struct {
	values            []float32
	fill, center, inv float64
	out               int
}

func (v *numericView) at(i int) float64 {
	x := float64(v.values[i])
	if !finite(x) {
		x = v.fill
	}
	return (x - v.center) * v.inv
}

type categoricalView struct {
	codes []float32
	index []int32
}

// column returns the output column of row i, or -1 for all zeros: missing,
// or a code outside the column's categories (unseen, like an unknown name).
func (v *categoricalView) column(i int) int {
	c := v.codes[i]
	if !(c >= 0 && c < float32(len(v.index))) {
		return -1
	}
	return int(v.index[int(c)])
}

// NumRows is n.
func (d *Design) NumRows() int { return d.n }

// NumCols is p.
func (d *Design) NumCols() int { return d.p }

// Row writes row i (p values) into dst, for tests and single predictions.
func (d *Design) Row(i int, dst []float64) {
	clear(dst[:d.p])
	for k := range d.num {
		dst[d.num[k].out] = d.num[k].at(i)
	}
	for k := range d.cat {
		if o := d.cat[k].column(i); o >= 0 {
			dst[o] = 1
		}
	}
}

// tileRows is how many rows Mul and MulT process column by column before
// moving on, so that the rows' outputs stay in cache across columns.
const tileRows = 2048

// RowBlocks is the number of row blocks (goroutines) ParallelRows uses for n
// rows: one per core, at least 4*tileRows rows each, so that small data runs on
// one goroutine.
func RowBlocks(n int) int {
	return max(1, min(runtime.GOMAXPROCS(0), n/(4*tileRows)))
}

// ParallelRows runs fn over RowBlocks(n) consecutive blocks of [0, n), each on
// its own goroutine, and waits. Block boundaries depend only on n and
// GOMAXPROCS, so sums kept per block and added in block order are
// deterministic.
func ParallelRows(n int, fn func(block, lo, hi int)) {
	blocks := RowBlocks(n)
	if blocks == 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + blocks - 1) / blocks
	for b := range blocks {
		wg.Add(1)
		go func(b int) {
			defer wg.Done()
			fn(b, b*step, min((b+1)*step, n))
		}(b)
	}
	wg.Wait()
}

// Mul sets out = X·W, where W is p x k and out n x k, both row-major.
func (d *Design) Mul(w []float64, k int, out []float64) {
	ParallelRows(d.n, func(_, lo, hi int) {
		for t0 := lo; t0 < hi; t0 += tileRows {
			d.mulTile(w, k, out, t0, min(t0+tileRows, hi))
		}
	})
}

func (d *Design) mulTile(w []float64, k int, out []float64, lo, hi int) {
	clear(out[lo*k : hi*k])
	for c := range d.num {
		v := &d.num[c]
		if k == 1 {
			wj := w[v.out]
			for i := lo; i < hi; i++ {
				out[i] += v.at(i) * wj
			}
			continue
		}
		wj := w[v.out*k : v.out*k+k]
		for i := lo; i < hi; i++ {
			x := v.at(i)
			o := out[i*k : i*k+k]
			for m := range o {
				o[m] += x * wj[m]
			}
		}
	}
	for c := range d.cat {
		v := &d.cat[c]
		for i := lo; i < hi; i++ {
			if j := v.column(i); j >= 0 {
				o := out[i*k : i*k+k]
				for m := range o {
					o[m] += w[j*k+m]
				}
			}
		}
	}
}

// MulT sets out = Xᵀ·R, where R is n x k and out p x k, both row-major. Each
// row block sums into its own buffer; the buffers are added in block order,
// so the result does not depend on goroutine timing.
func (d *Design) MulT(r []float64, k int, out []float64) {
	partial := make([][]float64, RowBlocks(d.n))
	ParallelRows(d.n, func(b, lo, hi int) {
		acc := out
		if len(partial) > 1 {
			acc = make([]float64, d.p*k)
		} else {
			clear(acc[:d.p*k])
		}
		for t0 := lo; t0 < hi; t0 += tileRows {
			d.mulTTile(r, k, acc, t0, min(t0+tileRows, hi))
		}
		partial[b] = acc
	})
	if len(partial) == 1 {
		return
	}
	clear(out[:d.p*k])
	for _, acc := range partial {
		for j := range acc {
			out[j] += acc[j]
		}
	}
}

func (d *Design) mulTTile(r []float64, k int, acc []float64, lo, hi int) {
	for c := range d.num {
		v := &d.num[c]
		if k == 1 {
			s := 0.0
			for i := lo; i < hi; i++ {
				s += v.at(i) * r[i]
			}
			acc[v.out] += s
			continue
		}
		a := acc[v.out*k : v.out*k+k]
		for i := lo; i < hi; i++ {
			x := v.at(i)
			ri := r[i*k : i*k+k]
			for m := range a {
				a[m] += x * ri[m]
			}
		}
	}
	for c := range d.cat {
		v := &d.cat[c]
		for i := lo; i < hi; i++ {
			if j := v.column(i); j >= 0 {
				a := acc[j*k : j*k+k]
				ri := r[i*k : i*k+k]
				for m := range a {
					a[m] += ri[m]
				}
			}
		}
	}
}
