package drift

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/atrium-ml/atrium/internal/platform/floatsort"
)

// Method names a drift test. The names are Evidently's stattest names, so a
// user's configuration reads the same in both tools.
type Method string

// The methods. P-value methods (MethodKS, MethodChiSquare, MethodZTest) report drift when the
// p-value is below the threshold; distance methods when the distance is at
// least the threshold.
const (
	MethodKS            Method = "ks"
	MethodChiSquare     Method = "chisquare"
	MethodZTest         Method = "z"
	MethodWasserstein   Method = "wasserstein"
	MethodJensenShannon Method = "jensenshannon"
	MethodPSI           Method = "psi"
	MethodHellinger     Method = "hellinger"
)

// DefaultThreshold is Evidently's default threshold of each method.
func (m Method) DefaultThreshold() float64 {
	switch m {
	case MethodKS, MethodChiSquare, MethodZTest:
		return 0.05
	default:
		return 0.1
	}
}

// IsPValue reports whether the method's score is a p-value (drift when small)
// rather than a distance (drift when large).
func (m Method) IsPValue() bool {
	return m == MethodKS || m == MethodChiSquare || m == MethodZTest
}

func (m Method) valid(numeric bool) bool {
	switch m {
	case MethodChiSquare, MethodZTest, MethodJensenShannon, MethodPSI, MethodHellinger:
		return true
	case MethodKS, MethodWasserstein:
		return numeric
	}
	return false
}

// Column types in results.
const (
	TypeNumeric     = "num"
	TypeCategorical = "cat"
)

// Errors. Each is wrapped with the column name.
var (
	// ErrEmpty: a sample has no values left once missing values are
	// dropped. Drift is never reported as "none" for lack of data.
	ErrEmpty = errors.New("no values after dropping missing ones")
	// ErrMethod: unknown method, or one that does not apply to the column
	// type (KS and Wasserstein need numbers).
	ErrMethod = errors.New("drift method not applicable")
	// ErrColumns: the reference and current column sets differ, or a column
	// mixes numeric and categorical values.
	ErrColumns = errors.New("reference and current columns do not match")
)

// Options overrides the test of one column. Zero values mean Evidently's
// default: the method picked by DefaultMethod, the method's
// DefaultThreshold.
type Options struct {
	Method    Method
	Threshold float64
}

// ColumnResult is the verdict for one column.
type ColumnResult struct {
	Column    string  `json:"column"`
	Type      string  `json:"type"`
	Method    Method  `json:"method"`
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold"`
	Drift     bool    `json:"drift"`
}

// DefaultMethod is Evidently's default test selection (get_stattest /
// _get_default_stattest in evidently.legacy.calculations.stattests.registry),
// given the reference size and the number of distinct values in reference and
// current together, both counted after dropping missing values:
//
//	reference <= 1000 rows: numeric with > 5 distinct values -> KS;
//	                        otherwise 2 or fewer distinct -> Z-test, else chi-square;
//	reference  > 1000 rows: numeric with > 5 distinct values -> Wasserstein (normed);
//	                        otherwise (categorical, or numeric with <= 5 values) -> Jensen-Shannon.
//
// The Jensen-Shannon choice for low-cardinality numeric columns on large
// references comes from Evidently's source; the summary omits it.
func DefaultMethod(numeric bool, refRows, distinct int) Method {
	if refRows <= 1000 {
		if numeric && distinct > 5 {
			return MethodKS
		}
		if distinct > 2 {
			return MethodChiSquare
		}
		return MethodZTest
	}
	if numeric && distinct > 5 {
		return MethodWasserstein
	}
	return MethodJensenShannon
}

// CompareNumeric tests a numeric column. NaN and ±Inf are missing and are
// dropped from both samples first, as Evidently does; the inputs are not
// modified.
func CompareNumeric(name string, ref, cur []float64, opt Options) (ColumnResult, error) {
	// Sorted once: counting, KS and Wasserstein all walk sorted samples.
	r, c := dropNonFinite(ref), dropNonFinite(cur)
	floatsort.Sort(r)
	floatsort.Sort(c)
	return compareSorted(name, r, c, opt)
}

// compareSorted tests clean samples r and c (finite values), each sorted in
// increasing order.
func compareSorted(name string, r, c []float64, opt Options) (ColumnResult, error) {
	// DefaultMethod only asks whether there are more than 5 (or 2) values.
	res, err := choose(name, TypeNumeric, len(r), len(c), func() int { return distinctUpTo(r, c, 6) }, opt)
	if err != nil {
		return res, err
	}
	switch res.Method {
	case MethodKS:
		_, res.Score = ksSorted(r, c)
		return finish(res, opt), nil
	case MethodWasserstein:
		res.Score = wassersteinSorted(r, c) / max(popStd(r), 0.001)
		return finish(res, opt), nil
	}
	// The other methods need the value counts.
	keys, rc, cc := sortedCounts(r, c)
	switch res.Method {
	case MethodJensenShannon, MethodPSI:
		rs, cs := numericShares(r, c, refDistinct(rc), rc, cc)
		if res.Method == MethodPSI {
			res.Score = PSI(rs, cs)
		} else {
			res.Score = JensenShannon(rs, cs)
		}
	case MethodHellinger:
		// Evidently bins numeric Hellinger with Sturges edges over the
		// distinct values (not the samples), as densities.
		edges := sturgesEdges(keys[0], keys[len(keys)-1], len(keys))
		w := (edges[len(edges)-1] - edges[0]) / float64(len(edges)-1)
		h1, h2 := density(histogram(r, edges), edges), density(histogram(c, edges), edges)
		res.Score = hellingerShares(h1, h2, w)
	default:
		res.Score = countScore(res.Method, rc, cc)
	}
	return finish(res, opt), nil
}

// CompareCategorical tests a categorical column. The empty string is a
// missing value (what pandas reads from an empty CSV field) and is dropped.
func CompareCategorical(name string, ref, cur []string, opt Options) (ColumnResult, error) {
	return CompareCategoricalCounts(name, valueCounts(ref), valueCounts(cur), opt)
}

// CompareCategoricalCounts is CompareCategorical on value counts (value ->
// number of rows holding it), as a database's GROUP BY returns them: exactly
// CompareCategorical's result on samples with these counts. The empty string
// is missing and is ignored, as are counts <= 0.
func CompareCategoricalCounts(name string, ref, cur map[string]int64, opt Options) (ColumnResult, error) {
	keys, rc, cc := alignedCounts(ref, cur)
	res, err := choose(name, TypeCategorical, int(sum(rc)), int(sum(cc)), func() int { return len(keys) }, opt)
	if err != nil {
		return res, err
	}
	res.Score = countScore(res.Method, rc, cc)
	return finish(res, opt), nil
}

// choose checks both cleaned samples (of nr and nc values) are non-empty and
// picks the method; distinct, the number of distinct values in both (it may
// stop counting above 5: DefaultMethod asks no more), is only called then.
func choose(name, typ string, nr, nc int, distinct func() int, opt Options) (ColumnResult, error) {
	res := ColumnResult{Column: name, Type: typ}
	if nr == 0 {
		return res, fmt.Errorf("column %q: reference: %w", name, ErrEmpty)
	}
	if nc == 0 {
		return res, fmt.Errorf("column %q: current: %w", name, ErrEmpty)
	}
	var err error
	res.Method, err = pick(name, typ == TypeNumeric, opt, nr, distinct())
	return res, err
}

// countScore computes the methods that only need the value counts: one
// bucket per distinct value.
func countScore(m Method, rc, cc []float64) float64 {
	nr, nc := sum(rc), sum(cc)
	switch m {
	case MethodChiSquare:
		return ChiSquareP(rc, cc)
	case MethodZTest:
		if len(rc) == 1 {
			return 1 // both samples hold the same single value
		}
		return ZTestP(rc[0], nr, cc[0], nc)
	case MethodJensenShannon:
		return JensenShannon(scale(rc, nr), scale(cc, nc))
	case MethodPSI:
		return PSI(scale(rc, nr), scale(cc, nc))
	case MethodHellinger:
		return hellingerShares(scale(rc, nr), scale(cc, nc), 1)
	}
	panic("drift: countScore on " + string(m)) // pick admits no other method here
}

// Sample is one column of a data set: exactly one of Numeric and Categorical
// is non-nil.
type Sample struct {
	Name        string
	Numeric     []float64
	Categorical []string
}

// DatasetResult is Evidently's data-drift summary: the per-column verdicts in
// input order, the share of drifted columns and the dataset verdict.
type DatasetResult struct {
	Columns      []ColumnResult `json:"columns"`
	DriftedCount int            `json:"drifted_count"`
	DriftedShare float64        `json:"drifted_share"`
	DriftShare   float64        `json:"drift_share"`
	DatasetDrift bool           `json:"dataset_drift"`
}

// DefaultDriftShare is Evidently's drift_share: the dataset drifts when at
// least this share of its columns drift.
const DefaultDriftShare = 0.5

// Compare tests every column of ref against the column of the same name in
// cur, with per-column overrides (by name) and the dataset threshold
// driftShare (0 means DefaultDriftShare). Both sets must have the same
// column names and kinds; the first failing column aborts with its error.
func Compare(ref, cur []Sample, overrides map[string]Options, driftShare float64) (DatasetResult, error) {
	if driftShare == 0 {
		driftShare = DefaultDriftShare
	}
	out := DatasetResult{DriftShare: driftShare}
	if len(ref) == 0 {
		return out, fmt.Errorf("%w: no columns", ErrColumns)
	}
	byName := make(map[string]Sample, len(cur))
	for _, s := range cur {
		byName[s.Name] = s
	}
	if len(byName) != len(ref) {
		return out, fmt.Errorf("%w: reference has %d columns, current %d", ErrColumns, len(ref), len(byName))
	}
	for name := range overrides {
		if !slices.ContainsFunc(ref, func(s Sample) bool { return s.Name == name }) {
			return out, fmt.Errorf("%w: override for unknown column %q", ErrColumns, name)
		}
	}
	for _, r := range ref {
		c, ok := byName[r.Name]
		if !ok {
			return out, fmt.Errorf("%w: column %q missing from current data", ErrColumns, r.Name)
		}
		var res ColumnResult
		var err error
		switch {
		case r.Numeric != nil && c.Numeric != nil:
			res, err = CompareNumeric(r.Name, r.Numeric, c.Numeric, overrides[r.Name])
		case r.Categorical != nil && c.Categorical != nil:
			res, err = CompareCategorical(r.Name, r.Categorical, c.Categorical, overrides[r.Name])
		default:
			err = fmt.Errorf("%w: column %q is numeric on one side and categorical on the other (or neither)", ErrColumns, r.Name)
		}
		if err != nil {
			return out, err
		}
		out.Columns = append(out.Columns, res)
		if res.Drift {
			out.DriftedCount++
		}
	}
	out.DriftedShare = float64(out.DriftedCount) / float64(len(out.Columns))
	out.DatasetDrift = out.DriftedShare >= driftShare
	return out, nil
}

func pick(name string, numeric bool, opt Options, refRows, distinct int) (Method, error) {
	if opt.Method == "" {
		return DefaultMethod(numeric, refRows, distinct), nil
	}
	if !opt.Method.valid(numeric) {
		kind := "categorical"
		if numeric {
			kind = "numeric"
		}
		return "", fmt.Errorf("column %q: %w: %q on a %s column (want one of ks, wasserstein (numeric only), chisquare, z, jensenshannon, psi, hellinger)", name, ErrMethod, opt.Method, kind)
	}
	return opt.Method, nil
}

func finish(res ColumnResult, opt Options) ColumnResult {
	res.Threshold = opt.Threshold
	if res.Threshold == 0 {
		res.Threshold = res.Method.DefaultThreshold()
	}
	switch {
	case math.IsNaN(res.Score):
		res.Drift = false
	case res.Method == MethodKS:
		// Evidently's ks uses <=, chisquare and z use <.
		res.Drift = res.Score <= res.Threshold
	case res.Method.IsPValue():
		res.Drift = res.Score < res.Threshold
	default:
		res.Drift = res.Score >= res.Threshold
	}
	return res
}

func dropNonFinite(x []float64) []float64 {
	out := make([]float64, 0, len(x))
	for _, v := range x {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out = append(out, v)
		}
	}
	return out
}

// valueCounts counts each non-empty value of x.
func valueCounts(x []string) map[string]int64 {
	m := map[string]int64{}
	for _, v := range x {
		if v != "" {
			m[v]++
		}
	}
	return m
}

// refDistinct is the number of values the reference holds (count > 0).
func refDistinct(rc []float64) int {
	n := 0
	for _, c := range rc {
		if c > 0 {
			n++
		}
	}
	return n
}

// numericShares is Evidently's get_binned_data for a numeric column: Sturges
// bins over reference and current together when the reference has more than
// 20 distinct values, else one bucket per distinct value.
func numericShares(r, c []float64, refDistinct int, rc, cc []float64) (rs, cs []float64) {
	if refDistinct > 20 {
		lo, hi := minMax(r, c)
		edges := sturgesEdges(lo, hi, len(r)+len(c))
		return scale(histogram(r, edges), float64(len(r))), scale(histogram(c, edges), float64(len(c)))
	}
	return scale(rc, float64(len(r))), scale(cc, float64(len(c)))
}

func sum(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

// scale returns x / d.
func scale(x []float64, d float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v / d
	}
	return out
}

// density is np.histogram(..., density=True): counts / (total counted * bin width).
func density(counts, edges []float64) []float64 {
	var total float64
	for _, c := range counts {
		total += c
	}
	out := make([]float64, len(counts))
	for i, c := range counts {
		out[i] = c / total / (edges[i+1] - edges[i])
	}
	return out
}
