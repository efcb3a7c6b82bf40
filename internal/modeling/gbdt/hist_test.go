package gbdt

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestHistCols: the histograms of the selected columns (feature_fraction
// below 1) are bit for bit those of the full pass, and the other columns'
// stay untouched, for leaf rows and for the direct pass.
func TestHistCols(t *testing.T) {
	const n = 3000
	for _, c := range []struct {
		width int
		cols  []int32
	}{
		{20, []int32{0, 3, 4, 9, 19}},
		{20, []int32{7}},
		{5, []int32{0, 1, 2, 4}},
		{70, []int32{0, 33, 64, 69}},
	} {
		t.Run(fmt.Sprint(c.width, c.cols), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(c.width), 3))
			stride := (c.width + 63) / 64 * 64
			mat := make([]uint8, n*stride)
			for i := range mat {
				mat[i] = uint8(r.IntN(256))
			}
			gh := make([]gradPair, n)
			for i := range gh {
				gh[i] = gradPair{float32(r.NormFloat64()), float32(r.Float64())}
			}
			var rows []int32
			for i := range n {
				if r.IntN(3) == 0 {
					rows = append(rows, int32(i))
				}
			}
			lo, hi := 100, 2500
			for _, direct := range []bool{false, true} {
				all := make([]histBin, c.width*256)
				sel := make([]histBin, c.width*256)
				if direct {
					histRowsDirect(all, mat, c.width, stride, gh, lo, hi)
					histColsDirect(sel, mat, c.width, stride, c.cols, gh, lo, hi)
				} else {
					histRows(all, mat, c.width, stride, gh, rows)
					histCols(sel, mat, c.width, stride, c.cols, gh, rows)
				}
				for f := range c.width {
					want := all[f*256 : (f+1)*256]
					if !slices.Contains(c.cols, int32(f)) {
						want = make([]histBin, 256)
					}
					if got := sel[f*256 : (f+1)*256]; !slices.Equal(got, want) {
						t.Errorf("direct %v: column %d's histogram differs from the full pass's", direct, f)
					}
				}
			}
		})
	}
}
