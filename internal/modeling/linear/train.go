package linear

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/optimize"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// TrainOptions are the hooks of a training run.
type TrainOptions struct {
	// OnIteration, when set, is called after every optimizer iteration with
	// the iteration number (from 1), the objective and the model as it stands
	// (its own copy, with Pre set). Returning an error stops training with it.
	OnIteration func(iter int, objective float64, m *Model) error
}

// Train fits a model on train. The dataset must have a label; its numeric
// columns are standardised and its categorical ones one-hot encoded (the
// preprocessing is fitted on train and kept in Model.Pre).
func Train(ctx context.Context, train *ml.Dataset, p Params, opts TrainOptions) (*Model, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := train.Validate(); err != nil {
		return nil, err
	}
	if train.Label == nil {
		return nil, fmt.Errorf("%w: the training data has no label", ErrLabels)
	}
	if train.NumRows() == 0 {
		return nil, fmt.Errorf("%w: no training rows", ErrLabels)
	}
	k, err := numOutputs(p, train.Label)
	if err != nil {
		return nil, err
	}
	pre, err := ml.FitPreprocessor(train, ml.PreprocessOptions{NoStandardize: !p.Standardize, Unknown: p.UnknownCategory})
	if err != nil {
		return nil, err
	}
	d, err := pre.Transform(train)
	if err != nil {
		return nil, err
	}
	sumW := float64(train.NumRows())
	if train.Weight != nil {
		sumW = 0
		for _, w := range train.Weight {
			sumW += w
		}
		if !(sumW > 0) {
			return nil, fmt.Errorf("%w: the weights sum to %v, want > 0", ErrLabels, sumW)
		}
	}
	l2 := p.LambdaL2
	if l2 < 0 {
		l2 = 0
		if p.Objective != Regression {
			l2 = 1 / sumW // scikit-learn's LogisticRegression default, C = 1
		}
	}
	pr := newProblem(d, p.Objective, k, train.Label, train.Weight, sumW, l2, p.FitIntercept)
	m := &Model{Objective: p.Objective, NumClass: 1, Inputs: pre.OutputNames(), LambdaL2: l2, LambdaL1: p.LambdaL1, Pre: pre}
	if p.Objective == Multiclass {
		m.NumClass = k
	}
	theta := make([]float64, pr.dim())
	pr.initialIntercepts(theta)
	report := func(iter int, f float64, x []float64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if opts.OnIteration == nil {
			return nil
		}
		snapshot := *m
		snapshot.setTheta(x, pr)
		if err := opts.OnIteration(iter, f, &snapshot); err != nil {
			return callbackError{err}
		}
		return nil
	}
	var res fitResult
	if p.LambdaL1 > 0 {
		res, err = owlqn(pr, theta, p, report)
	} else {
		res, err = lbfgs(pr, theta, p, report)
	}
	if err != nil {
		return nil, err
	}
	m.setTheta(res.theta, pr)
	m.Iterations, m.Converged = res.iterations, res.converged
	return m, nil
}

// numOutputs checks the labels against the objective and returns k.
func numOutputs(p Params, label []float64) (int, error) {
	switch p.Objective {
	case Binary:
		for i, y := range label {
			if y != 0 && y != 1 {
				return 0, fmt.Errorf("%w: binary label of row %d is %v, want 0 or 1", ErrLabels, i+1, y)
			}
		}
		return 1, nil
	case Multiclass:
		top := -1.0
		for i, y := range label {
			if y < 0 || y != math.Trunc(y) || (p.NumClass > 0 && y >= float64(p.NumClass)) {
				return 0, fmt.Errorf("%w: class label of row %d is %v, want an integer in [0, num_class)", ErrLabels, i+1, y)
			}
			top = max(top, y)
		}
		if p.NumClass > 0 {
			return p.NumClass, nil
		}
		if top < 1 {
			return 0, fmt.Errorf("%w: multiclass needs at least 2 classes, the labels have 1", ErrLabels)
		}
		return int(top) + 1, nil
	}
	return 1, nil
}

// setTheta copies θ into the model's coefficients.
func (m *Model) setTheta(theta []float64, pr *problem) {
	k, p := pr.k, pr.p
	m.Coef = make([][]float64, k)
	m.Intercept = make([]float64, k)
	for c := range k {
		m.Coef[c] = make([]float64, p)
		for j := range p {
			m.Coef[c][j] = theta[j*k+c]
		}
		if pr.intercept {
			m.Intercept[c] = theta[p*k+c]
		}
	}
}

type fitResult struct {
	theta      []float64
	iterations int
	converged  bool
}

// reporter is a gonum Recorder that reports major iterations.
type reporter struct {
	fn   func(iter int, f float64, x []float64) error
	iter int
}

func (r *reporter) Init() error { return nil }

func (r *reporter) Record(loc *optimize.Location, op optimize.Operation, _ *optimize.Stats) error {
	if op != optimize.MajorIteration {
		return nil
	}
	r.iter++
	return r.fn(r.iter, loc.F, loc.X)
}

// lbfgs minimises the smooth objective with gonum's L-BFGS.
func lbfgs(pr *problem, theta []float64, p Params, report func(int, float64, []float64) error) (fitResult, error) {
	// gonum asks for the value and the gradient at the same point in separate
	// calls; both come from one pass over the data, so keep the last pass.
	var lastX, lastG []float64
	var lastF float64
	evalAt := func(x []float64) {
		if lastX != nil && slices.Equal(x, lastX) {
			return
		}
		lastX = append(lastX[:0], x...)
		lastG = slices.Grow(lastG[:0], len(x))[:len(x)]
		lastF = pr.eval(x, lastG)
	}
	problem := optimize.Problem{
		Func: func(x []float64) float64 { evalAt(x); return lastF },
		Grad: func(grad, x []float64) { evalAt(x); copy(grad, lastG) },
	}
	rec := &reporter{fn: report}
	settings := &optimize.Settings{
		GradientThreshold: p.Tol,
		MajorIterations:   p.MaxIter,
		// Stop when the objective has stopped moving at float64 precision,
		// which is where a too-small Tol would otherwise end in a line-search
		// failure.
		Converger: &optimize.FunctionConverge{Relative: 1e-15, Iterations: 10},
		Recorder:  rec,
	}
	method := &optimize.LBFGS{Store: p.Memory, Linesearcher: &optimize.MoreThuente{}}
	res, err := optimize.Minimize(problem, theta, settings, method)
	if res == nil {
		return fitResult{}, fmt.Errorf("l-bfgs: %w", err)
	}
	if err != nil {
		// A canceled context or a callback error stops the run: report it.
		// Other errors (a line search that cannot improve on the last point
		// at float64 precision) leave a usable point that did not meet Tol.
		var stop callbackError
		if errors.As(err, &stop) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fitResult{}, err
		}
	}
	converged := err == nil && (res.Status == optimize.GradientThreshold || res.Status == optimize.FunctionConvergence)
	if (errors.Is(err, optimize.ErrLinesearcherFailure) || errors.Is(err, optimize.ErrNoProgress)) && res.Gradient != nil && infNorm(res.Gradient) <= precisionLimit {
		// No decrease found along a descent direction with a gradient this
		// small: the objective is flat at float64 precision, the point is the
		// minimum as far as it can be measured (a Tol below this is unreachable).
		converged = true
	}
	return fitResult{theta: res.X, iterations: rec.iter, converged: converged}, nil
}

// precisionLimit is the gradient size below which a failed line search means
// the objective is flat at float64 precision rather than a failure.
const precisionLimit = 1e-6

// callbackError marks an error returned by TrainOptions.OnIteration.
type callbackError struct{ err error }

func (c callbackError) Error() string { return c.err.Error() }
func (c callbackError) Unwrap() error { return c.err }
