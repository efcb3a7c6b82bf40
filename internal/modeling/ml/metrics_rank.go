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

// NDCG is NDCG@k with LightGBM's conventions: gain[label] (nil: 2^label - 1),
// discount 1/log2(2+rank), and a query whose ideal DCG is 0 (no relevant
// rows) scores 1. Labels must be whole numbers indexing gain.
func NDCG(label, score []float64, groups []int, k int, gain []float64) (float64, error) {
	if err := checkGroups("ndcg", label, score, groups); err != nil {
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
	var total float64
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
			total++
			continue
		}
		var dcg float64
		for i, r := range rankQuery(sc)[:kk] {
			dcg += gain[int(lab[r])] * dcgDiscount(i)
		}
		total += dcg / maxDCG
	}
	return total / float64(len(groups)), nil
}

// MAP is mean average precision at k with LightGBM's conventions: a row is
// relevant when its label > 0.5; a query's AP@k is the sum of precision@i
// over the relevant rows in the top k, divided by min(relevant rows, k); a
// query without relevant rows scores 1.
func MAP(label, score []float64, groups []int, k int) (float64, error) {
	if err := checkGroups("map", label, score, groups); err != nil {
		return 0, err
	}
	if k <= 0 {
		return 0, fmt.Errorf("%w map: k=%d, want > 0", ErrMetric, k)
	}
	var total float64
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
			total++
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
		total += ap / float64(min(npos, kk))
	}
	return total / float64(len(groups)), nil
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
