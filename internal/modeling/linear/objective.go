package linear

import (
	"math"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// problem is the smooth part of the objective (the loss and the L2 term) over
// the parameter vector θ = [β as p x k row-major, then k intercepts when fitted].
type problem struct {
	d         *ml.Design
	objective string
	k, p      int
	y, w      []float64 // w nil: every row weighs 1
	sumW      float64
	l2        float64
	intercept bool

	margin []float64 // n x k scratch; holds w_i/W · ∂loss/∂margin after eval
	blocks []blockSums
}

// blockSums are one row block's sums, added in block order for determinism.
type blockSums struct {
	loss float64
	dB   []float64 // ∂/∂intercept
}

func newProblem(d *ml.Design, objective string, k int, y, w []float64, sumW, l2 float64, intercept bool) *problem {
	pr := &problem{d: d, objective: objective, k: k, p: d.NumCols(), y: y, w: w, sumW: sumW, l2: l2, intercept: intercept,
		margin: make([]float64, d.NumRows()*k), blocks: make([]blockSums, ml.RowBlocks(d.NumRows()))}
	for b := range pr.blocks {
		pr.blocks[b].dB = make([]float64, k)
	}
	return pr
}

// dim is the length of θ.
func (pr *problem) dim() int {
	if pr.intercept {
		return pr.p*pr.k + pr.k
	}
	return pr.p * pr.k
}

// numPenalized is the length of θ's prefix that regularisation applies to (β).
func (pr *problem) numPenalized() int { return pr.p * pr.k }

// eval returns the smooth objective at θ and, when grad is not nil, stores its
// gradient in grad.
func (pr *problem) eval(theta, grad []float64) float64 {
	k, pk := pr.k, pr.p*pr.k
	pr.d.Mul(theta[:pk], k, pr.margin)
	ml.ParallelRows(pr.d.NumRows(), func(b, lo, hi int) {
		s := &pr.blocks[b]
		s.loss = 0
		clear(s.dB)
		for i := lo; i < hi; i++ {
			m := pr.margin[i*k : i*k+k]
			if pr.intercept {
				for c := range m {
					m[c] += theta[pk+c]
				}
			}
			wi := 1.0
			if pr.w != nil {
				wi = pr.w[i]
			}
			scale := wi / pr.sumW
			y := pr.y[i]
			// Loss of the row, then m becomes scale · ∂loss/∂m.
			switch pr.objective {
			case Regression:
				r := m[0] - y
				s.loss += scale * 0.5 * r * r
				m[0] = scale * r
			case Binary:
				// log(1 + e^x) - y·x and sigmoid(x) from one exp(-|x|), without overflow.
				x := m[0]
				e := math.Exp(-math.Abs(x))
				s.loss += scale * (max(x, 0) + math.Log1p(e) - y*x)
				p := 1 / (1 + e)
				if x < 0 {
					p = e / (1 + e)
				}
				m[0] = scale * (p - y)
			case Multiclass:
				yc := int(y)
				my := m[yc]
				lse := softmax(m)
				s.loss += scale * (lse - my)
				m[yc] -= 1
				for c := range m {
					m[c] *= scale
				}
			}
			for c := range m {
				s.dB[c] += m[c]
			}
		}
	})
	loss := 0.0
	for _, s := range pr.blocks {
		loss += s.loss
	}
	penalty := 0.0
	for _, v := range theta[:pk] {
		penalty += v * v
	}
	loss += 0.5 * pr.l2 * penalty
	if grad == nil {
		return loss
	}
	pr.d.MulT(pr.margin, k, grad[:pk])
	for j, v := range theta[:pk] {
		grad[j] += pr.l2 * v
	}
	if pr.intercept {
		dB := grad[pk:]
		clear(dB)
		for _, s := range pr.blocks {
			for c, v := range s.dB {
				dB[c] += v
			}
		}
	}
	return loss
}

// initialIntercepts starts the intercepts at the best constant model (the
// weighted mean for regression, log-odds of the class frequencies otherwise),
// which saves the optimizer its first iterations.
func (pr *problem) initialIntercepts(theta []float64) {
	if !pr.intercept {
		return
	}
	pk := pr.p * pr.k
	freq := make([]float64, max(pr.k, 2))
	for i, y := range pr.y {
		wi := 1.0
		if pr.w != nil {
			wi = pr.w[i]
		}
		switch pr.objective {
		case Regression:
			freq[0] += wi * y
		default:
			freq[int(y)] += wi
		}
	}
	const eps = 1e-12 // a class absent from training gets a very negative, finite intercept
	switch pr.objective {
	case Regression:
		theta[pk] = freq[0] / pr.sumW
	case Binary:
		theta[pk] = math.Log((freq[1] + eps) / (freq[0] + eps))
	case Multiclass:
		mean := 0.0
		for c := range pr.k {
			theta[pk+c] = math.Log((freq[c] + eps) / pr.sumW)
			mean += theta[pk+c] / float64(pr.k)
		}
		for c := range pr.k {
			theta[pk+c] -= mean
		}
	}
}
