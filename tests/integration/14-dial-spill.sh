#!/usr/bin/env bash
# Traffic dial and gradual spill, measured on 2000 new UDP flows each:
# 1. eu-west (nearest) at traffic_dial 30: 30% +- 5 pp stay there, the rest go
#    to us-east (next nearest).
# 2. dial back to 100 by reload; one of eu-west's two endpoints stopped: with the
#    default overprovisioning factor 1.4, 50% healthy x 1.4 = 70% +- 5 pp stay.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
export AG_HEALTH='protocol = "tcp"; port = 80; interval_ms = 100; timeout_ms = 95; healthy_threshold = 2; unhealthy_threshold = 2;'
ag_lab_start "eu-west@30:r1b1=1,r1b2=1" "us-east:r2b1=1,r2b2=1" "ap-south:r3b1=1,r3b2=1"

N=2000
# share SPORT-BASE WANT LABEL: send N flows, check eu-west's share is WANT +- 5.
share() {
	local out=$AG_RUN/udp-$1.out near pct
	nsx client "$AG_TESTCLI" --sport-base "$1" --timeout-ms 3000 "$AG_VIP" 5000 $N \
		>"$out" 2>"$AG_RUN/udp.err" ||
		ag_fail "$3: not every UDP flow got a reply: $(sort "$out" | uniq -c | tr '\n' ' ')"
	near=$(grep -c '^r1b' "$out")
	pct=$(awk -v g="$near" -v n=$N 'BEGIN { printf "%.1f", 100 * g / n }')
	ag_info "$3: $pct% of $N new flows in eu-west (want $2 +- 5); $(sort "$out" | uniq -c | tr '\n' ' ')"
	awk -v p="$pct" -v w="$2" 'BEGIN { d = p - w; exit !(d <= 5 && d >= -5) }' ||
		ag_fail "$3: eu-west took $pct%, want $2 +- 5"
	grep -q '^r3b' "$out" && ag_fail "$3: flows reached ap-south, the farthest region"
	return 0
}

share 10000 30 "dial 30"

# Dial 100 again (SIGHUP reload), then stop one eu-west endpoint.
ag_config_write "$AG_RUN/test.conf" "eu-west:r1b1=1,r1b2=1" "us-east:r2b1=1,r2b2=1" "ap-south:r3b1=1,r3b2=1"
kill -HUP "$(cat "$AG_AGD_PIDFILE")"
wait_for 10 "reload published" grep -q 'reload: published' "$AG_AGD_LOG" || ag_fail "reload did not publish"
lab_server_stop r1b2 || ag_fail "could not stop r1b2"
# The line anygated logs once the tables without r1b2 are live (not the probe's verdict,
# which comes a publish earlier).
wait_for 10 "r1b2 marked down and published" \
	grep -qE 'backend [0-9]+ \(web/udp:5000 eu-west 10.1.1.12\) down: (detected|tables)' "$AG_AGD_LOG" ||
	ag_fail "r1b2 was never marked down"
grep -E 'eu-west 10.1.1.12.*down|(us-east|ap-south).*(down|up):' "$AG_AGD_LOG" | sed 's/^/  /'
share 30000 70 "one of two down, factor 1.4"
grep -q '^r1b2' "$AG_RUN/udp-30000.out" && ag_fail "a new flow went to the stopped r1b2"
echo PASS
