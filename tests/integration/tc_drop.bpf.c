// SPDX-License-Identifier: BSD-3-Clause
/*
 * Drop everything at tc ingress. The DPDK tests hand the edge's veths to
 * anygate-dp through net_af_packet, whose socket sees each frame before tc
 * ingress does: with this program on the veth, the kernel of the edge sees
 * none of them (as if the port were bound to DPDK), so it neither answers nor
 * forwards what anygate-dp owns.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int ag_tc_drop(struct __sk_buff *skb)
{
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
