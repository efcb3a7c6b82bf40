"""What `atrium train` logged, read with the real MLflow client.

    train_flow.py

The demo's tuned ranker (training/ranker.yaml, 16 trials): MlflowClient
finds the study's parent run in the experiment "ranker" (tag atrium.study),
FINISHED, holding the refit's params, test and best-valid metrics and the
promotion decision; its 16 child runs nest under it by mlflow.parentRunId,
each with its trial number and state (FINISHED complete, KILLED pruned), and
the complete ones a validation metric per iteration (step 1, 2, ...).
Version 1 of "ranker" is behind champion, from the parent run, with the
lineage tags of the shared contract. mlflow.artifacts downloads the
reference profile, the spec and model/model.lgb, which lightgbm.Booster
loads with the version's features in order.
"""
import json

import lightgbm as lgb
import mlflow
from mlflow import MlflowClient

client = MlflowClient()
exp = client.get_experiment_by_name("ranker")
assert exp is not None, "no experiment ranker"
parents = client.search_runs([exp.experiment_id], filter_string="tags.`atrium.study` = 'ranker'")
assert len(parents) == 1, parents
parent = parents[0]
assert parent.info.status == "FINISHED", parent.info
m = parent.data.metrics
assert "test_ndcg_at_10" in m and "best_valid_ndcg_at_10" in m, m
assert parent.data.tags["atrium.promotion.promoted"] == "true", parent.data.tags
assert parent.data.params["task"] == "lambdarank" and "num_leaves" in parent.data.params, parent.data.params

children = client.search_runs([exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", max_results=100)
assert len(children) == 16, len(children)
numbers = sorted(int(c.data.tags["atrium.trial.number"]) for c in children)
assert numbers == list(range(16)), numbers
states = {}
for c in children:
    state = c.data.tags["atrium.trial.state"]
    states[state] = states.get(state, 0) + 1
    want = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}[state]
    assert c.info.status == want, (state, c.info)
    assert "learning_rate" in c.data.params and "num_leaves" in c.data.params, c.data.params
    if state == "complete":
        hist = client.get_metric_history(c.info.run_id, "valid_ndcg_at_10")
        steps = [h.step for h in hist]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 1, steps
assert states.get("complete", 0) >= 1, states
print(f"MlflowClient: parent run {parent.info.run_id} with 16 nested trials {states}")

v = client.get_model_version_by_alias("ranker", "champion")
assert v.version == "1" and v.run_id == parent.info.run_id, v
tags = v.tags
for key in ["atrium.feature_service", "atrium.features", "atrium.feature_versions", "atrium.training.rows",
            "atrium.training.start", "atrium.training.end", "atrium.training.hash", "atrium.reference_profile",
            "atrium.test.ndcg@10", "atrium.training.spec"]:
    assert key in tags, (key, tags)
assert tags["atrium.feature_service"] == "personalized_ranker", tags
assert tags["atrium.reference_profile"] == "reference/profile.json", tags
assert tags["atrium.training.hash"].startswith("sha256:"), tags
assert float(tags["atrium.test.ndcg@10"]) == m["test_ndcg_at_10"], (tags, m)
features = [f.split(":", 1)[1] for f in tags["atrium.features"].split(",")]
versions = json.loads(tags["atrium.feature_versions"])
assert all(isinstance(n, int) and n >= 1 for n in versions.values()) and versions, versions

profile_path = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="reference/profile.json")
with open(profile_path) as f:
    profile = json.load(f)
assert profile["rows"] == int(tags["atrium.training.rows"]), profile["rows"]
# The profile lists columns by name (its own order), the tag in model input order.
assert sorted(c["name"] for c in profile["columns"]) == sorted(features), ([c["name"] for c in profile["columns"]], features)
# The prediction distribution (the best trial's validation predictions) is what
# monitoring's prediction drift compares with: always there.
assert "prediction" in profile, sorted(profile)
assert profile["prediction"]["count"] > 0, profile["prediction"]
spec = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="spec/ranker.yaml")
assert "name: ranker" in open(spec).read()

model_path = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="model/model.lgb")
booster = lgb.Booster(model_file=model_path)
assert booster.feature_name() == features, (booster.feature_name(), features)
print(f"lightgbm: model.lgb of version 1 loads with features {features}")
