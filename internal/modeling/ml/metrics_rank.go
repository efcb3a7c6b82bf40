package ml

import (
	"fmt"
	"math"
	"sort"
)

// Ranking metrics take rows grouped into queries: groups holds the sizes of
// consecutive queries (Dataset.Groups). Within a query, rows are ranked by
// descending score; tied scores keep their row order (LightGBM's stable
// sort). Each metric is the unweighted mean over queries.

// DefaultLabelGain returns LightGBM's default relevance gains, 2^label - 1
// for labels 0..30.
func DefaultLabelGain() []float64 {
	g := make([]float64, 31)
	for i := range g {
		g[i] = float64(uint64(1)<<i) - 1
	}
	return g
}

func checkGroups(name string, label, score []float64, groups []int) error {
	if err := checkLens(name, label, score, nil); err != nil {
		return err
	}
	sum := 0
	for i, g := range groups {
		if g <= 0 {
			return fmt.Errorf("%w %s: query %d has %d rows, want > 0", ErrMetric, name, i, g)
		}
		sum += g
	}
	if sum != len(label) {
		return fmt.Errorf("%w %s: queries cover %d rows, want %d", ErrMetric, name, sum, len(label))
	}
	return nil
}

// rankQuery returns the query's row indices (relative to its start) by
// descending score, ties in row order.
func rankQuery(score []float64) []int {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] > score[idx[b]] })
	return idx
}

func dcgDiscount(i int) float64 { return 1 / math.Log2(2+float64(i)) }

// queryMean averages per-query values, weighing each query by the mean
// weight of its rows when weight is not nil: LightGBM's query weights,
// computed in float32 as LightGBM stores them.
type queryMean struct {
	weight    []float64
	sum, sumW float64
	start     int
}

// next returns the weight of the query of the next rows rows.
func (m *queryMean) next(rows int) float64 {
	if m.weight == nil {
		m.start += rows
		return 1
	}
	var w float32
	for _, x := range m.weight[m.start : m.start+rows] {
		w += float32(x)
	}
	m.start += rows
	return float64(w / float32(rows))
}

// add adds the value of the query of the next rows rows.
func (m *queryMean) add(v float64, rows int) {
	w := m.next(rows)
	m.sum += w * v
	m.sumW += w
}

// addUnweighted adds the value of the query of the next rows rows without its
// weight in the numerator (its weight still counts in the denominator):
// LightGBM's weighted NDCG scores a query without relevant rows so.
func (m *queryMean) addUnweighted(v float64, rows int) {
	m.sumW += m.next(rows)
	m.sum += v
}

func (m *queryMean) value() float64 { return m.sum / m.sumW }

// checkQueryWeights checks per-row weights for a weighted ranking metric.
func checkQueryWeights(name string, n int, weight []float64) error {
	if weight == nil {
		return nil
	}
	if len(weight) != n {
		return fmt.Errorf("%w %s: %d weights for %d rows", ErrMetric, name, len(weight), n)
	}
	var sum float64
	for _, w := range weight {
		if !(w >= 0) {
			return fmt.Errorf("%w %s: weight %v, want >= 0", ErrMetric, name, w)
		}
		sum += w
	}
	if sum <= 0 {
		return fmt.Errorf("%w %s: the weights sum to 0", ErrMetric, name)
	}
	return nil
}

// NDCG is NDCG@k with LightGBM's conventions: gain[label] (nil: 2^label - 1),
// discount 1/log2(2+rank), and a query whose ideal DCG is 0 (no relevant
// rows) scores 1. Labels must be whole numbers indexing gain.
func NDCG(label, score []float64, groups []int, k int, gain []float64) (float64, error) {
	return NDCGWeighted(label, score, groups, k, gain, nil)
}

// NDCGWeighted is NDCG with per-row weights (nil: unweighted), as LightGBM's
// ndcg metric computes it on a weighted dataset: the sum over queries of
// NDCG times the query's weight (the mean weight of its rows), divided by the
// sum of the query weights; a query without relevant rows adds 1 to the sum,
// not its weight (LightGBM's rule, kept so that early stopping agrees).
func NDCGWeighted(label, score []float64, groups []int, k int, gain, weight []float64) (float64, error) {
	if err := checkGroups("ndcg", label, score, groups); err != nil {
		return 0, err
	}
	if err := checkQueryWeights("ndcg", len(label), weight); err != nil {
		return 0, err
	}
	if k <= 0 {
		return 0, fmt.Errorf("%w ndcg: k=%d, want > 0", ErrMetric, k)
	}
	if gain == nil {
		gain = DefaultLabelGain()
	}
	for i, y := range label {
		if y != math.Trunc(y) || y < 0 || int(y) >= len(gain) {
			return 0, fmt.Errorf("%w ndcg: label of row %d is %v, want a relevance 0..%d", ErrMetric, i, y, len(gain)-1)
		}
	}
	mean := queryMean{weight: weight}
	start := 0
	for _, g := range groups {
		lab, sc := label[start:start+g], score[start:start+g]
		start += g
		kk := min(k, g)
		ideal := append([]float64(nil), lab...)
		sort.Sort(sort.Reverse(sort.Float64Slice(ideal)))
		var maxDCG float64
		for i := 0; i < kk; i++ {
			maxDCG += gain[int(ideal[i])] * dcgDiscount(i)
		}
		if maxDCG <= 0 {
			mean.addUnweighted(1, g)
			continue
		}
		var dcg float64
		for i, r := range rankQuery(sc)[:kk] {
			dcg += gain[int(lab[r])] * dcgDiscount(i)
		}
		mean.add(dcg/maxDCG, g)
	}
	return mean.value(), nil
}

// MAP is mean average precision at k with LightGBM's conventions: a row is
// relevant when its label > 0.5; a query's AP@k is the sum of precision@i
// over the relevant rows in the top k, divided by min(relevant rows, k); a
// query without relevant rows scores 1.
func MAP(label, score []float64, groups []int, k int) (float64, error) {
	return MAPWeighted(label, score, groups, k, nil)
}

// MAPWeighted is MAP with per-row weights (nil: unweighted), each query
// weighing the mean weight of its rows, as LightGBM's map metric does.
func MAPWeighted(label, score []float64, groups []int, k int, weight []float64) (float64, error) {
	if err := checkGroups("map", label, score, groups); err != nil {
		return 0, err
	}
	if err := checkQueryWeights("map", len(label), weight); err != nil {
		return 0, err
	}
	if k <= 0 {
		return 0, fmt.Errorf("%w map: k=%d, want > 0", ErrMetric, k)
	}
	mean := queryMean{weight: weight}
	start := 0
	for _, g := range groups {
		lab, sc := label[start:start+g], score[start:start+g]
		start += g
		npos := 0
		for _, y := range lab {
			if y > 0.5 {
				npos++
			}
		}
		if npos == 0 {
			mean.add(1, g)
			continue
		}
		kk := min(k, g)
		hits := 0
		var ap float64
		for i, r := range rankQuery(sc)[:kk] {
			if lab[r] > 0.5 {
				hits++
				ap += float64(hits) / float64(i+1)
			}
		}
		mean.add(ap/float64(min(npos, kk)), g)
	}
	return mean.value(), nil
}

// MRR is the mean reciprocal rank of the first relevant row (label > 0) of
// each query; a query without relevant rows scores 0.
func MRR(label, score []float64, groups []int) (float64, error) {
	if err := checkGroups("mrr", label, score, groups); err != nil {
		return 0, err
	}
	var total float64
	start := 0
	for _, g := range groups {
		lab, sc := label[start:start+g], score[start:start+g]
		start += g
		for i, r := range rankQuery(sc) {
			if lab[r] > 0 {
				total += 1 / float64(i+1)
				break
			}
		}
	}
	return total / float64(len(groups)), nil
}
