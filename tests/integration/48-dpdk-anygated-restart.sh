#!/usr/bin/env bash
# anygated restarts beside a running anygate-dp: long-lived TCP connections keep
# echoing and new UDP flows keep being served while no anygated runs (anygate-dp
# forwards on the last tables in the segment); the new anygated re-opens the
# same segment and publishes, and anygate-dp never restarts.
set -uo pipefail
export AG_FASTPATH=dpdk
. "$(dirname "$0")/lib.sh"
[ "${AG_DP_PUBLISHER:-anygated}" = anygated ] || ag_skip "needs anygated as the publisher (AG_DP_PUBLISHER=anygated)"
ag_test_begin
ag_lab_start "eu-west:r1b1=1,r1b2=1" "us-east:r2b1=1,r2b2=1"
dp_pid=$(cat "$AG_DP_PIDFILE")

nsx client "$AG_LONGCONN" "$AG_VIP" 8002 8 --duration-ms 10000 --interval-ms 100 \
	--stall-ms 3000 >"$AG_RUN/long.out" 2>"$AG_RUN/long.err" &
long_pid=$!
wait_for 10 "long-lived connections up" test -s "$AG_RUN/long.err" || ag_fail "ag-longconn did not start"

agd_stop || ag_fail "anygated did not stop cleanly (status $AGD_STATUS)"
ag_info "anygated stopped; anygate-dp (pid $dp_pid) keeps forwarding"
# With no anygated: new flows are still served from the segment's tables.
out=$AG_RUN/udp-without.out
nsx client "$AG_TESTCLI" --sport-base 30000 --timeout-ms 2000 "$AG_VIP" 5000 50 >"$out" 2>/dev/null ||
	ag_fail "new UDP flows failed while anygated was down: $(sort "$out" | uniq -c | tr '\n' ' ')"
ag_info "without anygated: 50 of 50 new UDP flows served ($(sort "$out" | uniq -c | tr '\n' ' '))"

agd_start "$AG_RUN/test.conf" || ag_fail "anygated did not come back on the existing segment"
grep -E 'tables published into|published [0-9]+ listeners' "$AG_AGD_LOG" | sed 's/^/  /'
kill -0 "$dp_pid" 2>/dev/null || ag_fail "anygate-dp is gone"
[ "$(cat "$AG_DP_PIDFILE")" = "$dp_pid" ] || ag_fail "anygate-dp was restarted"
out=$AG_RUN/udp-after.out
nsx client "$AG_TESTCLI" --sport-base 31000 --timeout-ms 2000 "$AG_VIP" 5000 50 >"$out" 2>/dev/null ||
	ag_fail "new UDP flows failed after the restart"

wait "$long_pid"
sed 's/^/  /' "$AG_RUN/long.out"
bad=$(awk '$3 != "ok"' "$AG_RUN/long.out")
[ -z "$bad" ] || ag_fail "long-lived connections broke across the restart: $bad"
ag_info "restart: 8 long-lived connections kept echoing, anygate-dp pid $dp_pid throughout, new flows served before, during and after"
echo PASS
