package gbdt

import (
	"fmt"
	"math"
	"strings"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// Eval is one validation metric value after an iteration.
type Eval struct {
	// Name is LightGBM's metric name, with @k for ranking metrics
	// ("binary_logloss", "auc", "ndcg@10").
	Name           string  `json:"name"`
	Value          float64 `json:"value"`
	HigherIsBetter bool    `json:"higher_is_better"`
}

var metricAliases = map[string]string{
	"auc":            "auc",
	"binary_logloss": "binary_logloss", "binary": "binary_logloss",
	"binary_error": "binary_error",
	"l2":           "l2", "mean_squared_error": "l2", "mse": "l2", "regression_l2": "l2", "regression": "l2",
	"rmse": "rmse", "l2_root": "rmse", "root_mean_squared_error": "rmse",
	"l1": "l1", "mean_absolute_error": "l1", "mae": "l1", "regression_l1": "l1",
	"huber":         "huber",
	"multi_logloss": "multi_logloss", "multiclass": "multi_logloss", "softmax": "multi_logloss",
	"multi_error": "multi_error",
	"ndcg":        "ndcg", "lambdarank": "ndcg",
	"map": "map", "mean_average_precision": "map",
	// No metric at all.
	"none": "", "null": "", "na": "", "custom": "",
}

// canonicalMetric maps a LightGBM metric name or alias to its name ("" for
// none).
func canonicalMetric(s string) (string, error) {
	m, ok := metricAliases[strings.ToLower(s)]
	if !ok {
		return "", fmt.Errorf("unsupported metric %q (want auc, binary_logloss, binary_error, l2, rmse, l1, huber, multi_logloss, multi_error, ndcg or map)", s)
	}
	return m, nil
}

// metricsFor returns the metrics to evaluate: the configured ones, or the
// objective's own.
func metricsFor(p *Params) []string {
	if p.Metric != nil {
		return p.Metric
	}
	switch p.Objective {
	case ObjBinary:
		return []string{"binary_logloss"}
	case ObjRegression:
		return []string{"l2"}
	case ObjRegressionL1:
		return []string{"l1"}
	case ObjHuber:
		return []string{"huber"}
	case ObjMulticlass:
		return []string{"multi_logloss"}
	case ObjLambdarank:
		return []string{"ndcg"}
	}
	return nil
}

// checkMetrics rejects metrics that do not fit the objective's outputs.
func checkMetrics(p *Params, ds *ml.Dataset) error {
	for _, m := range metricsFor(p) {
		multi := m == "multi_logloss" || m == "multi_error"
		if multi != (p.Objective == ObjMulticlass) {
			return fmt.Errorf("%w: parameter \"metric\": %s does not apply to objective %s", ErrParams, m, p.Objective)
		}
		if (m == "ndcg" || m == "map") && ds != nil && ds.Groups == nil {
			return fmt.Errorf("%w: metric %s needs query groups in the validation data", ErrData, m)
		}
		if (m == "auc" || m == "binary_logloss" || m == "binary_error") && p.Objective != ObjBinary {
			// LightGBM allows these on any objective; their labels must be 0/1.
			if ds != nil {
				for i, y := range ds.Label {
					if y != 0 && y != 1 {
						return fmt.Errorf("%w: metric %s needs labels 0 or 1; label of row %d is %v", ErrData, m, i+1, y)
					}
				}
			}
		}
	}
	return nil
}

// evaluate computes the metrics on a dataset's raw scores (class-major).
func evaluate(p *Params, ds *ml.Dataset, raw []float64, k int) ([]Eval, error) {
	n := ds.NumRows()
	label, weight := ds.Label, ds.Weight
	// Transformed outputs, as LightGBM's metrics see them.
	var prob []float64
	needProb := func() []float64 {
		if prob != nil {
			return prob
		}
		prob = make([]float64, n*k)
		switch p.Objective {
		case ObjMulticlass:
			row := make([]float64, k)
			for i := 0; i < n; i++ {
				for c := 0; c < k; c++ {
					row[c] = raw[c*n+i]
				}
				softmax(row, prob[i*k:(i+1)*k])
			}
		case ObjBinary:
			for i := range prob {
				prob[i] = sigmoid(raw[i], p.Sigmoid)
			}
		default:
			copy(prob, raw)
		}
		return prob
	}
	var out []Eval
	for _, m := range metricsFor(p) {
		var v float64
		var err error
		higher := false
		switch m {
		case "auc":
			higher = true
			if oneClass(label) {
				v = 1 // LightGBM's value where AUC is undefined
			} else {
				v, err = ml.AUC(label, raw[:n], weight)
			}
		case "binary_logloss":
			v = binaryLogloss(label, needProb(), weight)
		case "binary_error":
			pr := needProb()
			v = weightedMean(n, weight, func(i int) float64 {
				if (pr[i] > 0.5) != (label[i] > 0) {
					return 1
				}
				return 0
			})
		case "l2":
			v, err = ml.MSE(label, needProb(), weight)
		case "rmse":
			v, err = ml.RMSE(label, needProb(), weight)
		case "l1":
			v, err = ml.MAE(label, needProb(), weight)
		case "huber":
			pr := needProb()
			a := p.Alpha
			v = weightedMean(n, weight, func(i int) float64 {
				d := math.Abs(pr[i] - label[i])
				if d <= a {
					return 0.5 * d * d
				}
				return a * (d - 0.5*a)
			})
		case "multi_logloss":
			pr := needProb()
			v = weightedMean(n, weight, func(i int) float64 {
				q := pr[i*k+int(label[i])]
				if q > kEpsilon {
					return -math.Log(q)
				}
				return -math.Log(kEpsilon)
			})
		case "multi_error":
			pr := needProb()
			v = weightedMean(n, weight, func(i int) float64 {
				y := int(label[i])
				for c := 0; c < k; c++ {
					if c != y && pr[i*k+c] >= pr[i*k+y] {
						return 1
					}
				}
				return 0
			})
		case "ndcg", "map":
			for _, at := range p.EvalAt {
				var r float64
				if m == "ndcg" {
					r, err = ml.NDCGWeighted(label, raw[:n], ds.Groups, at, p.labelGain(), weight)
				} else {
					r, err = ml.MAPWeighted(label, raw[:n], ds.Groups, at, weight)
				}
				if err != nil {
					return nil, fmt.Errorf("%w: %v", ErrData, err)
				}
				out = append(out, Eval{Name: fmt.Sprintf("%s@%d", m, at), Value: r, HigherIsBetter: true})
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrData, err)
		}
		out = append(out, Eval{Name: m, Value: v, HigherIsBetter: higher})
	}
	return out, nil
}

// binaryLogloss is LightGBM's binary_logloss (probabilities floored at
// kEpsilon; it differs from scikit-learn's only for p < 1e-15).
func binaryLogloss(label, prob, weight []float64) float64 {
	return weightedMean(len(label), weight, func(i int) float64 {
		q := prob[i]
		if label[i] <= 0 {
			q = 1 - q
		}
		if q > kEpsilon {
			return -math.Log(q)
		}
		return -math.Log(kEpsilon)
	})
}

func weightedMean(n int, weight []float64, f func(i int) float64) float64 {
	var s, sw float64
	for i := 0; i < n; i++ {
		w := 1.0
		if weight != nil {
			w = weight[i]
		}
		s += w * f(i)
		sw += w
	}
	return s / sw
}

func oneClass(label []float64) bool {
	pos, neg := false, false
	for _, y := range label {
		if y > 0 {
			pos = true
		} else {
			neg = true
		}
	}
	return !(pos && neg)
}
