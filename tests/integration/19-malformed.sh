#!/usr/bin/env bash
# Malformed frames into the client link (issue 10's ingress hygiene). The
# corpus of ag-badframes (other-host and group MACs, VLAN stacks, bad IPv4
# checksums, martian and own sources, malformed and source-route options,
# port 0, invalid TCP flag sets, TTL 0/1, non-TCP/UDP and unserved ports on
# the VIP, the NAT address from the client side, fragments, truncation at every
# header boundary, broken IHL/version/lengths) is sent group by group from the
# client's namespace out of c0, with the group "valid" (SYNs and datagrams to
# the VIP's listeners, some with well-formed IP options) last. A watcher on
# every region router's w0 and every backend's eth0 records each corpus frame
# that arrives (by its marker) and every frame no healthy path carries.
# Required: no malformed frame reaches a region; every valid frame reaches a
# backend (and each valid datagram is answered); the fast path counts every
# frame it does not forward: per group and in all, the reason counters' deltas
# sum to the frames sent minus those forwarded; groups with one clear reason
# are counted under it (e.g. ip-checksum under drop_ipv4_checksum).
# So that every counted packet is a corpus frame, the lab is quiet first:
# anygated's health probes take a management link to each region (not a fast
# path port), and every neighbour on the fast path's links is static.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
FP=${AG_FASTPATH:-xdp}
AG_BADFRAMES=$AG_BUILD/tests/integration/ag-badframes
ag_require_build "$AG_BADFRAMES"
export AG_DP_STATIC_NEIGH=1
# shellcheck disable=SC2119 # no group given on purpose: the default lab config
ag_lab_start
D=$AG_RUN/malformed
mkdir -p "$D"

# The edge's interface towards region N as the edge's kernel sees it.
edge_kif() { if [ "$FP" = dpdk ]; then echo "agdp$1"; else echo "e$1"; fi; }

# Health probes over a management link per region (10.N.2.0/24; a rule sends
# what the edge itself originates there), static neighbours on every link the
# fast path serves: after this, only the test's frames cross the fast path.
quiet_lab() {
	local n e0mac emac
	e0mac=$(lab_mac edge e0)
	ip -n "$(ns client)" neigh replace 10.0.0.1 lladdr "$e0mac" dev c0 nud permanent &&
		ip -n "$(ns edge)" neigh replace 10.0.0.2 lladdr "$(lab_mac client c0)" \
			dev "$(edge_kif 0)" nud permanent || return 1
	for n in 1 2 3; do
		emac=$(lab_mac edge "e$n")
		lab_link edge "m$n" "r$n" m0 && lab_addr edge "m$n" "10.$n.2.1/24" &&
			lab_addr "r$n" m0 "10.$n.2.2/24" || return 1
		ip -n "$(ns edge)" route add "10.$n.1.0/24" via "10.$n.2.2" table 100 || return 1
		ip -n "$(ns "r$n")" neigh replace "10.$n.0.1" lladdr "$emac" dev w0 nud permanent &&
			ip -n "$(ns edge)" neigh replace "10.$n.0.2" lladdr "$(lab_mac "r$n" w0)" \
				dev "$(edge_kif "$n")" nud permanent || return 1
	done
	ip -n "$(ns edge)" rule add iif lo lookup 100 pref 100
}

# reasons FILE: every fast-path reason and its packets, "name packets" a line.
reasons() {
	"$AG_BUILD/controlplane/anygatectl" -s "$AG_RUN/anygated.sock" --json stats |
		python3 -c 'import json, sys
for r in json.load(sys.stdin)["reasons"]: print(r["reason"], r["packets"])' >"$1.new" &&
		mv "$1.new" "$1"
}

# delta A B: "name delta" for each reason that moved from snapshot A to B.
delta() {
	awk 'NR == FNR { a[$1] = $2; next } $2 != a[$1] { print $1, $2 - a[$1] }' "$1" "$2"
}

# No reason counter moved for 2 s (called by wait_for: state in QUIET_*).
quiet() {
	reasons "$D/q" || return 1
	local now sum
	now=$(date +%s%N)
	sum=$(awk '{ s += $2 } END { print s + 0 }' "$D/q")
	if [ "$sum" != "${QUIET_SUM:-}" ]; then
		QUIET_SUM=$sum
		QUIET_SINCE=$now
		return 1
	fi
	((now - QUIET_SINCE >= 2000000000))
}

# Watchers: each router's w0 (what the edge sends a region) and each backend's eth0.
WATCH_PIDS=()
start_watchers() {
	local w
	for w in r1 r2 r3 $(backend_names); do
		local dev=eth0
		[[ $w == r? ]] && dev=w0
		ip netns exec "$(ns "$w")" "$AG_BADFRAMES" watch --dev "$dev" --name "$w" \
			>"$D/watch-$w" 2>&1 &
		WATCH_PIDS+=($!)
	done
	for w in r1 r2 r3 $(backend_names); do
		wait_for 10 "watcher in $w" grep -q '^ready' "$D/watch-$w" || return 1
	done
}

stop_watchers() {
	local p
	for p in "${WATCH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${WATCH_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	WATCH_PIDS=()
}

# seen GROUP [WHERE-REGEX]: distinct frames of GROUP the watchers saw (default: anywhere).
seen() {
	cat "$D"/watch-* | awk -v g="$1" -v w="${2:-.}" '$1 == "hit" && $4 == g && $2 ~ w { s[$3] = 1 }
		END { print length(s) }'
}

# The reason each frame of GROUP must be counted under ("" = not asserted:
# truncation and broken headers, where the first check to fail decides).
expected_reason() {
	case $1 in
	l2-other-host) echo drop_l2_other_host ;;
	l2-group) [ "$FP" = dpdk ] && echo drop_l2_multicast || echo pass_l2_multicast ;;
	vlan) [ "$FP" = dpdk ] && echo drop_vlan_tagged || echo pass_vlan_tagged ;;
	ip-checksum) echo drop_ipv4_checksum ;;
	martian) echo drop_martian_source ;;
	source-ours) echo drop_source_is_ours ;;
	ip-options) echo drop_ipv4_options ;;
	source-route) echo drop_source_route ;;
	port-zero) echo drop_port_zero ;;
	tcp-flags) echo drop_tcp_bad_flags ;;
	ttl) echo drop_ttl_expired ;;
	vip-not-tcp-udp) echo drop_vip_not_tcp_udp ;;
	vip-no-listener) echo drop_vip_no_listener ;;
	wrong-role) echo drop_wrong_interface_role ;;
	fragment) echo drop_vip_fragment ;;
	esac
}

# settled GROUP SENT: every frame of the group counted or seen in a region.
settled() {
	reasons "$D/after-$1" || return 1
	local counted
	counted=$(delta "$D/before-$1" "$D/after-$1" | awk '{ s += $2 } END { print s + 0 }')
	[ $((counted + $(seen "$1"))) -ge "$2" ]
}

# send_group GROUP: send it, wait (bounded) until it is accounted for, record
# "group sent forwarded counted reasons..." in $D/table.
send_group() {
	local g=$1 sent fwd counted extra=()
	[ "$g" = valid ] && extra=(--reply-timeout-ms 15000)
	reasons "$D/before-$g" || ag_fail "anygatectl stats failed"
	nsx client "$AG_BADFRAMES" send --dev c0 --dst-mac "$(lab_mac edge e0)" --client 10.0.0.2 \
		--vip "$AG_VIP" --nat "$AG_NAT_ADDR" --group "$g" "${extra[@]}" >"$D/send-$g" 2>&1 ||
		ag_fail "ag-badframes send $g: $(tail -n 3 "$D/send-$g" | tr '\n' ' ')"
	sent=$(grep -c '^sent ' "$D/send-$g")
	wait_for 20 "group $g counted or forwarded" settled "$g" "$sent" ||
		ag_log "group $g: not every frame counted or forwarded within 20 s"
	reasons "$D/after-$g" || ag_fail "anygatectl stats failed"
	fwd=$(seen "$g")
	counted=$(delta "$D/before-$g" "$D/after-$g" | awk '{ s += $2 } END { print s + 0 }')
	echo "$g $sent $fwd $counted $(delta "$D/before-$g" "$D/after-$g" | tr ' \n' '= ')" >>"$D/table"
}

quiet_lab || ag_fail "could not move the health probes off the fast path"
wait_for 30 "no reason counter moving for 2 s" quiet ||
	ag_fail "the lab is not quiet: reasons still moving: $(ag_reasons_nonzero)"
ag_all_backends_up || wait_for 20 "every backend up over the management links" ag_all_backends_up ||
	ag_fail "backends are not up"
start_watchers || ag_fail "a watcher did not start"
: >"$D/table"
reasons "$D/start" || ag_fail "anygatectl stats failed"
groups=$("$AG_BADFRAMES" list | awk '$2 != "valid" && !s[$2]++ { print $2 }')
for g in $groups valid; do
	send_group "$g"
done
# The valid group last; then every valid frame must have reached a backend.
valid_sent=$(grep -c '^sent ' "$D/send-valid")
valid_arrived() { [ "$(seen valid 'b[0-9]')" -ge "$valid_sent" ]; }
wait_for 20 "every valid frame at a backend" valid_arrived
reasons "$D/end" || ag_fail "anygatectl stats failed"
stop_watchers

# Every figure first, then the requirements.
echo "fast path: $FP; per group (sent, forwarded into a region, counted by reasons):"
printf '  %-16s %5s %5s %7s  %s\n' group sent fwd counted "reasons (delta)"
while read -r g s f c r; do
	printf '  %-16s %5d %5d %7d  %s\n' "$g" "$s" "$f" "$c" "$r"
done <"$D/table"
echo "reason counters, whole run (delta):"
delta "$D/start" "$D/end" | sort -k2,2nr | awk '{ printf "  %-28s %6d\n", $1, $2 }'
total=$(awk '{ s += $2 } END { print s }' "$D/table")
fwd_all=$(awk '{ s += $3 } END { print s }' "$D/table")
counted_all=$(delta "$D/start" "$D/end" | awk '{ s += $2 } END { print s + 0 }')
replies=$(sed -n 's/^badframes .* replies=\([0-9]*\/[0-9]*\).*/\1/p' "$D/send-valid")
ag_info "malformed ($FP): $total frames sent, $fwd_all forwarded into a region (valid: $valid_sent), $counted_all counted by reasons; valid UDP replies $replies"
bad_hits=$(cat "$D"/watch-* | awk '$1 == "hit" && $4 != "valid"' | sort -u)
odd=$(cat "$D"/watch-* | grep '^odd' | sort | uniq -c)

fail=0
complain() {
	echo "FAIL: $*" >&2
	fail=1
}
[ -z "$bad_hits" ] || complain "malformed frames reached a region:"$'\n'"$bad_hits"
[ -z "$odd" ] || complain "frames no healthy path carries reached a region:"$'\n'"$odd"
[ "$(seen valid 'b[0-9]')" -eq "$valid_sent" ] ||
	complain "only $(seen valid 'b[0-9]') of $valid_sent valid frames reached a backend"
[ "${replies%/*}" = "${replies#*/}" ] || complain "valid UDP datagrams answered: $replies"
[ "$counted_all" -eq $((total - fwd_all)) ] ||
	complain "reasons counted $counted_all packets, $((total - fwd_all)) frames were not forwarded"
while read -r g s f c r; do
	[ "$c" -eq $((s - f)) ] || complain "group $g: $s sent, $f forwarded, $c counted ($r)"
	want=$(expected_reason "$g")
	[ -z "$want" ] || [[ " $r " == *" $want=$s "* ]] ||
		complain "group $g: want all $s under $want, got: $r"
done <"$D/table"
[ $fail -eq 0 ] || exit 1
echo PASS
