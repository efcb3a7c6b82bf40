#!/usr/bin/env bash
# End-to-end tuning benchmark: Atrium's trial loop against Optuna + LightGBM
# (PyPI, bench/tune/e2e/requirements.txt, in a virtualenv of its own) in one
# run. Usage: bench/tune/e2e/run.sh [-rows N] [-trials N] [-threads N] [-seed N]
# [-replay] (-replay then fits Optuna's trials with Atrium: the libraries on the
# same work, whichever trials each sampler drew, and refits Optuna's best
# parameters with Atrium: the test AUC of the same parameters).
set -euo pipefail
cd "$(dirname "$0")/../../.."

venv=${ATRIUM_BENCH_VENV:-/tmp/bench-venv-train}
if [ ! -x "$venv/bin/python" ] || ! cmp -s bench/tune/e2e/requirements.txt "$venv/requirements.txt"; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q --disable-pip-version-check -r bench/tune/e2e/requirements.txt
	cp bench/tune/e2e/requirements.txt "$venv/requirements.txt"
fi
go build -o /tmp/atrium-tune-e2e ./bench/tune/e2e
nproc
exec nice /tmp/atrium-tune-e2e -python "$venv/bin/python" "$@"
