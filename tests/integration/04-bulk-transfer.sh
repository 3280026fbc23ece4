#!/usr/bin/env bash
# A 50 MB TCP transfer through the VIP arrives whole: same size, same sha256.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export AG_BULK_MB=50
ag_test_begin
# shellcheck disable=SC2119 # no group given on purpose: the default lab config
ag_lab_start

recv=$AG_RUN/recv.bin
# -T: give up after 30 s without data, so a stalled transfer fails, not hangs.
nsx client socat -u -T 30 "TCP:$AG_VIP:8001,connect-timeout=5" "CREATE:$recv" ||
	ag_fail "socat transfer failed"
want=$(stat -c %s "$AG_RUN/bulk.bin")
got=$(stat -c %s "$recv")
sum_want=$(sha256sum <"$AG_RUN/bulk.bin" | cut -d' ' -f1)
sum_got=$(sha256sum <"$recv" | cut -d' ' -f1)
ag_info "bulk: $got of $want bytes, sha256 ${sum_got:0:16}... (want ${sum_want:0:16}...)"
[ "$got" -eq "$want" ] || ag_fail "received $got bytes, sent $want"
[ "$sum_got" = "$sum_want" ] || ag_fail "sha256 mismatch: got $sum_got, want $sum_want"
echo "PASS: $want bytes through $AG_VIP:8001, sha256 $sum_got"
