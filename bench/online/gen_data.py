"""Generate the online benchmark's data and Feast feature repository.

Writes, under --out:
  data.parquet          listing_id, event_timestamp, f00..f49: Feast's FileSource
                        and the source of Atrium's feature set (project.sh)
  feast/                feature_store.yaml (SQLite online store, Feast's default)
                        and features.py (entity listing, feature view listing_stats)

Every fifth feature is a string, the others float64. Values are a fixed
function of (listing, feature).
"""
import argparse
import os
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

p = argparse.ArgumentParser()
p.add_argument("--keys", type=int, default=10_000)
p.add_argument("--features", type=int, default=50)
p.add_argument("--out", required=True)

args = p.parse_args()

os.makedirs(os.path.join(args.out, "feast", "data"), exist_ok=True)
ts = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
names = [f"f{f:02d}" for f in range(args.features)]


ids = np.arange(args.keys, dtype="int64")
cols = {"listing_id": ids, "event_timestamp": pd.Series([ts] * args.keys)}
for f, n in enumerate(names):
    if f % 5 == 4:
        cols[n] = np.char.add("cat-", ((ids + f) % 17).astype(str)).astype(object)
    else:
        cols[n] = ((ids * 31 + f * 17) % 1000) / 10.0 + ids / 1e4
df = pd.DataFrame(cols)
df["listing_id"] = df["listing_id"].astype("int64")
df.to_parquet(os.path.join(args.out, "data.parquet"), index=False)

repo = os.path.join(args.out, "feast")
with open(os.path.join(repo, "feature_store.yaml"), "w") as fh:
    fh.write(
        "project: bench\n"
        "registry: data/registry.db\n"
        "provider: local\n"
        "online_store:\n"
        "  type: sqlite\n"
        "  path: data/online.db\n"
        "offline_store:\n"
        "  type: file\n"
    )
fields = ",\n        ".join(
    f'Field(name="{n}", dtype={"String" if f % 5 == 4 else "Float64"})' for f, n in enumerate(names)
)
with open(os.path.join(repo, "features.py"), "w") as fh:
    fh.write(f'''from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, String

listing = Entity(name="listing", join_keys=["listing_id"], value_type=ValueType.INT64)

source = FileSource(path="{os.path.abspath(os.path.join(args.out, "data.parquet"))}", timestamp_field="event_timestamp")

listing_stats = FeatureView(
    name="listing_stats",
    entities=[listing],
    ttl=timedelta(days=30),
    schema=[
        {fields}
    ],
    source=source,
    online=True,
)
''')
print(f"wrote {args.keys} listings x {args.features} features at {ts.isoformat()} to {args.out}")
