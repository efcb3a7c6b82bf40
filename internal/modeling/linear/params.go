// Package linear fits linear and logistic regression (binary, and multinomial
// softmax for multiclass) with L2 and L1 regularisation on the inputs that an
// ml.Preprocessor makes (standardised numeric columns, one-hot categories).
//
// The objective, for rows i with weights w_i (1 by default) summing to W, is
//
//	(1/W) Σ w_i loss(y_i, x_i·β + b) + lambda_l2/2 ‖β‖² + lambda_l1 ‖β‖₁
//
// with loss = ½(y − m)² for regression, the log loss of sigmoid(m) for binary
// and of softmax(m) for multiclass. The intercept b is not regularised. This is
// scikit-learn's objective: LogisticRegression(C) is lambda = 1/(C·W) (with
// l1_ratio=1 for L1), Ridge(alpha) is lambda_l2 = alpha/W, Lasso(alpha) is
// lambda_l1 = alpha. L2-only problems are fitted with gonum's L-BFGS, problems
// with an L1 term with OWL-QN (owlqn.go).
package linear

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// Errors of this package.
var (
	// ErrParams marks invalid parameters.
	ErrParams = errors.New("invalid parameters")
	// ErrLabels marks labels that do not fit the objective (a binary label
	// other than 0 or 1, a class outside [0, num_class)).
	ErrLabels = errors.New("invalid labels")
	// ErrModel marks a model that is inconsistent (a corrupt model file).
	ErrModel = errors.New("invalid linear model")
)

// Objectives, named as LightGBM names them.
const (
	Regression = "regression"
	Binary     = "binary"
	Multiclass = "multiclass"
)

// Params are the fitting parameters. The zero value is not valid: start from
// DefaultParams or ParseParams.
type Params struct {
	// Objective is regression, binary or multiclass.
	Objective string
	// NumClass is the number of classes for multiclass; 0 means the largest
	// label + 1.
	NumClass int
	// LambdaL2 is the L2 penalty. A negative value means the default: 0 for
	// regression (ordinary least squares, scikit-learn's LinearRegression) and
	// 1/W for classification (scikit-learn's LogisticRegression default C=1).
	LambdaL2 float64
	// LambdaL1 is the L1 penalty (default 0). When > 0, OWL-QN is used.
	LambdaL1 float64
	// MaxIter bounds the optimizer's iterations (default 1000).
	MaxIter int
	// Tol stops the optimizer when the largest gradient component (for L1,
	// of the pseudo-gradient) is below it (default 1e-7).
	Tol float64
	// Memory is the number of correction pairs L-BFGS and OWL-QN keep (default 10).
	Memory int
	// FitIntercept fits the intercept b (default true).
	FitIntercept bool
	// Standardize standardises numeric columns (default true); see
	// ml.PreprocessOptions.
	Standardize bool
	// UnknownCategory is the policy for categories not seen in training:
	// ignore (default) or error.
	UnknownCategory ml.UnknownCategory
}

// DefaultParams returns the defaults for an objective.
func DefaultParams(objective string) Params {
	return Params{Objective: objective, LambdaL2: -1, MaxIter: 1000, Tol: 1e-7, Memory: 10,
		FitIntercept: true, Standardize: true, UnknownCategory: ml.UnknownIgnore}
}

// paramNames maps every accepted name (LightGBM's names and aliases, and
// scikit-learn's where they mean the same) to its canonical name.
var paramNames = map[string]string{
	"objective": "objective", "application": "objective", "app": "objective", "task": "objective",
	"num_class": "num_class", "num_classes": "num_class",
	"lambda_l2": "lambda_l2", "reg_lambda": "lambda_l2", "lambda": "lambda_l2", "l2_regularization": "lambda_l2",
	"lambda_l1": "lambda_l1", "reg_alpha": "lambda_l1", "l1_regularization": "lambda_l1",
	"max_iter": "max_iter", "num_iterations": "max_iter", "num_iteration": "max_iter", "n_iter": "max_iter",
	"tol":              "tol",
	"memory":           "memory",
	"fit_intercept":    "fit_intercept",
	"standardize":      "standardize",
	"unknown_category": "unknown_category", "handle_unknown": "unknown_category",
	// Accepted and ignored: they describe the run, not the model.
	"seed": "", "random_state": "", "verbose": "", "verbosity": "", "num_threads": "",
}

// ParseParams reads parameters given as text (the CLI's --param k=v). Unknown
// names and bad values are all reported, one per line.
func ParseParams(kv map[string]string) (Params, error) {
	objective := Regression
	var problems []string
	canonical := map[string]string{}
	for k, v := range kv {
		name, ok := paramNames[strings.ToLower(k)]
		if !ok {
			problems = append(problems, fmt.Sprintf("unknown parameter %q", k))
			continue
		}
		if name == "" {
			continue
		}
		if prev, dup := canonical[name]; dup && prev != v {
			problems = append(problems, fmt.Sprintf("parameter %s given twice (%q and %q)", name, prev, v))
		}
		canonical[name] = v
	}
	if v, ok := canonical["objective"]; ok {
		objective = v
	}
	p := DefaultParams(objective)
	switch strings.ToLower(objective) {
	case "regression", "regression_l2", "l2", "mse", "mean_squared_error", "linear":
		p.Objective = Regression
	case "binary", "logistic", "binary_logloss":
		p.Objective = Binary
	case "multiclass", "softmax", "multinomial":
		p.Objective = Multiclass
	default:
		problems = append(problems, fmt.Sprintf("objective %q: want regression, binary or multiclass", objective))
	}
	num := func(name string, dst *float64) {
		if v, ok := canonical[name]; ok {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x < 0 || math.IsInf(x, 0) {
				problems = append(problems, fmt.Sprintf("%s=%q: want a number >= 0", name, v))
				return
			}
			*dst = x
		}
	}
	integer := func(name string, dst *int, least int) {
		if v, ok := canonical[name]; ok {
			x, err := strconv.Atoi(v)
			if err != nil || x < least {
				problems = append(problems, fmt.Sprintf("%s=%q: want an integer >= %d", name, v, least))
				return
			}
			*dst = x
		}
	}
	boolean := func(name string, dst *bool) {
		if v, ok := canonical[name]; ok {
			x, err := strconv.ParseBool(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s=%q: want true or false", name, v))
				return
			}
			*dst = x
		}
	}
	num("lambda_l2", &p.LambdaL2)
	num("lambda_l1", &p.LambdaL1)
	num("tol", &p.Tol)
	integer("num_class", &p.NumClass, 0)
	integer("max_iter", &p.MaxIter, 1)
	integer("memory", &p.Memory, 1)
	boolean("fit_intercept", &p.FitIntercept)
	boolean("standardize", &p.Standardize)
	if v, ok := canonical["unknown_category"]; ok {
		p.UnknownCategory = ml.UnknownCategory(v)
	}
	problems = append(problems, p.problems()...)
	if len(problems) > 0 {
		slices.Sort(problems)
		problems = slices.Compact(problems)
		return Params{}, fmt.Errorf("%w: %s", ErrParams, strings.Join(problems, "\n"))
	}
	return p, nil
}

// Validate reports every problem, one per line.
func (p Params) Validate() error {
	if problems := p.problems(); len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrParams, strings.Join(problems, "\n"))
	}
	return nil
}

// problems lists what Validate reports, one line each.
func (p Params) problems() []string {
	var problems []string
	if p.Objective != Regression && p.Objective != Binary && p.Objective != Multiclass {
		problems = append(problems, fmt.Sprintf("objective %q: want regression, binary or multiclass", p.Objective))
	}
	if p.NumClass < 0 || p.NumClass == 1 || (p.NumClass > 0 && p.Objective != Multiclass) {
		problems = append(problems, fmt.Sprintf("num_class=%d: want 0 (from the labels) or >= 2, for multiclass only", p.NumClass))
	}
	if math.IsNaN(p.LambdaL2) || math.IsInf(p.LambdaL2, 0) || !(p.LambdaL1 >= 0) || math.IsInf(p.LambdaL1, 0) {
		problems = append(problems, fmt.Sprintf("lambda_l2=%v, lambda_l1=%v: want finite numbers >= 0", p.LambdaL2, p.LambdaL1))
	}
	if p.MaxIter < 1 || p.Memory < 1 || !(p.Tol >= 0) {
		problems = append(problems, fmt.Sprintf("max_iter=%d, memory=%d, tol=%v: want max_iter >= 1, memory >= 1, tol >= 0", p.MaxIter, p.Memory, p.Tol))
	}
	if p.UnknownCategory != ml.UnknownIgnore && p.UnknownCategory != ml.UnknownError {
		problems = append(problems, fmt.Sprintf("unknown_category=%q: want ignore or error", p.UnknownCategory))
	}
	return problems
}

// Map returns the parameters as text, with their canonical names (for training
// metadata). LambdaL2 is reported as given (-1 for the default).
func (p Params) Map() map[string]string {
	return map[string]string{
		"objective": p.Objective, "num_class": strconv.Itoa(p.NumClass),
		"lambda_l2": strconv.FormatFloat(p.LambdaL2, 'g', -1, 64), "lambda_l1": strconv.FormatFloat(p.LambdaL1, 'g', -1, 64),
		"max_iter": strconv.Itoa(p.MaxIter), "tol": strconv.FormatFloat(p.Tol, 'g', -1, 64), "memory": strconv.Itoa(p.Memory),
		"fit_intercept": strconv.FormatBool(p.FitIntercept), "standardize": strconv.FormatBool(p.Standardize),
		"unknown_category": string(p.UnknownCategory),
	}
}
