#!/usr/bin/env bash
# failure_policy fail_open, end to end: every health check fails (the checks
# probe TCP port 81, where no backend listens) while every server answers on
# its service ports. Once anygated has marked every endpoint down, the
# listeners fail open: real TCP (curl) and UDP (ag-testcli) traffic through the
# VIP still flows, to the nearest group, and anygatectl shows and counts it.
# Then failure_policy "drop" (a reload) drops the same traffic, counted as
# drop_no_backend.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
export AG_HEALTH='protocol = "tcp"; port = 81; interval_ms = 100; timeout_ms = 95; healthy_threshold = 2; unhealthy_threshold = 2;'
ag_lab_start "eu-west:r1b1=1,r1b2=1" "us-east:r2b1=1,r2b2=1"

ctl() { "$AG_BUILD/controlplane/anygatectl" -s "$AG_RUN/anygated.sock" "$@"; }
# json_get CMD EXPR: EXPR (python, over the reply as j) of `anygatectl --json CMD`.
json_get() {
	ctl --json "$1" | python3 -c 'import json, sys
j = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$2"
}

all_down() { [ "$(json_get endpoints 'all(e["health"] != "up" for e in j)')" = True ]; }
failing_open() { [ "$(json_get listeners 'all(l["failing_open"] for l in j)')" = True ]; }
wait_for 15 "every endpoint down (health checks to port 81 fail)" all_down ||
	ag_fail "endpoints not all down: $(ctl endpoints)"
wait_for 5 "both listeners failing open" failing_open ||
	ag_fail "listeners not failing open: $(ctl listeners)"
grep -q 'failure_policy fail_open forwards' "$AG_AGD_LOG" ||
	ag_fail "anygated did not log that it fails open"
ctl endpoints | sed 's/^/  /'

# The region fail_open spreads over: the first of the TCP listener's order.
first=$(json_get listeners '[l for l in j if l["proto"] == "tcp"][0]["order"].split()[0]')
case $first in
eu-west) want=r1b ;;
us-east) want=r2b ;;
*) ag_fail "unexpected first region '$first'" ;;
esac

# TCP: new connections, each served (by a server of that region).
N=20
for ((i = 0; i < N; i++)); do
	nsx client curl -s -m 2 "http://$AG_VIP/"
	echo
done >"$AG_RUN/tcp.out"
served=$(grep -c "^$want" "$AG_RUN/tcp.out")
[ "$served" -eq $N ] || ag_fail "fail_open: $served of $N TCP connections served by $first: $(tr '\n' ' ' <"$AG_RUN/tcp.out")"
# Both of the region's endpoints take new flows (by weight), health aside.
[ "$(sort -u "$AG_RUN/tcp.out" | wc -l)" -eq 2 ] ||
	ag_fail "fail_open spread over $(sort -u "$AG_RUN/tcp.out" | tr '\n' ' ')only"

# UDP: distinct flows, each answered.
nsx client "$AG_TESTCLI" --timeout-ms 2000 --sport-base 41000 "$AG_VIP" 5000 $N >"$AG_RUN/udp.out" ||
	ag_fail "fail_open: UDP requests unanswered: $(sort "$AG_RUN/udp.out" | uniq -c | tr '\n' ' ')"
[ "$(grep -c "^$want" "$AG_RUN/udp.out")" -eq $N ] ||
	ag_fail "UDP replies not all from $first: $(sort "$AG_RUN/udp.out" | uniq -c | tr '\n' ' ')"

# Shown and counted: stats per listener, and no new flow dropped for want of a backend.
counted=$(json_get stats 'sum(l["fail_open_new_flows"] for l in j["listeners"])')
episodes=$(json_get stats 'sum(l["fail_open_episodes"] for l in j["listeners"])')
[ "$counted" -ge $((2 * N)) ] || ag_fail "fail_open_new_flows $counted, expected >= $((2 * N))"
[ "$episodes" -eq 2 ] || ag_fail "fail_open_episodes $episodes, expected 2 (one per listener)"
[ "$(ag_reason_count drop_no_backend)" -eq 0 ] || ag_fail "drop_no_backend counted while failing open"
ag_info "fail_open: every health check failing, $N/$N TCP and $N/$N UDP flows served by $first; fail_open_new_flows=$counted"

# failure_policy "drop": a reload, and the same traffic is dropped (counted).
sed -i 's/protocol = "tcp";$/protocol = "tcp"; failure_policy = "drop";/; s/protocol = "udp";$/protocol = "udp"; failure_policy = "drop";/' "$AG_RUN/test.conf"
[ "$(grep -c 'failure_policy = "drop"' "$AG_RUN/test.conf")" -eq 2 ] || ag_fail "could not set failure_policy in the config"
ctl reload >/dev/null || ag_fail "reload to failure_policy drop refused"
[ "$(json_get listeners 'any(l["failing_open"] for l in j)')" = False ] ||
	ag_fail "still failing open under failure_policy drop"
if nsx client curl -s -m 1 "http://$AG_VIP/" >/dev/null; then
	ag_fail "failure_policy drop: a TCP connection was served with every endpoint down"
fi
nsx client "$AG_TESTCLI" --timeout-ms 500 --sport-base 42000 "$AG_VIP" 5000 3 >"$AG_RUN/udp-drop.out" &&
	ag_fail "failure_policy drop: UDP requests were answered"
drops=$(ag_reason_count drop_no_backend)
[ "$drops" -ge 4 ] || ag_fail "drop_no_backend counted $drops, expected >= 4"
ag_info "failure_policy drop: the same traffic dropped (drop_no_backend=$drops)"
echo PASS
