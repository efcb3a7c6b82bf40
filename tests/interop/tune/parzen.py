"""Optuna's side of internal/modeling/tune's differential TPE test.

Reads a study (trials with internal parameter values), a search space and
candidate points from stdin as JSON; builds the same study in Optuna, splits
its trials and fits TPE's two Parzen estimators with Optuna's own code, and
prints the split and both log densities at the candidates as JSON.
"""

import json
import sys

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers._tpe.sampler import _split_trials, default_gamma
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)


def dist(d):
    if d["type"] == "float":
        return FloatDistribution(d["low"], d["high"], log=d.get("log", False), step=d.get("step") or None)
    if d["type"] == "int":
        return IntDistribution(int(d["low"]), int(d["high"]), log=d.get("log", False), step=int(d.get("step") or 1))
    return CategoricalDistribution(d["choices"])


def main():
    req = json.load(sys.stdin)
    space = {p["name"]: dist(p["dist"]) for p in req["space"]}
    study = optuna.create_study(direction=req["direction"])
    for t in req["trials"]:
        params = {k: space[k].to_external_repr(v) for k, v in t["params"].items()}
        dists = {k: space[k] for k in t["params"]}
        state = TrialState.COMPLETE if t["state"] == "COMPLETE" else TrialState.PRUNED
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=dists, state=state,
            value=t["value"] if state == TrialState.COMPLETE else None,
            intermediate_values={int(k): v for k, v in t["intermediate"].items()}))
    sampler = optuna.samplers.TPESampler()
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    below, above = _split_trials(study, trials, default_gamma(len(trials)))
    pe_below = sampler._build_parzen_estimator(study, space, below, handle_below=True)
    pe_above = sampler._build_parzen_estimator(study, space, above, handle_below=False)
    names = list(space)
    cand = np.asarray(req["candidates"], dtype=float)
    samples = {n: cand[:, i] for i, n in enumerate(names)}
    print(json.dumps({
        "below": [t.number for t in below],
        "above": [t.number for t in above],
        "log_l": pe_below.log_pdf(samples).tolist(),
        "log_g": pe_above.log_pdf(samples).tolist(),
    }))


if __name__ == "__main__":
    main()
