// SPDX-License-Identifier: BSD-3-Clause
/*
 * The rest of the internet, seen from the client's namespace: the flood tests'
 * spoofed sources live in 100.64.0.0/10 (AG_FLOOD_CIDR), and whatever the edge
 * sends to them (SYN challenges, backends' SYN-ACKs) would travel to those
 * hosts, never to the legitimate client's. Attached to c0, this program drops
 * IPv4 frames to that prefix before the client's kernel spends a cycle on
 * them, and passes everything else. Without it the client namespace, which
 * plays attacker and legitimate client on one 2-core machine, would spend its
 * CPU dropping the reflected flood and lose its own replies.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SINK_NET  0x64400000u /* 100.64.0.0 */
#define SINK_MASK 0xffc00000u /* /10 */

SEC("xdp")
int ag_xdp_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((bpf_ntohl(ip->daddr) & SINK_MASK) == SINK_NET)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
