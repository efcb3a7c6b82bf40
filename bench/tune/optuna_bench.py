"""Optuna side of bench/tune: the same test functions, budgets and seeds as
bench/tune/main.go, with Optuna's default TPESampler. Prints one JSON object.

    python optuna_bench.py --seeds 20 --trials 100 --overhead-trials 1000
"""

import argparse
import json
import math
import subprocess
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)

HART_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
HART_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
          [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
HART_ALPHA = [1.0, 1.2, 3.0, 3.2]


def floats(t, n, lo, hi):
    return [t.suggest_float(f"x{i}", lo, hi) for i in range(n)]


def sphere(t):
    return sum(x * x for x in floats(t, 5, -5, 5))


def rosenbrock(t):
    x = floats(t, 2, -5, 10)
    return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2


def branin(t):
    x1 = t.suggest_float("x0", -5, 10)
    x2 = t.suggest_float("x1", 0, 15)
    b, c, tt = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - tt) * math.cos(x1) + 10


def hartmann6(t):
    x = floats(t, 6, 0, 1)
    s = 0.0
    for i in range(4):
        s += HART_ALPHA[i] * math.exp(-sum(HART_A[i][j] * (x[j] - HART_P[i][j] * 1e-4) ** 2 for j in range(6)))
    return -s


def styblinski_tang(t):
    return 0.5 * sum(x**4 - 16 * x * x + 5 * x for x in floats(t, 5, -5, 5))


def mixed(t):
    lr = t.suggest_float("lr", 1e-4, 1, log=True)
    leaves = t.suggest_int("leaves", 2, 256, log=True)
    depth = t.suggest_int("depth", 1, 12)
    boost = t.suggest_categorical("boost", ["gbdt", "dart", "goss"])
    penalty = {"gbdt": 0.0, "dart": 0.3, "goss": 0.6}[boost]
    return (math.log10(lr) + 1.5) ** 2 + (math.log2(leaves) - 5) ** 2 / 4 + (depth - 6) ** 2 / 10 + penalty


class GBDT:
    """The gbdt function: each trial's parameters go to main.go's evaluator
    (`tune-bench -gbdt-eval`), which fits Atrium's GBDT on the generated data
    and answers the validation log loss, so both samplers tune the same
    function. Suggestion names, ranges and order are main.go's suggestGBDT."""

    def __init__(self, command):
        self.proc = subprocess.Popen([command, "-gbdt-eval"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, t):
        p = {
            "num_leaves": t.suggest_int("num_leaves", 15, 255, log=True),
            "learning_rate": t.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "min_data_in_leaf": t.suggest_int("min_data_in_leaf", 5, 200),
            "feature_fraction": t.suggest_float("feature_fraction", 0.5, 1.0),
        }
        self.proc.stdin.write(json.dumps(p) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"gbdt evaluator exited ({self.proc.wait()}) on {p}")
        return float(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


FUNCTIONS = {
    "sphere5": sphere,
    "rosenbrock2": rosenbrock,
    "branin": branin,
    "hartmann6": hartmann6,
    "styblinski_tang5": styblinski_tang,
    "mixed": mixed,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--overhead-trials", type=int, default=1000)
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--gbdt-trials", type=int, default=50)
    ap.add_argument("--gbdt-eval", help="main.go's binary, which evaluates the gbdt function's trials")
    args = ap.parse_args()
    out = {"version": optuna.__version__, "best": {}, "overhead": {}}
    for name in filter(None, args.functions.split(",")):
        fn, trials = FUNCTIONS.get(name), args.trials
        if name == "gbdt":
            fn, trials = GBDT(args.gbdt_eval), args.gbdt_trials
        bests = []
        for seed in range(args.seeds):
            study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
            study.optimize(fn, n_trials=trials)
            bests.append(study.best_value)
        if name == "gbdt":
            fn.close()
        out["best"][name] = bests
    if args.overhead_trials > 0:
        # Sampler overhead: a trivial objective, so the time is the sampler's
        # and the study's own (ask, suggest, tell).
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
        # CPU time counts too: on a shared machine it moves less with the load.
        stamps, cpu = [], []
        t0, c0 = time.perf_counter(), time.process_time()

        def note(study, trial):
            stamps.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)

        study.optimize(sphere, n_trials=args.overhead_trials, callbacks=[note])
        n = len(stamps)
        out["overhead"] = {
            "trials": n,
            "seconds": stamps[-1],
            "last100_seconds": stamps[-1] - stamps[-101] if n > 100 else stamps[-1],
            "cpu_seconds": cpu[-1],
            "last100_cpu_seconds": cpu[-1] - cpu[-101] if n > 100 else cpu[-1],
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
