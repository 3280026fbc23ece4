#!/usr/bin/env bash
# 300 UDP request/replies through the VIP, each from its own socket: every reply
# comes back from the VIP (reverse NAT) and names a backend.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
# shellcheck disable=SC2119 # no group given on purpose: the default lab config
ag_lab_start

N=300
out=$AG_RUN/udp.out
nsx client "$AG_TESTCLI" --timeout-ms 3000 "$AG_VIP" 5000 $N >"$out" 2>"$AG_RUN/udp.err"
rc=$?
cat "$AG_RUN/udp.err"
lines=$(wc -l <"$out")
[ "$lines" -eq $N ] || ag_fail "ag-testcli printed $lines replies, expected $N"
bad=0
while read -r name; do
	if ! valid_backend "$name"; then
		bad=$((bad + 1))
		[ $bad -le 5 ] && echo "bad reply: '$name'"
	fi
done <"$out"
ag_info "udp: $(sort "$out" | uniq -c | awk '{printf "%s=%s ", $2, $1}')"
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
[ $bad -eq 0 ] && [ $rc -eq 0 ] || ag_fail "$bad of $N UDP requests got no valid reply (ag-testcli exit $rc)"
# Two backends of equal weight per group: one backend for all 300 flows
# (chance 2^-299 when the hash and tables work) means a broken spread.
distinct=$(sort -u "$out" | wc -l)
[ "$distinct" -ge 2 ] || ag_fail "all $N UDP flows went to one backend: flows are not spread"
echo "PASS: $N UDP request/replies through $AG_VIP:5000"
