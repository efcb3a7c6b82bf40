#!/usr/bin/env bash
# Runs the gradient-boosted trees benchmark: Atrium against LightGBM and
# XGBoost (installed with pip into the interop virtualenv by .ci/python.sh),
# same data, parameters and thread count, in one run. Extra arguments go to
# bench/gbdt (e.g. -task binary -rows 200000).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../../.ci/python.sh
. .ci/python.sh
go build -o /tmp/atrium-gbdt-bench ./bench/gbdt
exec nice /tmp/atrium-gbdt-bench -python "$ATRIUM_TEST_PYTHON" "$@"
