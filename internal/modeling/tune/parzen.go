package tune

import (
	"math"
	"math/rand/v2"
	"sort"
)

// parzen is a mixture of product kernels: kernel k has weight w[k] and, per
// dimension, a truncated normal (numerical) or a categorical distribution.
// The last kernel is the prior (centred, as wide as the range).
type parzen struct {
	logW []float64 // log of the normalized kernel weights
	cum  []float64 // cumulative weights, for drawing a kernel
	dims []parzenDim
}

type parzenDim struct {
	categorical bool
	// cat[k][c] is kernel k's probability of choice c.
	cat [][]float64

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
}

// fit builds the estimator of space from the trials holding every parameter of it.
func (s *TPESampler) fit(trials []*FrozenTrial, space Space) *parzen {
	obs := make([][]float64, len(space))
	for _, t := range trials {
		row := make([]float64, len(space))
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
		nc := len(c.Choices)
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
				row[j] = s.o.PriorWeight / float64(nk)
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
	for k := range dim.mu {
		dim.logNorm[k] = logGaussMass((lo-dim.mu[k])/dim.sigma[k], (hi-dim.mu[k])/dim.sigma[k])
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
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return mus[order[a]] < mus[order[b]] })
	ends := make([]float64, n+2)
	ends[0], ends[n+1] = lo, hi
	for i, j := range order {
		ends[i+1] = mus[j]
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
	for i, j := range order {
		out[j] = math.Min(math.Max(sorted[i], minSigma), maxSigma)
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
func (p *parzen) logPDF(x []float64) float64 {
	maxv := math.Inf(-1)
	acc := make([]float64, len(p.logW))
	for k := range p.logW {
		s := p.logW[k]
		for i := range p.dims {
			s += p.dims[i].logPDF(k, x[i])
		}
		acc[k] = s
		if s > maxv {
			maxv = s
		}
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

func (d *parzenDim) logPDF(k int, x float64) float64 {
	if d.categorical {
		return math.Log(d.cat[min(k, len(d.cat)-1)][int(x)])
	}
	mu, sg := d.mu[k], d.sigma[k]
	if d.step > 0 {
		l, r := x-d.step/2, x+d.step/2
		if d.logScale {
			l, r = math.Log(l), math.Log(r)
		}
		return logGaussMass((l-mu)/sg, (r-mu)/sg) - d.logNorm[k]
	}
	if d.logScale {
		x = math.Log(x)
	}
	return normLogPDF((x-mu)/sg) - d.logNorm[k] - math.Log(sg)
}
