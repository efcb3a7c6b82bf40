#!/usr/bin/env bash
# Tracking benchmark against MLflow's experimental Go backend (mlflow-go, PyPI
# `mlflow-go-backend`): the real mlflow-go server and `atrium serve`, one after
# the other on this machine, on PostgreSQL (mlflow-go's own benchmark backend)
# and on SQLite, each driven by the same Go load generator
# (bench/tracking/loadgen, groups `runs` and `latency`: create_run, search_runs,
# search_runs_1000_c20 = mlflow-go's k6 SearchRuns, log_batch_500_c20 =
# mlflow-go's k6 LogMetricBatch500). Prints the markdown tables for
# docs/benchmarks.md and leaves the JSON reports and server logs in $OUT.
#
#   bench/tracking/mlflow-go.sh                        # 10,000 runs, 20 s per timed phase
#   RUNS=500 DURATION=5s bench/tracking/mlflow-go.sh   # a quick look
#
# Servers, in this order, each on a fresh database that is dropped afterwards:
#   mlflow-go 0.2.2 (the newest release; with mlflow 3.0.1) on PostgreSQL and SQLite
#   mlflow-go 0.2.0 (the newest release before MLflow 3's logged models; with
#                    mlflow 2.20.0) on PostgreSQL and SQLite
#   atrium serve on PostgreSQL (ATRIUM_META) and on its default SQLite
#   atrium serve again on both, its run cache off (server.run_cache_mib: 0),
#                    so every search writes its whole page
# A server whose answers fail the load generator's checks is reported as failed
# (with the server's own error) and the script goes on with the next one.
#
# Each mlflow-go release is installed by pip into its own virtualenv under
# $MLFLOW_GO_VENVS. Two things about the wheels, both worked around here rather
# than patched:
#   - the manylinux wheels ship the Go library as `libmlflow-go-backend.dylib`
#     (an ELF shared object) while mlflow_go_backend/lib.py looks for `.so` on
#     Linux and otherwise tries to build it from Go sources the wheel does not
#     contain; MLFLOW_GO_LIBRARY_PATH points at a directory holding a `.so`
#     symlink to the shipped file.
#   - the wheels require only `mlflow>=2.19.0`, but 0.2.2 imports TraceInfoV2
#     (mlflow 3.0 to 3.x only) and 0.2.0 the 2.x TraceInfo, so each is pinned to
#     the mlflow of its time; SQLAlchemy is held below 2.1, which those mlflow
#     releases cannot import.
# PostgreSQL is the CI one (.ci/services.sh, 127.0.0.1:54329, fsync=off).
# Runs niced; expect about 20 minutes at full size on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-10000}
DURATION=${DURATION:-20s}
OUT=${OUT:-$(mktemp -d /tmp/atrium-bench-mlflowgo.XXXXXX)}
PORT=${PORT:-15988}
MLFLOW_GO_VENVS=${MLFLOW_GO_VENVS:-/tmp/atrium-bench/mlflow-go}
mkdir -p "$OUT" "$MLFLOW_GO_VENVS"

. .ci/services.sh >/dev/null
pg_admin="$ATRIUM_TEST_POSTGRES"
pg_base="${ATRIUM_TEST_POSTGRES%%\?*}" # postgres://user@host:port/postgres
pg_base="${pg_base%/*}"                # postgres://user@host:port

. bench/tracking/lib.sh
build_bench_tools "$OUT"

# mlflow_go_venv VERSION MLFLOW_VERSION: installs mlflow-go-backend VERSION
# (once) and prints the virtualenv's directory; its lib/ holds the .so link.
mlflow_go_venv() {
	local dir="$MLFLOW_GO_VENVS/$1"
	if [ ! -x "$dir/bin/mlflow-go" ]; then
		echo "bench: pip install mlflow-go-backend==$1 mlflow==$2 into $dir" >&2
		rm -rf "$dir"
		python3 -m venv "$dir"
		"$dir/bin/pip" install -q "mlflow-go-backend==$1" "mlflow==$2" "sqlalchemy<2.1" >&2
	fi
	local pkg
	pkg=$("$dir/bin/python" -c 'import mlflow_go_backend, os; print(os.path.dirname(mlflow_go_backend.__file__))')
	mkdir -p "$dir/lib-go"
	ln -sf "$pkg/libmlflow-go-backend.dylib" "$dir/lib-go/libmlflow-go-backend.so"
	ln -sf "$pkg/libmlflow-go-backend.h" "$dir/lib-go/libmlflow-go-backend.h"
	echo "$dir"
}

pgids=()
dbs=()
cleanup() {
	for pgid in "${pgids[@]}"; do
		kill -TERM -- "-$pgid" 2>/dev/null || true
	done
	sleep 1
	for db in "${dbs[@]}"; do
		psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	done
}
trap cleanup EXIT

# fresh_db NAME: creates an empty PostgreSQL database, dropped on exit.
fresh_db() {
	psql "$pg_admin" -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
	dbs+=("$1")
}

# stop_server: stops the last server started, with its child processes (mlflow-go
# runs `mlflow server`, i.e. gunicorn and its workers, for the endpoints it
# proxies).
stop_server() {
	local pgid=${pgids[-1]}
	kill -TERM -- "-$pgid" 2>/dev/null || true
	for _ in $(seq 100); do
		ps -eo pgid=,stat= | awk -v g="$pgid" '$1 == g && $2 !~ /^Z/ {found = 1} END {exit !found}' || break
		sleep 0.2
	done
	kill -KILL -- "-$pgid" 2>/dev/null || true
	wait "$pgid" 2>/dev/null || true
}

# drive LABEL URL: runs the load generator; a failed check is reported, not fatal.
drive() {
	echo "bench: $1: load average $(cut -d' ' -f1-3 /proc/loadavg)"
	if ! nice "$OUT/bin/loadgen" -url "$2" -label "$1" -runs "$RUNS" -duration "$DURATION" \
		-only runs,latency -out "$OUT/$1.json" 2>&1 | tee "$OUT/$1.loadgen.log"; then
		echo "bench: $1 FAILED: $(tail -n 1 "$OUT/$1.loadgen.log")"
		grep -m 1 -E 'level=error msg="SQL error"' "$OUT/$1/server.log" | cut -c 1-600 || true
	fi
}

# run_mlflow_go LABEL VENV BACKEND_URI
run_mlflow_go() {
	local label=$1 venv=$2 uri=$3
	mkdir -p "$OUT/$label"
	# log_level=warn: no line per request (mlflow-go's benchmark used fatal),
	# but its errors stay in the log.
	(cd "$OUT/$label" && MLFLOW_GO_LIBRARY_PATH="$venv/lib-go" PATH="$venv/bin:$PATH" exec setsid nice \
		"$venv/bin/mlflow-go" server --backend-store-uri "$uri" \
		--artifacts-destination "$OUT/$label/artifacts" --host 127.0.0.1 --port "$PORT" \
		--go-opts log_level=warn >"$OUT/$label/server.log" 2>&1) &
	pgids+=($!)
	wait_http "http://127.0.0.1:$PORT/health"
	drive "$label" "http://127.0.0.1:$PORT"
	stop_server
	# Errors answered during the warm-ups (whose outcome the load generator
	# ignores) show only here, e.g. mlflow-go's PostgreSQL deadlocks in
	# log-batch (mlflow/mlflow-go-backend#81).
	local failed
	failed=$(grep -c 'level=error msg="Error encountered' "$OUT/$label/server.log" || true)
	echo "bench: $label answered $failed requests with an error (server.log)"
	grep -m 1 'level=error msg="Error encountered' "$OUT/$label/server.log" | cut -c 1-400 || true
}

# run_atrium LABEL [META_URL [RUN_CACHE_MIB]]
run_atrium() {
	local label=$1 meta=${2:-} cache=${3:-}
	mkdir -p "$OUT/$label"
	if [ -n "$cache" ]; then
		printf 'server:\n  run_cache_mib: %s\n' "$cache" >"$OUT/$label/atrium.yaml"
	fi
	(
		[ -n "$meta" ] && export ATRIUM_META="$meta"
		exec setsid nice "$OUT/bin/atrium" serve --repo "$OUT/$label" --addr 127.0.0.1:0 2>"$OUT/$label/server.log"
	) &
	pgids+=($!)
	local addr
	addr=$(atrium_addr "$OUT/$label/server.log")
	wait_http "$addr/readyz"
	drive "$label" "$addr"
	stop_server
}

venv022=$(mlflow_go_venv 0.2.2 3.0.1)
venv020=$(mlflow_go_venv 0.2.0 2.20.0)
pgversion=$(psql "$pg_admin" -Atc 'SHOW server_version')
echo "bench: $machine; PostgreSQL $pgversion; runs=$RUNS duration=$DURATION"
for v in "$venv022" "$venv020"; do
	echo "bench: $("$v/bin/pip" list 2>/dev/null | awk '$1 == "mlflow-go-backend" || $1 == "mlflow" || $1 == "SQLAlchemy" {printf "%s %s  ", $1, $2}')"
done

db=atrium_bench_mlflowgo_$$
fresh_db "${db}_a"
run_mlflow_go mlflow-go-0.2.2-pg "$venv022" "postgresql${pg_base#postgres}/${db}_a"
run_mlflow_go mlflow-go-0.2.2-sqlite "$venv022" "sqlite:///$OUT/mlflow-go-0.2.2-sqlite/mlflow.db"
fresh_db "${db}_b"
run_mlflow_go mlflow-go-0.2.0-pg "$venv020" "postgresql${pg_base#postgres}/${db}_b"
run_mlflow_go mlflow-go-0.2.0-sqlite "$venv020" "sqlite:///$OUT/mlflow-go-0.2.0-sqlite/mlflow.db"
fresh_db "${db}_c"
run_atrium atrium-pg "$pg_base/${db}_c?sslmode=disable"
run_atrium atrium-sqlite
# Atrium with its run cache off: every search writes its whole page.
fresh_db "${db}_d"
run_atrium atrium-pg-nocache "$pg_base/${db}_d?sslmode=disable" 0
run_atrium atrium-sqlite-nocache "" 0

echo
echo "Machine: $machine; PostgreSQL $pgversion. Reports and server logs: $OUT"
echo
# All servers, the peer on mlflow-go's own backend (PostgreSQL) first.
reports=()
for label in mlflow-go-0.2.0-pg atrium-pg atrium-pg-nocache mlflow-go-0.2.0-sqlite mlflow-go-0.2.2-sqlite atrium-sqlite atrium-sqlite-nocache; do
	if [ -f "$OUT/$label.json" ]; then
		reports+=("$OUT/$label.json")
	fi
done
if [ ${#reports[@]} -ge 3 ]; then
	"$OUT/bin/loadgen" -compare "${reports[@]}"
fi
for pair in "mlflow-go-0.2.0-pg atrium-pg" "mlflow-go-0.2.0-pg atrium-pg-nocache" "mlflow-go-0.2.0-sqlite atrium-sqlite" \
	"mlflow-go-0.2.0-sqlite atrium-sqlite-nocache" "mlflow-go-0.2.2-sqlite atrium-sqlite"; do
	set -- $pair
	if [ -f "$OUT/$1.json" ] && [ -f "$OUT/$2.json" ]; then
		echo
		"$OUT/bin/loadgen" -compare "$OUT/$1.json" "$OUT/$2.json"
	fi
done
