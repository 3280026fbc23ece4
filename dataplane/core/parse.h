/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packet parsing shared by the XDP and DPDK fast paths: Ethernet, up to two
 * 802.1Q/802.1ad tags (walked to tell a tagged frame, which is never
 * forwarded), IPv4, TCP, UDP. Every header access is preceded by a
 * bounds check against data_end that the BPF verifier can follow, so the
 * same code is safe on an XDP buffer and on the first segment of an mbuf.
 */
#ifndef AG_CORE_PARSE_H
#define AG_CORE_PARSE_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "compat.h"
#include "abi.h"

/* ag_parse() result for a packet the fast path may forward; anything else is an AG_R_* reason. */
#define AG_PARSE_OK AG_R__MAX

/* Stacked tags: 802.1ad outer + 802.1Q inner is the deepest we accept. */
#define AG_MAX_VLAN_TAGS 2

#define AG_IP_MF     0x2000
#define AG_IP_OFFSET 0x1fff

/* uapi has no VLAN header struct (struct vlan_hdr is kernel-internal). */
struct ag_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* What ag_parse() found. Pointers are valid only for the fields the result promises. */
/* TCP header flags (byte 13). */
#define AG_TCPF_FIN 0x01
#define AG_TCPF_SYN 0x02
#define AG_TCPF_RST 0x04
#define AG_TCPF_PSH 0x08
#define AG_TCPF_ACK 0x10
#define AG_TCPF_URG 0x20

struct ag_pkt {
	void *data;
	void *data_end;
	struct ethhdr *eth; /* AG_PARSE_OK and every result after DROP_TRUNC_ETH */
	/* AG_PARSE_OK, PASS_FRAGMENT, PASS_NOT_L4; after ag_parse__l2() alone: where IPv4 starts */
	struct iphdr *ip;
	void *l4;      /* AG_PARSE_OK: struct tcphdr or struct udphdr */
	__u16 tot_len; /* IPv4 total length, host order */
	__be16 sport;  /* AG_PARSE_OK */
	__be16 dport;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP (from PASS_FRAGMENT on) */
	__u8 vlans; /* tags seen (AG_PARSE_OK: always 0, tagged frames are not forwarded) */
};

/*
 * First half of ag_parse(): Ethernet and its tags. AG_PARSE_OK for an
 * untagged IPv4 frame (p->eth set, p->ip where its header starts), else:
 *   AG_R_DROP_TRUNC_ETH, AG_R_DROP_TRUNC_VLAN (a tag cut short)
 *   AG_R_PASS_VLAN_TAGGED  one or two 802.1Q/802.1ad tags, whatever they carry:
 *                          the frame belongs to a VLAN device anygate is not
 *                          configured for (anygate-dp drops it)
 *   AG_R_PASS_NOT_IPV4     not IPv4 (ARP, IPv6, ...)
 * The fast paths check the L2 destination (hygiene.h) between the halves.
 */
static __always_inline int ag_parse__l2(struct ag_pkt *p, void *data, void *data_end)
{
	struct ethhdr *eth = data;
	__be16 h_proto;
	void *cur;
	int i;

	p->data = data;
	p->data_end = data_end;
	p->eth = 0;
	p->ip = 0;
	p->l4 = 0;
	p->tot_len = 0;
	p->sport = 0;
	p->dport = 0;
	p->proto = 0;
	p->vlans = 0;

	if ((void *)(eth + 1) > data_end)
		return AG_R_DROP_TRUNC_ETH;
	p->eth = eth;
	h_proto = eth->h_proto;
	cur = eth + 1;

	AG_UNROLL
	for (i = 0; i < AG_MAX_VLAN_TAGS; i++) {
		struct ag_vlan_hdr *vh = cur;

		if (h_proto != ag_htons(ETH_P_8021Q) && h_proto != ag_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return AG_R_DROP_TRUNC_VLAN;
		h_proto = vh->encap_proto;
		cur = vh + 1;
		p->vlans++;
	}
	if (p->vlans)
		return AG_R_PASS_VLAN_TAGGED;
	if (h_proto != ag_htons(ETH_P_IP))
		return AG_R_PASS_NOT_IPV4;
	p->ip = cur; /* not checked yet: ag_parse__ip() */
	return AG_PARSE_OK;
}

/*
 * Second half of ag_parse(): IPv4 at p->ip, then TCP or UDP (results below;
 * p->ip stays set only for those that promise it). Options are
 * bounds-checked here, walked by hygiene.h.
 */
static __always_inline int ag_parse__ip(struct ag_pkt *p)
{
	struct iphdr *ip = p->ip;
	void *data_end = p->data_end;
	__u32 ihl_len, tot_len, l4_len;
	__u8 vihl;
	void *cur;

	p->ip = 0;
	if ((void *)(ip + 1) > data_end)
		return AG_R_DROP_TRUNC_IP;
	/* First byte read directly: bitfield order would depend on the target's headers. */
	vihl = *(__u8 *)ip;
	if ((vihl >> 4) != 4 || (vihl & 0xf) < 5)
		return AG_R_DROP_BAD_IP;
	ihl_len = (__u32)(vihl & 0xf) * 4;
	tot_len = ag_ntohs(ip->tot_len);
	if (tot_len < ihl_len)
		return AG_R_DROP_BAD_IP;
	if ((void *)ip + tot_len > data_end)
		return AG_R_DROP_TRUNC_IP;
	/* Options must be inside the frame (hygiene.h walks them). */
	if ((void *)ip + ihl_len > data_end)
		return AG_R_DROP_TRUNC_IP;
	p->ip = ip;
	p->tot_len = (__u16)tot_len;

	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return AG_R_PASS_NOT_L4;
	p->proto = ip->protocol;
	/* Only the first fragment has ports; no reassembly in the fast path. */
	if (ip->frag_off & ag_htons(AG_IP_MF | AG_IP_OFFSET))
		return AG_R_PASS_FRAGMENT;

	cur = (void *)ip + ihl_len;
	l4_len = tot_len - ihl_len;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = cur;
		__u32 doff_len;

		if ((void *)(th + 1) > data_end || l4_len < sizeof(*th))
			return AG_R_DROP_TRUNC_L4;
		doff_len = (__u32)(((__u8 *)th)[12] >> 4) * 4;
		if (doff_len < sizeof(*th) || doff_len > l4_len)
			return AG_R_DROP_TRUNC_L4;
		p->sport = th->source;
		p->dport = th->dest;
	} else {
		struct udphdr *uh = cur;
		__u32 ulen;

		if ((void *)(uh + 1) > data_end || l4_len < sizeof(*uh))
			return AG_R_DROP_TRUNC_L4;
		ulen = ag_ntohs(uh->len);
		if (ulen < sizeof(*uh) || ulen > l4_len)
			return AG_R_DROP_TRUNC_L4;
		p->sport = uh->source;
		p->dport = uh->dest;
	}
	p->l4 = cur;
	return AG_PARSE_OK;
}

/*
 * Parse [data, data_end). Returns AG_PARSE_OK for an untagged, unfragmented
 * IPv4 TCP or UDP packet, else the reason it is not forwarded: those of
 * ag_parse__l2(), then
 *   AG_R_PASS_NOT_L4     IPv4 but neither TCP nor UDP
 *   AG_R_PASS_FRAGMENT   TCP/UDP fragment (MF set or offset != 0); the caller
 *                        turns it into AG_R_DROP_FRAGMENT when ip->daddr is a VIP
 *   AG_R_DROP_TRUNC_IP, AG_R_DROP_BAD_IP (version, ihl, total length),
 *   AG_R_DROP_TRUNC_L4   (header cut short, TCP doff or UDP length inconsistent)
 * Trailing bytes after tot_len (Ethernet padding) are allowed. Nothing here
 * depends on the receiving interface or the tables: hygiene.h does.
 */
static __always_inline int ag_parse(struct ag_pkt *p, void *data, void *data_end)
{
	int r = ag_parse__l2(p, data, data_end);

	return r == AG_PARSE_OK ? ag_parse__ip(p) : r;
}

/* Reasons of the DROP_* group make the fast path drop the packet (abi.h: PASS_*, DROP_*, ACT). */
static __always_inline int ag_reason__is_drop(int reason)
{
	return reason >= AG_R__DROP_FIRST && reason < AG_R__ACT_FIRST;
}

#endif /* AG_CORE_PARSE_H */
