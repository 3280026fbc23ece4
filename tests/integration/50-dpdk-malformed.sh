#!/usr/bin/env bash
# 19-malformed.sh through the DPDK fast path: the malformed-frame corpus into the client link,
# with anygate-dp on the edge's veths (tests/integration/lib-dpdk.sh) instead of the XDP program.
# Its ports are net_af_xdp here, not net_af_packet: an AF_PACKET socket sits behind the
# kernel's receive path, which drops a frame whose VLAN tag is cut short (while untagging)
# and holds IPv4 fragments for reassembly (the PMD's fanout asks for defragmentation), so
# those frames would never reach anygate-dp to be counted. AF_XDP takes every frame first.
export AG_FASTPATH=dpdk
export AG_DP_PMD=${AG_DP_PMD:-af_xdp}
exec bash "$(dirname "$0")/19-malformed.sh"
