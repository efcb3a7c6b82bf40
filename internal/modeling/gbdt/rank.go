package gbdt

import (
	"math"
	"slices"
	"sort"
)

// lambdarankObjective is LambdaRank optimising NDCG, with LightGBM's
// conventions: gain label_gain[label] (2^label - 1 by default), discount
// 1/log2(2+rank), pairs formed with the top lambdarank_truncation_level
// documents, delta-NDCG normalised by the score distance and the lambdas of a
// query rescaled by log2(1+sum)/sum (lambdarank_norm).
type lambdarankObjective struct {
	label, weight []float64
	bounds        []int // query q is rows bounds[q]..bounds[q+1]-1
	gain          []float64
	sigmoid       float64
	truncation    int
	norm          bool
	invMaxDCG     []float64
	// discounts[i] is discount(i), for every rank a query can have.
	discounts []float64
	sigTable  sigmoidTable
}

// sigmoidTable tabulates 1/(1+exp(sigmoid*x)) as LightGBM's lambdarank does
// (2^20 steps over [-25/sigmoid, 25/sigmoid], clamped outside): an exp per
// document pair would otherwise dominate the gradient computation.
type sigmoidTable struct {
	values   []float64
	min, max float64
	factor   float64
}

const sigmoidBins = 1 << 20

func newSigmoidTable(sigmoid float64) sigmoidTable {
	t := sigmoidTable{min: -50 / sigmoid / 2}
	t.max = -t.min
	t.factor = sigmoidBins / (t.max - t.min)
	t.values = make([]float64, sigmoidBins)
	for i := range t.values {
		x := float64(i)/t.factor + t.min
		t.values[i] = 1 / (1 + math.Exp(x*sigmoid))
	}
	return t
}

func (t *sigmoidTable) get(x float64) float64 {
	switch {
	case x <= t.min:
		return t.values[0]
	case x >= t.max:
		return t.values[sigmoidBins-1]
	}
	return t.values[min(sigmoidBins-1, int((x-t.min)*t.factor))]
}

func newLambdarank(p *Params, label, weight []float64, groups []int) *lambdarankObjective {
	o := &lambdarankObjective{label: label, weight: weight, gain: p.labelGain(), sigmoid: p.Sigmoid,
		truncation: p.LambdarankTruncationLevel, norm: p.LambdarankNorm}
	o.bounds = groupBounds(groups)
	o.sigTable = newSigmoidTable(o.sigmoid)
	maxSize := 0
	for _, g := range groups {
		maxSize = max(maxSize, g)
	}
	o.discounts = make([]float64, maxSize)
	for i := range o.discounts {
		o.discounts[i] = discount(i)
	}
	o.invMaxDCG = make([]float64, len(groups))
	for q := range groups {
		m := maxDCGAtK(o.truncation, label[o.bounds[q]:o.bounds[q+1]], o.gain)
		if m > 0 {
			o.invMaxDCG[q] = 1 / m
		}
	}
	return o
}

// groupBounds turns group sizes into row boundaries.
func groupBounds(groups []int) []int {
	b := make([]int, len(groups)+1)
	for i, g := range groups {
		b[i+1] = b[i] + g
	}
	return b
}

// discount is the DCG position discount of rank i (0-based).
func discount(i int) float64 { return 1 / math.Log2(2+float64(i)) }

// maxDCGAtK is the DCG@k of the ideal ordering of labels.
func maxDCGAtK(k int, labels []float64, gain []float64) float64 {
	s := make([]float64, len(labels))
	copy(s, labels)
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	var dcg float64
	for i := 0; i < k && i < len(s); i++ {
		dcg += gain[int(s[i])] * discount(i)
	}
	return dcg
}

func (o *lambdarankObjective) gradients(score []float64, g, h []float32, nt int) {
	maxSize := len(o.discounts)
	// Blocks of queries share scratch buffers: no allocation per query.
	parallelRange(nt, len(o.bounds)-1, 256, func(_, qlo, qhi int) {
		buf := &rankScratch{
			lambdas: make([]float64, maxSize),
			hess:    make([]float64, maxSize),
			sorted:  make([]int, maxSize),
		}
		for q := qlo; q < qhi; q++ {
			lo, hi := o.bounds[q], o.bounds[q+1]
			o.query(q, o.label[lo:hi], score[lo:hi], g[lo:hi], h[lo:hi], buf)
			if o.weight != nil {
				for i := lo; i < hi; i++ {
					g[i] = float32(float64(g[i]) * o.weight[i])
					h[i] = float32(float64(h[i]) * o.weight[i])
				}
			}
		}
	})
}

// rankScratch holds one worker's buffers for query.
type rankScratch struct {
	lambdas, hess []float64
	sorted        []int
}

func (o *lambdarankObjective) query(q int, label, score []float64, g, h []float32, buf *rankScratch) {
	cnt := len(label)
	lambdas := buf.lambdas[:cnt]
	hess := buf.hess[:cnt]
	clear(lambdas)
	clear(hess)
	invMax := o.invMaxDCG[q]
	sorted := buf.sorted[:cnt]
	for i := range sorted {
		sorted[i] = i
	}
	slices.SortStableFunc(sorted, func(a, b int) int {
		switch {
		case score[a] > score[b]:
			return -1
		case score[a] < score[b]:
			return 1
		}
		return 0
	})
	disc := o.discounts
	best := score[sorted[0]]
	worst := score[sorted[cnt-1]]
	var sumLambdas float64
	for i := 0; i < cnt-1 && i < o.truncation; i++ {
		for j := i + 1; j < cnt; j++ {
			li, lj := label[sorted[i]], label[sorted[j]]
			if li == lj {
				continue
			}
			highRank, lowRank := i, j
			if li < lj {
				highRank, lowRank = j, i
			}
			high, low := sorted[highRank], sorted[lowRank]
			deltaScore := score[high] - score[low]
			dcgGap := o.gain[int(label[high])] - o.gain[int(label[low])]
			pairedDiscount := math.Abs(disc[highRank] - disc[lowRank])
			deltaNDCG := dcgGap * pairedDiscount * invMax
			if o.norm && best != worst {
				deltaNDCG /= 0.01 + math.Abs(deltaScore)
			}
			pLambda := o.sigTable.get(deltaScore)
			pHess := pLambda * (1 - pLambda)
			pLambda *= -o.sigmoid * deltaNDCG
			pHess *= o.sigmoid * o.sigmoid * deltaNDCG
			lambdas[low] -= pLambda
			hess[low] += pHess
			lambdas[high] += pLambda
			hess[high] += pHess
			sumLambdas -= 2 * pLambda
		}
	}
	factor := 1.0
	if o.norm && sumLambdas > 0 {
		factor = math.Log2(1+sumLambdas) / sumLambdas
	}
	for i := range lambdas {
		g[i] = float32(lambdas[i] * factor)
		h[i] = float32(hess[i] * factor)
	}
}

func (o *lambdarankObjective) boostFromScore(int) float64 { return 0 }
func (o *lambdarankObjective) classNeedTrain(int) bool    { return true }
