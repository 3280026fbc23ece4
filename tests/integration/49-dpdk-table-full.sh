#!/usr/bin/env bash
# anygate-dp with a full flow table. max_flows = 1024 and no SYN
# authentication (syn_auth_rate = 0), so every spoofed SYN of a flood becomes
# a half-open flow until the table is full. Required: 10 established
# connections (echo every 500 ms) go on through the flood untouched; new flows
# past the room are refused and counted (drop_flow_table_full), never by
# evicting a live established flow; the sweep, under pressure, evicts
# half-open flows quiet for a second (dp_flows_evicted), so that right after
# the flood legitimate connections are served within the 3 s connect timeout,
# before the flood's flows would have expired (tcp_syn_idle_s, 5 s).
set -uo pipefail
export AG_FASTPATH=dpdk
# Publishes with ag-shm-publish: the segment's counters are read with it.
export AG_DP_PUBLISHER=tool
. "$(dirname "$0")/lib.sh"
ag_test_begin
ag_require_build "$AG_FLOOD" "$AG_NEWCONN" "$AG_LONGCONN"
lab_up || ag_fail "could not build the lab"
conf=$AG_RUN/test.conf
ag_config_write "$conf" "eu-west:r1b1=1,r1b2=1"
sed -i 's/^\tmax_flows = 65536;/\tmax_flows = 1024;\n\tsyn_auth_rate = 0;/' "$conf"
grep -q 'syn_auth_rate = 0;' "$conf" || ag_fail "could not set max_flows and syn_auth_rate"
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
dp_config "$conf" && dp_handover && dp_publish "$conf" && dp_start "$conf" ||
	ag_fail "anygate-dp did not come up"

stat() { # NAME: a counter from the segment (0 when absent)
	"$AG_SHM_PUBLISH" "$conf" --stats 2>/dev/null | awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}

nsx client "$AG_LONGCONN" "$AG_VIP" 8002 10 --duration-ms 12000 --interval-ms 500 \
	--stall-ms 3000 >"$AG_RUN/long.out" 2>"$AG_RUN/long.err" &
long=$!
wait_for 10 "10 long-lived connections established" ag_established 10 8002 ||
	ag_fail "the long-lived connections did not all connect"

ag_flood syn 80 6 --rate 20000 >"$AG_RUN/flood.out" 2>&1 ||
	ag_fail "ag-flood failed: $(tr '\n' ' ' <"$AG_RUN/flood.out")"
nsx client "$AG_NEWCONN" "$AG_VIP" 80 10 --connect-timeout-ms 3000 --timeout-ms 3000 \
	>"$AG_RUN/new.out" 2>&1
wait "$long"

full=$(stat reason_drop_flow_table_full)
evicted=$(stat dp_flows_evicted)
ok=$(ag_kv "$AG_RUN/new.out" ok)
sed 's/^/  /' "$AG_RUN/long.out"
ag_info "flood: $(ag_kv "$AG_RUN/flood.out" packets) SYNs at $(ag_kv "$AG_RUN/flood.out" pps) pps into 1024 flows: drop_flow_table_full $full, dp_flows_evicted $evicted; after it ${ok:-0} of 10 new connections served"
[ "$(awk '$3 != "ok"' "$AG_RUN/long.out" | wc -l)" -eq 0 ] ||
	ag_fail "established connections broke in a full table: $(awk '$3 != "ok"' "$AG_RUN/long.out" | tr '\n' ';')"
[ "$full" -ge 1 ] || ag_fail "the table never refused a flow: the flood did not fill it"
[ "$evicted" -ge 1 ] || ag_fail "no half-open flow was evicted under pressure"
[ "${ok:-0}" -eq 10 ] || ag_fail "only ${ok:-0} of 10 new connections after the flood: $(tail -n 2 "$AG_RUN/new.out" | tr '\n' ' ')"
echo "PASS: full table: established flows untouched, refusals counted, half-open flows evicted"
