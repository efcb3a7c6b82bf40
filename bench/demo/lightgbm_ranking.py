"""LightGBM lambdarank on the demo's ranking set, scored against the truth.

Writes the ranking set of a demo size with `atrium demo ranking --truth`, trains
LightGBM's lambdarank on the training days (without the true_utility column),
and prints NDCG@10 on the test days' sessions for: the LightGBM model, ranking by
true utility (the ceiling), and a random ranking. Labels are the observed graded
labels (0 shown, 1 clicked, 2 visit requested); NDCG follows LightGBM's
conventions (a session without clicks scores 1).

    python bench/demo/lightgbm_ranking.py ATRIUM_BINARY [--size medium] [--test-days 7]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import lightgbm as lgb
import numpy as np
import pandas as pd


def ndcg_at(labels, scores, k=10):
    """LightGBM's NDCG@k of one query: gain 2^l - 1, 1/log2(2+i), all-zero = 1."""
    order = np.argsort(-scores, kind="stable")
    gains = (2.0 ** labels[order][:k] - 1) / np.log2(np.arange(2, min(k, len(labels)) + 2))
    ideal = np.sort(labels)[::-1][:k]
    igains = (2.0 ** ideal - 1) / np.log2(np.arange(2, len(ideal) + 2))
    return 1.0 if igains.sum() == 0 else gains.sum() / igains.sum()


def mean_ndcg(df, score_col, k=10):
    return float(np.mean([ndcg_at(g["label"].to_numpy(float), g[score_col].to_numpy(float), k)
                          for _, g in df.groupby("session_id", sort=False)]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("atrium")
    ap.add_argument("--size", default="medium")
    ap.add_argument("--test-days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        train_p, test_p = os.path.join(tmp, "train.parquet"), os.path.join(tmp, "test.parquet")
        subprocess.run([args.atrium, "demo", "ranking", "--size", args.size, "--seed", str(args.seed), "--truth",
                        "--out", train_p, "--test-out", test_p, "--test-days", str(args.test_days)], check=True)
        train, test = pd.read_parquet(train_p), pd.read_parquet(test_p)
    features = [c for c in train.columns if c not in ("session_id", "label", "true_utility")]
    for df in (train, test):
        df["neighborhood"] = df["neighborhood"].astype("category")
    test["neighborhood"] = test["neighborhood"].cat.set_categories(train["neighborhood"].cat.categories)
    groups = train.groupby("session_id", sort=False).size().to_numpy()
    params = dict(objective="lambdarank", metric="ndcg", ndcg_eval_at=[10], num_leaves=31, learning_rate=0.05,
                  min_data_in_leaf=50, num_threads=2, verbose=-1, seed=args.seed)
    start = time.time()
    model = lgb.train(params, lgb.Dataset(train[features], train["label"], group=groups), num_boost_round=300)
    fit_s = time.time() - start
    test["lightgbm"] = model.predict(test[features])
    test["random"] = np.random.default_rng(args.seed).random(len(test))
    print(f"size {args.size}: {len(train)} training rows in {len(groups)} sessions, "
          f"{len(test)} test rows in {test['session_id'].nunique()} sessions; lightgbm {lgb.__version__} fit {fit_s:.1f}s")
    for name, col in (("LightGBM lambdarank", "lightgbm"), ("true utility", "true_utility"), ("random", "random")):
        print(f"  NDCG@10 {name:20s} {mean_ndcg(test, col):.4f}")


if __name__ == "__main__":
    sys.exit(main())
