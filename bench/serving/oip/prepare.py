"""Model and rows of bench/serving/oip: a LightGBM binary model of 300 trees
on 30 numeric features (a few missing values), and 200 rows to score.

    prepare.py DIR

writes DIR/model.txt (Booster.save_model), DIR/rows.json (the 200 x 30 rows,
row-major) and DIR/pred.json (Booster.predict of
them). With MLFLOW_TRACKING_URI set (an `atrium serve`), it also logs the
Booster with mlflow.lightgbm.log_model as registered model "bench-oip" and
points its alias champion at the version: the user's path to serving.
"""
import json
import os
import sys

import lightgbm as lgb
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(7)
n, f = 5_000, 30
X = rng.normal(size=(n, f))
X[rng.random((n, f)) < 0.02] = np.nan
logit = np.nansum(X[:, :10] * np.linspace(1, 0.1, 10), axis=1) + np.sin(np.nan_to_num(X[:, 10]) * 2)
y = (logit + rng.normal(0, 0.5, n) > 0).astype(int)
booster = lgb.train({"objective": "binary", "num_leaves": 31, "learning_rate": 0.05, "verbose": -1, "seed": 1},
                    lgb.Dataset(X, y), num_boost_round=300)
assert booster.num_trees() == 300, booster.num_trees()
booster.save_model(os.path.join(out, "model.txt"))
# The scored rows have no missing value: OIP's JSON has no NaN literal, and
# MLServer takes none.
rows = rng.normal(size=(200, f))
with open(os.path.join(out, "rows.json"), "w") as fh:
    json.dump([[float(v) for v in r] for r in rows], fh)
with open(os.path.join(out, "pred.json"), "w") as fh:
    json.dump([float(p) for p in booster.predict(rows)], fh)
print(f"prepare: 300 trees x {f} features, 200 rows -> {out}")

if os.environ.get("MLFLOW_TRACKING_URI"):
    import mlflow
    from mlflow import MlflowClient
    import pandas as pd
    cols = [f"f{i:02d}" for i in range(f)]
    with mlflow.start_run():
        mlflow.lightgbm.log_model(booster, name="model", registered_model_name="bench-oip",
                                  input_example=pd.DataFrame(rows[:2], columns=cols),
                                  pip_requirements=["lightgbm"])  # no requirement inference (a slow subprocess)
    client = MlflowClient()
    v = max(int(m.version) for m in client.search_model_versions("name='bench-oip'"))
    client.set_registered_model_alias("bench-oip", "champion", str(v))
    print(f"prepare: registered bench-oip version {v} as champion")
