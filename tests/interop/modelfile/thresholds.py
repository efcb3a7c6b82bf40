"""Threshold parity cases, predicted by the real LightGBM and XGBoost.

Usage: python thresholds.py OUTDIR

For each model it writes the model file(s), NAME.data.csv (rows to predict:
training-like rows with one feature set, for every split threshold of the
model, to the threshold, the doubles next to it, its float32 neighbours and
values between the threshold and its float32 rounding; empty = NaN; 17
significant digits, so the doubles read back exactly) and NAME.pred.json:
the peer's raw scores ("raw", as doubles) and leaves ("leaf", rows x trees).
For XGBoost, "raw" is the base margin plus the chosen leaves' values summed
in float64 (XGBoost itself sums in float32), so equal raw scores to 1e-12
mean the same leaves. The Go tests (internal/modeling/modelfile, from the
committed copy under testdata/thresholds, and tests/interop/modelfile,
freshly) must reproduce them.
"""
import json
import math
import os
import sys

import lightgbm as lgb
import numpy as np
import xgboost as xgb

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
KZ = float(np.float32(1e-35))  # LightGBM's kZeroThreshold


def f32_neighbours(t):
    f = np.float32(t)
    return [float(f), float(np.nextafter(f, np.float32(np.inf))), float(np.nextafter(f, np.float32(-np.inf)))]


def around(t):
    """Values at and next to double t, its float32 neighbours, and between."""
    t = float(t)
    vals = [t, float(np.nextafter(t, np.inf)), float(np.nextafter(t, -np.inf))] + f32_neighbours(t)
    f = float(np.float32(t))
    if f != t:
        vals.append(t + (f - t) / 2)
    # The edges of float32 rounding around t (what XGBoost's rounding turns on).
    lo = float(np.nextafter(np.float32(t), np.float32(-np.inf)))
    for a, b in [(lo, f), (f, float(np.nextafter(np.float32(t), np.float32(np.inf))))]:
        m = a / 2 + b / 2
        vals += [m, float(np.nextafter(m, np.inf)), float(np.nextafter(m, -np.inf))]
    return [v for v in vals if math.isfinite(v)]


def probes(X, splits, extra):
    """Rows: for each (feature, threshold), a training row with the feature
    set to each value around the threshold; then the extra values."""
    rows = []
    for f, t in splits:
        for v in around(t) + extra:
            r = X[rng.integers(len(X))].copy()
            r[f] = v
            rows.append(r)
    return np.array(rows)


def write_csv(path, names, P):
    with open(path, "w") as fh:
        fh.write(",".join(names) + "\n")
        for r in P:
            fh.write(",".join("" if math.isnan(v) else repr(float(v)) for v in r) + "\n")


def dump(name, raw, leaf, source):
    with open(os.path.join(out, name + ".pred.json"), "w") as fh:
        json.dump({"source": source, "raw": [float(v) for v in np.ravel(raw)],
                   "leaf": np.asarray(leaf).astype(int).tolist()}, fh)


# Training data: doubles that are not float32 values, a feature with many
# exact zeros (LightGBM then splits at +-kZeroThreshold), missing values.
n = 3000
X = rng.normal(size=(n, 4)) * np.array([1, 3, 1e-3, 1])
X[:, 2] = np.where(rng.random(n) < 0.4, 0.0, X[:, 2])
X[rng.random(n) < 0.08, 0] = np.nan
X[:, 3] = rng.integers(0, 8, size=n)
f = X[:, 1] - 2 * np.nan_to_num(X[:, 0], nan=-1) + 400 * X[:, 2] + (X[:, 3] == 5) - (X[:, 3] == 2)
y_bin = (f + rng.normal(size=n) > 0).astype(float)
y_reg = f + rng.normal(size=n) * 0.3
names = ["x0", "x1", "x2", "c3"]
zero_band = [0.0, -0.0, 5e-36, -5e-36, KZ, -KZ, 1e-35, -1e-35, 1e-40, -1e-40, float("nan")]
LG = "lightgbm " + lgb.__version__

for name, obj, y in [("lgb_binary", "binary", y_bin), ("lgb_regression", "regression", y_reg)]:
    ds = lgb.Dataset(X, y, feature_name=names, categorical_feature=[3], free_raw_data=False)
    b = lgb.train({"objective": obj, "verbose": -1, "num_leaves": 8, "min_data_in_leaf": 20, "seed": 1}, ds, 6)
    b.save_model(os.path.join(out, name + ".txt"))
    dump_model = b.dump_model()
    splits = []

    def walk(node):
        if "split_feature" not in node:
            return
        if node["decision_type"] == "<=":
            splits.append((node["split_feature"], node["threshold"]))
        walk(node["left_child"])
        walk(node["right_child"])

    for t in dump_model["tree_info"]:
        walk(t["tree_structure"])
    P = probes(X, splits, zero_band + [np.inf, -np.inf])
    cats = [-0.5, -1, 0, 2.9999999999, 3.5, 5, 1e10, -1e-40, float("nan")]
    Pc = np.repeat(X[:len(cats)], 1, axis=0).copy()
    Pc[:, 3] = cats
    P = np.vstack([P, Pc])
    write_csv(os.path.join(out, name + ".data.csv"), names, P)
    dump(name, b.predict(P, raw_score=True), b.predict(P, pred_leaf=True), LG)

# A hand-written LightGBM model with the nodes training rarely makes:
# thresholds inside LightGBM's zero band, zero as missing, -kZeroThreshold
# exactly, and a categorical split (negative and fractional codes).
def hand_tree(i, feature, threshold, decision_type, value, cat=""):
    """One two-leaf tree block of LightGBM's text format."""
    return f"""Tree={i}
num_leaves=2
num_cat={1 if cat else 0}
split_feature={feature}
split_gain=1
threshold={threshold}
decision_type={decision_type}
left_child=-1
right_child=-2
leaf_value={value} {2 * value}
leaf_weight=1 1
leaf_count=1 1
internal_value=0
internal_weight=0
internal_count=2
{cat}is_linear=0
shrinkage=1

"""


# decision_type bits: 1 categorical, 2 default left, 4 missing Zero, 8 missing NaN.
hand = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\n" \
    "objective=regression\nfeature_names=a c\nfeature_infos=[-1:1] -1:0:3\n\n" + "".join([
        hand_tree(0, 0, "5.0000000000000002e-36", 0, 1),
        hand_tree(1, 0, "-5.0000000000000002e-36", 2, 10),
        hand_tree(2, 0, "0.10000000000000001", 6, 100),
        hand_tree(3, 0, "-1.0000000180025095e-35", 8, 1000),
        hand_tree(4, 1, "0", 9, 10000, cat="cat_boundaries=0 1\ncat_threshold=9\n"),  # categories 0 and 3
    ]) + "end of trees\n"
b = lgb.Booster(model_str=hand)
b.save_model(os.path.join(out, "lgb_hand.txt"))
vals = zero_band + around(0.1) + around(-KZ) + around(KZ) + around(5e-36) + [np.inf, -np.inf]
cats = [-0.5, -1, -1.5, 0, 0.99, 2.9999999999, 3, 3.5, 4, 1e10, 2.0**31, -1e-40, float("nan")]
P = np.array([[a, c] for a in vals for c in cats])
write_csv(os.path.join(out, "lgb_hand.data.csv"), ["a", "c"], P)
dump("lgb_hand", b.predict(P, raw_score=True), b.predict(P, pred_leaf=True), LG)

# XGBoost: float32 inputs, "<" against float32 split conditions.
XG = "xgboost " + xgb.__version__
Xn = X[:, :3]
for name, obj, y in [("xgb_binary", "binary:logistic", y_bin), ("xgb_regression", "reg:squarederror", y_reg)]:
    d = xgb.DMatrix(Xn, y, feature_names=names[:3])
    b = xgb.train({"objective": obj, "max_depth": 3, "tree_method": "hist", "seed": 1}, d, 6)
    b.save_model(os.path.join(out, name + ".json"))
    b.save_model(os.path.join(out, name + ".ubj"))
    model = json.loads(b.save_raw("json"))
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    splits = []
    for t in trees:
        for i, left in enumerate(t["left_children"]):
            if left != -1:
                splits.append((t["split_indices"][i], t["split_conditions"][i]))
    P = probes(Xn, splits, zero_band)
    write_csv(os.path.join(out, name + ".data.csv"), names[:3], P)
    dm = xgb.DMatrix(P, feature_names=names[:3])
    leaf = b.predict(dm, pred_leaf=True).astype(int)
    # XGBoost's leaf values and base score are float32 values; JSON prints
    # the shortest decimal of each, so round back to the float32 itself.
    base = float(np.float32(model["learner"]["learner_model_param"]["base_score"].strip("[]")))
    margin = math.log(base / (1 - base)) if obj == "binary:logistic" else base
    raw = [margin + sum(float(np.float32(trees[j]["split_conditions"][leaf[r, j]])) for j in range(len(trees)))
           for r in range(len(P))]
    # XGBoost's own float32 margins agree to float32 rounding.
    own = b.predict(dm, output_margin=True)
    assert np.allclose(own, raw, rtol=1e-5, atol=1e-5), "leaf sums disagree with XGBoost's margins"
    dump(name, raw, leaf, XG)
# XGBoost categorical splits: the code is the float32 rounding of the value
# (4.9999999 is category 5), negative values are "not in the set".
types = ["q", "q", "q", "c"]
y_cat = (2.0 * np.isin(X[:, 3], [2, 5]) + 0.3 * X[:, 1] + rng.normal(size=n) > 1).astype(float)
d = xgb.DMatrix(X, y_cat, feature_names=names, feature_types=types, enable_categorical=True)
b = xgb.train({"objective": "binary:logistic", "max_depth": 3, "tree_method": "hist", "max_cat_to_onehot": 1,
               "seed": 1}, d, 6)
b.save_model(os.path.join(out, "xgb_categorical.json"))
b.save_model(os.path.join(out, "xgb_categorical.ubj"))
model = json.loads(b.save_raw("json"))
trees = model["learner"]["gradient_booster"]["model"]["trees"]
splits = []
for t in trees:
    for i, left in enumerate(t["left_children"]):
        if left != -1 and t["split_type"][i] == 0:
            splits.append((t["split_indices"][i], t["split_conditions"][i]))
P = probes(X, splits, [float("nan")])
cats = [0, 1.9999999, 2, 2.5, 4.9999999999, 5, 6.9999, 7, -0.5, -1e-46, -1, float("nan")]
Pc = np.repeat(X[:40], len(cats), axis=0)
Pc[:, 3] = cats * 40
P = np.vstack([P, Pc])
write_csv(os.path.join(out, "xgb_categorical.data.csv"), names, P)
dm = xgb.DMatrix(P, feature_names=names, feature_types=types, enable_categorical=True)
leaf = b.predict(dm, pred_leaf=True).astype(int)
base = float(np.float32(model["learner"]["learner_model_param"]["base_score"].strip("[]")))
raw = [math.log(base / (1 - base)) + sum(float(np.float32(trees[j]["split_conditions"][leaf[r, j]]))
                                          for j in range(len(trees))) for r in range(len(P))]
assert np.allclose(b.predict(dm, output_margin=True), raw, rtol=1e-5, atol=1e-5)
dump("xgb_categorical", raw, leaf, XG)
print("wrote", out)
