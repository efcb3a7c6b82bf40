"""A model registered by `atrium fit --register`, read with the real clients.

    fit_register_flow.py MODEL_TXT DATA_CSV GRPC_ADDR

MlflowClient sees version 1 of "churn" behind the alias champion, tagged
atrium.feature_service=churn_v1, from a FINISHED run of the experiment
"churn" holding the fit's params and metrics; mlflow.artifacts downloads its
model directory (MLmodel of the atrium flavor, with a signature naming the
features, and model.lgb under the lightgbm and python_function flavors,
which mlflow.lightgbm and mlflow.pyfunc load). tritonclient[http] (binary data, then JSON) and
tritonclient[grpc] infer through the alias, equal to LightGBM's
Booster.predict of MODEL_TXT (the same fit, as LightGBM text) to 1e-6.
"""
import json
import os
import sys

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import mlflow.pyfunc
import numpy as np
import pandas as pd
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import yaml
from mlflow import MlflowClient

model_txt, data_csv, grpc_addr = sys.argv[1:4]
url = os.environ["MLFLOW_TRACKING_URI"]
client = MlflowClient()

v = client.get_model_version_by_alias("churn", "champion")
assert v.version == "1", v
assert v.tags.get("atrium.feature_service") == "churn_v1", v.tags
assert v.source == f"runs:/{v.run_id}/model", v.source
run = client.get_run(v.run_id)
assert run.info.status == "FINISHED", run.info
assert client.get_experiment(run.info.experiment_id).name == "churn"
assert run.data.params["task"] == "binary" and run.data.params["label"] == "y", run.data.params
assert run.data.params["num_iterations"] == "20", run.data.params
assert "valid_binary_logloss" in run.data.metrics and run.data.metrics["train_rows"] > 0, run.data.metrics
print(f"MlflowClient: churn@champion is version 1 of run {v.run_id}, params and metrics {sorted(run.data.metrics)}")

local = mlflow.artifacts.download_artifacts("models:/churn@champion")
mlm = yaml.safe_load(open(os.path.join(local, "MLmodel")))
assert mlm["flavors"]["atrium"]["data"] == "model.json", mlm
names = [c["name"] for c in json.loads(mlm["signature"]["inputs"])]
assert names == ["x1", "x2"], names
assert os.path.getsize(os.path.join(local, "model.json")) > 0
print(f"mlflow.artifacts: the model directory has {sorted(os.listdir(local))}, flavor atrium, inputs {names}")

df = pd.read_csv(data_csv)
X = df[names].to_numpy(dtype=np.float64)
want = lgb.Booster(model_file=model_txt).predict(X)


def check(what, got):
    got = np.asarray(got, dtype=float).reshape(-1)
    bad = np.abs(got - want) > 1e-6 * np.maximum(1, np.abs(want))
    if bad.any():
        i = int(np.argmax(bad))
        sys.exit(f"{what}: prediction {i} is {got[i]!r}, LightGBM's {want[i]!r}")
    print(f"{what}: {got.size} predictions equal LightGBM's to 1e-6")


host = url.split("://", 1)[1]
for binary in (True, False):
    c = httpclient.InferenceServerClient(host)
    inp = httpclient.InferInput("input-0", list(X.shape), "FP64")
    inp.set_data_from_numpy(X, binary_data=binary)
    out = httpclient.InferRequestedOutput("predict", binary_data=binary)
    check(f"tritonclient.http binary_data={binary}", c.infer("churn", [inp], outputs=[out]).as_numpy("predict"))

# The same trees as LightGBM text (model.lgb) under MLflow's own flavors.
assert mlm["flavors"]["lightgbm"]["data"] == "model.lgb", mlm
booster = mlflow.lightgbm.load_model("models:/churn@champion")
check("mlflow.lightgbm.load_model", booster.predict(X))
pyfunc = mlflow.pyfunc.load_model("models:/churn@champion")
check("mlflow.pyfunc.load_model", pyfunc.predict(df[names]))

g = grpcclient.InferenceServerClient(grpc_addr)
inputs = []
for j, name in enumerate(names):
    i = grpcclient.InferInput(name, [len(X)], "FP64")
    i.set_data_from_numpy(np.ascontiguousarray(X[:, j]))
    inputs.append(i)
check("tritonclient.grpc, one tensor per feature", g.infer("churn", inputs).as_numpy("predict"))
g.close()
