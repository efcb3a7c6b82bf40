package ml

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/atrium-ml/atrium/internal/platform/floatsort"
)

// Metrics compare labels with predictions. They match scikit-learn's
// (classification and regression) and LightGBM's (ranking) definitions to
// within floating-point rounding; testdata/metrics_parity.json holds values
// computed by both, checked by the tests.
//
// A nil weight means every row weighs 1. Label, prediction and weight slices
// must have the same length; otherwise, or when the metric is undefined for
// the input (AUC with one class, no rows), the error says why.

// ErrMetric is wrapped by every error a metric returns.
var ErrMetric = errors.New("metric")

func checkLens(name string, label, pred, weight []float64) error {
	if len(label) == 0 {
		return fmt.Errorf("%w %s: no rows", ErrMetric, name)
	}
	if len(pred) != len(label) {
		return fmt.Errorf("%w %s: %d predictions for %d labels", ErrMetric, name, len(pred), len(label))
	}
	if weight != nil && len(weight) != len(label) {
		return fmt.Errorf("%w %s: %d weights for %d labels", ErrMetric, name, len(weight), len(label))
	}
	return nil
}

// parallelSortMin is the fewest scores for which aucCounts sorts the
// positives and the negatives on two goroutines: below it a goroutine's
// start is a visible share of the sorts.
const parallelSortMin = 1 << 14

// aucCounts is AUC without weights or NaN scores, in integer counts: the
// positives' and negatives' scores sorted apart (floatsort.Sort), then each
// positive counts the negatives below it twice and those tied with it once.
// The sum is exact, so the result is the tie-aware AUC rounded once.
func aucCounts(label, score []float64) (float64, error) {
	var pos, neg []float64
	for i, v := range score {
		if label[i] > 0 {
			pos = append(pos, v)
		} else {
			neg = append(neg, v)
		}
	}
	if len(pos) == 0 || len(neg) == 0 {
		return 0, fmt.Errorf("%w auc: undefined with only one class present", ErrMetric)
	}
	if len(score) >= parallelSortMin && runtime.GOMAXPROCS(0) > 1 {
		// The two sorts are independent: a tuning trial computes AUC
		// between boosting iterations, when the trainer's other threads
		// are idle.
		var wg sync.WaitGroup
		wg.Go(func() { floatsort.Sort(neg) })
		floatsort.Sort(pos)
		wg.Wait()
	} else {
		floatsort.Sort(pos)
		floatsort.Sort(neg)
	}
	var twice int64 // 2 x (pairs ranked right) + tied pairs
	lt := 0         // negatives below the current positive score
	for i := 0; i < len(pos); {
		p, j := pos[i], i
		for j < len(pos) && pos[j] == p {
			j++
		}
		for lt < len(neg) && neg[lt] < p {
			lt++
		}
		eq := lt
		for eq < len(neg) && neg[eq] == p {
			eq++
		}
		twice += int64(j-i) * int64(2*lt+(eq-lt))
		i = j
	}
	return float64(twice) / (2 * float64(len(pos)) * float64(len(neg))), nil
}

// scoredRow is a row's score and index, sorted by AUC.
type scoredRow struct {
	score float64
	row   int
}

func wAt(weight []float64, i int) float64 {
	if weight == nil {
		return 1
	}
	return weight[i]
}

// AUC is the area under the ROC curve of scores for binary labels (label > 0
// is positive), counting tied scores as half right: scikit-learn's
// roc_auc_score and LightGBM's auc.
func AUC(label, score, weight []float64) (float64, error) {
	if err := checkLens("auc", label, score, weight); err != nil {
		return 0, err
	}
	if weight == nil && !slices.ContainsFunc(score, math.IsNaN) {
		return aucCounts(label, score)
	}
	// Rows sorted by score, highest first, as (score, row) pairs: the sort
	// moves contiguous pairs rather than indices into score, which made it
	// most of a tuning trial's metric time (AUC runs on the validation rows
	// every boosting iteration). NaN scores sort last; tied rows form one
	// step of the curve whatever their order.
	rows := make([]scoredRow, len(score))
	for i, v := range score {
		rows[i] = scoredRow{v, i}
	}
	slices.SortFunc(rows, func(a, b scoredRow) int { return cmp.Compare(b.score, a.score) })
	var tp, fp, area float64
	for i := 0; i < len(rows); {
		j := i
		var dtp, dfp float64
		for ; j < len(rows) && rows[j].score == rows[i].score; j++ {
			w := wAt(weight, rows[j].row)
			if label[rows[j].row] > 0 {
				dtp += w
			} else {
				dfp += w
			}
		}
		if j == i { // a NaN score equals nothing, itself included
			j++
			if w := wAt(weight, rows[i].row); label[rows[i].row] > 0 {
				dtp += w
			} else {
				dfp += w
			}
		}
		area += dfp * (tp + dtp/2)
		tp += dtp
		fp += dfp
		i = j
	}
	if tp == 0 || fp == 0 {
		return 0, fmt.Errorf("%w auc: undefined with only one class present", ErrMetric)
	}
	return area / (tp * fp), nil
}

// probEps is the clipping scikit-learn's log_loss applies to float64
// probabilities (machine epsilon).
const probEps = 2.220446049250313e-16

// LogLoss is the binary cross-entropy of probabilities prob of the positive
// class (label > 0): scikit-learn's log_loss, which clips the probability of
// the true class to [eps, 1-eps] (eps = float64 machine epsilon).
func LogLoss(label, prob, weight []float64) (float64, error) {
	if err := checkLens("logloss", label, prob, weight); err != nil {
		return 0, err
	}
	var s, sw float64
	for i, y := range label {
		p := prob[i]
		if y <= 0 {
			p = 1 - p
		}
		w := wAt(weight, i)
		s -= w * math.Log(clipProb(p))
		sw += w
	}
	return s / sw, nil
}

func clipProb(p float64) float64 { return min(max(p, probEps), 1-probEps) }

// MultiLogLoss is the multiclass cross-entropy of prob, row-major rows x k
// class probabilities, labels being class indices: scikit-learn's log_loss
// (the true class's probability clipped to [eps, 1-eps]).
func MultiLogLoss(label, prob []float64, k int, weight []float64) (float64, error) {
	if k < 2 || len(prob) != len(label)*k {
		return 0, fmt.Errorf("%w multi_logloss: %d probabilities for %d labels x %d classes", ErrMetric, len(prob), len(label), k)
	}
	if err := checkLens("multi_logloss", label, label, weight); err != nil {
		return 0, err
	}
	var s, sw float64
	for i, y := range label {
		c := int(y)
		if float64(c) != y || c < 0 || c >= k {
			return 0, fmt.Errorf("%w multi_logloss: label of row %d is %v, want a class 0..%d", ErrMetric, i, y, k-1)
		}
		w := wAt(weight, i)
		s -= w * math.Log(clipProb(prob[i*k+c]))
		sw += w
	}
	return s / sw, nil
}

// Accuracy is the (weighted) share of predicted labels equal to the labels.
func Accuracy(label, pred, weight []float64) (float64, error) {
	if err := checkLens("accuracy", label, pred, weight); err != nil {
		return 0, err
	}
	var right, sw float64
	for i, y := range label {
		w := wAt(weight, i)
		if pred[i] == y {
			right += w
		}
		sw += w
	}
	return right / sw, nil
}

// confusion returns the weighted true positives, false positives and false
// negatives of binary predictions (positive = 1).
func confusion(label, pred, weight []float64) (tp, fp, fn float64) {
	for i, y := range label {
		w := wAt(weight, i)
		switch {
		case pred[i] == 1 && y == 1:
			tp += w
		case pred[i] == 1:
			fp += w
		case y == 1:
			fn += w
		}
	}
	return tp, fp, fn
}

// Precision is tp / (tp + fp) of binary predictions (positive class 1); 0
// when nothing is predicted positive (scikit-learn's zero_division default).
func Precision(label, pred, weight []float64) (float64, error) {
	if err := checkLens("precision", label, pred, weight); err != nil {
		return 0, err
	}
	tp, fp, _ := confusion(label, pred, weight)
	if tp+fp == 0 {
		return 0, nil
	}
	return tp / (tp + fp), nil
}

// Recall is tp / (tp + fn) of binary predictions (positive class 1); 0 when
// there are no positive labels.
func Recall(label, pred, weight []float64) (float64, error) {
	if err := checkLens("recall", label, pred, weight); err != nil {
		return 0, err
	}
	tp, _, fn := confusion(label, pred, weight)
	if tp+fn == 0 {
		return 0, nil
	}
	return tp / (tp + fn), nil
}

// F1 is 2tp / (2tp + fp + fn) of binary predictions (positive class 1); 0
// when there are neither positive labels nor positive predictions.
func F1(label, pred, weight []float64) (float64, error) {
	if err := checkLens("f1", label, pred, weight); err != nil {
		return 0, err
	}
	tp, fp, fn := confusion(label, pred, weight)
	if 2*tp+fp+fn == 0 {
		return 0, nil
	}
	return 2 * tp / (2*tp + fp + fn), nil
}

// MSE is the (weighted) mean squared error.
func MSE(label, pred, weight []float64) (float64, error) {
	if err := checkLens("mse", label, pred, weight); err != nil {
		return 0, err
	}
	var s, sw float64
	for i, y := range label {
		w := wAt(weight, i)
		d := y - pred[i]
		s += w * d * d
		sw += w
	}
	return s / sw, nil
}

// RMSE is the square root of MSE (scikit-learn's root_mean_squared_error).
func RMSE(label, pred, weight []float64) (float64, error) {
	if err := checkLens("rmse", label, pred, weight); err != nil {
		return 0, err
	}
	m, _ := MSE(label, pred, weight)
	return math.Sqrt(m), nil
}

// MAE is the (weighted) mean absolute error.
func MAE(label, pred, weight []float64) (float64, error) {
	if err := checkLens("mae", label, pred, weight); err != nil {
		return 0, err
	}
	var s, sw float64
	for i, y := range label {
		w := wAt(weight, i)
		s += w * math.Abs(y-pred[i])
		sw += w
	}
	return s / sw, nil
}

// R2 is the coefficient of determination, 1 - SS_res / SS_tot with weighted
// sums; for constant labels it is 1 if the predictions are exact, else 0
// (scikit-learn's r2_score with force_finite).
func R2(label, pred, weight []float64) (float64, error) {
	if err := checkLens("r2", label, pred, weight); err != nil {
		return 0, err
	}
	var mean, sw float64
	for i, y := range label {
		w := wAt(weight, i)
		mean += w * y
		sw += w
	}
	mean /= sw
	var num, den float64
	for i, y := range label {
		w := wAt(weight, i)
		d := y - pred[i]
		num += w * d * d
		e := y - mean
		den += w * e * e
	}
	if den == 0 {
		if num == 0 {
			return 1, nil
		}
		return 0, nil
	}
	return 1 - num/den, nil
}
