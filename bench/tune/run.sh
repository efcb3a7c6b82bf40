#!/usr/bin/env bash
# Tuning benchmark: Atrium's TPE against Optuna's (PyPI, bench/tune/requirements.txt,
# in a virtualenv of its own) in one run. Usage: bench/tune/run.sh [main.go flags],
# e.g. bench/tune/run.sh -seeds 5 for a quick run.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=${ATRIUM_BENCH_VENV:-/tmp/bench-venv-tune}
if [ ! -x "$venv/bin/python" ] || ! cmp -s bench/tune/requirements.txt "$venv/requirements.txt"; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q --disable-pip-version-check -r bench/tune/requirements.txt
	cp bench/tune/requirements.txt "$venv/requirements.txt"
fi
go build -o /tmp/atrium-tune-bench ./bench/tune
nproc
exec nice /tmp/atrium-tune-bench -python "$venv/bin/python" "$@"
