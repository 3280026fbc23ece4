#!/usr/bin/env bash
# Flows pinned to a backend that dies without a word (its link goes down: no
# FIN, no RST from it): once the probes mark it down, a TCP flow on it gets a
# RST from the fast path on its next packet, within one detection window, and
# a UDP flow on it continues on another backend. Flows on the other backend
# never notice.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
export AG_HEALTH='protocol = "tcp"; port = 80; interval_ms = 100; timeout_ms = 95; healthy_threshold = 2; unhealthy_threshold = 2;'
ag_lab_start "eu-west:r1b1=1,r1b2=1" "us-east:r2b1=1,r2b2=1"

now_ms() { date +%s%3N; }

# A UDP source port whose flow lands on r1b1 (the flow is created by the probe).
sport=""
for p in $(seq 40000 40040); do
	r=$(nsx client "$AG_TESTCLI" --sport-base "$p" --timeout-ms 1000 "$AG_VIP" 5000 1 2>/dev/null)
	if [ "$r" = r1b1 ]; then sport=$p; break; fi
done
[ -n "$sport" ] || ag_fail "no UDP flow among 41 source ports landed on r1b1"

# The UDP flow keeps sending from that port: one request every 100 ms.
# shellcheck disable=SC2016 # a script for bash -c: its own $1, $2 and $(...)
nsx client bash -c '
	end=$(($(date +%s%3N) + 7000))
	while [ "$(date +%s%3N)" -lt $end ]; do
		echo "$(date +%s%3N) $("$1" --sport-base "$2" --timeout-ms 300 "$3" 5000 1 2>/dev/null)"
		sleep 0.1
	done' _ "$AG_TESTCLI" "$sport" "$AG_VIP" >"$AG_RUN/udp.out" &
udp_pid=$!
# Long-lived TCP connections, echoing every 100 ms.
nsx client "$AG_LONGCONN" "$AG_VIP" 8002 12 --duration-ms 7000 --interval-ms 100 \
	--stall-ms 5000 >"$AG_RUN/long.out" 2>"$AG_RUN/long.err" &
long_pid=$!

started() { [ "$(wc -l <"$AG_RUN/udp.out")" -ge 10 ]; }
wait_for 10 "flows running" started || ag_fail "the UDP flow does not run"
t_dead=$(now_ms)
nsx r1b1 ip link set eth0 down || ag_fail "could not take r1b1 off the network"
ag_info "r1b1 silent (link down) at +0 ms"
wait "$long_pid"
wait "$udp_pid"

t0=$(sed -n 's/^start-realtime-ms //p' "$AG_RUN/long.err")
sed 's/^/  /' "$AG_RUN/long.out"
grep -E 'r1b1|10.1.1.11' "$AG_AGD_LOG" | grep -E 'down' | sed 's/^/  /'
on_dead=$(awk '$2 == "r1b1"' "$AG_RUN/long.out")
[ -n "$on_dead" ] || ag_fail "no long-lived connection landed on r1b1"
bad=$(awk '$2 == "r1b1" && $3 != "reset"' "$AG_RUN/long.out")
[ -z "$bad" ] || ag_fail "connections on the dead backend did not get a RST: $bad"
# Reset time after the backend went silent; one window = 2 x 100 ms probes +
# timeout, then the flow's next packet (<= 100 ms): allow 1.5 s on a loaded box.
worst=$(awk -v t0="$t0" -v d="$t_dead" '$2 == "r1b1" { x = t0 + $5 - d; if (x > m) m = x } END { print m + 0 }' "$AG_RUN/long.out")
[ "$worst" -le 1500 ] || ag_fail "RST came $worst ms after the backend died (window 1500 ms)"
alive=$(awk '$2 != "r1b1" && $3 != "ok"' "$AG_RUN/long.out")
[ -z "$alive" ] || ag_fail "connections on healthy backends broke: $alive"
# The fast path counted the resets it sent.
rsts=$("$AG_BUILD/controlplane/anygatectl" -s "$AG_RUN/anygated.sock" --json stats |
	python3 -c 'import json,sys; print(sum(r["packets"] for r in json.load(sys.stdin)["reasons"] if r["reason"] == "tcp_rst_backend_down"))')
[ "${rsts:-0}" -ge "$(echo "$on_dead" | wc -l)" ] ||
	ag_fail "tcp_rst_backend_down counted ${rsts:-nothing}, want >= $(echo "$on_dead" | wc -l)"
ag_info "tcp: $(echo "$on_dead" | wc -l) connections on r1b1 reset by the fast path within $worst ms; the others kept echoing"

# UDP: before, r1b1; after the window, every reply from another live backend.
after=$(awk -v d="$t_dead" '$1 >= d + 1500 { print $2 }' "$AG_RUN/udp.out" | sort | uniq -c | tr '\n' ' ')
awk -v d="$t_dead" '$1 >= d + 1500 && ($2 == "" || $2 == "TIMEOUT" || $2 == "r1b1") { bad = 1 } END { exit bad }' \
	"$AG_RUN/udp.out" || ag_fail "UDP flow not re-steered: $after"
n_after=$(awk -v d="$t_dead" '$1 >= d + 1500' "$AG_RUN/udp.out" | wc -l)
[ "$n_after" -ge 5 ] || ag_fail "too few UDP requests after the window ($n_after)"
ag_info "udp: the flow from port $sport continued after the window on: $after"
echo PASS
