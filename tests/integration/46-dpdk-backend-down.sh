#!/usr/bin/env bash
# A backend goes down while anygate-dp forwards (the tables republished into
# the segment by a new publisher process, as after an anygated restart):
# established UDP flows on it move to the live backend (counted as
# udp_resteer, one per moved flow), TCP connections on it get a RST from the
# VIP (tcp_rst_backend_down), and connections on the live backend go on.
set -uo pipefail
export AG_FASTPATH=dpdk
# Publishes with ag-shm-publish: the test controls the segment by hand.
export AG_DP_PUBLISHER=tool
. "$(dirname "$0")/lib.sh"
ag_test_begin
ag_lab_start "eu-west:r1b1=1,r1b2=1"
conf=$AG_RUN/test.conf
N=60
C=20

stat() { # NAME: a counter from the segment (0 when absent)
	"$AG_SHM_PUBLISH" "$conf" --stats 2>/dev/null | awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}
ret_packets() { # of listener 0 (TCP)
	"$AG_SHM_PUBLISH" "$conf" --stats 2>/dev/null |
		sed -n 's/^listener0 .*ret_packets=\([0-9]*\).*/\1/p'
}

# UDP flows with fixed source ports: the second round is the same flows.
nsx client "$AG_TESTCLI" --sport-base 30000 --timeout-ms 3000 "$AG_VIP" 5000 $N \
	>"$AG_RUN/udp1.out" 2>&1 || ag_fail "UDP round 1: $(tail -n 3 "$AG_RUN/udp1.out")"
on_b1=$(grep -cx r1b1 "$AG_RUN/udp1.out")
on_b2=$(grep -cx r1b2 "$AG_RUN/udp1.out")
[ $((on_b1 + on_b2)) -eq $N ] || ag_fail "UDP round 1 went elsewhere: $(sort "$AG_RUN/udp1.out" | uniq -c)"
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
[ "$on_b1" -ge 1 ] && [ "$on_b2" -ge 1 ] || ag_fail "UDP round 1: r1b1=$on_b1 r1b2=$on_b2, want both"

# Long-lived TCP connections (echo every 100 ms) across the change.
before=$(ret_packets)
nsx client "$AG_BUILD/tests/integration/ag-longconn" "$AG_VIP" 8002 $C --duration-ms 8000 \
	--interval-ms 100 --stall-ms 3000 >"$AG_RUN/long.out" 2>"$AG_RUN/long.err" &
long=$!
# Bounded wait: every connection has its SYN-ACK and the backend's name back
# (two packets from the backend each) before the backend goes down.
for _ in $(seq 1 100); do
	[ $(($(ret_packets) - before)) -ge $((2 * C)) ] && break
	sleep 0.1
done
[ $(($(ret_packets) - before)) -ge $((2 * C)) ] ||
	ag_fail "the TCP connections did not all get their first replies"

dp_publish "$conf" --down "$(backend_addr r1b1)" || ag_fail "republish with r1b1 down failed"

nsx client "$AG_TESTCLI" --sport-base 30000 --timeout-ms 3000 "$AG_VIP" 5000 $N \
	>"$AG_RUN/udp2.out" 2>&1 || ag_fail "UDP round 2: $(tail -n 3 "$AG_RUN/udp2.out")"
moved_to=$(grep -cx r1b2 "$AG_RUN/udp2.out")
[ "$moved_to" -eq $N ] || ag_fail "UDP round 2: $(sort "$AG_RUN/udp2.out" | uniq -c | tr '\n' ' '), want all r1b2"
resteer=$(stat reason_udp_resteer)
[ "$resteer" -eq "$on_b1" ] || ag_fail "udp_resteer counted $resteer, $on_b1 flows were on r1b1"

wait "$long"
reset=$(awk '$2 == "r1b1" && $3 == "reset"' "$AG_RUN/long.out" | wc -l)
b1=$(awk '$2 == "r1b1"' "$AG_RUN/long.out" | wc -l)
ok=$(awk '$2 == "r1b2" && $3 == "ok"' "$AG_RUN/long.out" | wc -l)
b2=$(awk '$2 == "r1b2"' "$AG_RUN/long.out" | wc -l)
rst=$(stat reason_tcp_rst_backend_down)
ag_info "udp: $on_b1 of $N flows moved r1b1 -> r1b2 (udp_resteer $resteer); tcp: r1b1 $reset/$b1 reset, r1b2 $ok/$b2 ok, tcp_rst_backend_down $rst"
[ $((b1 + b2)) -eq $C ] || ag_fail "TCP connections: $(cat "$AG_RUN/long.out")"
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
[ "$b1" -ge 1 ] && [ "$reset" -eq "$b1" ] || ag_fail "r1b1's connections: $reset of $b1 reset"
[ "$ok" -eq "$b2" ] || ag_fail "r1b2's connections: only $ok of $b2 ran through"
[ "$rst" -ge "$b1" ] || ag_fail "tcp_rst_backend_down counted $rst for $b1 connections"
echo "PASS: DOWN backend: UDP re-steered, TCP reset, live backend untouched"
