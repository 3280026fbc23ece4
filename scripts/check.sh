#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The style gate. .ci/run runs it before scripts/test.sh.
#
#   scripts/check.sh              every step, in the order below
#   scripts/check.sh STEP...      only those steps
#   scripts/check.sh --self-test  plant a fault in a temporary copy for each step that can
#                                 take one and show the step reports it (test.sh's "style")
# AG_CHECK_JOBS (default 2) clang-tidy processes; AG_CHECK_SHOW_SUPPRESSED=1 also prints
# the findings check-suppressions.txt lets through.
#
# Steps: format (clang-format 14), shell (shellcheck), analyze (clang-tidy 14), werror
# (the build treats warnings as errors), includes (no include cycles, controlplane layers),
# commits (subject and body of every commit after this gate came in).
# Each step prints "check: STEP: ok" or its findings and "check: STEP: FAILED"; the exit
# status is non-zero when a step failed. As root it first runs scripts/deps.sh.
# shellcheck disable=SC2317 # the step_* functions are called as "step_$s"
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=$ROOT/build
ALL_STEPS=(format shell analyze werror includes commits)
CLANG_FORMAT=clang-format-14
CLANG_TIDY=clang-tidy-14
SUPPRESSIONS=$ROOT/scripts/check-suppressions.txt
CUNIT_MODEL=$ROOT/scripts/check-cunit-model.h
JOBS=${AG_CHECK_JOBS:-2}
# Findings shown per step; the rest are counted.
SHOW_MAX=60

# clang-tidy: checks that find bugs, not taste.
#  bugprone-*            real mistakes (sizeof misuse, narrow loop counters, bad memset...)
#  clang-analyzer-*      the static analyzer: NULL dereference, use after free, leaks, garbage
#                        reads, dead stores
# left out, each for a reason:
#  clang-analyzer-security.insecureAPI.*   memcpy/snprintf "use *_s": C11 Annex K, not in glibc
#  clang-analyzer-optin.performance.Padding  layout is chosen, and ABI structs are asserted
#  clang-analyzer-valist.Uninitialized     false positive on every va_start + vsnprintf in
#                                          clang 14 (llvm-project issue 40656)
#  bugprone-easily-swappable-parameters    every (const char *, const char *) function
#  bugprone-narrowing-conversions          every int <-> double and u64 -> time_t; -Wall's job
#  bugprone-implicit-widening-of-multiplication-result  small constant products (3 * i)
#  bugprone-macro-parentheses              X-macros and jhash's lvalue macros are meant so
#  bugprone-reserved-identifier            bpftool's skeletons and kernel-style __u32 names
#  bugprone-suspicious-string-compare      "!strcmp(a, b)" is this tree's idiom
#  bugprone-not-null-terminated-result     memcpy of byte runs that are not strings
# The analyzer's per-function budget is cut from 225000 to 50000 explored nodes: on this tree
# it reports what the default budget reports (one finding more), in a third of the time.
# Tests (tests/, CUnit bodies of hundreds of assertions) get 20000: on this tree the same
# findings but one false positive in a generated skeleton, in half their time (test_xdp.c
# 10.8 s -> 4.3 s), which keeps the gate well inside a minute on a 2-core box.
# CUnit tests are analyzed with check-cunit-model.h, so a failed fatal assertion ends the
# path. Findings in bpftool's generated skeletons and those left for other branches are
# listed, with a reason each, in check-suppressions.txt.
TIDY_CHECKS=$(
	tr -d ' \n' <<-'EOF'
		-*,bugprone-*,clang-analyzer-*,
		-clang-analyzer-security.insecureAPI.*,-clang-analyzer-optin.performance.Padding,
		-clang-analyzer-valist.Uninitialized,-bugprone-easily-swappable-parameters,
		-bugprone-narrowing-conversions,-bugprone-implicit-widening-of-multiplication-result,
		-bugprone-macro-parentheses,-bugprone-reserved-identifier,
		-bugprone-suspicious-string-compare,-bugprone-not-null-terminated-result
	EOF
)
TIDY_MAX_NODES=50000
TIDY_MAX_NODES_TESTS=20000
# Headers whose findings count: the project's own (a name without a dot before .h, so not
# the generated *.skel.h), never /usr/include. An analyzer path that starts in a source file
# is reported wherever it ends, skeletons included.
TIDY_HEADERS='(^|/)(controlplane|dataplane|tests|bpf|scripts)/(.*/)?[A-Za-z0-9_-]+\.h$'

# The controlplane layers: the folders a file in each folder may include headers from,
# besides its own and dataplane/core (which includes nothing outside itself).
declare -A LAYERS=(
	[base]=""
	[config]="base"
	[tables]="config base"
	[fastpath]="tables config base"
	[health]="config base"
	[ctl]="config base"
	[metrics]="health base"
	[daemon]="*"
)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

failed=0

# ------------------------------------------------------------------ output

# report STEP FINDINGS_FILE [NOTE]: "check: STEP: ok" when FINDINGS_FILE is empty, else
# the findings (at most SHOW_MAX) and "check: STEP: FAILED".
report() {
	local step=$1 f=$2 note=${3:-} n
	n=$(grep -c . "$f")
	if [ "$n" -eq 0 ]; then
		echo "check: $step: ok${note:+ ($note)}"
		return 0
	fi
	head -n "$SHOW_MAX" "$f" | sed 's/^/  /'
	[ "$n" -gt "$SHOW_MAX" ] && echo "  ... and $((n - SHOW_MAX)) more"
	echo "check: $step: FAILED ($n finding$([ "$n" -eq 1 ] || echo s)${note:+; $note})"
	failed=1
	return 1
}

# need STEP TOOL...: report the step failed when a tool is missing.
need() {
	local step=$1 t
	shift
	for t in "$@"; do
		if ! command -v "$t" >/dev/null; then
			echo "check: $step: FAILED ($t not found: scripts/deps.sh installs it)"
			failed=1
			return 1
		fi
	done
}

# ------------------------------------------------------------------ a. format

# format_findings FILE...: one line per file clang-format would change.
format_findings() {
	"$CLANG_FORMAT" --style="file:$ROOT/.clang-format" --dry-run -Werror "$@" 2>&1 |
		sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' |
		uniq -c | awk '{ printf "%s: %d places differ from clang-format (run: '"$CLANG_FORMAT"' -i %s)\n", $2, $1, $2 }'
}

step_format() {
	local files
	need format "$CLANG_FORMAT" || return
	mapfile -t files < <(git ls-files '*.c' '*.h')
	format_findings "${files[@]}" >"$TMP/format"
	report format "$TMP/format" "${#files[@]} files"
}

# ------------------------------------------------------------------ b. shell

# shell_scripts: every tracked shell script: *.sh, or a file whose first line is a sh/bash
# shebang.
shell_scripts() {
	local f first
	git ls-files | while IFS= read -r f; do
		[ -f "$f" ] || continue
		case $f in
		*.sh)
			echo "$f"
			continue
			;;
		esac
		IFS= read -r first <"$f" 2>/dev/null || continue
		[[ $first =~ ^#!.*[/\ ](ba|da|k)?sh([[:space:]]|$) ]] && echo "$f"
	done
}

# shell_findings FILE...: shellcheck's findings, one a line, a few files per process, JOBS
# at a time. Sourced files are not followed (SC1091 off): every one of them is a tracked
# script checked on its own, and following lib.sh from each of the 35 tests that source it
# parsed it 35 times over (26 s of the gate's CPU, now 4).
shell_findings() {
	printf '%s\0' "$@" |
		xargs -0 -r -n 4 -P "$JOBS" shellcheck --exclude=SC1091 --format=gcc 2>&1 |
		sort -u -t: -k1,1 -k2,2n -k3,3n
}

step_shell() {
	local files
	need shell shellcheck || return
	mapfile -t files < <(shell_scripts)
	shell_findings "${files[@]}" >"$TMP/shell"
	report shell "$TMP/shell" "${#files[@]} scripts"
}

# ------------------------------------------------------------------ build dir

# ensure_build: a configured build dir with its generated headers (bpftool skeletons), so
# the analyzer sees every source as the compiler does. test.sh builds the rest.
ensure_build() {
	local skels
	[ -f "$TMP/build-ready" ] && return 0
	if [ ! -f "$BUILD/build.ninja" ]; then
		meson setup -Dwerror=true "$BUILD" >"$TMP/meson.log" 2>&1 || {
			tail -n 20 "$TMP/meson.log"
			return 1
		}
	fi
	mapfile -t skels < <(ninja -C "$BUILD" -t targets all 2>/dev/null |
		sed -n 's/^\([^:]*\.skel\.h\): .*/\1/p')
	# Also regenerates build.ninja and compile_commands.json when a meson.build changed.
	[ ${#skels[@]} -eq 0 ] || ninja -C "$BUILD" -j"$JOBS" "${skels[@]}" >"$TMP/ninja.log" 2>&1 || {
		tail -n 20 "$TMP/ninja.log"
		return 1
	}
	touch "$TMP/build-ready"
}

# ------------------------------------------------------------------ c. analyze

# tidy_db DIR: DIR/compile_commands.json with one entry per tracked C file: meson's (first
# of duplicates: the unsanitized build), the BPF objects' clang commands from ninja (same
# target, defines and includes as the build), and the Maglev bench (scripts/bench/maglev,
# built by its run.sh). CUnit tests get the analyzer model of fatal assertions.
# Prints the files; tracked C files without a command go to DIR/unanalyzed.
tidy_db() {
	ninja -C "$BUILD" -t commands all >"$1/ninja-commands" 2>/dev/null
	git ls-files '*.c' >"$1/tracked"
	python3 - "$ROOT" "$BUILD" "$1" "$CUNIT_MODEL" <<-'EOF'
		import json, os, shlex, sys
		root, build, out, model = sys.argv[1:5]
		entries, seen = [], set()

		def add(args, src):
		    src = os.path.normpath(os.path.join(build, src))
		    if src in seen or not src.startswith(root + "/"):
		        return
		    seen.add(src)
		    # Compiler warnings are the werror step's (gcc's, as built), not clang's here.
		    args = args + ["-Wno-error"]
		    with open(src, errors="replace") as f:
		        if "#include <CUnit/" in f.read():
		            args = args[:1] + ["-include", model] + args[1:]
		    entries.append({"directory": build, "file": src, "arguments": args})

		for e in json.load(open(os.path.join(build, "compile_commands.json"))):
		    args = e.get("arguments") or shlex.split(e["command"])
		    add(args, os.path.join(e["directory"], e["file"]))
		for line in open(os.path.join(out, "ninja-commands")):
		    a = shlex.split(line)
		    if "bpf" not in a or "-target" not in a or "-c" not in a:
		        continue
		    src = a[a.index("-c") + 1]
		    keep, skip = [], 0
		    for x in a:
		        if skip:
		            skip -= 1
		        elif x in ("-MD",):
		            pass
		        elif x in ("-MF", "-o"):
		            skip = 1
		        else:
		            keep.append(x)
		    add(keep, src)
		bench = os.path.join(root, "scripts/bench/maglev/bench.c")
		add(["cc", "-std=gnu11", "-D_GNU_SOURCE", "-I" + root + "/controlplane/tables",
		     "-I" + root + "/dataplane/core", "-c", bench], bench)
		json.dump(entries, open(os.path.join(out, "compile_commands.json"), "w"), indent=1)
		with open(os.path.join(out, "unanalyzed"), "w") as u:
		    for t in open(os.path.join(out, "tracked")).read().split():
		        if os.path.join(root, t) not in seen:
		            u.write(t + ": not analyzed: no compile command (not built here)\n")
		for e in entries:
		    print(e["file"])
	EOF
}

# tidy_one DB FILE: clang-tidy on one file, its output in DB/out/<n>.log.
tidy_one() {
	local log nodes=$TIDY_MAX_NODES
	log=$1/out/$(echo "$2" | tr '/' '_').log
	case $2 in "$ROOT"/tests/*) nodes=$TIDY_MAX_NODES_TESTS ;; esac
	"$CLANG_TIDY" -p "$1" --quiet --use-color=false --checks="$TIDY_CHECKS" \
		--header-filter="$TIDY_HEADERS" --extra-arg=-Xclang --extra-arg=-analyzer-config \
		--extra-arg=-Xclang --extra-arg="max-nodes=$nodes" "$2" >"$log" 2>&1 ||
		echo "$2: error: clang-tidy exited $? [clang-tidy]" >>"$log"
}

# tidy_findings DB: every warning and error once, with paths relative to the source root
# (clang names a file relative to the build dir, where it ran, or by its absolute path).
tidy_findings() {
	cat "$1"/out/*.log 2>/dev/null |
		grep -E '^[^ ].*:[0-9]+:[0-9]+: (warning|error): .*\[[^]]+\]$|: error: clang-tidy exited' |
		sed -e '/^\//!{s|^\.\./||;t' -e 's|^|build/|;b' -e '}' \
			-e "s|^$BUILD/\.\./||" -e "s|^$BUILD/|build/|" -e "s|^$ROOT/||" | sort -u
}

# suppress FINDINGS SUPPRESSED: drop findings matched by a line of check-suppressions.txt
# ("PATH-GLOB CHECK-GLOB REASON..."), move them to SUPPRESSED; a line without a reason is a
# finding itself, one that matches nothing is reported as stale.
suppress() {
	local in=$1 out=$2 pat chk reason line file check keep n
	local -a pats=() chks=()
	: >"$out"
	if [ -f "$SUPPRESSIONS" ]; then
		n=0
		while IFS= read -r line; do
			n=$((n + 1))
			[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
			read -r pat chk reason <<<"$line"
			if [ -z "$reason" ]; then
				echo "scripts/check-suppressions.txt:$n: no reason given: $line" >>"$TMP/supp-bad"
				continue
			fi
			pats+=("$pat")
			chks+=("$chk")
		done <"$SUPPRESSIONS"
	fi
	: >"$TMP/supp-used"
	while IFS= read -r line; do
		file=${line%%:*}
		check=${line##*\[}
		check=${check%]}
		keep=1
		for n in "${!pats[@]}"; do
			# shellcheck disable=SC2053 # the suppression's fields are globs
			if [[ $file == ${pats[n]} && $check == ${chks[n]} ]]; then
				keep=0
				echo "$n" >>"$TMP/supp-used"
				break
			fi
		done
		if [ "$keep" -eq 1 ]; then echo "$line"; else echo "$line" >>"$out"; fi
	done <"$in"
	for n in "${!pats[@]}"; do
		grep -qx "$n" "$TMP/supp-used" ||
			echo "check: analyze: note: suppression matches nothing now: ${pats[n]} ${chks[n]}" >&2
	done
}

step_analyze() {
	local db=$TMP/tidy start note n_files n_supp
	need analyze "$CLANG_TIDY" python3 ninja meson || return
	start=$(date +%s)
	ensure_build >"$TMP/build.out" 2>&1 || {
		sed 's/^/  /' "$TMP/build.out"
		echo "check: analyze: FAILED (could not set up $BUILD)"
		failed=1
		return
	}
	mkdir -p "$db/out"
	tidy_db "$db" >"$db/files" || {
		echo "check: analyze: FAILED (could not build the compile database)"
		failed=1
		return
	}
	export -f tidy_one
	export CLANG_TIDY TIDY_CHECKS TIDY_HEADERS TIDY_MAX_NODES TIDY_MAX_NODES_TESTS ROOT
	# shellcheck disable=SC2016 # $0 and $1 are bash -c's own arguments
	tr '\n' '\0' <"$db/files" | xargs -0 -r -n1 -P"$JOBS" bash -c 'tidy_one "$0" "$1"' "$db"
	tidy_findings "$db" >"$db/all"
	: >"$TMP/supp-bad"
	suppress "$db/all" "$db/suppressed" >"$db/left"
	cat "$TMP/supp-bad" "$db/unanalyzed" >>"$db/left"
	n_files=$(grep -c . "$db/files")
	n_supp=$(grep -c . "$db/suppressed")
	[ -n "${AG_CHECK_SHOW_SUPPRESSED:-}" ] && sed 's/^/  suppressed: /' "$db/suppressed"
	note="$n_files files, $n_supp suppressed by check-suppressions.txt, $(($(date +%s) - start)) s"
	report analyze "$db/left" "$note"
}

# ------------------------------------------------------------------ d. werror

# The build itself is test.sh's (no second build here): this step checks it is the -Werror
# build: the project default, the configured build dir, and every BPF compile.
step_werror() {
	local f=$TMP/werror
	: >"$f"
	grep -q "'werror=true'" meson.build ||
		echo "meson.build: default_options lacks 'werror=true'" >>"$f"
	grep -q "'-Werror'" bpf/meson.build || echo "bpf/meson.build: bpf_cflags lacks -Werror" >>"$f"
	if ensure_build >"$TMP/build.out" 2>&1; then
		meson introspect --buildoptions "$BUILD" 2>/dev/null | python3 -c 'import json, sys
sys.exit(0 if {o["name"]: o["value"] for o in json.load(sys.stdin)}.get("werror") is True else 1)' ||
			echo "$BUILD: configured with werror=false (meson setup --reconfigure -Dwerror=true)" >>"$f"
		ninja -C "$BUILD" -t commands all 2>/dev/null | grep -- '-target bpf' |
			grep -v -- '-Werror' | sed 's|.* -c \([^ ]*\).*|\1: BPF compiled without -Werror|' >>"$f"
	else
		sed 's/^/  /' "$TMP/build.out"
		echo "$BUILD: could not set up the build dir" >>"$f"
	fi
	report werror "$f" "the -Werror build itself runs in test.sh"
}

# ------------------------------------------------------------------ e. includes

# include_edges FILE...: "SRC:LINE TARGET" for each #include "x" that names a file of the
# list (resolved beside SRC, else by a unique base name); run from the tree's root.
include_edges() {
	awk '
	function norm(p,   n, i, k, s, out) {
		n = split(p, s, "/"); k = 0
		for (i = 1; i <= n; i++) {
			if (s[i] == "." || s[i] == "") continue
			if (s[i] == ".." && k > 0) { k--; continue }
			st[++k] = s[i]
		}
		out = st[1]; for (i = 2; i <= k; i++) out = out "/" st[i]
		return out
	}
	BEGIN {
		for (i = 1; i < ARGC; i++) {
			known[ARGV[i]] = 1
			b = ARGV[i]; sub(/.*\//, "", b)
			if (ARGV[i] ~ /\.h$/) byname[b] = (b in byname) ? "" : ARGV[i]
		}
	}
	/^[ \t]*#[ \t]*include[ \t]*"/ {
		name = $0; sub(/^[^"]*"/, "", name); sub(/".*/, "", name)
		dir = FILENAME; if (dir ~ /\//) sub(/\/[^\/]*$/, "", dir); else dir = "."
		t = norm(dir "/" name)
		if (!(t in known)) { b = name; sub(/.*\//, "", b); t = (b in byname) ? byname[b] : "" }
		if (t == "") next
		print FILENAME ":" FNR, t
	}' "$@"
}

# module PATH: the file name without its extension (foo.c and foo.h are one module).
module_of() {
	local b=${1##*/}
	echo "${b%.*}"
}

# cycle_findings EDGES: tsort's loops, each with the includes that close it.
cycle_findings() {
	local edges=$1 src t
	while read -r src t; do
		echo "$(module_of "${src%%:*}") $(module_of "$t") $src $t"
	done <"$edges" | awk '$1 != $2' >"$TMP/mod-edges"
	awk '{ print $1, $2 }' "$TMP/mod-edges" | tsort 2>&1 >/dev/null |
		awk '/input contains a loop/ { if (n) print s; s = ""; n = 0; next }
		     { sub(/^tsort: /, ""); s = s (n++ ? " " : "") $0 }
		     END { if (n) print s }' |
		while read -r -a loop; do
			local i a b how=""
			for i in "${!loop[@]}"; do
				a=${loop[i]}
				b=${loop[$(((i + 1) % ${#loop[@]}))]}
				how+=$(awk -v a="$a" -v b="$b" '$1 == a && $2 == b { printf "; %s includes %s", $3, $4; exit }' "$TMP/mod-edges")
			done
			echo "include cycle: ${loop[*]} -> ${loop[0]}$how"
		done
}

# layer_findings EDGES: includes that break the controlplane layers or leave dataplane/core.
layer_findings() {
	local src t from to allowed
	while read -r src t; do
		case ${src%%:*} in
		dataplane/core/*)
			[[ $t == dataplane/core/* ]] ||
				echo "$src: dataplane/core includes $t (it includes nothing outside itself)"
			continue
			;;
		controlplane/*/*) from=${src#controlplane/} from=${from%%/*} ;;
		*) continue ;;
		esac
		[[ $t == dataplane/core/* ]] && continue
		if [[ $t != controlplane/*/* ]]; then
			echo "$src: controlplane/$from includes $t (outside controlplane and dataplane/core)"
			continue
		fi
		to=${t#controlplane/} to=${to%%/*}
		[ "$to" = "$from" ] && continue
		if [ -z "${LAYERS[$from]+set}" ]; then
			echo "$src: controlplane/$from has no layer rule (scripts/check.sh LAYERS)"
			continue
		fi
		allowed=" ${LAYERS[$from]} "
		[[ $allowed == *" * "* || $allowed == *" $to "* ]] ||
			echo "$src: controlplane/$from includes $t (allowed: ${LAYERS[$from]:-none})"
	done <"$1"
}

step_includes() {
	local files
	need includes tsort || return
	mapfile -t files < <(git ls-files '*.c' '*.h')
	include_edges "${files[@]}" >"$TMP/edges"
	{
		cycle_findings "$TMP/edges"
		layer_findings "$TMP/edges"
	} >"$TMP/includes"
	report includes "$TMP/includes" "$(grep -c . "$TMP/edges") includes among ${#files[@]} files"
}

# ------------------------------------------------------------------ f. commits

# subject_problem SUBJECT BODY: why a commit message breaks the rule, or nothing.
subject_problem() {
	local s=$1 body=$2 first re='^[A-Za-z0-9][A-Za-z0-9_./+, -]{0,39}: [^ ]'
	if [ "${#s}" -gt 72 ]; then
		echo "subject is ${#s} characters (72 at most)"
	elif ! [[ $s =~ $re ]]; then
		echo 'subject is not "area: imperative summary"'
	elif [[ $s == *. ]]; then
		echo "subject ends with a full stop"
	elif [ -z "${body//[[:space:]]/}" ]; then
		echo "no body (a blank line, then why)"
	else
		first=${s#*: }
		first=${first%% *}
		first=${first,,}
		case $first in
		added | adds | adding | fixed | fixes | fixing | removed | removes | changed | changes | \
			updated | updates | moved | moves | renamed | renames | made | makes)
			echo "summary starts with \"$first\": write it in the imperative (add, fix, ...)"
			;;
		esac
	fi
}

step_commits() {
	local marker c s body why shallow
	: >"$TMP/commits"
	if ! git rev-parse --git-dir >/dev/null 2>&1; then
		echo "check: commits: skipped (not a git checkout)"
		return
	fi
	marker=$(git log --diff-filter=A --format=%H -- scripts/check.sh | tail -n 1)
	shallow=$(git rev-parse --is-shallow-repository)
	if [ "$shallow" = true ] && { [ -z "$marker" ] ||
		grep -qx "$marker" "$(git rev-parse --git-path shallow)" 2>/dev/null; }; then
		echo "check: commits: skipped (shallow clone: the commit that added scripts/check.sh is not here)"
		return
	fi
	if [ -z "$marker" ]; then
		echo "check: commits: skipped (scripts/check.sh is not committed yet)"
		return
	fi
	# "After" is git's: descendants of the marker (--ancestry-path), so work merged in from
	# branches that began before the gate is not held to it; merge commits are skipped.
	for c in $(git rev-list --no-merges --ancestry-path "$marker..HEAD"); do
		s=$(git log -1 --format=%s "$c")
		body=$(git log -1 --format=%b "$c")
		why=$(subject_problem "$s" "$body")
		[ -n "$why" ] && echo "${c:0:10} \"$s\": $why" >>"$TMP/commits"
	done
	report commits "$TMP/commits" "after ${marker:0:10}, the commit that added this gate"
}

# ------------------------------------------------------------------ g. self-test

# selftest NAME FINDINGS_FILE MUST_MATCH: ok when the planted fault was reported.
selftest_result() {
	if grep -q -- "$3" "$2"; then
		echo "self-test: $1: ok"
	else
		echo "self-test: $1: FAILED (the planted fault was not reported; got:)"
		sed 's/^/    | /' "$2" | head -n 20
		failed=1
	fi
}

selftest_skip() {
	echo "self-test: $1: skipped ($2 not found: scripts/deps.sh installs it)"
}

self_test() {
	local d=$TMP/self src
	[ -n "${AG_CHECK_SELFTEST_KEEP:-}" ] && d=$AG_CHECK_SELFTEST_KEEP
	mkdir -p "$d/fmt" "$d/sh" "$d/inc/controlplane/base" "$d/inc/controlplane/daemon" "$d/tidy"

	# format: a tracked file, formatted, passes; the same with its indentation changed and a
	# closing brace joined to the next line is reported.
	if command -v "$CLANG_FORMAT" >/dev/null; then
		src=controlplane/base/log.c
		cp "$src" "$d/fmt/clean.c"
		"$CLANG_FORMAT" --style="file:$ROOT/.clang-format" -i "$d/fmt/clean.c"
		sed -e 's/^\t/    /' -e '/^}$/{N;s/\n/ /}' "$d/fmt/clean.c" >"$d/fmt/bad.c"
		format_findings "$d/fmt/clean.c" "$d/fmt/bad.c" >"$d/fmt/out"
		if grep -q clean.c "$d/fmt/out"; then
			echo "self-test: format: FAILED (clang-format's own output is reported)"
			failed=1
		else
			selftest_result format "$d/fmt/out" "bad.c: .* places differ"
		fi
	else
		selftest_skip format "$CLANG_FORMAT"
	fi

	# shell: an unquoted expansion (SC2086) and an unused variable (SC2034).
	if command -v shellcheck >/dev/null; then
		# shellcheck disable=SC2016 # the planted script's text, not expanded here
		printf '#!/usr/bin/env bash\nunused=1\ndir=$1\nls $dir/cache\n' >"$d/sh/bad"
		shell_findings "$d/sh/bad" >"$d/sh/out"
		selftest_result shell "$d/sh/out" "bad:4:.*SC2086"
	else
		selftest_skip shell shellcheck
	fi

	# analyze: a NULL dereference the analyzer must see.
	if command -v "$CLANG_TIDY" >/dev/null; then
		printf '#include <stddef.h>\nint f(int k)\n{\n\tint *p = NULL;\n\n\tif (k)\n\t\treturn *p;\n\treturn 0;\n}\n' >"$d/tidy/bad.c"
		"$CLANG_TIDY" --quiet --use-color=false --checks="$TIDY_CHECKS" "$d/tidy/bad.c" -- \
			>"$d/tidy/out" 2>&1
		selftest_result analyze "$d/tidy/out" "bad.c:7:.*clang-analyzer-core.NullDereference"
	else
		selftest_skip analyze "$CLANG_TIDY"
	fi

	# includes: a.h <-> b.h is a cycle; base/x.c including daemon/y.h breaks the layers.
	if command -v tsort >/dev/null; then
		(
			cd "$d/inc" || exit 1
			printf '#include "b.h"\n' >a.h
			printf '#include "a.h"\n' >b.h
			printf '#include "a.h"\n' >c.c
			printf '#include "y.h"\n' >controlplane/base/x.c
			: >controlplane/daemon/y.h
			include_edges a.h b.h c.c controlplane/base/x.c controlplane/daemon/y.h >edges
			cycle_findings edges >out
			layer_findings edges >>out
		)
		selftest_result "includes (cycle)" "$d/inc/out" "include cycle: a b -> a"
		selftest_result "includes (layers)" "$d/inc/out" \
			"controlplane/base/x.c:1: controlplane/base includes controlplane/daemon/y.h"
	else
		selftest_skip includes tsort
	fi

	# commits: a subject without an area, one too long, one without a body.
	{
		subject_problem "Fixed the thing" "why"
		subject_problem "core: $(printf 'x%.0s' {1..80})" "why"
		subject_problem "core: choose the backend in one place" ""
		subject_problem "core: fixed a bug" "why"
	} >"$d/commits"
	if [ "$(grep -c . "$d/commits")" -eq 4 ] &&
		[ -z "$(subject_problem "core: choose the backend in one place" "why")" ]; then
		echo "self-test: commits: ok"
	else
		echo "self-test: commits: FAILED"
		sed 's/^/    | /' "$d/commits"
		failed=1
	fi
	return $failed
}

# ------------------------------------------------------------------ main

if [ "${1:-}" = --self-test ]; then
	self_test
	exit
fi
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=("${ALL_STEPS[@]}")
for s in "${steps[@]}"; do
	case " ${ALL_STEPS[*]} " in
	*" $s "*) ;;
	*)
		echo "check.sh: unknown step '$s' (known: ${ALL_STEPS[*]}, or --self-test)" >&2
		exit 2
		;;
	esac
done
if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo "check.sh: $ROOT is not a git checkout (the steps list tracked files)" >&2
	exit 2
fi
if [ "$(id -u)" -eq 0 ]; then
	scripts/deps.sh >"$TMP/deps.log" 2>&1 || {
		cat "$TMP/deps.log"
		echo "check.sh: deps.sh failed"
		exit 1
	}
fi
start=$(date +%s)
for s in "${steps[@]}"; do
	"step_$s"
done
echo "check: ${#steps[@]} steps in $(($(date +%s) - start)) s: $([ $failed -eq 0 ] && echo passed || echo FAILED)"
exit $failed
