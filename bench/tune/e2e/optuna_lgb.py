"""Optuna + LightGBM side of bench/tune/e2e: the same study as main.go's.

    optuna_lgb.py DATA_NPY TRIALS THREADS SEED

TPESampler(seed) and MedianPruner() (Optuna's defaults), one trial at a
time, LightGBM with THREADS threads, the validation AUC reported per
iteration to the pruner (what optuna-integration's LightGBMPruningCallback
does), early stopping after 20 rounds; then the best parameters refit on
train+valid with the best iteration count and the test AUC. Prints JSON,
with every trial's parameters, iterations run and duration.
"""
import json
import sys
import time

import lightgbm as lgb
import numpy as np
import optuna
from sklearn.metrics import roc_auc_score

path, trials, threads, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = np.load(path)
x, y = data[:, :-1], data[:, -1]
n = len(y)
a, b = n * 70 // 100, n * 85 // 100
optuna.logging.set_verbosity(optuna.logging.WARNING)

start = time.perf_counter()
dtrain = lgb.Dataset(x[:a], y[:a], free_raw_data=False)
dvalid = lgb.Dataset(x[a:b], y[a:b], reference=dtrain, free_raw_data=False)
base = {"objective": "binary", "metric": "auc", "num_threads": threads, "seed": 1, "verbosity": -1}
iters = {}


def objective(trial):
    params = dict(base,
                  num_leaves=trial.suggest_int("num_leaves", 15, 255, log=True),
                  learning_rate=trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
                  min_data_in_leaf=trial.suggest_int("min_data_in_leaf", 5, 200),
                  feature_fraction=trial.suggest_float("feature_fraction", 0.5, 1.0))

    def prune(env):
        for _, name, value, _ in env.evaluation_result_list:
            if name == "auc":
                trial.report(value, env.iteration + 1)
                if trial.should_prune():
                    raise optuna.TrialPruned()

    booster = lgb.train(params, dtrain, num_boost_round=200, valid_sets=[dvalid],
                        callbacks=[lgb.early_stopping(20, verbose=False), prune])
    iters[trial.number] = booster.best_iteration
    return booster.best_score["valid_0"]["auc"]


study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                            pruner=optuna.pruners.MedianPruner())
study.optimize(objective, n_trials=trials)
best = study.best_trial
params = dict(base, **best.params)
model = lgb.train(params, lgb.Dataset(x[:b], y[:b]), num_boost_round=max(iters[best.number], 1))
test_auc = roc_auc_score(y[b:], model.predict(x[b:]))
states = [t.state for t in study.trials]
# Each trial's parameters, the boosting iterations it ran (its last reported
# step) and its duration: main.go -replay fits the same trials with Atrium.
trials_out = [{"params": t.params, "iterations": max(t.intermediate_values, default=0),
               "seconds": (t.datetime_complete - t.datetime_start).total_seconds()} for t in study.trials]
print(json.dumps({"seconds": time.perf_counter() - start, "complete": states.count(optuna.trial.TrialState.COMPLETE),
                  "pruned": states.count(optuna.trial.TrialState.PRUNED), "best_valid": best.value,
                  "test_auc": test_auc, "best_iterations": iters[best.number], "best_params": best.params,
                  "trials": trials_out}))
