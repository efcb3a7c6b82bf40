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
# run it on a quiet machine, under the shared benchmark lock
# (flock /tmp/atrium-bench.lock bench/monitoring/run.sh). Each tool is timed
# with /usr/bin/time (wall, CPU, peak RSS) with the load average around it.
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
echo "== machine: $(nproc) cores"
# timed LABEL OUT CMD...: runs CMD with stdout to OUT under /usr/bin/time
# (wall, user+sys CPU, peak RSS of the whole process), with the load average
# just before and after, and leaves "wall cpu" in $BENCH_DIR/LABEL.time.
timed() {
	local label=$1 out=$2
	shift 2
	echo "== $label: load average before $(cut -d' ' -f1-3 /proc/loadavg)"
	/usr/bin/time -f "%e %U %S %M" -o "$BENCH_DIR/$label.rusage" "$@" >"$out"
	read -r wall user sys rss <"$BENCH_DIR/$label.rusage"
	cpu=$(printf "%.2f" "$(echo "$user + $sys" | bc)")
	echo "$wall $cpu" >"$BENCH_DIR/$label.time"
	echo "$label: ${wall} s wall, ${cpu} s CPU (user ${user} + sys ${sys}), peak RSS $((rss / 1024)) MB (whole process)"
	echo "== $label: load average after $(cut -d' ' -f1-3 /proc/loadavg)"
}
timed atrium "$BENCH_DIR/atrium.json" "$BENCH_DIR/atrium" monitor drift --reference "$ref" --current "$cur" --output json
timed evidently "$BENCH_DIR/evidently.json" "$BENCH_DIR/venv/bin/python" internal/monitoring/datadrift/testdata/evidently_files.py "$ref" "$cur"
"$BENCH_DIR/venv/bin/python" bench/monitoring/compare.py "$BENCH_DIR/atrium.json" "$BENCH_DIR/evidently.json"
read -r aw ac <"$BENCH_DIR/atrium.time"
read -r ew ec <"$BENCH_DIR/evidently.time"
echo "ratio (evidently / atrium): wall $(echo "scale=1; $ew / $aw" | bc)x, CPU $(echo "scale=1; $ec / $ac" | bc)x"
