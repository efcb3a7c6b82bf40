# shellcheck shell=bash
# Source this file (`. .ci/spark.sh`) to install, start and export a Spark Connect
# server for the Spark offline engine's tests: Spark 3.5 as the pyspark package
# ships it (in a venv cached under $ATRIUM_CI_DIR) plus the Connect server jar
# from Maven Central, on Java 17, local[2], a small driver. Like services.sh it runs
# as a plain process and a second run reuses it (the machine ends it after CI).
# Exports: ATRIUM_TEST_SPARK (sc://127.0.0.1:PORT); ATRIUM_TEST_SPARK_HOME and
# ATRIUM_TEST_SPARK_CONNECT_JAR, for the fault test that starts a server of its
# own to kill; ATRIUM_TEST_BUTTERFREE_PYTHON, a venv with butterfree 1.8 on the
# same pyspark (tests/interop/butterfree). ATRIUM_SPARK_PORT and
# ATRIUM_SPARK_DRIVER_MEMORY (default 768m) let bench/pipeline/run.sh start a
# server of its own; the server's process group id is in $ATRIUM_CI_DIR/spark.pid.

ATRIUM_CI_DIR=${ATRIUM_CI_DIR:-/tmp/atrium-ci}
mkdir -p "$ATRIUM_CI_DIR"

ci_spark_version=3.5.1
ci_spark_port=${ATRIUM_SPARK_PORT:-15002}
ci_spark_driver_memory=${ATRIUM_SPARK_DRIVER_MEMORY:-768m}

ci_spark_ready() {
	# The Connect server speaks gRPC; an open port is what start-up waits for.
	(exec 3<>"/dev/tcp/127.0.0.1/$ci_spark_port") 2>/dev/null
}

ci_start_spark() {
	command -v java >/dev/null || ci_apt_install openjdk-17-jre-headless
	local venv="$ATRIUM_CI_DIR/spark-venv"
	local jar="$ATRIUM_CI_DIR/spark-connect_2.12-$ci_spark_version.jar"
	if ! "$venv/bin/python" -c "import pyspark, sys; sys.exit(pyspark.__version__ != '$ci_spark_version')" 2>/dev/null; then
		echo "ci: installing pyspark==$ci_spark_version (about 350 MB, cached in $venv)"
		rm -rf "$venv"
		python3 -m venv "$venv"
		"$venv/bin/pip" install -q "pyspark==$ci_spark_version"
	fi
	if [ ! -s "$jar" ]; then
		curl -sSfL -o "$jar.part" "https://repo1.maven.org/maven2/org/apache/spark/spark-connect_2.12/$ci_spark_version/spark-connect_2.12-$ci_spark_version.jar"
		mv "$jar.part" "$jar"
	fi
	local home
	home=$("$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
	if ! ci_spark_ready; then
		# Small and UTC: the tests' data is tiny, the machine has 2 shared cores.
		SPARK_HOME="$home" PYSPARK_PYTHON="$venv/bin/python" setsid nohup "$home/bin/spark-submit" \
			--class org.apache.spark.sql.connect.service.SparkConnectServer \
			--master 'local[2]' --driver-memory "$ci_spark_driver_memory" --jars "$jar" \
			--conf spark.connect.grpc.binding.port="$ci_spark_port" \
			--conf spark.sql.session.timeZone=UTC \
			--conf spark.sql.shuffle.partitions=2 \
			--conf spark.ui.enabled=false \
			--conf spark.driver.extraJavaOptions=-Duser.timezone=UTC \
			spark-internal >"$ATRIUM_CI_DIR/spark.log" 2>&1 </dev/null {ci_spark_lock}>&- &
		echo $! >"$ATRIUM_CI_DIR/spark.pid"
		for _ in $(seq 240); do ci_spark_ready && break; sleep 0.5; done
		ci_spark_ready || { tail -n 50 "$ATRIUM_CI_DIR/spark.log"; echo "ci: Spark Connect did not start"; return 1; }
	fi
	export ATRIUM_TEST_SPARK="sc://127.0.0.1:$ci_spark_port"
	export ATRIUM_TEST_SPARK_HOME="$home" ATRIUM_TEST_SPARK_CONNECT_JAR="$jar"
	echo "ci: Spark Connect at $ATRIUM_TEST_SPARK"
}

# butterfree pins cassandra-driver==3.24.0, which builds from source with a
# script that downloads from the internet: install it without dependencies and
# its requirements by hand (a newer cassandra-driver has wheels).
ci_butterfree() {
	local venv="$ATRIUM_CI_DIR/butterfree-venv" stamp="butterfree==1.8.0 pyspark==$ci_spark_version"
	if [ "$(cat "$venv/stamp" 2>/dev/null)" != "$stamp" ]; then
		echo "ci: installing butterfree==1.8.0 (cached in $venv)"
		rm -rf "$venv"
		python3 -m venv "$venv"
		"$venv/bin/pip" install -q --disable-pip-version-check --no-deps butterfree==1.8.0
		"$venv/bin/pip" install -q --disable-pip-version-check "cassandra-driver>=3.29" "mdutils<1.7,>=1.2.2" "pandas<2.0" \
			"parameters-validation<2.0" "pyspark==$ci_spark_version" typer==0.4.2 typing-extensions "boto3==1.35.*" \
			numpy==1.26.4 delta-spark==3.2.0 pydantic "h3<4"
		echo "$stamp" >"$venv/stamp"
	fi
	export ATRIUM_TEST_BUTTERFREE_PYTHON="$venv/bin/python"
}

# Two runs on one machine (CI next to a benchmark, say) share these installs:
# one installs while the other waits, instead of deleting the venv under it.
exec {ci_spark_lock}>"$ATRIUM_CI_DIR/spark.lock"
flock "$ci_spark_lock"
ci_start_spark
ci_butterfree
flock -u "$ci_spark_lock"
