/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ingress hygiene, once, for both fast paths: what a packet must be before
 * anygate acts on it (RFC 1812 for a forwarder, RFC 7126 for IP options).
 * Pure functions of the parsed packet (parse.h) and the receiving
 * interface (struct ag_iface, abi.h); each refusal is an AG_R_* reason, each
 * pass AG_HYG_OK. docs/hygiene.md says what is refused, why, and in which
 * order. The order in a fast path:
 *
 *   ag_hyg__ingress()     every frame: ag_parse__l2() (tags: a tagged frame
 *                         is never forwarded), ag_hyg__l2() (IPv4 frames:
 *                         destination MAC ours), ag_parse__ip(); what
 *                         parsing stops at is the kernel's unless it is to
 *                         a VIP
 *   ag_hyg__ours()        every TCP/UDP packet to a VIP or a NAT address,
 *                         before its flow or reverse entry is used: role of
 *                         the interface, IPv4 header checksum, options, TCP
 *                         flags
 *   ag_hyg__no_flow()     a client's packet of no flow: the kernel's unless
 *                         to a VIP, then ag_hyg__ours(), port 0 and
 *                         ag_hyg__new_flow() (its source is neither a
 *                         martian nor one of our addresses)
 *   ag_hyg__nat_miss()    a packet to a NAT address of no reverse entry:
 *                         port 0, else the host's
 *
 * Packets to addresses that are not ours are the kernel's: they get none of
 * the IPv4 checks (the kernel makes its own). The TTL is checked where a
 * packet is forwarded (choose.h, the fast paths' forward and reply).
 *
 * The VIPs are read through an accessor the including code defines for its
 * own struct ag_tables, besides choose.h's settings one:
 *
 *   ag_tables__is_vip(t, addr)   1 when addr is a VIP, else 0
 */
#ifndef AG_CORE_HYGIENE_H
#define AG_CORE_HYGIENE_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>

#include "compat.h"
#include "abi.h"
#include "csum.h"
#include "flow.h"
#include "parse.h"

struct ag_tables;
static __always_inline int ag_tables__is_vip(struct ag_tables *t, __be32 addr);
static __always_inline const struct ag_settings *ag_tables__settings(struct ag_tables *t);

/* A hygiene check passed; anything else is the AG_R_* reason the packet is refused. */
#define AG_HYG_OK AG_R__MAX
_Static_assert(AG_HYG_OK == AG_PARSE_OK, "one \"go on\" value through parse and hygiene");

/* IPv4 options: at most 40 bytes (ihl 15), so at most 40 options (all NOP). */
#define AG_IP_OPTS_MAX	  40
#define AG_IPOPT_EOL	  0
#define AG_IPOPT_NOP	  1
#define AG_IPOPT_LSRR	  131
#define AG_IPOPT_SSRR	  137
#define AG_IP_MIN_HDR_LEN 20

/*
 * The L2 destination of an untagged IPv4 frame arriving on ifc: its own
 * unicast MAC. Group addresses (broadcast, multicast: the I/G bit) are the
 * kernel's link-local business, never forwarded (AG_R_PASS_L2_MULTICAST);
 * unicast to another MAC is a frame for another host (promiscuous mode, a
 * flooding switch), dropped. An interface anygated did not register (roles
 * 0) has no MAC to compare: not checked.
 */
static __always_inline int ag_hyg__l2(const struct ag_pkt *p, const struct ag_iface *ifc)
{
	const __u8 *d = p->eth->h_dest;

	/* Ours (the common case, one compare): a registered MAC is unicast. */
	if (ag_likely(!((ag_load32(d) ^ ag_load32(ifc->mac)) |
			(__u32)(ag_load16(d + 4) ^ ag_load16(ifc->mac + 4)))))
		return AG_HYG_OK;
	if (d[0] & 0x01)
		return AG_R_PASS_L2_MULTICAST;
	return ifc->roles ? AG_R_DROP_L2_OTHER_HOST : AG_HYG_OK;
}

/* Sum of the first 20 bytes of an IPv4 header as five 32-bit words, for ag_hyg__sum_ok(). */
static __always_inline __u64 ag_hyg__sum20(const __u8 *h)
{
	__u64 sum = 0;
	__u32 i;

	AG_UNROLL
	for (i = 0; i < AG_IP_MIN_HDR_LEN / 4; i++)
		sum += ag_load32(h + 4 * i);
	return sum;
}

/*
 * A header's 32-bit words summed into 64 bits (one's complement addition does
 * not care about the word size or byte order, only that every word is loaded
 * the same way), checksum included: right when it folds to 0xffff (RFC 1071).
 */
static __always_inline int ag_hyg__sum_ok(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return ag_csum_fold((__u32)sum) == 0xffff;
}

/*
 * The IPv4 header checksum of p (ag_parse__ip() accepted it: the whole
 * header, options included, is inside the frame) is right. Option words are
 * bounds-checked one by one (the verifier does not know ihl).
 */
static __always_inline int ag_hyg__csum_ok(const struct ag_pkt *p)
{
	const __u8 *h = (const __u8 *)p->ip;
	__u32 words = (__u32)(*h & 0xf), i;
	__u64 sum = ag_hyg__sum20(h);

	for (i = AG_IP_MIN_HDR_LEN / 4; i < (AG_IP_MIN_HDR_LEN + AG_IP_OPTS_MAX) / 4; i++) {
		if (i >= words)
			break;
		if ((const void *)(h + 4 * i + 4) > p->data_end)
			return 0;
		sum += ag_load32(h + 4 * i);
	}
	return ag_hyg__sum_ok(sum);
}

/*
 * Walk the IPv4 options of p (ihl > 5), bounded: malformed (an option's
 * length byte missing, below 2, or past the header) -> AG_R_DROP_IP_OPTIONS;
 * loose or strict source route -> AG_R_DROP_SOURCE_ROUTE (RFC 7126 4.3, 4.4:
 * a sender steering its path through us); every other well-formed option is
 * forwarded unchanged. EOL ends the list (what follows is padding); an EOL
 * byte where a length is expected is a length of 0: malformed.
 *
 * The loop steps over byte positions, not options: where an option starts
 * (next) is the only state carried from one position to the next, so the
 * verifier meets a few states per position instead of one per sequence of
 * option lengths (it gives up on the latter).
 */
static __always_inline int ag_hyg__options(const struct ag_pkt *p)
{
	const __u8 *o = (const __u8 *)p->ip + AG_IP_MIN_HDR_LEN;
	/* 4..40 for ihl 6..15; the mask changes nothing but tells the verifier so. */
	__u32 end = ((__u32)(*(const __u8 *)p->ip & 0xf) * 4 - AG_IP_MIN_HDR_LEN) & 63;
	__u32 next = 0, j, len;
	__u8 type;

	for (j = 0; j < AG_IP_OPTS_MAX; j++) {
		if (j >= end)
			break;
		if (j != next)
			continue;
		if ((const void *)(o + j + 1) > p->data_end)
			return AG_R_DROP_IP_OPTIONS;
		type = o[j];
		if (type == AG_IPOPT_EOL)
			break;
		if (type == AG_IPOPT_NOP) {
			next = j + 1;
			continue;
		}
		if (j + 1 >= end || (const void *)(o + j + 2) > p->data_end)
			return AG_R_DROP_IP_OPTIONS;
		len = o[j + 1];
		if (len < 2 || j + len > end)
			return AG_R_DROP_IP_OPTIONS;
		if (type == AG_IPOPT_LSRR || type == AG_IPOPT_SSRR)
			return AG_R_DROP_SOURCE_ROUTE;
		next = j + len;
	}
	return AG_HYG_OK;
}

/*
 * The IPv4 header of p when it has options (rare): checksum and options
 * walk, out of line so that the common path stays a few instructions long.
 */
static __attribute__((noinline)) int ag_hyg__ip_options(const struct ag_pkt *p)
{
	if (!ag_hyg__csum_ok(p))
		return AG_R_DROP_IP_CSUM;
	return ag_hyg__options(p);
}

/*
 * A martian source (RFC 1812 5.3.7, RFC 6890): this network (0/8), loopback
 * (127/8), link-local (169.254/16), multicast (224/4), reserved (240/4, and
 * so 255.255.255.255). Nothing legitimate arrives from one.
 */
static __always_inline int ag_hyg__martian(__be32 saddr)
{
	__u32 a = ag_ntohl(saddr), top = a >> 24;

	return top == 0 || top == 127 || top >= 224 || (a >> 16) == 0xa9fe;
}

/*
 * A TCP or UDP packet p (ag_parse() said AG_PARSE_OK) to one of our
 * addresses, arriving on ifc, which must have role need (AG_ROLE_CLIENT to a
 * VIP, AG_ROLE_BACKEND to a NAT address): checked before its flow or reverse
 * entry is used, on every packet (the established path too: a few ns). Then
 * the IPv4 header checksum, options (only when there are any) and the TCP
 * flag set. Port 0 is checked only where no entry matched (ag_hyg__port0()):
 * no flow or reverse entry is ever created with a port 0 in its key.
 */
static __always_inline int ag_hyg__ours(const struct ag_pkt *p, const struct ag_iface *ifc,
					__u8 need)
{
	int r;

	if (ag_unlikely(!(ifc->roles & need)))
		return AG_R_DROP_WRONG_ROLE;
	if (ag_likely((*(const __u8 *)p->ip & 0xf) == 5)) {
		if (ag_unlikely(!ag_hyg__sum_ok(ag_hyg__sum20((const __u8 *)p->ip))))
			return AG_R_DROP_IP_CSUM;
	} else {
		r = ag_hyg__ip_options(p);
		if (r != AG_HYG_OK)
			return r;
	}
	if (p->proto == IPPROTO_TCP && ag_unlikely(!ag_tcp__flags_valid(ag_tcp__flags(p))))
		return AG_R_DROP_TCP_FLAGS;
	return AG_HYG_OK;
}

/* TCP or UDP port 0 on either side (RFC 6335: reserved, no stack sends it). */
static __always_inline int ag_hyg__port0(const struct ag_pkt *p)
{
	return !p->sport || !p->dport;
}

/*
 * A packet to a NAT address (ag_hyg__ours() passed) that no reverse entry
 * takes: the host's (the NAT address is its own too), unless from or to
 * port 0.
 */
static __always_inline int ag_hyg__nat_miss(const struct ag_pkt *p)
{
	return ag_hyg__port0(p) ? AG_R_DROP_PORT_ZERO : AG_R_PASS_NO_LISTENER;
}

/*
 * The first packet of a client flow p (to a VIP, ag_hyg__ours() passed):
 * its source must be one a client can have. Checked only when a flow is
 * created: its packets after that carry the same source (the flow key).
 * A VIP or a NAT address as the source would make us send the backend's
 * replies to ourselves.
 */
static __always_inline int ag_hyg__new_flow(struct ag_tables *t, const struct ag_pkt *p)
{
	const struct ag_settings *s;
	__be32 src = p->ip->saddr;

	if (ag_hyg__martian(src))
		return AG_R_DROP_MARTIAN;
	s = ag_tables__settings(t);
	if ((s && ag_settings__is_nat_addr(s, src)) || ag_tables__is_vip(t, src))
		return AG_R_DROP_SOURCE_OURS;
	return AG_HYG_OK;
}

/*
 * What a packet to a VIP that parsing stopped at becomes (r: ag_parse()'s
 * result, the destination a VIP): a fragment cannot be reassembled here, and
 * anything but TCP and UDP has no listener; neither goes to a kernel that
 * does not own the VIP.
 */
static __always_inline int ag_hyg__to_vip(int r)
{
	if (r == AG_R_PASS_FRAGMENT)
		return AG_R_DROP_FRAGMENT;
	if (r == AG_R_PASS_NOT_L4)
		return AG_R_DROP_VIP_NOT_L4;
	return r;
}

/*
 * Parse frame [data, data_end) arriving on ifc with the ingress checks in
 * their order: tags, the L2 destination of an IPv4 frame, IPv4 and TCP/UDP.
 * What parsing stops at is the kernel's (its reason), unless it is addressed
 * to a VIP, which the kernel does not own. AG_PARSE_OK or the reason.
 */
static __always_inline int ag_hyg__ingress(struct ag_tables *t, struct ag_pkt *p,
					   const struct ag_iface *ifc, void *data, void *data_end)
{
	int r = ag_parse__l2(p, data, data_end);

	if (r == AG_PARSE_OK)
		r = ag_hyg__l2(p, ifc);
	if (r == AG_PARSE_OK)
		r = ag_parse__ip(p);
	if ((r == AG_R_PASS_FRAGMENT || r == AG_R_PASS_NOT_L4) &&
	    ag_tables__is_vip(t, p->ip->daddr))
		r = ag_hyg__to_vip(r);
	return r;
}

/*
 * A client's packet p (to no NAT address) that belongs to no flow, arriving
 * on ifc: the kernel's when it is not to a VIP (AG_R_PASS_NO_LISTENER), else
 * checked as every packet to a VIP and as the first of a flow. AG_HYG_OK:
 * on to the choice (choose.h) or the rule for a segment of no flow (admit.h).
 * Out of line: an established flow's packet never comes here.
 */
static __attribute__((noinline)) int ag_hyg__no_flow(struct ag_tables *t, const struct ag_pkt *p,
						     const struct ag_iface *ifc)
{
	int r;

	if (!ag_tables__is_vip(t, p->ip->daddr))
		return AG_R_PASS_NO_LISTENER;
	r = ag_hyg__ours(p, ifc, AG_ROLE_CLIENT);
	if (r != AG_HYG_OK)
		return r;
	if (ag_hyg__port0(p))
		return AG_R_DROP_PORT_ZERO;
	return ag_hyg__new_flow(t, p);
}

/*
 * anygate-dp has no kernel behind its ports for VLAN devices or link-local
 * multicast: what XDP hands to the kernel there, it drops (counted).
 */
static __always_inline int ag_hyg__no_kernel(int r)
{
	if (r == AG_R_PASS_VLAN_TAGGED)
		return AG_R_DROP_VLAN_TAGGED;
	if (r == AG_R_PASS_L2_MULTICAST)
		return AG_R_DROP_L2_MULTICAST;
	return r;
}

#endif /* AG_CORE_HYGIENE_H */
