package profile_test

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/profile"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// The expected numbers come from numpy (np.quantile, np.std(ddof=1),
// np.histogram) on the same values.
func TestNumeric(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name      string
		in        []float64
		bins      int
		count     int64
		missing   int64
		mean, std float64
		min, max  float64
		quantiles []float64
		distinct  int64
		edges     []float64
		counts    []int64
	}{
		{
			name: "pi digits", in: []float64{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5}, bins: 4,
			count: 11, mean: 4, std: 2.3664319132398464, min: 1, max: 9,
			quantiles: []float64{1, 1, 2.5, 4, 5, 7.5, 8.700000000000001}, distinct: 7,
			edges: []float64{1, 3, 5, 7, 9}, counts: []int64{3, 3, 4, 1},
		},
		{
			name: "missing values are NaN and Inf", in: []float64{nan, 2, math.Inf(1), 4, math.Inf(-1)}, bins: 2,
			count: 2, missing: 3, mean: 3, std: math.Sqrt2, min: 2, max: 4,
			quantiles: []float64{2.02, 2.1, 2.5, 3, 3.5, 3.9, 3.98}, distinct: 2,
			edges: []float64{2, 3, 4}, counts: []int64{1, 1},
		},
		{
			name: "constant column has one bin around the value", in: []float64{7, 7, 7}, bins: 50,
			count: 3, mean: 7, std: 0, min: 7, max: 7,
			quantiles: []float64{7, 7, 7, 7, 7, 7, 7}, distinct: 1,
			edges: []float64{6.5, 7.5}, counts: []int64{3},
		},
		{
			name: "one value has std 0", in: []float64{-1.5}, bins: 50,
			count: 1, mean: -1.5, min: -1.5, max: -1.5,
			quantiles: []float64{-1.5, -1.5, -1.5, -1.5, -1.5, -1.5, -1.5}, distinct: 1,
			edges: []float64{-2, -1}, counts: []int64{1},
		},
		{
			name: "all missing leaves the statistics empty", in: []float64{nan, nan}, bins: 50,
			missing: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := profile.Build([]profile.Input{{Name: "x", Float: tc.in}}, profile.Options{Bins: tc.bins})
			if p.Rows != int64(len(tc.in)) {
				t.Errorf("rows %d, want %d", p.Rows, len(tc.in))
			}
			c := p.Columns[0]
			if c.Kind != profile.Numeric || c.Count != tc.count || c.Missing != tc.missing || c.Distinct != tc.distinct {
				t.Errorf("kind/count/missing/distinct = %s/%d/%d/%d, want numeric/%d/%d/%d", c.Kind, c.Count, c.Missing, c.Distinct, tc.count, tc.missing, tc.distinct)
			}
			for _, f := range []struct {
				name      string
				got, want float64
			}{{"mean", c.Mean, tc.mean}, {"std", c.Std, tc.std}, {"min", c.Min, tc.min}, {"max", c.Max, tc.max}} {
				if !close(f.got, f.want) {
					t.Errorf("%s %v, want %v", f.name, f.got, f.want)
				}
			}
			var qs []float64
			for i, q := range c.Quantiles {
				if q.Q != profile.QuantileLevels[i] {
					t.Errorf("quantile %d at level %v, want %v", i, q.Q, profile.QuantileLevels[i])
				}
				qs = append(qs, q.Value)
			}
			if len(qs) != len(tc.quantiles) || !slices.EqualFunc(qs, tc.quantiles, close) {
				t.Errorf("quantiles %v, want %v", qs, tc.quantiles)
			}
			if tc.edges == nil {
				if c.Histogram != nil {
					t.Errorf("histogram %+v, want none", c.Histogram)
				}
			} else if c.Histogram == nil || !slices.EqualFunc(c.Histogram.Edges, tc.edges, close) || !slices.Equal(c.Histogram.Counts, tc.counts) {
				t.Errorf("histogram %+v, want edges %v counts %v", c.Histogram, tc.edges, tc.counts)
			}
			if int64(len(c.SampleFloat)) != tc.count {
				t.Errorf("sample of %d values, want all %d", len(c.SampleFloat), tc.count)
			}
		})
	}
}

func close(a, b float64) bool { return math.Abs(a-b) <= 1e-12*max(1, math.Abs(b)) }

func TestCategorical(t *testing.T) {
	in := []string{"b", "a", "", "c", "b", "a", "b", "x"}
	valid := []bool{true, true, true, true, true, true, true, false}
	p := profile.Build([]profile.Input{{Name: "city", String: in, Valid: valid}}, profile.Options{TopK: 2})
	c := p.Columns[0]
	if c.Kind != profile.Categorical || c.Count != 6 || c.Missing != 2 || c.Distinct != 3 {
		t.Fatalf("kind/count/missing/distinct = %s/%d/%d/%d, want categorical/6/2/3", c.Kind, c.Count, c.Missing, c.Distinct)
	}
	want := []profile.Category{{Value: "b", Count: 3}, {Value: "a", Count: 2}}
	if !slices.Equal(c.Categories, want) || c.Other != 1 {
		t.Errorf("categories %v other %d, want %v other 1", c.Categories, c.Other, want)
	}
	got := slices.Sorted(slices.Values(c.SampleString))
	if !slices.Equal(got, []string{"a", "a", "b", "b", "b", "c"}) {
		t.Errorf("sample %v, want every present value", got)
	}
	if c.Histogram != nil || c.Quantiles != nil {
		t.Errorf("categorical column has numeric statistics: %+v", c)
	}
}

// The sample is a seeded uniform sample without replacement: deterministic for
// a seed, different across seeds, drawn from the values, and unbiased (its
// mean is close to the population's, checked at 5 standard errors; the seed
// is fixed, so the test is deterministic).
func TestSample(t *testing.T) {
	const n = 100_000
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = float64(i)
	}
	build := func(seed uint64) []float64 {
		p := profile.Build([]profile.Input{{Name: "x", Float: xs}}, profile.Options{Seed: seed})
		return p.Columns[0].SampleFloat
	}
	a, b, c := build(7), build(7), build(8)
	if len(a) != profile.DefaultSampleSize {
		t.Fatalf("sample size %d, want %d", len(a), profile.DefaultSampleSize)
	}
	if !slices.Equal(a, b) {
		t.Error("same seed gave different samples")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same sample")
	}
	seen := map[float64]bool{}
	var sum float64
	for _, v := range a {
		if seen[v] || v < 0 || v >= n || v != math.Trunc(v) {
			t.Fatalf("value %v repeated or not from the input", v)
		}
		seen[v] = true
		sum += v
	}
	mean, popMean := sum/float64(len(a)), float64(n-1)/2
	se := float64(n) / math.Sqrt(12) / math.Sqrt(float64(len(a)))
	if math.Abs(mean-popMean) > 5*se {
		t.Errorf("sample mean %v, population mean %v (standard error %v)", mean, popMean, se)
	}
	// The first and last tenths are both represented: no positional bias.
	var first, last int
	for _, v := range a {
		if v < n/10 {
			first++
		}
		if v >= n-n/10 {
			last++
		}
	}
	if first < 400 || last < 400 {
		t.Errorf("first tenth %d values, last tenth %d, want about 500 each", first, last)
	}
}

// testdata/mixed.golden.json pins the encoded form (field names, order,
// omitted fields); run with -update after an intended format change.
func TestEncodeGolden(t *testing.T) {
	p := profile.Build([]profile.Input{
		{Name: "price", Float: []float64{10, 20, math.NaN(), 40}},
		{Name: "city", String: []string{"paris", "oslo", "paris", ""}},
	}, profile.Options{Bins: 3})
	p.Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	p.End = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	pred := profile.BuildColumn(profile.Input{Name: "score", Float: []float64{0.5, 0.25}}, profile.Options{Bins: 2}, 0)
	p.Prediction = &pred
	var buf bytes.Buffer
	if err := p.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "mixed.golden.json")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("encoded\n%s\nwant\n%s", buf.Bytes(), want)
	}
	back, err := profile.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := back.Encode(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Errorf("round trip changed the profile:\n%s\n%s", again.Bytes(), buf.Bytes())
	}
	c, ok := back.Column("city")
	if !ok || c.Count != 3 || c.Missing != 1 {
		t.Errorf("Column(city) = %+v, %v", c, ok)
	}
	if _, ok := back.Column("nope"); ok {
		t.Error("Column(nope) found a column")
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, doc string
		is        error
		mention   string
	}{
		{"newer version", `{"version": 99, "rows": 1, "columns": []}`, profile.ErrVersion, "version 99"},
		{"bad kind", `{"rows": 1, "columns": [{"name": "a", "kind": "text"}]}`, profile.ErrInvalid, `"a"`},
		{"histogram shape", `{"rows": 1, "columns": [{"name": "a", "kind": "numeric", "histogram": {"edges": [1, 2], "counts": [1, 1]}}]}`, profile.ErrInvalid, "2 edges for 2 bins"},
		{"bad prediction", `{"rows": 1, "columns": [], "prediction": {"name": "p", "kind": ""}}`, profile.ErrInvalid, "prediction"},
		{"not json", `{"rows": `, nil, "decode profile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := profile.Decode(strings.NewReader(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

// Histogram edges and bins follow the SQL rule least(floor((x-lo)/w), bins-1).
func TestBinIndex(t *testing.T) {
	for _, tc := range []struct {
		x, lo, hi  float64
		bins, want int
	}{
		{0, 0, 10, 5, 0}, {1.999, 0, 10, 5, 0}, {2, 0, 10, 5, 1}, {10, 0, 10, 5, 4}, {3, 3, 3, 50, 0},
	} {
		if got := profile.BinIndex(tc.x, tc.lo, tc.hi, tc.bins); got != tc.want {
			t.Errorf("BinIndex(%v, %v, %v, %d) = %d, want %d", tc.x, tc.lo, tc.hi, tc.bins, got, tc.want)
		}
	}
	if e := profile.HistogramEdges(0, 1, 3); len(e) != 4 || e[3] != 1 || strconv.FormatFloat(e[1], 'g', 4, 64) != "0.3333" {
		t.Errorf("edges %v", e)
	}
}
