/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Incremental Internet checksum updates (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
 *
 * All 16- and 32-bit values are the raw words as they sit in the packet
 * (network order fields loaded without swapping): one's complement addition
 * is byte-order independent as long as every term is loaded the same way, so
 * no swap is needed on either endianness.
 *
 * Several field changes are accumulated into one "diff" (a plain 32-bit sum of
 * ~old + new halves) and applied with a single fold. A diff holds at most a few
 * dozen 16-bit terms, far from overflowing 32 bits.
 */
#ifndef AG_CORE_CSUM_H
#define AG_CORE_CSUM_H

#include <linux/types.h>
#include <linux/ip.h>

#include "compat.h"

/* Fold a 32-bit one's complement accumulator into 16 bits (two folds absorb every carry). */
static __always_inline __u16 ag_csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* Add the replacement of a 16-bit field (old -> new) to a diff. */
static __always_inline __u32 ag_csum_diff16(__u32 diff, __u16 old, __u16 new_val)
{
	return diff + (__u16)~old + new_val;
}

/* Add the replacement of a 32-bit field (old -> new), e.g. an IPv4 address, to a diff. */
static __always_inline __u32 ag_csum_diff32(__u32 diff, __u32 old, __u32 new_val)
{
	return diff + (__u16) ~(old >> 16) + (__u16) ~(old & 0xffff) + (new_val >> 16) +
	       (new_val & 0xffff);
}

/*
 * Sum of n 16-bit words at w (raw, as in memory), added to sum: the start of
 * a checksum computed in full, for a header the fast path writes itself.
 * n is a constant: the loop unrolls. w must be 2-byte aligned.
 */
static __always_inline __u32 ag_csum_words(const __u16 *w, int n, __u32 sum)
{
	int i;

	AG_UNROLL
	for (i = 0; i < n; i++)
		sum += w[i];
	return sum;
}

/* Checksum after the changes in diff: ~(~HC + diff). */
static __always_inline __u16 ag_csum_apply(__u16 check, __u32 diff)
{
	return (__u16)~ag_csum_fold((__u32)(__u16)~check + diff);
}

/*
 * UDP: a zero checksum means "none" and stays zero; a computed zero is sent as
 * 0xffff (RFC 768), since zero on the wire would mean "none".
 */
static __always_inline __u16 ag_csum_apply_udp(__u16 check, __u32 diff)
{
	__u16 c;

	if (check == 0)
		return 0;
	c = ag_csum_apply(check, diff);
	return c ? c : 0xffff;
}

/* Replace one 16-bit field covered by *check (RFC 1624). */
static __always_inline void ag_csum_replace16(__sum16 *check, __u16 old, __u16 new_val)
{
	*check = (__sum16)ag_csum_apply((__u16)*check, ag_csum_diff16(0, old, new_val));
}

/* Replace one 32-bit field covered by *check. */
static __always_inline void ag_csum_replace32(__sum16 *check, __u32 old, __u32 new_val)
{
	*check = (__sum16)ag_csum_apply((__u16)*check, ag_csum_diff32(0, old, new_val));
}

/*
 * Decrement the TTL and update the header checksum. TTL shares a 16-bit word
 * with the protocol byte; the word is rebuilt from the bytes (no type punning)
 * in the same raw order the other terms are loaded in.
 * The caller checks ttl > 1 first.
 */
static __always_inline void ag_ipv4__dec_ttl(struct iphdr *ip)
{
	__u16 old_w = ag_htons((__u16)(((__u16)ip->ttl << 8) | ip->protocol));
	__u16 new_w = ag_htons((__u16)(((__u16)(__u8)(ip->ttl - 1) << 8) | ip->protocol));

	ip->ttl--;
	ip->check = (__sum16)ag_csum_apply((__u16)ip->check, ag_csum_diff16(0, old_w, new_w));
}

#endif /* AG_CORE_CSUM_H */
