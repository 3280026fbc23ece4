#!/usr/bin/env bash
# Weights 1:1:2 inside one endpoint group: 2000 UDP flows (distinct source
# ports) split within 5 percentage points of 25/25/50.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export AG_BACKENDS=3
ag_test_begin
ag_lab_start "eu-west:r1b1=1,r1b2=1,r1b3=2"

N=2000
out=$AG_RUN/udp.out
nsx client "$AG_TESTCLI" --sport-base 20000 --timeout-ms 3000 "$AG_VIP" 5000 $N \
	>"$out" 2>"$AG_RUN/udp.err"
rc=$?
cat "$AG_RUN/udp.err"
[ $rc -eq 0 ] || ag_fail "not every flow got a reply: $(sort "$out" | uniq -c | tr '\n' ' ')"
fail=0
shares=""
for spec in r1b1:25 r1b2:25 r1b3:50; do
	b=${spec%:*} want=${spec#*:}
	got=$(grep -cx "$b" "$out")
	pct=$(awk -v g="$got" -v n=$N 'BEGIN { printf "%.1f", 100 * g / n }')
	shares+="$b=$pct% (want $want%) "
	awk -v p="$pct" -v w="$want" 'BEGIN { d = p - w; exit !(d <= 5 && d >= -5) }' || fail=1
done
other=$(grep -cvx 'r1b[123]' "$out")
ag_info "weights 1:1:2 over $N flows: $shares"
[ "$other" -eq 0 ] || ag_fail "$other replies from outside the group"
[ $fail -eq 0 ] || ag_fail "shares off by more than 5 points: $shares"
echo "PASS: $shares"
