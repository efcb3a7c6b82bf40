package gbdt

import (
	"math"
	"sort"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/platform/floatsort"
)

// kZeroThreshold: values within it of 0 count as zero when binning, as in
// LightGBM, which gives zero a bin of its own, and when predicting (LightGBM
// drops them from the rows it predicts on). LightGBM's is the float literal
// 1e-35f, so it is 1e-35 rounded to float32 (1.0000000180025095e-35), the
// bound its models print.
const kZeroThreshold = float64(float32(1e-35))

// Missing types of a split, as LightGBM encodes them in decision_type bits 2-3.
const (
	missingNone = 0
	missingZero = 1
	missingNaN  = 2
)

// binMapper maps one feature's raw values to bins.
//
// Numeric: bin b holds the values v with upper[b-1] < v <= upper[b]; the last
// finite-range bin's upper bound is +Inf. When the column has NaNs (and
// use_missing), one more bin, the last, holds them (missing type NaN).
//
// Categorical: bin 0 holds NaN and the categories too rare to get a bin of
// their own; it always goes right in a split. Bins 1.. hold one category each,
// most frequent first.
type binMapper struct {
	categorical bool
	numBins     int
	missingType int
	// upper are the numeric bins' upper bounds (without the NaN bin).
	upper  []float64
	search *boundSearch
	// binCat maps categorical bins to category codes (binCat[0] = -1).
	binCat []int
	// catBin maps category codes to bins (0 for rare or unseen codes).
	catBin []int32
	// minVal, maxVal: range of the numeric values seen (LightGBM feature_infos).
	minVal, maxVal float64
}

// nanBin is the bin of missing numeric values, or -1.
func (m *binMapper) nanBin() int {
	if !m.categorical && m.missingType == missingNaN {
		return m.numBins - 1
	}
	return -1
}

// valueBin returns the bin of a numeric value (NaN maps to the NaN bin when
// there is one, else to the bin of 0 as LightGBM predicts it).
func (m *binMapper) valueBin(v float64) int {
	if math.IsNaN(v) {
		if m.missingType == missingNaN {
			return m.numBins - 1
		}
		v = 0
	}
	if m.search != nil {
		return m.search.find(v)
	}
	return searchUpper(m.upper, v)
}

// boundSearch finds bins with a branch-free binary search over the bounds
// padded with +Inf to a power of two: binning searches every value of the
// training data, and the branches of an ordinary search mispredict on half
// of its steps.
type boundSearch struct {
	padded []float64
	n      int // real bounds
}

func newBoundSearch(upper []float64) *boundSearch {
	size := 1
	for size < len(upper) {
		size *= 2
	}
	p := make([]float64, size)
	copy(p, upper)
	for i := len(upper); i < size; i++ {
		p[i] = math.Inf(1)
	}
	return &boundSearch{padded: p, n: len(upper)}
}

func (s *boundSearch) find(v float64) int {
	p := s.padded
	i := 0
	for step := len(p) / 2; step > 0; step /= 2 {
		// i moves past the first half when its last bound is below v.
		i += step & -b2int(p[i+step-1] < v)
	}
	if p[i] < v { // only when v exceeds every bound (NaN never does)
		i++
	}
	return min(i, s.n)
}

// searchUpper returns the index of the first bound >= v (len(upper) if none):
// a binary search without the closure calls of sort.Search, since binning
// runs it for every value of the training data.
func searchUpper(upper []float64, v float64) int {
	lo, hi := 0, len(upper)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if upper[mid] < v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// catValueBin returns the bin of a category code.
func (m *binMapper) catValueBin(v float32) int {
	if v != v || v < 0 {
		return 0
	}
	c := int(v)
	if c >= len(m.catBin) {
		return 0
	}
	return int(m.catBin[c])
}

// sampleRows returns the sorted rows used to find bin boundaries:
// bin_construct_sample_cnt of them, drawn with data_random_seed, or all.
func sampleRows(n int, p *Params) []int {
	if n <= p.BinConstructSampleCnt {
		return nil // all rows
	}
	r := newRand(uint64(p.DataRandomSeed))
	// Selection sampling (Knuth's algorithm S): sorted, without replacement.
	k := p.BinConstructSampleCnt
	out := make([]int, 0, k)
	for i := 0; i < n && len(out) < k; i++ {
		if r.IntN(n-i) < k-len(out) {
			out = append(out, i)
		}
	}
	return out
}

// newBinMapper finds the bins of one column from the sampled rows (nil = all).
func newBinMapper(col *ml.Column, rows []int, p *Params) *binMapper {
	hasNaN := false
	for _, v := range col.Values {
		if v != v {
			hasNaN = true
			break
		}
	}
	var vals []float64
	if rows == nil {
		vals = make([]float64, 0, len(col.Values))
		for _, v := range col.Values {
			if v == v {
				vals = append(vals, float64(v))
			}
		}
	} else {
		vals = make([]float64, 0, len(rows))
		for _, r := range rows {
			if v := col.Values[r]; v == v {
				vals = append(vals, float64(v))
			}
		}
	}
	total := len(rows)
	if rows == nil {
		total = len(col.Values)
	}
	if col.Kind == ml.Categorical {
		return newCatBinMapper(col, vals, total, hasNaN, p)
	}
	m := &binMapper{missingType: missingNone}
	maxBin := p.MaxBin
	if hasNaN && p.UseMissing {
		m.missingType = missingNaN
		maxBin--
	}
	floatsort.Sort(vals) // NaN-free
	var distinct []float64
	var counts []int
	for i, v := range vals {
		if i > 0 && v == vals[i-1] {
			counts[len(counts)-1]++
			continue
		}
		distinct = append(distinct, v)
		counts = append(counts, 1)
	}
	if len(distinct) > 0 {
		m.minVal, m.maxVal = distinct[0], distinct[len(distinct)-1]
	}
	m.upper = findBinWithZeroAsOneBin(distinct, counts, maxBin, len(vals), p.MinDataInBin)
	m.search = newBoundSearch(m.upper)
	m.numBins = len(m.upper)
	if m.missingType == missingNaN {
		m.numBins++
	}
	return m
}

func newCatBinMapper(col *ml.Column, vals []float64, total int, hasNaN bool, p *Params) *binMapper {
	counts := make(map[int]int)
	naCnt := total - len(vals)
	for _, v := range vals {
		counts[int(v)]++
	}
	type cc struct{ cat, cnt int }
	list := make([]cc, 0, len(counts))
	for c, n := range counts {
		list = append(list, cc{c, n})
	}
	// Most frequent first; ties by code so the order is deterministic.
	sort.Slice(list, func(i, j int) bool {
		if list[i].cnt != list[j].cnt {
			return list[i].cnt > list[j].cnt
		}
		return list[i].cat < list[j].cat
	})
	m := &binMapper{categorical: true, binCat: []int{-1}, missingType: missingNone}
	maxBin := p.MaxBin
	if d := len(list) + 1; d < maxBin {
		maxBin = d
	}
	// One bin per category, most frequent first, while bins remain; a category
	// seen fewer than min_data_in_bin times (after the first two) shares bin 0.
	i := 0
	for i < len(list) && len(m.binCat) < maxBin {
		if list[i].cnt < p.MinDataInBin && i > 1 {
			break
		}
		m.binCat = append(m.binCat, list[i].cat)
		i++
	}
	if i < len(list) || naCnt > 0 || hasNaN {
		m.missingType = missingNaN
	}
	maxCat := len(col.Categories)
	for _, c := range m.binCat[1:] {
		if c+1 > maxCat {
			maxCat = c + 1
		}
	}
	m.catBin = make([]int32, maxCat)
	for b, c := range m.binCat[1:] {
		m.catBin[c] = int32(b + 1)
	}
	m.numBins = len(m.binCat)
	return m
}

// greedyFindBin splits sorted distinct values (with their counts) into at most
// maxBin bins of about equal counts, giving values that alone fill a bin their
// own bin; boundaries are midpoints between neighbouring values. It follows
// LightGBM's GreedyFindBin (src/io/bin.cpp) so that the bins, and so the
// models, come out alike.
func greedyFindBin(distinct []float64, counts []int, maxBin, total, minDataInBin int) []float64 {
	var bounds []float64
	n := len(distinct)
	if n == 0 {
		return []float64{math.Inf(1)}
	}
	if n <= maxBin {
		cur := 0
		for i := 0; i < n-1; i++ {
			cur += counts[i]
			if cur >= minDataInBin {
				v := upperBound((distinct[i] + distinct[i+1]) / 2)
				if len(bounds) == 0 || !(v <= bounds[len(bounds)-1]) {
					bounds = append(bounds, v)
					cur = 0
				}
			}
		}
		return append(bounds, math.Inf(1))
	}
	if minDataInBin > 0 {
		maxBin = min(maxBin, total/minDataInBin)
		maxBin = max(maxBin, 1)
	}
	meanBinSize := float64(total) / float64(maxBin)
	restBinCnt := maxBin
	restSampleCnt := total
	isBig := make([]bool, n)
	for i, c := range counts {
		if float64(c) >= meanBinSize {
			isBig[i] = true
			restBinCnt--
			restSampleCnt -= c
		}
	}
	meanBinSize = float64(restSampleCnt) / float64(restBinCnt)
	upper := make([]float64, maxBin)
	lower := make([]float64, maxBin)
	for i := range upper {
		upper[i], lower[i] = math.Inf(1), math.Inf(1)
	}
	binCnt := 0
	lower[0] = distinct[0]
	cur := 0
	for i := 0; i < n-1; i++ {
		if !isBig[i] {
			restSampleCnt -= counts[i]
		}
		cur += counts[i]
		if isBig[i] || float64(cur) >= meanBinSize || (isBig[i+1] && float64(cur) >= max(1.0, meanBinSize*0.5)) {
			upper[binCnt] = distinct[i]
			binCnt++
			lower[binCnt] = distinct[i+1]
			if binCnt >= maxBin-1 {
				break
			}
			cur = 0
			if !isBig[i] {
				restBinCnt--
				meanBinSize = float64(restSampleCnt) / float64(restBinCnt)
			}
		}
	}
	binCnt++
	for i := 0; i < binCnt-1; i++ {
		v := upperBound((upper[i] + lower[i+1]) / 2)
		if len(bounds) == 0 || !(v <= bounds[len(bounds)-1]) {
			bounds = append(bounds, v)
		}
	}
	return append(bounds, math.Inf(1))
}

// findBinWithZeroAsOneBin bins negative and positive values separately, in
// proportion to their counts, with a bin of its own for zero (LightGBM's
// FindBinWithZeroAsOneBin), so that a split can always isolate zeros.
func findBinWithZeroAsOneBin(distinct []float64, counts []int, maxBin, total, minDataInBin int) []float64 {
	leftCntData, cntZero, rightCntData := 0, 0, 0
	for i, v := range distinct {
		switch {
		case v <= -kZeroThreshold:
			leftCntData += counts[i]
		case v > kZeroThreshold:
			rightCntData += counts[i]
		default:
			cntZero += counts[i]
		}
	}
	leftCnt := len(distinct)
	for i, v := range distinct {
		if v > -kZeroThreshold {
			leftCnt = i
			break
		}
	}
	var bounds []float64
	if leftCnt > 0 && maxBin > 1 {
		leftMaxBin := int(float64(leftCntData) / float64(total-cntZero) * float64(maxBin-1))
		leftMaxBin = max(1, leftMaxBin)
		bounds = greedyFindBin(distinct[:leftCnt], counts[:leftCnt], leftMaxBin, leftCntData, minDataInBin)
		bounds[len(bounds)-1] = -kZeroThreshold
	}
	rightStart := -1
	for i := leftCnt; i < len(distinct); i++ {
		if distinct[i] > kZeroThreshold {
			rightStart = i
			break
		}
	}
	rightMaxBin := maxBin - 1 - len(bounds)
	if rightStart >= 0 && rightMaxBin > 0 {
		right := greedyFindBin(distinct[rightStart:], counts[rightStart:], rightMaxBin, rightCntData, minDataInBin)
		bounds = append(bounds, kZeroThreshold)
		bounds = append(bounds, right...)
	} else {
		bounds = append(bounds, math.Inf(1))
	}
	return bounds
}

// b2int is 1 for true, 0 for false; the compiler turns it into a flag
// move instead of a branch.
func b2int(b bool) int {
	if b {
		return 1
	}
	return 0
}

// find4 is find for four values at once: the four searches are independent,
// so the processor overlaps their load latencies.
func (s *boundSearch) find4(v *[4]float64) [4]int {
	p := s.padded
	var i0, i1, i2, i3 int
	for step := len(p) / 2; step > 0; step /= 2 {
		i0 += step & -b2int(p[i0+step-1] < v[0])
		i1 += step & -b2int(p[i1+step-1] < v[1])
		i2 += step & -b2int(p[i2+step-1] < v[2])
		i3 += step & -b2int(p[i3+step-1] < v[3])
	}
	out := [4]int{i0, i1, i2, i3}
	for k, i := range out {
		if p[i] < v[k] {
			i++
		}
		out[k] = min(i, s.n)
	}
	return out
}

// upperBound returns the next double above v, so that v itself falls in the
// bin the bound closes (LightGBM's GetDoubleUpperBound).
func upperBound(v float64) float64 { return math.Nextafter(v, math.Inf(1)) }
