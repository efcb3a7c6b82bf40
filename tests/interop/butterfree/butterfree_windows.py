"""Rolling-window aggregations of events by butterfree, for the Go test beside it.

Usage: butterfree_windows.py EVENTS_CSV END_DATE WINDOWS OUT_CSV
EVENTS_CSV has columns id, ts, v; WINDOWS is comma-separated butterfree window
definitions ("1 day,3 days"); END_DATE is butterfree's end_date: inclusive in 1.8 (it keeps
rows with date(timestamp) <= end_date), whatever its docstring says.
Writes one row per (id, timestamp) butterfree produces, deduplication off, with
every aggregate column, to OUT_CSV (empty cells for nulls).
"""
import sys

import pyspark.sql.functions as F
from butterfree.clients import SparkClient
from butterfree.constants import DataType
from butterfree.transform.aggregated_feature_set import AggregatedFeatureSet
from butterfree.transform.features import Feature, KeyFeature, TimestampFeature
from butterfree.transform.transformations import AggregatedTransform
from butterfree.transform.utils import Function

events, end_date, windows, out = sys.argv[1:5]
client = SparkClient()
client.conn.conf.set("spark.sql.session.timeZone", "UTC")
client.conn.conf.set("spark.sql.shuffle.partitions", "2")
df = client.conn.read.csv(events, header=True, schema="id BIGINT, ts STRING, v DOUBLE")
df = df.withColumn("ts", F.col("ts").cast("timestamp"))

fs = AggregatedFeatureSet(
    name="events_agg",
    entity="item",
    description="the Go test's events",
    keys=[KeyFeature(name="id", description="key", dtype=DataType.BIGINT)],
    timestamp=TimestampFeature(from_column="ts"),
    features=[
        Feature(
            name="v",
            description="value",
            transformation=AggregatedTransform(
                functions=[
                    Function(F.sum, DataType.DOUBLE),
                    Function(F.count, DataType.BIGINT),
                    Function(F.avg, DataType.DOUBLE),
                    Function(F.min, DataType.DOUBLE),
                    Function(F.max, DataType.DOUBLE),
                    Function(F.stddev_pop, DataType.DOUBLE),
                ]
            ),
            from_column="v",
        )
    ],
    deduplicate_rows=False,
).with_windows(definitions=windows.split(","))

result = fs.construct(dataframe=df, client=client, end_date=end_date)
result.orderBy("id", "timestamp").toPandas().to_csv(out, index=False, date_format="%Y-%m-%d %H:%M:%S")
