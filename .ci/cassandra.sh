# shellcheck shell=bash
# Source this file (`. .ci/cassandra.sh`) to install, start and export a single-node
# Apache Cassandra for the Cassandra online store tests. No Docker engine here: the
# server is Apache Cassandra's own jar and its runtime dependencies from Maven Central,
# cached in $ATRIUM_CI_DIR/cassandra/lib (reused across runs), run as a plain JVM.
# Its data lives in a fresh temporary directory, and the server is stopped when the
# sourcing shell exits (an EXIT trap that keeps any trap set before it).
# Exports: ATRIUM_TEST_CASSANDRA (cassandra://127.0.0.1:PORT/atrium_test) and
# ATRIUM_TEST_CASSANDRA_PID (the JVM, for the fault test that pauses it).

ATRIUM_CI_DIR=${ATRIUM_CI_DIR:-/tmp/atrium-ci}
CI_CASSANDRA_VERSION=5.0.4

# ci_cassandra_install fetches cassandra-all and its runtime dependencies once.
ci_cassandra_install() {
	local home="$ATRIUM_CI_DIR/cassandra"
	if [ -f "$home/lib/.complete-$CI_CASSANDRA_VERSION" ]; then
		return 0
	fi
	command -v mvn >/dev/null || ci_apt_install maven
	rm -rf "$home/lib" "$home/pom"
	mkdir -p "$home/pom"
	cat >"$home/pom/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.atrium.ci</groupId>
  <artifactId>cassandra-server</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$CI_CASSANDRA_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
	echo "ci: fetching Apache Cassandra $CI_CASSANDRA_VERSION from Maven Central"
	(cd "$home/pom" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory="$home/lib" >"$home/mvn.log" 2>&1) || {
		echo "ci: fetching Cassandra failed; see $home/mvn.log" >&2
		tail -n 20 "$home/mvn.log" >&2
		return 1
	}
	touch "$home/lib/.complete-$CI_CASSANDRA_VERSION"
}

# ci_cassandra_port_free reports whether nothing listens on 127.0.0.1:$1.
ci_cassandra_port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ci_cassandra_start DIR NATIVE_PORT STORAGE_PORT starts a node whose files live in
# DIR, waits until its CQL port answers, and prints its pid.
ci_cassandra_start() {
	local dir=$1 port=$2 storage=$3 home="$ATRIUM_CI_DIR/cassandra"
	mkdir -p "$dir"/{data,commitlog,saved_caches,hints,cdc_raw,logs}
	cat >"$dir/cassandra.yaml" <<EOF
cluster_name: atrium-ci
num_tokens: 16
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
data_file_directories: [$dir/data]
commitlog_directory: $dir/commitlog
saved_caches_directory: $dir/saved_caches
hints_directory: $dir/hints
cdc_raw_directory: $dir/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$storage"
listen_address: 127.0.0.1
storage_port: $storage
rpc_address: 127.0.0.1
start_native_transport: true
native_transport_port: $port
concurrent_compactors: 1
EOF
	cat >"$dir/logback.xml" <<EOF
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$dir/logs/system.log</file>
    <encoder><pattern>%date %level [%thread] %logger{20} %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
EOF
	# JVM flags: a small heap for a shared 2-core CI machine; the module
	# exports/opens are those of Cassandra 5's conf/jvm17-server.options (it
	# reaches into JDK internals for off-heap memory, Chronicle and JMX).
	local jvm=(
		-Xms512m -Xmx512m -XX:+UseG1GC -Xss512k -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$dir"
		-Djava.net.preferIPv4Stack=true -Djdk.attach.allowAttachSelf=true
		-Dio.netty.tryReflectionSetAccessible=true
		-Dcassandra.config="file://$dir/cassandra.yaml" -Dcassandra.storagedir="$dir"
		-Dcassandra.logdir="$dir/logs" -Dlogback.configurationFile="$dir/logback.xml"
		-Dcassandra-foreground=yes -Dcassandra.skip_wait_for_gossip_to_settle=0
		-Dcassandra.superuser_setup_delay_ms=0
		--add-exports java.base/jdk.internal.misc=ALL-UNNAMED
		--add-exports java.base/jdk.internal.ref=ALL-UNNAMED
		--add-exports java.base/sun.nio.ch=ALL-UNNAMED
		--add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
		--add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
		--add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
		--add-exports java.sql/java.sql=ALL-UNNAMED
		--add-exports java.base/java.lang.ref=ALL-UNNAMED
		--add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
		--add-opens java.base/java.lang.module=ALL-UNNAMED
		--add-opens java.base/jdk.internal.loader=ALL-UNNAMED
		--add-opens java.base/jdk.internal.ref=ALL-UNNAMED
		--add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
		--add-opens java.base/jdk.internal.math=ALL-UNNAMED
		--add-opens java.base/jdk.internal.module=ALL-UNNAMED
		--add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
		--add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
		--add-opens java.base/sun.nio.ch=ALL-UNNAMED
		--add-opens java.base/java.io=ALL-UNNAMED
		--add-opens java.base/java.nio=ALL-UNNAMED
		--add-opens java.base/java.util=ALL-UNNAMED
		--add-opens java.base/java.util.concurrent=ALL-UNNAMED
		--add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
		--add-opens java.base/java.lang=ALL-UNNAMED
		--add-opens java.base/java.lang.reflect=ALL-UNNAMED
		--add-opens java.base/java.math=ALL-UNNAMED
		--add-opens java.base/java.net=ALL-UNNAMED
	)
	java "${jvm[@]}" -cp "$dir:$home/lib/*" org.apache.cassandra.service.CassandraDaemon \
		>"$dir/logs/stdout.log" 2>&1 </dev/null &
	local pid=$!
	local i
	for i in $(seq 240); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "ci: Cassandra exited while starting; last lines of $dir/logs:" >&2
			tail -n 30 "$dir/logs/stdout.log" "$dir/logs/system.log" >&2
			return 1
		fi
		# "Starting listening for CQL clients" is logged once the native port
		# accepts CQL, which a bare TCP connect cannot tell (the port opens
		# slightly earlier).
		if grep -q "Starting listening for CQL clients" "$dir/logs/system.log" 2>/dev/null &&
			! ci_cassandra_port_free "$port"; then
			echo "$pid"
			return 0
		fi
		sleep 0.5
	done
	echo "ci: Cassandra did not open its CQL port $port within 120 s" >&2
	kill "$pid" 2>/dev/null
	return 1
}

ci_cassandra_stop() {
	if [ -n "${ci_cassandra_pid:-}" ]; then
		# `|| true`: this runs from an EXIT trap, under the caller's set -e.
		kill -CONT "$ci_cassandra_pid" 2>/dev/null || true # a fault test may have left it paused
		kill "$ci_cassandra_pid" 2>/dev/null || true
		local i
		for i in $(seq 60); do
			kill -0 "$ci_cassandra_pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$ci_cassandra_pid" 2>/dev/null || true
		rm -rf "$ci_cassandra_dir"
		ci_cassandra_pid=
	fi
}

ci_start_cassandra() {
	ci_cassandra_install || return 1
	local port=19042 storage=17000
	while ! ci_cassandra_port_free $port || ! ci_cassandra_port_free $storage; do
		port=$((port + 1))
		storage=$((storage + 1))
	done
	ci_cassandra_dir=$(mktemp -d "$ATRIUM_CI_DIR/cassandra/node.XXXXXX")
	local started=$SECONDS
	ci_cassandra_pid=$(ci_cassandra_start "$ci_cassandra_dir" $port $storage) || return 1
	# Stop it when the sourcing shell exits, after whatever EXIT trap it had.
	local prev
	prev=$(trap -p EXIT | sed -e "s/^trap -- '\(.*\)' EXIT\$/\1/")
	# shellcheck disable=SC2064 # expand the previous trap now
	trap "${prev:+$prev; }ci_cassandra_stop" EXIT
	export ATRIUM_TEST_CASSANDRA="cassandra://127.0.0.1:$port/atrium_test"
	export ATRIUM_TEST_CASSANDRA_PID=$ci_cassandra_pid
	echo "ci: Cassandra $CI_CASSANDRA_VERSION at $ATRIUM_TEST_CASSANDRA (pid $ci_cassandra_pid, started in $((SECONDS - started)) s)"
}

ci_start_cassandra
