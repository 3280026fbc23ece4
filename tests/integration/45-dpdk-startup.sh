#!/usr/bin/env bash
# anygate-dp at start and stop: every start-up problem is refused with a
# message that names it and exit status 1, never a crash (no segment yet, a
# segment of another ABI, a port that does not exist, an XDP config, no free
# hugepages when that can be arranged); a clean start answers on the VIP, and
# SIGTERM ends it with status 0, its taps gone and the segment saying no fast
# path is attached.
set -uo pipefail
export AG_FASTPATH=dpdk
# Publishes with ag-shm-publish: the test controls the segment by hand.
export AG_DP_PUBLISHER=tool
. "$(dirname "$0")/lib.sh"
ag_test_begin
lab_up || ag_fail "could not build the lab"
conf=$AG_RUN/test.conf
ag_config_write "$conf"
dp_config "$conf" || ag_fail "could not write the DPDK config"
dp_handover || ag_fail "could not hand the edge's veths to DPDK"

# run_dp NAME CONFIG [args]: anygate-dp in the edge, in the foreground (bounded);
# sets RC and leaves its output in $AG_RUN/NAME.log.
run_dp() {
	local name=$1 c=$2
	shift 2
	timeout -k 5 60 ip netns exec "$(ns edge)" "$AG_DP" -c "$c" "$@" \
		</dev/null >"$AG_RUN/$name.log" 2>&1
	RC=$?
}

# expect_refused NAME PATTERN: status 1 (not a signal, not a hang) and the message.
expect_refused() {
	[ "$RC" -eq 1 ] || {
		cat "$AG_RUN/$1.log"
		ag_fail "$1: exit status $RC, expected 1"
	}
	grep -q -- "$2" "$AG_RUN/$1.log" || {
		cat "$AG_RUN/$1.log"
		ag_fail "$1: no message matching '$2'"
	}
	ag_info "$1: refused: $(grep -m1 -- "$2" "$AG_RUN/$1.log" | cut -c1-160)"
}

# 1. No segment: anygated has not published yet.
run_dp no-segment "$conf"
expect_refused no-segment "does not exist: start anygated"

# 2. A segment of another ABI version (as a newer anygated would leave it).
dp_publish "$conf" || ag_fail "publish failed"
seg=/dev/shm/anygate.d/$AG_SHM_NAME
cp "$seg" "$AG_RUN/segment.good"
# ident.abi_version is the third 32-bit word of the header.
printf '\x63\x00\x00\x00' | dd of="$seg" bs=1 seek=8 conv=notrunc status=none
run_dp abi-mismatch "$conf"
expect_refused abi-mismatch "this build speaks layout"
cp "$AG_RUN/segment.good" "$seg"

# 3. A port whose interface does not exist.
sed 's/iface=e3,/iface=nosuch9,/' "$conf" >"$AG_RUN/noport.conf"
run_dp no-port "$AG_RUN/noport.conf"
expect_refused no-port "EAL initialisation failed\|no such DPDK port"

# 4. An XDP edge's config.
sed 's/fastpath = "dpdk";/fastpath = "xdp";/' "$conf" >"$AG_RUN/xdp.conf"
run_dp xdp-config "$AG_RUN/xdp.conf"
expect_refused xdp-config 'anygate-dp serves edges with fastpath = "dpdk"'

# 5. Hugepages wanted (no --no-huge) when none are free: only where none are.
free_hp=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
if [ "${free_hp:-1}" -eq 0 ]; then
	sed 's/"--no-huge", //' "$conf" >"$AG_RUN/huge.conf"
	run_dp no-hugepages "$AG_RUN/huge.conf"
	expect_refused no-hugepages "no free hugepages"
else
	ag_info "no-hugepages: not checked ($free_hp hugepages free on this machine)"
fi

# 6. A clean start, traffic, SIGTERM.
dp_start "$conf" || ag_fail "anygate-dp did not come up"
r=$(nsx client curl -s --connect-timeout 5 --max-time 10 "http://$AG_VIP/") ||
	ag_fail "no answer on the VIP"
valid_backend "$r" || ag_fail "VIP answered '$r'"
"$AG_SHM_PUBLISH" "$conf" --stats >"$AG_RUN/stats-up.txt" 2>&1
grep -qx 'fastpath_alive 1' "$AG_RUN/stats-up.txt" || {
	cat "$AG_RUN/stats-up.txt"
	ag_fail "the segment does not show anygate-dp alive"
}
grep -q '^listener0 packets=[1-9]' "$AG_RUN/stats-up.txt" ||
	ag_fail "listener 0 counted no packet: $(cat "$AG_RUN/stats-up.txt")"
dp_stop
[ "$DP_STATUS" -eq 0 ] || ag_fail "anygate-dp exited with status $DP_STATUS on SIGTERM"
grep -q 'shutting down' "$AG_DP_LOG" || ag_fail "no shutdown message in the log"
ip -n "$(ns edge)" link show agdp0 >/dev/null 2>&1 && ag_fail "tap agdp0 still exists after exit"
"$AG_SHM_PUBLISH" "$conf" --stats >"$AG_RUN/stats-down.txt" 2>&1
grep -qx 'fastpath_alive 0' "$AG_RUN/stats-down.txt" ||
	ag_fail "the segment still shows a fast path after exit"
echo "PASS: start-up errors refused with their reason; clean start and SIGTERM exit 0"
