#!/usr/bin/env bash
# What the rank tail at a high rate is made of: the same project as run.sh
# (rank gen, apply, run, materialize, two registered versions), then, for
# each setting in turn (alternated over ROUNDS), a fresh `atrium serve`, a
# 5 s warm-up at 100 req/s and an open loop at RATE req/s of rank requests.
#
#   bench/serving/rank/tail.sh     # BENCH_DIR=/tmp/atrium-bench-tail RATE=500 DURATION=15s ROUNDS=2
#                                  # SETTINGS="gogc=100,log=on gogc=400,log=on gogc=400,log=off gogc=100,log=0.1"
#
# Settings run in order in odd rounds, reversed in even ones. A setting is
# gogc=N (the server's GOGC), log=on|off|RATE (the prediction log on, off,
# or sampling that share of requests) and optionally bin=PATH, an
# atrium binary to serve with instead of this checkout's (another build,
# alternated with this one in the same run). Results: one JSON line
# per run in $BENCH_DIR/results.jsonl, each printed after its setting with
# the prediction log's rows logged and dropped. Run it
# on a quiet machine: the load generator shares the cores with the server.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
B=${BENCH_DIR:-/tmp/atrium-bench-tail}
RATE=${RATE:-500}
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-2}
SETTINGS=${SETTINGS:-gogc=100,log=on gogc=400,log=on gogc=400,log=off gogc=100,log=0.1}
mkdir -p "$B"
(cd "$repo" && go build -o "$B/atrium" ./cmd/atrium && go build -o "$B/rank" ./bench/serving/rank)
proj=$B/project
cli() { "$B/atrium" --repo "$proj" "$@"; }
if [ ! -d "$proj/.atrium" ]; then
	"$B/rank" gen -dir "$proj" -users 10000 -listings 50000
	cli apply >/dev/null
	today=$(date -u +%Y-%m-%d)
	cli run user_profile --start "$today" --end "$today" >/dev/null
	cli run listing_profile --start "$today" --end "$today" >/dev/null
	cli materialize --end now
	"$B/rank" register -dir "$proj"
fi
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
: >"$B/results.jsonl"
# Even rounds run the settings in reverse order (A B, B A, A B, ...): a server
# started right after another ran measurably slower at times (2026-12-07:
# the second of two identical builds had the higher p50 in every round), so a
# fixed order would favour the first setting.
read -ra forward <<<"$SETTINGS"
for round in $(seq "$ROUNDS"); do
	order=("${forward[@]}")
	if ((round % 2 == 0)); then
		order=()
		for ((i = ${#forward[@]} - 1; i >= 0; i--)); do order+=("${forward[i]}"); done
	fi
	for setting in "${order[@]}"; do
		gogc=100 log=on bin=$B/atrium
		IFS=, read -ra kvs <<<"$setting"
		for kv in "${kvs[@]}"; do
			case $kv in
			gogc=*) gogc=${kv#gogc=} ;;
			log=*) log=${kv#log=} ;;
			bin=*) bin=${kv#bin=} ;;
			*) echo "tail: setting $setting: unknown $kv (want gogc=N,log=on|off|RATE[,bin=PATH])" >&2; exit 2 ;;
			esac
		done
		case $log in
		on) rm -f "$proj/atrium.yaml" ;;
		off) printf 'serving:\n  prediction_log:\n    enabled: false\n' >"$proj/atrium.yaml" ;;
		*) printf 'serving:\n  prediction_log:\n    sample_rate: %s\n' "$log" >"$proj/atrium.yaml" ;;
		esac
		addr=127.0.0.1:$(free_port)
		GOGC=$gogc "$bin" --repo "$proj" serve --addr "$addr" 2>"$B/serve.log" &
		pid=$!
		for _ in $(seq 120); do curl -sf -o /dev/null "http://$addr/healthz" && break; sleep 0.5; done
		"$B/rank" load -url "http://$addr" -duration 5s -mode open -rate 100 >/dev/null # warm-up
		echo "round $round $setting, load average $(cut -d' ' -f1-3 /proc/loadavg)"
		"$B/rank" load -url "http://$addr" -duration "$DURATION" -mode open -rate "$RATE" -path rank -out "$B/results.jsonl"
		# What the log kept up with: rows written and dropped (buffer full)
		# since the server started, warm-up included.
		curl -s "http://$addr/metrics" | awk '/^atrium_prediction_log_rows_total/ {w+=$2} /^atrium_prediction_log_dropped_rows_total/ {d+=$2} END {printf "prediction log: %d rows logged, %d dropped\n", w, d}'
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		sleep 3
	done
done
rm -f "$proj/atrium.yaml"
