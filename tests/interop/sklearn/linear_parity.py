"""Fits scikit-learn linear models on generated data and writes what Atrium must match.

Usage: python linear_parity.py OUT_DIR [SEED]

Writes OUT_DIR/<case>.csv (the data, float32-exact values so both sides read the
same numbers) and OUT_DIR/expected.json: per case the data file, label and weight
columns, the Atrium parameters equivalent to the scikit-learn estimator (see
internal/modeling/linear: lambda = 1/(C*W) for LogisticRegression, split by
l1_ratio for the elastic net; alpha/W for Ridge, alpha for Lasso, alpha*l1_ratio
and alpha*(1-l1_ratio) for ElasticNet), and scikit-learn's coefficients by Atrium input name,
intercepts and predictions (rows x outputs).

Preprocessing is Atrium's: numeric columns standardised with the population
standard deviation of the non-missing values, missing values then 0 (the mean);
categorical columns one-hot encoded, missing = all zeros.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["x1", "x2", "x3", "x4"]
CATEGORICAL = ["hood"]
HOODS = np.array(["east", "north", "south"])  # sorted, as Atrium orders categories


def make_data(rng, n, task):
    x = rng.normal(size=(n, len(NUMERIC))) * np.array([1.0, 3.0, 0.5, 10.0]) + np.array([0.0, 5.0, -1.0, 100.0])
    x = x.astype(np.float32).astype(np.float64)
    hood = rng.integers(0, 3, size=n)
    missing = rng.random(n) < 0.05
    x[missing, 1] = np.nan  # x2 has missing values
    xs = (x - np.nanmean(x, axis=0)) / np.nanstd(x, axis=0)
    xs = np.nan_to_num(xs)
    m = xs @ np.array([1.0, -2.0, 0.5, 0.0]) + np.array([0.3, -0.6, 0.0])[hood]
    if task == "regression":
        y = 3 * m + 1 + rng.normal(size=n)
    elif task == "binary":
        y = (rng.random(n) < 1 / (1 + np.exp(-m))).astype(float)
    else:
        logits = np.stack([m, -m, 0.5 * m + np.where(hood == 2, 1.0, 0.0)], axis=1)
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.array([rng.choice(3, p=row) for row in p], dtype=float)
    w = rng.uniform(0.5, 2.0, size=n).astype(np.float32).astype(np.float64)
    return x, HOODS[hood], y, w


def write_csv(path, x, hood, y, w):
    """Writes the data; the weight column only when w is not None."""
    with open(path, "w") as f:
        f.write(",".join(NUMERIC + CATEGORICAL + ["y"] + (["w"] if w is not None else [])) + "\n")
        for i in range(len(y)):
            nums = ["" if np.isnan(v) else repr(float(np.float32(v))) for v in x[i]]
            weight = [repr(float(np.float32(w[i])))] if w is not None else []
            f.write(",".join(nums + [hood[i], repr(float(y[i]))] + weight) + "\n")


def preprocessor():
    numeric = make_pipeline(StandardScaler(), SimpleImputer(strategy="constant", fill_value=0.0))
    return ColumnTransformer([("num", numeric, [0, 1, 2, 3]), ("cat", OneHotEncoder(handle_unknown="ignore"), [4])])


def atrium_names():
    return NUMERIC + [f"hood={h}" for h in HOODS]


CASES = [
    # name, task, n, estimator factory(W) -> (estimator, atrium params), weighted
    ("binary_l2", "binary", 400, lambda W: (LogisticRegression(C=0.5, tol=1e-12, max_iter=100000),
                                            {"objective": "binary", "lambda_l2": repr(float(1 / (0.5 * W)))}), False),
    ("binary_default_weighted", "binary", 400, lambda W: (LogisticRegression(tol=1e-12, max_iter=100000),
                                                          {"objective": "binary"}), True),
    ("multiclass_l2", "multiclass", 450, lambda W: (LogisticRegression(C=2.0, tol=1e-12, max_iter=100000),
                                                    {"objective": "multiclass", "lambda_l2": repr(float(1 / (2.0 * W)))}), False),
    ("binary_l1", "binary", 400, lambda W: (LogisticRegression(C=0.05, l1_ratio=1.0, solver="saga", tol=1e-13, max_iter=1000000),
                                            {"objective": "binary", "lambda_l1": repr(float(1 / (0.05 * W))), "lambda_l2": "0", "tol": "1e-10"}), False),
    # Without a penalty the one-hot columns and the intercept are collinear: the
    # coefficients are not unique, the predictions are (compare those only).
    ("binary_elasticnet", "binary", 400, lambda W: (LogisticRegression(C=0.1, l1_ratio=0.5, solver="saga", tol=1e-13, max_iter=1000000),
                                                    {"objective": "binary", "lambda_l1": repr(float(0.5 / (0.1 * W))),
                                                     "lambda_l2": repr(float(0.5 / (0.1 * W))), "tol": "1e-10"}), False),
    ("regression_elasticnet", "regression", 300, lambda W: (ElasticNet(alpha=0.3, l1_ratio=0.7, tol=1e-14, max_iter=1000000),
                                                            {"objective": "regression", "lambda_l1": repr(0.3 * 0.7),
                                                             "lambda_l2": repr(0.3 * 0.3), "tol": "1e-10"}), False),
    ("regression_ols", "regression", 300, lambda W: (LinearRegression(), {"objective": "regression"}), False),
    ("regression_ridge", "regression", 300, lambda W: (Ridge(alpha=30.0, tol=1e-12),
                                                       {"objective": "regression", "lambda_l2": repr(float(30.0 / W))}), True),
    ("regression_lasso", "regression", 300, lambda W: (Lasso(alpha=0.2, tol=1e-14, max_iter=1000000),
                                                       {"objective": "regression", "lambda_l1": "0.2", "lambda_l2": "0", "tol": "1e-10"}), False),
]


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 20261125)
    cases = []
    for name, task, n, factory, weighted in CASES:
        x, hood, y, w = make_data(rng, n, task)
        write_csv(out / f"{name}.csv", x, hood, y, w if weighted else None)
        W = w.sum() if weighted else float(n)
        est, params = factory(W)
        pre = preprocessor()
        X = pre.fit_transform(np.column_stack([x, hood]).astype(object))
        X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a ConvergenceWarning would make the reference wrong
            est.fit(X, y, sample_weight=w if weighted else None)
        coef = np.atleast_2d(est.coef_)
        intercept = np.atleast_1d(est.intercept_)
        if task == "regression":
            pred = est.predict(X).reshape(-1, 1)
        elif task == "binary":
            pred = est.predict_proba(X)[:, 1:]
        else:
            pred = est.predict_proba(X)
        cases.append({
            "name": name, "data": f"{name}.csv", "label": "y", "weight": "w" if weighted else "",
            "params": params, "inputs": atrium_names(),
            "coef": coef.tolist(), "intercept": intercept.tolist(), "unique_coef": name != "regression_ols", "predictions": pred.tolist(),
        })
    (out / "expected.json").write_text(json.dumps({"sklearn": __import__("sklearn").__version__, "cases": cases}, indent=1) + "\n")


if __name__ == "__main__":
    main()
