"""Record the tour's ranking model in MLflow tracking, with the official client.

Run it after the tour's `atrium fit` and `atrium predict`, with `atrium serve`
running, inside the project directory:

    MLFLOW_TRACKING_URI=http://127.0.0.1:8080 python train.py

It needs only `pip install mlflow`. It scores the predictions of the test
sessions (scores.csv) against their labels (data/test-spine.csv) by NDCG@10,
LightGBM's way (gain 2^label - 1, discount 1/log2(rank + 1), sessions without
a positive label count as 1), and logs the model's parameters, that metric and
the model file to a run of the experiment "rentals-ranker". Nothing here is
specific to Atrium: the same script logs to any MLflow tracking server.
"""

import csv
import math
import os
import sys
from collections import defaultdict

import mlflow

MODEL, SCORES, SPINE = "ranker.txt", "scores.csv", os.path.join("data", "test-spine.csv")
K = 10


def read_csv(path):
    if not os.path.exists(path):
        sys.exit(f"train.py: {path} not found: run the tour's atrium fit and atrium predict first")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def ndcg_at_k(labels_by_session, scores_by_session, k):
    total = 0.0
    for session, labels in labels_by_session.items():
        scores = scores_by_session[session]
        ranked = [label for _, label in sorted(zip(scores, labels), key=lambda p: -p[0])]
        ideal = sorted(labels, reverse=True)
        dcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ranked[:k]))
        idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal[:k]))
        total += dcg / idcg if idcg > 0 else 1.0
    return total / len(labels_by_session)


def model_params(path):
    """The LightGBM text model's header lines: objective, features, trees."""
    params = {"model_format": "lightgbm-text"}
    trees = 0
    with open(path) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            if key == "objective":
                params["objective"] = value
            elif key == "feature_names":
                params["features"] = value.replace(" ", ",")
            elif key == "Tree":
                trees += 1
    params["trees"] = trees
    return params


def main():
    label = {(r["session_id"], r["listing_id"]): int(r["label"]) for r in read_csv(SPINE)}
    labels, scores = defaultdict(list), defaultdict(list)
    for r in read_csv(SCORES):
        key = (r["session_id"], r["listing_id"])
        if key not in label:
            sys.exit(f"train.py: {SCORES} scores session {key[0]} listing {key[1]}, which {SPINE} does not have")
        labels[key[0]].append(label[key])
        scores[key[0]].append(float(r["prediction"]))
    if not labels:
        sys.exit(f"train.py: {SCORES} has no rows")
    ndcg = ndcg_at_k(labels, scores, K)

    mlflow.set_experiment("rentals-ranker")
    with mlflow.start_run(run_name="tour") as run:
        mlflow.log_params(model_params(MODEL))
        mlflow.log_param("service", "ranker")
        mlflow.log_metric(f"ndcg_at_{K}", ndcg)
        mlflow.log_metric("test_sessions", len(labels))
        mlflow.log_artifact(MODEL)
    print(f"run {run.info.run_id}: ndcg_at_{K} {ndcg:.4f} on {len(labels)} test sessions, {MODEL} logged to {mlflow.get_tracking_uri()}")


if __name__ == "__main__":
    main()
