package train

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// metricSpec is a metric name split into LightGBM's metric and cut-off:
// ndcg@10 is {ndcg, 10}.
type metricSpec struct {
	base string
	k    int // 0: none
}

func parseMetric(name string) metricSpec {
	base, ks, ok := strings.Cut(name, "@")
	m := metricSpec{base: base}
	if ok {
		m.k, _ = strconv.Atoi(ks) // the spec checked the form
	}
	return m
}

// score computes the metric of predictions pred (numOutputs per row,
// row-major for multiclass) against ds's labels, as LightGBM computes it.
func score(metric string, ds *ml.Dataset, pred []float64, numOutputs int) (float64, error) {
	m := parseMetric(metric)
	y, w := ds.Label, ds.Weight
	switch m.base {
	case "auc":
		return ml.AUC(y, pred, w)
	case "binary_logloss":
		return ml.LogLoss(y, pred, w)
	case "binary_error":
		acc, err := ml.Accuracy(y, threshold(pred), w)
		return 1 - acc, err
	case "l2":
		return ml.MSE(y, pred, w)
	case "rmse":
		return ml.RMSE(y, pred, w)
	case "l1":
		return ml.MAE(y, pred, w)
	case "multi_logloss":
		return ml.MultiLogLoss(y, pred, numOutputs, w)
	case "multi_error":
		acc, err := ml.Accuracy(y, argmax(pred, numOutputs), w)
		return 1 - acc, err
	case "ndcg", "map":
		k := m.k
		if k == 0 {
			k = math.MaxInt32
		}
		groups := ds.Groups
		if groups == nil {
			return 0, fmt.Errorf("metric %s needs query groups (spine.group)", metric)
		}
		if m.base == "ndcg" {
			return ml.NDCG(y, pred, groups, k, ml.DefaultLabelGain())
		}
		return ml.MAP(y, pred, groups, k)
	}
	return 0, fmt.Errorf("metric %q is not supported for evaluation", metric)
}

func threshold(p []float64) []float64 {
	out := make([]float64, len(p))
	for i, v := range p {
		if v > 0.5 {
			out[i] = 1
		}
	}
	return out
}

func argmax(p []float64, k int) []float64 {
	n := len(p) / k
	out := make([]float64, n)
	for i := range n {
		best := 0
		for c := 1; c < k; c++ {
			if p[i*k+c] > p[i*k+best] {
				best = c
			}
		}
		out[i] = float64(best)
	}
	return out
}

// better reports whether a beats b by more than margin in the direction.
func better(a, b, margin float64, maximize bool) bool {
	if maximize {
		return a > b+margin
	}
	return a < b-margin
}
