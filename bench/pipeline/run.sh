#!/usr/bin/env bash
# Offline data-layer benchmark: Atrium's pipelines, point-in-time join and latest-
# row scan on generated marketplace data, next to peers measured in the same run
# on the same files:
#   - hand-written DuckDB SQL (the aggregation as a range join with FILTERed
#     aggregates; the point-in-time join as a bare ASOF join), in main.go;
#   - pandas.merge_asof and Feast's get_historical_features (local file offline
#     store), in peers.py.
# Every peer's result is checked equal to Atrium's before its time is printed.
#
#   bench/pipeline/run.sh      # EVENTS=10000000 SPINE=1000000 FEAST_SPINE=100000 BENCH_DIR=/tmp/atrium-bench-pipeline
#
# Python peers are installed with pip into $BENCH_DIR/venv (pandas, pyarrow, feast).
# Set FEAST_SPINE=0 to skip Feast. Run it on a quiet machine: both cores are used.
#
#   bench/pipeline/run.sh spark   # SPARK_EVENTS="1000000 10000000" SPARK_DRIVER_MEMORY=4g SPARK_PORT=15012
#
# The aggregated set (listing_engagement) on Spark, for each size in
# SPARK_EVENTS: Atrium's DuckDB engine, Atrium's run computed on a Spark Connect
# server (checked equal to DuckDB's), and butterfree 1.8 on a pyspark session
# (checked against Atrium's), on the same event files. .ci/spark.sh installs
# pyspark, the Connect jar and butterfree under $BENCH_DIR/spark (reused across
# runs) and starts the server, local[2] with SPARK_DRIVER_MEMORY, which is also
# butterfree's session's; the server is stopped at the end.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/atrium-bench-pipeline}
load() { echo "== load average $(cut -d' ' -f1-3 /proc/loadavg)"; }

if [ "${1:-}" = spark ]; then
	SPARK_EVENTS=${SPARK_EVENTS:-"1000000 10000000"}
	SPARK_DRIVER_MEMORY=${SPARK_DRIVER_MEMORY:-4g}
	mkdir -p "$BENCH_DIR/spark"
	cd "$repo"
	go build -o "$BENCH_DIR/bench-pipeline" ./bench/pipeline
	ATRIUM_CI_DIR="$BENCH_DIR/spark" ATRIUM_SPARK_PORT=${SPARK_PORT:-15012} ATRIUM_SPARK_DRIVER_MEMORY=$SPARK_DRIVER_MEMORY
	# shellcheck source=../../.ci/spark.sh
	. .ci/spark.sh
	trap 'kill -- "-$(cat "$ATRIUM_CI_DIR/spark.pid")" 2>/dev/null || true' EXIT
	echo "== machine: $(nproc) cores; Spark local[2], driver memory $SPARK_DRIVER_MEMORY, 4 shuffle partitions"
	for n in $SPARK_EVENTS; do
		d="$BENCH_DIR/spark-$n"
		load
		"$BENCH_DIR/bench-pipeline" -dir "$d" -events "$n" -only run,spark -peers=false -compute "$ATRIUM_TEST_SPARK" 2>&1 | grep -v 'level=DEBUG'
		load
		"$ATRIUM_TEST_BUTTERFREE_PYTHON" bench/pipeline/butterfree_peer.py --dir "$d" --driver-memory "$SPARK_DRIVER_MEMORY" --partitions 4 2>&1 |
			grep -v -e WARN -e '^\s*$' -e 'Setting default log level' -e 'To adjust logging level'
		load
		"$BENCH_DIR/bench-pipeline" -dir "$d" -events "$n" -only butterfree 2>&1 | grep -v 'level=DEBUG'
	done
	exit 0
fi
EVENTS=${EVENTS:-10000000}
SPINE=${SPINE:-1000000}
FEAST_SPINE=${FEAST_SPINE:-100000}
FEAST_VERSION=0.67.0
mkdir -p "$BENCH_DIR"
cd "$repo"

go build -o "$BENCH_DIR/bench-pipeline" ./bench/pipeline
echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$BENCH_DIR/bench-pipeline" -dir "$BENCH_DIR" -events "$EVENTS" -spine "$SPINE" 2>&1 | grep -v 'level=DEBUG'
if [ "$FEAST_SPINE" != 0 ] && [ "$FEAST_SPINE" != "$SPINE" ]; then
	# Atrium on the spine size Feast can handle, for a same-size ratio.
	"$BENCH_DIR/bench-pipeline" -dir "$BENCH_DIR" -events "$EVENTS" -spine "$FEAST_SPINE" -only pit 2>&1 | grep -v 'level=DEBUG'
fi

if [ ! -x "$BENCH_DIR/venv/bin/python" ]; then
	python3 -m venv "$BENCH_DIR/venv"
	"$BENCH_DIR/venv/bin/pip" install -q "feast==$FEAST_VERSION" # brings the pandas and pyarrow it supports
fi
load
"$BENCH_DIR/venv/bin/python" bench/pipeline/peers.py --dir "$BENCH_DIR" --spine "$SPINE" --feast-spine "$FEAST_SPINE"
