#!/bin/sh
# Run every fuzz target of the module for a while each:
#
#	fuzz/run.sh [duration per target, default 1m] [target regexp]
#
# `go test -fuzz` writes each input that fails to the package's
# testdata/fuzz/<Target>/ directory, where the ordinary `go test ./...`
# (and CI) runs it from then on as a seed. This script lists those new
# crashers at the end: fix the bug, then commit the file as a seed.
set -eu
cd "$(dirname "$0")/.."
time=${1:-1m}
only=${2:-.}

failed=0
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' | grep -E "$only" || true); do
		echo "--- $target ($pkg) for $time"
		if ! go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$time"; then
			failed=1
		fi
	done
done

new=$(git status --porcelain --untracked-files=all -- '*testdata/fuzz/*' | awk '{print $2}')
if [ -n "$new" ]; then
	echo "--- new failing inputs, now seeds (commit them with the fix):"
	echo "$new"
fi
exit $failed
