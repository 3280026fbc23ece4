#!/usr/bin/env bash
# 03-weights.sh through the DPDK fast path: weights 1:1:2, with anygate-dp on the
# edge's veths (tests/integration/lib-dpdk.sh) instead of the XDP program.
export AG_FASTPATH=dpdk
exec bash "$(dirname "$0")/03-weights.sh"
