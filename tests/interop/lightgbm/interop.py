"""Cross-checks Atrium's gradient-boosted trees with the real LightGBM.

Driven by lightgbm_test.go, which writes, per case, in DIR:
  CASE.train.csv, CASE.valid.csv  data (categorical columns hold codes; empty = NaN)
  CASE.*.query                    query sizes (lambdarank)
  CASE.atrium.txt                 Atrium's model as LightGBM text
  CASE.atrium.pred                Atrium's predictions on the validation rows
and cases.json (name, params, categorical columns, metric). For each case this
script:
  1. loads Atrium's model with lightgbm.Booster and predicts the validation
     rows (result: the largest difference from Atrium's own predictions);
  2. trains LightGBM on the same rows with the same parameters, saves the
     model (CASE.lightgbm.txt) and its predictions (CASE.lightgbm.pred) for
     the Go side to read back;
  3. saves LightGBM's SHAP values (pred_contrib) for the same rows
     (CASE.lightgbm.contrib);
  4. scores both models' validation predictions with the case's metric;
  5. for cases marked "xgboost", trains XGBoost too and saves its model as
     JSON and UBJSON (CASE.xgboost.json/.ubj) with its predictions
     (CASE.xgboost.pred) for the Go side to read back.
Results go to results.json.
"""
import json
import os
import sys

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn import metrics


def load(path, categorical):
    df = pd.read_csv(path)
    y = df.pop("label").to_numpy(dtype=np.float64)
    # Atrium's data is float32: round-trip through it so both sides see the
    # same values.
    df = df.astype(np.float32).astype(np.float64)
    for c in categorical:
        df[c] = df[c].astype("float64")
    q = path[: -len(".csv")] + ".query"
    group = np.loadtxt(q, dtype=np.int64, ndmin=1) if os.path.exists(q) else None
    return df, y, group


def ndcg_at(y, score, group, k):
    # LightGBM's own NDCG (its conventions), via a Booster whose scores are
    # the init_score of the data it evaluates.
    x = np.zeros((len(y), 1))
    ds = lgb.Dataset(x, y, group=group, init_score=score, params={"verbose": -1})
    b = lgb.Booster({"objective": "lambdarank", "metric": "ndcg", "eval_at": [k], "verbose": -1}, ds)
    return b.eval_train()[0][2]


def score(case, y, pred, group):
    m = case["metric"]
    if m == "auc":
        return metrics.roc_auc_score(y, pred)
    if m == "multi_logloss":
        return metrics.log_loss(y, pred.reshape(len(y), -1), labels=list(range(case["num_class"])))
    if m == "l2":
        return metrics.mean_squared_error(y, pred)
    if m == "l1":
        return metrics.mean_absolute_error(y, pred)
    if m.startswith("ndcg@"):
        return ndcg_at(y, pred, group, int(m[5:]))
    raise ValueError(m)


def main(d):
    with open(os.path.join(d, "cases.json")) as f:
        cases = json.load(f)
    results = {"lightgbm_version": lgb.__version__}
    for case in cases:
        name = case["name"]
        cat = case["categorical"]
        X, y, g = load(os.path.join(d, name + ".train.csv"), cat)
        Xv, yv, gv = load(os.path.join(d, name + ".valid.csv"), cat)
        ours = np.loadtxt(os.path.join(d, name + ".atrium.pred"), ndmin=1)

        loaded = lgb.Booster(model_file=os.path.join(d, name + ".atrium.txt"))
        p_loaded = loaded.predict(Xv.to_numpy()).ravel()

        params = dict(case["params"], verbose=-1)
        train = lgb.Dataset(X, y, group=g, categorical_feature=cat or "auto", free_raw_data=False)
        booster = lgb.train(params, train, num_boost_round=int(params.pop("num_iterations")))
        booster.save_model(os.path.join(d, name + ".lightgbm.txt"))
        p_lgb = booster.predict(Xv.to_numpy())
        np.savetxt(os.path.join(d, name + ".lightgbm.pred"), p_lgb.ravel(), fmt="%.17g")
        contrib = booster.predict(Xv.to_numpy(), pred_contrib=True)
        np.savetxt(os.path.join(d, name + ".lightgbm.contrib"), np.ravel(contrib), fmt="%.17g")

        xgb_objective = {"binary": "binary:logistic", "regression": "reg:squarederror",
                         "multiclass": "multi:softprob"}.get(case["params"]["objective"])
        if xgb_objective and case.get("xgboost"):
            import xgboost as xgb

            cols = list(X.columns)
            types = ["c" if c in cat else "q" for c in cols]
            xp = {"objective": xgb_objective, "tree_method": "hist", "max_depth": 4, "seed": 1, "max_cat_to_onehot": 1}
            if xgb_objective == "multi:softprob":
                xp["num_class"] = case["num_class"]
            dx = xgb.DMatrix(X.to_numpy(), y, feature_names=cols, feature_types=types, enable_categorical=True)
            xb = xgb.train(xp, dx, 20)
            xb.save_model(os.path.join(d, name + ".xgboost.json"))
            xb.save_model(os.path.join(d, name + ".xgboost.ubj"))
            dv = xgb.DMatrix(Xv.to_numpy(), feature_names=cols, feature_types=types, enable_categorical=True)
            np.savetxt(os.path.join(d, name + ".xgboost.pred"), xb.predict(dv).ravel(), fmt="%.17g")

        results[name] = {
            "load_max_diff": float(np.abs(p_loaded - ours).max()),
            "atrium_metric": float(score(case, yv, ours, gv)),
            "lightgbm_metric": float(score(case, yv, p_lgb.ravel(), gv)),
        }
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
