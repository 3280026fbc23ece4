#!/usr/bin/env bash
# Reloads under load: anygated re-reads its config 12 times (anygatectl reload,
# every other one by SIGHUP), alternating two configs that insert, remove and
# reorder endpoints of both regions and add a listener before the others:
#   A  eu-west@50: r1b1 r1b2   us-east: r2b1 r2b2
#   B  eu-west@50: r1b3 r1b1   us-east: r2b2 r2b3   (+ UDP 6000 listed first)
# while a client keeps
#   - 16 long-lived TCP connections echoing every 100 ms: none may break (a
#     flow on an endpoint a reload removed keeps going to it);
#   - one UDP flow at 50 datagrams/s: every reply from its first backend;
#   - new TCP connections (curl) and new UDP flows one after the other: each
#     must succeed, served by an endpoint configured while it was made (the
#     config before or after a reload in progress, never another address).
# And web/tcp:80 keeps its listener id when a listener is added before it.
set -uo pipefail
export AG_BACKENDS=3
. "$(dirname "$0")/lib.sh"
ag_test_begin
ag_lab_start "eu-west@50:r1b1=1,r1b2=1" "us-east:r2b1=1,r2b2=1"
conf=$AG_RUN/test.conf
cp "$conf" "$AG_RUN/A.conf"
ag_config_write "$AG_RUN/B.conf" "eu-west@50:r1b3=1,r1b1=1" "us-east:r2b2=1,r2b3=1"
# Through anygate-dp (AG_FASTPATH=dpdk), its edge block as ag_lab_start wrote it.
if [ "${AG_FASTPATH:-xdp}" = dpdk ]; then
	dp_config "$AG_RUN/B.conf" || ag_fail "could not write the DPDK config B"
fi
# The extra listener, first in the list: listeners after it keep their ids.
python3 - "$AG_RUN/B.conf" <<'EOF' || ag_fail "could not add a listener to config B"
import sys
p = sys.argv[1]
s = open(p).read()
extra = '''listeners = (
			{ protocol = "udp"; ports = [ 6000 ];
			  endpoint_groups = ( { region = "eu-west";
				health_check = { protocol = "tcp"; port = 80; interval_ms = 1000; };
				endpoints = ( { address = "10.1.1.13"; } ); } ); },'''
assert s.count("listeners = (") == 1
open(p, "w").write(s.replace("listeners = (", extra))
EOF
ctl() { "$AG_BUILD/controlplane/anygatectl" -s "$AG_RUN/anygated.sock" "$@"; }
tcp80_id() {
	ctl --json listeners | python3 -c 'import json, sys
print([l["id"] for l in json.load(sys.stdin) if l["listener"] == "web/tcp:80"][0])'
}
id_a=$(tcp80_id)
now_ms() { date +%s%3N; }
D=14000

nsx client "$AG_LONGCONN" "$AG_VIP" 8002 16 --duration-ms $D --interval-ms 100 \
	--stall-ms 3000 >"$AG_RUN/long.out" 2>"$AG_RUN/long.err" &
long_pid=$!
nsx client "$AG_TESTCLI" --sport-base 39000 --timeout-ms 2000 --stream-pps 50 "$AG_VIP" 5000 \
	$((D / 20)) >"$AG_RUN/stream.out" 2>&1 &
stream_pid=$!
# New flows, one after the other; each line "start-ms end-ms rc backend".
# shellcheck disable=SC2016 # a script for bash -c: its own $1, $2 and $(...)
nsx client bash -c '
	end=$(($(date +%s%3N) + $1)); i=0
	while [ "$(date +%s%3N)" -lt $end ]; do
		t=$(date +%s%3N)
		r=$(curl -s -m 2 "http://$2/"); rc=$?
		echo "$t $(date +%s%3N) $rc tcp ${r:--}"
		t=$(date +%s%3N)
		r=$("$3" --timeout-ms 2000 --sport-base $((20000 + i % 10000)) "$2" 5000 1 2>/dev/null); rc=$?
		echo "$t $(date +%s%3N) $rc udp ${r:--}"
		i=$((i + 1))
	done' _ $((D - 1000)) "$AG_VIP" "$AG_TESTCLI" >"$AG_RUN/new.out" &
new_pid=$!

flowing() { [ "$(wc -l <"$AG_RUN/new.out")" -ge 10 ]; }
wait_for 10 "traffic before the reloads" flowing || ag_fail "no new flows are being made"
reloads_past() { [ "$(grep -c 'reload: published' "$AG_AGD_LOG")" -gt "$1" ]; }
# Each reload: "before-ms after-ms CONFIG" (CONFIG live from before-ms on).
: >"$AG_RUN/reloads.out"
agd_pid=$(cat "$AG_AGD_PIDFILE")
for ((i = 1; i <= 12; i++)); do
	if ((i % 2)); then next=B; else next=A; fi
	cp "$AG_RUN/$next.conf" "$conf"
	t0=$(now_ms)
	n0=$(grep -c 'reload: published' "$AG_AGD_LOG")
	if ((i % 4 == 3)); then
		kill -HUP "$agd_pid"
		wait_for 10 "reload $i (SIGHUP)" reloads_past "$n0" ||
			ag_fail "SIGHUP reload $i did not publish"
	else
		ctl reload >/dev/null || ag_fail "reload $i to $next refused"
	fi
	echo "$t0 $(now_ms) $next" >>"$AG_RUN/reloads.out"
	((i == 1)) && id_b=$(tcp80_id)
	sleep 0.6
done
wait "$new_pid"
wait "$stream_pid"
stream_rc=$?
wait "$long_pid"
grep -E 'reload: published' "$AG_AGD_LOG" | tail -n 2 | sed 's/^/  /'

[ "$id_a" = "$id_b" ] || ag_fail "web/tcp:80 renumbered from $id_a to $id_b by a listener added before it"

# Every new flow succeeded, on an endpoint configured while it was made.
python3 - "$AG_RUN/reloads.out" "$AG_RUN/new.out" <<'EOF' || ag_fail "new flows misdelivered or failed (above)"
import sys
configured = {"A": {"r1b1", "r1b2", "r2b1", "r2b2"}, "B": {"r1b3", "r1b1", "r2b2", "r2b3"}}
# Config intervals: A from the start; each reload's config from its start on,
# the one before until that reload returned.
reloads = [l.split() for l in open(sys.argv[1])]
spans, cur, since = [], "A", 0
for before, after, name in reloads:
    spans.append((since, int(after), cur))
    cur, since = name, int(before)
spans.append((since, 1 << 62, cur))
bad, n, during = [], 0, 0
for line in open(sys.argv[2]):
    start, end, rc, proto, who = line.split()[:5]
    start, end = int(start), int(end)
    allowed = set()
    live = [name for (a, b, name) in spans if a <= end and start <= b]
    for name in live:
        allowed |= configured[name]
    n += 1
    during += len(set(live)) > 1
    if rc != "0" or who not in allowed:
        bad.append(line.strip() + " allowed=" + ",".join(sorted(allowed)))
for b in bad[:10]:
    print("  bad:", b)
print("  %d new flows, %d of them made while a reload was in progress, %d bad" % (n, during, len(bad)))
sys.exit(1 if bad or n < 50 else 0)
EOF

# Established flows: none broken, none moved.
sed 's/^/  /' "$AG_RUN/long.out"
[ "$(grep -c ' ok ' "$AG_RUN/long.out")" -eq 16 ] || ag_fail "long-lived TCP connections broke across reloads"
on_removed=$(awk '$2 == "r1b2" || $2 == "r2b1"' "$AG_RUN/long.out" | wc -l)
cat "$AG_RUN/stream.out"
grep -q 'moved=0' "$AG_RUN/stream.out" || ag_fail "the UDP flow's replies came from another backend"
lost=$(ag_kv "$AG_RUN/stream.out" lost)
sent=$(ag_kv "$AG_RUN/stream.out" sent)
[ "${lost:-1}" -le $((sent / 100)) ] || ag_fail "the UDP flow lost $lost of $sent datagrams (ag-testcli exit $stream_rc)"
ag_info "12 reloads under load: every new flow on a configured endpoint; 16/16 long-lived TCP connections kept ($on_removed on endpoints removed and re-added), UDP flow kept its backend (lost $lost of $sent); web/tcp:80 kept id $id_a"
echo PASS
