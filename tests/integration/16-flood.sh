#!/usr/bin/env bash
# A new-flow flood must not break established flows. 20 long-lived TCP
# connections through the VIP echo every 9 s while ag-flood, from the client's
# namespace, sends 30 s of spoofed random-source SYNs to VIP:80, then 30 s of
# random new UDP flows to VIP:5000, each at the highest rate it reaches.
# During each flood 50 legitimate new connections to VIP:80 are made, spread
# over it (connect timeout 3 s: one SYN retransmission, as a client whose
# first SYN meets the SYN authentication waits one RTO).
# Required: the flood reached AG_FLOOD_MIN_PPS (default 150000) packets/s;
# all 20 connections survive (no stall, no reset); no backend marked down;
# at least AG_FLOOD_MIN_SHARE percent (default 95) of the 100 new connections
# succeed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
SECS=${AG_FLOOD_SECONDS:-30}
MIN_PPS=${AG_FLOOD_MIN_PPS:-150000}
MIN_SHARE=${AG_FLOOD_MIN_SHARE:-95}
NEW=50 # legitimate new connections per flood
ag_require_build "$AG_FLOOD" "$AG_NEWCONN" "$AG_LONGCONN"
# shellcheck disable=SC2119 # no group given on purpose: the default lab config
ag_lab_start

# Long-lived connections: echo every 9 s through both floods; an echo missing
# for 5 s is a stall. The floods start once each has echoed (9 s in).
nsx client "$AG_LONGCONN" "$AG_VIP" 8002 20 --duration-ms $(((2 * SECS + 17) * 1000)) \
	--interval-ms 9000 --stall-ms 5000 >"$AG_RUN/long.out" 2>"$AG_RUN/long.err" &
long_pid=$!
wait_for 10 "20 long-lived connections established" ag_established 20 8002 ||
	ag_fail "the 20 long-lived connections did not all connect"
# The backend's name line (5 bytes) and one 16-byte echo.
echoed_once() {
	nsx client ss -Htin state established dst "$AG_VIP" dport = :8002 |
		grep -o 'bytes_received:[0-9]*' | awk -F: '$2 >= 21 { n++ } END { exit n < 20 }'
}
wait_for 15 "a first echo on each long-lived connection" echoed_once ||
	ag_fail "the long-lived connections did not echo before the flood"

# flood MODE PORT: ag-flood for SECS seconds, and NEW legitimate connections
# spread over all but its last 4 s (each then ends, at most 3 s later, inside it).
flood() {
	local mode=$1 port=$2 nc_pid
	nsx client "$AG_NEWCONN" "$AG_VIP" 80 $NEW --spread-ms $(((SECS - 4) * 1000)) \
		--connect-timeout-ms 3000 --timeout-ms 3000 --list >"$AG_RUN/new-$mode.out" 2>&1 &
	nc_pid=$!
	ag_flood "$mode" "$port" "$SECS" >"$AG_RUN/flood-$mode.out" 2>&1 ||
		ag_fail "ag-flood $mode failed: $(tr '\n' ' ' <"$AG_RUN/flood-$mode.out")"
	wait "$nc_pid"
	cat "$AG_RUN/flood-$mode.out"
	tail -n 2 "$AG_RUN/new-$mode.out" | head -n 1
	ag_log "reasons after the $mode flood: $(ag_reasons_nonzero)"
}
flood syn 80
flood udp 5000
wait "$long_pid"

# Every figure is reported before the first requirement can fail the test.
syn_pps=$(ag_kv "$AG_RUN/flood-syn.out" pps)
udp_pps=$(ag_kv "$AG_RUN/flood-udp.out" pps)
ok=$(($(ag_kv "$AG_RUN/new-syn.out" ok) + $(ag_kv "$AG_RUN/new-udp.out" ok)))
ag_info "flood: syn ${syn_pps} pps, udp ${udp_pps} pps for ${SECS} s each ($(ag_kv "$AG_RUN/flood-syn.out" engine) engine)"
ag_info "new connections during the floods: $ok of $((2 * NEW)) succeeded (syn flood: $(ag_kv "$AG_RUN/new-syn.out" ok)/$NEW, connect ms median $(ag_kv "$AG_RUN/new-syn.out" connect_ms_median) max $(ag_kv "$AG_RUN/new-syn.out" connect_ms_max); udp flood: $(ag_kv "$AG_RUN/new-udp.out" ok)/$NEW, median $(ag_kv "$AG_RUN/new-udp.out" connect_ms_median) max $(ag_kv "$AG_RUN/new-udp.out" connect_ms_max))"
sed 's/^/  /' "$AG_RUN/long.out"
broken=$(awk '$3 != "ok"' "$AG_RUN/long.out")
ag_info "long-lived: $(awk '$3 == "ok"' "$AG_RUN/long.out" | wc -l) of 20 kept echoing"
downs=$(ag_backends_down_logged)
ag_info "backends marked down during the floods: $(echo -n "$downs" | grep -c .) times"

[ -z "$broken" ] || ag_fail "long-lived connections broke during the flood: $(echo "$broken" | tr '\n' ';')"
[ -z "$downs" ] || ag_fail "backends were marked down during the flood: $(echo "$downs" | tr '\n' ';')"
[ $((ok * 100)) -ge $((MIN_SHARE * 2 * NEW)) ] ||
	ag_fail "only $ok of $((2 * NEW)) new connections succeeded during the floods (need ${MIN_SHARE}%, AG_FLOOD_MIN_SHARE)"
# Last: a flood too weak to prove anything fails the test too.
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
[ "${syn_pps%.*}" -ge "$MIN_PPS" ] && [ "${udp_pps%.*}" -ge "$MIN_PPS" ] ||
	ag_fail "the flood generator reached only syn ${syn_pps} / udp ${udp_pps} pps here, below the ${MIN_PPS} pps this test needs (AG_FLOOD_MIN_PPS)"
echo PASS
