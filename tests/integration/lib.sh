# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# The anygate lab in network namespaces, shared by scripts/lab.sh and the
# integration tests. Source it, set AG_TAG (letters and digits), then:
#   lab_up / lab_down          build and tear down the lab (see the plan below)
#   wan_stats N / edge_rtt N   counters of region N's delay bridge; measured RTT
#   ag_config_write FILE ...   a config with this lab's own bpffs/socket paths
#   agd_start FILE / agd_stop  anygated in the edge namespace
#   wait_for SECS DESC CMD..   poll CMD until it succeeds, bounded
#
# Plan (fixed, /tmp/brief and config/lab.conf follow it): namespaces
# ag-<tag>-client, -edge, -r1..r3 (region routers), -r<N>b<M> (backends),
# -wan1..wan3 (the WAN between the edge and each router).
#   client c0 10.0.0.2/24 <-> edge e0 10.0.0.1/24; client: 198.51.100.0/24 via 10.0.0.1
#   edge eN 10.N.0.1/24 <-> wanN a0 | ag-wandelay | wanN b0 <-> router rN w0 10.N.0.2/24
#   (eN and w0 share one L2 segment through the delay bridge, which has no
#   address); router br0 10.N.1.1/24
#   backend rNbM eth0 10.N.1.(10+M)/24 (router side bM on br0), default via 10.N.1.1
#   NAT source 10.255.0.1/32 on the edge's lo; routers route 10.255.0.0/24 and
#   10.0.0.0/24 via 10.N.0.1; the edge routes 10.N.0.0/16 via 10.N.0.2.
# The namespaces are joined only to each other: every veth is created inside a
# lab namespace with its peer in another, never in the host's namespace.

AG_ROOT=${AG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
AG_BUILD=${AG_BUILD:-$AG_ROOT/build}
AG_REGIONS=3
AG_REGION_NAMES=(eu-west us-east ap-south)
AG_VIP=198.51.100.10
AG_NAT_ADDR=10.255.0.1
AG_TESTSRV=$AG_BUILD/tests/integration/ag-testsrv
AG_TESTCLI=$AG_BUILD/tests/integration/ag-testcli
AG_WANDELAY=$AG_BUILD/tests/integration/ag-wandelay
# shellcheck disable=SC2034 # used by the tests that source this file
AG_LONGCONN=$AG_BUILD/tests/integration/ag-longconn
AG_XDP_PASS=$AG_BUILD/tests/integration/xdp_pass.bpf.o
AG_ANYGATED=$AG_BUILD/controlplane/anygated

ag_log() { echo "[$AG_TAG] $*" >&2; }

# Exit status 77 means "skipped" to tests/integration/run.sh.
ag_skip() {
	echo "SKIP: $*" >&2
	exit 77
}

ag_die() {
	echo "ERROR: $*" >&2
	exit 1
}

# Everything of one lab hangs off its tag; called before any other lab_* function.
ag_set_tag() {
	[[ $1 =~ ^[A-Za-z0-9]{1,12}$ ]] || ag_die "lab tag '$1': use 1-12 letters or digits"
	AG_TAG=$1
	AG_RUN=/run/anygate/$AG_TAG
	AG_BPFFS=$AG_RUN/bpf
	AG_AGD_LOG=$AG_RUN/anygated.log
	AG_AGD_PIDFILE=$AG_RUN/anygated.pid
}

ns() { echo "ag-$AG_TAG-$1"; }
# Run a command inside the lab namespace NAME (client, edge, r1, r1b1, ...).
nsx() {
	local n=$1
	shift
	ip netns exec "ag-$AG_TAG-$n" "$@"
}

# Namespaces that belong to this tag, including leftovers of an earlier run.
lab_namespaces() {
	ip netns list 2>/dev/null | awk -v p="ag-$AG_TAG-" 'index($1, p) == 1 { print $1 }'
}

backend_names() {
	local n m
	for ((n = 1; n <= AG_REGIONS; n++)); do
		for ((m = 1; m <= ${AG_BACKENDS:-2}; m++)); do
			echo "r${n}b${m}"
		done
	done
}

backend_addr() { # rNbM -> 10.N.1.(10+M)
	local n=${1#r} m=${1#*b}
	n=${n%%b*}
	echo "10.$n.1.$((10 + m))"
}

# wait_for SECS DESCRIPTION CMD...: poll CMD (every 0.1 s) until it succeeds;
# fails with a message after SECS seconds. Synchronisation is always a
# condition, never a fixed sleep.
wait_for() {
	local secs=$1 desc=$2 deadline
	shift 2
	deadline=$(($(date +%s%N) + secs * 1000000000))
	until "$@" >/dev/null 2>&1; do
		if (($(date +%s%N) >= deadline)); then
			echo "timed out after ${secs}s waiting for: $desc" >&2
			return 1
		fi
		sleep 0.1
	done
}

ag_require_root() {
	[ "$(id -u)" -eq 0 ] || ag_skip "needs root (network namespaces, XDP, bpffs)"
}

ag_require_build() {
	local f
	for f in "$AG_TESTSRV" "$AG_TESTCLI" "$AG_WANDELAY" "$AG_XDP_PASS" "$@"; do
		[ -e "$f" ] || ag_die "$f is missing: build first (meson setup build && ninja -C build)"
	done
}

# Native (driver-mode) XDP on veth is what the fast path uses; generic XDP
# would hide real bugs, so without native support the tests skip.
ag_require_native_xdp() {
	local p err
	p=ag-$AG_TAG-probe
	err=$(mktemp)
	ip netns del "$p" 2>/dev/null
	ip netns add "$p" || ag_die "cannot create network namespace $p"
	if ! ip -n "$p" link add x0 type veth peer name x1 ||
		! ip -n "$p" link set x0 up || ! ip -n "$p" link set x1 up; then
		ip netns del "$p"
		rm -f "$err"
		ag_skip "cannot create veth pairs in a network namespace"
	fi
	if ! ip -n "$p" link set dev x0 xdpdrv obj "$AG_XDP_PASS" sec xdp 2>"$err"; then
		ip netns del "$p"
		set -- "$(tr '\n' ' ' <"$err")"
		rm -f "$err"
		ag_skip "native XDP on veth unavailable: $1"
	fi
	rm -f "$err"
	ip netns del "$p"
}

# ---------------------------------------------------------------- topology

lab_link() { # NS_A IF_A NS_B IF_B: a veth pair between two lab namespaces
	ip -n "$(ns "$1")" link add "$2" type veth peer name "$4" netns "$(ns "$3")"
}

lab_addr() { # NS IF ADDR/LEN: address and up
	ip -n "$(ns "$1")" addr add "$3" dev "$2" && ip -n "$(ns "$1")" link set "$2" up
}

lab_sysctl() { # NS key=value...
	local n=$1
	shift
	nsx "$n" sysctl -qw "$@" >/dev/null
}

# Round-trip times from the edge to each region, in ms: AG_RTT="2,20,60"
# (the default) gives eu-west 2 ms, us-east 20 ms, ap-south 60 ms; each
# direction of a region's WAN holds frames for half of it; 0 forwards at once.
# Sets AG_RTT_MS[1..AG_REGIONS].
lab_rtt_parse() {
	local spec=${AG_RTT:-2,20,60} v n=0
	local -a vals
	AG_RTT_MS=()
	IFS=, read -r -a vals <<<"$spec"
	[ ${#vals[@]} -eq $AG_REGIONS ] ||
		ag_die "AG_RTT='$spec': give $AG_REGIONS round-trip times in ms, e.g. 2,20,60"
	for v in "${vals[@]}"; do
		n=$((n + 1))
		{ [[ $v =~ ^[0-9]{1,5}(\.[0-9]{1,3})?$ ]] && awk -v v="$v" 'BEGIN { exit !(v <= 10000) }'; } ||
			ag_die "AG_RTT='$spec': '$v' is not a round-trip time in ms (0 to 10000)"
		AG_RTT_MS[n]=$v
	done
}

# Build the namespaces, links, addresses and routes, and start the WAN delay
# bridges and the backends' servers. AG_BACKENDS (default 2) backends per
# region; AG_RTT (default 2,20,60) round-trip times edge <-> region in ms;
# AG_BULK_MB (default 50) megabytes of random bulk data served on TCP 8001.
lab_up() {
	local n m b all=(client edge) nb=${AG_BACKENDS:-2}
	[[ $nb =~ ^[1-9]$ ]] || ag_die "AG_BACKENDS=$nb: 1-9 backends per region"
	lab_rtt_parse
	[ -n "$(lab_namespaces)" ] && ag_die "lab '$AG_TAG' exists already (run: scripts/lab.sh down --tag $AG_TAG)"
	mkdir -p "$AG_RUN" "$AG_BPFFS"

	for ((n = 1; n <= AG_REGIONS; n++)); do all+=("r$n" "wan$n"); done
	mapfile -t -O ${#all[@]} all < <(backend_names)
	for b in "${all[@]}"; do
		ip netns add "$(ns "$b")" || return 1
		ip -n "$(ns "$b")" link set lo up || return 1
		# IPv6 off: no router solicitations or DAD chatter through the fast path.
		lab_sysctl "$b" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 ||
			return 1
	done

	# client <-> edge
	lab_link client c0 edge e0 || return 1
	lab_addr client c0 10.0.0.2/24 && lab_addr edge e0 10.0.0.1/24 || return 1
	ip -n "$(ns client)" route add 198.51.100.0/24 via 10.0.0.1 || return 1

	# edge <-> WAN <-> region routers <-> backends
	ip -n "$(ns edge)" addr add $AG_NAT_ADDR/32 dev lo || return 1
	for ((n = 1; n <= AG_REGIONS; n++)); do
		lab_link edge "e$n" "wan$n" a0 && lab_link "wan$n" b0 "r$n" w0 || return 1
		ip -n "$(ns "wan$n")" link set a0 up && ip -n "$(ns "wan$n")" link set b0 up ||
			return 1
		# Frames redirected by XDP into e<n> arrive on a0: a veth drops them
		# without NAPI. An XDP program gives a0 NAPI without GRO; GRO
		# ("ethtool -K a0 gro on") would glue them into super-frames longer
		# than the MTU, which the bridge cannot forward.
		ip -n "$(ns "wan$n")" link set dev a0 xdpdrv obj "$AG_XDP_PASS" sec xdp || return 1
		lab_addr edge "e$n" "10.$n.0.1/24" && lab_addr "r$n" w0 "10.$n.0.2/24" || return 1
		# The bridge forwards raw frames: a checksum left to offload
		# (CHECKSUM_PARTIAL) must be complete before it crosses the WAN.
		nsx edge ethtool -K "e$n" tx off >/dev/null &&
			nsx "r$n" ethtool -K w0 tx off >/dev/null || return 1
		ip -n "$(ns edge)" route add "10.$n.0.0/16" via "10.$n.0.2" || return 1
		ip -n "$(ns "r$n")" link add br0 type bridge || return 1
		lab_addr "r$n" br0 "10.$n.1.1/24" || return 1
		ip -n "$(ns "r$n")" route add 10.255.0.0/24 via "10.$n.0.1" || return 1
		ip -n "$(ns "r$n")" route add 10.0.0.0/24 via "10.$n.0.1" || return 1
		lab_sysctl "r$n" net.ipv4.ip_forward=1 || return 1
		for ((m = 1; m <= nb; m++)); do
			b=r${n}b${m}
			lab_link "r$n" "b$m" "$b" eth0 || return 1
			ip -n "$(ns "r$n")" link set "b$m" master br0 up || return 1
			lab_addr "$b" eth0 "$(backend_addr "$b")/24" || return 1
			ip -n "$(ns "$b")" route add default via "10.$n.1.1" || return 1
			# Local sockets hand XDP CHECKSUM_PARTIAL packets otherwise.
			nsx "$b" ethtool -K eth0 tx off >/dev/null || return 1
		done
	done

	lab_sysctl edge net.ipv4.ip_forward=1 || return 1
	# The fast path passes rewritten packets (source = NAT address, local to the
	# edge) to the kernel while a neighbour is unresolved: the kernel must
	# neither call that a martian nor fail the reverse-path check.
	local ifs=(all default lo e0) k=()
	for ((n = 1; n <= AG_REGIONS; n++)); do ifs+=("e$n"); done
	for b in "${ifs[@]}"; do
		k+=("net.ipv4.conf.$b.rp_filter=0" "net.ipv4.conf.$b.accept_local=1")
	done
	lab_sysctl edge "${k[@]}" || return 1
	# The edge originates traffic too (anygated's health probes, replies to pings).
	nsx edge ethtool -K e0 tx off >/dev/null || return 1
	nsx client ethtool -K c0 tx off gro on >/dev/null || return 1

	mount -t bpf bpf "$AG_BPFFS" || return 1
	# A fresh bpffs may already hold entries of the kernel's own (maps.debug,
	# progs.debug): pins are what is there beyond these.
	ls -A "$AG_BPFFS" >"$AG_RUN/bpffs.baseline" || return 1
	lab_start_wan && lab_start_servers
}

# One-way delay of region N's WAN in ms (half its round-trip time).
wan_delay_ms() {
	awk -v r="${AG_RTT_MS[$1]}" 'BEGIN { printf "%.6g", r / 2 }'
}

# An ag-wandelay in each wanN, a0 (edge side) <-> b0 (router side).
lab_start_wan() {
	local n
	for ((n = 1; n <= AG_REGIONS; n++)); do
		# Not through nsx: a backgrounded function is a subshell, and $! must
		# be ag-wandelay itself (ip netns exec execs it) for SIGUSR1.
		# SCHED_FIFO 1: a bridge queued behind other work on a busy box
		# would add its wait to the region's RTT (see ag-wandelay.c).
		ip netns exec "$(ns "wan$n")" "$AG_WANDELAY" -a a0 -b b0 --delay "$(wan_delay_ms $n)" \
			--rt-prio 1 --stats "$AG_RUN/wan$n.stats" >"$AG_RUN/wan$n.log" 2>&1 &
		echo $! >"$AG_RUN/wan$n.pid"
	done
	for ((n = 1; n <= AG_REGIONS; n++)); do
		wait_for 10 "delay bridge wan$n" grep -q '^ready' "$AG_RUN/wan$n.log" || {
			cat "$AG_RUN/wan$n.log" >&2
			return 1
		}
	done
}

# Stop the delay bridges (they print their counters on the way out, into
# wanN.log, which run.sh keeps beside the test's log). Bounded.
lab_stop_wan() {
	local n pid deadline
	for ((n = 1; n <= AG_REGIONS; n++)); do
		[ -f "$AG_RUN/wan$n.pid" ] || continue
		pid=$(cat "$AG_RUN/wan$n.pid")
		kill -TERM "$pid" 2>/dev/null
		deadline=$(($(date +%s) + 5))
		while kill -0 "$pid" 2>/dev/null &&
			[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != Z ]; do
			if (($(date +%s) >= deadline)); then
				kill -KILL "$pid" 2>/dev/null
				break
			fi
			sleep 0.05
		done
		wait "$pid" 2>/dev/null
		rm -f "$AG_RUN/wan$n.pid"
		if [ -n "${AG_SAVE_DIR:-}" ] && [ -s "$AG_RUN/wan$n.log" ]; then
			cp "$AG_RUN/wan$n.log" "$AG_SAVE_DIR/$(basename "$0" .sh).wan$n.log" 2>/dev/null
		fi
	done
	return 0
}

# wan_stats N: the counters of region N's delay bridge, fresh (SIGUSR1 makes it
# rewrite its stats file). Lines: a header, then one per direction
# ("dir=ab" edge -> region, "dir=ba" region -> edge) of key=value pairs.
wan_stats() {
	local f=$AG_RUN/wan$1.stats pid
	{ pid=$(cat "$AG_RUN/wan$1.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; } || {
		echo "delay bridge wan$1 is not running" >&2
		return 1
	}
	rm -f "$f"
	kill -USR1 "$pid" || return 1
	wait_for 5 "counters of wan$1" test -s "$f" || return 1
	cat "$f"
}

# edge_rtt N [COUNT]: median round-trip time in ms (ping, COUNT echoes,
# default 5) from the edge to region N's router, measured through its WAN.
# Every sample on stderr ("rtt wanN: a b c ...").
edge_rtt() {
	local n=$1 c=${2:-5} out
	out=$(nsx edge ping -n -c "$c" -i 0.2 -W 3 "10.$n.0.2" 2>&1)
	# shellcheck disable=SC2046 # one word per sample: split on purpose
	set -- $(sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' <<<"$out" | sort -g)
	[ $# -gt 0 ] || {
		echo "no ping reply from 10.$n.0.2: $out" >&2
		return 1
	}
	echo "rtt r$n: $*" >&2
	printf '%s\n' "$@" | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.3f\n", m }'
}

lab_start_servers() {
	local b
	# Random bytes, so a transfer that loses or reorders data cannot match by luck.
	head -c "$((${AG_BULK_MB:-50} * 1048576))" /dev/urandom >"$AG_RUN/bulk.bin" || return 1
	for b in $(backend_names); do
		lab_server_spawn "$b"
	done
	for b in $(backend_names); do
		lab_server_wait "$b" || return 1
	done
}

# lab_server_spawn B: start backend B's servers (HTTP 80, UDP 5000, bulk 8001, echo 8002).
lab_server_spawn() {
	nsx "$1" "$AG_TESTSRV" --name "$1" --http 80 --udp 5000 \
		--bulk 8001 --bulk-file "$AG_RUN/bulk.bin" --echo 8002 >"$AG_RUN/srv-$1.log" 2>&1 &
	echo $! >"$AG_RUN/srv-$1.pid"
}

lab_server_wait() {
	wait_for 10 "server $1" grep -q '^ready' "$AG_RUN/srv-$1.log" || {
		cat "$AG_RUN/srv-$1.log" >&2
		return 1
	}
}

# lab_server_stop B: kill every process in backend B's namespace (the server and
# its per-connection children): the backend's own kernel then refuses and resets.
lab_server_stop() {
	local pids
	pids=$(ip netns pids "$(ns "$1")" 2>/dev/null)
	# shellcheck disable=SC2086 # one pid a line: split on purpose
	[ -n "$pids" ] && kill $pids 2>/dev/null
	wait_for 10 "$1 stopped" test -z "$(ip netns pids "$(ns "$1")" 2>/dev/null)"
}

# lab_server_restart B: bring backend B's servers back after lab_server_stop.
lab_server_restart() {
	lab_server_spawn "$1"
	lab_server_wait "$1"
}

# Stop everything of this tag: anygated first (so it detaches and unpins as it
# should), then every process still inside a lab namespace, by pid; then the
# namespaces, the bpffs and the run directory. Safe to call twice.
lab_down() {
	local n p pids deadline
	[ -n "${AG_TAG:-}" ] || return 0
	if [ -f "$AG_AGD_PIDFILE" ]; then
		# Teardown goes on either way: what does not stop is killed below.
		agd_stop || ag_log "anygated did not exit cleanly (status $AGD_STATUS)"
	fi
	[ -n "${AG_RUN:-}" ] && lab_stop_wan
	for n in $(lab_namespaces); do
		pids=$(ip netns pids "$n" 2>/dev/null)
		for p in $pids; do kill -TERM "$p" 2>/dev/null; done
	done
	deadline=$(($(date +%s) + 5))
	for n in $(lab_namespaces); do
		while [ -n "$(ip netns pids "$n" 2>/dev/null)" ] && (($(date +%s) < deadline)); do
			sleep 0.1
		done
		for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$n" 2>/dev/null
	done
	if [ -n "${AG_RUN:-}" ] && [ -d "$AG_RUN" ]; then
		# run.sh keeps each test's anygated log beside the test's own.
		if [ -n "${AG_SAVE_DIR:-}" ] && [ -s "$AG_AGD_LOG" ]; then
			cp "$AG_AGD_LOG" "$AG_SAVE_DIR/$(basename "$0" .sh).anygated.log" 2>/dev/null
		fi
		if mountpoint -q "$AG_BPFFS" 2>/dev/null; then
			umount "$AG_BPFFS" || umount -l "$AG_BPFFS"
		fi
		rm -rf "$AG_RUN"
	fi
	# Shared by every lab tag: removed only once the last one is gone.
	[ -d /run/anygate ] && rmdir --ignore-fail-on-non-empty /run/anygate
	return 0
}

# For tests: tear the lab down on every exit path.
lab_trap() {
	trap 'lab_down' EXIT
	trap 'lab_down; exit 130' INT
	trap 'lab_down; exit 143' TERM
}

# ---------------------------------------------------------------- anygated

agd_alive() {
	[ -f "$AG_AGD_PIDFILE" ] && kill -0 "$(cat "$AG_AGD_PIDFILE")" 2>/dev/null
}

# agd_start CONFIG [args]: run anygated in the edge namespace, wait (bounded)
# for its "anygated ready" line. Fails at once if it exits before that.
agd_start() {
	local conf=$1 pid deadline
	shift
	[ -x "$AG_ANYGATED" ] || ag_die "$AG_ANYGATED is missing: build first"
	: >"$AG_AGD_LOG"
	# setsid: anygated outlives the shell that started it (scripts/lab.sh up).
	setsid ip netns exec "$(ns edge)" "$AG_ANYGATED" -c "$conf" -v "$@" \
		</dev/null >>"$AG_AGD_LOG" 2>&1 &
	pid=$!
	echo "$pid" >"$AG_AGD_PIDFILE"
	deadline=$(($(date +%s) + 30))
	until grep -q 'anygated ready' "$AG_AGD_LOG"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			echo "anygated exited (status $?) before ready; log:" >&2
			tail -n 30 "$AG_AGD_LOG" >&2
			rm -f "$AG_AGD_PIDFILE"
			return 1
		fi
		if (($(date +%s) >= deadline)); then
			echo "anygated not ready after 30s; log:" >&2
			tail -n 30 "$AG_AGD_LOG" >&2
			return 1
		fi
		sleep 0.1
	done
}

# agd_stop: SIGTERM, wait up to 15 s. Sets AGD_STATUS to anygated's exit status
# (when it is our child; else 0 once it is gone), 124 if it would not exit and
# had to be killed; returns it. Call it directly, not in $(...): only this shell
# can collect its child's status.
agd_stop() {
	local pid deadline
	AGD_STATUS=0
	[ -f "$AG_AGD_PIDFILE" ] || return 0
	pid=$(cat "$AG_AGD_PIDFILE")
	kill -TERM "$pid" 2>/dev/null
	deadline=$(($(date +%s) + 15))
	while kill -0 "$pid" 2>/dev/null; do
		# Our child that has exited stays a zombie (still "alive") until waited for.
		[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && break
		if (($(date +%s) >= deadline)); then
			kill -KILL "$pid" 2>/dev/null
			rm -f "$AG_AGD_PIDFILE"
			AGD_STATUS=124
			return 124
		fi
		sleep 0.1
	done
	wait "$pid" 2>/dev/null
	AGD_STATUS=$?
	# 127: not our child (lab.sh down in a later shell); it is gone, status unknown.
	[ $AGD_STATUS -eq 127 ] && AGD_STATUS=0
	rm -f "$AG_AGD_PIDFILE"
	return $AGD_STATUS
}

# Entries under the lab's bpffs that were not there right after mounting it.
bpffs_pins() {
	# Only anygate's own pins: iproute2 creates ip/tc/xdp folders in any bpffs it
	# finds (another test's `ip link ... obj`), which are not ours to count.
	# shellcheck disable=SC2010 # pin names are ours (no newlines); the baseline is the same ls
	ls -A "$AG_BPFFS" | grep -vxF -f "$AG_RUN/bpffs.baseline" | grep -E '^(ag_|link_)'
}

# Interfaces of the edge that have an XDP program attached, in any mode (one
# name a line, sorted): "xdp", "xdpgeneric", ... after the MTU, or a prog/xdp line.
edge_xdp_ifaces() {
	ip -n "$(ns edge)" -d link show | awk '
		/^[0-9]+: / {
			name = $2; sub(/@.*/, "", name); sub(/:$/, "", name)
			for (i = 3; i <= NF; i++) if ($i ~ /^xdp(generic|drv|offload|multi)?$/) print name
		}
		/^ *prog\/xdp/ { print name }' | sort -u
}

# ---------------------------------------------------------------- configs

# ag_config_write FILE [GROUP...]: an anygated config for this lab, with its own
# bpffs dir, control socket and state file under /run/anygate/<tag>/.
# GROUP is "REGION[@DIAL]:BACKEND=WEIGHT,BACKEND=WEIGHT..." (e.g. "eu-west:r1b1=1,r1b2=1",
# "eu-west@30:r1b1=1"); without any, every region's backends at weight 128 (the
# lab's plan). AG_HEALTH replaces the health check block's inside (default: TCP
# connect to port 80 every second). Every
# group is behind accelerator "web" (VIP 198.51.100.10): TCP 80 and 8000-8009,
# UDP 5000.
ag_config_write() {
	local file=$1 g groups="" region dial eps ep b w first n
	shift
	if [ $# -eq 0 ]; then
		for ((n = 1; n <= AG_REGIONS; n++)); do
			g="${AG_REGION_NAMES[n - 1]}:"
			for b in $(backend_names | grep "^r${n}b"); do g+="$b=128,"; done
			set -- "$@" "${g%,}"
		done
	fi
	first=1
	for g in "$@"; do
		region=${g%%:*}
		dial=100
		if [[ $region == *@* ]]; then
			dial=${region#*@}
			region=${region%@*}
		fi
		eps=""
		IFS=, read -r -a ep <<<"${g#*:}"
		for b in "${ep[@]}"; do
			w=${b#*=}
			b=${b%%=*}
			eps+=$'\n\t\t\t\t\t\t'"{ address = \"$(backend_addr "$b")\"; weight = $w; },"
		done
		eps=${eps%,}
		[ $first -eq 1 ] || groups+=","
		first=0
		groups+="
					{
						region = \"$region\";
						traffic_dial = $dial;
						health_check = { ${AG_HEALTH:-protocol = \"tcp\"; port = 80; interval_ms = 1000;} };
						endpoints = ($eps
						);
					}"
	done
	cat >"$file" <<CONF
# anygated config generated by tests/integration/lib.sh for lab "$AG_TAG"
edge = {
	name = "edge-$AG_TAG";
	hash_seed = 4242;
	fastpath = "xdp";
	interfaces = (
		{ name = "e0"; role = "client"; },
		{ name = "e1"; role = "backend"; },
		{ name = "e2"; role = "backend"; },
		{ name = "e3"; role = "backend"; }
	);
	nat_addresses = [ "$AG_NAT_ADDR" ];
	bpffs_dir = "$AG_BPFFS";
	control_socket = "$AG_RUN/anygated.sock";
	state_file = "$AG_RUN/state.json";
	metrics = "";
	ring_size = 65537;
	max_flows = 65536;
};

accelerators = (
	{
		name = "web";
		addresses = [ "$AG_VIP" ];
		listeners = (
			{
				protocol = "tcp";
				ports = ( 80, "8000-8009" );
				endpoint_groups = ($groups
				);
			},
			{
				protocol = "udp";
				ports = [ 5000 ];
				endpoint_groups = ($groups
				);
			}
		);
	}
);
CONF
}

# ---------------------------------------------------------------- tests

ag_fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# A line run.sh repeats in its summary (measured figures).
ag_info() { echo "INFO $*"; }

# ag_test_begin: root, built tree, native XDP, own tag (AG_TAG from run.sh, or
# t<pid>), cleanup on every exit path, leftovers of the same tag removed.
ag_test_begin() {
	ag_require_root
	ag_set_tag "${AG_TAG:-t$$}"
	lab_trap
	lab_down
	ag_require_build "$AG_ANYGATED"
	ag_require_native_xdp
	# Only the bulk test needs a big blob.
	AG_BULK_MB=${AG_BULK_MB:-1}
}

# ag_lab_start [GROUP...]: the lab, a config for it (see ag_config_write), anygated.
ag_lab_start() {
	lab_up || ag_fail "could not build the lab"
	ag_config_write "$AG_RUN/test.conf" "$@"
	agd_start "$AG_RUN/test.conf" || ag_fail "anygated did not come up"
}

# valid_backend NAME: a backend name that exists in this lab.
# (No pipe into grep -q: under pipefail the writer's SIGPIPE would fail it.)
valid_backend() {
	local all
	all=" $(backend_names | tr '\n' ' ')"
	[[ -n $1 && $all == *" $1 "* ]]
}

# The DPDK fast path: AG_FASTPATH=dpdk runs a test through anygate-dp instead
# of the XDP program (tests/integration/lib-dpdk.sh replaces ag_test_begin and
# ag_lab_start).
if [ "${AG_FASTPATH:-xdp}" = dpdk ]; then
	# shellcheck source=lib-dpdk.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib-dpdk.sh"
fi

# ---------------------------------------------------------------- floods

AG_FLOOD=$AG_BUILD/tests/integration/ag-flood
# shellcheck disable=SC2034 # used by the tests that source this file
AG_NEWCONN=$AG_BUILD/tests/integration/ag-newconn
# Spoofed sources: shared address space, routed nowhere in the lab.
AG_FLOOD_CIDR=${AG_FLOOD_CIDR:-100.64.0.0/10}

# lab_mac NS IF: the MAC address of interface IF in lab namespace NS.
lab_mac() { ip -n "$(ns "$1")" -br link show "$2" | awk '{ print $3 }'; }

# ag_flood_sink: on c0, drop what the edge sends to the spoofed sources (SYN
# challenges, backends' answers): on the internet it goes to those hosts, not to
# the legitimate client, whose namespace would otherwise spend its CPU on it.
# xdp_sink.bpf.c knows the default AG_FLOOD_CIDR only.
ag_flood_sink() {
	[ "$AG_FLOOD_CIDR" = 100.64.0.0/10 ] || {
		ag_log "xdp_sink drops 100.64.0.0/10 only, not AG_FLOOD_CIDR=$AG_FLOOD_CIDR"
		return 1
	}
	ip -n "$(ns client)" link show c0 | grep -q 'prog/xdp' && return 0
	ip -n "$(ns client)" link set dev c0 xdpdrv obj "$AG_BUILD/tests/integration/xdp_sink.bpf.o" sec xdp
}

# ag_flood MODE PORT SECONDS [OPTION...]: ag-flood from the client's namespace out of
# c0 to the VIP (MODE syn or udp, sources random in AG_FLOOD_CIDR), at its highest
# rate unless OPTION says --rate; ag-flood's output on stdout.
ag_flood() {
	local mode=$1 port=$2 secs=$3
	shift 3
	ag_flood_sink || return 1
	nsx client "$AG_FLOOD" --dev c0 --dst-mac "$(lab_mac edge e0)" --dst "$AG_VIP" \
		--port "$port" --mode "$mode" --src-cidr "$AG_FLOOD_CIDR" --seconds "$secs" "$@"
}

# ag_kv FILE KEY: KEY's value on the last "key=value ..." line of FILE that has it
# (ag-flood's "flood ..." and ag-newconn's "newconn ..." lines).
ag_kv() { sed -n "s/^.* $2=\([^ ]*\).*$/\1/p" "$1" | tail -n 1; }

# ag_reason_count NAME: packets the fast path counted under reason NAME (0 if none).
ag_reason_count() {
	"$AG_BUILD/controlplane/anygatectl" -s "$AG_RUN/anygated.sock" --json stats |
		python3 -c 'import json, sys
print(sum(r["packets"] for r in json.load(sys.stdin)["reasons"] if r["reason"] == sys.argv[1]))' "$1"
}

# ag_reasons_nonzero: every fast-path reason with packets, "name=packets ..." on one line.
ag_reasons_nonzero() {
	"$AG_BUILD/controlplane/anygatectl" -s "$AG_RUN/anygated.sock" --json stats |
		python3 -c 'import json, sys
print(" ".join("%s=%d" % (r["reason"], r["packets"]) for r in json.load(sys.stdin)["reasons"] if r["packets"]))'
}

# ag_established N PORT: N or more established TCP connections from the client to VIP:PORT.
ag_established() {
	[ "$(nsx client ss -Htn state established dst "$AG_VIP" dport = ":$2" | wc -l)" -ge "$1" ]
}

# ag_backends_down_logged: anygated's log lines that marked a backend down (none: status 1).
ag_backends_down_logged() { grep -E 'backend [0-9]+ \(.*\) down:' "$AG_AGD_LOG"; }

# ag_all_backends_up: anygated has every backend up (anygatectl endpoints).
ag_all_backends_up() {
	"$AG_BUILD/controlplane/anygatectl" -s "$AG_RUN/anygated.sock" --json endpoints |
		python3 -c 'import json, sys
sys.exit(any(e["health"] != "up" for e in json.load(sys.stdin)))'
}
