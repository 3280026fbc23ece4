#!/usr/bin/env bash
# SIGTERM: anygated detaches XDP from every interface, removes its pins, exits 0.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
# shellcheck disable=SC2119 # no group given on purpose: the default lab config
ag_lab_start

attached=$(edge_xdp_ifaces | tr '\n' ' ')
[ "$attached" = "e0 e1 e2 e3 " ] || ag_fail "before SIGTERM: XDP on '$attached', expected e0 e1 e2 e3"
pins=$(bpffs_pins | wc -l)
[ "$pins" -gt 0 ] || ag_fail "before SIGTERM: nothing pinned under $AG_BPFFS"
ag_info "before: XDP on $attached; $pins pins under $AG_BPFFS"

agd_stop
[ "$AGD_STATUS" = 0 ] || ag_fail "anygated exited with status $AGD_STATUS after SIGTERM, expected 0"
left=$(edge_xdp_ifaces | tr '\n' ' ')
[ -z "$left" ] || ag_fail "after SIGTERM XDP still attached to: $left ($(ip -n "$(ns edge)" link | grep xdp))"
left=$(bpffs_pins | tr '\n' ' ')
[ -z "$left" ] || ag_fail "after SIGTERM pins left under $AG_BPFFS: $left"
tail -n 3 "$AG_AGD_LOG"
echo "PASS: SIGTERM detached XDP from e0-e3 and removed $pins pins"
