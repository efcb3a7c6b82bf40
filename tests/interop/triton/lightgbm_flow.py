"""tritonclient against a LightGBM model registered in Atrium's registry and
served by its serving layer, predictions compared to LightGBM's own.

  lightgbm_flow.py save DIR          train a 300-tree binary model on 30
                                     features, save it with
                                     mlflow.lightgbm.save_model to DIR/model
  lightgbm_flow.py check DIR HTTP GRPC NAME VERSION
                                     score 200 rows (with NaN) through
                                     tritonclient http (binary and JSON) and
                                     grpc; compare to Booster.predict at 1e-6
"""
import os
import sys

import numpy as np

rng = np.random.default_rng(7)


def rows(n):
    x = rng.normal(size=(n, 30))
    x[rng.random(size=x.shape) < 0.05] = np.nan  # missing values
    return x


if sys.argv[1] == "save":
    import lightgbm as lgb
    import mlflow.lightgbm

    x = rows(2000)
    y = (np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2]) + rng.normal(size=2000) > 0).astype(int)
    booster = lgb.train({"objective": "binary", "num_leaves": 15, "verbose": -1}, lgb.Dataset(x, y), num_boost_round=300)
    mlflow.lightgbm.save_model(booster, os.path.join(sys.argv[2], "model"))
    sys.exit(0)

import lightgbm as lgb
import tritonclient.grpc as tg
import tritonclient.http as th

out_dir, http_url, grpc_url, name, version = sys.argv[2:7]
booster = lgb.Booster(model_file=os.path.join(out_dir, "model", "model.lgb"))
x = rows(200)
want = booster.predict(x)


def check(got, what):
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-6, atol=0):
        worst = np.max(np.abs(got - want) / np.abs(want)) if got.shape == want.shape else None
        raise AssertionError(f"{what}: predictions differ from Booster.predict (worst relative {worst})")


c = th.InferenceServerClient(http_url)
for dtype, datatype in ((np.float64, "FP64"), (np.float32, "FP32")):
    xs = x.astype(dtype)
    want = booster.predict(xs.astype(np.float64))
    for binary in (True, False):
        inp = th.InferInput("input", list(xs.shape), datatype)
        inp.set_data_from_numpy(xs, binary_data=binary)
        r = c.infer(name, [inp])
        check(r.as_numpy("predict"), f"http {datatype} binary={binary}")
        assert r.get_response()["model_version"] == version, r.get_response()
        out = th.InferRequestedOutput("predict", binary_data=binary)
        r = c.infer(name, [inp], model_version=version, outputs=[out])
        check(r.as_numpy("predict"), f"http {datatype} version {version} binary={binary}")

    g = tg.InferenceServerClient(grpc_url)
    inp = tg.InferInput("input", list(xs.shape), datatype)
    inp.set_data_from_numpy(xs)
    r = g.infer(name, [inp])
    check(r.as_numpy("predict"), f"grpc {datatype}")
    assert r.get_response().model_version == version
print("ok")
