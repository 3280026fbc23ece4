/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The flow hash: Bob Jenkins' lookup3 "hashword" over the flow key, seeded.
 * Every edge with the same seed computes the same value for the same flow,
 * whatever its byte order: the words are built from the fields in host order,
 * not loaded from the key's memory. The whole key is mixed (Linux hands out
 * even ephemeral ports; a hash of part of the tuple skews), and the final mix
 * avalanches every input bit, so `hash % M` is even for any M.
 */
#ifndef AG_CORE_HASH_H
#define AG_CORE_HASH_H

#include <linux/types.h>

#include "compat.h"
#include "abi.h"

#define AG_JHASH_INIT	 0xdeadbeefu
/* Salt of the second hash (NAT address and port): independent of the backend choice. */
#define AG_HASH_NAT_SALT 0x9e3779b9u

static __always_inline __u32 ag_rol32(__u32 x, int k)
{
	return (x << k) | (x >> (32 - k));
}

#define AG_JHASH_MIX(a, b, c)                                                                      \
	do {                                                                                       \
		a -= c;                                                                            \
		a ^= ag_rol32(c, 4);                                                               \
		c += b;                                                                            \
		b -= a;                                                                            \
		b ^= ag_rol32(a, 6);                                                               \
		a += c;                                                                            \
		c -= b;                                                                            \
		c ^= ag_rol32(b, 8);                                                               \
		b += a;                                                                            \
		a -= c;                                                                            \
		a ^= ag_rol32(c, 16);                                                              \
		c += b;                                                                            \
		b -= a;                                                                            \
		b ^= ag_rol32(a, 19);                                                              \
		a += c;                                                                            \
		c -= b;                                                                            \
		c ^= ag_rol32(b, 4);                                                               \
		b += a;                                                                            \
	} while (0)

#define AG_JHASH_FINAL(a, b, c)                                                                    \
	do {                                                                                       \
		c ^= b;                                                                            \
		c -= ag_rol32(b, 14);                                                              \
		a ^= c;                                                                            \
		a -= ag_rol32(c, 11);                                                              \
		b ^= a;                                                                            \
		b -= ag_rol32(a, 25);                                                              \
		c ^= b;                                                                            \
		c -= ag_rol32(b, 16);                                                              \
		a ^= c;                                                                            \
		a -= ag_rol32(c, 4);                                                               \
		b ^= a;                                                                            \
		b -= ag_rol32(a, 14);                                                              \
		c ^= b;                                                                            \
		c -= ag_rol32(b, 24);                                                              \
	} while (0)

/* lookup3 hashword() of four words. */
static __always_inline __u32 ag_jhash_4words(__u32 w0, __u32 w1, __u32 w2, __u32 w3, __u32 seed)
{
	__u32 a, b, c;

	a = b = c = AG_JHASH_INIT + (4u << 2) + seed;
	a += w0;
	b += w1;
	c += w2;
	AG_JHASH_MIX(a, b, c);
	a += w3;
	AG_JHASH_FINAL(a, b, c);
	return c;
}

/* lookup3 hashword() of three words. */
static __always_inline __u32 ag_jhash_3words(__u32 w0, __u32 w1, __u32 w2, __u32 seed)
{
	__u32 a, b, c;

	a = b = c = AG_JHASH_INIT + (3u << 2) + seed;
	a += w0;
	b += w1;
	c += w2;
	AG_JHASH_FINAL(a, b, c);
	return c;
}

/*
 * Hash of the whole 5-tuple (AG_AFFINITY_NONE). Pad bytes do not take part.
 * IPv4 keys hash their one address word (the same value on every edge and
 * every version since the first).
 */
static __always_inline __u32 ag_hash__flow(const struct ag_flow_key *k, __u32 seed)
{
	return ag_jhash_4words(ag_ntohl(k->saddr.v4), ag_ntohl(k->daddr.v4),
			       ((__u32)ag_ntohs(k->sport) << 16) | ag_ntohs(k->dport), k->proto,
			       seed);
}

/* Hash of (client address, VIP, protocol): AG_AFFINITY_SOURCE_IP, all ports of a client stick. */
static __always_inline __u32 ag_hash__source(const struct ag_flow_key *k, __u32 seed)
{
	return ag_jhash_3words(ag_ntohl(k->saddr.v4), ag_ntohl(k->daddr.v4), k->proto, seed);
}

/* The backend-choosing hash for a listener's affinity (enum ag_affinity). */
static __always_inline __u32 ag_hash__select(const struct ag_flow_key *k, __u8 affinity, __u32 seed)
{
	if (affinity == AG_AFFINITY_SOURCE_IP)
		return ag_hash__source(k, seed);
	return ag_hash__flow(k, seed);
}

/*
 * Second hash of the 5-tuple: picks the NAT address of a new flow.
 * Salted, so it is independent of the backend choice even under source affinity.
 */
static __always_inline __u32 ag_hash__nat(const struct ag_flow_key *k, __u32 seed)
{
	return ag_hash__flow(k, seed ^ AG_HASH_NAT_SALT);
}

/* murmur3 fmix32: a cheap full-avalanche remix (NAT port cursor starts). */
static __always_inline __u32 ag_hash__mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

#endif /* AG_CORE_HASH_H */
