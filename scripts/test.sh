#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Build anygate and run its test suites.
#
#   scripts/test.sh [style] [unit] [bpf] [fuzz] [integration]     (default: all five)
#
# style: scripts/check.sh --self-test (each planted fault the gate must report is a test;
# the gate itself runs from .ci/run);
# unit: every CUnit executable in build/tests/unit/ (counts from its Run Summary);
# bpf: every executable in build/tests/bpf/ (needs root; exit 77 = skipped);
# fuzz: each libFuzzer target of tests/fuzz for a few seconds from its committed corpus
# (one test each; without clang's libFuzzer: the corpus replayed, the fuzzing skipped);
# integration: tests/integration/run.sh (each test in its own lab).
# Prints one line per suite and, last, "N passed, N failed, N skipped" over all
# suites; exits non-zero when anything failed. Logs: build/test-logs/.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=$ROOT/build
# What `meson test` would set: tests that read files of the source tree find it here.
export AG_SRCDIR=$ROOT
LOGS=$BUILD/test-logs
ALL_SUITES=(style unit bpf fuzz integration)
# Per executable; generous for ASan on a loaded 2-core machine.
EXE_TIMEOUT=${AG_TEST_TIMEOUT:-300}
# Seconds of fuzzing per target (the corpus runs first, whatever its size), and a cap on
# executions so a fast machine does no more than a slow one needs to.
FUZZ_SECONDS=${AG_FUZZ_SECONDS:-5}
FUZZ_RUNS=${AG_FUZZ_RUNS:-2000000}

total_pass=0 total_fail=0 total_skip=0

finish() {
	echo "$total_pass passed, $total_fail failed, $total_skip skipped"
	[ "$total_fail" -eq 0 ]
	exit
}

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=("${ALL_SUITES[@]}")
for s in "${suites[@]}"; do
	case " ${ALL_SUITES[*]} " in
	*" $s "*) ;;
	*)
		echo "test.sh: unknown suite '$s' (known: ${ALL_SUITES[*]})" >&2
		exit 2
		;;
	esac
done

# ------------------------------------------------------------------ build
if [ "$(id -u)" -eq 0 ]; then
	if ! scripts/deps.sh; then
		echo "test.sh: deps.sh failed"
		total_fail=1
		finish
	fi
else
	echo "test.sh: not root: skipping deps.sh (bpf and integration suites will skip)"
fi
# -Dwerror=true: the project's default, forced here too because a build dir set
# up before that default keeps its own value across --reconfigure.
if [ -f "$BUILD/build.ninja" ]; then
	meson setup --reconfigure -Dwerror=true "$BUILD" >/dev/null ||
		meson setup --wipe -Dwerror=true "$BUILD"
else
	meson setup -Dwerror=true "$BUILD"
fi || {
	echo "test.sh: meson setup failed"
	total_fail=1
	finish
}
if ! ninja -C "$BUILD" -j2; then
	echo "test.sh: build failed"
	total_fail=1
	finish
fi
rm -rf "$LOGS"
mkdir -p "$LOGS"

# ------------------------------------------------------------------ helpers

# Executables directly in DIR (not meson's *.p object dirs, not BPF objects).
executables() {
	find "$1" -maxdepth 1 -type f -perm -u+x ! -name '*.o' ! -name '*.so' 2>/dev/null | sort
}

# run_exe SUITE EXE: run one test executable, add its counts to s_pass/s_fail/s_skip.
# A CUnit "Run Summary" gives the counts (its "tests" row: Total Ran Passed
# Failed Inactive); without one, the exit status counts as one test
# (0 pass, 77 skip, else fail). A crash or non-zero exit is never a pass.
run_exe() {
	local suite=$1 exe=$2 name log rc row p f
	name=$(basename "$exe")
	log=$LOGS/$suite-$name.log
	(cd "$(dirname "$exe")" && timeout -k 10 "$EXE_TIMEOUT" "$exe") >"$log" 2>&1 </dev/null
	rc=$?
	row=$(awk '/Run Summary/ { s = 1 } s && $1 == "tests" { print $4, $5; exit }' "$log")
	if [ $rc -eq 77 ]; then
		s_skip=$((s_skip + 1))
		echo "  $name: skipped ($(grep -m1 -i skip "$log" | cut -c1-150))"
		return
	fi
	if [ -n "$row" ]; then
		read -r p f <<<"$row"
		# Failures were reported, or none were but the process still failed
		# (sanitizer report at exit, crash after the summary): one more failure.
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1
		fi
	elif [ $rc -eq 0 ]; then
		p=1 f=0
	else
		p=0 f=1
	fi
	s_pass=$((s_pass + p))
	s_fail=$((s_fail + f))
	if [ "$f" -ne 0 ]; then
		[ $rc -eq 124 ] && echo "  $name: TIMEOUT after ${EXE_TIMEOUT}s"
		echo "  $name: $p passed, $f failed (exit $rc); last lines of $log:"
		tail -n 25 "$log" | sed 's/^/    | /'
	else
		echo "  $name: $p passed"
	fi
}

# The style gate's self-test: one test per "self-test: NAME: ok|FAILED|skipped" line.
run_style() {
	local log=$LOGS/style.log rc
	s_pass=0 s_fail=0 s_skip=0
	echo "== style"
	scripts/check.sh --self-test >"$log" 2>&1 </dev/null
	rc=$?
	sed 's/^/  /' "$log"
	s_pass=$(grep -c '^self-test: .*: ok$' "$log")
	s_fail=$(grep -c '^self-test: .*: FAILED' "$log")
	s_skip=$(grep -c '^self-test: .*: skipped' "$log")
	if [ $rc -ne 0 ] && [ "$s_fail" -eq 0 ]; then
		echo "  check.sh --self-test exited $rc"
		s_fail=1
	fi
	suite_line style
}

suite_line() {
	echo "$1: $s_pass passed, $s_fail failed, $s_skip skipped"
	total_pass=$((total_pass + s_pass))
	total_fail=$((total_fail + s_fail))
	total_skip=$((total_skip + s_skip))
}

run_dir_suite() {
	local suite=$1 dir=$2 exe found=0
	s_pass=0 s_fail=0 s_skip=0
	echo "== $suite"
	for exe in $(executables "$dir"); do
		found=1
		run_exe "$suite" "$exe"
	done
	if [ $found -eq 0 ]; then
		echo "  no test executables in $dir"
		s_fail=1
	fi
	suite_line "$suite"
}

# One test per corpus in tests/fuzz/corpus/: its libFuzzer target for FUZZ_SECONDS (new
# inputs go to a scratch dir, never to the committed corpus; a crash is kept in the logs),
# or, when clang could not build it, its replay over the corpus and the fuzzing skipped.
run_fuzz() {
	local dir=$BUILD/tests/fuzz corpus name exe log rc why
	s_pass=0 s_fail=0 s_skip=0
	echo "== fuzz"
	why=$(cat "$dir/fuzz-status.txt" 2>/dev/null || echo "build/tests/fuzz not configured")
	for corpus in tests/fuzz/corpus/*/; do
		name=$(basename "$corpus")
		exe=$dir/fuzz-$name
		log=$LOGS/fuzz-$name.log
		if [ "$why" = ok ] && [ -x "$exe" ]; then
			rm -rf "$LOGS/fuzz-$name.scratch"
			mkdir -p "$LOGS/fuzz-$name.scratch"
			timeout -k 10 $((FUZZ_SECONDS + 120)) "$exe" -max_total_time="$FUZZ_SECONDS" \
				-runs="$FUZZ_RUNS" -timeout=25 -print_final_stats=1 \
				-artifact_prefix="$LOGS/fuzz-$name-" "$LOGS/fuzz-$name.scratch" "$corpus" \
				>"$log" 2>&1 </dev/null
		elif [ -x "$exe-replay" ]; then
			echo "  $name: fuzzing skipped: $why"
			s_skip=$((s_skip + 1))
			"$exe-replay" "$corpus" >"$log" 2>&1 </dev/null
		else
			echo "  $name: no fuzz-$name or fuzz-$name-replay in $dir" >"$log"
			false
		fi
		rc=$?
		if [ $rc -eq 0 ]; then
			s_pass=$((s_pass + 1))
			echo "  $name: passed ($(sed -n 's/^stat::number_of_executed_units: */runs: /p;s/^replay: //p' "$log"))"
		else
			s_fail=$((s_fail + 1))
			echo "  $name: FAILED (exit $rc); last lines of $log:"
			tail -n 25 "$log" | sed 's/^/    | /'
		fi
	done
	suite_line fuzz
}

run_integration() {
	local log=$LOGS/integration.log last
	s_pass=0 s_fail=0 s_skip=0
	echo "== integration"
	AG_BUILD=$BUILD AG_LOGS=$LOGS/integration tests/integration/run.sh 2>&1 | tee "$log" |
		sed 's/^/  /'
	last=$(tail -n 1 "$log")
	if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
		s_pass=${BASH_REMATCH[1]} s_fail=${BASH_REMATCH[2]} s_skip=${BASH_REMATCH[3]}
	else
		echo "  run.sh ended without a summary line"
		s_fail=1
	fi
	suite_line integration
}

# ------------------------------------------------------------------ suites
start=$(date +%s)
for s in "${suites[@]}"; do
	case $s in
	style) run_style ;;
	unit) run_dir_suite unit "$BUILD/tests/unit" ;;
	bpf)
		if [ "$(id -u)" -ne 0 ]; then
			s_pass=0 s_fail=0 s_skip=1
			echo "== bpf"
			echo "  skipped: needs root"
			suite_line bpf
		else
			run_dir_suite bpf "$BUILD/tests/bpf"
		fi
		;;
	fuzz) run_fuzz ;;
	integration) run_integration ;;
	esac
done
echo "(suites took $(($(date +%s) - start)) s; logs in $LOGS)"
finish
