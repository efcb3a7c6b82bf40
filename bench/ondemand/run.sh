#!/bin/sh
# Request-time features: Atrium's CEL evaluator (internal/data/ondemand) over
# 200 candidate rows, and the same features as a Feast python-mode on-demand
# feature view's function (peer.py), in the same run.
#
#   bench/ondemand/run.sh            (PYTHON=python3 by default)
set -eu
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
go test ./internal/data/ondemand/ -run '^$' -bench 'Eval' -benchtime 3s -count 3
"$PYTHON" bench/ondemand/peer.py
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
