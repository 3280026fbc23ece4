#!/usr/bin/env bash
# 04-bulk-transfer.sh through the DPDK fast path: a 50 MB TCP transfer, with anygate-dp on the
# edge's veths (tests/integration/lib-dpdk.sh) instead of the XDP program.
export AG_FASTPATH=dpdk
exec bash "$(dirname "$0")/04-bulk-transfer.sh"
