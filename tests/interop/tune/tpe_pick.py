"""Optuna's side of internal/modeling/tune's TestTPEPickAgainstOptuna.

Reads a study (complete trials of float parameters), the search space, a
number of picks and a seed from stdin as JSON; builds the same study in
Optuna and asks its default TPESampler for the next trial that many times,
each ask a fresh draw from the sampler's one random stream (the asked trials
are told FAIL, which TPE ignores, so every pick sees the same history).
Prints the picked points (one list of values per pick, in space order).
"""

import json
import sys

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)


def main():
    req = json.load(sys.stdin)
    space = {p["name"]: FloatDistribution(p["low"], p["high"], log=p.get("log", False)) for p in req["space"]}
    sampler = optuna.samplers.TPESampler(seed=req["seed"])
    study = optuna.create_study(direction=req["direction"], sampler=sampler)
    for t in req["trials"]:
        study.add_trial(optuna.trial.create_trial(params=t["params"], distributions=space, value=t["value"]))
    picks = []
    for _ in range(req["picks"]):
        trial = study.ask(fixed_distributions=space)
        picks.append([trial.params[name] for name in space])
        study.tell(trial, state=TrialState.FAIL)
    print(json.dumps({"picks": picks}))


if __name__ == "__main__":
    main()
