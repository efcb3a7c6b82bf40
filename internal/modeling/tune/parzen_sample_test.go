package tune

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The candidates TPE draws follow the density it scores them with: the
// empirical CDF of 200,000 draws from a fitted estimator matches the
// integral of exp(logPDF) (whose values the differential test checks
// against Optuna's), for a plain and a log-scaled range.
func TestParzenSamplesFollowDensity(t *testing.T) {
	for _, d := range []FloatDist{{Low: -5, High: 10}, {Low: 1e-3, High: 10, Log: true}} {
		s := NewTPESampler(TPEOptions{})
		rng := rand.New(rand.NewPCG(1, 2))
		var trials []*FrozenTrial
		for i := range 12 {
			x := sampleUniform(d, rng)
			if i%3 == 0 {
				x = d.Low + (d.High-d.Low)*0.01 // a cluster near the low end
			}
			trials = append(trials, &FrozenTrial{Params: map[string]any{"x": x}})
		}
		space := Space{{Name: "x", Dist: d}}
		p := s.fit(trials, space, internalValues(&History{}, space))
		// Grid in the sampling space (log for a log range): integrate the
		// density there (logPDF omits the log-scale Jacobian, so in log
		// space it is the density of log x).
		const steps = 20000
		lo, hi := d.Low, d.High
		if d.Log {
			lo, hi = math.Log(lo), math.Log(hi)
		}
		cdf := make([]float64, steps+1)
		h := (hi - lo) / steps
		for i := 1; i <= steps; i++ {
			u := lo + (float64(i)-0.5)*h
			x := u
			if d.Log {
				x = math.Exp(u)
			}
			cdf[i] = cdf[i-1] + math.Exp(p.logPDF([]float64{x}))*h
		}
		if math.Abs(cdf[steps]-1) > 1e-3 {
			t.Fatalf("%+v: density integrates to %v", d, cdf[steps])
		}
		const n = 200000
		counts := make([]int, 11)
		x := make([]float64, 1)
		for range n {
			p.sample(rng, x)
			u := x[0]
			if d.Log {
				u = math.Log(u)
			}
			counts[min(10, int((u-lo)/(hi-lo)*10))]++
		}
		acc := 0
		for k := 1; k <= 10; k++ {
			acc += counts[k-1]
			want := cdf[k*steps/10]
			if got := float64(acc) / n; math.Abs(got-want) > 0.005 {
				t.Errorf("%+v: CDF at decile %d: sampled %.4f, density %.4f", d, k, got, want)
			}
		}
	}
}
