"""Golden model files written by the real LightGBM and XGBoost.

Run with the interop virtualenv from internal/modeling/modelfile:
    $ATRIUM_TEST_PYTHON testdata/gen/golden.py testdata
It writes, for each case, the model file(s), the rows to predict
(golden_data.csv: feature columns, empty = NaN) and the peer's own
predictions (CASE.pred.json), which the Go tests must reproduce to 1e-6.
"""
import json
import os
import sys

import lightgbm as lgb
import numpy as np

try:
    import xgboost as xgb
except ImportError:  # the LightGBM goldens do not need it
    xgb = None

out = sys.argv[1]
rng = np.random.default_rng(7)
n = 400
X = rng.normal(size=(n, 4)).astype(np.float32).astype(np.float64)
X[:, 3] = rng.integers(0, 6, size=n)  # categorical codes
X[rng.random(n) < 0.1, 0] = np.nan
X[rng.random(n) < 0.05, 3] = np.nan
f = X[:, 1] * 1.5 - np.nan_to_num(X[:, 0], nan=1.0) + (X[:, 3] == 2) - 0.5 * (X[:, 3] == 4)
y_bin = (f + rng.normal(size=n) > 0).astype(float)
y_reg = f * 3 + rng.normal(size=n)
y_multi = np.digitize(f + rng.normal(scale=0.5, size=n), [-1, 0.5]).astype(float)

# Rows to predict: the first 60 training rows plus edge values.
P = X[:60].copy()
P[0] = [np.nan, np.nan, np.nan, np.nan]
P[1] = [0, 0, 0, 17]  # unseen category
P[2] = [1e30, -1e30, 5, -3]  # negative category
np.savetxt(os.path.join(out, "golden_data.csv"), P, delimiter=",", fmt="%.9g",
           header="x0,x1,x2,c3", comments="")
with open(os.path.join(out, "golden_data.csv")) as fh:
    text = fh.read().replace("nan", "")
with open(os.path.join(out, "golden_data.csv"), "w") as fh:
    fh.write(text)

def dump(name, pred, source):
    with open(os.path.join(out, name + ".pred.json"), "w") as fh:
        json.dump({"source": source, "pred": [float(v) for v in np.ravel(pred)]}, fh)

LG = "lightgbm " + lgb.__version__
names = ["x0", "x1", "x2", "c3"]
for name, params, y in [
    ("lightgbm_binary", {"objective": "binary"}, y_bin),
    ("lightgbm_regression", {"objective": "regression"}, y_reg),
    ("lightgbm_multiclass", {"objective": "multiclass", "num_class": 3}, y_multi),
]:
    ds = lgb.Dataset(X, y, feature_name=names, categorical_feature=[3], params={"min_data_per_group": 5, "cat_smooth": 1})
    b = lgb.train(dict(params, verbose=-1, num_leaves=8, min_data_in_leaf=5, min_data_per_group=5, cat_smooth=1), ds, 8)
    b.save_model(os.path.join(out, name + ".txt"))
    dump(name, b.predict(P), LG)

if xgb is not None:
    XG = "xgboost " + xgb.__version__
    for name, params, y in [
        ("xgboost_binary", {"objective": "binary:logistic"}, y_bin),
        ("xgboost_regression", {"objective": "reg:squarederror"}, y_reg),
        ("xgboost_multiclass", {"objective": "multi:softprob", "num_class": 3}, y_multi),
    ]:
        d = xgb.DMatrix(X[:, :3], y, feature_names=names[:3])
        b = xgb.train(dict(params, max_depth=3, tree_method="hist", seed=1), d, 8)
        b.save_model(os.path.join(out, name + ".json"))
        b.save_model(os.path.join(out, name + ".ubj"))
        dump(name, b.predict(xgb.DMatrix(P[:, :3], feature_names=names[:3])), XG)
    # Categorical splits (pandas-free: enable_categorical with feature types).
    d = xgb.DMatrix(X, y_bin, feature_names=names, feature_types=["q", "q", "q", "c"], enable_categorical=True)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 3, "tree_method": "hist", "max_cat_to_onehot": 1, "seed": 1}, d, 8)
    b.save_model(os.path.join(out, "xgboost_categorical.json"))
    Pc = P.copy()
    Pc[1, 3] = np.nan  # XGBoost rejects unseen categories at prediction
    Pc[2, 3] = np.nan
    dump("xgboost_categorical", b.predict(xgb.DMatrix(Pc, feature_names=names, feature_types=["q", "q", "q", "c"], enable_categorical=True)), XG)
