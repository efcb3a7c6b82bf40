package main

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// comparison says whether two samples of best values (one per seed, lower
// is better) differ by more than seed noise. Best values of a fixed budget
// are heavy-tailed (Rosenbrock's spread over a decade), so the median of 20
// seeds moves a lot from one seed set to the next; the medians alone cannot
// tell a real difference from luck.
type comparison struct {
	// pBetter is the probability that a study of ours ends below one of
	// Optuna's: Mann-Whitney's U over n*m, ties counting half (0.5: the
	// same distribution).
	pBetter float64
	// pValue is U's two-sided p-value (normal approximation, no tie
	// correction: the values are continuous).
	pValue float64
	// diffLo and diffHi bound the difference of medians, ours minus
	// Optuna's: a 95% percentile bootstrap interval.
	diffLo, diffHi float64
}

// compare compares our values a with Optuna's b; bootstrap resamples come
// from a fixed stream, so a run's figures are reproducible.
func compare(a, b []float64) comparison {
	n, m := float64(len(a)), float64(len(b))
	type obs struct {
		v    float64
		ours bool
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, v := range a {
		all = append(all, obs{v, true})
	}
	for _, v := range b {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(x, y obs) int { return cmp.Compare(x.v, y.v) })
	// Rank sum of ours, tied values sharing their mean rank.
	rankSum := 0.0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		mid := float64(i+j+1) / 2 // mean of ranks i+1..j
		for k := i; k < j; k++ {
			if all[k].ours {
				rankSum += mid
			}
		}
		i = j
	}
	// U counts the pairs where ours is larger (worse): P(ours < theirs) is its complement.
	u := rankSum - n*(n+1)/2
	z := (u - n*m/2) / math.Sqrt(n*m*(n+m+1)/12)
	c := comparison{pBetter: 1 - u/(n*m), pValue: math.Erfc(math.Abs(z) / math.Sqrt2)}

	const resamples = 2000
	rng := rand.New(rand.NewPCG(1, 2))
	diffs := make([]float64, resamples)
	ra, rb := make([]float64, len(a)), make([]float64, len(b))
	for i := range diffs {
		for j := range ra {
			ra[j] = a[rng.IntN(len(a))]
		}
		for j := range rb {
			rb[j] = b[rng.IntN(len(b))]
		}
		diffs[i] = median(ra) - median(rb)
	}
	slices.Sort(diffs)
	c.diffLo, c.diffHi = diffs[resamples*25/1000], diffs[resamples*975/1000-1]
	return c
}
