#!/usr/bin/env bash
# 02-udp-requests.sh through the DPDK fast path: 300 UDP request/replies, with anygate-dp on the
# edge's veths (tests/integration/lib-dpdk.sh) instead of the XDP program.
export AG_FASTPATH=dpdk
exec bash "$(dirname "$0")/02-udp-requests.sh"
