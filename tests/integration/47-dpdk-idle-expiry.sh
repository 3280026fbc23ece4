#!/usr/bin/env bash
# anygate-dp forgets idle flows: with udp_idle_s = 2, 100 UDP flows fill the
# flow and NAT reverse tables, and once they are idle the sweep empties both
# (the heartbeat in the segment reports the counts); the same flows then start
# afresh (new flows counted again) and still get answers.
set -uo pipefail
export AG_FASTPATH=dpdk
. "$(dirname "$0")/lib.sh"
ag_test_begin
lab_up || ag_fail "could not build the lab"
conf=$AG_RUN/test.conf
ag_config_write "$conf" "eu-west:r1b1=1,r1b2=1"
sed -i 's/^\tmax_flows = 65536;/\tmax_flows = 65536;\n\tudp_idle_s = 2;/' "$conf"
grep -q 'udp_idle_s = 2;' "$conf" || ag_fail "could not set udp_idle_s"
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
dp_config "$conf" && dp_handover && dp_publish "$conf" && dp_start "$conf" ||
	ag_fail "anygate-dp did not come up"
N=100

stat() {
	"$AG_SHM_PUBLISH" "$conf" --stats 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'
}
stat_ge() { [ "$(stat "$1")" -ge "$2" ] 2>/dev/null; } # NAME MIN, polled by wait_for
stat_is() { [ "$(stat "$1")" = "$2" ]; }
udp_new_flows() {
	"$AG_SHM_PUBLISH" "$conf" --stats 2>/dev/null |
		sed -n 's/^listener1 .*new_flows=\([0-9]*\).*/\1/p'
}

nsx client "$AG_TESTCLI" --sport-base 40000 --timeout-ms 3000 "$AG_VIP" 5000 $N \
	>"$AG_RUN/udp1.out" 2>&1 || ag_fail "UDP round 1: $(tail -n 3 "$AG_RUN/udp1.out")"
wait_for 5 "flows reported in the segment" stat_ge flows $N ||
	ag_fail "the segment reports $(stat flows) flows after $N UDP flows"
[ "$(stat nat_rev)" -ge $N ] || ag_fail "$(stat nat_rev) NAT reverse entries for $N flows"

# Idle for 2 s, then found by a sweep pass (one a second): bounded wait.
wait_for 20 "the idle flows to be swept" stat_is flows 0 ||
	ag_fail "$(stat flows) flows left long after the UDP idle timeout: $("$AG_SHM_PUBLISH" "$conf" --stats 2>&1 | tr "\n" " ")"
wait_for 5 "the idle NAT reverse entries to be swept" stat_is nat_rev 0 ||
	ag_fail "$(stat nat_rev) NAT reverse entries left"
expired=$(stat dp_flows_expired)
[ "${expired:-0}" -ge $N ] || ag_fail "flows_expired counted ${expired:-0}, expected >= $N"

before=$(udp_new_flows)
nsx client "$AG_TESTCLI" --sport-base 40000 --timeout-ms 3000 "$AG_VIP" 5000 $N \
	>"$AG_RUN/udp2.out" 2>&1 || ag_fail "UDP round 2: $(tail -n 3 "$AG_RUN/udp2.out")"
again=$(($(udp_new_flows) - before))
[ "$again" -eq $N ] || ag_fail "the same $N flows after expiry made $again new flows"
ag_info "expiry: $N UDP flows swept after the 2 s idle timeout (flows_expired $expired), $again new again"
echo "PASS: idle flows expire from both tables and start afresh"
