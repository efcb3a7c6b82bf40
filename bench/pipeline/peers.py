"""Python peers of the point-in-time join benchmark, on the files bench/pipeline
(main.go) generated and computed: the same spine joined with the same three
stored feature sets by

  - pandas.merge_asof (one merge per set, keyed, with the set's ttl), the way
    pandas-based feature stores do it;
  - Feast's own get_historical_features on its default local (dask) offline
    store, with the three sets as FeatureViews over Parquet FileSources.

Each result is checked against Atrium's output before its time is reported.
Prints one JSON object per measurement.

  python bench/pipeline/peers.py --dir /tmp/atrium-bench-pipeline --spine 1000000 [--feast-spine N]
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

SETS = {
    # set: (join key, ttl in days)
    "listing_engagement": ("listing_id", 2),
    "listing_profile": ("listing_id", 90),
    "user_profile": ("user_id", 90),
}


def load_set(root, name):
    """Every stored row of a set, without the hive partition columns."""
    d = ds.dataset(os.path.join(root, "offline", "set=" + name), format="parquet", partitioning=None)
    t = d.to_table()
    return t.to_pandas()


def checksum(df):
    return {
        "rows": int(len(df)),
        "ctr_7d_non_null": int(df["ctr_7d"].notna().sum()),
        "viewers_28d_sum": int(np.nansum(df["viewers_count_distinct_28d"].to_numpy(dtype="float64"))),
        "rent_sum": round(float(np.nansum(df["rent"].to_numpy(dtype="float64"))), 3),
        "budget_sum": round(float(np.nansum(df["budget"].to_numpy(dtype="float64"))), 3),
    }


def emit(name, seconds, rows, note):
    print(json.dumps({"name": name, "seconds": round(seconds, 3), "rows": rows, "note": note}), flush=True)


def pandas_peer(root, spine_path, want):
    # Timed like Atrium's: read the stored sets and the spine, join, write Parquet.
    t0 = time.perf_counter()
    sets = {name: load_set(root, name) for name in SETS}
    spine = pd.read_parquet(spine_path)
    out = spine.reset_index().rename(columns={"index": "_row"})
    out["ts"] = pd.to_datetime(out["ts"])
    out = out.sort_values("ts", kind="stable")
    for name, (key, ttl_days) in SETS.items():
        df = sets[name].sort_values("timestamp", kind="stable")
        cols = [c for c in df.columns if c not in (key, "timestamp")]
        df = df.rename(columns={"timestamp": "_ts_" + name})
        out = pd.merge_asof(out, df, left_on="ts", right_on="_ts_" + name, by=key, direction="backward", allow_exact_matches=True)
        stale = out["_ts_" + name] <= out["ts"] - pd.Timedelta(days=ttl_days)
        out.loc[stale, cols] = np.nan
        out = out.drop(columns=["_ts_" + name])
    out = out.sort_values("_row").drop(columns=["_row"])
    out.to_parquet(os.path.join(root, "pandas_train.parquet"))
    secs = time.perf_counter() - t0
    got = checksum(out)
    if got != want:
        raise SystemExit("pandas peer differs from Atrium: %s vs %s" % (got, want))
    emit("peer: pandas merge_asof (3 sets)", secs, len(out), "reading the stored sets and the spine and writing Parquet included; same values (checked)")


def compare_common(atrium, feast):
    """Rows and mismatching values of the spine rows both outputs have."""
    a = atrium.copy()
    a["ts"] = pd.to_datetime(a["ts"]).dt.tz_localize("UTC")
    f = feast.rename(columns={"event_timestamp": "ts"})
    keys = ["listing_id", "user_id", "ts", "label"]
    m = a.merge(f, on=keys, suffixes=("_a", "_f"))
    bad = 0
    for c in ("ctr_7d", "viewers_count_distinct_28d", "rent", "budget"):
        x, y = m[c + "_a"].astype("float64"), m[c + "_f"].astype("float64")
        bad += int((~((x == y) | (x.isna() & y.isna()))).sum())
    return len(m), bad


def feast_peer(root, spine_path, sets, n, want_atrium, atrium_df):
    from datetime import timedelta

    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
    from feast.types import Float64, Int64, String

    repo = os.path.join(root, "feast_repo")
    shutil.rmtree(repo, ignore_errors=True)
    os.makedirs(os.path.join(repo, "data"))
    entities = {
        "listing_id": Entity(name="listing", join_keys=["listing_id"], value_type=ValueType.INT64),
        "user_id": Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64),
    }
    kinds = {"int64": Int64, "float64": Float64, "object": String, "string": String, "str": String}
    views = []
    features = []
    for name, (key, ttl_days) in SETS.items():
        path = os.path.join(repo, "data", name + ".parquet")
        df = sets[name].copy()
        df["timestamp"] = pd.to_datetime(df["timestamp"]).dt.tz_localize("UTC")
        df.to_parquet(path)
        src = FileSource(name=name + "_src", path=path, timestamp_field="timestamp")
        schema = []
        for c in df.columns:
            if c in (key, "timestamp"):
                continue
            schema.append(Field(name=c, dtype=kinds.get(str(df[c].dtype).lower(), Float64)))
            features.append(name + ":" + c)
        views.append(FeatureView(name=name, entities=[entities[key]], ttl=timedelta(days=ttl_days), schema=schema, source=src, online=False))
    cfg = RepoConfig(
        project="bench",
        registry=os.path.join(repo, "registry.db"),
        provider="local",
        offline_store=DaskOfflineStoreConfig(),
        online_store=SqliteOnlineStoreConfig(path=os.path.join(repo, "online.db")),
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=cfg, repo_path=repo)
    store.apply(list(entities.values()) + views)
    spine = pd.read_parquet(spine_path).head(n)
    spine = spine.rename(columns={"ts": "event_timestamp"})
    spine["event_timestamp"] = pd.to_datetime(spine["event_timestamp"]).dt.tz_localize("UTC")
    t0 = time.perf_counter()
    out = store.get_historical_features(entity_df=spine, features=features).to_df()
    secs = time.perf_counter() - t0
    got = checksum(out)
    if got != want_atrium:
        # Feast's dask store left-joins each spine row with every row of its key and
        # then filters by ttl, so a spine row whose key has rows, none of them in
        # [t - ttl, t], disappears from the output. Compare the rows it kept.
        common, bad = compare_common(atrium_df, out)
        print("feast differs from atrium: %s vs %s" % (got, want_atrium), file=sys.stderr)
        note = "returned %d of %d spine rows (drops rows whose key has no row within ttl); on the %d rows both have, %d values differ" % (
            len(out), n, common, bad)
    else:
        note = "Feast %s, default local (dask) offline store; same values (checked)" % __import__("feast").__version__
    emit("peer: Feast get_historical_features (3 views)", secs, len(out), note)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/atrium-bench-pipeline")
    ap.add_argument("--spine", type=int, default=1_000_000)
    ap.add_argument("--feast-spine", type=int, default=0, help="spine rows for Feast (0: skip Feast)")
    ap.add_argument("--skip-pandas", action="store_true")
    a = ap.parse_args()
    spine_path = os.path.join(a.dir, "data", "spine-%d.parquet" % a.spine)
    if not a.skip_pandas:
        want = checksum(pd.read_parquet(os.path.join(a.dir, "train-%d.parquet" % a.spine)))
        pandas_peer(a.dir, spine_path, want)
    sets = {name: load_set(a.dir, name) for name in SETS}
    if a.feast_spine:
        atrium = pd.read_parquet(os.path.join(a.dir, "train-%d.parquet" % a.feast_spine))
        feast_peer(a.dir, os.path.join(a.dir, "data", "spine-%d.parquet" % a.feast_spine), sets, a.feast_spine, checksum(atrium), atrium)


if __name__ == "__main__":
    main()
