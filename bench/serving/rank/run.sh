#!/usr/bin/env bash
# Rank benchmark: POST /v1/models/ranker/rank against `atrium serve`, a user
# and 200 candidates per request, 30 features (user_profile u00..u14,
# listing_profile l00..l14) read from the embedded Pebble online store,
# scored by a 300-tree GBDT, the prediction log on (its default).
#
#   bench/serving/rank/run.sh        # BENCH_DIR=/tmp/atrium-bench-rank DURATION=20s RATES="100 500" SWAP_RATE=100
#
# It builds atrium and the load generator, writes the project (rank gen),
# takes the data through the product's path (atrium apply, run, materialize),
# registers two versions of the model (rank register; champion -> 1), starts
# `atrium serve` on loopback and measures:
#   - open loop at each of $RATES req/s: p50, p99, p99.9 (latency from when each request was due)
#   - closed loop with 1 and 4 clients: throughput
#   - the same against the two-request path a client takes without rank
#     (POST /get-online-features, then /v2/models/ranker/infer), same server
#   - open loop at $SWAP_RATE req/s, steady and while champion moves between versions 1 and 2
#     every 2 s through the MLflow API: p99 of the requests sent within 1 s
#     after a move against the p99 of the others, errors
# Results are JSON lines in $BENCH_DIR/results.jsonl. Load generator and
# server share the machine's cores: run it on a quiet machine.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/atrium-bench-rank}
DURATION=${DURATION:-20s}
RATES=${RATES:-100 500}
SWAP_RATE=${SWAP_RATE:-100}
USERS=${USERS:-10000}
LISTINGS=${LISTINGS:-50000}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ADDR=127.0.0.1:$(free_port)

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

wait_for() { # url
	for _ in $(seq 240); do
		curl -sf -o /dev/null "$1" && return 0
		sleep 0.5
	done
	echo "bench: $1 did not come up" >&2
	return 1
}

mkdir -p "$BENCH_DIR"
(cd "$repo" && go build -o "$BENCH_DIR/atrium" ./cmd/atrium && go build -o "$BENCH_DIR/rank" ./bench/serving/rank)
proj="$BENCH_DIR/project"
atrium_cli() { "$BENCH_DIR/atrium" --repo "$proj" "$@"; }
if [ "${REUSE:-}" = 1 ] && [ -d "$proj/.atrium" ]; then
	echo "bench: reusing $proj (REUSE=1)"
else
	rm -rf "$proj"
	"$BENCH_DIR/rank" gen -dir "$proj" -users "$USERS" -listings "$LISTINGS"
	atrium_cli apply >/dev/null
	today=$(date -u +%Y-%m-%d)
	atrium_cli run user_profile --start "$today" --end "$today" >/dev/null
	atrium_cli run listing_profile --start "$today" --end "$today" >/dev/null
	atrium_cli materialize --end now
	"$BENCH_DIR/rank" register -dir "$proj"
fi

"$BENCH_DIR/atrium" --repo "$proj" serve --addr "$ADDR" 2>"$BENCH_DIR/atrium.log" &
pids+=($!)
url="http://$ADDR"
wait_for "$url/healthz"

results="$BENCH_DIR/results.jsonl"
: >"$results"
# Each run starts on an idle server: an overloaded open-loop run leaves a
# queue that would otherwise count against the next.
load() {
	"$BENCH_DIR/rank" load -url "$url" -users "$USERS" -listings "$LISTINGS" -duration "$DURATION" -out "$results" "$@"
	sleep 5
}
# The peer: the same work as two requests to the same server (features from
# /get-online-features, then /v2/models/ranker/infer), interleaved with rank.
for c in 1 4; do
	for path in rank twohop; do load -path "$path" -mode closed -clients "$c"; done
done
for rate in $RATES; do
	for path in rank twohop; do load -path "$path" -mode open -rate "$rate"; done
done
# Steady, then with champion moving every 2 s, at the same rate.
load -mode open -rate "$SWAP_RATE"
load -mode open -rate "$SWAP_RATE" -swap 2s
echo "bench: results in $results"
