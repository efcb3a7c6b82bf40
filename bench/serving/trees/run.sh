#!/usr/bin/env bash
# Tree-ensemble prediction in the serving request path: Atrium against
# LightGBM's and XGBoost's own predict on the same models and rows, one
# thread, one row and 200 rows (see main.go and peers.py). The peers come
# from the interop virtualenv (.ci/python.sh). Extra arguments go to
# bench/serving/trees (e.g. -runs 1 -budget 100ms for a quick run). The
# models are trained once into ${ATRIUM_BENCH_DIR:-/tmp/atrium-bench/trees}
# and reused.
set -euo pipefail
cd "$(dirname "$0")/../../.."
# shellcheck source=../../../.ci/python.sh
. .ci/python.sh
dir=${ATRIUM_BENCH_DIR:-/tmp/atrium-bench/trees}
mkdir -p "$dir"
go build -o "$dir/trees-bench" ./bench/serving/trees
uptime
exec "$dir/trees-bench" -python "$ATRIUM_TEST_PYTHON" -dir "$dir" "$@"
