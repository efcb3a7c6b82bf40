package gbdt

import (
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// binFeature is one usable feature of the binned training data.
type binFeature struct {
	col int // index of the column in the Dataset
	m   *binMapper
	// bins holds each row's bin when the feature has at most 256 bins,
	// bins16 otherwise.
	bins   []uint8
	bins16 []uint16
	// histLen is the length of the feature's histogram segment: 256 for
	// uint8 bins (so that indexing by a uint8 needs no bounds check), numBins
	// otherwise; offset is where the segment starts in a leaf's histogram.
	histLen, offset int
	// rowCol is the feature's column in binnedData.rowMat (uint8 features),
	// -1 otherwise. Its histogram segment starts at rowCol*256.
	rowCol int
}

// binnedData is the training data as bins, feature by feature.
type binnedData struct {
	n     int
	feats []binFeature
	// mappers has one entry per Dataset column (nil for columns that cannot
	// be split: a single bin).
	mappers   []*binMapper
	totalHist int
	// rowMat holds the bins of the uint8 features row by row (rowWidth
	// bytes a row), for building all their histograms in one pass over a
	// leaf's rows; their segments come first in a histogram.
	rowMat   []uint8
	rowWidth int
	// rowStride is rowWidth rounded up to whole 64-byte cache lines, so that
	// reading a row touches as few lines as possible.
	rowStride int
}

// binDataset finds the bins of every column (on a sample of rows) and bins all
// rows, in parallel over columns.
func binDataset(ds *ml.Dataset, p *Params, nt int) *binnedData {
	n := ds.NumRows()
	rows := sampleRows(n, p)
	mappers := make([]*binMapper, len(ds.Columns))
	parallelFor(nt, len(ds.Columns), func(c int) {
		mappers[c] = newBinMapper(&ds.Columns[c], rows, p)
	})
	bd := &binnedData{n: n, mappers: mappers}
	for c, m := range mappers {
		if m.numBins <= 1 || (m.categorical && m.numBins <= 2 && m.missingType == missingNone) {
			mappers[c] = nil
			continue
		}
		f := binFeature{col: c, m: m, rowCol: -1}
		if m.numBins <= 256 {
			f.histLen = 256
			f.rowCol = bd.rowWidth
			f.offset = bd.rowWidth * 256
			bd.rowWidth++
		} else {
			f.histLen = m.numBins
		}
		bd.feats = append(bd.feats, f)
	}
	bd.totalHist = bd.rowWidth * 256
	for i := range bd.feats {
		if f := &bd.feats[i]; f.rowCol < 0 {
			f.offset = bd.totalHist
			bd.totalHist += f.histLen
		}
	}
	parallelFor(nt, len(bd.feats), func(i int) {
		f := &bd.feats[i]
		vals := ds.Columns[f.col].Values
		if f.m.numBins <= 256 {
			f.bins = make([]uint8, n)
			if f.m.categorical {
				for r, v := range vals {
					f.bins[r] = uint8(f.m.catValueBin(v))
				}
			} else {
				binNumeric(f.m, vals, f.bins)
			}
			return
		}
		f.bins16 = make([]uint16, n)
		for r, v := range vals {
			if f.m.categorical {
				f.bins16[r] = uint16(f.m.catValueBin(v))
			} else {
				f.bins16[r] = uint16(f.m.valueBin(float64(v)))
			}
		}
	})
	if bd.rowWidth > 0 {
		w := (bd.rowWidth + 63) / 64 * 64
		bd.rowStride = w
		bd.rowMat = make([]uint8, n*w)
		adviseHugePages(bd.rowMat)
		// Transpose in blocks of rows small enough to stay in the L1 cache.
		parallelRange(nt, n, 1<<14, func(_, lo, hi int) {
			for b := lo; b < hi; b += 256 {
				e := min(hi, b+256)
				for i := range bd.feats {
					f := &bd.feats[i]
					if f.rowCol < 0 {
						continue
					}
					for r, v := range f.bins[b:e] {
						bd.rowMat[(b+r)*w+f.rowCol] = v
					}
				}
			}
		})
	}
	return bd
}

// binNumeric bins a numeric column, four values at a time.
func binNumeric(m *binMapper, vals []float32, out []uint8) {
	if m.missingType == missingNaN || m.search == nil {
		for r, v := range vals {
			out[r] = uint8(m.valueBin(float64(v)))
		}
		return
	}
	// No NaN in the column (else the missing type would be NaN).
	n := len(vals) &^ 3
	var v [4]float64
	for r := 0; r < n; r += 4 {
		v[0], v[1], v[2], v[3] = float64(vals[r]), float64(vals[r+1]), float64(vals[r+2]), float64(vals[r+3])
		b := m.search.find4(&v)
		out[r], out[r+1], out[r+2], out[r+3] = uint8(b[0]), uint8(b[1]), uint8(b[2]), uint8(b[3])
	}
	for r := n; r < len(vals); r++ {
		out[r] = uint8(m.valueBin(float64(vals[r])))
	}
}
