#!/usr/bin/env bash
# The lab's WAN gives each region its own, real round-trip time from the edge
# (AG_RTT, default 2,20,60 ms): ping and TCP connects from the edge measure it
# through the delay bridges. Every sample is at least the configured RTT (a
# bridge holds each frame its full delay, both ways); the median stays below
# configured + 15 ms (generous for a loaded box); a region configured nearer
# measures nearer. The bridges carry the traffic without a drop, and their
# wan namespaces stay silent (no addresses, no IPv6).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
# shellcheck disable=SC2119 # no group given on purpose: the default lab config
ag_lab_start
lab_rtt_parse

# ping prints 3 significant digits: allow its rounding below the floor.
floor_ok() { awk -v m="$1" -v c="$2" 'BEGIN { exit !(m >= c * 0.995 - 0.0005) }'; }
ceil_ok() { awk -v m="$1" -v c="$2" 'BEGIN { exit !(m < c + 15) }'; }

declare -a ping_ms tcp_ms
summary=""
for ((n = 1; n <= AG_REGIONS; n++)); do
	want=${AG_RTT_MS[n]}
	region=${AG_REGION_NAMES[n - 1]}
	# Resolve the router's MAC first: the first echo would also carry ARP's
	# round trip.
	nsx edge ping -n -c 1 -W 5 "10.$n.0.2" >/dev/null || ag_fail "edge cannot reach router r$n (10.$n.0.2)"
	m=$(edge_rtt $n 5 2>"$AG_RUN/rtt$n.err") || ag_fail "ping r$n: $(cat "$AG_RUN/rtt$n.err")"
	cat "$AG_RUN/rtt$n.err"
	ping_ms[n]=$m
	# shellcheck disable=SC2013 # one line of samples: its words are what we want
	for s in $(sed 's/^rtt r[0-9]*: //' "$AG_RUN/rtt$n.err"); do
		floor_ok "$s" "$want" || ag_fail "$region: a ping took $s ms, less than the configured $want ms"
	done
	ceil_ok "$m" "$want" || ag_fail "$region: median ping $m ms, configured $want ms (limit $want + 15)"

	# A TCP handshake, as anygated's TCP health probes do: curl's connect
	# time to backend r<n>b1, three times.
	t=()
	for i in 1 2 3; do
		c=$(nsx edge curl -s -o /dev/null --connect-timeout 5 --max-time 10 \
			-w '%{time_connect}' "http://10.$n.1.11/") || ag_fail "edge -> 10.$n.1.11:80 failed"
		t+=("$(awk -v s="$c" 'BEGIN { printf "%.3f", s * 1000 }')")
	done
	echo "tcp connect r${n}b1: ${t[*]} ms"
	for s in "${t[@]}"; do
		floor_ok "$s" "$want" || ag_fail "$region: a TCP handshake took $s ms, less than the configured $want ms"
	done
	tcp_ms[n]=$(printf '%s\n' "${t[@]}" | sort -g | sed -n 2p)
	ceil_ok "${tcp_ms[n]}" "$want" ||
		ag_fail "$region: median TCP connect ${tcp_ms[n]} ms, configured $want ms (limit $want + 15)"
	summary+="$region $want ms: ping ${ping_ms[n]} tcp ${tcp_ms[n]}; "
done
ag_info "rtt (configured: measured medians in ms): $summary"

# Nearer configured, nearer measured (with the default 2,20,60: r1 < r2 < r3).
for ((i = 1; i <= AG_REGIONS; i++)); do
	for ((j = 1; j <= AG_REGIONS; j++)); do
		awk -v a="${AG_RTT_MS[i]}" -v b="${AG_RTT_MS[j]}" 'BEGIN { exit !(a < b) }' || continue
		awk -v a="${ping_ms[i]}" -v b="${ping_ms[j]}" 'BEGIN { exit !(a < b) }' ||
			ag_fail "r$i is configured nearer than r$j (${AG_RTT_MS[i]} < ${AG_RTT_MS[j]} ms) but measured ${ping_ms[i]} >= ${ping_ms[j]} ms"
	done
done

# Each bridge forwarded both ways, dropped nothing, and has no address.
for ((n = 1; n <= AG_REGIONS; n++)); do
	st=$(wan_stats $n) || ag_fail "no counters from the delay bridge of r$n"
	echo "$st"
	for d in ab ba; do
		line=$(grep "^dir=$d " <<<"$st") || ag_fail "wan$n: no dir=$d line in: $st"
		tx=$(sed -n 's/.* tx_frames=\([0-9]*\).*/\1/p' <<<"$line")
		[ "${tx:-0}" -ge 10 ] || ag_fail "wan$n $d: only ${tx:-0} frames forwarded"
		drops=$(grep -o 'drop_[a-z]*=[0-9]*' <<<"$line" | grep -v '=0$' | tr '\n' ' ')
		[ -z "$drops" ] || ag_fail "wan$n $d dropped frames: $drops"
	done
	addrs=$(ip -n "$(ns "wan$n")" -o addr show | awk '$2 != "lo"')
	[ -z "$addrs" ] || ag_fail "wan$n has addresses on its bridge ports: $addrs"
done
echo "PASS: $summary"
