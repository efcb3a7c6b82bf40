#!/usr/bin/env bash
# Online serving benchmark: Atrium's feature server against Feast's own
# (`feast serve`, Python, SQLite online store: Feast's default), on the same
# data, driven by the same Go load generator, on the same machine, in one run.
#
#   bench/online/run.sh                 # KEYS=10000 DURATION=20s BENCH_DIR=/tmp/atrium-bench
#
# With ATRIUM_BENCH_REDIS=redis://host:port/db (a Redis to scribble on, e.g.
# $ATRIUM_TEST_REDIS from .ci/services.sh) Atrium is measured on Redis too.
# With ATRIUM_BENCH_CASSANDRA=cassandra://host:port/any (a Cassandra node, e.g.
# $ATRIUM_TEST_CASSANDRA from .ci/cassandra.sh) Atrium and Feast are both
# measured on Cassandra too (feast[cassandra]: Feast's own Cassandra online
# store), each in a keyspace of its own, dropped at the end.
# SERVERS="atrium-cassandra feast-cassandra" measures only those of the servers
# started (atrium, feast, atrium-redis, atrium-cassandra, feast-cassandra).
#
# It installs Feast with pip into $BENCH_DIR/venv, generates the data and Feast's
# feature repo (gen_data.py) and materializes it into Feast; builds atrium and
# takes the same Parquet file through atrium apply, run and materialize (Pebble);
# starts `atrium serve` and `feast serve` on loopback, checks that they give the
# same answers, then measures:
#   - 1 entity x 50 features, open loop at 100 req/s and 1000 req/s
#   - 100 entities x 50 features, open loop at 10 req/s and 100 req/s
#   - both sizes closed loop with 8 clients (throughput)
# and prints a Markdown table (results also in $BENCH_DIR/results.jsonl).
# Load generator and servers share the machine's cores: run it on a quiet machine.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/atrium-bench}
KEYS=${KEYS:-10000}
DURATION=${DURATION:-20s}
FEAST_VERSION=0.67.0
# Free loopback ports, picked now: fixed ones collide with whatever else runs here.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ATRIUM_ADDR=127.0.0.1:$(free_port)
ATRIUM_REDIS_ADDR=127.0.0.1:$(free_port)
FEAST_PORT=$(free_port)
mkdir -p "$BENCH_DIR"

pids=()
cleanups=() # commands run at exit, after the servers are stopped
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for c in "${cleanups[@]}"; do eval "$c" || true; done
}
trap cleanup EXIT

wait_for() { # url
	for _ in $(seq 120); do
		curl -sf -o /dev/null "$1" && return 0
		sleep 0.5
	done
	echo "bench: $1 did not come up" >&2
	return 1
}

venv="$BENCH_DIR/venv"
if ! "$venv/bin/feast" version 2>/dev/null | grep -q "$FEAST_VERSION"; then
	echo "bench: installing feast==$FEAST_VERSION into $venv"
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q --disable-pip-version-check "feast==$FEAST_VERSION"
fi

data="$BENCH_DIR/data"
rm -rf "$data"
"$venv/bin/python" "$repo/bench/online/gen_data.py" --keys "$KEYS" --out "$data"

echo "bench: feast apply + materialize ($KEYS keys)"
start=$(date +%s%N)
(cd "$data/feast" && "$venv/bin/feast" apply >/dev/null &&
	"$venv/bin/feast" materialize 2020-01-01T00:00:00 "$(date -u +%Y-%m-%dT%H:%M:%S)" >/dev/null)
echo "bench: feast materialized $KEYS keys in $((($(date +%s%N) - start) / 1000000)) ms"

# Atrium, the product's path: a project over the same Parquet file, atrium
# apply, run (offline store), materialize (Pebble), serve.
(cd "$repo" && go build -o "$BENCH_DIR/online" ./bench/online && go build -o "$BENCH_DIR/atrium" ./cmd/atrium)
. "$repo/bench/online/project.sh"
proj="$data/atrium"
atrium_project "$proj" "$data/data.parquet" 50
atrium_cli() { "$BENCH_DIR/atrium" --repo "$proj" "$@"; }
atrium_cli apply >/dev/null
atrium_cli run listing_stats --start "$(date -u -d yesterday +%Y-%m-%d)" --end "$(date -u +%Y-%m-%d)" >/dev/null
atrium_cli materialize --end now
"$BENCH_DIR/atrium" --repo "$proj" serve --addr "$ATRIUM_ADDR" 2>"$BENCH_DIR/atrium.log" &
pids+=($!)
(cd "$data/feast" && exec "$venv/bin/feast" serve -p "$FEAST_PORT" -w 2 --no-access-log --max-requests 0) >"$BENCH_DIR/feast.log" 2>&1 &
pids+=($!)
atrium="http://$ATRIUM_ADDR"
feast="http://127.0.0.1:$FEAST_PORT"
wait_for "$atrium/health"
wait_for "$feast/health"
"$BENCH_DIR/online" compare -a "$atrium" -b "$feast" -keys "$KEYS"

servers="atrium feast"
if [ -n "${ATRIUM_BENCH_REDIS:-}" ]; then
	# The same project served from Redis: materialize --full (the metadata DB
	# already records the Pebble run), then a second server.
	sep='?'
	case $ATRIUM_BENCH_REDIS in *\?*) sep='&' ;; esac
	redis_prefix="atrium-bench-$$:"
	redis_url="${ATRIUM_BENCH_REDIS}${sep}prefix=$redis_prefix"
	cleanups+=('"$BENCH_DIR/online" redis-clear -url "$ATRIUM_BENCH_REDIS" -prefix "$redis_prefix"')
	ATRIUM_ONLINE=$redis_url atrium_cli materialize --end now --full
	ATRIUM_ONLINE=$redis_url "$BENCH_DIR/atrium" --repo "$proj" serve --addr "$ATRIUM_REDIS_ADDR" 2>"$BENCH_DIR/atrium-redis.log" &
	pids+=($!)
	atrium_redis="http://$ATRIUM_REDIS_ADDR"
	wait_for "$atrium_redis/health"
	"$BENCH_DIR/online" compare -a "$atrium_redis" -b "$feast" -keys "$KEYS"
	servers="$servers atrium-redis"
fi

if [ -n "${ATRIUM_BENCH_CASSANDRA:-}" ]; then
	# One node, two keyspaces: Atrium's (created by the store) and Feast's
	# (Feast expects it to exist). Feast's Cassandra online store is an extra.
	if ! "$venv/bin/python" -c 'import cassandra' 2>/dev/null; then
		echo "bench: installing feast[cassandra]==$FEAST_VERSION into $venv"
		"$venv/bin/pip" install -q --disable-pip-version-check "feast[cassandra]==$FEAST_VERSION"
	fi
	cass=${ATRIUM_BENCH_CASSANDRA#cassandra://}
	cass=${cass%%/*}
	cass=${cass%%\?*}
	cass_host=${cass%%:*}
	cass_port=9042
	case $cass in *:*) cass_port=${cass##*:} ;; esac
	ks_atrium=atrium_bench_$$
	ks_feast=feast_bench_$$
	cql() { # statement
		"$venv/bin/python" -c 'import sys
from cassandra.cluster import Cluster
c = Cluster([sys.argv[1]], port=int(sys.argv[2]))
c.connect().execute(sys.argv[3], timeout=60)
c.shutdown()' "$cass_host" "$cass_port" "$1"
	}
	cleanups+=('cql "DROP KEYSPACE IF EXISTS $ks_atrium"' 'cql "DROP KEYSPACE IF EXISTS $ks_feast"')
	cql "CREATE KEYSPACE $ks_feast WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
	rm -rf "$data/feast-cassandra"
	cp -r "$data/feast" "$data/feast-cassandra"
	rm -f "$data/feast-cassandra/data/registry.db"
	cat >"$data/feast-cassandra/feature_store.yaml" <<-YAML
		project: bench
		registry: data/registry.db
		provider: local
		online_store:
		  type: cassandra
		  hosts: [$cass_host]
		  port: $cass_port
		  keyspace: $ks_feast
		offline_store:
		  type: file
	YAML
	echo "bench: feast apply + materialize into Cassandra ($KEYS keys)"
	start=$(date +%s%N)
	(cd "$data/feast-cassandra" && "$venv/bin/feast" apply >/dev/null &&
		"$venv/bin/feast" materialize 2020-01-01T00:00:00 "$(date -u +%Y-%m-%dT%H:%M:%S)" >/dev/null)
	echo "bench: feast materialized $KEYS keys into Cassandra in $((($(date +%s%N) - start) / 1000000)) ms"
	cass_url="cassandra://$cass/$ks_atrium?create_keyspace=true"
	start=$(date +%s%N)
	ATRIUM_ONLINE=$cass_url atrium_cli materialize --end now --full
	echo "bench: atrium materialized $KEYS keys into Cassandra in $((($(date +%s%N) - start) / 1000000)) ms"
	ATRIUM_CASSANDRA_ADDR=127.0.0.1:$(free_port)
	FEAST_CASSANDRA_PORT=$(free_port)
	ATRIUM_ONLINE=$cass_url "$BENCH_DIR/atrium" --repo "$proj" serve --addr "$ATRIUM_CASSANDRA_ADDR" 2>"$BENCH_DIR/atrium-cassandra.log" &
	pids+=($!)
	(cd "$data/feast-cassandra" && exec "$venv/bin/feast" serve -p "$FEAST_CASSANDRA_PORT" -w 2 --no-access-log --max-requests 0) >"$BENCH_DIR/feast-cassandra.log" 2>&1 &
	pids+=($!)
	atrium_cassandra="http://$ATRIUM_CASSANDRA_ADDR"
	feast_cassandra="http://127.0.0.1:$FEAST_CASSANDRA_PORT"
	wait_for "$atrium_cassandra/health"
	wait_for "$feast_cassandra/health"
	"$BENCH_DIR/online" compare -a "$atrium_cassandra" -b "$feast" -keys "$KEYS"
	"$BENCH_DIR/online" compare -a "$feast_cassandra" -b "$feast" -keys "$KEYS"
	servers="$servers atrium-cassandra feast-cassandra"
fi
servers=${SERVERS:-$servers}

results="$BENCH_DIR/results.jsonl"
: >"$results"
run() { # name url flags...
	local name=$1 url=$2
	shift 2
	"$BENCH_DIR/online" run -name "$name" -url "$url" -keys "$KEYS" -duration "$DURATION" -out "$results" "$@" >/dev/null
}
url_of() {
	case $1 in
	atrium) echo "$atrium" ;;
	atrium-redis) echo "$atrium_redis" ;;
	atrium-cassandra) echo "$atrium_cassandra" ;;
	feast-cassandra) echo "$feast_cassandra" ;;
	feast) echo "$feast" ;;
	esac
}
# wait_idle lets a server finish what a run left queued: its /health must
# answer within 200 ms (a saturated Feast keeps working off its backlog for a
# while after the load stops, which would weigh on whatever runs next).
wait_idle() {
	for _ in $(seq 120); do
		curl -sf -m 0.2 -o /dev/null "$1/health" && return 0
		sleep 1
	done
}
measure() { # server flags...
	local server=$1
	shift
	run "$server" "$(url_of "$server")" "$@"
	wait_idle "$(url_of "$server")"
	sleep 2
}
echo "bench: machine load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# 1. Loads every server sustains, scenario by scenario, servers in turn, so the
#    shared machine's quiet and busy moments fall on all of them alike.
for scenario in "-entities 1 -rate 100" "-entities 100 -rate 10" "-entities 1 -concurrency 8" "-entities 100 -concurrency 8"; do
	for server in $servers; do
		# shellcheck disable=SC2086 # the scenario is a list of flags
		measure "$server" $scenario
	done
done
# 2. The goals' rates (1 x 50 at 1000 req/s, 100 x 50 at 100 req/s), beyond
#    what Feast sustains (see the closed-loop rows): Feast runs them last.
for server in $servers; do
	measure "$server" -entities 1 -rate 1000
	measure "$server" -entities 100 -rate 100
done
echo "bench: machine load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BENCH_DIR/online" report -in "$results"
