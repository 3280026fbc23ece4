#!/usr/bin/env bash
# Failover: both servers of the nearest region (eu-west) stop while a client
# opens new TCP connections continuously. After detection (100 ms probes,
# 2 failures), every new connection must succeed on the next region (us-east);
# long-lived connections to other regions' backends stay up and keep echoing
# (zero resets); when eu-west comes back, new connections return to it.
# eu-west has traffic_dial 50 so that long-lived connections land in both regions.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
export AG_HEALTH='protocol = "tcp"; port = 80; interval_ms = 100; timeout_ms = 95; healthy_threshold = 2; unhealthy_threshold = 2;'
ag_lab_start "eu-west@50:r1b1=1,r1b2=1" "us-east:r2b1=1,r2b2=1" "ap-south:r3b1=1,r3b2=1"

now_ms() { date +%s%3N; }

# Long-lived connections, echoing every 100 ms for 14 s.
nsx client "$AG_LONGCONN" "$AG_VIP" 8002 16 --duration-ms 14000 --interval-ms 100 \
	--stall-ms 3000 >"$AG_RUN/long.out" 2>"$AG_RUN/long.err" &
long_pid=$!

# New connections, one after the other, from a loop inside the client's
# namespace; each line "start-ms end-ms rc backend".
# shellcheck disable=SC2016 # a script for bash -c: its own $1, $2 and $(...)
nsx client bash -c '
	end=$(($(date +%s%3N) + $1))
	while [ "$(date +%s%3N)" -lt $end ]; do
		t=$(date +%s%3N)
		r=$(curl -s -m 1 "http://$2/")
		rc=$?
		echo "$t $(date +%s%3N) $rc ${r:--}"
		sleep 0.02
	done' _ 10000 "$AG_VIP" >"$AG_RUN/new.out" &
new_pid=$!

flowing() { [ "$(wc -l <"$AG_RUN/new.out")" -ge 20 ]; }
wait_for 10 "traffic before the failure" flowing ||
	ag_fail "no new connections are being made"
t_kill=$(now_ms)
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
lab_server_stop r1b1 && lab_server_stop r1b2 || ag_fail "could not stop eu-west's servers"
ag_info "eu-west stopped at +0 ms (both servers)"

wait "$new_pid"
wait "$long_pid"

# Detection, as anygated measured it.
grep -E 'down: |tables switched' "$AG_AGD_LOG" | sed 's/^/  /'
switched=$(grep -m1 -E 'backend 0 \(.*\) down: (detected|tables switched)' "$AG_AGD_LOG" | sed -E 's/.*switched ([0-9.]+) ms after.*/\1/')

# Per 500 ms around the stop: connections made, failed, and where they landed.
awk -v k="$t_kill" '{ b = int(($1 - k + 100000) / 500) - 200; n[b]++; if ($3 != 0) f[b]++; else w[b] = w[b] " " $4 }
	END { for (b in n) printf "  %+6d ms: %3d made %3d failed:%s\n", b * 500, n[b], f[b], w[b] }' \
	"$AG_RUN/new.out" | sort -n -k1 | cut -c1-150

# New connections: those finished before the stop all succeeded; after the detection window
# (1.5 s, generous for a loaded box) every one succeeds in us-east. A connection
# still open when the servers stopped may fail: that is the failure itself.
awk -v k="$t_kill" '$2 < k && $3 != 0 { bad++ } END { exit bad > 0 }' "$AG_RUN/new.out" ||
	ag_fail "connections failed before the failure: $(awk -v k="$t_kill" '$2 < k && $3 != 0' "$AG_RUN/new.out" | head -3)"
after=$(awk -v k="$t_kill" '$1 >= k + 1500' "$AG_RUN/new.out" | wc -l)
[ "$after" -ge 8 ] || ag_fail "only $after new connections after the detection window"
bad=$(awk -v k="$t_kill" '$1 >= k + 1500 && ($3 != 0 || $4 !~ /^r2b/)' "$AG_RUN/new.out")
[ -z "$bad" ] || ag_fail "new connections after detection not served by us-east: $(echo "$bad" | head -5 | tr '\n' ';')"
last_fail=$(awk -v k="$t_kill" '$2 >= k && ($3 != 0 || $4 ~ /^r1b/) { t = $1 - k } END { print t + 0 }' "$AG_RUN/new.out")
ag_info "failover: last failed or eu-west connection at +${last_fail} ms after the stop; anygated switched tables ${switched:-?} ms after the deciding probe; $after new connections after the window all on us-east"

# Long-lived connections: those on the surviving regions ran the whole time.
sed 's/^/  /' "$AG_RUN/long.out"
others=$(awk '$2 !~ /^r1b/' "$AG_RUN/long.out" | wc -l)
[ "$others" -ge 1 ] || ag_fail "no long-lived connection landed outside eu-west (dial 50): cannot check survivors"
broken=$(awk '$2 !~ /^r1b/ && $3 != "ok"' "$AG_RUN/long.out")
[ -z "$broken" ] || ag_fail "long-lived connections outside eu-west broke: $broken"
ag_info "long-lived: $others connections on us-east/ap-south all kept echoing (zero resets)"

# Restore: traffic comes back to eu-west.
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
lab_server_restart r1b1 && lab_server_restart r1b2 || ag_fail "could not restart eu-west's servers"
back() {
	local r
	r=$(nsx client curl -s -m 1 "http://$AG_VIP/" "http://$AG_VIP/" "http://$AG_VIP/" "http://$AG_VIP/")
	[[ $r == *r1b* ]]
}
wait_for 15 "new connections back in eu-west" back || ag_fail "traffic did not return to eu-west"
ag_info "eu-west restored: new connections land there again"
echo PASS
