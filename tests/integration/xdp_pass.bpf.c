// SPDX-License-Identifier: BSD-3-Clause
/*
 * The smallest XDP program: the integration tests attach it in native mode to a
 * throw-away veth to learn whether this kernel can run native XDP on veth at all,
 * and skip (rather than fail) when it cannot.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int ag_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
