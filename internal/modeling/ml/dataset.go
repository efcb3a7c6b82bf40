// Package ml holds what every model of the modeling layer shares: the columnar
// dataset, preprocessing, metrics and train/validation/test splits.
package ml

import (
	"fmt"
	"math"
)

// Kind is the kind of a feature column.
type Kind uint8

const (
	// Numeric columns hold real values; NaN is missing.
	Numeric Kind = iota
	// Categorical columns hold category codes; NaN is missing.
	Categorical
)

func (k Kind) String() string {
	switch k {
	case Numeric:
		return "numeric"
	case Categorical:
		return "categorical"
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// MarshalText writes the kind as "numeric" or "categorical" (model files).
func (k Kind) MarshalText() ([]byte, error) {
	if k != Numeric && k != Categorical {
		return nil, fmt.Errorf("unknown column kind %d", k)
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads "numeric" or "categorical".
func (k *Kind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "numeric":
		*k = Numeric
	case "categorical":
		*k = Categorical
	default:
		return fmt.Errorf("column kind %q: want numeric or categorical", b)
	}
	return nil
}

// Column is one feature column of a Dataset.
type Column struct {
	Name string
	Kind Kind
	// Values has one entry per row. NaN means missing. In a Categorical column a
	// value is a category code: a whole number in [0, len(Categories)).
	Values []float32
	// Float64, when set (Numeric columns loaded with LoadOptions.Float64 for
	// prediction), holds the values as read, before rounding to float32:
	// LightGBM compares its inputs as doubles, so a value between a split
	// threshold and its float32 rounding needs them to take the same branch.
	// Values then holds float32(Float64[i]). Training never sets it, so a
	// training set costs 4 bytes per value.
	Float64 []float64
	// Categories maps category codes to the original values (Categorical only).
	Categories []string
}

// Dataset is a column-major float32 feature matrix with its targets.
// Invariant (checked by Validate): every column, Label and Weight (when set) have
// NumRows entries, and Groups (when set) sums to NumRows.
type Dataset struct {
	Columns []Column
	// Label has one target per row; nil for data to predict on.
	Label []float64
	// Weight has one weight per row; nil means every row weighs 1.
	Weight []float64
	// Groups holds the sizes of consecutive query groups, in row order (ranking
	// tasks, LightGBM's `group`); nil otherwise.
	Groups []int
}

// NumRows is the number of rows.
func (d *Dataset) NumRows() int {
	if len(d.Columns) > 0 {
		return len(d.Columns[0].Values)
	}
	return len(d.Label)
}

// NumFeatures is the number of feature columns.
func (d *Dataset) NumFeatures() int { return len(d.Columns) }

// ColumnIndex returns the index of the named column, or -1.
func (d *Dataset) ColumnIndex(name string) int {
	for i := range d.Columns {
		if d.Columns[i].Name == name {
			return i
		}
	}
	return -1
}

// Validate checks the Dataset's invariants and reports the first violation.
func (d *Dataset) Validate() error {
	n := d.NumRows()
	seen := make(map[string]bool, len(d.Columns))
	for i := range d.Columns {
		c := &d.Columns[i]
		if seen[c.Name] {
			return fmt.Errorf("dataset: duplicate column %q", c.Name)
		}
		seen[c.Name] = true
		if len(c.Values) != n {
			return fmt.Errorf("dataset: column %q has %d rows, want %d", c.Name, len(c.Values), n)
		}
		if c.Float64 != nil && len(c.Float64) != n {
			return fmt.Errorf("dataset: column %q has %d float64 rows, want %d", c.Name, len(c.Float64), n)
		}
		if c.Kind == Categorical {
			for r, v := range c.Values {
				if math.IsNaN(float64(v)) {
					continue
				}
				if v < 0 || int(v) >= len(c.Categories) || float32(int(v)) != v {
					return fmt.Errorf("dataset: column %q row %d: category code %v outside [0, %d)", c.Name, r, v, len(c.Categories))
				}
			}
		}
	}
	if d.Label != nil && len(d.Label) != n {
		return fmt.Errorf("dataset: label has %d rows, want %d", len(d.Label), n)
	}
	for r, y := range d.Label {
		if math.IsNaN(y) || math.IsInf(y, 0) {
			return fmt.Errorf("dataset: label of row %d is %v, want a finite number", r, y)
		}
	}
	if d.Weight != nil && len(d.Weight) != n {
		return fmt.Errorf("dataset: weight has %d rows, want %d", len(d.Weight), n)
	}
	for r, w := range d.Weight {
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("dataset: weight of row %d is %v, want a finite number >= 0", r, w)
		}
	}
	if d.Groups != nil {
		sum := 0
		for i, g := range d.Groups {
			if g <= 0 {
				return fmt.Errorf("dataset: group %d has size %d, want > 0", i, g)
			}
			sum += g
		}
		if sum != n {
			return fmt.Errorf("dataset: groups cover %d rows, want %d", sum, n)
		}
	}
	return nil
}
