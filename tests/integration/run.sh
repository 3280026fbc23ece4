#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Run the integration tests (tests/integration/[0-9]*.sh), each in its own lab
# with its own tag, one after the other. A test exits 0 (pass), 77 (skip) or
# anything else (fail). Prints one line per test and, last,
# "N passed, N failed, N skipped".
#
#   tests/integration/run.sh [NAME-PATTERN...]     e.g. run.sh 03 weights
# Env: AG_BUILD (default build/), AG_LOGS (default $AG_BUILD/test-logs/integration),
#      AG_IT_TIMEOUT per test in seconds (default 300).
set -uo pipefail

DIR=$(cd "$(dirname "$0")" && pwd)
export AG_ROOT=${AG_ROOT:-$(cd "$DIR/../.." && pwd)}
export AG_BUILD=${AG_BUILD:-$AG_ROOT/build}
LOGS=${AG_LOGS:-$AG_BUILD/test-logs/integration}
TIMEOUT=${AG_IT_TIMEOUT:-300}
# shellcheck source=lib.sh
. "$DIR/lib.sh"

mkdir -p "$LOGS"
pass=0 fail=0 skip=0 i=0
for t in "$DIR"/[0-9]*.sh; do
	name=$(basename "$t" .sh)
	if [ $# -gt 0 ]; then
		match=0
		for pat in "$@"; do [[ $name == *"$pat"* ]] && match=1; done
		[ $match -eq 1 ] || continue
	fi
	i=$((i + 1))
	tag=t$$n$i
	log=$LOGS/$name.log
	t0=$(date +%s)
	AG_TAG=$tag AG_SAVE_DIR=$LOGS timeout -k 15 "$TIMEOUT" bash "$t" >"$log" 2>&1 </dev/null
	rc=$?
	# A test killed past its traps may leave its lab behind: remove it by tag.
	(ag_set_tag "$tag" && lab_down) >/dev/null 2>&1
	dt=$(($(date +%s) - t0))
	case $rc in
	0)
		pass=$((pass + 1))
		echo "PASS $name (${dt}s)"
		;;
	77)
		skip=$((skip + 1))
		echo "SKIP $name: $(grep -m1 '^SKIP' "$log" | cut -c7-200)"
		;;
	*)
		fail=$((fail + 1))
		[ $rc -eq 124 ] && echo "     $name timed out after ${TIMEOUT}s"
		echo "FAIL $name (exit $rc, ${dt}s); last lines of $log:"
		tail -n 30 "$log" | sed 's/^/    | /'
		;;
	esac
	# Lines the test marked for the summary (e.g. measured shares); a failure's
	# tail above shows them already.
	[ $rc -eq 0 ] && grep '^INFO' "$log" | sed 's/^/     /'
done
[ $i -eq 0 ] && { echo "no integration test matched"; fail=1; }
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
