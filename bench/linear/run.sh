#!/usr/bin/env bash
# Linear models and dataset loading, Atrium against scikit-learn, pandas and
# pyarrow in one run (see bench.py). Usage: bench/linear/run.sh [bench.py flags]
# e.g. bench/linear/run.sh --rows 100000 for a quick run. Heavy: run alone,
# with nice, on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=${ATRIUM_BENCH_DIR:-/tmp/atrium-bench/linear}
venv=${ATRIUM_BENCH_VENV:-/tmp/atrium-bench/venv-linear}
mkdir -p "$dir"
if [ ! -x "$venv/bin/python" ] || ! cmp -s bench/linear/requirements.txt "$venv/requirements.txt"; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q --disable-pip-version-check -r bench/linear/requirements.txt
	cp bench/linear/requirements.txt "$venv/requirements.txt"
fi
go build -o "$dir/atrium-bench-linear" ./bench/linear
nproc
exec nice "$venv/bin/python" bench/linear/bench.py --atrium "$dir/atrium-bench-linear" --dir "$dir" "$@"
