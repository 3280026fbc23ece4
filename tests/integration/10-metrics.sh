#!/usr/bin/env bash
# Prometheus metrics scraped with curl while traffic runs, checked against what
# was sent: TCP connections and UDP requests through the VIP (new flows per
# listener and per backend match the flows the clients made and the backends
# that answered), shares add up, health gauges, reason counters (ICMP to the
# edge counts as passed), a backend failure shows in health, probe results and
# failover; the text parses as Prometheus exposition; only GET /metrics works.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
# Debian's python3 (python3-prometheus-client), not whatever python3 is first in PATH.
PY3=/usr/bin/python3
"$PY3" -c 'import prometheus_client' 2>/dev/null ||
	ag_die "python3-prometheus-client is missing (scripts/deps.sh installs it)"
lab_up || ag_fail "could not build the lab"
conf=$AG_RUN/test.conf
ag_config_write "$conf"
sed -i 's|metrics = "";|metrics = "127.0.0.1:9464";|' "$conf"
grep -q 'metrics = "127.0.0.1:9464";' "$conf" || ag_fail "could not enable metrics in $conf"
agd_start "$conf" || ag_fail "anygated did not come up"

URL=http://127.0.0.1:9464/metrics
scrape() { nsx edge curl -s --max-time 5 "$URL" >"$AG_RUN/$1.prom" && [ -s "$AG_RUN/$1.prom" ]; }
# val FILE NAME [LABEL-SUBSTRING...]: value of the one sample of NAME with all substrings.
val() {
	local f=$AG_RUN/$1.prom n=$2
	shift 2
	awk -v n="$n" -v want="$*" '
		BEGIN { k = split(want, w, " ") }
		$1 == n || index($1, n "{") == 1 {
			for (i = 1; i <= k; i++) if (!index($1, w[i])) next
			print $2; found++
		}
		END { if (found != 1) exit 1 }' "$f" || { echo "NOSAMPLE"; return 1; }
}
# sum FILE NAME [LABEL-SUBSTRING...]: sum over the matching samples.
sum() {
	local f=$AG_RUN/$1.prom n=$2
	shift 2
	awk -v n="$n" -v want="$*" '
		BEGIN { k = split(want, w, " ") }
		index($1, n "{") == 1 {
			for (i = 1; i <= k; i++) if (!index($1, w[i])) next
			s += $2
		}
		END { printf "%.9g\n", s }' "$f"
}
L80='listener="tcp:80"'
U5000='listener="udp:5000"'

# --- the text is well-formed exposition, every family has HELP and TYPE
scrape s0 || ag_fail "no answer from $URL"
"$PY3" - "$AG_RUN/s0.prom" <<'PY' || ag_fail "the exposition text does not parse (see above)"
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
fams = list(text_string_to_metric_families(text))
helps = {l.split()[2] for l in text.splitlines() if l.startswith("# HELP ")}
types = {l.split()[2] for l in text.splitlines() if l.startswith("# TYPE ")}
assert helps == types, ("HELP without TYPE or the reverse", helps ^ types)
for l in text.splitlines():
    if not l.startswith("#"):
        name = l.split("{")[0].split(" ")[0]
        base = name
        assert base in types, ("sample without TYPE", name)
print("parsed %d families" % len(fams))
PY
for f in anygate_listener_packets_total anygate_listener_bytes_total \
	anygate_listener_new_flows_total anygate_listener_return_packets_total \
	anygate_listener_return_bytes_total anygate_backend_packets_total \
	anygate_backend_new_flows_total anygate_backend_active_flows anygate_backend_up \
	anygate_backend_rtt_seconds anygate_backend_weight anygate_backend_new_flow_share_ratio \
	anygate_backend_probes_total anygate_dropped_packets_total anygate_passed_packets_total \
	anygate_table_publishes_total anygate_table_last_publish_duration_seconds \
	anygate_config_reloads_total anygate_config_reload_failures_total \
	anygate_failovers_total anygate_last_failover_switch_seconds anygate_build_info \
	anygate_flow_table_entries anygate_handled_packets_total anygate_flow_table_max_entries \
	anygate_flow_table_fill_ratio anygate_flows_expired_total anygate_flows_evicted_total \
	anygate_nat_reverse_entries anygate_nat_orphans_removed_total anygate_flow_sweeps_total \
	anygate_flow_sweep_last_duration_seconds; do
	grep -q "^# TYPE $f " "$AG_RUN/s0.prom" || ag_fail "family $f missing"
done
grep -q '^anygate_build_info{version="[0-9.]*",abi="[0-9]*"} 1$' "$AG_RUN/s0.prom" ||
	ag_fail "build info: $(grep '^anygate_build_info' "$AG_RUN/s0.prom")"
[ "$(val s0 anygate_table_publishes_total)" -ge 1 ] || ag_fail "no table publish counted"
grep -q '^anygate_dropped_packets_total{reason="drop_truncated_eth"} ' "$AG_RUN/s0.prom" ||
	ag_fail "drop reason series missing"

# --- health: every backend up, with an RTT, on both listeners
nb=$(backend_names | wc -l)
rtt_all() {
	scrape h && [ "$(grep -c '^anygate_backend_rtt_seconds{' "$AG_RUN/h.prom")" -eq $((2 * nb)) ]
}
wait_for 15 "an RTT for every backend" rtt_all || ag_fail "not every backend has an RTT series"
[ "$(sum h anygate_backend_up)" = $((2 * nb)) ] || ag_fail "not every backend is up: $(grep '^anygate_backend_up' "$AG_RUN/h.prom")"
for b in $(backend_names); do
	a="address=\"$(backend_addr "$b")\""
	[ "$(val h anygate_backend_weight "$L80" "$a")" = 128 ] || ag_fail "$b: weight not 128"
	ok=$(val h anygate_backend_probes_total "$L80" "$a" 'result="ok"')
	[ "$ok" -ge 1 ] || ag_fail "$b: no ok probe counted"
done
for l in "$L80" "$U5000"; do
	s=$(sum h anygate_backend_new_flow_share_ratio "$l")
	awk -v s="$s" 'BEGIN { exit !(s > 0.999999 && s < 1.000001) }' || ag_fail "$l: shares add up to $s"
done

# --- TCP: N connections through the VIP
N=200
scrape t0 || ag_fail "scrape failed"
nsx client curl -s --connect-timeout 5 --max-time 10 \
	-w '|%{http_code}|%{local_port}\n' "http://$AG_VIP/[1-$N]" >"$AG_RUN/curl.out" 2>/dev/null
[ "$(grep -c '|200|' "$AG_RUN/curl.out")" -eq $N ] || ag_fail "not all $N requests answered"
# A flow is a 5-tuple: a source port reused while its flow lives is no new flow.
D=$(cut -d'|' -f3 "$AG_RUN/curl.out" | sort -u | wc -l)
scrape t1 || ag_fail "scrape failed"
d_new=$(($(val t1 anygate_listener_new_flows_total "$L80") - $(val t0 anygate_listener_new_flows_total "$L80")))
ag_info "tcp: $N connections from $D distinct ports; listener tcp:80 new flows +$d_new"
[ "$d_new" -eq "$D" ] || ag_fail "listener tcp:80 counted $d_new new flows for $D distinct flows"
d_pk=$(($(val t1 anygate_listener_packets_total "$L80") - $(val t0 anygate_listener_packets_total "$L80")))
d_rpk=$(($(val t1 anygate_listener_return_packets_total "$L80") - $(val t0 anygate_listener_return_packets_total "$L80")))
d_rby=$(($(val t1 anygate_listener_return_bytes_total "$L80") - $(val t0 anygate_listener_return_bytes_total "$L80")))
# Per connection at least SYN, ACK, request, FIN-ACK in; SYN-ACK, reply, FIN out.
[ "$d_pk" -ge $((3 * N)) ] || ag_fail "listener tcp:80: only $d_pk packets for $N connections"
[ "$d_rpk" -ge $((2 * N)) ] || ag_fail "listener tcp:80: only $d_rpk return packets for $N connections"
[ "$d_rby" -ge $((N * 60)) ] || ag_fail "listener tcp:80: only $d_rby return bytes"
# Per backend: new flows = distinct flows it answered.
tot=0
for b in $(backend_names); do
	a="address=\"$(backend_addr "$b")\""
	want=$(awk -F'|' -v b="$b" '$1 == b { print $3 }' "$AG_RUN/curl.out" | sort -u | wc -l)
	got=$(($(val t1 anygate_backend_new_flows_total "$L80" "$a") - $(val t0 anygate_backend_new_flows_total "$L80" "$a")))
	[ "$got" -eq "$want" ] || ag_fail "$b: $got new flows counted, it answered $want flows"
	tot=$((tot + got))
done
[ "$tot" -eq "$d_new" ] || ag_fail "backends' new flows add up to $tot, listener says $d_new"
# Active flows (the flow table walk is cached for a second).
active_ok() {
	scrape a && [ "$(sum a anygate_backend_active_flows "$L80")" -ge "$D" ]
}
wait_for 5 "$D active flows on tcp:80" active_ok ||
	ag_fail "active flows on tcp:80: $(sum a anygate_backend_active_flows "$L80"), expected >= $D"
[ "$(val a anygate_flow_table_entries)" -ge "$D" ] || ag_fail "flow table holds fewer than $D entries"
[ "$(val a anygate_flow_table_max_entries)" = 65536 ] || ag_fail "flow table size is not 65536"

# --- UDP: K requests, each from its own source port
K=50
nsx client "$AG_TESTCLI" "$AG_VIP" 5000 $K --sport-base 40000 >"$AG_RUN/udp.out" ||
	ag_fail "UDP requests failed: $(grep -v '^r[0-9]b[0-9]' "$AG_RUN/udp.out" | head -3)"
scrape u1 || ag_fail "scrape failed"
d_udp=$(($(val u1 anygate_listener_new_flows_total "$U5000") - $(val t1 anygate_listener_new_flows_total "$U5000")))
d_udp_ret=$(($(val u1 anygate_listener_return_packets_total "$U5000") - $(val t1 anygate_listener_return_packets_total "$U5000")))
ag_info "udp: $K requests; listener udp:5000 new flows +$d_udp, return packets +$d_udp_ret"
[ "$d_udp" -eq $K ] || ag_fail "listener udp:5000 counted $d_udp new flows for $K requests"
[ "$d_udp_ret" -eq $K ] || ag_fail "listener udp:5000 counted $d_udp_ret replies for $K"

# --- reasons: ICMP to the edge is passed to the kernel, and counted
nsx client ping -c 3 -i 0.2 -W 2 10.0.0.1 >/dev/null || ag_fail "ping to the edge failed"
scrape p1 || ag_fail "scrape failed"
d_icmp=$(($(val p1 anygate_passed_packets_total 'reason="pass_not_tcp_udp"') - $(val u1 anygate_passed_packets_total 'reason="pass_not_tcp_udp"')))
[ "$d_icmp" -ge 3 ] || ag_fail "3 pings counted as $d_icmp pass_not_tcp_udp packets"

# --- a backend fails: health gauge, probe results, failover
a1="address=\"$(backend_addr r1b1)\""
# The only processes in r1b1's namespace are its server's.
pids=$(ip netns pids "$(ns r1b1)")
[ -n "$pids" ] || ag_fail "no server process in $(ns r1b1)"
# shellcheck disable=SC2086 # one pid a line: split on purpose
kill $pids || ag_fail "could not stop r1b1's server"
down() { scrape f && [ "$(val f anygate_backend_up "$L80" "$a1")" = 0 ]; }
wait_for 15 "r1b1 reported down" down || ag_fail "r1b1 still up in metrics after its server stopped"
refused=$(val f anygate_backend_probes_total "$L80" "$a1" 'result="refused"')
[ "$refused" -ge 1 ] || ag_fail "r1b1: no refused probe counted ($refused)"
[ "$(val f anygate_failovers_total)" -ge 1 ] || ag_fail "failover not counted"
sw=$(val f anygate_last_failover_switch_seconds) || ag_fail "no last failover switch time"
[ "$(val f anygate_backend_new_flow_share_ratio "$L80" "$a1")" = 0 ] || ag_fail "r1b1 down but still has a share"
s=$(sum f anygate_backend_new_flow_share_ratio "$L80")
awk -v s="$s" 'BEGIN { exit !(s > 0.999999 && s < 1.000001) }' || ag_fail "tcp:80 shares add up to $s after the failure"
ag_info "r1b1 down: $refused refused probes, failover switch ${sw}s, shares still add up to $s"

# --- the sweeper: the closed TCP flows go tcp_closing_s (10 s) after their last packet
swept() {
	scrape w && [ "$(val w anygate_flow_table_entries)" -lt "$D" ] &&
		[ "$(val w anygate_flows_expired_total 'state="closing"')" -ge 1 ]
}
wait_for 30 "closed TCP flows removed by the sweeper" swept ||
	ag_fail "closed flows not swept: $(grep -E '^anygate_(flow|nat)' "$AG_RUN/w.prom" | tr '\n' ' ')"
[ "$(sum w anygate_flows_evicted_total)" = 0 ] || ag_fail "flows evicted with a table far from full"
ag_info "sweeper: $(val w anygate_flows_expired_total 'state="closing"') closing flows expired, $(val w anygate_flow_table_entries) entries left, $(val w anygate_flow_sweeps_total) passes"

# --- only GET /metrics
code=$(nsx edge curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:9464/)
[ "$code" = 404 ] || ag_fail "GET / answered $code, expected 404"
code=$(nsx edge curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST -d x "$URL")
[ "$code" = 405 ] || ag_fail "POST /metrics answered $code, expected 405"
agd_alive || ag_fail "anygated died"
echo "PASS: metrics match the traffic sent ($D TCP flows, $K UDP flows, 3 pings), health, failover and the sweeper shown"
