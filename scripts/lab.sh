#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The multi-region anygate lab in network namespaces (plan: tests/integration/lib.sh).
#
#   scripts/lab.sh up     [--tag T] [--backends N] [--rtt A,B,C] [--fastpath xdp|dpdk]
#                         build if needed, create the lab, start anygated (and anygate-dp)
#   scripts/lab.sh down   [--tag T]   stop everything, remove namespaces and mounts
#   scripts/lab.sh status [--tag T]   namespaces, anygated, fast path state, WAN bridges
#   scripts/lab.sh demo   [--tag T] [--backends N] [--rtt A,B,C] [--fastpath xdp|dpdk]
#                         up, measured RTTs, real TCP and UDP flows, a table, down
#
# tag defaults to "lab". --rtt: round-trip times edge <-> eu-west,us-east,ap-south
# in ms (default 2,20,60, or $AG_RTT; 0 = no delay). --fastpath: the XDP program
# (default) or anygate-dp on the edge's veths (net_af_packet, no hugepages: see
# tests/integration/lib-dpdk.sh). anygated runs config/lab.conf, whose
# /run/anygate/lab/ paths are moved under /run/anygate/<tag>/ for another tag.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"

usage() {
	sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

cmd=${1:-}
[ $# -gt 0 ] && shift
tag=lab
fastpath=xdp
while [ $# -gt 0 ]; do
	case $1 in
	--tag) tag=${2:?--tag needs a value}; shift 2 ;;
	--backends) export AG_BACKENDS=${2:?--backends needs a value}; shift 2 ;;
	--rtt) export AG_RTT=${2:?--rtt needs a value}; shift 2 ;;
	--fastpath) fastpath=${2:?--fastpath needs a value}; shift 2 ;;
	*) usage ;;
	esac
done
case $cmd in up | down | status | demo) ;; *) usage ;; esac
case $fastpath in xdp | dpdk) ;; *) ag_die "--fastpath $fastpath: xdp or dpdk" ;; esac
[ "$(id -u)" -eq 0 ] || ag_die "lab.sh must run as root (network namespaces, XDP, bpffs)"
# Always loaded: `down` and `status` find anygate-dp by its pid file, whatever
# fast path `up` chose. A missing piece is an error here, not a test's skip.
# shellcheck source=../tests/integration/lib-dpdk.sh
. "$ROOT/tests/integration/lib-dpdk.sh"
ag_skip() { ag_die "$*"; }
ag_set_tag "$tag"
dp_paths
# Refuse a bad --rtt before anything is built.
[ "$cmd" = up ] || [ "$cmd" = demo ] && lab_rtt_parse

build() {
	"$ROOT/scripts/deps.sh" >&2 || ag_die "deps.sh failed"
	if [ ! -f "$AG_BUILD/build.ninja" ]; then
		meson setup "$AG_BUILD" "$ROOT" >&2 || ag_die "meson setup failed"
	fi
	ninja -C "$AG_BUILD" -j2 >&2 || ag_die "build failed"
	ag_require_build "$AG_ANYGATED"
}

lab_config() {
	local src=$ROOT/config/lab.conf out=$AG_RUN/lab.conf
	[ -f "$src" ] || ag_die "$src is missing"
	sed "s|/run/anygate/lab/|$AG_RUN/|g" "$src" >"$out" || return 1
	echo "$out"
}

do_up() {
	local conf
	build
	# The WAN bridges use native XDP on their own veths, whatever the fast path.
	ag_require_native_xdp
	[ "$fastpath" = dpdk ] && dp_require
	ag_log "creating the lab (${AG_BACKENDS:-2} backends per region, RTT from the edge: $(rtt_list) ms, fast path $fastpath)"
	if ! lab_up; then
		lab_down
		ag_die "lab creation failed (cleaned up)"
	fi
	conf=$(lab_config) || { lab_down; ag_die "cannot write the lab config"; }
	if [ "$fastpath" = dpdk ]; then
		# anygated publishes into the segment, anygate-dp forwards from it.
		if ! { dp_config "$conf" && dp_handover; }; then
			lab_down
			ag_die "cannot hand the edge's veths to anygate-dp"
		fi
	fi
	ag_log "starting anygated on $conf (log $AG_AGD_LOG)"
	if ! agd_start "$conf"; then
		lab_down
		ag_die "anygated did not come up (lab removed)"
	fi
	if [ "$fastpath" = dpdk ]; then
		ag_log "starting anygate-dp (log $AG_DP_LOG)"
		dp_start "$conf" || { lab_down; ag_die "anygate-dp did not come up (lab removed)"; }
	fi
	ag_log "ready: from the client, e.g. ip netns exec $(ns client) curl http://$AG_VIP/"
}

# "eu-west 2, us-east 20, ap-south 60": the configured round-trip times.
rtt_list() {
	local n out=""
	for ((n = 1; n <= AG_REGIONS; n++)); do
		out+="${out:+, }${AG_REGION_NAMES[n - 1]} ${AG_RTT_MS[n]}"
	done
	echo "$out"
}

# The delay bridges: pid, delays, counters (fresh, via SIGUSR1).
wan_status() {
	local n pid st
	echo "WAN delay bridges (a0 = edge side, b0 = router side; ab = towards the region):"
	for ((n = 1; n <= AG_REGIONS; n++)); do
		pid=$(cat "$AG_RUN/wan$n.pid" 2>/dev/null)
		if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
			echo "  wan$n (${AG_REGION_NAMES[n - 1]}): NOT running"
			continue
		fi
		echo "  wan$n (${AG_REGION_NAMES[n - 1]}): ag-wandelay pid $pid, scheduling class" \
			"$(ps -o cls= -p "$pid" | tr -d ' ') (FF = SCHED_FIFO)"
		st=$(wan_stats $n 2>&1) || { echo "    $st"; continue; }
		awk '/^dir=/ {
			for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			drops = ""
			for (k in v) if (k ~ /^drop_/ && v[k] != 0) drops = drops " " substr(k, 6) "=" v[k]
			printf "    %s %s->%s delay %s us: %s frames %s bytes forwarded, %s queued, " \
				"late avg %s us max %s us, drops:%s\n", v["dir"], v["in"], v["out"],
				v["delay_us"], v["tx_frames"], v["tx_bytes"], v["queued"],
				v["late_avg_us"], v["late_max_us"], drops == "" ? " none" : drops
			delete v
		}' <<<"$st"
	done
}

do_status() {
	local n pid
	echo "namespaces:"
	lab_namespaces | sort | sed 's/^/  /'
	[ -z "$(lab_namespaces)" ] && echo "  (none: lab '$AG_TAG' is down)"
	if [ -f "$AG_AGD_PIDFILE" ]; then
		pid=$(cat "$AG_AGD_PIDFILE")
		if kill -0 "$pid" 2>/dev/null; then
			echo "anygated: pid $pid, alive (log $AG_AGD_LOG)"
		else
			echo "anygated: pid $pid, NOT running (log $AG_AGD_LOG)"
		fi
	else
		echo "anygated: not started"
	fi
	if [ -f "$AG_DP_PIDFILE" ]; then
		pid=$(cat "$AG_DP_PIDFILE")
		if dp_alive; then
			echo "anygate-dp: pid $pid, alive, ports e0..e3, exception taps agdp0..agdp3 (log $AG_DP_LOG)"
		else
			echo "anygate-dp: pid $pid, NOT running (log $AG_DP_LOG)"
		fi
	fi
	if [ -e "/run/netns/$(ns edge)" ]; then
		echo "edge interfaces (XDP state):"
		for n in e0 $(seq -f 'e%g' 1 "$AG_REGIONS"); do
			ip -n "$(ns edge)" -d link show dev "$n" 2>/dev/null |
				awk -v n="$n" '
					NR == 1 { x = "none" }
					/ xdp(generic|offload)? / && NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /^xdp/) x = $i }
					/prog\/xdp/ { for (i = 1; i <= NF; i++) if ($i == "id") id = $(i + 1) }
					END { printf "  %-3s %s%s\n", n, x, id ? " (prog id " id ")" : "" }'
		done
	fi
	[ -n "$(lab_namespaces)" ] && wan_status
	return 0
}

# Count replies per backend and region: reads backend names (one a line).
tally() {
	awk -v regions="${AG_REGION_NAMES[*]}" '
		BEGIN { split(regions, rn, " ") }
		{ total++ }
		/^r[0-9]+b[0-9]+$/ { n[$1]++; r = substr($1, 2); sub(/b.*/, "", r); reg[r]++; next }
		{ bad[$0]++ }
		END {
			printf "  %-10s %-8s %6s %7s\n", "region", "backend", "flows", "share"
			for (r = 1; r <= 9; r++) {
				if (!(r in reg)) continue
				printf "  %-10s %-8s %6d %6.1f%%\n", rn[r], "(all)", reg[r], 100 * reg[r] / total
				for (b in n) {
					x = substr(b, 2); sub(/b.*/, "", x)
					if (x == r) printf "  %-10s %-8s %6d %6.1f%%\n", "", b, n[b], 100 * n[b] / total
				}
			}
			for (e in bad) printf "  failed: %-30s %d\n", e, bad[e]
			printf "  total %d flows\n", total
		}'
}

do_demo() {
	local out=$AG_RUN/demo n m
	trap 'lab_down' EXIT
	trap 'lab_down; exit 130' INT
	trap 'lab_down; exit 143' TERM
	do_up
	mkdir -p "$out"
	echo
	echo "Round-trip time from the edge to each region (through its WAN delay bridge):"
	for ((n = 1; n <= AG_REGIONS; n++)); do
		# One echo first resolves the router's MAC (ARP crosses the WAN too).
		nsx edge ping -n -c 1 -W 5 "10.$n.0.2" >/dev/null 2>&1
		m=$(edge_rtt $n 5 2>/dev/null) || m="no reply"
		printf "  %-10s configured %6s ms, measured %s ms (median of 5 pings to 10.%d.0.2)\n" \
			"${AG_REGION_NAMES[n - 1]}" "${AG_RTT_MS[n]}" "$m" "$n"
	done
	echo
	ag_log "200 TCP connections (curl, HTTP/1.0, one connection each) to $AG_VIP:80"
	nsx client curl -s --max-time 5 --connect-timeout 3 -w '|%{http_code}\n' \
		"http://$AG_VIP/[1-200]" >"$out/tcp" 2>"$out/tcp.err"
	ag_log "200 UDP request/replies (each from its own source port) to $AG_VIP:5000"
	nsx client "$AG_TESTCLI" --timeout-ms 2000 "$AG_VIP" 5000 200 >"$out/udp" 2>"$out/udp.err"
	echo
	echo "TCP flows by region and backend:"
	awk -F'|' '{ print ($2 == 200 ? $1 : "HTTP status " $2) }' "$out/tcp" | tally
	echo "UDP flows by region and backend:"
	tally <"$out/udp"
	echo
	demo_failover "$out"
}

# The nearest region (eu-west) fails while a client keeps opening new UDP flows;
# anygated's probes notice, new flows move to the next region (us-east); the
# region comes back and so does the traffic.
demo_failover() {
	local out=$1 t_stop first n log_from
	log_from=$(($(wc -l <"$AG_AGD_LOG") + 1))
	ag_log "failover: a client opens new UDP flows back to back; stopping eu-west's servers (r1b1, r1b2)"
	nsx client "$AG_TESTCLI" --timestamps --timeout-ms 50 --sport-base 20000 "$AG_VIP" 5000 40000 \
		>"$out/fo" 2>/dev/null &
	local cli=$!
	warm() { [ "$(wc -l <"$out/fo")" -ge 100 ]; }
	wait_for 20 "client traffic" warm || { kill $cli; ag_log "no client traffic"; return 1; }
	t_stop=$(date +%s%3N)
	lab_server_stop r1b1
	lab_server_stop r1b2
	moved() { awk -v k="$t_stop" '$1 >= k + 500 && $2 ~ /^r[23]b/ { n++ } END { exit n < 50 }' "$out/fo"; }
	wait_for 20 "new flows in another region" moved
	kill $cli 2>/dev/null
	wait $cli 2>/dev/null
	echo
	echo "anygated (probes every 100 ms, down after 2 failures):"
	tail -n +"$log_from" "$AG_AGD_LOG" | grep -E 'udp:5000 eu-west .*down' |
		sed -E 's/^[^ ]+ info: /  /; s/; first_fail_ms=.*//'
	first=$(awk -v k="$t_stop" '$1 >= k && $2 ~ /^r[23]b/ { print $1 - k; exit }' "$out/fo")
	echo "client: first new flow served by another region ${first:-?} ms after the servers stopped"
	echo "new UDP flows from 0.5 s after the stop, by region and backend:"
	awk -v k="$t_stop" '$1 >= k + 500 && $2 != "TIMEOUT" { print $2 }' "$out/fo" | tally
	echo
	ag_log "restoring eu-west's servers"
	lab_server_restart r1b1
	lab_server_restart r1b2
	back() { [ "$(tail -n +"$log_from" "$AG_AGD_LOG" | grep -cE 'endpoint web/udp:5000 eu-west .* up')" -ge 2 ]; }
	wait_for 20 "eu-west healthy again" back || ag_log "eu-west did not come back"
	nsx client "$AG_TESTCLI" --timeout-ms 2000 --sport-base 50000 "$AG_VIP" 5000 200 \
		>"$out/udp2" 2>/dev/null
	echo "UDP flows after eu-west is back, by region and backend:"
	tally <"$out/udp2"
	echo
}

case $cmd in
up) do_up ;;
down)
	lab_down
	ag_log "down"
	;;
status) do_status ;;
demo) do_demo ;;
esac
