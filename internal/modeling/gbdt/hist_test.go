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
		{300, []int32{0, 255, 256, 299}},
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

// TestPartition: a leaf's rows split into those whose bin goes left, then
// those that go right, each side in its original order, whatever the
// block split (one thread and several, uint8 and uint16 bins).
func TestPartition(t *testing.T) {
	for _, c := range []struct {
		n, nt, bins int
	}{{1, 1, 4}, {100, 1, 4}, {50_000, 2, 256}, {70_000, 3, 300}} {
		t.Run(fmt.Sprint(c.n, "/", c.nt, "/", c.bins), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(c.n), 5))
			f := &binFeature{}
			if c.bins <= 256 {
				f.bins = make([]uint8, 2*c.n)
				for i := range f.bins {
					f.bins[i] = uint8(r.IntN(c.bins))
				}
			} else {
				f.bins16 = make([]uint16, 2*c.n)
				for i := range f.bins16 {
					f.bins16[i] = uint16(r.IntN(c.bins))
				}
			}
			bin := func(row int32) int {
				if f.bins != nil {
					return int(f.bins[row])
				}
				return int(f.bins16[row])
			}
			goLeft := make([]bool, c.bins)
			for b := range goLeft {
				goLeft[b] = r.IntN(2) == 0
			}
			l := &learner{nt: c.nt, indices: make([]int32, c.n+10), scratch: make([]int32, c.n+10)}
			var rows []int32
			for i := range 2 * c.n {
				if len(rows) < c.n && r.IntN(2) == 0 {
					rows = append(rows, int32(i))
				}
			}
			begin := 3 // a leaf not at the start of the indices
			copy(l.indices[begin:], rows)
			var wantL, wantR []int32
			for _, row := range rows {
				if goLeft[bin(row)] {
					wantL = append(wantL, row)
				} else {
					wantR = append(wantR, row)
				}
			}
			nl := l.partition(f, goLeft, begin, len(rows))
			got := l.indices[begin : begin+len(rows)]
			if nl != len(wantL) || !slices.Equal(got[:nl], wantL) || !slices.Equal(got[nl:], wantR) {
				t.Errorf("partition: %d left, want %d; rows %v..., want %v then %v", nl, len(wantL), got[:min(8, len(got))], wantL[:min(4, len(wantL))], wantR[:min(4, len(wantR))])
			}
		})
	}
}
