#!/usr/bin/env bash
# Time to load a 1,000-tree LightGBM model version: Atrium (registry lookup,
# artifact read, parse, first predict: BenchmarkLoad) against LightGBM's own
# Booster(model_file=...) and first predict on the same file, in one run.
set -euo pipefail
cd "$(dirname "$0")/../../.."
# shellcheck source=../../../.ci/python.sh
. .ci/python.sh
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ATRIUM_BENCH_MODEL_DIR=$dir nice go test ./internal/serving -run '^$' -bench '^BenchmarkLoad$' -benchtime 10x
nice "$ATRIUM_TEST_PYTHON" bench/serving/load/peer.py "$dir/model.lgb" 10
