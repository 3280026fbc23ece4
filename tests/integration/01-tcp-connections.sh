#!/usr/bin/env bash
# 300 real TCP connections through the VIP: every one is answered by a backend
# that names itself (HTTP/1.0, closed after each response: one connection per URL).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
# shellcheck disable=SC2119 # no group given on purpose: the default lab config
ag_lab_start

N=300
out=$AG_RUN/curl.out
nsx client curl -s --connect-timeout 5 --max-time 10 \
	-w '|%{http_code}|%{num_connects}\n' "http://$AG_VIP/[1-$N]" >"$out" 2>"$AG_RUN/curl.err"

lines=$(wc -l <"$out")
[ "$lines" -eq $N ] || ag_fail "curl reported $lines transfers, expected $N"
bad=0 conns=0
while IFS='|' read -r name code nc; do
	if [ "$code" != 200 ] || ! valid_backend "$name"; then
		bad=$((bad + 1))
		[ $bad -le 5 ] && echo "bad reply: name='$name' status=$code"
	fi
	conns=$((conns + nc))
done <"$out"
ag_info "tcp: $(cut -d'|' -f1 "$out" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')"
[ $bad -eq 0 ] || ag_fail "$bad of $N requests failed or had no valid backend name"
[ $conns -eq $N ] || ag_fail "curl made $conns connections, expected $N (one per request)"
# Every group has two backends of equal weight: 300 flows that all land on one
# backend (chance 2^-299 when the hash and tables work) mean a broken spread.
distinct=$(cut -d'|' -f1 "$out" | sort -u | wc -l)
[ "$distinct" -ge 2 ] || ag_fail "all $N connections went to one backend: flows are not spread"
echo "PASS: $N TCP connections through $AG_VIP:80, all answered by a backend"
