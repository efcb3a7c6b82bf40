# shellcheck shell=bash
# Source this file to create (once) a virtualenv with the real Python clients the
# interop tests use (tests/interop/requirements.txt) and export its interpreter as
# ATRIUM_TEST_PYTHON. Go tests under tests/interop skip when it is unset.

ATRIUM_CI_DIR=${ATRIUM_CI_DIR:-/tmp/atrium-ci}
ci_venv="$ATRIUM_CI_DIR/venv"
ci_req="$(dirname "${BASH_SOURCE[0]}")/../tests/interop/requirements.txt"
mkdir -p "$ATRIUM_CI_DIR"
# One install at a time when two runs share the machine (see spark.sh).
exec {ci_python_lock}>"$ATRIUM_CI_DIR/python.lock"
flock "$ci_python_lock"
if [ ! -x "$ci_venv/bin/python" ] || ! cmp -s "$ci_req" "$ci_venv/requirements.txt"; then
	echo "ci: creating $ci_venv"
	python3 -m venv "$ci_venv"
	"$ci_venv/bin/pip" install -q --disable-pip-version-check -r "$ci_req" || {
		echo "ci: pip install -r $ci_req failed" >&2
		flock -u "$ci_python_lock"
		return 1
	}
	cp "$ci_req" "$ci_venv/requirements.txt"
fi
flock -u "$ci_python_lock"
export ATRIUM_TEST_PYTHON="$ci_venv/bin/python"
echo "ci: Python clients in $ATRIUM_TEST_PYTHON"
