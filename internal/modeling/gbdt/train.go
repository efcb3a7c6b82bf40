package gbdt

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// TrainOptions are the run-time options of Train (what is not a LightGBM
// parameter).
type TrainOptions struct {
	// OnIteration, when set, is called after every boosting iteration
	// (1-based) with the validation metrics (none without a validation set),
	// for progress lines. It runs on Train's goroutine.
	OnIteration func(iteration int, evals []Eval)
	// Bins, when set, keeps the training data's bins for later calls on
	// the same dataset (see BinCache); nil bins every call.
	Bins *BinCache
}

// Train fits a model to train, evaluating on valid (optional) after every
// iteration and stopping early on it when p.EarlyStoppingRound > 0. Training
// is deterministic: the same data and parameters give the same model, with
// any number of threads. It returns ctx's error if ctx is cancelled.
func Train(ctx context.Context, train, valid *ml.Dataset, p Params, opts TrainOptions) (*Model, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if train == nil {
		return nil, fmt.Errorf("%w: no training data", ErrData)
	}
	if err := train.Validate(); err != nil {
		return nil, fmt.Errorf("%w: training data: %v", ErrData, err)
	}
	n := train.NumRows()
	if n == 0 {
		return nil, fmt.Errorf("%w: training data has no rows", ErrData)
	}
	if err := checkWeightSum("training", train); err != nil {
		return nil, err
	}
	obj, err := newObjective(&p, train)
	if err != nil {
		return nil, fmt.Errorf("training data: %w", err)
	}
	if valid != nil {
		if err := checkValid(&p, train, valid); err != nil {
			return nil, err
		}
	}
	if err := checkMetrics(&p, valid); err != nil {
		return nil, err
	}
	if p.EarlyStoppingRound > 0 && (valid == nil || len(metricsFor(&p)) == 0) {
		return nil, fmt.Errorf("%w: parameter \"early_stopping_round\": needs a validation set and a metric", ErrParams)
	}
	nt := p.NumThreads
	if nt <= 0 {
		nt = runtime.GOMAXPROCS(0)
	}
	k := p.NumClass
	bd := opts.Bins.binned(train, &p, nt)
	model := &Model{Version: ModelVersion, Objective: p.Objective, NumClass: k, Features: modelFeatures(train, bd)}
	if p.Objective == ObjBinary {
		model.Sigmoid = p.Sigmoid
	}
	params := p
	model.Params = &params

	b := &booster{p: &p, obj: obj, train: train, valid: valid, bd: bd, nt: nt, k: k, n: n, model: model}
	b.init()
	if err := b.run(ctx, opts); err != nil {
		return nil, err
	}
	return model, nil
}

// checkWeightSum rejects weights that are all zero: every gradient and
// hessian would be 0, leaf values 0/0 and weighted metrics undefined.
func checkWeightSum(what string, ds *ml.Dataset) error {
	if ds.Weight == nil {
		return nil
	}
	for _, w := range ds.Weight {
		if w > 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: %s data: the weights sum to 0, want > 0", ErrData, what)
}

func checkValid(p *Params, train, valid *ml.Dataset) error {
	if err := valid.Validate(); err != nil {
		return fmt.Errorf("%w: validation data: %v", ErrData, err)
	}
	if err := checkWeightSum("validation", valid); err != nil {
		return err
	}
	if valid.NumFeatures() != train.NumFeatures() {
		return fmt.Errorf("%w: validation data has %d feature columns, training data %d", ErrData, valid.NumFeatures(), train.NumFeatures())
	}
	for i := range valid.Columns {
		if valid.Columns[i].Name != train.Columns[i].Name {
			return fmt.Errorf("%w: validation column %d is %q, training column %d is %q", ErrData, i, valid.Columns[i].Name, i, train.Columns[i].Name)
		}
	}
	if valid.NumRows() == 0 {
		return fmt.Errorf("%w: validation data has no rows", ErrData)
	}
	if len(valid.Label) != valid.NumRows() {
		return fmt.Errorf("%w: validation data has no label", ErrData)
	}
	if _, err := newObjective(p, valid); err != nil {
		return fmt.Errorf("validation data: %w", err)
	}
	return nil
}

func modelFeatures(ds *ml.Dataset, bd *binnedData) []Feature {
	fs := make([]Feature, len(ds.Columns))
	for i := range ds.Columns {
		c := &ds.Columns[i]
		f := Feature{Name: c.Name, Categorical: c.Kind == ml.Categorical}
		m := bd.mappers[i]
		if m == nil {
			f.Unused = true
		} else if m.categorical {
			f.Categories = append([]int(nil), m.binCat[1:]...)
		} else {
			f.Min, f.Max = m.minVal, m.maxVal
		}
		fs[i] = f
	}
	return fs
}

// booster runs the boosting iterations.
type booster struct {
	p            *Params
	obj          objective
	train, valid *ml.Dataset
	bd           *binnedData
	nt, k, n     int
	model        *Model

	lrn        *learner
	score      []float64 // class-major raw scores of the training rows
	validScore []float64 // class-major raw scores of the validation rows
	g, h       []float32
	bag        []int32 // rows of the current bag; nil = all
	inBag      []bool
	bagRand    *rand.Rand
	init0      []float64 // initial score per class
}

func (b *booster) init() {
	b.lrn = newLearner(b.p, b.bd, b.nt)
	b.score = make([]float64, b.k*b.n)
	b.g = make([]float32, b.k*b.n)
	b.h = make([]float32, b.k*b.n)
	b.init0 = make([]float64, b.k)
	for c := 0; c < b.k; c++ {
		if b.obj.classNeedTrain(c) || b.p.Objective == ObjMulticlass {
			b.init0[c] = b.obj.boostFromScore(c)
		}
		if math.Abs(b.init0[c]) <= kEpsilon {
			b.init0[c] = 0
		}
		s := b.score[c*b.n : (c+1)*b.n]
		for i := range s {
			s[i] = b.init0[c]
		}
	}
	if b.valid != nil {
		nv := b.valid.NumRows()
		b.validScore = make([]float64, b.k*nv)
		for c := 0; c < b.k; c++ {
			s := b.validScore[c*nv : (c+1)*nv]
			for i := range s {
				s[i] = b.init0[c]
			}
		}
	}
	b.bagRand = newRand(uint64(b.p.BaggingSeed))
}

// resample draws a new bag (bagging_fraction of the rows) when due.
func (b *booster) resample(iter int) {
	p := b.p
	if p.BaggingFreq <= 0 || p.BaggingFraction >= 1 {
		return
	}
	if iter%p.BaggingFreq != 0 {
		return
	}
	if b.inBag == nil {
		b.inBag = make([]bool, b.n)
		b.bag = make([]int32, 0, b.n)
	}
	b.bag = b.bag[:0]
	if b.train.Groups != nil {
		// Ranking: bag whole queries so that pairs stay within the bag.
		start := 0
		for _, g := range b.train.Groups {
			in := b.bagRand.Float64() < p.BaggingFraction
			for i := start; i < start+g; i++ {
				b.inBag[i] = in
				if in {
					b.bag = append(b.bag, int32(i))
				}
			}
			start += g
		}
	} else {
		for i := 0; i < b.n; i++ {
			in := b.bagRand.Float64() < p.BaggingFraction
			b.inBag[i] = in
			if in {
				b.bag = append(b.bag, int32(i))
			}
		}
	}
	if len(b.bag) == 0 {
		// Never train on nothing: keep the first row.
		b.bag = append(b.bag, 0)
		b.inBag[0] = true
	}
}

func (b *booster) run(ctx context.Context, opts TrainOptions) error {
	p := b.p
	es := newEarlyStopper(p)
	for iter := 0; iter < p.NumIterations; iter++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.resample(iter)
		b.obj.gradients(b.score, b.g, b.h, b.nt)
		trees := make([]*Tree, b.k)
		anySplit := false
		for c := 0; c < b.k; c++ {
			var t *Tree
			if b.obj.classNeedTrain(c) {
				g := b.g[c*b.n : (c+1)*b.n]
				h := b.h[c*b.n : (c+1)*b.n]
				t = b.lrn.grow(g, h, b.bag)
				if t.NumLeaves > 1 {
					anySplit = true
					b.renew(t, c)
					t.shrink(p.LearningRate)
					b.updateTrainScore(t, c)
				}
			}
			if t == nil || t.NumLeaves <= 1 {
				t = newTree(2)
				t.LeafValue[0] = 0
				t.LeafCount[0] = b.n
			}
			trees[c] = t
		}
		if !anySplit && iter > 0 {
			// No tree of this iteration could split: more iterations would add
			// nothing (LightGBM stops here too).
			break
		}
		if iter == 0 {
			for c, t := range trees {
				if b.init0[c] != 0 {
					t.addBias(b.init0[c])
				}
			}
		}
		for c, t := range trees {
			if b.valid != nil {
				b.addValidScore(t, c, iter == 0)
			}
			b.model.Trees = append(b.model.Trees, *t)
		}
		var evals []Eval
		if b.valid != nil && len(metricsFor(p)) > 0 {
			var err error
			evals, err = evaluate(p, b.valid, b.validScore, b.k)
			if err != nil {
				return err
			}
		}
		if opts.OnIteration != nil {
			opts.OnIteration(iter+1, evals)
		}
		if p.EarlyStoppingRound > 0 && es.update(iter+1, evals) {
			b.model.BestIteration = es.bestIter
			b.model.Trees = b.model.Trees[:es.bestIter*b.k]
			break
		}
	}
	if p.EarlyStoppingRound > 0 && b.model.BestIteration == 0 && es.bestIter > 0 {
		b.model.BestIteration = es.bestIter
		b.model.Trees = b.model.Trees[:es.bestIter*b.k]
	}
	return nil
}

// renew replaces leaf outputs for objectives that ask for it (L1).
func (b *booster) renew(t *Tree, c int) {
	r, ok := b.obj.(leafRenewer)
	if !ok || !r.renews() {
		return
	}
	score := b.score[c*b.n : (c+1)*b.n]
	for leaf := 0; leaf < t.NumLeaves; leaf++ {
		rows := b.lrn.leafRows(leaf)
		if len(rows) > 0 {
			t.LeafValue[leaf] = r.renewLeaf(rows, score)
		}
	}
}

// updateTrainScore adds a (shrunk) tree's outputs to the training scores:
// in-bag rows through the learner's partition, the others by prediction.
func (b *booster) updateTrainScore(t *Tree, c int) {
	score := b.score[c*b.n : (c+1)*b.n]
	parallelFor(b.nt, t.NumLeaves, func(leaf int) {
		v := t.LeafValue[leaf]
		for _, r := range b.lrn.leafRows(leaf) {
			score[r] += v
		}
	})
	if b.bag == nil {
		return
	}
	cols := b.train.Columns
	parallelRange(b.nt, b.n, 1<<14, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			if !b.inBag[r] {
				score[r] += t.LeafValue[t.leafOfRow(cols, r)]
			}
		}
	})
}

func (b *booster) addValidScore(t *Tree, c int, first bool) {
	nv := b.valid.NumRows()
	score := b.validScore[c*nv : (c+1)*nv]
	bias := 0.0
	if first {
		// The initial score is already in the validation scores.
		bias = b.init0[c]
	}
	cols := b.valid.Columns
	parallelRange(b.nt, nv, 1<<12, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			score[r] += t.LeafValue[t.leafOfRow(cols, r)] - bias
		}
	})
}

// earlyStopper tracks each metric's best value and iteration, and says when
// one of them (only the first with first_metric_only) has not improved for
// early_stopping_round iterations.
type earlyStopper struct {
	p        *Params
	best     []float64
	bestAt   []int
	bestIter int
}

func newEarlyStopper(p *Params) *earlyStopper { return &earlyStopper{p: p} }

func (e *earlyStopper) update(iter int, evals []Eval) bool {
	if len(evals) == 0 {
		return false
	}
	if e.best == nil {
		e.best = make([]float64, len(evals))
		e.bestAt = make([]int, len(evals))
		for i := range evals {
			e.best[i] = math.Inf(1)
			if evals[i].HigherIsBetter {
				e.best[i] = math.Inf(-1)
			}
		}
	}
	check := len(evals)
	if e.p.FirstMetricOnly {
		check = 1
	}
	for i := 0; i < check; i++ {
		v := evals[i].Value
		d := e.p.EarlyStoppingMinDelta
		improved := v < e.best[i]-d
		if evals[i].HigherIsBetter {
			improved = v > e.best[i]+d
		}
		if improved || e.bestAt[i] == 0 {
			e.best[i], e.bestAt[i] = v, iter
		}
	}
	e.bestIter = e.bestAt[0]
	for i := 0; i < check; i++ {
		if iter-e.bestAt[i] >= e.p.EarlyStoppingRound {
			e.bestIter = e.bestAt[i]
			return true
		}
	}
	return false
}
