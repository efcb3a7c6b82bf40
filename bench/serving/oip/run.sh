#!/usr/bin/env bash
# OIP infer of 200 rows x 30 features with one LightGBM model (300 trees):
# atrium serve against MLServer (mlserver + mlserver-lightgbm from PyPI, in a
# virtualenv of their own), same machine, same model file, same load
# generator (main.go): closed-loop throughput, then p99 at open-loop rates;
# then tritonclient[grpc] closed loop against each server's gRPC endpoint
# (grpc_load.py). The Atrium model is registered the user's way: logged with
# mlflow.lightgbm.log_model to atrium serve, alias champion (prepare.py).
#
#   bench/serving/oip/run.sh                  # full run, about 6 minutes
#   DURATION=5s RATES="50 100" bench/serving/oip/run.sh   # quick
#   LOADGEN_PROCS=1 bench/serving/oip/run.sh   # the Go load generator on one P
#
# The load generator shares the machine's cores with the server it
# measures. LOADGEN_PROCS sets its GOMAXPROCS (and only its: the servers
# keep theirs), to see how much of the cores its runtime takes; unset, it
# runs with Go's default, as in the figures of docs/benchmarks.md unless
# they say otherwise.
#
# Results: $OUT/results.jsonl (one JSON line per run) and the Markdown table
# printed at the end (docs/benchmarks.md, "Model serving: OIP infer").
set -euo pipefail
cd "$(dirname "$0")/../../.."
# shellcheck source=../../../.ci/python.sh
. .ci/python.sh # mlflow, lightgbm, tritonclient: the interop virtualenv
venv=${MLSERVER_VENV:-/tmp/bench-venv-offline}
if [ ! -x "$venv/bin/mlserver" ]; then
	python3 -m venv "$venv"
	# uvloop 0.21 and later raise in asyncio.get_event_loop() without a running
	# loop, which MLServer 1.7's inference pool workers call at start: they die
	# and the model never loads ("There is no current event loop").
	"$venv/bin/pip" install -q --disable-pip-version-check mlserver mlserver-lightgbm 'uvloop<0.21'
fi
OUT=${OUT:-/tmp/atrium-bench/oip}
DURATION=${DURATION:-20s}
RATES=${RATES:-"25 50 100 200"}
CLIENTS=${CLIENTS:-"1 4 16"}
GRPC_SECONDS=${GRPC_SECONDS:-15}
mkdir -p "$OUT"
rm -f "$OUT/results.jsonl"
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {
	for _ in $(seq 1 300); do
		curl -fs "$1" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "bench: $1 did not answer" >&2
	return 1
}

go build -o "$work/atrium" ./cmd/atrium
go build -o "$work/oip" ./bench/serving/oip

# Atrium: a fresh project, served on loopback.
a_http=$(port) a_grpc=$(port)
mkdir -p "$work/project"
# The prediction log is off: MLServer logs nothing, and the log's own cost
# is measured apart (bench/predlog, docs/benchmarks.md "Prediction log").
cat >"$work/project/atrium.yaml" <<YAML
server:
  addr: 127.0.0.1:$a_http
serving:
  grpc_addr: 127.0.0.1:$a_grpc
  prediction_log:
    enabled: false
YAML
(cd "$work/project" && exec "$work/atrium" serve >"$OUT/atrium.log" 2>&1) &
pids+=($!)
wait_http "http://127.0.0.1:$a_http/v2/health/ready"
MLFLOW_TRACKING_URI="http://127.0.0.1:$a_http" "$ATRIUM_TEST_PYTHON" bench/serving/oip/prepare.py "$work"
# The alias is followed within the server's poll interval: wait for the version.
for _ in $(seq 1 100); do
	curl -fs "http://127.0.0.1:$a_http/v2/models/bench-oip/ready" >/dev/null 2>&1 && break
	sleep 0.2
done

# MLServer: the same model file, its REST and gRPC servers.
m_http=$(port) m_grpc=$(port) m_metrics=$(port)
mkdir -p "$work/mlserver/bench-oip"
cp "$work/model.txt" "$work/mlserver/bench-oip/model.txt"
cat >"$work/mlserver/settings.json" <<JSON
{"http_port": $m_http, "grpc_port": $m_grpc, "metrics_port": $m_metrics, "host": "127.0.0.1"}
JSON
cat >"$work/mlserver/bench-oip/model-settings.json" <<JSON
{"name": "bench-oip", "implementation": "mlserver_lightgbm.LightGBMModel", "parameters": {"uri": "./model.txt"}}
JSON
(cd "$work/mlserver" && exec "$venv/bin/mlserver" start . >"$OUT/mlserver.log" 2>&1) &
pids+=($!)
wait_http "http://127.0.0.1:$m_http/v2/models/bench-oip/ready"

a="http://127.0.0.1:$a_http" m="http://127.0.0.1:$m_http"
"$work/oip" check -url "$a" -dir "$work"
"$work/oip" check -url "$m" -dir "$work"
uptime
echo "mlserver $("$venv/bin/pip" show mlserver | awk '/^Version/ {print $2}'), mlserver-lightgbm $("$venv/bin/pip" show mlserver-lightgbm | awk '/^Version/ {print $2}'), $(nproc) cores"
run() {
	env ${LOADGEN_PROCS:+"GOMAXPROCS=$LOADGEN_PROCS"} "$work/oip" run -dir "$work" -duration "$DURATION" -out "$OUT/results.jsonl" "$@"
}
# An overloaded server keeps working through its backlog after the client
# gives up: wait until MLServer answers a request in under 100 ms again
# before the next run, so that it does not take the cores from the next one.
drain() {
	for _ in $(seq 1 120); do
		t=$(curl -s -o /dev/null -w '%{time_total}' -H 'Content-Type: application/json' --data-binary @"$work/body.json" "$m/v2/models/bench-oip/infer" || echo 9)
		awk -v t="$t" 'BEGIN { exit !(t < 0.1) }' && return 0
		sleep 1
	done
}
"$ATRIUM_TEST_PYTHON" -c 'import json, sys; rows = json.load(open(sys.argv[1])); json.dump({"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [len(rows), len(rows[0])], "data": [v for r in rows for v in r]}]}, open(sys.argv[2], "w"))' "$work/rows.json" "$work/body.json"
for c in $CLIENTS; do
	run -url "$a" -name atrium -concurrency "$c"
	run -url "$m" -name mlserver -concurrency "$c"
	drain
done
for r in $RATES; do
	run -url "$a" -name atrium -rate "$r"
	run -url "$m" -name mlserver -rate "$r"
	drain
done
"$work/oip" report -in "$OUT/results.jsonl" | tee "$OUT/report.md"

# tritonclient[grpc], closed loop, 4 clients.
: >"$OUT/grpc.jsonl"
"$ATRIUM_TEST_PYTHON" bench/serving/oip/grpc_load.py "127.0.0.1:$a_grpc" bench-oip "$work" atrium 4 "$GRPC_SECONDS" | tee -a "$OUT/grpc.jsonl"
"$ATRIUM_TEST_PYTHON" bench/serving/oip/grpc_load.py "127.0.0.1:$m_grpc" bench-oip "$work" mlserver 4 "$GRPC_SECONDS" | tee -a "$OUT/grpc.jsonl"
uptime
