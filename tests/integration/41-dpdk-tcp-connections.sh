#!/usr/bin/env bash
# 01-tcp-connections.sh through the DPDK fast path: 300 TCP connections, with anygate-dp on the
# edge's veths (tests/integration/lib-dpdk.sh) instead of the XDP program.
export AG_FASTPATH=dpdk
exec bash "$(dirname "$0")/01-tcp-connections.sh"
