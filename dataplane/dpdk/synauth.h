/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygate-dp's SYN authentication allowlist (the XDP program's ag_syn_auth
 * LRU map): client addresses that answered a SYN challenge (admit.h), each
 * with the time it did. One table for every lcore, so a client verified on
 * one lcore is admitted on all of them.
 *
 * Direct-mapped and lossy, as the LRU map it stands for: an address hashes
 * to one slot, and a newly verified address overwrites whatever was there.
 * Losing an entry only costs that client one more challenge, and a flood of
 * verified sources can never lock a new one out (a hash table with no room
 * could). Writes are rare (one per answered challenge), reads happen only
 * for SYNs past the budget, so there is no lock: a slot's time is its
 * sequence number (0 while it is written) and a reader that sees it change
 * under it treats the address as unknown.
 *
 * No DPDK here: the cross-check test reads it as anygate-dp does.
 */
#ifndef AG_DP_SYNAUTH_H
#define AG_DP_SYNAUTH_H

#include <linux/types.h>

#include "abi.h"
#include "compat.h"
#include "consts.h"
#include "flow.h"
#include "hash.h"

_Static_assert((AG_SYN_AUTH_ENTRIES & (AG_SYN_AUTH_ENTRIES - 1)) == 0,
	       "AG_SYN_AUTH_ENTRIES power of two");

struct ag_dp_synauth_slot {
	__u64 when; /* when addr answered; 0: empty, or being written */
	union ag_addr addr;
	__u64 pad;
};
_Static_assert(sizeof(struct ag_dp_synauth_slot) == 32, "two slots per cache line");

struct ag_dp_synauth {
	__u32 seed; /* random per start: which addresses share a slot is not predictable */
	__u32 pad;
	struct ag_dp_synauth_slot slot[AG_SYN_AUTH_ENTRIES];
};

/* The one slot address a may be in. */
static inline __u32 ag_dp_synauth__index(const struct ag_dp_synauth *t, const union ag_addr *a)
{
	return ag_jhash_4words(a->w[0], a->w[1], a->w[2], a->w[3], t->seed) &
	       (AG_SYN_AUTH_ENTRIES - 1);
}

/* Address a answered a challenge at now (now != 0). */
static inline void ag_dp_synauth__record(struct ag_dp_synauth *t, const union ag_addr *a, __u64 now)
{
	struct ag_dp_synauth_slot *s = &t->slot[ag_dp_synauth__index(t, a)];
	int i;

	__atomic_store_n(&s->when, 0, __ATOMIC_RELAXED);
	/* The 0 is visible before any word of the new address. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (i = 0; i < 4; i++)
		__atomic_store_n(&s->addr.w[i], a->w[i], __ATOMIC_RELAXED);
	__atomic_store_n(&s->when, now, __ATOMIC_RELEASE);
}

/* 1 with *when the time address a answered a challenge, 0 when not known. */
static inline int ag_dp_synauth__lookup(const struct ag_dp_synauth *t, const union ag_addr *a,
					__u64 *when)
{
	const struct ag_dp_synauth_slot *s = &t->slot[ag_dp_synauth__index(t, a)];
	union ag_addr seen;
	__u64 w;
	int i;

	w = __atomic_load_n(&s->when, __ATOMIC_ACQUIRE);
	if (!w)
		return 0;
	for (i = 0; i < 4; i++)
		seen.w[i] = __atomic_load_n(&s->addr.w[i], __ATOMIC_RELAXED);
	/* The address words are read before the time is read again. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&s->when, __ATOMIC_RELAXED) != w || !ag_addr__equal(&seen, a))
		return 0;
	*when = w;
	return 1;
}

#endif /* AG_DP_SYNAUTH_H */
