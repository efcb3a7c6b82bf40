"""LightGBM (and XGBoost) on the data and parameters bench/gbdt/main.go hands
over: trains, times training (Dataset construction included, as Atrium's time
includes binning) and batch prediction, and scores the test rows. Prints a
JSON list of results on stdout.
"""
import json
import os
import sys
import time

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score


def load(prefix):
    X = np.load(prefix + ".X.npy")
    y = np.load(prefix + ".y.npy")
    try:
        g = np.load(prefix + ".group.npy")
    except FileNotFoundError:
        g = None
    with open(prefix + ".meta.json") as f:
        cats = json.load(f)["categorical"] or []
    return X, y, g, cats


def ndcg10(y, score, group):
    ds = lgb.Dataset(np.zeros((len(y), 1)), y, group=group, init_score=score, params={"verbose": -1})
    b = lgb.Booster({"objective": "lambdarank", "metric": "ndcg", "eval_at": [10], "verbose": -1}, ds)
    return b.eval_train()[0][2]


def main():
    cfg = json.loads(sys.argv[1])
    task, params, repeat = cfg["task"], dict(cfg["params"]), cfg["repeat"]
    d = cfg["dir"]
    X, y, g, cats = load(f"{d}/{task}.train")
    Xt, yt, gt, _ = load(f"{d}/{task}.test")
    # Prediction input in the layout LightGBM reads without a copy.
    Xt = np.ascontiguousarray(Xt)
    threads = int(params["num_threads"])
    rounds = int(params.pop("num_iterations"))
    metric = cfg["metric"]

    def measure(name, fit, predict):
        t, c = time.perf_counter(), os.times()
        model = fit()
        train_s = time.perf_counter() - t
        c2 = os.times()
        cpu_s = (c2.user - c.user) + (c2.system - c.system)
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            p = predict(model)
            best = min(best, time.perf_counter() - t)
        value = roc_auc_score(yt, p) if metric == "auc" else ndcg10(yt, p, gt)
        return {"library": name, "train_seconds": train_s, "train_cpu_seconds": cpu_s, "predict_seconds": best, "metric": metric, "value": float(value)}

    lparams = dict(params, verbose=-1)
    results = [measure(
        "lightgbm " + lgb.__version__,
        lambda: lgb.train(lparams, lgb.Dataset(X, y, group=g, categorical_feature=cats), rounds),
        lambda b: b.predict(Xt, num_threads=threads),
    )]
    if cfg.get("xgboost"):
        import xgboost as xgb

        types = ["c" if j in cats else "q" for j in range(X.shape[1])]
        xparams = {
            "objective": "binary:logistic", "tree_method": "hist", "grow_policy": "lossguide",
            "max_leaves": int(params["num_leaves"]), "max_depth": 0, "eta": float(params["learning_rate"]),
            "max_bin": int(params["max_bin"]), "nthread": threads, "seed": 1, "max_cat_to_onehot": 4,
        }
        results.append(measure(
            "xgboost " + xgb.__version__,
            lambda: xgb.train(xparams, xgb.DMatrix(X, y, feature_types=types, enable_categorical=True, nthread=threads), rounds),
            lambda b: b.predict(xgb.DMatrix(Xt, feature_types=types, enable_categorical=True, nthread=threads)),
        ))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
