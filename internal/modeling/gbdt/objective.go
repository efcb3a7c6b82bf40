package gbdt

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// kEpsilon is LightGBM's guard against log(0) and division by zero.
const kEpsilon = 1e-15

// objective computes gradients and hessians of a loss, LightGBM's way.
// Scores are class-major: score[k*n+i] is row i's raw score for output k.
type objective interface {
	// gradients fills g and h (class-major, like the scores).
	gradients(score []float64, g, h []float32, nt int)
	// boostFromScore is the initial raw score of output k (0 when the
	// objective does not boost from the average).
	boostFromScore(k int) float64
	// classNeedTrain is false for a class that is never or always the label:
	// its trees stay constant.
	classNeedTrain(k int) bool
}

// leafRenewer is implemented by objectives whose leaf outputs are replaced,
// after a tree is grown, by a statistic of the leaf's residuals (L1: median).
type leafRenewer interface {
	renews() bool
	renewLeaf(rows []int32, score []float64) float64
}

// newObjective checks the labels for the task and returns its objective.
func newObjective(p *Params, ds *ml.Dataset) (objective, error) {
	n := ds.NumRows()
	label, weight := ds.Label, ds.Weight
	if len(label) != n {
		return nil, fmt.Errorf("%w: training data has no label", ErrData)
	}
	switch p.Objective {
	case ObjBinary:
		for i, y := range label {
			if y != 0 && y != 1 {
				return nil, fmt.Errorf("%w: label of row %d is %v, want 0 or 1 for binary", ErrData, i+1, y)
			}
		}
		return newBinaryObjective(p, label, weight), nil
	case ObjRegression, ObjHuber, ObjRegressionL1:
		return &regressionObjective{kind: p.Objective, label: label, weight: weight, alpha: p.Alpha,
			boost: p.BoostFromAverage}, nil
	case ObjMulticlass:
		for i, y := range label {
			if y != math.Trunc(y) || y < 0 || int(y) >= p.NumClass {
				return nil, fmt.Errorf("%w: label of row %d is %v, want a class 0..%d (num_class=%d)", ErrData, i+1, y, p.NumClass-1, p.NumClass)
			}
		}
		return newMulticlassObjective(p, label, weight), nil
	case ObjLambdarank:
		if ds.Groups == nil {
			return nil, fmt.Errorf("%w: lambdarank needs query groups", ErrData)
		}
		gains := p.labelGain()
		for i, y := range label {
			if y != math.Trunc(y) || y < 0 || int(y) >= len(gains) {
				return nil, fmt.Errorf("%w: label of row %d is %v, want a relevance 0..%d (the label_gain entries)", ErrData, i+1, y, len(gains)-1)
			}
		}
		return newLambdarank(p, label, weight, ds.Groups), nil
	}
	return nil, fmt.Errorf("%w: objective %q", ErrParams, p.Objective)
}

// binaryObjective is the logistic loss on labels {0, 1} with LightGBM's
// sigmoid slope and class weights (is_unbalance, scale_pos_weight).
type binaryObjective struct {
	label, weight []float64
	sigmoid       float64
	posW, negW    float64
	boost         bool
}

func newBinaryObjective(p *Params, label, weight []float64) *binaryObjective {
	o := &binaryObjective{label: label, weight: weight, sigmoid: p.Sigmoid, posW: 1, negW: 1, boost: p.BoostFromAverage}
	if p.IsUnbalance {
		pos, neg := 0, 0
		for _, y := range label {
			if y > 0 {
				pos++
			} else {
				neg++
			}
		}
		if pos > 0 && neg > 0 {
			if pos > neg {
				o.negW = float64(pos) / float64(neg)
			} else {
				o.posW = float64(neg) / float64(pos)
			}
		}
	}
	o.posW *= p.ScalePosWeight
	return o
}

func (o *binaryObjective) gradients(score []float64, g, h []float32, nt int) {
	parallelRange(nt, len(o.label), 1<<14, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			y, lw := -1.0, o.negW
			if o.label[i] > 0 {
				y, lw = 1, o.posW
			}
			resp := -y * o.sigmoid / (1 + math.Exp(y*o.sigmoid*score[i]))
			abs := math.Abs(resp)
			gr := resp * lw
			he := abs * (o.sigmoid - abs) * lw
			if o.weight != nil {
				gr *= o.weight[i]
				he *= o.weight[i]
			}
			g[i], h[i] = float32(gr), float32(he)
		}
	})
}

// boostFromScore is the log-odds of the weighted share of positive rows. As
// in LightGBM, the class weights (is_unbalance, scale_pos_weight) do not
// enter it: they reweigh the gradients only.
func (o *binaryObjective) boostFromScore(int) float64 {
	if !o.boost {
		return 0
	}
	var sumY, sumW float64
	for i, y := range o.label {
		w := 1.0
		if o.weight != nil {
			w = o.weight[i]
		}
		if y > 0 {
			sumY += w
		}
		sumW += w
	}
	pavg := sumY / sumW
	pavg = min(max(pavg, kEpsilon), 1-kEpsilon)
	return math.Log(pavg/(1-pavg)) / o.sigmoid
}

func (o *binaryObjective) classNeedTrain(int) bool {
	pos, neg := false, false
	for _, y := range o.label {
		if y > 0 {
			pos = true
		} else {
			neg = true
		}
		if pos && neg {
			return true
		}
	}
	return false
}

// regressionObjective is L2, L1 (with median leaf outputs) or Huber loss.
type regressionObjective struct {
	kind          string
	label, weight []float64
	alpha         float64
	boost         bool
}

func (o *regressionObjective) gradients(score []float64, g, h []float32, nt int) {
	parallelRange(nt, len(o.label), 1<<14, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			diff := score[i] - o.label[i]
			var gr float64
			switch o.kind {
			case ObjRegression:
				gr = diff
			case ObjRegressionL1:
				gr = sign(diff)
			case ObjHuber:
				if math.Abs(diff) <= o.alpha {
					gr = diff
				} else {
					gr = sign(diff) * o.alpha
				}
			}
			he := 1.0
			if o.weight != nil {
				gr *= o.weight[i]
				he = o.weight[i]
			}
			g[i], h[i] = float32(gr), float32(he)
		}
	})
}

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

func (o *regressionObjective) boostFromScore(int) float64 {
	if !o.boost {
		return 0
	}
	if o.kind == ObjRegressionL1 {
		if o.weight != nil {
			return weightedPercentile(len(o.label), func(i int) float64 { return o.label[i] },
				func(i int) float64 { return o.weight[i] }, 0.5)
		}
		return percentile(len(o.label), func(i int) float64 { return o.label[i] }, 0.5)
	}
	var s, w float64
	for i, y := range o.label {
		if o.weight != nil {
			s += y * o.weight[i]
			w += o.weight[i]
		} else {
			s += y
		}
	}
	if o.weight == nil {
		w = float64(len(o.label))
	}
	return s / w
}

func (o *regressionObjective) classNeedTrain(int) bool { return true }

func (o *regressionObjective) renews() bool { return o.kind == ObjRegressionL1 }

// renewLeaf implements leafRenewer for L1: the leaf outputs the (weighted)
// median of its rows' residuals.
func (o *regressionObjective) renewLeaf(rows []int32, score []float64) float64 {
	res := func(i int) float64 { r := rows[i]; return o.label[r] - score[r] }
	if o.weight != nil {
		return weightedPercentile(len(rows), res, func(i int) float64 { return o.weight[rows[i]] }, 0.5)
	}
	return percentile(len(rows), res, 0.5)
}

// percentile is LightGBM's PercentileFun: the alpha-quantile of n values,
// interpolated between order statistics as LightGBM does.
func percentile(n int, value func(int) float64, alpha float64) float64 {
	if n == 0 {
		return 0
	}
	if n <= 1 {
		return value(0)
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = value(i)
	}
	// Descending order: LightGBM's ArgMaxAtK partitions largest-first.
	slices.SortFunc(v, func(a, b float64) int {
		switch {
		case a > b:
			return -1
		case a < b:
			return 1
		}
		return 0
	})
	floatPos := (1 - alpha) * float64(n)
	pos := int(floatPos)
	if pos < 1 {
		return v[0]
	}
	if pos >= n {
		return v[n-1]
	}
	bias := floatPos - float64(pos)
	v1, v2 := v[pos-1], v[pos]
	return v1 - (v1-v2)*bias
}

// weightedPercentile is LightGBM's WeightedPercentileFun.
func weightedPercentile(n int, value, weight func(int) float64, alpha float64) float64 {
	if n == 0 {
		return 0
	}
	if n <= 1 {
		return value(0)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return value(idx[a]) < value(idx[b]) })
	cdf := make([]float64, n)
	cdf[0] = weight(idx[0])
	for i := 1; i < n; i++ {
		cdf[i] = cdf[i-1] + weight(idx[i])
	}
	threshold := cdf[n-1] * alpha
	pos := sort.Search(n, func(i int) bool { return cdf[i] > threshold })
	pos = min(pos, n-1)
	if pos == 0 || pos == n-1 {
		return value(idx[pos])
	}
	v1, v2 := value(idx[pos-1]), value(idx[pos])
	if cdf[pos+1]-cdf[pos] >= 1 {
		return (threshold-cdf[pos])/(cdf[pos+1]-cdf[pos])*(v2-v1) + v1
	}
	return v2
}

// multiclassObjective is softmax cross-entropy over K classes, with
// LightGBM's hessian factor K/(K-1).
type multiclassObjective struct {
	k             int
	label, weight []float64
	initProb      []float64
	boost         bool
}

func newMulticlassObjective(p *Params, label, weight []float64) *multiclassObjective {
	o := &multiclassObjective{k: p.NumClass, label: label, weight: weight, initProb: make([]float64, p.NumClass), boost: p.BoostFromAverage}
	var sw float64
	for i, y := range label {
		w := 1.0
		if weight != nil {
			w = weight[i]
		}
		o.initProb[int(y)] += w
		sw += w
	}
	for k := range o.initProb {
		o.initProb[k] /= sw
	}
	return o
}

func (o *multiclassObjective) gradients(score []float64, g, h []float32, nt int) {
	n := len(o.label)
	factor := float64(o.k) / float64(o.k-1)
	parallelRange(nt, n, 1<<12, func(_, lo, hi int) {
		p := make([]float64, o.k)
		for i := lo; i < hi; i++ {
			for k := range p {
				p[k] = score[k*n+i]
			}
			softmax(p, p)
			y := int(o.label[i])
			w := 1.0
			if o.weight != nil {
				w = o.weight[i]
			}
			for k, pk := range p {
				gr := pk
				if k == y {
					gr = pk - 1
				}
				g[k*n+i] = float32(gr * w)
				h[k*n+i] = float32(factor * pk * (1 - pk) * w)
			}
		}
	})
}

func (o *multiclassObjective) boostFromScore(k int) float64 {
	if !o.boost {
		return 0
	}
	return math.Log(max(kEpsilon, o.initProb[k]))
}

func (o *multiclassObjective) classNeedTrain(k int) bool {
	p := o.initProb[k]
	return p > kEpsilon && p < 1-kEpsilon
}

// softmax writes the softmax of in to out (which may alias in).
func softmax(in, out []float64) {
	m := math.Inf(-1)
	for _, v := range in {
		m = max(m, v)
	}
	var s float64
	for i, v := range in {
		out[i] = math.Exp(v - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
}

func sigmoid(x, slope float64) float64 { return 1 / (1 + math.Exp(-slope*x)) }
