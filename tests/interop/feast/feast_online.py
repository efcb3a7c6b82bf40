"""Feast's own Python SDK against Atrium's feature server.

A Feast repository whose online store is Feast's "remote" store pointed at the
Atrium server: FeatureStore.write_to_online_store posts to
/write-to-online-store and get_online_features to /get-online-features, so the
real client checks our wire format. Prints the results as one JSON object.

Usage: python feast_online.py URL WORKDIR [TOKEN]

With TOKEN, the remote store sends it as a bearer token, the way Feast's
client sends a Kubernetes service-account token (auth type "kubernetes" with
user_token): Authorization: Bearer TOKEN.
"""
import json
import os
import sys
from datetime import datetime, timedelta, timezone

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
from feast.infra.online_stores.remote import RemoteOnlineStoreConfig
from feast.types import Float64, Int64, String

url, workdir = sys.argv[1], sys.argv[2]
auth = {"type": "no_auth"}
if len(sys.argv) > 3:
    auth = {"type": "kubernetes", "user_token": sys.argv[3]}
os.makedirs(workdir, exist_ok=True)
source_path = os.path.join(workdir, "driver_stats.parquet")
when = datetime(2026, 11, 20, 10, 0, 0, tzinfo=timezone.utc)
frame = pd.DataFrame(
    {
        "driver_id": pd.Series([1001, 1002], dtype="int64"),
        "event_timestamp": [when, when],
        # A whole double (written 1000000.0) and text Go's JSON escapes
        # (\u003c, \u0026, \u2028) must come back as they went in.
        "conv_rate": [0.25, 1e6],
        "trips": pd.Series([12, 7], dtype="int64"),
        "city": ["Lyon", "Nice <&> \u2028 ü"],
    }
)
frame.to_parquet(source_path, index=False)

store = FeatureStore(
    config=RepoConfig(
        project="interop",
        registry=os.path.join(workdir, "registry.db"),
        provider="local",
        online_store=RemoteOnlineStoreConfig(path=url),
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
        auth=auth,
    )
)
driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(days=3650),
    schema=[
        Field(name="conv_rate", dtype=Float64),
        Field(name="trips", dtype=Int64),
        Field(name="city", dtype=String),
    ],
    source=FileSource(path=source_path, timestamp_field="event_timestamp"),
    online=True,
)
store.apply([driver, driver_stats])

# Feast writes rows through the server (its remote store's online_write_batch).
store.write_to_online_store("driver_stats", frame)

features = ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:city"]
rows = [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 9}]
out = store.get_online_features(features=features, entity_rows=rows).to_dict()
out["conv_rate_types"] = [type(v).__name__ for v in out["conv_rate"]]
print(json.dumps(out, default=str))
