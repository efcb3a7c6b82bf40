package ml

import (
	"fmt"
	"math"
	"strconv"
)

// Feature describes one feature column as a model was trained with it.
type Feature struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Categories are the categories of a categorical feature in training-code
	// order: the model saw category Categories[i] as code i. Nil for a
	// categorical feature whose codes are the data's own integer values (models
	// imported from LightGBM or XGBoost).
	Categories []string `json:"categories,omitempty"`
}

// FeaturesOf describes a dataset's columns as features.
func FeaturesOf(ds *Dataset) []Feature {
	fs := make([]Feature, len(ds.Columns))
	for i, c := range ds.Columns {
		fs[i] = Feature{Name: c.Name, Kind: c.Kind}
		if c.Kind == Categorical {
			fs[i].Categories = c.Categories
			if fs[i].Categories == nil {
				fs[i].Categories = []string{}
			}
		}
	}
	return fs
}

// Align returns ds with exactly the given feature columns, in that order, with
// categories recoded to the features' codes by their text: a category the
// features do not list becomes missing (NaN). Label, weights and groups are
// kept. A missing column or a text column where a number is expected is an
// ErrBadData error naming the column. Values are shared with ds where no
// recoding is needed.
func Align(ds *Dataset, features []Feature) (*Dataset, error) {
	out := &Dataset{Columns: make([]Column, len(features)), Label: ds.Label, Weight: ds.Weight, Groups: ds.Groups}
	for i, f := range features {
		j := ds.ColumnIndex(f.Name)
		if j < 0 {
			return nil, fmt.Errorf("%w: column %q, a feature of the model, is missing", ErrBadData, f.Name)
		}
		c := ds.Columns[j]
		col := Column{Name: f.Name, Kind: f.Kind, Values: c.Values, Categories: f.Categories}
		if c.Kind == Numeric && (f.Kind == Numeric || f.Categories == nil) {
			col.Float64 = c.Float64 // numbers taken as they are, codes included
		}
		switch {
		case f.Kind == Numeric && c.Kind != Numeric:
			return nil, fmt.Errorf("%w: column %q holds text; the model uses it as a number", ErrBadData, f.Name)
		case f.Kind == Categorical && f.Categories == nil:
			// Codes are the data's integers: take numbers as they are.
			if c.Kind != Numeric {
				col.Values = codesFromText(c)
			}
		case f.Kind == Categorical:
			col.Values = recode(c, f.Categories)
		}
		out.Columns[i] = col
	}
	return out, nil
}

// recode maps a column onto the codes of categories, by text. A numeric
// column's values are formatted as text first ("7" for 7), so an integer
// column read as numbers matches integer categories.
func recode(c Column, categories []string) []float32 {
	index := make(map[string]float32, len(categories))
	for code, cat := range categories {
		index[cat] = float32(code)
	}
	nan := float32(math.NaN())
	out := make([]float32, len(c.Values))
	if c.Kind == Categorical {
		toCode := make([]float32, len(c.Categories))
		for code, cat := range c.Categories {
			v, ok := index[cat]
			if !ok {
				v = nan
			}
			toCode[code] = v
		}
		for r, v := range c.Values {
			out[r] = nan
			if v == v {
				out[r] = toCode[int(v)]
			}
		}
		return out
	}
	for r, v := range c.Values {
		out[r] = nan
		if v == v {
			if code, ok := index[strconv.FormatFloat(float64(v), 'f', -1, 32)]; ok {
				out[r] = code
			}
		}
	}
	return out
}

// codesFromText turns a text column into integer codes for features whose
// codes are integers: a category that is not a whole number in [0, 2^24)
// becomes missing.
func codesFromText(c Column) []float32 {
	nan := float32(math.NaN())
	out := make([]float32, len(c.Values))
	for r, v := range c.Values {
		out[r] = nan
		if v == v {
			if x, err := strconv.ParseFloat(c.Categories[int(v)], 64); err == nil && x >= 0 && x == math.Trunc(x) && x < 1<<24 {
				out[r] = float32(x)
			}
		}
	}
	return out
}
