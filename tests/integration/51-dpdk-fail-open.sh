#!/usr/bin/env bash
# 20-fail-open.sh through the DPDK fast path: every health check failing, traffic
# still served, with anygate-dp on the edge's veths (tests/integration/lib-dpdk.sh)
# instead of the XDP program.
export AG_FASTPATH=dpdk
exec bash "$(dirname "$0")/20-fail-open.sh"
