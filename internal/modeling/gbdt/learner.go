package gbdt

import (
	"math"
	"math/rand/v2"
	"sort"
	"unsafe"
)

// histBin accumulates the gradients and hessians of one bin. Row counts are
// not accumulated: as in LightGBM, a bin's count is estimated from its
// hessian sum (exact when hessians are constant), which saves a third of the
// histogram work; leaf counts themselves come exact from the partition.
type histBin struct {
	g, h float64
}

// gradPair is one row's gradient and hessian, stored together so the
// histogram loop loads both at once.
type gradPair struct{ g, h float32 }

// splitInfo is the best split found for a leaf.
type splitInfo struct {
	// gain is the split's gain over not splitting (LightGBM's split_gain);
	// the split is valid when feat >= 0 and gain > 0.
	gain float64
	feat int // index into binnedData.feats, -1 for none
	// Numeric splits: bins <= threshold go left; the NaN bin goes left when
	// defaultLeft.
	threshold   int
	defaultLeft bool
	// Categorical splits: the bins going left.
	catBins []int
	// catL2 is set when the split was scored with lambda_l2 + cat_l2.
	leftG, leftH, rightG, rightH float64
	leftN, rightN                int
	leftOut, rightOut            float64
}

func (s *splitInfo) reset() { *s = splitInfo{feat: -1, gain: math.Inf(-1)} }

// better reports whether s beats o: higher gain, ties to the lower feature
// index (LightGBM's SplitInfo ordering).
func (s *splitInfo) better(o *splitInfo) bool {
	if o.feat < 0 {
		return s.feat >= 0
	}
	if s.feat < 0 {
		return false
	}
	if s.gain != o.gain {
		return s.gain > o.gain
	}
	return s.feat < o.feat
}

// leafState is a leaf of the tree being grown.
type leafState struct {
	begin, count int // rows: learner.indices[begin : begin+count]
	sumG, sumH   float64
	output       float64
	depth        int
	parent       int // parent node in the tree, -1 for the root
	hist         []histBin
	best         splitInfo
}

// learner grows one tree at a time, leaf-wise (best-first), on binned data.
type learner struct {
	p  *Params
	d  *binnedData
	nt int

	indices []int32 // rows of the current bag, grouped by leaf
	scratch []int32
	gh      []gradPair // the current tree's gradients by row
	og, oh  []float32  // gradients and hessians in leaf row order (uint16 features)
	chunks  [][]histBin

	leaves   []leafState
	freeHist [][]histBin

	featUsed   []bool // features sampled for the current tree
	nodeRand   *rand.Rand
	treeRand   *rand.Rand
	usedList   []int
	splitFeats []int // scratch for per-node sampling
}

func newLearner(p *Params, d *binnedData, nt int) *learner {
	l := &learner{
		p:        p,
		d:        d,
		nt:       nt,
		indices:  make([]int32, d.n),
		scratch:  make([]int32, d.n),
		gh:       make([]gradPair, d.n),
		og:       make([]float32, d.n),
		oh:       make([]float32, d.n),
		featUsed: make([]bool, len(d.feats)),
		treeRand: newRand(uint64(p.FeatureFractionSeed)),
		nodeRand: newRand(uint64(p.FeatureFractionSeed) + 1),
	}
	adviseHugePages(l.gh)
	return l
}

func (l *learner) getHist() []histBin {
	if k := len(l.freeHist); k > 0 {
		h := l.freeHist[k-1]
		l.freeHist = l.freeHist[:k-1]
		return h
	}
	return make([]histBin, l.d.totalHist)
}

func (l *learner) putHist(h []histBin) {
	if h != nil {
		l.freeHist = append(l.freeHist, h)
	}
}

// sampleFeatures picks the features of the next tree (feature_fraction).
func (l *learner) sampleFeatures() {
	nf := len(l.d.feats)
	if l.p.FeatureFraction >= 1 {
		for i := range l.featUsed {
			l.featUsed[i] = true
		}
	} else {
		k := max(1, int(math.Round(float64(nf)*l.p.FeatureFraction)))
		for i := range l.featUsed {
			l.featUsed[i] = false
		}
		for _, i := range l.treeRand.Perm(nf)[:min(k, nf)] {
			l.featUsed[i] = true
		}
	}
	l.usedList = l.usedList[:0]
	for i, u := range l.featUsed {
		if u {
			l.usedList = append(l.usedList, i)
		}
	}
}

// grow grows a tree on the rows in bag (nil: all rows) with gradients g and
// hessians h (indexed by row). It returns the tree with unshrunk outputs; the
// rows of leaf i are then l.leafRows(i).
func (l *learner) grow(g, h []float32, bag []int32) *Tree {
	p := l.p
	l.sampleFeatures()
	for i := range l.leaves {
		l.putHist(l.leaves[i].hist)
	}
	l.leaves = l.leaves[:0]
	tree := newTree(p.NumLeaves)

	var n int
	if bag == nil {
		n = l.d.n
		for i := range n {
			l.indices[i] = int32(i)
		}
	} else {
		n = copy(l.indices, bag)
	}
	parallelRange(l.nt, l.d.n, 1<<15, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			l.gh[i] = gradPair{g[i], h[i]}
		}
	})
	root := leafState{begin: 0, count: n, parent: -1}
	root.sumG, root.sumH = l.sums(g, h, l.indices[:n], bag == nil)
	root.output = leafOutput(root.sumG, root.sumH, p.LambdaL1, p.LambdaL2)
	tree.LeafValue[0] = root.output
	tree.LeafWeight[0] = root.sumH
	tree.LeafCount[0] = n
	root.hist = l.getHist()
	l.buildHist(root.hist, g, h, 0, n, bag == nil)
	l.leaves = append(l.leaves, root)
	l.findBest(0)

	for tree.NumLeaves < p.NumLeaves {
		bestLeaf := -1
		for i := range l.leaves {
			s := &l.leaves[i].best
			if s.feat >= 0 && s.gain > 0 && (bestLeaf < 0 || s.gain > l.leaves[bestLeaf].best.gain) {
				bestLeaf = i
			}
		}
		if bestLeaf < 0 {
			break
		}
		l.split(tree, bestLeaf, g, h)
	}
	return tree
}

// leafRows returns the rows of leaf i of the last grown tree.
func (l *learner) leafRows(i int) []int32 {
	lf := &l.leaves[i]
	return l.indices[lf.begin : lf.begin+lf.count]
}

// sums adds up the gradients and hessians of rows, in fixed blocks so the
// result does not depend on the thread count.
func (l *learner) sums(g, h []float32, rows []int32, all bool) (float64, float64) {
	const block = 1 << 14
	nb := (len(rows) + block - 1) / block
	sg := make([]float64, nb)
	sh := make([]float64, nb)
	parallelFor(l.nt, nb, func(b int) {
		lo, hi := b*block, min(len(rows), (b+1)*block)
		var a, c float64
		if all {
			for i := lo; i < hi; i++ {
				a += float64(g[i])
				c += float64(h[i])
			}
		} else {
			for _, r := range rows[lo:hi] {
				a += float64(g[r])
				c += float64(h[r])
			}
		}
		sg[b], sh[b] = a, c
	})
	var tg, th float64
	for b := range sg {
		tg += sg[b]
		th += sh[b]
	}
	return tg, th
}

// buildHist fills hist for rows indices[begin:begin+count] over the features
// of the current tree. When direct, the rows are 0..count-1 in order (the
// root without bagging).
func (l *learner) buildHist(hist []histBin, g, h []float32, begin, count int, direct bool) {
	rows := l.indices[begin : begin+count]
	if l.d.rowWidth > 0 {
		l.buildRowWise(hist[:l.d.rowWidth*256], rows, direct)
	}
	if len(l.d.feats) == l.d.rowWidth {
		return
	}
	// Features with more than 256 bins, one at a time.
	og, oh := g, h
	if !direct {
		og, oh = l.og[begin:begin+count], l.oh[begin:begin+count]
		for i, r := range rows {
			og[i], oh[i] = g[r], h[r]
		}
	}
	parallelFor(l.nt, len(l.usedList), func(k int) {
		f := &l.d.feats[l.usedList[k]]
		if f.rowCol >= 0 {
			return
		}
		seg := hist[f.offset : f.offset+f.histLen]
		clear(seg)
		if direct {
			for i, b := range f.bins16[:count] {
				seg[b].g += float64(og[i])
				seg[b].h += float64(oh[i])
			}
			return
		}
		for i, r := range rows {
			e := &seg[f.bins16[r]]
			e.g += float64(og[i])
			e.h += float64(oh[i])
		}
	})
}

// rowChunks is how many chunks the rows of a histogram are split into: a
// function of the row count only, so that the chunk sums, added in chunk
// order, do not depend on the number of threads.
func rowChunks(count int) int { return min(16, max(1, count/4096)) }

// buildRowWise builds the histograms of all uint8 features in one pass over
// the rows, reading each row's bins from the row-major matrix: every chunk
// of rows into its own buffer, then the buffers added up bin by bin.
func (l *learner) buildRowWise(hist []histBin, rows []int32, direct bool) {
	count := len(rows)
	nch := rowChunks(count)
	size := (count + nch - 1) / nch
	if nch == 1 {
		clear(hist)
		l.histChunk(hist, rows, 0, count, direct)
		return
	}
	for len(l.chunks) < nch {
		l.chunks = append(l.chunks, make([]histBin, len(hist)))
	}
	parallelFor(l.nt, nch, func(c int) {
		buf := l.chunks[c]
		clear(buf)
		l.histChunk(buf, rows, c*size, min(count, (c+1)*size), direct)
	})
	parallelRange(l.nt, len(hist), 4096, func(_, lo, hi int) {
		copy(hist[lo:hi], l.chunks[0][lo:hi])
		for c := 1; c < nch; c++ {
			src := l.chunks[c][lo:hi]
			dst := hist[lo:hi]
			for i := range dst {
				dst[i].g += src[i].g
				dst[i].h += src[i].h
			}
		}
	})
}

func (l *learner) histChunk(hist []histBin, rows []int32, lo, hi int, direct bool) {
	w, s := l.d.rowWidth, l.d.rowStride
	if direct {
		histRowsDirect(hist, l.d.rowMat, w, s, l.gh, lo, hi)
	} else {
		histRows(hist, l.d.rowMat, w, s, l.gh, rows[lo:hi])
	}
}

// prefetchDistance is how many rows ahead histRows prefetches.
const prefetchDistance = 12

// histRows adds rows to the histograms (width uint8 features, 256 bins each)
// from the row-major bin matrix (stride bytes a row).
func histRows(hist []histBin, mat []uint8, width, stride int, gh []gradPair, rows []int32) {
	hs := unsafe.Slice((*[256]histBin)(unsafe.Pointer(&hist[0])), width)
	for i, r := range rows {
		if j := i + prefetchDistance; j < len(rows) {
			next := int(rows[j])
			prefetch(unsafe.Pointer(&mat[next*stride]))
			prefetch(unsafe.Pointer(&gh[next]))
		}
		off := int(r) * stride
		row := mat[off : off+width : off+width]
		p := gh[r]
		g, h := float64(p.g), float64(p.h)
		hs := hs[:len(row)]
		for f, b := range row {
			e := &hs[f][b]
			e.g += g
			e.h += h
		}
	}
}

// histRowsDirect is histRows for the rows lo..hi-1 in order.
func histRowsDirect(hist []histBin, mat []uint8, width, stride int, gh []gradPair, lo, hi int) {
	hs := unsafe.Slice((*[256]histBin)(unsafe.Pointer(&hist[0])), width)
	gh = gh[lo:hi]
	for i := range gh {
		off := (lo + i) * stride
		row := mat[off : off+width : off+width]
		g, h := float64(gh[i].g), float64(gh[i].h)
		hs := hs[:len(row)]
		for f, b := range row {
			e := &hs[f][b]
			e.g += g
			e.h += h
		}
	}
}

// subtractHist sets small to parent - small (histogram subtraction: the
// larger child's histogram without a pass over its rows), for the features of
// the current tree.
func (l *learner) subtractHist(parent, small []histBin) {
	if w := l.d.rowWidth * 256; w > 0 {
		parallelRange(l.nt, w, 4096, func(_, lo, hi int) {
			ps, ss := parent[lo:hi], small[lo:hi]
			for i := range ps {
				ps[i].g -= ss[i].g
				ps[i].h -= ss[i].h
			}
		})
	}
	parallelFor(l.nt, len(l.usedList), func(k int) {
		f := &l.d.feats[l.usedList[k]]
		if f.rowCol >= 0 {
			return
		}
		ps := parent[f.offset : f.offset+f.histLen]
		ss := small[f.offset : f.offset+f.histLen]
		for i := range ps {
			ps[i].g -= ss[i].g
			ps[i].h -= ss[i].h
		}
	})
}

// canSplit reports whether a leaf may be split further at all.
func (l *learner) canSplit(lf *leafState) bool {
	p := l.p
	if p.MaxDepth > 0 && lf.depth >= p.MaxDepth {
		return false
	}
	if lf.count < 2*max(p.MinDataInLeaf, 1) || lf.sumH < 2*p.MinSumHessianInLeaf {
		return false
	}
	return true
}

// findBest finds the best split of leaf i over the tree's features (or a
// per-node sample of them, feature_fraction_bynode).
func (l *learner) findBest(i int) {
	lf := &l.leaves[i]
	lf.best.reset()
	if !l.canSplit(lf) {
		return
	}
	feats := l.usedList
	if l.p.FeatureFractionByNode < 1 {
		k := max(1, int(math.Round(float64(len(feats))*l.p.FeatureFractionByNode)))
		l.splitFeats = l.splitFeats[:0]
		for _, j := range l.nodeRand.Perm(len(feats))[:min(k, len(feats))] {
			l.splitFeats = append(l.splitFeats, feats[j])
		}
		sort.Ints(l.splitFeats)
		feats = l.splitFeats
	}
	results := make([]splitInfo, len(feats))
	parallelFor(l.nt, len(feats), func(k int) {
		fi := feats[k]
		f := &l.d.feats[fi]
		seg := lf.hist[f.offset : f.offset+f.m.numBins]
		s := &results[k]
		s.reset()
		if f.m.categorical {
			l.bestCategorical(fi, seg, lf, s)
		} else {
			l.bestNumeric(fi, seg, lf, s)
		}
	})
	for k := range results {
		if results[k].better(&lf.best) {
			lf.best = results[k]
		}
	}
}

// thresholdL1 is LightGBM's ThresholdL1: soft-thresholding of a gradient sum.
func thresholdL1(s, l1 float64) float64 {
	r := math.Abs(s) - l1
	if r <= 0 {
		return 0
	}
	if s < 0 {
		return -r
	}
	return r
}

// leafOutput is the Newton step of a leaf with L1/L2 regularisation.
func leafOutput(g, h, l1, l2 float64) float64 {
	return -thresholdL1(g, l1) / (h + l2)
}

// leafGain is the loss reduction of a leaf at its optimal output.
func leafGain(g, h, l1, l2 float64) float64 {
	t := thresholdL1(g, l1)
	return t * t / (h + l2)
}

// leafGainGivenOutput is the loss reduction of a leaf at output out.
func leafGainGivenOutput(g, h, l1, l2, out float64) float64 {
	t := thresholdL1(g, l1)
	return -(2*t*out + (h+l2)*out*out)
}

func (l *learner) bestNumeric(fi int, hs []histBin, lf *leafState, out *splitInfo) {
	p := l.p
	f := &l.d.feats[fi]
	l1, l2 := p.LambdaL1, p.LambdaL2
	minData, minHess := p.MinDataInLeaf, p.MinSumHessianInLeaf
	G, H, N := lf.sumG, lf.sumH, lf.count
	cnt := countEstimator(N, H)
	minGainShift := leafGainGivenOutput(G, H, l1, l2, lf.output) + p.MinGainToSplit
	nanBin := f.m.nanBin()
	last := len(hs) - 1 // last bin holding numbers
	if nanBin >= 0 {
		last--
	}
	bestGain := math.Inf(-1)
	bestT, bestLeft := -1, false
	var bLG, bLH float64
	var bLN int
	// Right to left: the right side gathers bins t+1..last; missing values
	// (the NaN bin) stay on the left.
	var rg, rh float64
	var rn int
	for t := last - 1; t >= 0; t-- {
		b := &hs[t+1]
		rg += b.g
		rh += b.h
		rn += cnt(b.h)
		if rn < minData || rh < minHess {
			continue
		}
		ln := N - rn
		lh := H - rh
		if ln < minData || lh < minHess {
			break
		}
		lg := G - rg
		gain := leafGain(lg, lh, l1, l2) + leafGain(rg, rh, l1, l2)
		if gain <= minGainShift {
			continue
		}
		if gain > bestGain {
			bestGain, bestT, bestLeft = gain, t, true
			bLG, bLH, bLN = lg, lh, ln
		}
	}
	if nanBin >= 0 {
		// Left to right: the left side gathers bins 0..t; missing values go right.
		var lg, lh float64
		var ln int
		for t := 0; t < last; t++ {
			b := &hs[t]
			lg += b.g
			lh += b.h
			ln += cnt(b.h)
			if ln < minData || lh < minHess {
				continue
			}
			rn := N - ln
			rh := H - lh
			if rn < minData || rh < minHess {
				break
			}
			rg := G - lg
			gain := leafGain(lg, lh, l1, l2) + leafGain(rg, rh, l1, l2)
			if gain <= minGainShift {
				continue
			}
			if gain > bestGain {
				bestGain, bestT, bestLeft = gain, t, false
				bLG, bLH, bLN = lg, lh, ln
			}
		}
	}
	if bestT < 0 {
		return
	}
	out.feat = fi
	out.gain = bestGain - minGainShift
	out.threshold = bestT
	out.defaultLeft = bestLeft
	l.fillSides(out, bLG, bLH, bLN, lf, l2)
}

// countEstimator returns LightGBM's estimate of a bin's row count from its
// hessian sum: the leaf's rows per unit of hessian times the bin's hessian,
// rounded.
func countEstimator(n int, sumH float64) func(h float64) int {
	factor := 0.0
	if sumH > 0 {
		factor = float64(n) / sumH
	}
	return func(h float64) int { return int(h*factor + 0.5) }
}

// fillSides completes a split from its left side's sums.
func (l *learner) fillSides(out *splitInfo, lg, lh float64, ln int, lf *leafState, l2 float64) {
	out.leftG, out.leftH, out.leftN = lg, lh, ln
	out.rightG, out.rightH, out.rightN = lf.sumG-lg, lf.sumH-lh, lf.count-ln
	out.leftOut = leafOutput(out.leftG, out.leftH, l.p.LambdaL1, l2)
	out.rightOut = leafOutput(out.rightG, out.rightH, l.p.LambdaL1, l2)
}

// bestCategorical finds a categorical split the way LightGBM does: with few
// categories, one category against the rest; otherwise categories sorted by
// sum_gradient / (sum_hessian + cat_smooth) and the best prefix taken from
// either end, at most max_cat_threshold of them. Bin 0 (missing and rare
// categories) always goes right.
func (l *learner) bestCategorical(fi int, hs []histBin, lf *leafState, out *splitInfo) {
	p := l.p
	l1 := p.LambdaL1
	minData, minHess := p.MinDataInLeaf, p.MinSumHessianInLeaf
	G, H, N := lf.sumG, lf.sumH, lf.count
	cnt := countEstimator(N, H)
	minGainShift := leafGainGivenOutput(G, H, l1, p.LambdaL2, lf.output) + p.MinGainToSplit
	bestGain := math.Inf(-1)
	numBins := len(hs)
	if numBins <= p.MaxCatToOnehot {
		l2 := p.LambdaL2
		bestT := -1
		for t := 1; t < numBins; t++ {
			b := &hs[t]
			bn := cnt(b.h)
			if bn < minData || b.h < minHess {
				continue
			}
			on := N - bn
			oh := H - b.h
			if on < minData || oh < minHess {
				continue
			}
			gain := leafGain(b.g, b.h, l1, l2) + leafGain(G-b.g, oh, l1, l2)
			if gain <= minGainShift {
				continue
			}
			if gain > bestGain {
				bestGain, bestT = gain, t
			}
		}
		if bestT < 0 {
			return
		}
		out.feat = fi
		out.gain = bestGain - minGainShift
		out.catBins = []int{bestT}
		b := &hs[bestT]
		l.fillSides(out, b.g, b.h, cnt(b.h), lf, l2)
		return
	}
	l2 := p.LambdaL2 + p.CatL2
	sorted := make([]int, 0, numBins)
	for t := 1; t < numBins; t++ {
		if c := cnt(hs[t].h); float64(c) >= p.CatSmooth && c > 0 {
			sorted = append(sorted, t)
		}
	}
	used := len(sorted)
	ctr := func(t int) float64 { return hs[t].g / (hs[t].h + p.CatSmooth) }
	sort.SliceStable(sorted, func(i, j int) bool { return ctr(sorted[i]) < ctr(sorted[j]) })
	maxNumCat := min(p.MaxCatThreshold, (used+1)/2)
	bestT, bestDir := -1, 1
	var bLG, bLH float64
	var bLN int
	for _, dir := range [2]int{1, -1} {
		pos := 0
		if dir < 0 {
			pos = used - 1
		}
		var lg, lh float64
		ln, group := 0, 0
		for i := 0; i < used && i < maxNumCat; i++ {
			t := sorted[pos]
			pos += dir
			lg += hs[t].g
			lh += hs[t].h
			c := cnt(hs[t].h)
			ln += c
			group += c
			if ln < minData || lh < minHess {
				continue
			}
			rn := N - ln
			if rn < minData || rn < p.MinDataPerGroup {
				break
			}
			rh := H - lh
			if rh < minHess {
				break
			}
			if group < p.MinDataPerGroup {
				continue
			}
			group = 0
			gain := leafGain(lg, lh, l1, l2) + leafGain(G-lg, rh, l1, l2)
			if gain <= minGainShift {
				continue
			}
			if gain > bestGain {
				bestGain, bestT, bestDir = gain, i, dir
				bLG, bLH, bLN = lg, lh, ln
			}
		}
	}
	if bestT < 0 {
		return
	}
	out.feat = fi
	out.gain = bestGain - minGainShift
	out.catBins = make([]int, 0, bestT+1)
	for i := 0; i <= bestT; i++ {
		if bestDir > 0 {
			out.catBins = append(out.catBins, sorted[i])
		} else {
			out.catBins = append(out.catBins, sorted[used-1-i])
		}
	}
	sort.Ints(out.catBins)
	l.fillSides(out, bLG, bLH, bLN, lf, l2)
}

// split applies leaf i's best split: records it in the tree, partitions the
// leaf's rows, builds the smaller child's histogram, derives the larger one's
// by subtraction and finds both children's best splits.
func (l *learner) split(tree *Tree, i int, g, h []float32) {
	lf := &l.leaves[i]
	s := lf.best
	f := &l.d.feats[s.feat]

	// goLeft[bin] says where each bin goes.
	goLeft := make([]bool, f.m.numBins)
	var threshold float64
	var dtype uint8
	if f.m.categorical {
		cats := make([]int, len(s.catBins))
		for k, b := range s.catBins {
			goLeft[b] = true
			cats[k] = f.m.binCat[b]
		}
		sort.Ints(cats)
		threshold = float64(tree.addCatBitset(cats))
		dtype = dtCategorical | uint8(f.m.missingType)<<2
	} else {
		for b := 0; b <= s.threshold; b++ {
			goLeft[b] = true
		}
		if nb := f.m.nanBin(); nb >= 0 {
			goLeft[nb] = s.defaultLeft
		}
		threshold = f.m.upper[s.threshold]
		dtype = uint8(f.m.missingType) << 2
		if s.defaultLeft {
			dtype |= dtDefaultLeft
		}
	}
	leftCount := l.partition(f, goLeft, lf.begin, lf.count)
	rightLeaf := tree.split(i, lf.parent, f.col, threshold, dtype, s.gain,
		s.leftOut, s.rightOut, leftCount, lf.count-leftCount, s.leftH, s.rightH)
	node := tree.NumLeaves - 2

	left := leafState{begin: lf.begin, count: leftCount, sumG: s.leftG, sumH: s.leftH,
		output: s.leftOut, depth: lf.depth + 1, parent: node}
	right := leafState{begin: lf.begin + leftCount, count: lf.count - leftCount, sumG: s.rightG, sumH: s.rightH,
		output: s.rightOut, depth: lf.depth + 1, parent: node}
	parentHist := lf.hist

	if l.canSplit(&left) || l.canSplit(&right) {
		small, large := &left, &right
		if right.count < left.count {
			small, large = &right, &left
		}
		small.hist = l.getHist()
		l.buildHist(small.hist, g, h, small.begin, small.count, false)
		l.subtractHist(parentHist, small.hist)
		large.hist = parentHist
	} else {
		l.putHist(parentHist)
	}
	l.leaves[i] = left
	if rightLeaf != len(l.leaves) {
		panic("gbdt: leaf numbering out of step with the tree")
	}
	l.leaves = append(l.leaves, right)
	l.findBest(i)
	l.findBest(rightLeaf)
}

// partition reorders indices[begin:begin+count] so that the rows going left
// come first, keeping row order on each side, and returns how many go left.
func (l *learner) partition(f *binFeature, goLeft []bool, begin, count int) int {
	rows := l.indices[begin : begin+count]
	tmp := l.scratch[begin : begin+count]
	const minBlock = 1 << 13
	blocks := numBlocks(l.nt, count, minBlock)
	nLeft := make([]int, blocks)
	// Each block writes its left rows to the front of its own stretch of
	// scratch and its right rows to the back, then the stretches are merged in
	// block order.
	parallelRange(l.nt, count, minBlock, func(b, lo, hi int) {
		nl, nr := 0, 0
		out := tmp[lo:hi]
		if f.bins != nil {
			bins := f.bins
			for _, r := range rows[lo:hi] {
				if goLeft[bins[r]] {
					out[nl] = r
					nl++
				} else {
					nr++
					out[len(out)-nr] = r
				}
			}
		} else {
			for _, r := range rows[lo:hi] {
				if goLeft[f.bins16[r]] {
					out[nl] = r
					nl++
				} else {
					nr++
					out[len(out)-nr] = r
				}
			}
		}
		nLeft[b] = nl
	})
	size := (count + blocks - 1) / blocks
	total := 0
	for _, n := range nLeft {
		total += n
	}
	lpos, rpos := 0, total
	for b := 0; b < blocks; b++ {
		lo := b * size
		hi := min(count, lo+size)
		nl := nLeft[b]
		copy(rows[lpos:], tmp[lo:lo+nl])
		lpos += nl
		// Right rows were written backwards.
		seg := tmp[lo+nl : hi]
		for k := len(seg) - 1; k >= 0; k-- {
			rows[rpos] = seg[k]
			rpos++
		}
	}
	return total
}
