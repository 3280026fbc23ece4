# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# The DPDK fast path in the lab: the same tests, with anygate-dp forwarding
# instead of the XDP program. Sourced after lib.sh (lib.sh sources it when
# AG_FASTPATH=dpdk); it replaces ag_test_begin and ag_lab_start and wraps
# lab_down, so a test written for the lab runs unchanged on either fast path.
#
# What changes on the edge:
#   - its veths e0..e3 become anygate-dp's ports (net_af_packet, or net_af_xdp
#     with AG_DP_PMD=af_xdp); their addresses move to anygate-dp's exception
#     taps agdp0..agdp3 (same MACs), and the kernel's routes to the regions go
#     through those taps: the kernel of the edge is a host behind anygate-dp;
#   - with af_packet a tc program drops every frame at ingress of e0..e3 once
#     anygate-dp's socket has it (af_xdp takes the frames from the kernel itself);
#   - the tables: anygated (fastpath = "dpdk") publishes them into the segment,
#     probes the backends and republishes on health changes, as on a real edge;
#     AG_DP_PUBLISHER=tool uses ag-shm-publish instead (same publisher code, one
#     shot, with --down to mark backends down by hand).
# Env: AG_DP_PMD (af_packet | af_xdp), AG_DP_LCORES (EAL -l, default "0": the
# main lcore forwards), AG_DP_IDLE_US (default 50: a shared 2-core machine),
# AG_DP_STATIC_NEIGH=1 (static ARP entries for the client and the routers, so
# no ARP crosses the edge's ports: for tests that count every frame).

AG_DP=$AG_BUILD/dataplane/dpdk/anygate-dp
AG_SHM_PUBLISH=$AG_BUILD/tests/integration/ag-shm-publish
AG_TC_DROP=$AG_BUILD/tests/integration/tc_drop.bpf.o
AG_DP_PMD=${AG_DP_PMD:-af_packet}
AG_DP_LCORES=${AG_DP_LCORES:-0}
AG_DP_IDLE_US=${AG_DP_IDLE_US:-50}
AG_DP_PUBLISHER=${AG_DP_PUBLISHER:-anygated}

dp_paths() {
	AG_DP_LOG=$AG_RUN/anygate-dp.log
	AG_DP_PIDFILE=$AG_RUN/anygate-dp.pid
	AG_SHM_NAME=anygate-$AG_TAG
}

dp_require() {
	[ -x "$AG_DP" ] || ag_skip "anygate-dp is not built (libdpdk-dev missing at meson setup?)"
	ag_require_build "$AG_SHM_PUBLISH" "$AG_TC_DROP"
	[ -c /dev/net/tun ] || ag_skip "no /dev/net/tun: anygate-dp's exception taps need it"
	case $AG_DP_PMD in
	af_packet | af_xdp) ;;
	*) ag_die "AG_DP_PMD=$AG_DP_PMD: af_packet or af_xdp" ;;
	esac
}

# dp_config FILE: turn a config of ag_config_write into the DPDK edge's.
dp_config() {
	local f=$1 ports="" n dev
	for n in 0 1 2 3; do
		if [ "$AG_DP_PMD" = af_xdp ]; then
			dev="net_af_xdp$n,iface=e$n,queue_count=1"
		else
			dev="net_af_packet$n,iface=e$n,qpairs=1"
		fi
		ports+="\"$dev\", "
	done
	ports=${ports%, }
	sed -i -e 's/fastpath = "xdp";/fastpath = "dpdk";/' "$f" || return 1
	# The dpdk block goes after max_flows, inside edge = { ... }.
	awk -v ports="$ports" -v shm="$AG_SHM_NAME" -v tag="$AG_TAG" -v lcores="$AG_DP_LCORES" '
		{ print }
		/^[ \t]*max_flows = / {
			print "\tdpdk = {"
			print "\t\teal_args = [ \"--no-huge\", \"-m\", \"512\", \"-l\", \"" lcores "\","
			print "\t\t\t\"--file-prefix\", \"agdp-" tag "\", \"--log-level\", \"*:warning\" ];"
			print "\t\tports = [ " ports " ];"
			print "\t\tshm_name = \"" shm "\";"
			print "\t\tport_addresses = [ \"10.0.0.1/24\", \"10.1.0.1/24\", \"10.2.0.1/24\", \"10.3.0.1/24\" ];"
			print "\t\tport_roles = [ \"client\", \"backend\", \"backend\", \"backend\" ];"
			print "\t\troutes = ("
			print "\t\t\t{ to = \"10.1.0.0/16\"; via = \"10.1.0.2\"; },"
			print "\t\t\t{ to = \"10.2.0.0/16\"; via = \"10.2.0.2\"; },"
			print "\t\t\t{ to = \"10.3.0.0/16\"; via = \"10.3.0.2\"; }"
			print "\t\t);"
			print "\t\texception_path = \"tap\";"
			print "\t};"
		}' "$f" >"$f.new" && mv "$f.new" "$f"
}

# dp_static_neighbours FILE: static ARP entries (anygate-dp never asks) for
# the edge's neighbours: the client's c0 and each router's w0.
dp_static_neighbours() {
	local f=$1 n entries
	entries="{ address = \"10.0.0.2\"; mac = \"$(lab_mac client c0)\"; }"
	for n in 1 2 3; do
		entries+=", { address = \"10.$n.0.2\"; mac = \"$(lab_mac "r$n" w0)\"; }"
	done
	sed -i "s/^\(\t*\)exception_path = \"tap\";/&\n\1neighbours = ( $entries );/" "$f"
}

# Hand e0..e3 of the edge to DPDK: no addresses, no routes of the kernel's own
# on them; with af_packet, the kernel drops what arrives (after the socket).
dp_handover() {
	local n
	for n in 0 1 2 3; do
		ip -n "$(ns edge)" addr flush dev "e$n" || return 1
		if [ "$AG_DP_PMD" = af_packet ]; then
			nsx edge tc qdisc add dev "e$n" clsact || return 1
			nsx edge tc filter add dev "e$n" ingress bpf da obj "$AG_TC_DROP" sec tc ||
				return 1
		fi
	done
}

dp_alive() {
	[ -f "$AG_DP_PIDFILE" ] && kill -0 "$(cat "$AG_DP_PIDFILE")" 2>/dev/null
}

# dp_start CONFIG [args]: anygate-dp in the edge namespace; waits (bounded) for
# "anygate-dp ready", then routes the kernel's traffic to the regions through
# the exception taps.
dp_start() {
	local conf=$1 pid deadline n
	shift
	: >"$AG_DP_LOG"
	setsid ip netns exec "$(ns edge)" "$AG_DP" -c "$conf" --wait-shm 10 \
		--idle-sleep "$AG_DP_IDLE_US" "$@" </dev/null >>"$AG_DP_LOG" 2>&1 &
	pid=$!
	echo "$pid" >"$AG_DP_PIDFILE"
	deadline=$(($(date +%s) + 60))
	until grep -q 'anygate-dp ready' "$AG_DP_LOG"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			echo "anygate-dp exited (status $?) before ready; log:" >&2
			tail -n 30 "$AG_DP_LOG" >&2
			rm -f "$AG_DP_PIDFILE"
			return 1
		fi
		if (($(date +%s) >= deadline)); then
			echo "anygate-dp not ready after 60s; log:" >&2
			tail -n 30 "$AG_DP_LOG" >&2
			return 1
		fi
		sleep 0.1
	done
	for n in 1 2 3; do
		ip -n "$(ns edge)" route replace "10.$n.0.0/16" via "10.$n.0.2" dev "agdp$n" ||
			return 1
	done
}

# dp_stop: SIGTERM, wait up to 15 s. Sets DP_STATUS (124: had to be killed).
dp_stop() {
	local pid deadline
	DP_STATUS=0
	[ -f "$AG_DP_PIDFILE" ] || return 0
	pid=$(cat "$AG_DP_PIDFILE")
	kill -TERM "$pid" 2>/dev/null
	deadline=$(($(date +%s) + 15))
	while kill -0 "$pid" 2>/dev/null; do
		[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && break
		if (($(date +%s) >= deadline)); then
			kill -KILL "$pid" 2>/dev/null
			rm -f "$AG_DP_PIDFILE"
			DP_STATUS=124
			return 124
		fi
		sleep 0.1
	done
	wait "$pid" 2>/dev/null
	DP_STATUS=$?
	[ $DP_STATUS -eq 127 ] && DP_STATUS=0
	rm -f "$AG_DP_PIDFILE"
	return $DP_STATUS
}

# dp_publish CONFIG [--down ADDR]...: (re)publish the tables into the segment.
dp_publish() {
	local conf=$1
	shift
	if [ "$AG_DP_PUBLISHER" = anygated ]; then
		agd_alive || agd_start "$conf" || return 1
		return 0
	fi
	nsx edge "$AG_SHM_PUBLISH" "$conf" "$@" >>"$AG_RUN/publish.log" 2>&1 || {
		cat "$AG_RUN/publish.log" >&2
		return 1
	}
}

# The lab's lab_down, with anygate-dp stopped and the segment removed first.
if ! declare -F lab_down_xdp >/dev/null; then
	eval "lab_down_xdp() $(declare -f lab_down | tail -n +2)"
fi
lab_down() {
	[ -n "${AG_TAG:-}" ] || return 0
	dp_paths
	if [ -f "$AG_DP_PIDFILE" ]; then
		# Teardown goes on either way: what does not stop is killed below.
		dp_stop || ag_log "anygate-dp did not exit cleanly (status $DP_STATUS)"
		if [ -n "${AG_SAVE_DIR:-}" ] && [ -s "$AG_DP_LOG" ]; then
			cp "$AG_DP_LOG" "$AG_SAVE_DIR/$(basename "$0" .sh).anygate-dp.log" 2>/dev/null
		fi
	fi
	rm -f "/dev/shm/anygate.d/$AG_SHM_NAME"
	lab_down_xdp
}

ag_test_begin() {
	ag_require_root
	ag_set_tag "${AG_TAG:-t$$}"
	dp_paths
	lab_trap
	lab_down
	dp_require
	# The lab's WAN bridges use native XDP on their own veths.
	ag_require_native_xdp
	AG_BULK_MB=${AG_BULK_MB:-1}
}

# ag_lab_start [GROUP...]: the lab, its config for a DPDK edge, the tables, anygate-dp.
ag_lab_start() {
	lab_up || ag_fail "could not build the lab"
	ag_config_write "$AG_RUN/test.conf" "$@"
	dp_config "$AG_RUN/test.conf" || ag_fail "could not write the DPDK config"
	if [ "${AG_DP_STATIC_NEIGH:-0}" = 1 ]; then
		dp_static_neighbours "$AG_RUN/test.conf" || ag_fail "could not add static neighbours"
	fi
	dp_handover || ag_fail "could not hand the edge's veths to DPDK"
	dp_publish "$AG_RUN/test.conf" || ag_fail "could not publish the tables"
	dp_start "$AG_RUN/test.conf" || ag_fail "anygate-dp did not come up"
}
