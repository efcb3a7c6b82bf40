# shellcheck shell=bash
# Helpers shared by the tracking benchmark scripts (run.sh, mlflow-go.sh);
# source it from the repository root.

# machine describes this machine for the reports: cores, memory, kernel.
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"

# build_bench_tools DIR: builds atrium and the load generator into DIR/bin.
build_bench_tools() {
	echo "bench: building atrium and the load generator"
	mkdir -p "$1/bin"
	go build -o "$1/bin/atrium" ./cmd/atrium
	go build -o "$1/bin/loadgen" ./bench/tracking/loadgen
}

# wait_http URL: waits up to 120 s for URL to answer 2xx.
wait_http() {
	for _ in $(seq 120); do
		curl -sf "$1" >/dev/null 2>&1 && return 0
		sleep 1
	done
	echo "bench: $1 did not answer within 120 s" >&2
	return 1
}

# atrium_addr LOG: prints the address `atrium serve` announced in LOG (its
# stderr), waiting up to 10 s for it.
atrium_addr() {
	local addr=
	for _ in $(seq 100); do
		addr=$(sed -n 's/^atrium serving on //p' "$1")
		[ -n "$addr" ] && break
		sleep 0.1
	done
	echo "$addr"
}
