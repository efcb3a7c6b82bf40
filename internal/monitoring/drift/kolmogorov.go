package drift

import "math"

// mtwMaxK bounds the matrix size of kolmogorovCDF (2k-1 rows): above it the
// Stephens approximation is used, whose error shrinks as n grows, which is
// exactly when k = floor(n·d)+1 gets large.
const mtwMaxK = 100

// kolmogorovCDF is P(D_n < d), the exact distribution of the one-sample
// Kolmogorov-Smirnov statistic (scipy's kstwo.cdf), by the matrix method of
// Marsaglia, Tsang and Wang, "Evaluating Kolmogorov's distribution", Journal
// of Statistical Software 8(18), 2003. It needs k = floor(n·d)+1 <= mtwMaxK;
// ok is false otherwise. Matrix powers carry a separate decimal exponent so
// that they neither overflow nor underflow.
func kolmogorovCDF(n int, d float64) (p float64, ok bool) {
	if d <= 0 {
		return 0, true
	}
	if d >= 1 {
		return 1, true
	}
	k := int(float64(n)*d) + 1
	if k > mtwMaxK {
		return 0, false
	}
	m := 2*k - 1
	h := float64(k) - float64(n)*d
	H := make([]float64, m*m)
	for i := 0; i < m; i++ {
		for j := 0; j < m; j++ {
			if i-j+1 >= 0 {
				H[i*m+j] = 1
			}
		}
	}
	for i := 0; i < m; i++ {
		H[i*m] -= math.Pow(h, float64(i+1))
		H[(m-1)*m+i] -= math.Pow(h, float64(m-i))
	}
	if 2*h-1 > 0 {
		H[(m-1)*m] += math.Pow(2*h-1, float64(m))
	}
	for i := 0; i < m; i++ {
		for j := 0; j < m; j++ {
			if i-j+1 > 0 {
				for g := 1; g <= i-j+1; g++ {
					H[i*m+j] /= float64(g)
				}
			}
		}
	}
	Q, eQ := matPow(H, m, n)
	s := Q[(k-1)*m+k-1]
	for i := 1; i <= n; i++ {
		s = s * float64(i) / float64(n)
		if s < 1e-140 {
			s *= 1e140
			eQ -= 140
		}
	}
	return clamp01(s * math.Pow(10, float64(eQ))), true
}

// matPow returns A^n as a matrix and a power of ten: A^n = M·10^e.
func matPow(A []float64, m, n int) ([]float64, int) {
	if n == 1 {
		return append([]float64(nil), A...), 0
	}
	V, eV := matPow(A, m, n/2)
	B := matMul(V, V, m)
	eB := 2 * eV
	if n%2 == 1 {
		B = matMul(A, B, m)
	}
	if B[(m/2)*m+m/2] > 1e140 {
		for i := range B {
			B[i] *= 1e-140
		}
		eB += 140
	}
	return B, eB
}

func matMul(x, y []float64, m int) []float64 {
	out := make([]float64, m*m)
	for i := 0; i < m; i++ {
		for l := 0; l < m; l++ {
			a := x[i*m+l]
			if a == 0 {
				continue
			}
			row := y[l*m : l*m+m]
			o := out[i*m : i*m+m]
			for j := range row {
				o[j] += a * row[j]
			}
		}
	}
	return out
}
