/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NAT rewrites (DNAT + SNAT towards the backend, the reverse towards the
 * client) with incremental IPv4 and TCP/UDP checksum updates, and the
 * lookup-table index. Works on a packet ag_parse() accepted (AG_PARSE_OK).
 */
#ifndef AG_CORE_NAT_H
#define AG_CORE_NAT_H

#include <linux/types.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "compat.h"
#include "abi.h"
#include "csum.h"
#include "parse.h"

/*
 * Set the packet's source to saddr:sport and destination to daddr:dport.
 * The address change enters both the IP header checksum and the L4 checksum
 * (pseudo-header); the port change only the L4 checksum. Returns 0, or -1
 * when the headers are not inside the packet: that cannot happen after
 * AG_PARSE_OK, the checks are repeated so the BPF verifier sees them here.
 */
static __always_inline int ag_nat__rewrite(struct ag_pkt *p, __be32 saddr, __be16 sport,
					   __be32 daddr, __be16 dport)
{
	struct iphdr *ip = p->ip;
	__u32 addr_diff, l4_diff;

	if ((void *)(ip + 1) > p->data_end)
		return -1;
	addr_diff = ag_csum_diff32(0, ip->saddr, saddr);
	addr_diff = ag_csum_diff32(addr_diff, ip->daddr, daddr);

	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = p->l4;

		if ((void *)(th + 1) > p->data_end)
			return -1;
		l4_diff = ag_csum_diff16(addr_diff, th->source, sport);
		l4_diff = ag_csum_diff16(l4_diff, th->dest, dport);
		th->check = (__sum16)ag_csum_apply((__u16)th->check, l4_diff);
		th->source = sport;
		th->dest = dport;
	} else {
		struct udphdr *uh = p->l4;

		if ((void *)(uh + 1) > p->data_end)
			return -1;
		l4_diff = ag_csum_diff16(addr_diff, uh->source, sport);
		l4_diff = ag_csum_diff16(l4_diff, uh->dest, dport);
		uh->check = (__sum16)ag_csum_apply_udp((__u16)uh->check, l4_diff);
		uh->source = sport;
		uh->dest = dport;
	}
	ip->check = (__sum16)ag_csum_apply((__u16)ip->check, addr_diff);
	ip->saddr = saddr;
	ip->daddr = daddr;
	p->sport = sport;
	p->dport = dport;
	return 0;
}

/* Client -> backend: from nat_addr:nat_port to backend_addr:backend_port. */
static __always_inline int ag_nat__forward(struct ag_pkt *p, const struct ag_flow *f)
{
	return ag_nat__rewrite(p, f->nat_addr.v4, f->nat_port, f->backend_addr.v4, f->backend_port);
}

/* Backend reply -> client: from vip:vip_port to client_addr:client_port. */
static __always_inline int ag_nat__reverse(struct ag_pkt *p, const struct ag_nat_rev *r)
{
	return ag_nat__rewrite(p, r->vip.v4, r->vip_port, r->client_addr.v4, r->client_port);
}

/*
 * Index into the flat lookup table for a listener's live slot: every slot owns
 * ring_size consecutive entries. 128 slots x AG_RING_SIZE_MAX stays below 2^32.
 */
static __always_inline __u32 ag_lookup__index(__u32 slot, __u32 ring_size, __u32 hash)
{
	return slot * ring_size + hash % ring_size;
}

/* Entry idx of the flat table lives in bucket idx / AG_LOOKUP_LANES (abi.h)... */
_Static_assert((AG_LOOKUP_LANES & (AG_LOOKUP_LANES - 1)) == 0, "AG_LOOKUP_LANES power of two");
static __always_inline __u32 ag_lookup__bucket(__u32 idx)
{
	return idx / AG_LOOKUP_LANES;
}

/* ...at lane idx % AG_LOOKUP_LANES, provably inside the bucket for the verifier. */
static __always_inline __u32 ag_lookup__lane(__u32 idx)
{
	return idx & (AG_LOOKUP_LANES - 1);
}

#endif /* AG_CORE_NAT_H */
