#!/usr/bin/env bash
# Nearest region by measured RTT: the config lists the regions farthest first
# (ap-south, us-east, eu-west); with all healthy and every dial at 100, at
# least 95% of 1000 new flows must go to the region with the lowest RTT
# (eu-west, 2 ms in the lab's WAN), chosen from probe round-trip times.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
export AG_HEALTH='protocol = "tcp"; port = 80; interval_ms = 100; timeout_ms = 95; healthy_threshold = 2; unhealthy_threshold = 2;'
ag_lab_start "ap-south:r3b1=1,r3b2=1" "us-east:r2b1=1,r2b2=1" "eu-west:r1b1=1,r1b2=1"

# The order is decided by anygated from probe RTTs: wait for it (bounded).
wait_for 20 "eu-west ranked nearest for UDP" grep -q 'listener web/udp:5000: #1 eu-west' "$AG_AGD_LOG" ||
	ag_fail "anygated never ranked eu-west first: $(grep 'listener web/' "$AG_AGD_LOG" | tail -6)"
grep 'listener web/udp:5000: #' "$AG_AGD_LOG" | tail -3 | sed 's/^/  /'

N=1000
out=$AG_RUN/udp.out
nsx client "$AG_TESTCLI" --sport-base 21000 --timeout-ms 3000 "$AG_VIP" 5000 $N \
	>"$out" 2>"$AG_RUN/udp.err" || ag_fail "not every UDP flow got a reply: $(sort "$out" | uniq -c | tr '\n' ' ')"
near=$(grep -c '^r1b' "$out")
pct=$(awk -v g="$near" -v n=$N 'BEGIN { printf "%.1f", 100 * g / n }')
ag_info "nearest: $near of $N new UDP flows ($pct%) in eu-west; by backend: $(sort "$out" | uniq -c | tr '\n' ' ')"
awk -v p="$pct" 'BEGIN { exit !(p >= 95) }' || ag_fail "only $pct% went to the nearest region"
echo "PASS"
