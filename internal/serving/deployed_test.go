package serving

import (
	"math"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// TestDatasetPool: a released dataset comes back from NewDataset all
// missing, with the rows asked for; a request larger than the pooled one,
// or a dataset whose column was replaced by a shorter one, gets a fresh
// dataset rather than an index out of range.
func TestDatasetPool(t *testing.T) {
	d := &Deployed{Name: "m", Version: "1", Inputs: []ml.Feature{
		{Name: "price", Kind: ml.Numeric},
		{Name: "city", Kind: ml.Categorical, Categories: []string{"a", "b"}},
	}}
	fill := func(ds *ml.Dataset) {
		for i := range ds.Columns {
			c := &ds.Columns[i]
			for r := range c.Values {
				c.Values[r] = 1
			}
			for r := range c.Float64 {
				c.Float64[r] = 2
			}
		}
	}
	check := func(step string, ds *ml.Dataset, rows int) {
		t.Helper()
		if ds.NumRows() != rows || len(ds.Columns) != 2 || ds.Label != nil {
			t.Fatalf("%s: %d rows, %d columns, label %v; want %d rows, 2 columns, no label", step, ds.NumRows(), len(ds.Columns), ds.Label, rows)
		}
		for i, c := range ds.Columns {
			if c.Name != d.Inputs[i].Name || c.Kind != d.Inputs[i].Kind || len(c.Values) != rows {
				t.Fatalf("%s: column %d is %q %v with %d values", step, i, c.Name, c.Kind, len(c.Values))
			}
			if (c.Kind == ml.Numeric && len(c.Float64) != rows) || (c.Kind == ml.Categorical && c.Float64 != nil) {
				t.Fatalf("%s: column %q has %d doubles", step, c.Name, len(c.Float64))
			}
			for r := range c.Values {
				if !math.IsNaN(float64(c.Values[r])) || (c.Float64 != nil && !math.IsNaN(c.Float64[r])) {
					t.Fatalf("%s: column %q row %d is not missing", step, c.Name, r)
				}
			}
		}
	}
	for _, c := range []struct {
		step        string
		first, next int
		shrink      bool
	}{
		{step: "smaller", first: 200, next: 50},
		{step: "same", first: 10, next: 10},
		{step: "larger", first: 10, next: 300},
		{step: "a column replaced by a shorter one", first: 100, next: 100, shrink: true},
		{step: "empty", first: 3, next: 0},
	} {
		ds := d.NewDataset(c.first)
		fill(ds)
		ds.Label = make([]float64, c.first)
		if c.shrink {
			ds.Columns[1].Values = make([]float32, 1)
		}
		d.ReleaseDataset(ds)
		check(c.step, d.NewDataset(c.next), c.next)
	}
	// Datasets of another shape, or too large to keep, are not pooled.
	d.ReleaseDataset(&ml.Dataset{Columns: []ml.Column{{Name: "x"}}})
	d.ReleaseDataset(d.NewDataset(maxPooledRows + 1))
	check("after foreign releases", d.NewDataset(5), 5)
}
