"""Generate expected.json: inputs and the scores scipy/numpy give for them.

The score functions below follow Evidently's legacy stattests
(evidently/legacy/calculations/stattests/*.py, evidently 0.7.x) call for
call -- ks_2samp, chisquare, wasserstein_distance, jensenshannon,
histogram_bin_edges(bins="sturges") -- so that the Go package is checked
against scipy's and numpy's own numbers, without installing evidently.

Run: ATRIUM_TEST_PYTHON=/tmp/atrium-ci/venv/bin/python go test ./internal/monitoring/drift -run TestGenerate
or:  python gen.py > expected.json
"""
import json
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

warnings.simplefilter("ignore", RuntimeWarning)  # chisquare divides by 0 on new categories
rng = np.random.default_rng(20261205)


def dropna(x, cat):
    s = pd.Series(x, dtype=object if cat else float)
    if cat:
        return s[s != ""].dropna()
    return s.replace([np.inf, -np.inf], np.nan).dropna()


def binned(ref, cur, cat, feel_zeroes):
    if not cat and ref.nunique() > 20:
        bins = np.histogram_bin_edges(pd.concat([ref, cur]).values, bins="sturges")
        rp = np.histogram(ref, bins)[0] / len(ref)
        cp = np.histogram(cur, bins)[0] / len(cur)
    else:
        keys = sorted(set(ref.unique()) | set(cur.unique()))  # sorted: reproducible sums (Evidently: set order)
        rd = {**dict.fromkeys(keys, 0), **dict(ref.value_counts())}
        cd = {**dict.fromkeys(keys, 0), **dict(cur.value_counts())}
        rp = np.array([rd[k] / len(ref) for k in keys])
        cp = np.array([cd[k] / len(cur) for k in keys])
    if feel_zeroes:
        for p in (rp, cp):
            m = min(p[p != 0])
            np.place(p, p == 0, m / 10**6 if m <= 0.0001 else 0.0001)
    return rp, cp


def score(method, ref, cur, cat):
    if method == "ks":
        return stats.ks_2samp(ref, cur)[1]
    if method == "wasserstein":
        return stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    if method == "chisquare":
        keys = sorted(set(ref.unique()) | set(cur.unique()))  # sorted: reproducible sums (Evidently: set order)
        rd = {**dict.fromkeys(keys, 0), **dict(ref.value_counts())}
        cd = {**dict.fromkeys(keys, 0), **dict(cur.value_counts())}
        k = cur.shape[0] / ref.shape[0]
        return stats.chisquare([cd[x] for x in keys], [rd[x] * k for x in keys])[1]
    if method == "z":
        if ref.nunique() == 1 and cur.nunique() == 1 and ref.unique()[0] == cur.unique()[0]:
            return 1.0
        key = sorted(set(ref.unique()) | set(cur.unique()))[0]
        r = ref.apply(lambda x: 0 if x == key else 1)
        c = cur.apply(lambda x: 0 if x == key else 1)
        n1, n2 = len(r), len(c)
        p1, p2 = float(sum(r)) / n1, float(sum(c)) / n2
        P = (p1 * n1 + p2 * n2) / (n1 + n2)
        z = (p1 - p2) / np.sqrt(P * (1 - P) * (1.0 / n1 + 1.0 / n2))
        return 2 * (1 - stats.norm.cdf(np.abs(z)))
    if method == "jensenshannon":
        rp, cp = binned(ref, cur, cat, False)
        return distance.jensenshannon(rp, cp)
    if method == "psi":
        rp, cp = binned(ref, cur, cat, True)
        return np.sum((rp - cp) * np.log(rp / cp))
    if method == "hellinger":
        keys = sorted(set(ref.unique()) | set(cur.unique()))  # sorted: reproducible sums (Evidently: set order)
        if cat:
            r = (ref.value_counts() / len(ref)).to_dict()
            c = (cur.value_counts() / len(cur)).to_dict()
            h = sum(math.sqrt(r.get(k, 0) * c.get(k, 0)) for k in keys)
        else:
            bins = np.histogram_bin_edges(keys, bins="sturges")
            h1 = np.histogram(ref.to_numpy(), bins=bins, density=True)[0]
            h2 = np.histogram(cur.to_numpy(), bins=bins, density=True)[0]
            w = (max(bins) - min(bins)) / (len(bins) - 1)
            h = sum(math.sqrt(a * b) * w for a, b in zip(h1, h2))
        return math.sqrt(1 - np.clip(h, 0, 1))
    raise ValueError(method)


def default_method(ref, cur, cat):
    n = pd.concat([ref, cur]).nunique()
    if ref.shape[0] <= 1000:
        if not cat and n > 5:
            return "ks"
        return "chisquare" if n > 2 else "z"
    if not cat and n > 5:
        return "wasserstein"
    return "jensenshannon"


THRESH = {"ks": 0.05, "chisquare": 0.05, "z": 0.05}


def drifted(method, s):
    t = THRESH.get(method, 0.1)
    if method == "ks":
        return bool(s <= t)
    if method in THRESH:
        return bool(s < t)
    return bool(s >= t)


def num(a):
    # JSON has no NaN or Infinity: missing is null, infinities are strings.
    def enc(v):
        v = float(v)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    return [enc(v) for v in a]


cases = []


def add(name, ref, cur, cat, methods):
    r, c = dropna(ref, cat), dropna(cur, cat)
    results = []
    for m in methods:
        mm = m or default_method(r, c, cat)
        s = float(score(mm, r, c, cat))
        # JSON has no NaN: a NaN score (chi-square with one category) is null.
        results.append({"override": m, "method": mm, "score": None if math.isnan(s) else s,
                        "drift": drifted(mm, s)})
    cases.append({
        "name": name,
        "categorical": cat,
        "reference": list(ref) if cat else num(ref),
        "current": list(cur) if cat else num(cur),
        "results": results,
    })


ALL_NUM = ["", "ks", "wasserstein", "jensenshannon", "psi", "hellinger", "chisquare"]
ALL_CAT = ["", "chisquare", "z", "jensenshannon", "psi", "hellinger"]

add("normal_small_shift", rng.normal(0, 1, 300), rng.normal(0.25, 1, 250), False, ALL_NUM)
add("normal_equal_n", rng.normal(0, 1, 100), rng.normal(0, 1, 100), False, ALL_NUM)
add("ties_small", rng.integers(0, 10, 500).astype(float), rng.integers(1, 11, 400).astype(float), False, ALL_NUM)
add("ks_asymptotic", rng.normal(0, 1, 800), rng.normal(0.08, 1, 12000), False, ["", "ks"])
# Exact KS p-values at larger sizes, up to scipy's 10,000 limit for "auto";
# rounded to 6 decimals to keep expected.json small.
add("ks_exact_3000x2000", np.round(rng.normal(0, 1, 3000), 6), np.round(rng.normal(0.05, 1, 2000), 6), False, ["ks"])
add("ks_exact_1000x10000", np.round(rng.normal(0, 1, 1000), 6), np.round(rng.normal(0.08, 1, 10000), 6), False, ["", "ks"])
add("ks_exact_999x7", np.round(rng.normal(0, 1, 999), 6), np.round(rng.normal(1, 1, 7), 6), False, ["", "ks"])
add("normal_large", rng.normal(10, 2, 3000), rng.normal(10.3, 2.2, 2000), False, ALL_NUM)
add("normal_large_same", rng.normal(10, 2, 3000), rng.normal(10, 2, 2500), False, ALL_NUM)
add("constant_reference", np.full(1500, 5.0), rng.normal(5, 0.01, 1200), False, ["", "wasserstein", "jensenshannon", "psi", "ks"])
add("constant_both", np.full(300, 1.0), np.full(200, 1.0), False, ["", "chisquare", "wasserstein", "hellinger", "psi", "jensenshannon"])
add("few_values_large", rng.integers(0, 4, 2000).astype(float), rng.integers(0, 5, 1500).astype(float), False, ["", "psi", "hellinger", "wasserstein"])
add("binary_numeric_small", rng.integers(0, 2, 400).astype(float), (rng.random(300) < 0.6).astype(float), False, ["", "chisquare"])
ref = rng.normal(0, 1, 600)
ref[rng.random(600) < 0.1] = np.nan
ref[3] = np.inf
cur = rng.normal(0.3, 1, 500)
cur[rng.random(500) < 0.3] = np.nan
add("nan_dropped", ref, cur, False, ALL_NUM)
cats = np.array(["a", "b", "c", "d"])
add("cat_small", list(rng.choice(cats, 500, p=[.4, .3, .2, .1])), list(rng.choice(cats, 400, p=[.35, .3, .2, .15])), True, ALL_CAT)
add("cat_new_category", list(rng.choice(cats[:3], 300)), list(rng.choice(cats, 300)), True, ALL_CAT)
add("cat_large", list(rng.choice(cats, 5000, p=[.4, .3, .2, .1])), list(rng.choice(cats, 3000, p=[.3, .3, .2, .2])), True, ALL_CAT)
bref = list(rng.choice(["no", "yes"], 700, p=[.7, .3]))
bcur = list(rng.choice(["no", "yes", ""], 600, p=[.6, .3, .1]))
add("binary_cat_missing", bref, bcur, True, ALL_CAT)
add("binary_cat_disjoint", ["x"] * 50, ["y"] * 40, True, ["", "chisquare"])

# ks_2samp's asymptotic branch (max(m, n) > 10,000): kstwo.sf(d, round(mn/(m+n))).
ks_asymp = []
for m, n in [(800, 12000), (11000, 50000), (20000, 20000), (1000000, 1000000), (200, 10001)]:
    en = round(m * n / (m + n))
    for p in [0.9, 0.3, 0.1, 0.05, 0.01, 1e-4]:
        # the d at which the Kolmogorov limit gives about p, then scipy's exact value there
        d = float(stats.kstwobign.isf(p) / math.sqrt(en))
        ks_asymp.append({"m": m, "n": n, "d": d, "p": float(stats.kstwo.sf(d, en))})

print(json.dumps({"generator": "gen.py", "numpy": np.__version__, "scipy": __import__("scipy").__version__,
                  "pandas": pd.__version__, "cases": cases, "ks_asymptotic": ks_asymp}, indent=None, separators=(",", ":")))
