"""Optuna's side of internal/modeling/tune's differential pruner test.

Reads {"direction", "pruner": {"kind", ...}, "curves": [[v0, v1, ...], ...]}
from stdin; runs one trial per curve in order, reporting its values step by
step and stopping at the first step Optuna's pruner prunes at; prints the
list of those steps (-1: ran to the end) as JSON.
"""

import json
import sys

import optuna
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)


def pruner(p):
    if p["kind"] == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=p.get("startup", 5), n_warmup_steps=p.get("warmup", 0), interval_steps=p.get("interval", 1))
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=p.get("min_resource") or "auto", reduction_factor=p.get("reduction_factor", 4),
        min_early_stopping_rate=p.get("min_early_stopping_rate", 0))


def main():
    req = json.load(sys.stdin)
    study = optuna.create_study(direction=req["direction"], pruner=pruner(req["pruner"]))
    out = []
    for curve in req["curves"]:
        t = study.ask()
        at = -1
        for step, v in enumerate(curve):
            t.report(v, step)
            if t.should_prune():
                at = step
                break
        if at >= 0:
            study.tell(t, state=TrialState.PRUNED)
        else:
            study.tell(t, curve[-1])
        out.append(at)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
