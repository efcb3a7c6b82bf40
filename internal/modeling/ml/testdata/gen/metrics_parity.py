"""Reference values for Atrium's metrics (internal/modeling/ml/metrics*.go).

Classification and regression metrics come from scikit-learn; AUC,
binary_logloss, NDCG@k and MAP@k also from LightGBM's own metric code
(a Booster evaluating a validation set whose init_score holds the scores);
MRR has no reference implementation in either, so it is computed here from
its definition.

Run with the interop virtualenv:
    $ATRIUM_TEST_PYTHON internal/modeling/ml/testdata/gen/metrics_parity.py OUT.json
The Go test TestMetricsParity compares against testdata/metrics_parity.json;
TestMetricsParityRegenerate reruns this script when ATRIUM_TEST_PYTHON is set
and checks the committed file still matches.
"""
import json
import sys

import lightgbm as lgb
import numpy as np
import sklearn
from sklearn import metrics

rng = np.random.default_rng(20261125)
cases = []


def add(name, metric, want, source, **inputs):
    for k, v in list(inputs.items()):
        if isinstance(v, np.ndarray):
            inputs[k] = v.tolist()
    cases.append({"name": name, "metric": metric, "want": float(want), "source": source, **inputs})


SK = "scikit-learn " + sklearn.__version__
LG = "lightgbm " + lgb.__version__


def lgb_eval(label, score, params, group=None, weight=None):
    """LightGBM's metric values for raw scores, keyed by metric name."""
    n = len(label)
    x = rng.normal(size=(n, 1))
    p = {"verbose": -1, "num_threads": 1, **params}
    train = lgb.Dataset(x, label, group=group, weight=weight, init_score=score, params={"verbose": -1})
    booster = lgb.Booster(p, train)
    return {r[1]: r[2] for r in booster.eval_train()}


# Binary classification: scores with ties, weights.
n = 120
y = (rng.random(n) < 0.4).astype(float)
score = np.round(rng.normal(size=n) + y, 1)  # rounding makes ties
# float32-representable weights: LightGBM stores weights as float32.
w = rng.uniform(0.1, 3, size=n).astype(np.float32).astype(float)
add("auc ties", "auc", metrics.roc_auc_score(y, score), SK, label=y, score=score)
add("auc ties weighted", "auc", metrics.roc_auc_score(y, score, sample_weight=w), SK, label=y, score=score, weight=w)
lg = lgb_eval(y, score, {"objective": "binary", "metric": ["auc"]})
add("auc lightgbm", "auc", lg["auc"], LG, label=y, score=score)
lg = lgb_eval(y, score, {"objective": "binary", "metric": ["auc"]}, weight=w)
add("auc lightgbm weighted", "auc", lg["auc"], LG, label=y, score=score, weight=w)

prob = np.round(1 / (1 + np.exp(-score)), 6)
prob_edge = prob.copy()
prob_edge[:3] = [0.0, 1.0, 1e-300]
add("logloss", "logloss", metrics.log_loss(y, prob), SK, label=y, score=prob)
add("logloss weighted", "logloss", metrics.log_loss(y, prob, sample_weight=w), SK, label=y, score=prob, weight=w)
add("logloss clipped", "logloss", metrics.log_loss(y, prob_edge), SK, label=y, score=prob_edge)

pred = (prob > 0.5).astype(float)
for name, fn in [("accuracy", metrics.accuracy_score), ("precision", metrics.precision_score),
                 ("recall", metrics.recall_score), ("f1", metrics.f1_score)]:
    add(name, name, fn(y, pred), SK, label=y, score=pred)
    add(name + " weighted", name, fn(y, pred, sample_weight=w), SK, label=y, score=pred, weight=w)
none = np.zeros(n)
for name, fn in [("precision", metrics.precision_score), ("f1", metrics.f1_score)]:
    add(name + " no positive predictions", name, fn(y, none, zero_division=0), SK, label=y, score=none)
add("recall no positive labels", "recall", metrics.recall_score(none, pred, zero_division=0), SK, label=none, score=pred)

# Multiclass log loss.
k = 4
yk = rng.integers(0, k, size=n).astype(float)
logits = rng.normal(size=(n, k))
pk = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
add("multi logloss", "multi_logloss", metrics.log_loss(yk, pk, labels=list(range(k))), SK, label=yk, score=pk.ravel(), num_class=k)
add("multi logloss weighted", "multi_logloss", metrics.log_loss(yk, pk, sample_weight=w, labels=list(range(k))), SK,
    label=yk, score=pk.ravel(), num_class=k, weight=w)

# Regression.
yr = rng.normal(3, 2, size=n)
yr = np.round(yr, 4)
pr = np.round(yr + rng.normal(0, 0.7, size=n), 4)
for name, fn in [("mse", metrics.mean_squared_error), ("rmse", metrics.root_mean_squared_error),
                 ("mae", metrics.mean_absolute_error), ("r2", metrics.r2_score)]:
    add(name, name, fn(yr, pr), SK, label=yr, score=pr)
    add(name + " weighted", name, fn(yr, pr, sample_weight=w), SK, label=yr, score=pr, weight=w)
const = np.full(n, 2.0)
add("r2 constant labels exact", "r2", metrics.r2_score(const, const), SK, label=const, score=const)
add("r2 constant labels inexact", "r2", metrics.r2_score(const, pr), SK, label=const, score=pr)

# Ranking: queries of 1..30 rows, relevance 0..4, tied scores, one query with
# no relevant rows.
groups = rng.integers(1, 31, size=25)
m = int(groups.sum())
rel = rng.integers(0, 5, size=m).astype(float) * (rng.random(m) < 0.6)
rel[: groups[0]] = 0
rscore = np.round(rel * 0.3 + rng.normal(size=m), 1)
ks = [1, 3, 5, 10]
lg = lgb_eval(rel, rscore, {"objective": "lambdarank", "metric": ["ndcg", "map"], "eval_at": ks}, group=groups)
for kk in ks:
    add(f"ndcg@{kk}", "ndcg", lg[f"ndcg@{kk}"], LG, label=rel, score=rscore, groups=groups, k=kk)
    add(f"map@{kk}", "map", lg[f"map@{kk}"], LG, label=rel, score=rscore, groups=groups, k=kk)

# MRR by definition: reciprocal rank of the first relevant row, by descending
# score with ties in row order; 0 for a query without relevant rows.
rr = []
start = 0
for g in groups:
    lab, sc = rel[start:start + g], rscore[start:start + g]
    start += g
    order = np.argsort(-sc, kind="stable")
    hits = np.nonzero(lab[order] > 0)[0]
    rr.append(1.0 / (hits[0] + 1) if len(hits) else 0.0)
add("mrr", "mrr", float(np.mean(rr)), "definition (numpy)", label=rel, score=rscore, groups=groups)

# Weighted ranking: LightGBM weighs each query's NDCG/MAP by the mean weight of
# its rows (weights vary within queries here, so a first-row or sum rule fails).
rweight = rng.integers(1, 5, size=m).astype(float)
lg = lgb_eval(rel, rscore, {"objective": "lambdarank", "metric": ["ndcg", "map"], "eval_at": ks}, group=groups, weight=rweight)
for kk in (3, 10):
    add(f"ndcg@{kk} weighted", "ndcg", lg[f"ndcg@{kk}"], LG, label=rel, score=rscore, groups=groups, k=kk, weight=rweight)
    add(f"map@{kk} weighted", "map", lg[f"map@{kk}"], LG, label=rel, score=rscore, groups=groups, k=kk, weight=rweight)

with open(sys.argv[1], "w") as f:
    json.dump({"generated_by": "internal/modeling/ml/testdata/gen/metrics_parity.py", "cases": cases}, f, indent=1)
    f.write("\n")
