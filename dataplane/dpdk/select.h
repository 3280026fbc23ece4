/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The backend choice of a new flow, from the shared-memory tables: the same
 * steps, checks and reasons, in the same order, as ag_new_flow() in
 * bpf/anygate.bpf.c, built from the same dataplane/core functions (hash,
 * lookup index, NAT address and port candidates). No DPDK here, so the
 * cross-check test (tests/bpf/test_dp_xcheck.c) runs it beside the XDP
 * program on the same tables.
 */
#ifndef AG_DP_SELECT_H
#define AG_DP_SELECT_H

#include <linux/types.h>

#include "abi.h"
#include "abi_shm.h"
#include "compat.h"
#include "flow.h"
#include "hash.h"
#include "nat.h"

/* What a new flow gets: backend, endpoint port, NAT address, and h2 for the NAT port. */
struct ag_dp_choice {
	__u32 lid;
	__u32 bid;
	__be32 backend_addr;
	__be16 backend_port;
	__u16 pad;
	__be32 nat_addr;
	__u32 h2; /* ag_hash__nat: ag_nat__port_candidate(h2, attempt, ...) */
	__u8 affinity;
};

/*
 * Choose for flow k (a packet with IPv4 TTL ttl) under settings s (a
 * consistent copy of the live settings, or NULL when none could be read).
 * Returns AG_PARSE_OK with *c filled in, else the AG_R_* reason the packet is
 * not forwarded, exactly as the XDP program decides it.
 */
static __always_inline int ag_dp__choose(const struct ag_shm_hdr *h, const struct ag_settings *s,
					 const struct ag_flow_key *k, __u8 ttl,
					 struct ag_dp_choice *c)
{
	struct ag_listener_key lk = {
	    .vip = k->daddr,
	    .port = k->dport,
	    .proto = k->proto,
	    .pad = 0,
	};
	const struct ag_listener_state *ls;
	const struct ag_backend *be;
	struct ag_port_ovr_key ok;
	__u32 lid, bid, slot, idx, hsh;
	__be16 ovr_port;
	__u8 flags, state, mode;
	int r;

	r = ag_shm__lkey_get(h, &lk, &lid);
	if (r == 0)
		return AG_R_PASS_NO_LISTENER;
	if (r < 0)
		return AG_R_DROP_BAD_STATE;
	if (lid >= AG_MAX_LISTENERS)
		return AG_R_DROP_BAD_STATE;
	ls = &ag_shm__lstate(h)[lid];
	flags = __atomic_load_n(&ls->flags, __ATOMIC_ACQUIRE);
	if (!(flags & AG_LF_ACTIVE))
		return AG_R_DROP_BAD_STATE;
	/* Before any state is created: the kernel answers with time exceeded. */
	if (ttl <= 1)
		return AG_R_PASS_TTL;
	if (!s || !ag_settings__usable(s))
		return AG_R_DROP_BAD_STATE;

	/* The publisher switches slot with one store; read it exactly once. */
	slot = __atomic_load_n(&ls->slot, __ATOMIC_ACQUIRE);
	if (slot >= AG_LOOKUP_SLOTS)
		return AG_R_DROP_BAD_STATE;
	c->affinity = AG_READ_ONCE(ls->affinity);
	hsh = ag_hash__select(k, c->affinity, s->hash_seed);
	idx = ag_lookup__index(slot, s->ring_size, hsh);
	/* The bucket must exist (as the ARRAY map lookup in XDP). */
	if (ag_lookup__bucket(idx) >= h->ident.lookup_buckets)
		return AG_R_DROP_BAD_STATE;
	bid = AG_READ_ONCE(ag_shm__lookup(h)[idx]);
	if (bid == AG_BACKEND_NONE)
		return AG_R_DROP_NO_BACKEND;
	if (bid >= AG_MAX_BACKENDS)
		return AG_R_DROP_NO_BACKEND;
	be = &ag_shm__backends(h)[bid];
	state = __atomic_load_n(&be->state, __ATOMIC_ACQUIRE);
	if (state != AG_BACKEND_UP)
		return AG_R_DROP_NO_BACKEND;
	mode = AG_READ_ONCE(be->mode);
	if (mode != AG_MODE_NAT)
		return AG_R_DROP_BAD_STATE;

	c->lid = lid;
	c->bid = bid;
	c->backend_addr = AG_READ_ONCE(be->addr);
	ok.group_id = AG_READ_ONCE(be->group_id);
	ok.port = k->dport;
	ok.pad = 0;
	r = ag_shm__ovr_get(h, &ok, &ovr_port);
	if (r < 0)
		return AG_R_DROP_BAD_STATE;
	c->backend_port = r ? ovr_port : k->dport;
	c->h2 = ag_hash__nat(k, s->hash_seed);
	c->nat_addr = s->nat_addrs[ag_nat__addr_index(c->h2, s->nat_addr_count)];
	c->pad = 0;
	return AG_PARSE_OK;
}

/* The reverse (NAT) key a choice claims with NAT port `port` (host order). */
static __always_inline void ag_dp__rev_key(struct ag_flow_key *rk, const struct ag_dp_choice *c,
					   __u8 proto, __u16 port)
{
	rk->saddr = c->backend_addr;
	rk->daddr = c->nat_addr;
	rk->sport = c->backend_port;
	rk->dport = ag_htons(port);
	rk->proto = proto;
	rk->pad[0] = 0;
	rk->pad[1] = 0;
	rk->pad[2] = 0;
}

#endif /* AG_DP_SELECT_H */
