#!/usr/bin/env bash
# Drift benchmark: `atrium monitor drift` against Evidently's DataDriftPreset
# (evidently 0.7.23, legacy Report API) on the same two Parquet files, in the
# same run: ROWS reference rows and ROWS current rows of 40 numeric and 10
# categorical columns, 10 of them drifted. Both tools' per-column methods and
# verdicts are compared (compare.py) before the times are printed.
#
#   bench/monitoring/run.sh      # ROWS=1000000 BENCH_DIR=/tmp/atrium-bench-monitoring
#
# Evidently is installed with pip into $BENCH_DIR/venv. Both cores are used:
# run it on a quiet machine.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/atrium-bench-monitoring}
ROWS=${ROWS:-1000000}
mkdir -p "$BENCH_DIR"
cd "$repo"

go build -o "$BENCH_DIR/atrium" ./cmd/atrium
go run ./bench/monitoring -dir "$BENCH_DIR" -rows "$ROWS"
if [ ! -x "$BENCH_DIR/venv/bin/python" ]; then
	python3 -m venv "$BENCH_DIR/venv"
	"$BENCH_DIR/venv/bin/pip" install -q 'evidently==0.7.23' 'pandas<3' pyarrow
fi
ref="$BENCH_DIR/reference-$ROWS.parquet"
cur="$BENCH_DIR/current-$ROWS.parquet"
echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
"$BENCH_DIR/atrium" monitor drift --reference "$ref" --current "$cur" --output json >"$BENCH_DIR/atrium.json"
atrium_s=$(echo "$(date +%s.%N) - $start" | bc)
echo "atrium monitor drift: ${atrium_s} s (whole process: start, read both files, 50 tests)"
start=$(date +%s.%N)
"$BENCH_DIR/venv/bin/python" internal/monitoring/datadrift/testdata/evidently_files.py "$ref" "$cur" >"$BENCH_DIR/evidently.json"
evidently_s=$(echo "$(date +%s.%N) - $start" | bc)
echo "evidently DataDriftPreset: ${evidently_s} s (whole process; the script's own timing of read + report is in evidently.json)"
"$BENCH_DIR/venv/bin/python" bench/monitoring/compare.py "$BENCH_DIR/atrium.json" "$BENCH_DIR/evidently.json"
echo "ratio (evidently / atrium): $(echo "scale=1; $evidently_s / $atrium_s" | bc)x"
