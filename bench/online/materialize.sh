#!/usr/bin/env bash
# Materialization benchmark: `atrium materialize` of KEYS keys (default 1
# million) against `feast materialize` of the same rows into Feast's default
# SQLite online store, in one run on one machine.
#
#   bench/online/materialize.sh     # KEYS=1000000 FEATURES=10 FEAST_KEYS=$KEYS BENCH_DIR=/tmp/atrium-bench-mat
#
# Atrium's path is the product's: features/*.yaml with a plain feature set over
# the generated Parquet file, `atrium apply`, `atrium run` (the offline store),
# then the timed `atrium materialize --end now` (offline scan -> Pebble). Feast's
# is `feast apply` then the timed `feast materialize`. FEAST_KEYS can be set lower
# when Feast would take too long; the report then compares keys per second.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/atrium-bench-mat}
KEYS=${KEYS:-1000000}
FEATURES=${FEATURES:-10}
FEAST_KEYS=${FEAST_KEYS:-$KEYS}
FEAST_VERSION=0.67.0
mkdir -p "$BENCH_DIR"

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

venv="$BENCH_DIR/venv"
if ! "$venv/bin/feast" version 2>/dev/null | grep -q "$FEAST_VERSION"; then
	echo "bench: installing feast==$FEAST_VERSION into $venv"
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q --disable-pip-version-check "feast==$FEAST_VERSION"
fi

data="$BENCH_DIR/data"
rm -rf "$data"
"$venv/bin/python" "$repo/bench/online/gen_data.py" --keys "$KEYS" --features "$FEATURES" --out "$data"
if [ "$FEAST_KEYS" != "$KEYS" ]; then
	"$venv/bin/python" "$repo/bench/online/gen_data.py" --keys "$FEAST_KEYS" --features "$FEATURES" --out "$data/feast-only"
	feast_repo="$data/feast-only/feast"
else
	feast_repo="$data/feast"
fi

# Atrium: a project over the same Parquet file.
(cd "$repo" && go build -o "$BENCH_DIR/atrium" ./cmd/atrium)
proj="$data/atrium"
. "$repo/bench/online/project.sh"
atrium_project "$proj" "$data/data.parquet" "$FEATURES"
atrium() { "$BENCH_DIR/atrium" --repo "$proj" "$@"; }
atrium apply >/dev/null
day=$(date -u +%Y-%m-%d)
yesterday=$(date -u -d yesterday +%Y-%m-%d)
start=$(date +%s%N)
atrium run listing_stats --start "$yesterday" --end "$day" >/dev/null
echo "bench: atrium run (offline store, $KEYS keys) took $(ms_since "$start") ms"
start=$(date +%s%N)
atrium materialize --end now listing_stats
atrium_ms=$(ms_since "$start")

# Feast.
(cd "$feast_repo" && "$venv/bin/feast" apply >/dev/null)
start=$(date +%s%N)
(cd "$feast_repo" && "$venv/bin/feast" materialize 2020-01-01T00:00:00 "$(date -u +%Y-%m-%dT%H:%M:%S)" >/dev/null)
feast_ms=$(ms_since "$start")

echo
echo "| store | keys x features | materialize s | keys/s |"
echo "|---|---|---|---|"
awk -v k="$KEYS" -v f="$FEATURES" -v ms="$atrium_ms" 'BEGIN { printf "| Atrium (Pebble) | %d x %d | %.1f | %.0f |\n", k, f, ms / 1000, k / (ms / 1000) }'
awk -v k="$FEAST_KEYS" -v f="$FEATURES" -v ms="$feast_ms" 'BEGIN { printf "| Feast (SQLite) | %d x %d | %.1f | %.0f |\n", k, f, ms / 1000, k / (ms / 1000) }'
awk -v ak="$KEYS" -v ams="$atrium_ms" -v fk="$FEAST_KEYS" -v fms="$feast_ms" 'BEGIN { printf "\nAtrium / Feast keys per second: %.1fx\n", (ak / ams) / (fk / fms) }'
