package gbdt

import "math/rand/v2"

// newRand returns the deterministic generator every random choice of training
// (bin sampling, bagging, feature fraction) draws from, so that a seed fixes
// the trained model.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}
