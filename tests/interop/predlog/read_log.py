"""Reads a prediction log the way a data scientist's notebook does, with
pyarrow's Hive-partitioned datasets and pandas, and prints what it found as
JSON for predlog_test.go to check.

usage: read_log.py DIR   (DIR/predictions is the log)
"""
import json
import math
import sys

import pyarrow as pa
import pyarrow.dataset as ds


def read(path):
    # Files of different model versions have different feature fields:
    # unify their schemas (a field a file lacks reads null), then read with
    # the Hive partitions.
    # This is the snippet of docs/serving.md.
    parts = pa.schema([("date", pa.string()), ("hour", pa.int32())])
    schema = pa.unify_schemas(
        [f.physical_schema for f in ds.dataset(path).get_fragments()] + [parts],
        promote_options="permissive",
    )
    return ds.dataset(path, schema=schema, partitioning="hive").to_table()


def clean(v):
    # NaN stays visible ("NaN"): a missing value must be null, not NaN.
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [clean(x) for x in v]
    return v


def main():
    root = sys.argv[1] + "/predictions"
    out = {}
    for model_dir, name in (("model=ranker", "ranker"), ("model=churn%20v2", "churn v2")):
        table = read(root + "/" + model_dir)
        df = table.to_pandas()
        meta = table.schema.metadata or {}
        out[name] = {
            "rows": len(df),
            "format": meta.get(b"atrium_prediction_log", b"").decode(),
            "models": sorted(set(df["model"])),
            "versions": sorted(set(df["model_version"])),
            "requests": int(df["request_id"].nunique()),
            "feature_fields": sorted(table.schema.field("features").type.names),
            "rows_by_request": {
                f"{r.request_id}/{r.row}": {
                    # A file without entity keys (infer) has no entities
                    # column, a single-output model's no scores column.
                    "features": clean(getattr(r, "features", None)),
                    "entities": clean(getattr(r, "entities", None)),
                    "score": getattr(r, "score", None),
                    "scores": clean(list(r.scores)) if getattr(r, "scores", None) is not None else None,
                    "timestamp": r.timestamp.isoformat(),
                    "partition": f"{r.date}/{r.hour:02d}",
                }
                for r in df.itertuples()
            },
        }
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
