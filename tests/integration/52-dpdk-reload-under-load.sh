#!/usr/bin/env bash
# 21-reload-under-load.sh through the DPDK fast path: reloads under load (no new
# flow misdelivered, no established flow broken), with anygate-dp on the edge's
# veths (tests/integration/lib-dpdk.sh) instead of the XDP program.
export AG_FASTPATH=dpdk
exec bash "$(dirname "$0")/21-reload-under-load.sh"
