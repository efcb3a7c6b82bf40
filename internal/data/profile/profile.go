// Package profile summarises a table (a published feature-set partition, a
// training set, a window of the prediction log) in a small JSON document:
// per column the volume, missing count, moments, quantiles, a distinct-count
// estimate, a histogram or the top categories, and a seeded uniform sample of
// the values.
//
// The histogram and quantiles are for plots, PSI and trends. The sample is
// what drift tests compare against: internal/monitoring/drift runs on two
// samples exactly as Evidently runs on two data frames, so a profile can stand
// in for the reference data it was built from.
//
// The package is stdlib-only so that every layer (data, serving, monitoring)
// may build and read profiles. Build computes the statistics from in-memory
// columns; an engine may compute the same statistics itself and fill the
// struct (see the duckdb engine's partition profiles, which stream each
// partition's columns through HistogramEdges, Bins and a HyperLogLog sketch),
// in which case quantiles and the distinct count are approximations and the
// sample is the engine's own seeded one.
//
// # Invariants
//
//   - Count + Missing = Rows for every column built from a full table.
//   - Mean, Std, Min, Max, quantiles and histogram are zero/empty when Count is
//     0; every float is finite, so a profile always encodes as JSON.
//   - Std is the sample standard deviation (ddof 1; 0 with one value), as SQL's
//     stddev_samp and pandas' std.
//   - len(Histogram.Edges) = len(Histogram.Counts)+1, and the counts add up to
//     Count.
//   - Categories are sorted by count (descending), then value; the counts of
//     the categories after the first TopK are added up in Other.
package profile

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Version is the format version written by Encode. Decode refuses a profile
// of a newer version, whose fields it could misread.
const Version = 1

// Column kinds.
const (
	Numeric     = "numeric"
	Categorical = "categorical"
)

// QuantileLevels are the quantiles every numeric column carries.
var QuantileLevels = []float64{0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99}

// Profile summarises one table.
type Profile struct {
	// Version is the format version (Version when built here; 0 is read as 1).
	Version int   `json:"version"`
	Rows    int64 `json:"rows"`
	// Start and End are the time range of the data (event times of a
	// partition, the training window), when known. The builder sets them.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// Columns are in the order of the inputs.
	Columns []Column `json:"columns"`
	// Prediction is the profile of the model's predictions on this data (set
	// on a training reference so that prediction drift has a reference).
	Prediction *Column `json:"prediction,omitempty"`
}

// Column summarises one column.
type Column struct {
	Name string `json:"name"`
	// Kind is Numeric or Categorical.
	Kind string `json:"kind"`
	// Count is the number of non-missing values, Missing the others.
	Count   int64 `json:"count"`
	Missing int64 `json:"missing"`
	// Moments and range of a numeric column.
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	// Quantiles at QuantileLevels (numeric columns with values only).
	Quantiles []Quantile `json:"quantiles,omitempty"`
	// Distinct estimates the number of distinct non-missing values (exact
	// when built by Build).
	Distinct int64 `json:"distinct"`
	// Histogram of a numeric column: equal-width bins from Min to Max.
	Histogram *Histogram `json:"histogram,omitempty"`
	// Categories are the most frequent values of a categorical column, Other
	// the count of all the rest.
	Categories []Category `json:"categories,omitempty"`
	Other      int64      `json:"other,omitempty"`
	// SampleFloat (numeric) or SampleString (categorical) is a seeded uniform
	// sample without replacement of up to Options.SampleSize non-missing
	// values (all of them when there are fewer).
	SampleFloat  []float64 `json:"sample_float,omitempty"`
	SampleString []string  `json:"sample_string,omitempty"`
}

// Quantile is the value at level Q (linear interpolation between order
// statistics, as numpy's default and SQL's quantile_cont).
type Quantile struct {
	Q     float64 `json:"q"`
	Value float64 `json:"value"`
}

// Histogram counts values in bins [Edges[i], Edges[i+1]); the last bin also
// holds Edges[n]. A constant column has one bin [v-0.5, v+0.5] as numpy's.
type Histogram struct {
	Edges  []float64 `json:"edges"`
	Counts []int64   `json:"counts"`
}

// Category is one value and its count.
type Category struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// Input is one column to profile. Float non-nil makes it numeric (NaN and ±Inf
// are missing, as in internal/monitoring/drift); otherwise String makes it
// categorical, with Valid[i] false or the empty string marking a missing value
// (Valid nil: all present).
type Input struct {
	Name   string
	Float  []float64
	String []string
	Valid  []bool
}

// Options tune Build. Zero values take the defaults.
type Options struct {
	// Bins is the number of histogram bins (default 50).
	Bins int
	// TopK is the number of categories kept (default 100).
	TopK int
	// SampleSize is the maximum sample size (default 5000).
	SampleSize int
	// Seed seeds the sample (default 1): the same input and seed give the
	// same sample.
	Seed uint64
}

// Defaults.
const (
	DefaultBins       = 50
	DefaultTopK       = 100
	DefaultSampleSize = 5000
	DefaultSeed       = 1
)

// EnsureDefaults fills zero fields with the defaults and returns the result.
func (o Options) EnsureDefaults() Options {
	if o.Bins <= 0 {
		o.Bins = DefaultBins
	}
	if o.TopK <= 0 {
		o.TopK = DefaultTopK
	}
	if o.SampleSize <= 0 {
		o.SampleSize = DefaultSampleSize
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	return o
}

// Build profiles the columns. Rows is the length of the longest input; every
// input should have the same length.
func Build(cols []Input, opts Options) *Profile {
	opts = opts.EnsureDefaults()
	p := &Profile{Version: Version, Columns: make([]Column, 0, len(cols))}
	for i, in := range cols {
		// Each column gets its own stream so that adding a column does not
		// change the samples of the others.
		c := BuildColumn(in, opts, opts.Seed+uint64(i))
		p.Rows = max(p.Rows, c.Count+c.Missing)
		p.Columns = append(p.Columns, c)
	}
	return p
}

// BuildColumn profiles one column with the sample seeded by seed (0 means
// opts.Seed). Use it for Profile.Prediction.
func BuildColumn(in Input, opts Options, seed uint64) Column {
	opts = opts.EnsureDefaults()
	if seed == 0 {
		seed = opts.Seed
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	if in.Float != nil {
		return numericColumn(in.Name, in.Float, opts, rng)
	}
	return categoricalColumn(in.Name, in.String, in.Valid, opts, rng)
}

// reservoir keeps a uniform sample without replacement of the values offered
// to it (Vitter's algorithm R).
type reservoir[T any] struct {
	k    int
	seen int64
	out  []T
	rng  *rand.Rand
}

func (r *reservoir[T]) offer(v T) {
	r.seen++
	if len(r.out) < r.k {
		r.out = append(r.out, v)
		return
	}
	if j := r.rng.Int64N(r.seen); j < int64(r.k) {
		r.out[j] = v
	}
}

func numericColumn(name string, xs []float64, opts Options, rng *rand.Rand) Column {
	c := Column{Name: name, Kind: Numeric}
	vals := make([]float64, 0, len(xs))
	res := reservoir[float64]{k: opts.SampleSize, rng: rng}
	var mean, m2 float64 // Welford: no overflow of a running sum, no cancellation.
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			c.Missing++
			continue
		}
		vals = append(vals, x)
		n := float64(len(vals))
		d := x - mean
		mean += d / n
		m2 += d * (x - mean)
		res.offer(x)
	}
	c.Count = int64(len(vals))
	if c.Count == 0 {
		return c
	}
	c.Mean = mean
	if c.Count > 1 {
		c.Std = math.Sqrt(m2 / float64(c.Count-1))
	}
	slices.Sort(vals)
	c.Min, c.Max = vals[0], vals[len(vals)-1]
	c.Quantiles = quantilesSorted(vals)
	c.Distinct = 1
	for i := 1; i < len(vals); i++ {
		if vals[i] != vals[i-1] {
			c.Distinct++
		}
	}
	c.Histogram = histogram(vals, c.Min, c.Max, opts.Bins)
	c.SampleFloat = res.out
	return c
}

// Quantiles returns the quantiles at QuantileLevels of the values (nil when
// there are none); the input is not modified.
func Quantiles(values []float64) []Quantile {
	if len(values) == 0 {
		return nil
	}
	return quantilesSorted(slices.Sorted(slices.Values(values)))
}

func quantilesSorted(s []float64) []Quantile {
	out := make([]Quantile, len(QuantileLevels))
	for i, q := range QuantileLevels {
		out[i] = Quantile{Q: q, Value: quantileSorted(s, q)}
	}
	return out
}

// quantileSorted interpolates linearly between order statistics (numpy's
// "linear", SQL's quantile_cont).
func quantileSorted(s []float64, q float64) float64 {
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// HistogramEdges returns the edges of bins equal-width bins from lo to hi
// (one bin [lo-0.5, hi+0.5] when lo == hi).
func HistogramEdges(lo, hi float64, bins int) []float64 {
	if lo == hi {
		return []float64{lo - 0.5, hi + 0.5}
	}
	edges := make([]float64, bins+1)
	w := (hi - lo) / float64(bins)
	for i := range edges {
		edges[i] = lo + float64(i)*w
	}
	edges[bins] = hi
	return edges
}

// BinIndex is the bin of x among the equal-width bins from lo to hi: the same
// rule as the SQL engines' least(floor((x-lo)/w), bins-1), so that profiles
// built in Go and in SQL bin alike.
func BinIndex(x, lo, hi float64, bins int) int {
	return NewBins(lo, hi, bins).Index(x)
}

// Bins is BinIndex's rule for one range, with the bin width computed once:
// for loops over many values of the same range (the same floating-point
// operations as BinIndex, so the same bins).
type Bins struct {
	lo, width float64
	n         int
}

// NewBins returns the bins equal-width bins from lo to hi (one when lo ==
// hi).
func NewBins(lo, hi float64, bins int) Bins {
	if lo == hi {
		return Bins{n: 1}
	}
	return Bins{lo: lo, width: (hi - lo) / float64(bins), n: bins}
}

// Index is the bin of x.
func (b Bins) Index(x float64) int {
	if b.n == 1 {
		return 0
	}
	i := int(math.Floor((x - b.lo) / b.width))
	return min(max(i, 0), b.n-1)
}

func histogram(sorted []float64, lo, hi float64, bins int) *Histogram {
	edges := HistogramEdges(lo, hi, bins)
	h := &Histogram{Edges: edges, Counts: make([]int64, len(edges)-1)}
	for _, x := range sorted {
		h.Counts[BinIndex(x, lo, hi, len(h.Counts))]++
	}
	return h
}

func categoricalColumn(name string, xs []string, valid []bool, opts Options, rng *rand.Rand) Column {
	c := Column{Name: name, Kind: Categorical}
	counts := map[string]int64{}
	res := reservoir[string]{k: opts.SampleSize, rng: rng}
	for i, x := range xs {
		if (valid != nil && i < len(valid) && !valid[i]) || x == "" {
			c.Missing++
			continue
		}
		c.Count++
		counts[x]++
		res.offer(x)
	}
	c.Distinct = int64(len(counts))
	cats := make([]Category, 0, len(counts))
	for v, n := range counts {
		cats = append(cats, Category{Value: v, Count: n})
	}
	SortCategories(cats)
	if len(cats) > opts.TopK {
		for _, o := range cats[opts.TopK:] {
			c.Other += o.Count
		}
		cats = cats[:opts.TopK:opts.TopK]
	}
	if len(cats) > 0 {
		c.Categories = cats
	}
	c.SampleString = res.out
	return c
}

// SortCategories orders categories by count (descending), then value.
func SortCategories(cats []Category) {
	slices.SortFunc(cats, func(a, b Category) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return cmp.Compare(a.Value, b.Value)
	})
}

// Column returns the column named name.
func (p *Profile) Column(name string) (*Column, bool) {
	for i := range p.Columns {
		if p.Columns[i].Name == name {
			return &p.Columns[i], true
		}
	}
	return nil, false
}

// Errors.
var (
	// ErrVersion: the profile was written by a newer format version.
	ErrVersion = errors.New("profile format version not supported")
	// ErrInvalid: the document breaks an invariant of the format.
	ErrInvalid = errors.New("invalid profile")
)

// MarshalJSON encodes the profile with Version set when it was zero.
func (p *Profile) MarshalJSON() ([]byte, error) {
	type plain Profile // without the method, to not recurse
	q := plain(*p)
	if q.Version == 0 {
		q.Version = Version
	}
	return json.Marshal(&q)
}

// Encode writes the profile as one line of JSON.
func (p *Profile) Encode(w io.Writer) error {
	if err := json.NewEncoder(w).Encode(p); err != nil {
		return fmt.Errorf("encode profile: %w", err)
	}
	return nil
}

// Decode reads a profile written by Encode (or any JSON of the same shape)
// and checks it.
func Decode(r io.Reader) (*Profile, error) {
	var p Profile
	if err := json.NewDecoder(r).Decode(&p); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	if p.Version == 0 {
		p.Version = 1
	}
	if p.Version > Version {
		return nil, fmt.Errorf("decode profile: version %d (this build reads up to %d): %w", p.Version, Version, ErrVersion)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	return &p, nil
}

// Validate reports every broken invariant, one per line.
func (p *Profile) Validate() error {
	var errs []error
	check := func(c *Column, where string) {
		if c.Kind != Numeric && c.Kind != Categorical {
			errs = append(errs, fmt.Errorf("%s: kind %q (want %q or %q): %w", where, c.Kind, Numeric, Categorical, ErrInvalid))
		}
		if c.Count < 0 || c.Missing < 0 {
			errs = append(errs, fmt.Errorf("%s: negative count or missing: %w", where, ErrInvalid))
		}
		if h := c.Histogram; h != nil && len(h.Edges) != len(h.Counts)+1 {
			errs = append(errs, fmt.Errorf("%s: histogram has %d edges for %d bins (want bins+1): %w", where, len(h.Edges), len(h.Counts), ErrInvalid))
		}
	}
	for i := range p.Columns {
		check(&p.Columns[i], fmt.Sprintf("columns[%d] (%q)", i, p.Columns[i].Name))
	}
	if p.Prediction != nil {
		check(p.Prediction, "prediction")
	}
	return errors.Join(errs...)
}

// SQLKind is the profile kind of a column of SQL type typ (DuckDB's names, as
// DESCRIBE prints them): Numeric for integers, decimals and floats,
// Categorical for text, booleans, enums and UUIDs, "" for the others (dates,
// times, nested types), which are not profiled.
func SQLKind(typ string) string {
	base, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(typ)), "(")
	switch base {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
		"FLOAT", "DOUBLE", "DECIMAL", "REAL", "INT", "INT8", "INT4", "INT2", "FLOAT4", "FLOAT8", "NUMERIC":
		return Numeric
	case "VARCHAR", "TEXT", "STRING", "BOOLEAN", "BOOL", "ENUM", "UUID":
		return Categorical
	}
	return ""
}
