/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a sweeper does with a flow: anygated's for the XDP maps
 * (controlplane/fastpath/xdp_flows.c) and anygate-dp's main lcore for its
 * own tables decide by the same rule. A flow that is not live (flowlife.h)
 * has expired; when the table is under pressure, a half-open or closing flow
 * quiet on both sides for AG_SWEEP_EVICT_QUIET_NS is evicted before its
 * timeout. An established or UDP flow within its timeout is never removed
 * to make room. Reads the reverse table through flowlife.h's accessor.
 * (The two constants are also in xdp_flows.h, with the same values.)
 */
#ifndef AG_CORE_SWEEP_H
#define AG_CORE_SWEEP_H

#include <linux/types.h>

#include "compat.h"
#include "abi.h"
#include "flow.h"
#include "flowlife.h"

/*
 * Under pressure: the table is at least this full (percent of max_flows), or
 * the fast path refused a flow for a full table since the sweeper last looked.
 */
#define AG_SWEEP_PRESSURE_PCT	90
/* Quiet this long on both sides, a half-open or closing flow may go: no handshake is cut. */
#define AG_SWEEP_EVICT_QUIET_NS 1000000000ull

enum ag_sweep_verdict {
	AG_SWEEP_KEEP = 0,
	AG_SWEEP_EXPIRED = 1, /* not live: idle past its state's timeout */
	AG_SWEEP_EVICTED = 2, /* live, but half-open or closing, quiet, and room is needed */
};

/* Is a table of entries (of max) under pressure? refused: a full-table refusal since last. */
static __always_inline int ag_sweep__pressure(__u64 entries, __u64 max, int refused)
{
	return refused || entries * 100 >= max * AG_SWEEP_PRESSURE_PCT;
}

/* What becomes of flow f (key k) at now under settings s (enum ag_sweep_verdict). */
static __always_inline int ag_sweep__verdict(struct ag_tables *t, const struct ag_flow_key *k,
					     const struct ag_flow *f, const struct ag_settings *s,
					     __u64 now, int pressure)
{
	int state = ag_flow__state(k->proto, f->tcp);
	struct ag_flow_key rk;
	struct ag_nat_rev r;

	if (!ag_flow__live(t, k, f, s, now))
		return AG_SWEEP_EXPIRED;
	if (!pressure || (state != AG_FLOW_STATE_HALF_OPEN && state != AG_FLOW_STATE_CLOSING))
		return AG_SWEEP_KEEP;
	if (!ag_flow__is_idle(now, f->last_seen_ns, AG_SWEEP_EVICT_QUIET_NS))
		return AG_SWEEP_KEEP;
	if (ag_flow__own_rev(t, k, f, &rk, &r) &&
	    !ag_flow__is_idle(now, r.last_seen_ns, AG_SWEEP_EVICT_QUIET_NS))
		return AG_SWEEP_KEEP;
	return AG_SWEEP_EVICTED;
}

#endif /* AG_CORE_SWEEP_H */
