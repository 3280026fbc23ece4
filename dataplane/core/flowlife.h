/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * When a flow is live, and when a NAT reverse entry belongs to a flow:
 * defined once, here, for the XDP program, anygate-dp, anygatectl and the
 * metrics, so that they cannot disagree on what a live flow is.
 *
 * The reverse table is read through one accessor that the including code
 * defines for its own tables (a map lookup in XDP, an rte_hash lookup in
 * anygate-dp, a bpf(2) lookup on the pinned map in anygated):
 *
 *   static __always_inline int ag_tables__nat_rev(struct ag_tables *t,
 *                                                 const struct ag_flow_key *rk,
 *                                                 struct ag_nat_rev *out);
 *
 * returning 1 with *out a copy of the entry at rk, or 0 when there is none.
 * struct ag_tables is the including code's own.
 */
#ifndef AG_CORE_FLOWLIFE_H
#define AG_CORE_FLOWLIFE_H

#include <linux/types.h>

#include "compat.h"
#include "abi.h"
#include "flow.h"

struct ag_tables;
static __always_inline int ag_tables__nat_rev(struct ag_tables *t, const struct ag_flow_key *rk,
					      struct ag_nat_rev *out);

/*
 * Does reverse entry r, stored at key rk, belong to flow f, stored at key k?
 * Both sides must agree: r names k as its client, and f's replies arrive with
 * tuple rk. Either alone proves nothing: a NAT port idle on both sides can be
 * taken over by another flow, and a re-steered flow moves to another port.
 */
static __always_inline int ag_nat_rev__belongs(const struct ag_flow_key *rk,
					       const struct ag_nat_rev *r,
					       const struct ag_flow_key *k, const struct ag_flow *f)
{
	return ag_nat_rev__owned_by(r, k) && ag_addr__equal(&f->backend_addr, &rk->saddr) &&
	       ag_addr__equal(&f->nat_addr, &rk->daddr) && f->backend_port == rk->sport &&
	       f->nat_port == rk->dport;
}

/*
 * The reverse entry of flow f (key k): *rk its key, and 1 with *r a copy when
 * the entry there is still f's; 0 when there is none or another flow took it.
 */
static __always_inline int ag_flow__own_rev(struct ag_tables *t, const struct ag_flow_key *k,
					    const struct ag_flow *f, struct ag_flow_key *rk,
					    struct ag_nat_rev *r)
{
	ag_flow_key__reply_of(rk, f, k->proto);
	return ag_tables__nat_rev(t, rk, r) == 1 && ag_nat_rev__belongs(rk, r, k, f);
}

/*
 * Flow k moved from old to the reverse key rk. Its old reverse entry goes (the
 * dead backend's late replies must find no flow): 1 with *ork its key when it
 * is still there, still old's, and not rk itself.
 */
static __always_inline int ag_flow__stale_rev(struct ag_tables *t, const struct ag_flow_key *k,
					      const struct ag_flow *old,
					      const struct ag_flow_key *rk, struct ag_flow_key *ork)
{
	struct ag_nat_rev r;

	return ag_flow__own_rev(t, k, old, ork, &r) &&
	       (!ag_addr__equal(&ork->saddr, &rk->saddr) || ork->sport != rk->sport ||
		!ag_addr__equal(&ork->daddr, &rk->daddr) || ork->dport != rk->dport);
}

/*
 * Is flow f (key k) live at now, under the timeouts of s for its state
 * (ag_flow__timeout_ns)? Seen within it on the client's side, or, idle
 * there, its reverse entry (still its own) seen within it: one-way traffic
 * from the server keeps a flow. A flow that is not live is over: its pair is
 * removed and its NAT port free. The reverse table is read only for a flow
 * idle on its own side.
 */
static __always_inline int ag_flow__live(struct ag_tables *t, const struct ag_flow_key *k,
					 const struct ag_flow *f, const struct ag_settings *s,
					 __u64 now)
{
	__u64 idle = ag_flow__timeout_ns(s, k->proto, f->tcp);
	struct ag_flow_key rk;
	struct ag_nat_rev r;

	if (!ag_flow__is_idle(now, f->last_seen_ns, idle))
		return 1;
	return ag_flow__own_rev(t, k, f, &rk, &r) && !ag_flow__is_idle(now, r.last_seen_ns, idle);
}

/* What a packet of a pinned, live flow does (ag_flow__on_backend). */
enum ag_hit_action {
	AG_HIT_FORWARD = 0, /* to its pinned backend */
	AG_HIT_RESET = 1,   /* TCP, backend down: RST to the client, flow forgotten */
	AG_HIT_RESTEER = 2, /* UDP, backend down: moved to the backend a new flow gets */
	AG_HIT_KEPT = 3,    /* backend down but still replying: forwarded (counted) */
};

/*
 * The one rule for a flow whose backend the control plane marked down, for
 * both fast paths. b is ag_backends[f->backend_id], NULL when the id is out of
 * the table (then nothing is known against it: forward). Probes that time out
 * say "down" for a dead backend and for an overloaded one alike; what tells
 * them apart is the flow's own return traffic: replies within
 * backend_alive_ns (the health checks' detection time) mean the backend is
 * alive for this flow, which then goes on. A flow the backend never answered
 * is not kept, however young. Only then is the reverse table
 * read (and *now, the caller's clock, needed).
 */
static __always_inline int ag_flow__on_backend(struct ag_tables *t, const struct ag_flow_key *k,
					       const struct ag_flow *f, const struct ag_backend *b,
					       const struct ag_settings *s, __u64 now)
{
	struct ag_flow_key rk;
	struct ag_nat_rev r;

	if (!b || !ag_flow__backend_down(f, b))
		return AG_HIT_FORWARD;
	if (s && s->backend_alive_ns && ag_flow__own_rev(t, k, f, &rk, &r) &&
	    (r.flags & AG_REV_REPLIED) &&
	    !ag_flow__is_idle(now, r.last_seen_ns, s->backend_alive_ns))
		return AG_HIT_KEPT;
	return k->proto == IPPROTO_TCP ? AG_HIT_RESET : AG_HIT_RESTEER;
}

#endif /* AG_CORE_FLOWLIFE_H */
