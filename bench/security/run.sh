#!/usr/bin/env bash
# Hostile clients and a failing online store (issue 10, items 4 and 5):
# this tree's `atrium serve` against a baseline binary (BASE_REF, default the
# commit before the server limits), in one run, on the same machine.
#
#   bench/security/run.sh        # BENCH_DIR=/tmp/atrium-bench-security BASE_REF=cec0091
#
# Measures (bench/security/main.go, one fresh server per scenario):
#   - memory:   peak RSS (VmHWM) of the server while 16 clients send a 31 MiB
#               body each to /get-online-features at once (the API's limit is 32 MiB)
#   - oversize: the same with 50 MiB bodies (over the limit: 413)
#   - outage:   with the online store on a redis-server the generator owns,
#               paused (SIGSTOP) then killed: time to answer /get-online-features
#               and /readyz, and time to serve again once Redis is back
# Results: $BENCH_DIR/results.jsonl (one JSON object per scenario and binary).
# Needs redis-server on PATH (.ci/services.sh installs it).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/atrium-bench-security}
BASE_REF=${BASE_REF:-cec0091}
mkdir -p "$BENCH_DIR"

echo "bench: building atrium (this tree) and the baseline ($BASE_REF)" >&2
(cd "$repo" && go build -o "$BENCH_DIR/atrium-new" ./cmd/atrium && go build -o "$BENCH_DIR/security" ./bench/security)
rm -rf "$BENCH_DIR/base-src"
mkdir -p "$BENCH_DIR/base-src"
git -C "$repo" archive "$BASE_REF" | tar -x -C "$BENCH_DIR/base-src"
(cd "$BENCH_DIR/base-src" && go build -o "$BENCH_DIR/atrium-base" ./cmd/atrium)

# A project with the example feature definitions applied (embedded stores).
proj="$BENCH_DIR/project"
rm -rf "$proj"
mkdir -p "$proj/features"
cp "$repo/internal/spec/testdata/features/issue_example.yaml" "$proj/features/example.yaml"
"$BENCH_DIR/atrium-new" --repo "$proj" apply >/dev/null

results="$BENCH_DIR/results.jsonl"
: >"$results"
for bin in new base; do
	echo "bench: measuring $bin" >&2
	"$BENCH_DIR/security" -atrium "$BENCH_DIR/atrium-$bin" -repo "$proj" -label "$bin" "$@" | tee -a "$results"
done
