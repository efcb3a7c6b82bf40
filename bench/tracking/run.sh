#!/usr/bin/env bash
# Tracking benchmark: the real `mlflow server` (SQLite backend, its default
# uvicorn with 4 workers) and `atrium serve` (SQLite; then again with its run
# cache off, for the `runs` workloads), one after the other on this machine, each driven by the same Go load generator (bench/tracking/loadgen)
# over HTTP. Prints the markdown table for docs/benchmarks.md and leaves the
# JSON reports in $OUT.
#
#   bench/tracking/run.sh                 # full size: 10,000 runs, 20 s per timed phase
#   RUNS=500 DURATION=5s bench/tracking/run.sh   # a quick look
#
# Installs nothing beyond the interop virtualenv (.ci/python.sh: mlflow includes
# `mlflow server`). Runs niced; expect about 40 minutes at full size on 2 cores,
# nearly all of it spent seeding MLflow.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-10000}
DURATION=${DURATION:-20s}
OUT=${OUT:-$(mktemp -d /tmp/atrium-bench-tracking.XXXXXX)}
MLFLOW_PORT=${MLFLOW_PORT:-15987}
mkdir -p "$OUT"

. .ci/python.sh >/dev/null
mlflow_bin="$(dirname "$ATRIUM_TEST_PYTHON")/mlflow"

. bench/tracking/lib.sh
build_bench_tools "$OUT"

pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT

echo "bench: $machine; mlflow $("$ATRIUM_TEST_PYTHON" -c 'import mlflow; print(mlflow.__version__)'); runs=$RUNS duration=$DURATION"

# 1. MLflow.
mkdir -p "$OUT/mlflow"
nice "$mlflow_bin" server --backend-store-uri "sqlite:///$OUT/mlflow/mlflow.db" \
	--artifacts-destination "$OUT/mlflow/artifacts" --host 127.0.0.1 --port "$MLFLOW_PORT" \
	>"$OUT/mlflow/server.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$MLFLOW_PORT/health"
nice "$OUT/bin/loadgen" -url "http://127.0.0.1:$MLFLOW_PORT" -label mlflow -runs "$RUNS" -duration "$DURATION" -out "$OUT/mlflow.json"
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null || true

# 2. Atrium, on a fresh project directory (SQLite metadata, file artifacts),
# with its defaults (the run cache on).
start_atrium() { # LABEL [RUN_CACHE_MIB]
	mkdir -p "$OUT/$1"
	if [ -n "${2:-}" ]; then
		printf 'server:\n  run_cache_mib: %s\n' "$2" >"$OUT/$1/atrium.yaml"
	fi
	nice "$OUT/bin/atrium" serve --repo "$OUT/$1" --addr 127.0.0.1:0 2>"$OUT/$1/server.log" &
	pids+=($!)
	addr=$(atrium_addr "$OUT/$1/server.log")
	wait_http "$addr/readyz"
}
start_atrium atrium
nice "$OUT/bin/loadgen" -url "$addr" -label atrium -runs "$RUNS" -duration "$DURATION" -out "$OUT/atrium.json"
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null || true

# 3. Atrium with its run cache off (server.run_cache_mib: 0): every search
# writes its whole page, as on a first search or after every run changed.
start_atrium atrium-nocache 0
nice "$OUT/bin/loadgen" -url "$addr" -label atrium-nocache -runs "$RUNS" -duration "$DURATION" -only runs -out "$OUT/atrium-nocache.json"

echo
echo "Machine: $machine. Reports: $OUT/mlflow.json, $OUT/atrium.json, $OUT/atrium-nocache.json"
echo
"$OUT/bin/loadgen" -compare "$OUT/mlflow.json" "$OUT/atrium.json"
echo
echo "Run cache off:"
"$OUT/bin/loadgen" -compare "$OUT/mlflow.json" "$OUT/atrium-nocache.json"
