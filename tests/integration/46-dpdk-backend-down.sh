#!/usr/bin/env bash
# A backend goes down while anygate-dp forwards (the tables republished into
# the segment by a new publisher process, as after an anygated restart).
# Overloaded first: marked down while it still answers, its flows go on
# (counted flow_kept_backend_replying), nothing is moved or reset. Then dead:
# off the network, no replies; once its flows' last replies are older than
# backend_alive, established UDP flows on it move to the live backend
# (udp_resteer, one per moved flow) and TCP connections on it get a RST from
# the VIP (tcp_rst_backend_down). Connections on the live backend go on.
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
udp_round() { # OUT [TIMEOUT_MS]: the same N UDP flows (fixed source ports), one request each
	nsx client "$AG_TESTCLI" --sport-base 30000 --timeout-ms "${2:-3000}" "$AG_VIP" 5000 $N \
		>"$AG_RUN/$1" 2>&1
}
all_on_r1b2() { # the dead backend's flows moved: every flow answered, all by r1b2
	udp_round udp3.out 500 && [ "$(grep -cx r1b2 "$AG_RUN/udp3.out")" -eq $N ]
}

udp_round udp1.out || ag_fail "UDP round 1: $(tail -n 3 "$AG_RUN/udp1.out")"
on_b1=$(grep -cx r1b1 "$AG_RUN/udp1.out")
on_b2=$(grep -cx r1b2 "$AG_RUN/udp1.out")
[ $((on_b1 + on_b2)) -eq $N ] || ag_fail "UDP round 1 went elsewhere: $(sort "$AG_RUN/udp1.out" | uniq -c)"
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
[ "$on_b1" -ge 1 ] && [ "$on_b2" -ge 1 ] || ag_fail "UDP round 1: r1b1=$on_b1 r1b2=$on_b2, want both"

# Long-lived TCP connections (echo every 100 ms) across both changes. The
# stall limit leaves room for a RST that waits for a retransmission.
before=$(ret_packets)
nsx client "$AG_BUILD/tests/integration/ag-longconn" "$AG_VIP" 8002 $C --duration-ms 30000 \
	--interval-ms 100 --stall-ms 28000 >"$AG_RUN/long.out" 2>"$AG_RUN/long.err" &
long=$!
# Bounded wait: every connection has its SYN-ACK and the backend's name back
# (two packets from the backend each) before the backend goes down.
for _ in $(seq 1 100); do
	[ $(($(ret_packets) - before)) -ge $((2 * C)) ] && break
	sleep 0.1
done
[ $(($(ret_packets) - before)) -ge $((2 * C)) ] ||
	ag_fail "the TCP connections did not all get their first replies"

# Overloaded: the UDP flows have just had replies, r1b1 is marked down but answers.
udp_round udp1b.out || ag_fail "UDP round 1b: $(tail -n 3 "$AG_RUN/udp1b.out")"
dp_publish "$conf" --down "$(backend_addr r1b1)" || ag_fail "republish with r1b1 down failed"
udp_round udp2.out || ag_fail "UDP round 2: $(tail -n 3 "$AG_RUN/udp2.out")"
kept_b1=$(grep -cx r1b1 "$AG_RUN/udp2.out")
[ "$kept_b1" -eq "$on_b1" ] ||
	ag_fail "UDP round 2 (r1b1 down, still answering): $(sort "$AG_RUN/udp2.out" | uniq -c | tr '\n' ' '), want r1b1's $on_b1 flows kept"
kept=$(stat reason_flow_kept_backend_replying)
[ "$kept" -ge "$on_b1" ] || ag_fail "flow_kept_backend_replying counted $kept, $on_b1 UDP flows were kept"
[ "$(stat reason_udp_resteer)" -eq 0 ] || ag_fail "a flow moved off a backend that still answers"
[ "$(stat reason_tcp_rst_backend_down)" -eq 0 ] || ag_fail "a connection reset on a backend that still answers"

# Dead: r1b1 leaves the network (no FIN, no RST from it, no replies at all).
nsx r1b1 ip link set eth0 down || ag_fail "could not take r1b1 off the network"
wait_for 30 "r1b1's UDP flows to move to r1b2" all_on_r1b2 ||
	ag_fail "UDP round 3: $(sort "$AG_RUN/udp3.out" | uniq -c | tr '\n' ' '), want all r1b2"
resteer=$(stat reason_udp_resteer)
[ "$resteer" -eq "$on_b1" ] || ag_fail "udp_resteer counted $resteer, $on_b1 flows were on r1b1"

wait "$long"
reset=$(awk '$2 == "r1b1" && $3 == "reset"' "$AG_RUN/long.out" | wc -l)
b1=$(awk '$2 == "r1b1"' "$AG_RUN/long.out" | wc -l)
ok=$(awk '$2 == "r1b2" && $3 == "ok"' "$AG_RUN/long.out" | wc -l)
b2=$(awk '$2 == "r1b2"' "$AG_RUN/long.out" | wc -l)
rst=$(stat reason_tcp_rst_backend_down)
ag_info "overloaded: $kept_b1 of $on_b1 UDP flows kept on r1b1 (flow_kept_backend_replying $kept); dead: $on_b1 moved to r1b2 (udp_resteer $resteer); tcp: r1b1 $reset/$b1 reset, r1b2 $ok/$b2 ok, tcp_rst_backend_down $rst"
[ $((b1 + b2)) -eq $C ] || ag_fail "TCP connections: $(cat "$AG_RUN/long.out")"
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
[ "$b1" -ge 1 ] && [ "$reset" -eq "$b1" ] || ag_fail "r1b1's connections: $reset of $b1 reset"
[ "$ok" -eq "$b2" ] || ag_fail "r1b2's connections: only $ok of $b2 ran through"
[ "$rst" -ge "$b1" ] || ag_fail "tcp_rst_backend_down counted $rst for $b1 connections"
echo "PASS: DOWN backend: kept while it answers; once dead UDP re-steered, TCP reset"
