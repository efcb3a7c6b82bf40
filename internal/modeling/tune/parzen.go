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
func (s *TPESampler) fit(trials []*FrozenTrial, space Space) *parzen {
	obs := make([][]float64, len(space))
	row := make([]float64, len(space))
	for _, t := range trials {
		ok := true
		for i, p := range space {
			v, has := t.Params[p.Name]
			if !has {
				ok = false
				break
			}
			x, err := p.Dist.ToInternal(v)
			if err != nil || !p.Dist.Contains(x) {
				ok = false
				break
			}
			row[i] = x
		}
		if ok {
			for i := range space {
				obs[i] = append(obs[i], row[i])
			}
		}
	}
	n := 0
	if len(space) > 0 {
		n = len(obs[0])
	}
	var w []float64
	if n == 0 {
		w = []float64{1}
	} else {
		w = append(s.o.Weights(n)[:n:n], s.o.PriorWeight)
	}
	total := 0.0
	for _, x := range w {
		total += x
	}
	p := &parzen{logW: make([]float64, len(w)), cum: make([]float64, len(w))}
	acc := 0.0
	for k, x := range w {
		p.logW[k] = math.Log(x / total)
		acc += x / total
		p.cum[k] = acc
	}
	for i, prm := range space {
		p.dims = append(p.dims, s.fitDim(obs[i], prm.Dist))
	}
	return p
}

func (s *TPESampler) fitDim(obs []float64, d Distribution) parzenDim {
	if c, ok := d.(CategoricalDist); ok {
		dim := categoricalDim(obs, len(c.Choices), s.o.PriorWeight)
		dim.logCat = make([][]float64, len(dim.cat))
		for k, row := range dim.cat {
			dim.logCat[k] = make([]float64, len(row))
			for j, p := range row {
				dim.logCat[k][j] = math.Log(p)
			}
		}
		return dim
	}
	return s.numericalDim(obs, d)
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

func (s *TPESampler) numericalDim(obs []float64, d Distribution) parzenDim {
	var dim parzenDim
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
	mus := make([]float64, len(obs), len(obs)+1)
	copy(mus, obs)
	if dim.logScale {
		lo, hi = math.Log(lo), math.Log(hi)
		for i := range mus {
			mus[i] = math.Log(mus[i])
		}
	}
	dim.lo, dim.hi = lo, hi
	sigmas := s.sigmas(mus, lo, hi)
	dim.mu = append(mus, 0.5*(lo+hi))
	dim.sigma = append(sigmas, hi-lo)
	dim.logNorm = make([]float64, len(dim.mu))
	dim.invSigma = make([]float64, len(dim.mu))
	dim.logC = make([]float64, len(dim.mu))
	for k := range dim.mu {
		dim.logNorm[k] = logGaussMass((lo-dim.mu[k])/dim.sigma[k], (hi-dim.mu[k])/dim.sigma[k])
		dim.invSigma[k] = 1 / dim.sigma[k]
		dim.logC[k] = -logSqrt2Pi - math.Log(dim.sigma[k]) - dim.logNorm[k]
	}
	return dim
}

// sigmas gives each observation's kernel the width of the larger gap to its
// neighbours (the range's ends count as neighbours, except for the
// outermost kernels unless ConsiderEndpoints), clipped to
// [range/min(100, kernels+1), range].
func (s *TPESampler) sigmas(mus []float64, lo, hi float64) []float64 {
	n := len(mus)
	out := make([]float64, n)
	if n == 0 {
		return out
	}
	type obs struct {
		mu float64
		i  int
	}
	order := make([]obs, n)
	for i, m := range mus {
		order[i] = obs{m, i}
	}
	// Ties keep observation order (numpy's argsort is not stable: which tied
	// kernel gets which width is arbitrary in Optuna).
	slices.SortFunc(order, func(a, b obs) int {
		switch { // observations are never NaN: plain comparisons
		case a.mu < b.mu:
			return -1
		case a.mu > b.mu:
			return 1
		}
		return a.i - b.i
	})
	ends := make([]float64, n+2)
	ends[0], ends[n+1] = lo, hi
	for i, o := range order {
		ends[i+1] = o.mu
	}
	sorted := make([]float64, n)
	for i := range n {
		sorted[i] = math.Max(ends[i+1]-ends[i], ends[i+2]-ends[i+1])
	}
	if !s.o.ConsiderEndpoints && n+2 >= 4 {
		sorted[0] = ends[2] - ends[1]
		sorted[n-1] = ends[n] - ends[n-1]
	}
	maxSigma := hi - lo
	minSigma := 1e-12
	if !s.o.NoMagicClip {
		minSigma = (hi - lo) / math.Min(100, float64(n+2))
	}
	for i, o := range order {
		out[o.i] = math.Min(math.Max(sorted[i], minSigma), maxSigma)
	}
	return out
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
	if cap(p.acc) < len(p.logW) {
		p.acc = make([]float64, len(p.logW))
	}
	acc := p.acc[:len(p.logW)]
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
		maxv = math.Max(maxv, s)
	}
	if math.IsInf(maxv, -1) {
		return maxv
	}
	sum := 0.0
	for _, s := range acc {
		sum += math.Exp(s - maxv)
	}
	return maxv + math.Log(sum)
}
