#!/usr/bin/env bash
# 19-malformed.sh through the DPDK fast path: the malformed-frame corpus into the client link,
# with anygate-dp on the edge's veths (tests/integration/lib-dpdk.sh) instead of the XDP program.
export AG_FASTPATH=dpdk
exec bash "$(dirname "$0")/19-malformed.sh"
