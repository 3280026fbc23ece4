#!/usr/bin/env bash
# anygate-dp's exception path under a flood, and ARP that nobody asked for.
# 1. Junk floods the client link (ag-flood, 200k UDP packets/s from random
#    sources) for 10 s to a VIP port no listener takes, then for 10 s to the
#    edge's own address (the kernel's: the exception path). During each, the
#    client forgets the edge's MAC five times and connects to the VIP: every
#    ARP is answered (ARP has its own ring, drained first) and every
#    connection is forwarded. Afterwards: no ARP was dropped (dp_arp_dropped
#    0) and the token bucket refused the excess of the second flood
#    (dp_slow_rate_dropped > 0) instead of letting it queue.
# 2. Each region router's link then carries forged ARP: replies claiming its
#    next-hop address for a MAC nobody has, and a gratuitous request doing the
#    same; and replies for an address anygate-dp never asked about. Nothing
#    is redirected (connections keep reaching their backends), the replies
#    are counted (dp_arp_unsolicited), the contradicted entries re-verified by
#    their own MAC (dp_arp_reverify), and no neighbour entry was created.
set -uo pipefail
export AG_FASTPATH=dpdk
# Publishes with ag-shm-publish: the segment's counters are read with it.
export AG_DP_PUBLISHER=tool
. "$(dirname "$0")/lib.sh"
ag_test_begin
ag_require_build "$AG_FLOOD"
lab_up || ag_fail "could not build the lab"
conf=$AG_RUN/test.conf
ag_config_write "$conf"
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
dp_config "$conf" && dp_handover && dp_publish "$conf" && dp_start "$conf" ||
	ag_fail "anygate-dp did not come up"

stat() { # NAME: a counter from the segment (0 when absent)
	"$AG_SHM_PUBLISH" "$conf" --stats 2>/dev/null | awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}
# One connection to the VIP, answered by a backend (its name).
connect_vip() {
	nsx client curl -s --connect-timeout 3 --max-time 6 "http://$AG_VIP/" | grep -q '^r[0-9]b[0-9]'
}
connect_vip || ag_fail "no answer on the VIP before any flood"

# arp_and_connect LABEL: five times, the client forgets the edge's MAC and connects.
arp_and_connect() {
	local ok=0
	for _ in 1 2 3 4 5; do
		ip -n "$(ns client)" neigh flush dev c0
		connect_vip && ok=$((ok + 1))
	done
	ag_info "$1: $ok of 5 connections (each after a fresh ARP) during the flood"
	[ "$ok" -eq 5 ] || ag_fail "$1: only $ok of 5 connections during the flood"
}

# flood_to LABEL DST PORT: 10 s of junk from the client to DST:PORT, connecting meanwhile.
flood_to() {
	local label=$1 dst=$2 port=$3 pid rx0
	ag_flood_sink || ag_fail "could not drop the edge's answers to the spoofed sources"
	nsx client "$AG_FLOOD" --dev c0 --dst-mac "$(lab_mac edge e0)" --dst "$dst" \
		--port "$port" --mode udp --src-cidr "$AG_FLOOD_CIDR" --seconds 10 --rate 200000 \
		>"$AG_RUN/flood-$label.out" 2>&1 &
	pid=$!
	rx0=$(stat dp_rx_packets)
	flooding() { [ "$(stat dp_rx_packets)" -gt $((rx0 + 100000)) ]; }
	wait_for 10 "the $label flood reaching anygate-dp" flooding ||
		ag_fail "$label: the flood does not reach anygate-dp"
	arp_and_connect "$label"
	# The connections happened inside the flood: it is still running.
	kill -0 "$pid" 2>/dev/null || ag_fail "$label: the flood ended before the connections did"
	wait "$pid" || ag_fail "ag-flood failed: $(tr '\n' ' ' <"$AG_RUN/flood-$label.out")"
	ag_info "$label: flood $(ag_kv "$AG_RUN/flood-$label.out" pps) pps"
}

arp_replies0=$(stat dp_arp_replies_sent)
flood_to vip "$AG_VIP" 9
flood_to edge 10.0.0.1 9
ag_info "after the floods: arp_replies_sent +$(($(stat dp_arp_replies_sent) - arp_replies0)), arp_dropped $(stat dp_arp_dropped), slow_queued $(stat dp_slow_queued), slow_dropped $(stat dp_slow_dropped), slow_rate_dropped $(stat dp_slow_rate_dropped), to_kernel $(stat dp_to_kernel)"
[ "$(stat dp_arp_dropped)" -eq 0 ] || ag_fail "ARP was dropped during the flood"
[ "$(stat dp_slow_rate_dropped)" -gt 0 ] ||
	ag_fail "the flood to the edge's address met no rate limit (dp_slow_rate_dropped 0)"

# forge N FIELDS...: from region N's router, on the next hop's link, ARP to the edge's e<N>.
BOGUS=02:00:00:00:00:66
forge() {
	local n=$1 op=$2 psrc=$3 pdst=$4
	nsx "r$n" python3 - "$(lab_mac edge "e$n")" "$BOGUS" "$op" "$psrc" "$pdst" <<'PY'
import socket, struct, sys
edge, bogus, op, psrc, pdst = sys.argv[1:]
mac = lambda s: bytes.fromhex(s.replace(":", ""))
reply = op == "is-at"
frame = ((mac(edge) if reply else b"\xff" * 6) + mac(bogus) + b"\x08\x06" +
         struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2 if reply else 1) +
         mac(bogus) + socket.inet_aton(psrc) +
         (mac(edge) if reply else bytes(6)) + socket.inet_aton(pdst))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("w0", 0))
for _ in range(2):
    s.send(frame.ljust(60, b"\0"))
PY
}
unsol0=$(stat dp_arp_unsolicited)
reverify0=$(stat dp_arp_reverify)
neigh0=$("$AG_SHM_PUBLISH" "$conf" --stats 2>/dev/null | awk '$1 == "neighbours" { print $2 }')
for n in 1 2 3; do
	# A reply nobody asked for, claiming the next hop; then a gratuitous request claiming it.
	forge "$n" is-at "10.$n.0.2" "10.$n.0.1" || ag_fail "could not send ARP from r$n"
	forge "$n" who-has "10.$n.0.2" "10.$n.0.2" || ag_fail "could not send ARP from r$n"
	# A reply for an address anygate-dp never asked about.
	forge "$n" is-at "10.$n.0.9" "10.$n.0.1" || ag_fail "could not send ARP from r$n"
done
unsolicited_counted() { [ "$(stat dp_arp_unsolicited)" -ge $((unsol0 + 3)) ]; }
wait_for 10 "the forged replies counted" unsolicited_counted ||
	ag_fail "forged replies not counted: dp_arp_unsolicited $(stat dp_arp_unsolicited) (was $unsol0)"
ok=0
for _ in $(seq 1 10); do connect_vip && ok=$((ok + 1)); done
neigh1=$("$AG_SHM_PUBLISH" "$conf" --stats 2>/dev/null | awk '$1 == "neighbours" { print $2 }')
ag_info "after forged ARP: $ok of 10 connections; arp_unsolicited +$(($(stat dp_arp_unsolicited) - unsol0)), arp_reverify +$(($(stat dp_arp_reverify) - reverify0)), neighbours $neigh0 -> $neigh1"
[ "$ok" -eq 10 ] || ag_fail "forged ARP redirected traffic: $ok of 10 connections reached a backend"
[ "$(stat dp_arp_reverify)" -gt "$reverify0" ] ||
	ag_fail "no entry was re-verified after ARP contradicting it (dp_arp_reverify)"
if [ -z "$neigh0" ] || [ "$neigh1" != "$neigh0" ]; then
	ag_fail "forged ARP changed the number of neighbours ($neigh0 -> $neigh1)"
fi
echo "PASS: ARP answered and traffic forwarded through junk floods; forged ARP changed nothing"
