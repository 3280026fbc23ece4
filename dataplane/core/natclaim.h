/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * May a NAT port that a reverse entry holds be given to another flow? Decided
 * once, here, for the XDP program's claim, anygate-dp's claim and anygate-dp's
 * idle sweep. Only the decision: inserting, deleting and racing other CPUs
 * stay with each fast path, whose tables differ.
 *
 * Besides the reverse table (flowlife.h), the flow table is read through one
 * accessor that the including code defines for its own struct ag_tables:
 *
 *   static __always_inline int ag_tables__flow(struct ag_tables *t,
 *                                              const struct ag_flow_key *k,
 *                                              struct ag_flow *out);
 *
 * returning 1 with *out a copy of the flow at k, or 0 when there is none.
 */
#ifndef AG_CORE_NATCLAIM_H
#define AG_CORE_NATCLAIM_H

#include <linux/types.h>

#include "compat.h"
#include "abi.h"
#include "flow.h"
#include "flowlife.h"

static __always_inline int ag_tables__flow(struct ag_tables *t, const struct ag_flow_key *k,
					   struct ag_flow *out);

enum ag_nat_hold {
	AG_NAT_HOLD_BUSY = 0,	/* the entry or its flow saw traffic within the idle timeout */
	AG_NAT_HOLD_ORPHAN = 1, /* idle, and no flow uses it (gone, or moved to another port) */
	AG_NAT_HOLD_IDLE = 2,	/* idle on both sides: free once its flow (*owner) is deleted */
};

/*
 * What holds the NAT port of reverse entry old, stored at key rk, at now under
 * the idle timeouts of s (enum ag_nat_hold). *owner is the key of the client
 * flow old names. The flow table is read only for an idle entry.
 */
static __always_inline int ag_nat_rev__hold(struct ag_tables *t, const struct ag_flow_key *rk,
					    const struct ag_nat_rev *old,
					    const struct ag_settings *s, __u64 now,
					    struct ag_flow_key *owner)
{
	__u64 idle = ag_settings__idle_ns(s, rk->proto);
	struct ag_flow of;

	if (!ag_flow__is_idle(now, old->last_seen_ns, idle))
		return AG_NAT_HOLD_BUSY;
	ag_flow_key__client_of(owner, old, rk->proto);
	if (ag_tables__flow(t, owner, &of) != 1 || !ag_nat_rev__belongs(rk, old, owner, &of))
		return AG_NAT_HOLD_ORPHAN;
	if (!ag_flow__is_idle(now, of.last_seen_ns, idle))
		return AG_NAT_HOLD_BUSY;
	return AG_NAT_HOLD_IDLE;
}

#endif /* AG_CORE_NATCLAIM_H */
