/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow keys and flow life: the forward key from a packet, the reverse (NAT)
 * key of a flow and back, idle expiry, last_seen refresh, NAT port choice and
 * the sanity of ag_settings. Pure functions over abi.h structures; what reads
 * the tables is in flowlife.h, natclaim.h and choose.h.
 */
#ifndef AG_CORE_FLOW_H
#define AG_CORE_FLOW_H

#include <linux/types.h>
#include <linux/in.h>

#include "compat.h"
#include "abi.h"
#include "hash.h"
#include "parse.h"

/*
 * Pinning a new flow (choose.h, then each fast path's claim) ends in an
 * AG_R_* reason (refused) or one of these, and then the flow to forward on is
 * known.
 */
#define AG_FLOW_CREATED	  (AG_R__MAX + 1) /* a new flow, pinned by us */
#define AG_FLOW_JOINED	  (AG_R__MAX + 2) /* another CPU or lcore pinned (or moved) it first */
#define AG_FLOW_RESTEERED (AG_R__MAX + 3) /* an existing flow moved to a live backend */

/* 5-tuple of a parsed packet (AG_PARSE_OK), pad zeroed: keys are compared as bytes. */
static __always_inline void ag_flow_key__from_pkt(struct ag_flow_key *k, const struct ag_pkt *p)
{
	k->saddr = p->ip->saddr;
	k->daddr = p->ip->daddr;
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->pad[0] = 0;
	k->pad[1] = 0;
	k->pad[2] = 0;
}

/* Key of the backend's replies to flow f: backend -> NAT address. */
static __always_inline void ag_flow_key__reply_of(struct ag_flow_key *k, const struct ag_flow *f,
						  __u8 proto)
{
	k->saddr = f->backend_addr;
	k->daddr = f->nat_addr;
	k->sport = f->backend_port;
	k->dport = f->nat_port;
	k->proto = proto;
	k->pad[0] = 0;
	k->pad[1] = 0;
	k->pad[2] = 0;
}

/* Key of the client flow that owns reverse entry r: client -> VIP. */
static __always_inline void ag_flow_key__client_of(struct ag_flow_key *k,
						   const struct ag_nat_rev *r, __u8 proto)
{
	k->saddr = r->client_addr;
	k->daddr = r->vip;
	k->sport = r->client_port;
	k->dport = r->vip_port;
	k->proto = proto;
	k->pad[0] = 0;
	k->pad[1] = 0;
	k->pad[2] = 0;
}

/* Does reverse entry r belong to the client flow with key k? (A NAT port can be taken over.) */
static __always_inline int ag_nat_rev__owned_by(const struct ag_nat_rev *r,
						const struct ag_flow_key *k)
{
	return r->client_addr == k->saddr && r->vip == k->daddr && r->client_port == k->sport &&
	       r->vip_port == k->dport;
}

/*
 * Is the backend flow f is pinned to down (TCP: answer with a RST; UDP:
 * re-steer)? b is ag_backends[f->backend_id]. Only when the entry still
 * describes f's backend: after a reload an id may name another endpoint,
 * whose health says nothing about f's. DRAINING flows continue.
 */
static __always_inline int ag_flow__backend_down(const struct ag_flow *f,
						 const struct ag_backend *b)
{
	return b->state == AG_BACKEND_DOWN && b->addr == f->backend_addr;
}

/* What a packet of a pinned, live flow does (ag_flow__on_backend). */
enum ag_hit_action {
	AG_HIT_FORWARD = 0, /* to its pinned backend */
	AG_HIT_RESET = 1,   /* TCP, backend down: RST to the client, flow forgotten */
	AG_HIT_RESTEER = 2, /* UDP, backend down: moved to the backend a new flow gets */
};

/*
 * The one rule for a flow whose backend the control plane marked down, for
 * both fast paths: b is ag_backends[f->backend_id], NULL when the id is out
 * of the table (then nothing is known against it: forward).
 */
static __always_inline int ag_flow__on_backend(const struct ag_flow *f, const struct ag_backend *b,
					       __u8 proto)
{
	if (!b || !ag_flow__backend_down(f, b))
		return AG_HIT_FORWARD;
	return proto == IPPROTO_TCP ? AG_HIT_RESET : AG_HIT_RESTEER;
}

/*
 * Settings usable for new flows: written by this ABI, ring size and NAT
 * parameters within limits (the modulo divisors below are never zero).
 */
static __always_inline int ag_settings__usable(const struct ag_settings *s)
{
	return s->abi_version == AG_ABI_VERSION && s->ring_size >= AG_RING_SIZE_MIN &&
	       s->ring_size <= AG_RING_SIZE_MAX && s->nat_addr_count >= 1 &&
	       s->nat_addr_count <= AG_MAX_NAT_ADDRS && s->nat_port_min != 0 &&
	       s->nat_port_min <= s->nat_port_max;
}

static __always_inline __u64 ag_settings__idle_ns(const struct ag_settings *s, __u8 proto)
{
	return proto == IPPROTO_TCP ? s->tcp_idle_ns : s->udp_idle_ns;
}

/*
 * Time since last_seen. Another CPU may have stamped a slightly later
 * bpf_ktime_get_ns() than ours: that counts as "just now", not as 2^64 ns ago.
 */
static __always_inline __u64 ag_flow__age(__u64 now, __u64 last_seen)
{
	return now > last_seen ? now - last_seen : 0;
}

static __always_inline int ag_flow__is_idle(__u64 now, __u64 last_seen, __u64 idle_ns)
{
	return ag_flow__age(now, last_seen) > idle_ns;
}

/* last_seen is rewritten at most once per granularity: no cache line dirtied per packet. */
static __always_inline int ag_flow__needs_refresh(__u64 now, __u64 last_seen)
{
	return ag_flow__age(now, last_seen) >= AG_LAST_SEEN_GRANULARITY_NS;
}

/*
 * NAT address of a new flow: nat_addrs[h2 % count]. The mask keeps the index
 * provably inside the array for the verifier; count <= AG_MAX_NAT_ADDRS (a
 * power of two) makes it a no-op.
 */
_Static_assert((AG_MAX_NAT_ADDRS & (AG_MAX_NAT_ADDRS - 1)) == 0, "AG_MAX_NAT_ADDRS power of two");
static __always_inline __u32 ag_nat__addr_index(__u32 h2, __u32 count)
{
	return (h2 % count) & (AG_MAX_NAT_ADDRS - 1);
}

/*
 * NAT source port (host order) of attempt n for a flow with second hash h2.
 * h2 is remixed first: the address index is h2 % count, and using h2 % range
 * here too would tie port parity to the address (half the ports per address
 * unused with two addresses). Each attempt remixes differently, so colliding
 * flows do not walk the same sequence. min <= max, min != 0 (ag_settings__usable).
 */
static __always_inline __u16 ag_nat__port_candidate(__u32 h2, __u32 attempt, __u16 min, __u16 max)
{
	__u32 range = (__u32)max - min + 1;
	__u32 h = ag_hash__mix32(h2 + attempt * AG_HASH_NAT_SALT);

	return (__u16)(min + h % range);
}

#endif /* AG_CORE_FLOW_H */
