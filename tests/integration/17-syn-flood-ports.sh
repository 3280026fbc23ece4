#!/usr/bin/env bash
# A spoofed SYN flood larger than every NAT port of a region must not lock out
# legitimate clients. The VIP is served by eu-west alone (no other region to
# escape to); with the default flow table (max_flows 1,048,576) and one NAT
# address, its two backends have 2 x 64,512 NAT ports for TCP 80. ag-flood
# sends AG_FLOOD_SYNS (default 320,000) spoofed random-source SYNs to VIP:80 at
# its highest rate. Right after it, 10 legitimate connections, made at once,
# must all be served within the connect timeout of 3 s (one SYN
# retransmission, as a client whose first SYN meets the SYN authentication
# waits one RTO).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
SYNS=${AG_FLOOD_SYNS:-320000}
ag_require_build "$AG_FLOOD" "$AG_NEWCONN"
lab_up || ag_fail "could not build the lab"
ag_config_write "$AG_RUN/test.conf" "eu-west:r1b1=1,r1b2=1"
# The default table: big enough that the flood is limited by NAT ports, not by flows.
sed -i 's/max_flows = 65536;/max_flows = 1048576;/' "$AG_RUN/test.conf"
grep -q 'max_flows = 1048576;' "$AG_RUN/test.conf" || ag_fail "could not set max_flows in the config"
agd_start "$AG_RUN/test.conf" || ag_fail "anygated did not come up"

before=$(nsx client "$AG_NEWCONN" "$AG_VIP" 80 10 --concurrency 10 --connect-timeout-ms 3000)
[ "$(ag_kv <(echo "$before") ok)" = 10 ] || ag_fail "the lab does not serve 10 connections before the flood: $before"

ag_flood syn 80 120 --count "$SYNS" >"$AG_RUN/flood.out" 2>&1 ||
	ag_fail "ag-flood failed: $(tr '\n' ' ' <"$AG_RUN/flood.out")"
cat "$AG_RUN/flood.out"
sent=$(ag_kv "$AG_RUN/flood.out" packets)
[ "$sent" -ge "$SYNS" ] || ag_fail "ag-flood sent only $sent of $SYNS SYNs"

# At once: the 10 connections start together, right after the flood.
nsx client "$AG_NEWCONN" "$AG_VIP" 80 10 --concurrency 10 --connect-timeout-ms 3000 \
	--timeout-ms 3000 --list >"$AG_RUN/after.out" 2>&1
sed 's/^/  /' "$AG_RUN/after.out"
reasons=$(ag_reasons_nonzero)
ag_log "reasons: $reasons"
ag_info "flood: $sent spoofed SYNs to VIP:80 at $(ag_kv "$AG_RUN/flood.out" pps) pps ($(ag_kv "$AG_RUN/flood.out" engine) engine); drop_nat_ports_exhausted $(ag_reason_count drop_nat_ports_exhausted)"
downs=$(ag_backends_down_logged | wc -l)
ag_info "after the flood: $(ag_kv "$AG_RUN/after.out" ok) of 10 new connections served, connect ms median $(ag_kv "$AG_RUN/after.out" connect_ms_median) max $(ag_kv "$AG_RUN/after.out" connect_ms_max); backends marked down: $downs times"
[ "$(ag_kv "$AG_RUN/after.out" ok)" = 10 ] ||
	ag_fail "only $(ag_kv "$AG_RUN/after.out" ok) of 10 legitimate connections were served after a flood of $sent spoofed SYNs (backends marked down $downs times; $reasons)"
echo PASS
