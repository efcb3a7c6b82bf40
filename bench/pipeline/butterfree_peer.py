"""butterfree's peer of listing_engagement, for `bench/pipeline/run.sh spark`.

Usage: butterfree_peer.py --dir DIR --start 2024-01-01 --days 90 --driver-memory 4g --partitions 4

Builds the same aggregated set as bench/pipeline/main.go's listing_engagement
(windows 1, 7 and 28 days, stepped daily; clicks and impressions counted,
distinct viewers, avg and max dwell, and ctr_7d) with butterfree 1.8's
AggregatedFeatureSet on a local pyspark session (local[2], the driver memory
and shuffle partitions of the Spark Connect server Atrium ran on), over
DIR/data/events.parquet, and writes it to DIR/butterfree-out as Parquet. The
timed part is reading the events, constructing the set and writing it. Writes
DIR/results-butterfree.json (seconds, rows); main.go's butterfree step checks
the output against Atrium's.
"""
import argparse
import json
import os
import time
from datetime import date, timedelta

import pyspark.sql.functions as F
from butterfree.clients import SparkClient
from butterfree.constants import DataType
from butterfree.transform.aggregated_feature_set import AggregatedFeatureSet
from butterfree.transform.features import Feature, KeyFeature, TimestampFeature
from butterfree.transform.transformations import AggregatedTransform
from butterfree.transform.utils import Function
from pyspark.sql import SparkSession

p = argparse.ArgumentParser()
p.add_argument("--dir", required=True)
p.add_argument("--start", default="2024-01-01")
p.add_argument("--days", type=int, default=90)
p.add_argument("--driver-memory", default="4g")
p.add_argument("--partitions", type=int, default=4)
a = p.parse_args()

spark = (
    SparkSession.builder.master("local[2]")
    .config("spark.driver.memory", a.driver_memory)
    .config("spark.sql.shuffle.partitions", str(a.partitions))
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
    .config("spark.ui.enabled", "false")
    .config("spark.ui.showConsoleProgress", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("WARN")
client = SparkClient()  # butterfree's client takes the session above (getOrCreate)
heap = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory() / 2**30
print(f"butterfree: pyspark {spark.version}, {spark.sparkContext.master}, JVM max heap {heap:.1f} GiB, shuffle partitions {a.partitions}")


def feature(name, column, functions, filter_expression=None):
    return Feature(
        name=name,
        description=name,
        from_column=column,
        transformation=AggregatedTransform(functions=functions, filter_expression=filter_expression),
    )


fs = AggregatedFeatureSet(
    name="listing_engagement",
    entity="listing",
    description="bench/pipeline's listing_engagement",
    keys=[KeyFeature(name="listing_id", description="listing", dtype=DataType.BIGINT)],
    timestamp=TimestampFeature(from_column="ts"),
    features=[
        # Atrium sums CAST(event = 'click' AS INTEGER): the same as counting clicks.
        feature("clicks", "event", [Function(F.count, DataType.BIGINT)], "event = 'click'"),
        feature("impressions", "event", [Function(F.count, DataType.BIGINT)], "event = 'impression'"),
        feature("viewers", "user_id", [Function(F.count_distinct, DataType.BIGINT)]),
        feature("dwell", "dwell_s", [Function(F.avg, DataType.DOUBLE), Function(F.max, DataType.DOUBLE)]),
    ],
    # Atrium keeps every event; butterfree's default drops duplicated rows.
    deduplicate_rows=False,
).with_windows(definitions=["1 day", "7 days", "28 days"])

# Atrium's steps are the days start .. start+days-1. butterfree's end_date is
# inclusive: its date grid runs to end_date and construct keeps
# date(timestamp) <= end_date (its docstring says exclusive).
end_date = (date.fromisoformat(a.start) + timedelta(days=a.days - 1)).isoformat()
out = os.path.join(a.dir, "butterfree-out")

t0 = time.time()
events = spark.read.parquet(os.path.join(a.dir, "data", "events.parquet"))
# num_processors=1: butterfree repartitions by num_processors x 4, the same 4
# partitions as the shuffles (Atrium's sessions set spark.sql.shuffle.partitions=4).
df = fs.construct(dataframe=events, client=client, end_date=end_date, num_processors=1)
# Atrium's derived feature.
impressions_7d = F.col("impressions__count_over_7_days_rolling_windows")
df = df.withColumn(
    "ctr_7d", F.col("clicks__count_over_7_days_rolling_windows") / F.when(impressions_7d != 0, impressions_7d)
)
df.write.mode("overwrite").parquet(out)
secs = time.time() - t0
rows = spark.read.parquet(out).count()
print(f"butterfree: listing_engagement {secs:.2f} s, {rows} rows")
with open(os.path.join(a.dir, "results-butterfree.json"), "w") as f:
    json.dump({"seconds": secs, "rows": rows}, f)
