"""What a data scientist does with the official mlflow client, against Atrium.

Experiments, runs with params, metrics over steps and tags, file and directory
artifacts, a scikit-learn model logged and registered, searches with filters,
ordering and paging, metric history, an alias, the model loaded back by alias
predicting exactly what the trained model predicts, and autologging. Run by
interop_test.go with MLFLOW_TRACKING_URI pointing at `atrium serve`; any
mismatch raises, and the script exits non-zero.
"""

import filecmp
import math
import os
import random
import tempfile

import mlflow
import mlflow.sklearn
import numpy as np
from mlflow import MlflowClient
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from checks import check, run, write

SUFFIX = f"{random.randrange(1 << 30):x}"
EXPERIMENT = f"interop-{SUFFIX}"
MODEL = f"churn-{SUFFIX}"
CS = [0.01, 0.3, 10.0]
STEPS = 20


def loss_at(c, step):
    return round(1.0 / (step + 1) + c / 100, 6)


def main():
    client = MlflowClient()
    exp = mlflow.set_experiment(EXPERIMENT)
    check(exp.name == EXPERIMENT and exp.lifecycle_stage == "active", f"set_experiment {EXPERIMENT} -> id {exp.experiment_id}")
    check(mlflow.set_experiment(EXPERIMENT).experiment_id == exp.experiment_id, "set_experiment again finds the same experiment")

    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, random_state=7)
    X_train, y_train = X[:200], y[:200]
    X_test = X[200:]

    src = tempfile.mkdtemp()
    write(os.path.join(src, "notes.md"), "# run notes\n")
    write(os.path.join(src, "data", "features.csv"), "a,b\n1,2\n")
    write(os.path.join(src, "data", "nested", "schema.json"), '{"a": "int"}')

    runs = {}  # C -> (run_id, model, accuracy)
    for i, c in enumerate(CS):
        with mlflow.start_run(run_name=f"lr-C{c}") as run:
            mlflow.log_params({"C": c, "solver": "lbfgs", "max_iter": 500})
            for step in range(STEPS):
                mlflow.log_metrics({"loss": loss_at(c, step), "lr": 0.1 * 0.9**step}, step=step)
            mlflow.set_tags({"team": "atrium", "candidate": str(i)})
            model = LogisticRegression(C=c, max_iter=500).fit(X_train, y_train)
            acc = float(model.score(X_train, y_train))
            mlflow.log_metric("accuracy", acc)
            mlflow.log_input(mlflow.data.from_numpy(X_train, targets=y_train, name="train"), context="training")
            mlflow.log_artifact(os.path.join(src, "notes.md"))
            mlflow.log_artifacts(os.path.join(src, "data"), artifact_path="data")
            runs[c] = (run.info.run_id, model, acc)
    check(len(runs) == 3, "three runs logged")

    # The best run's model, logged and registered in one call.
    best_c = max(CS, key=lambda c: (runs[c][2], -c))
    best_id, best_model, _ = runs[best_c]
    with mlflow.start_run(run_id=best_id):
        info = mlflow.sklearn.log_model(best_model, name="model", registered_model_name=MODEL, input_example=X_test[:3])
    check(info.registered_model_version is not None, f"log_model registered {MODEL} version {info.registered_model_version}")
    version = str(info.registered_model_version)

    # Runs read back.
    r = client.get_run(best_id)
    check(r.info.status == "FINISHED" and r.info.run_name == f"lr-C{best_c}", f"get_run status {r.info.status}, name {r.info.run_name}")
    check(r.data.params == {"C": str(best_c), "solver": "lbfgs", "max_iter": "500"}, f"params {r.data.params}")
    check(r.data.tags.get("team") == "atrium" and r.data.tags.get("candidate") == str(CS.index(best_c)), "tags")
    check(r.data.metrics["loss"] == loss_at(best_c, STEPS - 1), f"latest loss {r.data.metrics['loss']}")
    check(len(r.inputs.dataset_inputs) >= 1 and r.inputs.dataset_inputs[0].dataset.name == "train", "dataset input logged")

    # Artifacts: files and directories, listed and downloaded byte for byte.
    top = sorted(f.path for f in client.list_artifacts(best_id))
    check({"notes.md", "data"} <= set(top), f"run artifacts {top}")
    nested = [f.path for f in client.list_artifacts(best_id, "data/nested")]
    check(nested == ["data/nested/schema.json"], f"nested artifacts {nested}")
    dst = mlflow.artifacts.download_artifacts(run_id=best_id, artifact_path="data", dst_path=tempfile.mkdtemp())
    check(filecmp.cmp(os.path.join(dst, "nested", "schema.json"), os.path.join(src, "data", "nested", "schema.json"), shallow=False), "downloaded directory matches")

    # Search: filters, ordering, paging.
    ids = [exp.experiment_id]
    df = mlflow.search_runs(experiment_ids=ids, filter_string="params.C = '0.3'")
    check(list(df["run_id"]) == [runs[0.3][0]], "search params.C = '0.3'")
    got = client.search_runs(ids, "metrics.accuracy > 0 and tags.team = 'atrium'", order_by=["metrics.accuracy DESC", "params.C ASC"])
    want = [runs[c][0] for c in sorted(CS, key=lambda c: (-runs[c][2], str(c)))]
    check([x.info.run_id for x in got] == want, "search ordered by metrics.accuracy DESC, params.C ASC")
    got = client.search_runs(ids, "attributes.status = 'FINISHED' and attributes.run_name LIKE 'lr-C%'", order_by=["attributes.start_time ASC"])
    check([x.info.run_id for x in got] == [runs[c][0] for c in CS], "search by status and run_name LIKE, ordered by start_time")
    check(len(client.search_runs(ids, "metrics.loss < 0")) == 0, "search with no match")
    page1 = client.search_runs(ids, "", order_by=["params.C DESC"], max_results=2)
    page2 = client.search_runs(ids, "", order_by=["params.C DESC"], max_results=2, page_token=page1.token)
    paged = [x.info.run_id for x in list(page1) + list(page2)]
    check(page1.token and paged == [runs[c][0] for c in sorted(CS, key=str, reverse=True)], "search paging with page tokens")

    # Metric history, every step.
    hist = client.get_metric_history(best_id, "loss")
    check(sorted((m.step, m.value) for m in hist) == [(s, loss_at(best_c, s)) for s in range(STEPS)], f"metric history of {len(hist)} points")

    # Doubles in each notation the server writes (1000000, 1e-7, 1e+21, the
    # shortest digits of 1/3), NaN, and a name with text JSON escapes
    # (\u003c, \u0026, \u2028) come back exactly through get_run, search_runs
    # and get_metric_history.
    doubles = {"whole": 1e6, "tiny": 1e-7, "huge": 1e21, "third": 1 / 3, "nan": float("nan")}
    name = "doubles <&> \u2028 ü"
    with mlflow.start_run(run_name=name) as odd:
        mlflow.log_metrics(doubles)

    def same(got):
        return got.keys() == doubles.keys() and all(
            math.isnan(got[k]) if math.isnan(v) else got[k] == v for k, v in doubles.items())

    got = client.get_run(odd.info.run_id)
    check(got.info.run_name == name and same(got.data.metrics), f"get_run of odd doubles {got.data.metrics}")
    found = client.search_runs(ids, "metrics.huge > 0")
    check([x.info.run_id for x in found] == [odd.info.run_id] and found[0].info.run_name == name and same(found[0].data.metrics),
          "search_runs of odd doubles")
    check(same({k: client.get_metric_history(odd.info.run_id, k)[0].value for k in doubles}), "metric history of odd doubles")

    # Registry: alias, and the model loaded back by alias.
    client.set_registered_model_alias(MODEL, "champion", version)
    mv = client.get_model_version_by_alias(MODEL, "champion")
    check(mv.version == version and mv.run_id == best_id, f"alias champion -> version {mv.version}")
    # Lineage: version -> logged model -> run, and the model's files in the store.
    # (The client's ModelVersion.from_proto drops model_id, so lineage is read via source.)
    check(mv.source == info.model_uri == f"models:/{info.model_id}", f"version source {mv.source}")
    lm = client.get_logged_model(info.model_id)
    check(lm.source_run_id == best_id and lm.status == "READY", f"logged model {lm.model_id} from run {lm.source_run_id}, {lm.status}")
    files = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
    check("MLmodel" in files and any(f.startswith("model.") for f in files), f"logged model files {sorted(files)}")
    check(client.get_registered_model(MODEL).aliases == {"champion": version}, "registered model lists the alias")
    loaded = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    pred = np.asarray(loaded.predict(X_test))
    check(np.array_equal(pred, best_model.predict(X_test)), f"models:/{MODEL}@champion predicts like the trained model on {len(X_test)} rows")
    again = mlflow.sklearn.load_model(f"models:/{MODEL}/{version}")
    check(np.array_equal(again.predict_proba(X_test), best_model.predict_proba(X_test)), "sklearn flavor by version gives identical probabilities")

    # Autologging: the same client paths, driven by scikit-learn's fit.
    mlflow.sklearn.autolog(log_input_examples=False, silent=True)
    with mlflow.start_run(run_name="autolog") as run:
        auto = LogisticRegression(C=0.5, max_iter=300).fit(X_train, y_train)
    mlflow.sklearn.autolog(disable=True)
    r = client.get_run(run.info.run_id)
    check(r.data.params.get("C") == "0.5" and r.data.params.get("max_iter") == "300", "autolog logged the estimator's params")
    check(abs(r.data.metrics["training_accuracy_score"] - auto.score(X_train, y_train)) < 1e-9, "autolog logged the training score")
    models = client.search_logged_models(experiment_ids=ids, filter_string=f"source_run_id = '{run.info.run_id}'")
    check(len(models) == 1, f"autolog logged {len(models)} model for the run")
    reloaded = mlflow.sklearn.load_model(f"models:/{models[0].model_id}")
    check(np.array_equal(reloaded.predict(X_test), auto.predict(X_test)), "the autologged model predicts like the fitted one")
    print("user flow: all checks passed")


if __name__ == "__main__":
    run(main)
