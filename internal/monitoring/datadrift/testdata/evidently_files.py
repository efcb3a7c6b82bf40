"""Runs Evidently's DataDriftPreset (legacy Report API, evidently 0.7.23) on two
CSV or Parquet files and prints, as JSON, the per-column method id, score,
threshold and verdict and the dataset verdict, for TestEvidentlyFiles (and
bench/monitoring) to compare with `atrium monitor drift`.

    python evidently_files.py REFERENCE CURRENT [COLUMN ...]

Datetime columns are left out, as Atrium does; columns are typed by pandas
dtype (numbers numeric, the rest categorical), as Atrium types them from the
files' schema.
"""
import json
import sys
import time

import pandas as pd
from evidently.legacy.calculations import stattests
from evidently.legacy.metric_preset import DataDriftPreset
from evidently.legacy.pipeline.column_mapping import ColumnMapping
from evidently.legacy.report import Report


def read(path):
    return pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)


ref_path, cur_path, *only = sys.argv[1:]
t0 = time.perf_counter()
ref, cur = read(ref_path), read(cur_path)
cols = only or [c for c in ref.columns if not pd.api.types.is_datetime64_any_dtype(ref[c])]
num = [c for c in cols if pd.api.types.is_numeric_dtype(ref[c]) and not pd.api.types.is_bool_dtype(ref[c])]
cat = [c for c in cols if c not in num]
mapping = ColumnMapping(numerical_features=num, categorical_features=cat, target=None, prediction=None, datetime=None)
report = Report(metrics=[DataDriftPreset(columns=cols)])
report.run(reference_data=ref[cols], current_data=cur[cols], column_mapping=mapping)
res = report.as_dict()
elapsed = time.perf_counter() - t0

ids = {}
for name in dir(stattests):
    st = getattr(stattests, name)
    if hasattr(st, "display_name") and hasattr(st, "name"):
        ids[st.display_name] = st.name
table = next(m["result"] for m in res["metrics"] if "drift_by_columns" in m["result"])
out = {"columns": [], "seconds": elapsed}
for c in cols:
    d = table["drift_by_columns"][c]
    out["columns"].append({
        "column": c,
        "method": ids.get(d["stattest_name"], d["stattest_name"]),
        "score": d["drift_score"],
        "threshold": d["stattest_threshold"],
        "drift": bool(d["drift_detected"]),
    })
out["drifted_count"] = table["number_of_drifted_columns"]
out["dataset_drift"] = bool(table["dataset_drift"])
json.dump(out, sys.stdout)
