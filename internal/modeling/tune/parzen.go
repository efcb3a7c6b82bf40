package tune

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// parzen is a mixture of product kernels: kernel k has weight w[k] and, per
// dimension, a truncated normal (numerical) or a categorical distribution.
// The last kernel is the prior (centred, as wide as the range).
type parzen struct {
	logW []float64 // log of the normalized kernel weights
	cum  []float64 // cumulative weights, for drawing a kernel
	dims []parzenDim
	acc  []float64 // logPDF's per-kernel scratch

	// plain is set when every dimension is a continuous range without a
	// step (the common case): kernels holds then, kernel after kernel, each
	// dimension's (mu, 1/sigma, log constant), so logPDF reads one
	// contiguous row per kernel and sums its terms in the order of the
	// general path (the same doubles), instead of a pass over all kernels
	// per dimension.
	plain   bool
	kernels []float64
	v       []float64 // logPDF's transformed point
}

type parzenDim struct {
	categorical bool
	// cat[k][c] is kernel k's probability of choice c; logCat its log.
	cat, logCat [][]float64

	// Numerical: kernel means and widths in the transformed space (log if
	// logScale), and the range there (widened by half a step for stepped
	// and integer ranges).
	mu, sigma []float64
	lo, hi    float64
	logScale  bool
	// step > 0 discretizes: values are origLo + k*step within [origLo, origHi].
	step           float64
	origLo, origHi float64
	// logNorm[k] is log of kernel k's mass inside [lo, hi].
	logNorm []float64
	// invSigma[k] is 1/sigma[k]; logC[k] is kernel k's log density constant
	// (-log sqrt(2 pi) - log sigma - logNorm): the density's hot loop does
	// no log.
	invSigma, logC []float64
}

// fit builds the estimator of space from the trials holding every parameter of it.
func (s *TPESampler) fit(trials []*FrozenTrial, space Space, values *spaceValues) *parzen {
	p := &parzen{}
	s.fitInto(p, &fitWork{}, trials, space, values)
	return p
}

// fitInto is fit into p, reusing p's arrays and fw's scratch: a 1,000-trial
// study's "above" estimator has a thousand kernels per dimension, and
// allocating them at every step cost more than computing them.
func (s *TPESampler) fitInto(p *parzen, fw *fitWork, trials []*FrozenTrial, space Space, values *spaceValues) {
	// Observations dimension after dimension: obs of dimension i are
	// fw.obs[i*nt : i*nt+n].
	nt := len(trials)
	fw.obs = grow(fw.obs, len(space)*nt)
	fw.nums = fw.nums[:0]
	maxNum := -1
	fw.rows = values.rowsOf(trials, fw.rows[:0])
	for j, t := range trials {
		row := fw.rows[j]
		if row == nil {
			continue
		}
		n := len(fw.nums)
		for i := range space {
			fw.obs[i*nt+n] = row[i]
		}
		fw.nums = append(fw.nums, t.Number)
		maxNum = max(maxNum, t.Number)
	}
	n := 0
	if len(space) > 0 {
		n = len(fw.nums)
	}
	var w []float64
	switch {
	case n == 0:
		w = append(fw.weights[:0], 1)
	case s.defaultWeights:
		w = append(defaultWeightsInto(grow(fw.weights, n+1)[:n]), s.o.PriorWeight)
	default:
		w = append(append(fw.weights[:0], s.o.Weights(n)[:n:n]...), s.o.PriorWeight)
	}
	fw.weights = w
	total := 0.0
	for _, x := range w {
		total += x
	}
	p.logW, p.cum = grow(p.logW, len(w)), grow(p.cum, len(w))
	acc := 0.0
	for k, x := range w {
		p.logW[k] = math.Log(x / total)
		acc += x / total
		p.cum[k] = acc
	}
	// Trial number -> observation index, for the memo's sorted order.
	fw.pos = grow(fw.pos, maxNum+1)
	for i := range fw.pos {
		fw.pos[i] = -1
	}
	for j, num := range fw.nums[:n] {
		fw.pos[num] = int32(j)
	}
	// Whether the estimator is plain is known from the space: numericalDim
	// then writes the kernel-major array as it computes the kernels.
	p.plain = len(space) > 0
	for _, prm := range space {
		switch d := prm.Dist.(type) {
		case CategoricalDist:
			p.plain = false
		case FloatDist:
			p.plain = p.plain && d.Step <= 0
		default:
			p.plain = false
		}
	}
	var kernels []float64
	if p.plain {
		p.kernels = grow(p.kernels, 3*len(space)*len(p.logW))
		kernels = p.kernels
	}
	if cap(p.dims) < len(space) {
		p.dims = append(p.dims[:cap(p.dims)], make([]parzenDim, len(space)-cap(p.dims))...)
	}
	p.dims = p.dims[:len(space)]
	for i, prm := range space {
		obs := fw.obs[i*nt : i*nt+n]
		if c, ok := prm.Dist.(CategoricalDist); ok {
			p.dims[i] = categoricalFit(obs, c, s.o.PriorWeight)
			continue
		}
		order, ok := values.order(fw.order, i, fw.pos, n)
		if !ok {
			order = sortOrder(fw, obs, prm.Dist)
		}
		fw.order = order
		s.numericalDim(&p.dims[i], fw, obs, order, prm.Dist, kernels, len(space), i)
	}
}

// categoricalFit is the categorical dimension of observations obs.
func categoricalFit(obs []float64, c CategoricalDist, prior float64) parzenDim {
	dim := categoricalDim(obs, len(c.Choices), prior)
	dim.logCat = make([][]float64, len(dim.cat))
	for k, row := range dim.cat {
		dim.logCat[k] = make([]float64, len(row))
		for j, p := range row {
			dim.logCat[k][j] = math.Log(p)
		}
	}
	return dim
}

// categoricalDim gives each observation a kernel with prior/(n+1) on every
// choice plus 1 on the observed one, and a uniform prior kernel; rows are
// normalized (Optuna's categorical Parzen estimator).
func categoricalDim(obs []float64, nc int, prior float64) parzenDim {
	if len(obs) == 0 {
		row := make([]float64, nc)
		for j := range row {
			row[j] = 1 / float64(nc)
		}
		return parzenDim{categorical: true, cat: [][]float64{row}}
	}
	nk := len(obs) + 1
	cat := make([][]float64, nk)
	for k := range cat {
		row := make([]float64, nc)
		for j := range row {
			row[j] = prior / float64(nk)
		}
		if k < len(obs) {
			row[int(obs[k])]++
		}
		sum := 0.0
		for _, v := range row {
			sum += v
		}
		for j := range row {
			row[j] /= sum
		}
		cat[k] = row
	}
	return parzenDim{categorical: true, cat: cat}
}

// numericalDim fits dim (reusing its arrays) to obs, whose (transformed
// value, index) order is order. With kernels (a plain estimator's array,
// nd dimensions) it also writes dimension i's part of it.
func (s *TPESampler) numericalDim(dim *parzenDim, fw *fitWork, obs []float64, order []int32, d Distribution, kernels []float64, nd, i int) {
	*dim = parzenDim{mu: dim.mu, sigma: dim.sigma, logNorm: dim.logNorm, invSigma: dim.invSigma, logC: dim.logC}
	switch x := d.(type) {
	case FloatDist:
		dim.origLo, dim.origHi, dim.logScale, dim.step = x.Low, x.High, x.Log, x.Step
		if x.Step > 0 {
			dim.origHi = x.high()
		}
	case IntDist:
		dim.origLo, dim.origHi, dim.logScale, dim.step = float64(x.Low), float64(x.high()), x.Log, float64(x.step())
	}
	lo, hi := dim.origLo, dim.origHi
	if dim.step > 0 {
		lo -= dim.step / 2
		hi += dim.step / 2
	}
	m := len(obs) + 1
	dim.mu, dim.sigma = grow(dim.mu, m), grow(dim.sigma, m)
	mus := dim.mu[:len(obs)]
	copy(mus, obs)
	if dim.logScale {
		lo, hi = math.Log(lo), math.Log(hi)
		for j := range mus {
			mus[j] = math.Log(mus[j])
		}
	}
	dim.lo, dim.hi = lo, hi
	s.sigmasInto(dim.sigma[:len(obs)], mus, order, lo, hi, fw)
	dim.mu[m-1] = 0.5 * (lo + hi)
	dim.sigma[m-1] = hi - lo
	dim.logNorm, dim.invSigma, dim.logC = grow(dim.logNorm, m), grow(dim.invSigma, m), grow(dim.logC, m)
	// Most kernels of a long study have the clipped minimum width: reuse
	// its log and inverse (the same doubles).
	lastSigma, lastLog, lastInv := math.NaN(), 0.0, 0.0
	for k, mu := range dim.mu {
		sg := dim.sigma[k]
		if sg != lastSigma {
			lastSigma, lastLog, lastInv = sg, math.Log(sg), 1/sg
		}
		// A kernel nine widths from both ends has all but 1e-19 of its mass
		// inside: its log mass is 0 to double precision, and most kernels
		// of a long study are narrow and inside (no erfc for them). Kernels
		// 9.0001 widths inside by a multiplication are inside by the
		// division too (the margin dwarfs rounding; sg > 0), so they skip
		// both divisions.
		dim.logNorm[k] = 0
		if dl, dh := lo-mu, hi-mu; dl > -9.0001*sg || dh < 9.0001*sg {
			if a, b := dl/sg, dh/sg; a > -9 || b < 9 {
				dim.logNorm[k] = logGaussMass(a, b)
			}
		}
		dim.invSigma[k] = lastInv
		dim.logC[k] = -logSqrt2Pi - lastLog - dim.logNorm[k]
		if kernels != nil {
			row := kernels[3*(k*nd+i) : 3*(k*nd+i)+3 : 3*(k*nd+i)+3]
			row[0], row[1], row[2] = mu, dim.invSigma[k], dim.logC[k]
		}
	}
}

// sortOrder returns the indices of obs (values of d) in (transformed value,
// index) order, in fw.order; the memo's index gives the same order without
// sorting (spaceValues.order).
func sortOrder(fw *fitWork, obs []float64, d Distribution) []int32 {
	fw.sortBuf = grow(fw.sortBuf, len(obs))
	for i, x := range obs {
		fw.sortBuf[i] = sortObs{transformed(d, x), i}
	}
	// Ties keep observation order (numpy's argsort is not stable: which
	// tied kernel gets which width is arbitrary in Optuna).
	slices.SortFunc(fw.sortBuf, func(a, b sortObs) int {
		switch { // observations are never NaN: plain comparisons
		case a.mu < b.mu:
			return -1
		case a.mu > b.mu:
			return 1
		}
		return a.i - b.i
	})
	fw.order = grow(fw.order, len(obs))
	for p, o := range fw.sortBuf {
		fw.order[p] = int32(o.i)
	}
	return fw.order
}

// sigmas gives each observation's kernel the width of the larger gap to its
// neighbours (the range's ends count as neighbours, except for the
// outermost kernels unless ConsiderEndpoints), clipped to
// [range/min(100, kernels+1), range].
func (s *TPESampler) sigmas(mus []float64, lo, hi float64) []float64 {
	out := make([]float64, len(mus))
	fw := &fitWork{}
	s.sigmasInto(out, mus, sortOrder(fw, mus, FloatDist{}), lo, hi, fw)
	return out
}

// sigmasInto is sigmas into out, given mus's sorted order.
func (s *TPESampler) sigmasInto(out, mus []float64, order []int32, lo, hi float64, fw *fitWork) {
	n := len(mus)
	if n == 0 {
		return
	}
	fw.ends = grow(fw.ends, n+2)
	ends := fw.ends
	ends[0], ends[n+1] = lo, hi
	for p, j := range order {
		ends[p+1] = mus[j]
	}
	maxSigma := hi - lo
	minSigma := 1e-12
	if !s.o.NoMagicClip {
		minSigma = (hi - lo) / math.Min(100, float64(n+2))
	}
	// The builtin min and max treat NaN and signed zeros as math.Min and
	// math.Max do (the same widths), and are not calls.
	for p, j := range order {
		var width float64 // the kernel width at sorted position p
		switch {
		case !s.o.ConsiderEndpoints && n >= 2 && p == 0:
			width = ends[2] - ends[1]
		case !s.o.ConsiderEndpoints && n >= 2 && p == n-1:
			width = ends[n] - ends[n-1]
		default:
			width = max(ends[p+1]-ends[p], ends[p+2]-ends[p+1])
		}
		out[j] = min(max(width, minSigma), maxSigma)
	}
}

// sample draws one point (internal representation) into x.
func (p *parzen) sample(rng *rand.Rand, x []float64) {
	k := sort.SearchFloat64s(p.cum, rng.Float64())
	if k >= len(p.cum) {
		k = len(p.cum) - 1
	}
	for i := range p.dims {
		d := &p.dims[i]
		if d.categorical {
			row := d.cat[min(k, len(d.cat)-1)]
			u, acc := rng.Float64(), 0.0
			x[i] = float64(len(row) - 1)
			for c, pr := range row {
				acc += pr
				if u < acc {
					x[i] = float64(c)
					break
				}
			}
			continue
		}
		mu, sg := d.mu[k], d.sigma[k]
		v := truncPPF(rng.Float64(), (d.lo-mu)/sg, (d.hi-mu)/sg)*sg + mu
		if d.logScale {
			v = math.Exp(v)
		}
		if d.step > 0 {
			v = roundStep(v, d.origLo, d.origHi, d.step)
		} else {
			v = clamp(v, d.origLo, d.origHi)
		}
		x[i] = v
	}
}

// logPDF is the mixture's log density (log probability for the discrete
// dimensions) at x, up to terms that are equal for every estimator fit to
// the same space (the log-scale Jacobian), which the l/g ratio cancels.
//
// The loops run dimension by dimension over all kernels (a branch-free inner
// loop over three arrays), accumulating each kernel's log density in p.acc:
// logPDF is not safe for concurrent use.
func (p *parzen) logPDF(x []float64) float64 {
	p.acc = grow(p.acc, len(p.logW)) // headroom: a study adds a kernel per trial
	acc := p.acc
	if p.plain {
		return p.logPDFPlain(x, acc)
	}
	copy(acc, p.logW)
	for i := range p.dims {
		d := &p.dims[i]
		switch {
		case d.categorical:
			c := int(x[i])
			if len(d.logCat) == 1 {
				for k := range acc {
					acc[k] += d.logCat[0][c]
				}
				continue
			}
			for k := range acc {
				acc[k] += d.logCat[k][c]
			}
		case d.step > 0:
			l, r := x[i]-d.step/2, x[i]+d.step/2
			if d.logScale {
				l, r = math.Log(l), math.Log(r)
			}
			for k := range acc {
				mu, inv := d.mu[k], d.invSigma[k]
				acc[k] += logGaussMass((l-mu)*inv, (r-mu)*inv) - d.logNorm[k]
			}
		default:
			v := x[i]
			if d.logScale {
				v = math.Log(v)
			}
			mu, inv, c := d.mu[:len(acc)], d.invSigma[:len(acc)], d.logC[:len(acc)]
			for k := range acc {
				z := (v - mu[k]) * inv[k]
				acc[k] += c[k] - 0.5*z*z
			}
		}
	}
	maxv := math.Inf(-1)
	for _, s := range acc {
		maxv = max(maxv, s) // the builtin: math.Max's result, without a call
	}
	return logSumExp(acc, maxv)
}

// logPDFPlain is logPDF of a plain estimator, acc its scratch: one pass over
// the kernels, each kernel's terms added in dimension order as logPDF's
// general path adds them, so the result is the same double.
func (p *parzen) logPDFPlain(x, acc []float64) float64 {
	nd := len(p.dims)
	p.v = grow(p.v, nd)
	v := p.v
	for i := range p.dims {
		v[i] = x[i]
		if p.dims[i].logScale {
			v[i] = math.Log(x[i])
		}
	}
	stride := 3 * nd
	m := len(acc)
	kernels, logW := p.kernels[:stride*m], p.logW[:m]
	// Four kernels at a time: each kernel's sum is a chain of dependent
	// additions, and four independent chains keep the FPU busy where one
	// waits on the previous addition. Each chain adds the same terms in the
	// same order as one kernel at a time would.
	k := 0
	for ; k+4 <= m; k += 4 {
		r0 := kernels[k*stride : (k+1)*stride : (k+1)*stride]
		r1 := kernels[(k+1)*stride : (k+2)*stride : (k+2)*stride]
		r2 := kernels[(k+2)*stride : (k+3)*stride : (k+3)*stride]
		r3 := kernels[(k+3)*stride : (k+4)*stride : (k+4)*stride]
		s0, s1, s2, s3 := logW[k], logW[k+1], logW[k+2], logW[k+3]
		for i, vi := range v {
			j := 3 * i
			t0, t1, t2, t3 := r0[j:j+3:j+3], r1[j:j+3:j+3], r2[j:j+3:j+3], r3[j:j+3:j+3]
			z0 := (vi - t0[0]) * t0[1]
			z1 := (vi - t1[0]) * t1[1]
			z2 := (vi - t2[0]) * t2[1]
			z3 := (vi - t3[0]) * t3[1]
			s0 += t0[2] - 0.5*z0*z0
			s1 += t1[2] - 0.5*z1*z1
			s2 += t2[2] - 0.5*z2*z2
			s3 += t3[2] - 0.5*z3*z3
		}
		a := acc[k : k+4 : k+4]
		a[0], a[1], a[2], a[3] = s0, s1, s2, s3
	}
	for ; k < m; k++ {
		row := kernels[k*stride : (k+1)*stride : (k+1)*stride]
		s := logW[k]
		for i, vi := range v {
			t := row[3*i : 3*i+3 : 3*i+3]
			z := (vi - t[0]) * t[1]
			s += t[2] - 0.5*z*z
		}
		acc[k] = s
	}
	// Plain comparisons, not max: the builtin's NaN and signed-zero
	// handling cost as much as the sums. A NaN makes the result NaN, as
	// with max; a -0 kept for +0 changes no result.
	maxv := math.Inf(-1)
	for _, s := range acc {
		if s > maxv {
			maxv = s
		} else if s != s {
			return math.NaN()
		}
	}
	return logSumExp(acc, maxv)
}

// logSumExp is log(sum(exp(acc))) given maxv, the largest of acc.
func logSumExp(acc []float64, maxv float64) float64 {
	if math.IsInf(maxv, -1) {
		return maxv
	}
	// Kernels more than 40 nats below the largest add less than 4e-18 each
	// to a sum of at least 1: skipping their exp changes nothing a double
	// can hold, and most kernels of a long study are that far from a point.
	sum, cut := 0.0, maxv-40
	for _, s := range acc {
		if s > cut {
			sum += math.Exp(s - maxv)
		}
	}
	return maxv + math.Log(sum)
}
