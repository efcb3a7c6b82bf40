package tune

import "math"

// Truncated normal helpers, numerically careful in the tails: the Parzen
// estimator's kernels get as narrow as 1/100 of a range, so a candidate can
// sit tens of standard deviations from a kernel and plain erf would round its
// probability to 0 (log -Inf) for every kernel at once.

var logSqrt2Pi = 0.5 * math.Log(2*math.Pi)

// ndtr is the standard normal CDF.
func ndtr(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// logNdtr is log(ndtr(x)), accurate for very negative x (asymptotic series
// below -20, where ndtr underflows) and near 0 for large x.
func logNdtr(x float64) float64 {
	switch {
	case x > 6:
		return -ndtr(-x) // log(1-e) = -e for tiny e
	case x > -20:
		return math.Log(ndtr(x))
	}
	// log Φ(x) = log(φ(x)/-x) + log(1 - 1/x² + 3/x⁴ - 15/x⁶ + ...), summed
	// until the terms stop changing the total.
	lead := -0.5*x*x - math.Log(-x) - logSqrt2Pi
	sum, term, inv := 1.0, 1.0, 1/(x*x)
	for i := 1; i < 200; i++ {
		term *= -float64(2*i-1) * inv
		next := sum + term
		if next == sum {
			break
		}
		sum = next
	}
	return lead + math.Log(sum)
}

// logDiff is log(exp(p) - exp(q)) for p >= q.
func logDiff(p, q float64) float64 { return p + math.Log1p(-math.Exp(q-p)) }

// logAdd is log(exp(p) + exp(q)).
func logAdd(p, q float64) float64 {
	if math.IsInf(p, -1) {
		return q
	}
	if math.IsInf(q, -1) {
		return p
	}
	m := math.Max(p, q)
	return m + math.Log1p(math.Exp(-math.Abs(p-q)))
}

// logGaussMass is log(Φ(b) - Φ(a)) for a <= b, computed on the side of 0
// where the mass is not a difference of two numbers near 1.
func logGaussMass(a, b float64) float64 {
	switch {
	case b <= 0:
		return logDiff(logNdtr(b), logNdtr(a))
	case a > 0:
		return logDiff(logNdtr(-a), logNdtr(-b))
	default:
		return math.Log1p(-ndtr(a) - ndtr(-b))
	}
}

// ndtriExp returns x with logNdtr(x) = y (y <= 0), by Newton's method from
// a tail or logistic first guess.
func ndtriExp(y float64) float64 {
	flipped := y > -1e-2
	z := y
	if flipped {
		z = math.Log(-math.Expm1(y)) // log(1 - Φ(x)) = log Φ(-x)
	}
	var x float64
	if z < -5 {
		x = -math.Sqrt(-2 * (z + logSqrt2Pi))
	} else {
		x = -math.Sqrt(3) / math.Pi * math.Log(math.Expm1(-z))
	}
	for range 100 {
		l := logNdtr(x)
		dx := (l - z) * math.Exp(l-(-0.5*x*x-logSqrt2Pi))
		x -= dx
		if math.Abs(dx) < 1e-8*math.Abs(x) || math.IsNaN(dx) {
			break
		}
	}
	if flipped {
		x = -x
	}
	return x
}

// truncPPF is the inverse CDF at q of the standard normal truncated to [a, b].
func truncPPF(q, a, b float64) float64 {
	switch {
	case a == b:
		return a
	case q <= 0:
		return a
	case q >= 1:
		return b
	}
	mass := logGaussMass(a, b)
	if a < 0 {
		return ndtriExp(logAdd(logNdtr(a), math.Log(q)+mass))
	}
	return -ndtriExp(logAdd(logNdtr(-b), math.Log1p(-q)+mass))
}
