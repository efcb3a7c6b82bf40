package ml

import (
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	good := func() *Dataset {
		return &Dataset{
			Columns: []Column{
				{Name: "rent", Kind: Numeric, Values: []float32{1, nan, 3}},
				{Name: "hood", Kind: Categorical, Values: []float32{0, 1, nan}, Categories: []string{"a", "b"}},
			},
			Label:  []float64{0, 1, 0},
			Weight: []float64{1, 2, 1},
			Groups: []int{2, 1},
		}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid dataset: %v", err)
	}
	tests := []struct {
		name   string
		break_ func(d *Dataset)
		want   string
	}{
		{"short column", func(d *Dataset) { d.Columns[1].Values = d.Columns[1].Values[:2] }, `column "hood" has 2 rows`},
		{"dup column", func(d *Dataset) { d.Columns[1].Name = "rent" }, `duplicate column "rent"`},
		{"bad code", func(d *Dataset) { d.Columns[1].Values[0] = 2 }, "category code 2 outside [0, 2)"},
		{"fractional code", func(d *Dataset) { d.Columns[1].Values[0] = 0.5 }, "category code 0.5"},
		{"nan label", func(d *Dataset) { d.Label[2] = math.NaN() }, "label of row 2 is NaN"},
		{"short label", func(d *Dataset) { d.Label = d.Label[:1] }, "label has 1 rows"},
		{"negative weight", func(d *Dataset) { d.Weight[0] = -1 }, "weight of row 0 is -1"},
		{"groups sum", func(d *Dataset) { d.Groups = []int{1, 1} }, "groups cover 2 rows, want 3"},
		{"empty group", func(d *Dataset) { d.Groups = []int{3, 0} }, "group 1 has size 0"},
	}
	for _, tt := range tests {
		d := good()
		tt.break_(d)
		err := d.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want error containing %q", tt.name, err, tt.want)
		}
	}
}
