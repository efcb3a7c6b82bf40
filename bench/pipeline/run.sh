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
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/atrium-bench-pipeline}
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
echo "== load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$BENCH_DIR/venv/bin/python" bench/pipeline/peers.py --dir "$BENCH_DIR" --spine "$SPINE" --feast-spine "$FEAST_SPINE"
