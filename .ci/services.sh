# shellcheck shell=bash
# Source this file (`. .ci/services.sh`) to install, start and export the real servers
# the tests use: PostgreSQL (metadata conformance) and Redis (online store conformance).
# They run as plain processes under $ATRIUM_CI_DIR; running it twice reuses them.
# Exports: ATRIUM_TEST_POSTGRES, ATRIUM_TEST_REDIS.

ATRIUM_CI_DIR=${ATRIUM_CI_DIR:-/tmp/atrium-ci}
mkdir -p "$ATRIUM_CI_DIR"

ci_apt_install() {
	local missing=()
	for pkg in "$@"; do
		dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "ci: apt-get install ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

ci_start_postgres() {
	ci_apt_install postgresql
	local bin port=54329 data="$ATRIUM_CI_DIR/pg"
	bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	if ! "$bin/pg_isready" -h 127.0.0.1 -p $port -q 2>/dev/null; then
		# initdb refuses to run as root: the cluster belongs to the postgres user.
		rm -rf "$data"
		mkdir -p "$data"
		chown postgres:postgres "$data"
		runuser -u postgres -- "$bin/initdb" -D "$data" -A trust -U postgres >/dev/null
		runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
			-o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
	fi
	export ATRIUM_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	echo "ci: PostgreSQL at $ATRIUM_TEST_POSTGRES"
}

ci_start_redis() {
	ci_apt_install redis-server
	local port=63799
	if ! redis-cli -p $port ping >/dev/null 2>&1; then
		redis-server --port $port --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
			--logfile "$ATRIUM_CI_DIR/redis.log" --dir "$ATRIUM_CI_DIR"
		for _ in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
	fi
	export ATRIUM_TEST_REDIS="redis://127.0.0.1:$port/0"
	echo "ci: Redis at $ATRIUM_TEST_REDIS"
}

ci_start_postgres
ci_start_redis
