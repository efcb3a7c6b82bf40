#!/usr/bin/env bash
# Repository hygiene, run by .ci/run before the tests: no committed binaries,
# no file over 1 MiB outside testdata/, go.mod and go.sum tidy. Prints every
# offender and exits 1 if there is any.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0

binaries=$(git ls-files -z | xargs -0 -r file --no-pad 2>/dev/null | grep -E ': .*(ELF|Mach-O|PE32|current ar archive)' | cut -d: -f1)
if [ -n "$binaries" ]; then
	echo "hygiene: committed binaries (remove them and ignore the build outputs):"
	echo "$binaries" | sed 's/^/  /'
	status=1
fi

big=$(git ls-files -z | grep -zv '/testdata/' | xargs -0 -r stat -c '%s %n' 2>/dev/null | awk '$1 > 1048576 {print "  " $2 " (" $1 " bytes)"}')
if [ -n "$big" ]; then
	echo "hygiene: files over 1 MiB outside testdata/:"
	echo "$big"
	status=1
fi

if ! tidy=$(go mod tidy -diff 2>&1); then
	echo "hygiene: go.mod/go.sum are not tidy (run go mod tidy):"
	echo "$tidy" | sed 's/^/  /'
	status=1
fi
exit $status
