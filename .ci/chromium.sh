# shellcheck shell=bash
# Source this file to install (once per machine) headless Chromium, which
# internal/monitoring/report's test uses to render the HTML reports, and export
# it as ATRIUM_TEST_CHROMIUM. Debian's chromium-headless-shell: no display, no
# downloaded browser build.

if ! command -v chromium-headless-shell >/dev/null; then
	echo "ci: installing chromium-headless-shell"
	{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell >/dev/null; } || {
		echo "ci: apt-get install chromium-headless-shell failed" >&2
		return 1
	}
fi
ATRIUM_TEST_CHROMIUM=$(command -v chromium-headless-shell)
export ATRIUM_TEST_CHROMIUM
echo "ci: headless Chromium at $ATRIUM_TEST_CHROMIUM"
