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
	// blocked marks the features on which no valid split of this leaf was
	// found (nil: none). As in LightGBM (a histogram's is_splittable flag),
	// the leaf's children do not look at them again.
	blocked []bool
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

	featUsed []bool // features sampled for the current tree
	// rowCols are the rowMat columns of the tree's uint8 features when
	// rowSel: with feature_fraction below 1 the histogram pass updates only
	// these (the other features' histograms are never read while the tree
	// grows). Without rowSel the pass updates every column.
	rowCols  []int32
	rowSel   bool
	nodeRand *rand.Rand
	treeRand *rand.Rand
	usedList []int
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
	l.rowCols = l.rowCols[:0]
	for i, u := range l.featUsed {
		if u {
			l.usedList = append(l.usedList, i)
			if c := l.d.feats[i].rowCol; c >= 0 {
				l.rowCols = append(l.rowCols, int32(c))
			}
		}
	}
	l.rowSel = len(l.rowCols) < l.d.rowWidth
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
	l.leaves = append(l.leaves, root)
	rp := &l.leaves[0]
	nch := l.buildSmall(rp, g, h, bag == nil)
	l.histsAndSplits(rp, nil, nch, g, h, bag == nil)

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

// rowChunks is how many chunks the rows of a histogram are split into: a
// function of the row count only, so that the chunk sums, added in chunk
// order, do not depend on the number of threads.
func rowChunks(count int) int { return min(16, max(1, count/2048)) }

// histChunk builds (clearing first when clearFirst) the row-wise histograms
// of rows[lo:hi] into hist.
func (l *learner) histChunk(hist []histBin, rows []int32, lo, hi int, direct, clearFirst bool) {
	if clearFirst {
		clear(hist)
	}
	w, s := l.d.rowWidth, l.d.rowStride
	switch {
	case l.rowSel && len(l.rowCols) == 0:
	case l.rowSel && direct:
		histColsDirect(hist, l.d.rowMat, w, s, l.rowCols, l.gh, lo, hi)
	case l.rowSel:
		histCols(hist, l.d.rowMat, w, s, l.rowCols, l.gh, rows[lo:hi])
	case direct:
		histRowsDirect(hist, l.d.rowMat, w, s, l.gh, lo, hi)
	default:
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
			prefetch2(unsafe.Pointer(&mat[next*stride]), unsafe.Pointer(&gh[next]))
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

// histCols is histRows for the row columns cols only (at least one,
// ascending, each below width).
func histCols(hist []histBin, mat []uint8, width, stride int, cols []int32, gh []gradPair, rows []int32) {
	hs := unsafe.Slice((*[256]histBin)(unsafe.Pointer(&hist[0])), width)
	_ = hs[cols[len(cols)-1]]
	for i, r := range rows {
		if j := i + prefetchDistance; j < len(rows) {
			next := int(rows[j])
			prefetch2(unsafe.Pointer(&mat[next*stride]), unsafe.Pointer(&gh[next]))
		}
		off := int(r) * stride
		// The row's bins: cols are below width, so base+c stays inside
		// the row.
		base := unsafe.Pointer(&mat[off : off+width][0])
		p := gh[r]
		g, h := float64(p.g), float64(p.h)
		for _, c := range cols {
			e := &hs[c][*(*uint8)(unsafe.Add(base, c))]
			e.g += g
			e.h += h
		}
	}
}

// histColsDirect is histCols for the rows lo..hi-1 in order.
func histColsDirect(hist []histBin, mat []uint8, width, stride int, cols []int32, gh []gradPair, lo, hi int) {
	hs := unsafe.Slice((*[256]histBin)(unsafe.Pointer(&hist[0])), width)
	_ = hs[cols[len(cols)-1]]
	gh = gh[lo:hi]
	for i := range gh {
		off := (lo + i) * stride
		// The row's bins: cols are below width, so base+c stays inside
		// the row.
		base := unsafe.Pointer(&mat[off : off+width][0])
		g, h := float64(gh[i].g), float64(gh[i].h)
		for _, c := range cols {
			e := &hs[c][*(*uint8)(unsafe.Add(base, c))]
			e.g += g
			e.h += h
		}
	}
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

// buildSmall builds the row-wise histograms of leaf lf's rows, into
// l.chunks[0:nch] when the rows are split into chunks (nch > 1) or straight
// into lf.hist, and gathers the leaf's gradients in row order for the
// features with more than 256 bins. It returns nch; histsAndSplits finishes
// the histograms.
func (l *learner) buildSmall(lf *leafState, g, h []float32, direct bool) int {
	rows := l.indices[lf.begin : lf.begin+lf.count]
	count := len(rows)
	nch := rowChunks(count)
	if l.d.rowWidth > 0 {
		size := (count + nch - 1) / nch
		if nch == 1 {
			l.histChunk(lf.hist[:l.d.rowWidth*256], rows, 0, count, direct, true)
		} else {
			for len(l.chunks) < nch {
				l.chunks = append(l.chunks, make([]histBin, l.d.rowWidth*256))
			}
			parallelFor(l.nt, nch, func(c int) {
				l.histChunk(l.chunks[c], rows, c*size, min(count, (c+1)*size), direct, true)
			})
		}
	}
	if len(l.d.feats) > l.d.rowWidth && !direct {
		og, oh := l.og[lf.begin:lf.begin+count], l.oh[lf.begin:lf.begin+count]
		for i, r := range rows {
			og[i], oh[i] = g[r], h[r]
		}
	}
	return nch
}

// histsAndSplits finishes the histograms of a new leaf (small, built by
// buildSmall) and of its sibling (large, whose hist holds the parent's
// histogram and becomes its own by subtraction: histogram subtraction), and
// finds both leaves' best splits, in one parallel pass over the features of
// the tree. large is nil at the root.
func (l *learner) histsAndSplits(small, large *leafState, nch int, g, h []float32, direct bool) {
	feats := l.usedList
	smallFeats := l.nodeSample(small)
	var largeFeats []bool
	if large != nil {
		largeFeats = l.nodeSample(large)
	}
	resSmall := make([]splitInfo, len(feats))
	resLarge := make([]splitInfo, len(feats))
	// The parent's blocked features (the large leaf still holds them) stay
	// blocked; a feature evaluated without a valid split becomes blocked.
	parentBlocked := small.blocked
	if large != nil {
		parentBlocked = large.blocked
	}
	smallBlocked := make([]bool, len(l.d.feats))
	var largeBlocked []bool
	if large != nil {
		largeBlocked = make([]bool, len(l.d.feats))
	}
	rows := l.indices[small.begin : small.begin+small.count]
	// Per feature: nch chunk segments to add, a subtraction and two scans
	// over the bins. Threads only pay off for enough of that work.
	nt := l.nt
	if len(feats)*(nch+6)*256 < 1<<17 && l.d.rowWidth == len(l.d.feats) {
		nt = 1
	}
	parallelFor(nt, len(feats), func(k int) {
		fi := feats[k]
		f := &l.d.feats[fi]
		nb := f.m.numBins
		seg := small.hist[f.offset : f.offset+nb]
		switch {
		case f.rowCol >= 0 && nch > 1:
			copy(seg, l.chunks[0][f.offset:f.offset+nb])
			for c := 1; c < nch; c++ {
				src := l.chunks[c][f.offset : f.offset+nb]
				for i := range seg {
					seg[i].g += src[i].g
					seg[i].h += src[i].h
				}
			}
		case f.rowCol < 0:
			histColumn16(seg, f.bins16, rows, l.og[small.begin:], l.oh[small.begin:], g, h, direct)
		}
		blocked := parentBlocked != nil && parentBlocked[fi]
		resSmall[k].reset()
		switch {
		case blocked:
			smallBlocked[fi] = true
		case smallFeats == nil || smallFeats[fi]:
			l.bestSplit(fi, seg, small, &resSmall[k])
			smallBlocked[fi] = resSmall[k].feat < 0
		}
		if large == nil {
			return
		}
		lseg := large.hist[f.offset : f.offset+nb]
		for i := range lseg {
			lseg[i].g -= seg[i].g
			lseg[i].h -= seg[i].h
		}
		resLarge[k].reset()
		switch {
		case blocked:
			largeBlocked[fi] = true
		case largeFeats == nil || largeFeats[fi]:
			l.bestSplit(fi, lseg, large, &resLarge[k])
			largeBlocked[fi] = resLarge[k].feat < 0
		}
	})
	small.blocked = smallBlocked
	if large != nil {
		large.blocked = largeBlocked
	}
	small.best.reset()
	for k := range resSmall {
		if resSmall[k].better(&small.best) {
			small.best = resSmall[k]
		}
	}
	if large != nil {
		large.best.reset()
		for k := range resLarge {
			if resLarge[k].better(&large.best) {
				large.best = resLarge[k]
			}
		}
	}
}

// histColumn16 builds the histogram of a feature with more than 256 bins
// over rows, one feature at a time, from gradients gathered in row order
// (og, oh) or, when direct, read in place.
func histColumn16(seg []histBin, bins []uint16, rows []int32, og, oh []float32, g, h []float32, direct bool) {
	clear(seg)
	if direct {
		for i, b := range bins[:len(rows)] {
			seg[b].g += float64(g[i])
			seg[b].h += float64(h[i])
		}
		return
	}
	for i, r := range rows {
		e := &seg[bins[r]]
		e.g += float64(og[i])
		e.h += float64(oh[i])
	}
}

// nodeSample returns the features a leaf's split may use when
// feature_fraction_bynode samples them (nil: all of the tree's features),
// or an empty set for a leaf that cannot split.
func (l *learner) nodeSample(lf *leafState) []bool {
	if !l.canSplit(lf) {
		return make([]bool, len(l.d.feats))
	}
	if l.p.FeatureFractionByNode >= 1 {
		return nil
	}
	feats := l.usedList
	k := max(1, int(math.Round(float64(len(feats))*l.p.FeatureFractionByNode)))
	in := make([]bool, len(l.d.feats))
	for _, j := range l.nodeRand.Perm(len(feats))[:min(k, len(feats))] {
		in[feats[j]] = true
	}
	return in
}

// bestSplit finds the best split of one feature for a leaf.
func (l *learner) bestSplit(fi int, seg []histBin, lf *leafState, out *splitInfo) {
	if l.d.feats[fi].m.categorical {
		l.bestCategorical(fi, seg, lf, out)
	} else {
		l.bestNumeric(fi, seg, lf, out)
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

// gainShift is what a split's gain must exceed: the leaf's own gain at
// its optimal output with lambda_l2 (LightGBM's GetLeafGain without path
// smoothing), plus min_gain_to_split. It is not the gain at the leaf's
// actual output, which differs for a leaf made by a many-vs-many categorical
// split (output computed with cat_l2 added).
func gainShift(p *Params, lf *leafState) float64 {
	return leafGain(lf.sumG, lf.sumH, p.LambdaL1, p.LambdaL2) + p.MinGainToSplit
}

func (l *learner) bestNumeric(fi int, hs []histBin, lf *leafState, out *splitInfo) {
	p := l.p
	f := &l.d.feats[fi]
	l1, l2 := p.LambdaL1, p.LambdaL2
	minData, minHess := p.MinDataInLeaf, p.MinSumHessianInLeaf
	G, H, N := lf.sumG, lf.sumH, lf.count
	cnt := countEstimator(N, H)
	minGainShift := gainShift(p, lf)
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
	minGainShift := gainShift(p, lf)
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
		threshold = float64(tree.AddCatBitset(cats))
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
		output: s.leftOut, depth: lf.depth + 1, parent: node, blocked: lf.blocked}
	right := leafState{begin: lf.begin + leftCount, count: lf.count - leftCount, sumG: s.rightG, sumH: s.rightH,
		output: s.rightOut, depth: lf.depth + 1, parent: node, blocked: lf.blocked}
	parentHist := lf.hist
	left.best.reset()
	right.best.reset()
	// After the tree's last split (num_leaves reached) the children are
	// never split: as in LightGBM, their histograms are not built.
	if tree.NumLeaves < l.p.NumLeaves && (l.canSplit(&left) || l.canSplit(&right)) {
		small, large := &left, &right
		if right.count < left.count {
			small, large = &right, &left
		}
		small.hist = l.getHist()
		large.hist = parentHist
		nch := l.buildSmall(small, g, h, false)
		l.histsAndSplits(small, large, nch, g, h, false)
	} else {
		l.putHist(parentHist)
	}
	l.leaves[i] = left
	if rightLeaf != len(l.leaves) {
		panic("gbdt: leaf numbering out of step with the tree")
	}
	l.leaves = append(l.leaves, right)
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
	// left[bin] is 1 for the bins going left. The loop has no branch on
	// it (which way a row goes is a coin flip to the branch predictor):
	// every row is written to both ends, and only the count of the side it
	// belongs to moves.
	left := make([]uint8, len(goLeft))
	for b, g := range goLeft {
		if g {
			left[b] = 1
		}
	}
	parallelRange(l.nt, count, minBlock, func(b, lo, hi int) {
		nl, nr := 0, 0
		out := tmp[lo:hi]
		last := len(out) - 1
		if f.bins != nil {
			bins := f.bins
			for _, r := range rows[lo:hi] {
				x := int(left[bins[r]])
				out[nl] = r
				out[last-nr] = r
				nl += x
				nr += 1 - x
			}
		} else {
			for _, r := range rows[lo:hi] {
				x := int(left[f.bins16[r]])
				out[nl] = r
				out[last-nr] = r
				nl += x
				nr += 1 - x
			}
		}
		nLeft[b] = nl
	})
	size := (count + blocks - 1) / blocks
	total := 0
	for _, n := range nLeft {
		total += n
	}
	// Each block's rows land at the offsets the blocks before it leave: the
	// copies are independent.
	lstart := make([]int, blocks)
	rstart := make([]int, blocks)
	lpos, rpos := 0, total
	for b := 0; b < blocks; b++ {
		lstart[b], rstart[b] = lpos, rpos
		lpos += nLeft[b]
		rpos += min(count, (b+1)*size) - b*size - nLeft[b]
	}
	parallelFor(l.nt, blocks, func(b int) {
		lo := b * size
		hi := min(count, lo+size)
		nl := nLeft[b]
		copy(rows[lstart[b]:], tmp[lo:lo+nl])
		// Right rows were written backwards.
		seg := tmp[lo+nl : hi]
		dst := rows[rstart[b] : rstart[b]+len(seg)]
		for k := range seg {
			dst[k] = seg[len(seg)-1-k]
		}
	})
	return total
}
