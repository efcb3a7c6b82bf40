"""Differential check: Evidently's own stattests on the cases of expected.json.

The Go tests check the package against expected.json (scipy/numpy numbers from
gen.py); this script checks expected.json against the real evidently package,
so together they compare Atrium with Evidently. It needs evidently (0.7.x,
with pandas<3) in the interpreter that runs it:

    python -m venv /tmp/ev && /tmp/ev/bin/pip install 'evidently==0.7.23' 'pandas<3'
    ATRIUM_TEST_EVIDENTLY_PYTHON=/tmp/ev/bin/python go test ./internal/monitoring/drift -run TestEvidently

It prints one line per mismatch and exits 1 if there is any.
"""
import json
import math
import os
import sys

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests import get_stattest
from evidently.legacy.core import ColumnType


def series(values, cat):
    if cat:
        s = pd.Series(values, dtype=object)
        return s[s != ""]
    v = [np.nan if x is None else (np.inf if x == "inf" else -np.inf if x == "-inf" else x) for x in values]
    # Evidently's data-drift metric drops NaN and +-Inf before the stattest.
    return pd.Series(v, dtype=float).replace([-np.inf, np.inf], np.nan).dropna()


here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "expected.json")) as f:
    data = json.load(f)

bad = 0
checked = 0
for case in data["cases"]:
    cat = case["categorical"]
    ftype = ColumnType.Categorical if cat else ColumnType.Numerical
    for want in case["results"]:
        r = series(case["reference"], cat)
        c = series(case["current"], cat)
        try:
            st = get_stattest(r, c, ftype, want["override"] or None)
        except ValueError as e:
            # Evidently refuses some tests on some column types when named
            # explicitly (e.g. chisquare on a numeric column); Atrium allows them.
            print(f"skip {case['name']} {want['override']}: {e}")
            continue
        res = st(r.copy(), c.copy(), ftype, None)
        checked += 1
        score = float(res.drift_score)
        ws = want["score"]
        same_score = (math.isnan(score) and ws is None) or (
            ws is not None and abs(score - ws) <= max(1e-12, 1e-9 * abs(ws)))
        if st.name != want["method"] or not same_score or bool(res.drifted) != want["drift"]:
            bad += 1
            print(f"MISMATCH {case['name']} override={want['override']!r}: evidently {st.name} {score!r} "
                  f"drift={bool(res.drifted)}; expected.json {want['method']} {ws!r} drift={want['drift']}")
print(f"{checked} checked, {bad} mismatches")
sys.exit(1 if bad else 0)
