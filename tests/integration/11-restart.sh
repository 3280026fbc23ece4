#!/usr/bin/env bash
# Restart without losing flows. A 200 MB TCP transfer through the VIP runs while
# anygated (started with --keep-fastpath-on-exit) is stopped and started again
# with the same config: the fast path keeps forwarding while no anygated runs,
# the new anygated adopts the pinned maps and links (same links, new program),
# no flow is created anew, no segment is lost across the restart, and
# the transfer completes with the right sha256 and no reset. A plain SIGTERM
# then detaches everything. Second part: SIGUSR2 keeps the fast path for one
# exit, a config whose table sizes differ is refused naming the map, and
# `anygated --detach` removes what was kept.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export AG_BULK_MB=200
ag_test_begin
lab_up || ag_fail "could not build the lab"
conf=$AG_RUN/test.conf
ag_config_write "$conf"
sed -i 's|metrics = "";|metrics = "127.0.0.1:9464";|' "$conf"
grep -q 'metrics = "127.0.0.1:9464";' "$conf" || ag_fail "could not enable metrics in $conf"
agd_start "$conf" --keep-fastpath-on-exit || ag_fail "anygated did not come up"

TOTAL=$((AG_BULK_MB * 1048576))
FIRST=$((64 * 1048576))		# read at full speed up to here
CAP=$((180 * 1048576))		# then trickle, never past this until the gate opens
recv=$AG_RUN/recv.bin
gate=$AG_RUN/gate

scrape() { nsx edge curl -s --max-time 5 http://127.0.0.1:9464/metrics; }
# metric NAME [LABEL-SUBSTRING]: the value of the first matching sample.
metric() {
	scrape | awk -v n="$1" -v l="${2:-}" '
		$1 == n || (index($1, n "{") == 1 && index($1, l) > 0) { print $2; exit }'
}
# Counters of the TCP stack of one namespace (per netns /proc/net/snmp).
tcp_stat() {
	# shellcheck disable=SC2016 # an awk program: awk expands $i, not the shell
	nsx "$1" awk -v f="$2" '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 }
		else print $c[f] }' /proc/net/snmp
}
sum_backends() {
	local b s=0
	for b in $(backend_names); do s=$((s + $(tcp_stat "$b" "$1"))); done
	echo $s
}
link_field() { # IFACE FIELD: "id" or "prog_id" of the pinned link
	bpftool -j link show pinned "$AG_BPFFS/link_$1" |
		python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
# sock_field NS FIELD: a field of the one established TCP socket of the bulk
# transfer in NS (ss -i: "retrans:cur/total", "dsack_dups:n", "rcv_ooopack:n"),
# 0 when ss leaves it out (it prints only non-zero ones).
sock_field() {
	nsx "$1" ss -Htin state established '( sport = :8001 or dport = :8001 )' |
		tr '[:blank:]' '\n' | awk -F: -v k="$2" '$1 == k { v = $2; sub(/.*\//, "", v); print v; f = 1 }
			END { if (!f) print 0 }'
}
# Segments the sender retransmitted that the receiver did not already have
# (a retransmit the receiver reports as a duplicate, by DSACK, was spurious:
# a tail-loss probe fired by a slow ACK, not a lost packet), plus segments that
# reached the client out of order (a hole). Zero when nothing was lost.
lost_segments() {
	echo $(($(sock_field "$srv" retrans) - $(sock_field "$srv" dsack_dups) + $(sock_field client rcv_ooopack)))
}
# anygate's pins only: maps (ag_*) and links (link_*). iproute2 run elsewhere on
# the machine may add its ip/tc/xdp directories to any bpffs it finds.
ag_pins() { bpffs_pins | grep -E '^(ag_|link_)'; }
# Every map of the program is pinned, the flow-state ones of ABI 3 among them.
maps=$(ag_pins | grep -c '^ag_')
for m in ag_flows ag_nat_rev ag_cpu ag_syn_auth; do
	ag_pins | grep -qx "$m" || ag_fail "map $m is not pinned: $(ag_pins | tr '\n' ' ')"
done
size_of() { stat -c %s "$recv" 2>/dev/null || echo 0; }
size_at_least() { [ "$(size_of)" -ge "$1" ]; }

cat >"$AG_RUN/slowcli.py" <<'PY'
# Read everything from HOST:PORT into OUT. Full speed up to FIRST bytes, then a
# trickle (data keeps flowing) that never goes past CAP until GATE exists.
import os, socket, sys, time
host, port, out, gate, first, cap = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
s = socket.create_connection((host, port), timeout=5)
s.settimeout(30)	# 30 s without a byte: the transfer is dead
total = 0
try:
    with open(out, "wb", buffering=0) as f:
        while True:
            want = 1 << 20
            if total >= first and not os.path.exists(gate):
                if total >= cap:
                    time.sleep(0.01)
                    continue
                want = min(16384, cap - total)
                time.sleep(0.005)
            b = s.recv(want)
            if not b:
                break
            f.write(b)
            total += len(b)
except ConnectionResetError:
    print("RESET after %d bytes" % total)
    sys.exit(3)
except OSError as e:
    print("ERROR after %d bytes: %s" % (total, e))
    sys.exit(4)
print("done %d" % total)
PY

rm -f "$gate"
nsx client python3 "$AG_RUN/slowcli.py" "$AG_VIP" 8001 "$recv" "$gate" $FIRST $CAP \
	>"$AG_RUN/slowcli.out" 2>&1 &
cli=$!
wait_for 60 "the first 64 MB through the VIP" size_at_least $FIRST ||
	ag_fail "transfer did not reach 64 MB ($(size_of) bytes; $(cat "$AG_RUN/slowcli.out"))"

# Counters from here on: the reader trickles, the window has closed down.
wait_for 30 "the trickle phase" size_at_least $((FIRST + 1048576)) ||
	ag_fail "transfer stalled at $(size_of) bytes"
flows_before=$(metric anygate_flow_table_entries)
newf_before=$(metric anygate_listener_new_flows_total 'listener="tcp:80"')
active_before=$(scrape | awk '/^anygate_backend_active_flows\{.*listener="tcp:80"/ { s += $2 } END { print s + 0 }')
link_before=$(link_field e0 id)
prog_before=$(link_field e0 prog_id)
# The client namespace holds only this connection (the backends' counters also
# count the health probes, which close with a reset on purpose).
resets_before=$(tcp_stat client EstabResets)
rst_out_before=$(sum_backends OutRsts)
srv=""
for b in $(backend_names); do
	[ -n "$(nsx "$b" ss -Htn state established '( sport = :8001 )')" ] && srv=$b
done
[ -n "$srv" ] || ag_fail "no backend holds the bulk connection"
lost_before=$(lost_segments)
retrans_before=$(sock_field "$srv" retrans)
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
[ -n "$flows_before" ] && [ "$flows_before" -ge 1 ] || ag_fail "flow table empty during the transfer ($flows_before)"
[ "$active_before" -ge 1 ] || ag_fail "no active flow on listener tcp:80 during the transfer"
ag_info "before restart: $(size_of) bytes received, $flows_before flows, tcp:80 new flows $newf_before, link $link_before prog $prog_before"

# --- stop, keeping the fast path
agd_stop
[ "$AGD_STATUS" = 0 ] || ag_fail "anygated (keep mode) exited with status $AGD_STATUS"
grep -q 'keeping the fast path: maps stay pinned' "$AG_AGD_LOG" || ag_fail "no 'keeping the fast path' in the log"
cp "$AG_AGD_LOG" "$AG_RUN/anygated.1.log"
attached=$(edge_xdp_ifaces | tr '\n' ' ')
[ "$attached" = "e0 e1 e2 e3 " ] || ag_fail "after keep-mode exit XDP is on '$attached', expected e0 e1 e2 e3"
pins=$(ag_pins | wc -l)
[ "$pins" -eq $((maps + 4)) ] || ag_fail "after keep-mode exit $pins pins, expected $maps maps + 4 links: $(ag_pins | tr '\n' ' ')"
# Forwarding goes on with no anygated at all.
mark=$(size_of)
wait_for 30 "1 MB more with anygated stopped" size_at_least $((mark + 1048576)) ||
	ag_fail "transfer stalled while anygated was stopped (at $(size_of) bytes)"
ag_info "anygated stopped: XDP still on $attached; $pins pins; transfer moved $mark -> $(size_of) bytes"

# --- start again, same config: adopt
agd_start "$conf" --keep-fastpath-on-exit || ag_fail "anygated did not come up again"
grep -q "adopted $maps pinned maps" "$AG_AGD_LOG" || ag_fail "new anygated did not adopt the $maps pinned maps"
n=$(grep -c 'adopted pinned link' "$AG_AGD_LOG")
[ "$n" -eq 4 ] || ag_fail "new anygated adopted $n pinned links, expected 4"
link_after=$(link_field e0 id)
prog_after=$(link_field e0 prog_id)
[ "$link_after" = "$link_before" ] || ag_fail "link of e0 changed ($link_before -> $link_after): detached and attached again"
[ "$prog_after" != "$prog_before" ] || ag_fail "program of e0 not replaced (prog $prog_after)"
mark=$(size_of)
wait_for 30 "1 MB more after the restart" size_at_least $((mark + 1048576)) ||
	ag_fail "transfer stalled after the restart (at $(size_of) bytes)"
kill -0 $cli 2>/dev/null || ag_fail "client ended early: $(cat "$AG_RUN/slowcli.out")"
flows_after=$(metric anygate_flow_table_entries)
newf_after=$(metric anygate_listener_new_flows_total 'listener="tcp:80"')
retrans_after=$(sock_field "$srv" retrans)
lost_after=$(lost_segments)
ag_info "after restart: link $link_after kept, prog $prog_before -> $prog_after; $flows_after flows, tcp:80 new flows $newf_after; across the restart $srv retransmitted $((retrans_after - retrans_before)) segments, lost $((lost_after - lost_before))"
[ "$newf_after" = "$newf_before" ] || ag_fail "tcp:80 new flows $newf_before -> $newf_after: a flow was created anew across the restart"
[ "$flows_after" -ge "$flows_before" ] || ag_fail "flow table shrank across the restart: $flows_before -> $flows_after"
[ "$lost_after" -eq "$lost_before" ] || ag_fail "$((lost_after - lost_before)) segments lost across the restart ($srv: $(nsx "$srv" ss -Htin state established '( sport = :8001 )' | tr '\n' ' '))"

# --- let the transfer finish
touch "$gate"
deadline=$(($(date +%s) + 120))
while kill -0 $cli 2>/dev/null; do
	(($(date +%s) < deadline)) || { kill $cli; ag_fail "transfer did not finish within 120 s ($(size_of) bytes)"; }
	sleep 0.2
done
wait $cli
rc=$?
[ $rc -eq 0 ] || ag_fail "client failed (exit $rc): $(cat "$AG_RUN/slowcli.out")"
got=$(size_of)
sum_want=$(sha256sum <"$AG_RUN/bulk.bin" | cut -d' ' -f1)
sum_got=$(sha256sum <"$recv" | cut -d' ' -f1)
resets_after=$(tcp_stat client EstabResets)
rst_out_after=$(sum_backends OutRsts)
ag_info "transfer: $got of $TOTAL bytes, sha256 ${sum_got:0:16}... (want ${sum_want:0:16}...), client resets $((resets_after - resets_before)), backend RSTs sent $((rst_out_after - rst_out_before))"
[ "$got" -eq "$TOTAL" ] || ag_fail "received $got bytes, sent $TOTAL"
[ "$sum_got" = "$sum_want" ] || ag_fail "sha256 mismatch: got $sum_got, want $sum_want"
[ "$resets_after" -eq "$resets_before" ] || ag_fail "$((resets_after - resets_before)) established client connections reset"
[ "$rst_out_after" -eq "$rst_out_before" ] || ag_fail "backends sent $((rst_out_after - rst_out_before)) RSTs"
rm -f "$recv"

# --- a third anygated without the keep option adopts too, and SIGTERM removes everything
agd_stop
[ "$AGD_STATUS" = 0 ] || ag_fail "anygated (keep mode) exited with status $AGD_STATUS"
agd_start "$conf" || ag_fail "anygated (no keep option) did not come up"
grep -q "adopted $maps pinned maps" "$AG_AGD_LOG" || ag_fail "third anygated did not adopt the maps"
agd_stop
[ "$AGD_STATUS" = 0 ] || ag_fail "anygated exited with status $AGD_STATUS after SIGTERM"
left=$(edge_xdp_ifaces | tr '\n' ' ')
[ -z "$left" ] || ag_fail "after SIGTERM XDP still attached to: $left"
left=$(ag_pins | tr '\n' ' ')
[ -z "$left" ] || ag_fail "after SIGTERM pins left: $left"
ag_info "SIGTERM after adoption: XDP detached from e0-e3, no pins left"

# --- SIGUSR2 keeps for one exit; incompatible sizes are refused; --detach cleans up
agd_start "$conf" || ag_fail "anygated did not come up (part 2)"
pid=$(cat "$AG_AGD_PIDFILE")
kill -USR2 "$pid"
wait_for 15 "anygated to exit on SIGUSR2" bash -c "! kill -0 $pid 2>/dev/null || [ \"\$(ps -o stat= -p $pid | cut -c1)\" = Z ]" ||
	ag_fail "anygated did not exit on SIGUSR2"
wait "$pid"
rc=$?
rm -f "$AG_AGD_PIDFILE"
[ $rc -eq 0 ] || ag_fail "anygated exited with $rc on SIGUSR2"
attached=$(edge_xdp_ifaces | tr '\n' ' ')
[ "$attached" = "e0 e1 e2 e3 " ] || ag_fail "after SIGUSR2 XDP is on '$attached', expected e0 e1 e2 e3"
[ "$(ag_pins | wc -l)" -eq $((maps + 4)) ] || ag_fail "after SIGUSR2: $(ag_pins | wc -l) pins, expected $((maps + 4))"
out=$(nsx client curl -s --max-time 5 "http://$AG_VIP/") || ag_fail "no answer through the kept fast path"
valid_backend "$out" || ag_fail "kept fast path: reply '$out' is no backend's name"

sed 's/max_flows = 65536;/max_flows = 131072;/' "$conf" >"$AG_RUN/bigger.conf"
if agd_start "$AG_RUN/bigger.conf" 2>/dev/null; then
	agd_stop
	ag_fail "anygated adopted pins of another max_flows"
fi
grep -q "pinned map $AG_BPFFS/ag_flows: max_entries 65536, this anygated needs 131072 (edge.max_flows changed?)" "$AG_AGD_LOG" ||
	{ cat "$AG_AGD_LOG" >&2; ag_fail "no clear error naming ag_flows and max_entries"; }
grep -q 'anygated --detach' "$AG_AGD_LOG" || ag_fail "the error does not say how to remove the pins"
attached=$(edge_xdp_ifaces | tr '\n' ' ')
[ "$attached" = "e0 e1 e2 e3 " ] || ag_fail "a refused start changed the running fast path: XDP on '$attached'"

nsx edge "$AG_ANYGATED" --detach -c "$conf" >"$AG_RUN/detach.log" 2>&1 ||
	{ cat "$AG_RUN/detach.log" >&2; ag_fail "anygated --detach failed"; }
left=$(edge_xdp_ifaces | tr '\n' ' ')
[ -z "$left" ] || ag_fail "after --detach XDP still attached to: $left"
left=$(ag_pins | tr '\n' ' ')
[ -z "$left" ] || ag_fail "after --detach pins left: $left"
ag_info "SIGUSR2 kept the fast path (answering), bigger max_flows refused naming ag_flows, --detach: $(tail -n 1 "$AG_RUN/detach.log" | sed 's/.*info: //')"
echo "PASS: 200 MB transfer survived an anygated restart (same link, new program, no new flow, no segment lost, no reset, sha256 ok); SIGTERM, SIGUSR2 and --detach behave"
