/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The backend choice of a new flow, once, for both fast paths: listener,
 * listener state, TTL, settings, live slot, lookup entry, backend, endpoint
 * port, NAT address. Every refusal is an AG_R_* reason, and the order of the
 * checks decides which one a packet gets, so the XDP program and anygate-dp
 * refuse the same packet for the same reason (tests/bpf/test_dp_xcheck.c).
 * Also here: what both fast paths build from a choice (the reverse entry, the
 * flow entry, the reverse key of a NAT port, the NAT port of each attempt).
 * What pinning a flow results in (AG_FLOW_*) is in flow.h.
 *
 * The control plane's tables are read through these accessors, which the
 * including code defines for its own struct ag_tables (map lookups in XDP,
 * reads of the shared-memory segment in anygate-dp, arrays in the unit test):
 *
 *   ag_tables__listener(t, lk, &lid)   1 found, 0 no such listener, -1 unreadable
 *   ag_tables__lstate(t, lid, &ls)     1 with slot, affinity and flags, 0 none;
 *                                      slot is read exactly once (the publisher
 *                                      switches it with one store)
 *   ag_tables__settings(t)             the live settings, NULL when none
 *   ag_tables__lookup(t, idx, &bid)    1 with entry idx of the flat lookup
 *                                      table, 0 when idx is past its end
 *   ag_tables__backend(t, bid, &be)    1 with a copy (state read first), 0 none
 *   ag_tables__port_ovr(t, ok, &port)  1 found, 0 none, -1 unreadable
 */
#ifndef AG_CORE_CHOOSE_H
#define AG_CORE_CHOOSE_H

#include <linux/types.h>

#include "compat.h"
#include "abi.h"
#include "flow.h"
#include "hash.h"
#include "nat.h"

struct ag_tables;
static __always_inline int ag_tables__listener(struct ag_tables *t,
					       const struct ag_listener_key *lk, __u32 *lid);
static __always_inline int ag_tables__lstate(struct ag_tables *t, __u32 lid,
					     struct ag_listener_state *out);
static __always_inline const struct ag_settings *ag_tables__settings(struct ag_tables *t);
static __always_inline int ag_tables__lookup(struct ag_tables *t, __u32 idx, __u32 *bid);
static __always_inline int ag_tables__backend(struct ag_tables *t, __u32 bid,
					      struct ag_backend *out);
static __always_inline int ag_tables__port_ovr(struct ag_tables *t, const struct ag_port_ovr_key *k,
					       __be16 *port);

/* ag_choose() made a choice; any other result is the AG_R_* reason it did not. */
#define AG_CHOICE_OK AG_R__MAX

/* What a new flow gets: backend, endpoint port, NAT address, and h2 for its NAT port. */
struct ag_choice {
	const struct ag_settings *s; /* the settings it was made under (NAT ports, timeouts) */
	__u32 lid;
	__u32 bid;
	__be32 backend_addr;
	__be16 backend_port;
	__u16 pad;
	__be32 nat_addr;
	__u32 nat_index; /* of nat_addr in s->nat_addrs */
	__u32 h2;	 /* ag_hash__nat: the NAT address */
};

/* The listener key a packet of flow k is looked up with. */
static __always_inline void ag_listener_key__of(struct ag_listener_key *lk,
						const struct ag_flow_key *k)
{
	lk->vip = k->daddr.v4;
	lk->port = k->dport;
	lk->proto = k->proto;
	lk->pad = 0;
}

/* The backend entry of flow k in the live table of listener state ls (AG_CHOICE_OK: *bid). */
static __always_inline int ag_choose__entry(struct ag_tables *t, const struct ag_flow_key *k,
					    const struct ag_listener_state *ls,
					    const struct ag_settings *s, __u32 *bid)
{
	__u32 idx;

	if (ls->slot >= AG_LOOKUP_SLOTS)
		return AG_R_DROP_BAD_STATE;
	idx = ag_lookup__index(ls->slot, s->ring_size,
			       ag_hash__select(k, ls->affinity, s->hash_seed));
	/* ring_size and the table's size disagree */
	if (!ag_tables__lookup(t, idx, bid))
		return AG_R_DROP_BAD_STATE;
	if (*bid == AG_BACKEND_NONE)
		return AG_R_DROP_NO_BACKEND;
	return AG_CHOICE_OK;
}

/*
 * Choose for flow k to a VIP, whose packet has IPv4 TTL ttl. Returns
 * AG_CHOICE_OK with *c filled in, else the AG_R_* reason the packet is not
 * forwarded (no listener on its port: AG_R_DROP_VIP_NO_LISTENER; the caller
 * hands packets to addresses that are not VIPs to the kernel before asking).
 * Nothing is written to any table: pinning the choice is the caller's.
 */
static __always_inline int ag_choose(struct ag_tables *t, const struct ag_flow_key *k, __u8 ttl,
				     struct ag_choice *c)
{
	struct ag_listener_key lk;
	struct ag_listener_state ls;
	struct ag_port_ovr_key ok;
	struct ag_backend be;
	__be16 port;
	int r;

	ag_listener_key__of(&lk, k);
	r = ag_tables__listener(t, &lk, &c->lid);
	if (r == 0)
		return AG_R_DROP_VIP_NO_LISTENER;
	if (r < 0 || !ag_tables__lstate(t, c->lid, &ls) || !(ls.flags & AG_LF_ACTIVE))
		return AG_R_DROP_BAD_STATE;
	/* Before any state is created (time exceeded is not sent: issue 11). */
	if (ttl <= 1)
		return AG_R_DROP_TTL;
	c->s = ag_tables__settings(t);
	if (!c->s || !ag_settings__usable(c->s))
		return AG_R_DROP_BAD_STATE;
	r = ag_choose__entry(t, k, &ls, c->s, &c->bid);
	if (r != AG_CHOICE_OK)
		return r;
	if (!ag_tables__backend(t, c->bid, &be) || be.state != AG_BACKEND_UP)
		return AG_R_DROP_NO_BACKEND;
	if (be.mode != AG_MODE_NAT)
		return AG_R_DROP_BAD_STATE;
	c->backend_addr = be.addr;

	ok.group_id = be.group_id;
	ok.port = k->dport;
	ok.pad = 0;
	r = ag_tables__port_ovr(t, &ok, &port);
	if (r < 0)
		return AG_R_DROP_BAD_STATE;
	c->backend_port = r ? port : k->dport;
	c->h2 = ag_hash__nat(k, c->s->hash_seed);
	c->nat_index = ag_nat__addr_index(c->h2, c->s->nat_addr_count);
	c->nat_addr = c->s->nat_addrs[c->nat_index];
	c->pad = 0;
	return AG_CHOICE_OK;
}

/*
 * NAT port (network order) of claim attempt n for choice c, from the claiming
 * CPU's cursor (flow.h). A moved flow (moved, its port own) tries its own
 * port first: the backend's replies keep their tuple on our side.
 */
static __always_inline __be16 ag_choice__nat_port(const struct ag_choice *c, __u32 cursor, __u32 n,
						  int moved, __be16 own)
{
	if (moved && n == 0)
		return own;
	return ag_htons(ag_nat__port_at(cursor, n, c->s->nat_port_min, c->s->nat_port_max));
}

/* The reverse (NAT) key choice c claims for flow k with NAT port (network order). */
static __always_inline void ag_choice__rev_key(struct ag_flow_key *rk, const struct ag_choice *c,
					       const struct ag_flow_key *k, __be16 port)
{
	ag_addr__set4(&rk->saddr, c->backend_addr);
	ag_addr__set4(&rk->daddr, c->nat_addr);
	ag_flow_key__ports(rk, c->backend_port, port, k->proto);
}

/* The reverse entry of flow k under choice c: the backend's replies go back to k's client. */
static __always_inline void ag_choice__rev(struct ag_nat_rev *r, const struct ag_choice *c,
					   const struct ag_flow_key *k, __u64 now)
{
	__builtin_memset(r, 0, sizeof(*r));
	r->last_seen_ns = now;
	r->client_addr = k->saddr;
	r->vip = k->daddr;
	r->family = k->family;
	r->client_port = k->sport;
	r->vip_port = k->dport;
	r->backend_id = c->bid;
	r->listener_id = (__u16)c->lid;
}

/*
 * The flow entry of choice c with the NAT port its reverse key rk claimed (no
 * next hop yet). A TCP flow starts half-open: only a SYN creates one.
 */
static __always_inline void ag_choice__flow(struct ag_flow *f, const struct ag_choice *c,
					    const struct ag_flow_key *rk, __u64 now)
{
	__builtin_memset(f, 0, sizeof(*f));
	f->last_seen_ns = now;
	f->backend_id = c->bid;
	f->listener_id = (__u16)c->lid;
	f->nat_port = rk->dport;
	f->nat_addr = rk->daddr;
	f->backend_addr = rk->saddr;
	f->backend_port = c->backend_port;
	f->tcp = rk->proto == IPPROTO_TCP ? AG_TCP_SYN_C : 0;
}

#endif /* AG_CORE_CHOOSE_H */
