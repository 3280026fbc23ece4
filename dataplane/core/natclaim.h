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
	AG_NAT_HOLD_BUSY = 0,	/* its flow is live (and not closed and quiet) */
	AG_NAT_HOLD_ORPHAN = 1, /* no flow uses it (gone, or moved), quiet: free */
	AG_NAT_HOLD_IDLE = 2,	/* its flow (*owner) is over: free once that flow is deleted */
};

/*
 * What holds the NAT port of reverse entry old, stored at key rk, at now under
 * the timeouts of s (enum ag_nat_hold). *owner is the key of the client flow
 * old names. The port is free when that flow has expired (ag_flow__live), or
 * is closed (RST, or FIN both ways) and the pair has been quiet for
 * AG_NAT_CLOSED_REUSE_NS: the closing time keeps late packets flowing, it
 * need not keep the port from a new flow.
 */
static __always_inline int ag_nat_rev__hold(struct ag_tables *t, const struct ag_flow_key *rk,
					    const struct ag_nat_rev *old,
					    const struct ag_settings *s, __u64 now,
					    struct ag_flow_key *owner)
{
	struct ag_flow of;
	__u64 idle;

	ag_flow_key__client_of(owner, old, rk->proto);
	if (ag_tables__flow(t, owner, &of) != 1 || !ag_nat_rev__belongs(rk, old, owner, &of))
		return ag_flow__is_idle(now, old->last_seen_ns, AG_NAT_CLOSED_REUSE_NS)
			   ? AG_NAT_HOLD_ORPHAN
			   : AG_NAT_HOLD_BUSY;
	idle = ag_flow__timeout_ns(s, rk->proto, of.tcp);
	if (rk->proto == IPPROTO_TCP && ag_tcp__closed(of.tcp) && idle > AG_NAT_CLOSED_REUSE_NS)
		idle = AG_NAT_CLOSED_REUSE_NS;
	if (!ag_flow__is_idle(now, of.last_seen_ns, idle) ||
	    !ag_flow__is_idle(now, old->last_seen_ns, idle))
		return AG_NAT_HOLD_BUSY;
	return AG_NAT_HOLD_IDLE;
}

#endif /* AG_CORE_NATCLAIM_H */
