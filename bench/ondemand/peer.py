"""The peer of BenchmarkEval and BenchmarkEvalRanker: the same features as
Feast's on-demand feature views compute them in their fastest mode
(mode="python": a function over a dict of lists, about 10x faster than
pandas mode per Feast's docs). Only the user's function is timed, not Feast's
conversions around it, so this is a lower bound of Feast's cost.

Usage: python peer.py  (no packages needed)
"""

import timeit

ROWS = 200
HOODS = ["Moema", "Lapa", "Pinheiros", "Vila Madalena", "Centro"]


def user_listing(inputs):
    """rent_to_budget and neighborhood_match, nulls propagated as Atrium does."""
    out = {"rent_to_budget": [], "neighborhood_match": []}
    for rent, budget, hood, prefs in zip(inputs["rent"], inputs["budget"], inputs["neighborhood"], inputs["preferred_neighborhoods"]):
        out["rent_to_budget"].append(rent / budget if rent is not None and budget else None)
        out["neighborhood_match"].append(None if hood is None or prefs is None else int(hood in prefs.split("|")))
    return out


def ranker(inputs):
    return {"score": [0.7 * c + 0.3 * v for c, v in zip(inputs["click"], inputs["visit"])]}


def best(fn, arg, number):
    return min(timeit.repeat(lambda: fn(arg), number=number, repeat=5)) / number


def main():
    ul = {
        "rent": [1000 + r * 10.0 for r in range(ROWS)],
        "budget": [2500.0] * ROWS,
        "neighborhood": [HOODS[r % len(HOODS)] for r in range(ROWS)],
        "preferred_neighborhoods": ["Moema|Pinheiros"] * ROWS,
    }
    rk = {"click": [r / ROWS for r in range(ROWS)], "visit": [1 - r / ROWS for r in range(ROWS)]}
    t1 = best(user_listing, ul, 2000)
    t2 = best(ranker, rk, 5000)
    print(f"python user_listing 200 rows x 2 features: {t1 * 1e6:.1f} us/op ({t1 * 1e9 / (ROWS * 2):.0f} ns/value)")
    print(f"python ranker 200 rows x 1 expression: {t2 * 1e6:.1f} us/op ({t2 * 1e9 / ROWS:.0f} ns/value)")


if __name__ == "__main__":
    main()
