#!/usr/bin/env bash
# anygated --check: the lab config is valid (exit 0); a bad config exits 1 and
# names file:line and the key of each problem.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_set_tag "${AG_TAG:-t$$}"
[ -x "$AG_ANYGATED" ] || ag_die "$AG_ANYGATED is missing: build first"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for good in "$AG_ROOT/config/lab.conf" "$tmp/gen.conf"; do
	[ "$good" = "$tmp/gen.conf" ] && ag_config_write "$good"
	"$AG_ANYGATED" --check "$good" >"$tmp/out" 2>&1
	rc=$?
	cat "$tmp/out"
	[ $rc -eq 0 ] || ag_fail "anygated --check $good exited $rc, expected 0"
done

# Two problems on known lines: a weight past 255 and an unknown key.
ag_config_write "$tmp/bad.conf"
sed -i '0,/weight = 128;/s//weight = 300;/' "$tmp/bad.conf"
sed -i '0,/ring_size = 65537;/s//ring_size = 65537;\n\tno_such_key = 1;/' "$tmp/bad.conf"
wline=$(grep -n 'weight = 300;' "$tmp/bad.conf" | cut -d: -f1)
kline=$(grep -n 'no_such_key' "$tmp/bad.conf" | cut -d: -f1)
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
[ -n "$wline" ] && [ -n "$kline" ] || ag_die "could not plant the errors in $tmp/bad.conf"

"$AG_ANYGATED" --check "$tmp/bad.conf" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/err"
[ $rc -eq 1 ] || ag_fail "anygated --check on a bad config exited $rc, expected 1"
grep -q "^$tmp/bad.conf:$wline: .*weight.*" "$tmp/err" ||
	ag_fail "no '$tmp/bad.conf:$wline: ...weight...' line for the weight of 300"
grep -q "^$tmp/bad.conf:$kline: .*no_such_key" "$tmp/err" ||
	ag_fail "no '$tmp/bad.conf:$kline: ...no_such_key...' line for the unknown key"

# A file that is not there is an error too, never a silent default.
"$AG_ANYGATED" --check "$tmp/missing.conf" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] || ag_fail "anygated --check on a missing file exited $rc, expected 1"
echo "PASS: --check accepts the lab configs, refuses the bad one with file:line"
