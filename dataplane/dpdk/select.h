/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygate-dp's tables as dataplane/core reads them (struct ag_tables), and
 * the backend choice of a new flow on them: ag_choose() (choose.h), the one
 * the XDP program makes, over the shared-memory segment. Listener state and
 * backends are read with the acquire loads the publisher's release stores
 * pair with; the lookup tables and settings as abi_shm.h gives them.
 *
 * Also the admission of new flows and the rule for a TCP segment of no flow
 * (admit.h), with the SYN authentication allowlist (synauth.h) as its table.
 *
 * No DPDK here, so the cross-check test (tests/bpf/test_dp_xcheck.c) runs it
 * beside the XDP program on the same tables. The flow and reverse tables
 * (rte_hash) are flows.c's, which defines their accessors.
 */
#ifndef AG_DP_SELECT_H
#define AG_DP_SELECT_H

#include <linux/types.h>

#include "abi.h"
#include "abi_shm.h"
#include "compat.h"
#include "choose.h"
#include "admit.h"
#include "hygiene.h"
#include "synauth.h"

struct rte_hash;

struct ag_tables {
	const struct ag_shm_view *seg;	    /* the control plane's tables (validated layout) */
	const struct ag_settings *settings; /* a consistent copy of the live ones, or NULL */
	const struct rte_hash *flows;	    /* flows.c: flow key -> struct ag_dp_flow */
	const struct rte_hash *revs;	    /* flows.c: reverse key -> struct ag_dp_rev */
	const struct ag_dp_synauth *syn;    /* verified sources, NULL: none */
};

static __always_inline int ag_tables__listener(struct ag_tables *t,
					       const struct ag_listener_key *lk, __u32 *lid)
{
	return ag_shm__lkey_get(t->seg, lk, lid);
}

static __always_inline int ag_tables__lstate(struct ag_tables *t, __u32 lid,
					     struct ag_listener_state *out)
{
	const struct ag_listener_state *ls;

	if (lid >= AG_MAX_LISTENERS)
		return 0;
	ls = &ag_shm__lstate(t->seg)[lid];
	out->flags = __atomic_load_n(&ls->flags, __ATOMIC_ACQUIRE);
	/* The publisher switches slot with one store; read it exactly once. */
	out->slot = __atomic_load_n(&ls->slot, __ATOMIC_ACQUIRE);
	out->affinity = AG_READ_ONCE(ls->affinity);
	return 1;
}

static __always_inline const struct ag_settings *ag_tables__settings(struct ag_tables *t)
{
	return t->settings;
}

static __always_inline int ag_tables__lookup(struct ag_tables *t, __u32 idx, __u32 *bid)
{
	/* The bucket must exist (as the ARRAY map lookup in XDP). */
	if (ag_lookup__bucket(idx) >= t->seg->lay.lookup_buckets)
		return 0;
	*bid = AG_READ_ONCE(ag_shm__lookup(t->seg)[idx]);
	return 1;
}

static __always_inline int ag_tables__backend(struct ag_tables *t, __u32 bid,
					      struct ag_backend *out)
{
	const struct ag_backend *be;

	if (bid >= AG_MAX_BACKENDS)
		return 0;
	be = &ag_shm__backends(t->seg)[bid];
	out->state = __atomic_load_n(&be->state, __ATOMIC_ACQUIRE);
	out->mode = AG_READ_ONCE(be->mode);
	out->addr = AG_READ_ONCE(be->addr);
	out->group_id = AG_READ_ONCE(be->group_id);
	return 1;
}

static __always_inline int ag_tables__port_ovr(struct ag_tables *t, const struct ag_port_ovr_key *k,
					       __be16 *port)
{
	return ag_shm__ovr_get(t->seg, k, port);
}

static __always_inline int ag_tables__is_vip(struct ag_tables *t, __be32 addr)
{
	return ag_shm__vip_get(t->seg, addr) == 1;
}

static __always_inline int ag_tables__syn_verified(struct ag_tables *t, const union ag_addr *a,
						   __u64 *when)
{
	return t->syn && ag_dp_synauth__lookup(t->syn, a, when);
}

/*
 * ag_choose() on segment v under settings s (a consistent copy of the live
 * settings, or NULL when none could be read), for the cross-check test.
 */
static __always_inline int ag_dp__choose(const struct ag_shm_view *v, const struct ag_settings *s,
					 const struct ag_flow_key *k, __u8 ttl, struct ag_choice *c)
{
	struct ag_tables t = {.seg = v, .settings = s, .flows = 0, .revs = 0, .syn = 0};

	return ag_choose(&t, k, ttl, c);
}

/*
 * ag_hyg__ingress() on segment v: frame [data, data_end) arriving on port
 * ifc, parsed and checked. What the XDP program hands to the kernel's VLAN
 * devices or link-local multicast, anygate-dp drops (ag_hyg__no_kernel).
 */
static __always_inline int ag_dp__ingress(const struct ag_shm_view *v, struct ag_pkt *p,
					  const struct ag_iface *ifc, void *data, void *data_end)
{
	struct ag_tables t = {.seg = v, .settings = 0, .flows = 0, .revs = 0, .syn = 0};

	return ag_hyg__no_kernel(ag_hyg__ingress(&t, p, ifc, data, data_end));
}

/* ag_hyg__no_flow() on segment v under settings s: a client's packet p of no flow. */
static __always_inline int ag_dp__no_flow(const struct ag_shm_view *v, const struct ag_settings *s,
					  const struct ag_pkt *p, const struct ag_iface *ifc)
{
	struct ag_tables t = {.seg = v, .settings = s, .flows = 0, .revs = 0, .syn = 0};

	return ag_hyg__no_flow(&t, p, ifc);
}

/*
 * ag_tcp__not_syn() on segment v under settings s: what anygate-dp does with
 * TCP segment p of flow k (flags) that is not a SYN and has no flow.
 */
static __always_inline int ag_dp__not_syn(const struct ag_shm_view *v, const struct ag_settings *s,
					  const struct ag_pkt *p, const struct ag_flow_key *k,
					  __u8 flags, __u64 now)
{
	struct ag_tables t = {.seg = v, .settings = s, .flows = 0, .revs = 0, .syn = 0};

	return ag_tcp__not_syn(&t, p, k, flags, now);
}

#endif /* AG_DP_SELECT_H */
