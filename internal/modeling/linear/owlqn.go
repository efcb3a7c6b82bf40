package linear

import (
	"math"
)

// OWL-QN (Andrew and Gao, "Scalable training of L1-regularized log-linear
// models", ICML 2007) minimises smooth(θ) + λ1‖β‖₁. We implement it here
// because gonum's optimize has no method for a non-smooth L1 term: L-BFGS on
// |β| would step across zero again and again and never leave a coefficient at
// exactly 0, while OWL-QN keeps each step inside one orthant, where the L1
// term is linear, so it converges like L-BFGS and yields exact zeros.
//
// Per iteration: the pseudo-gradient ◇ (the steepest-descent direction's
// negative, using the one-sided derivatives of |β_j| at 0), a two-loop L-BFGS
// direction built from the smooth part's gradient differences, zeroed where it
// disagrees in sign with −◇, then a backtracking line search whose points are
// projected onto the orthant of the current point (coordinates that would
// cross zero are set to zero). The unpenalised intercepts are ordinary
// coordinates.

const (
	owlqnArmijo  = 1e-4  // sufficient-decrease constant of the line search
	owlqnMinStep = 1e-20 // the line search gives up below this step
)

// owlqn fits the L1-regularised problem. θ holds the starting point.
func owlqn(pr *problem, theta []float64, p Params, report func(int, float64, []float64) error) (fitResult, error) {
	n, pen, l1 := len(theta), pr.numPenalized(), p.LambdaL1
	objective := func(x, g []float64) float64 {
		f := pr.eval(x, g)
		for _, v := range x[:pen] {
			f += l1 * math.Abs(v)
		}
		return f
	}
	x := append([]float64(nil), theta...)
	g := make([]float64, n)
	f := objective(x, g)
	pg, dir := make([]float64, n), make([]float64, n)
	xNew, gNew := make([]float64, n), make([]float64, n)
	var hist lbfgsHistory
	hist.init(p.Memory, n)
	stalled := 0
	for iter := 1; iter <= p.MaxIter; iter++ {
		pseudoGradient(x, g, pen, l1, pg)
		if infNorm(pg) <= p.Tol {
			return fitResult{theta: x, iterations: iter - 1, converged: true}, nil
		}
		hist.direction(pg, dir)
		for j := range pen {
			if dir[j]*pg[j] >= 0 { // not a descent direction for this coordinate
				dir[j] = 0
			}
		}
		step := 1.0
		if hist.len == 0 {
			step = 1 / math.Sqrt(dot(pg, pg))
		}
		var fNew float64
		for {
			for j := range x {
				xNew[j] = x[j] + step*dir[j]
			}
			for j := range pen {
				orthant := math.Copysign(1, x[j])
				if x[j] == 0 {
					orthant = math.Copysign(1, -pg[j])
				}
				if xNew[j]*orthant <= 0 {
					xNew[j] = 0
				}
			}
			fNew = objective(xNew, gNew)
			decrease := 0.0
			for j := range x {
				decrease += pg[j] * (xNew[j] - x[j])
			}
			if fNew <= f+owlqnArmijo*decrease {
				break
			}
			step /= 2
			if step < owlqnMinStep {
				// No decrease along the direction at float64 precision: x is
				// as good as this method gets, short of Tol.
				return fitResult{theta: x, iterations: iter - 1}, nil
			}
		}
		hist.push(x, xNew, g, gNew)
		if f-fNew <= 1e-15*math.Max(math.Abs(f), 1) {
			stalled++
		} else {
			stalled = 0
		}
		x, xNew = xNew, x
		g, gNew = gNew, g
		f = fNew
		if err := report(iter, f, x); err != nil {
			return fitResult{}, err
		}
		if stalled >= 10 {
			// The objective has not moved at float64 precision for 10
			// iterations: converged as far as it can be measured (gonum's
			// FunctionConverge, used for L-BFGS, makes the same call).
			return fitResult{theta: x, iterations: iter, converged: true}, nil
		}
	}
	pseudoGradient(x, g, pen, l1, pg)
	return fitResult{theta: x, iterations: p.MaxIter, converged: infNorm(pg) <= p.Tol}, nil
}

// pseudoGradient stores in pg the gradient of smooth + λ1‖θ[:pen]‖₁: at a
// coordinate at zero, the one-sided derivative that points downhill, or 0 when
// neither side does (the coordinate is optimal at zero).
func pseudoGradient(x, g []float64, pen int, l1 float64, pg []float64) {
	copy(pg, g)
	for j := range pen {
		switch {
		case x[j] > 0:
			pg[j] = g[j] + l1
		case x[j] < 0:
			pg[j] = g[j] - l1
		case g[j]+l1 < 0:
			pg[j] = g[j] + l1
		case g[j]-l1 > 0:
			pg[j] = g[j] - l1
		default:
			pg[j] = 0
		}
	}
}

// lbfgsHistory keeps the last correction pairs s = Δθ, y = Δ∇smooth.
type lbfgsHistory struct {
	s, y      [][]float64
	rho       []float64
	next, len int
	alpha     []float64
}

func (h *lbfgsHistory) init(memory, n int) {
	h.s, h.y = make([][]float64, memory), make([][]float64, memory)
	for i := range memory {
		h.s[i], h.y[i] = make([]float64, n), make([]float64, n)
	}
	h.rho, h.alpha = make([]float64, memory), make([]float64, memory)
}

// push adds the pair from (x, g) to (xNew, gNew) unless its curvature s·y is
// not positive (which would make the implied Hessian indefinite).
func (h *lbfgsHistory) push(x, xNew, g, gNew []float64) {
	s, y := h.s[h.next], h.y[h.next]
	for j := range x {
		s[j] = xNew[j] - x[j]
		y[j] = gNew[j] - g[j]
	}
	sy := dot(s, y)
	if !(sy > 1e-16*math.Sqrt(dot(s, s)*dot(y, y))) {
		return
	}
	h.rho[h.next] = 1 / sy
	h.next = (h.next + 1) % len(h.s)
	h.len = min(h.len+1, len(h.s))
}

// direction stores −H·v in dir by the two-loop recursion (Nocedal and Wright,
// Numerical Optimization, algorithm 7.4), with the initial Hessian scaled by
// s·y / y·y of the newest pair.
func (h *lbfgsHistory) direction(v, dir []float64) {
	copy(dir, v)
	m := len(h.s)
	for i := range h.len {
		k := (h.next - 1 - i + m) % m
		h.alpha[k] = h.rho[k] * dot(h.s[k], dir)
		axpy(-h.alpha[k], h.y[k], dir)
	}
	if h.len > 0 {
		k := (h.next - 1 + m) % m
		gamma := 1 / (h.rho[k] * dot(h.y[k], h.y[k]))
		for j := range dir {
			dir[j] *= gamma
		}
	}
	for i := h.len - 1; i >= 0; i-- {
		k := (h.next - 1 - i + m) % m
		beta := h.rho[k] * dot(h.y[k], dir)
		axpy(h.alpha[k]-beta, h.s[k], dir)
	}
	for j := range dir {
		dir[j] = -dir[j]
	}
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func axpy(alpha float64, x, y []float64) {
	for i := range x {
		y[i] += alpha * x[i]
	}
}

func infNorm(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(x))
	}
	return m
}
