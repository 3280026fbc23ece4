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
#define AG_FLOW_CHALLENGE (AG_R__MAX + 4) /* not admitted yet: answer the SYN with a challenge */

/* An IPv4 address in the family-neutral form of keys and entries (abi.h). */
static __always_inline void ag_addr__set4(union ag_addr *a, __be32 v4)
{
	a->w[0] = v4;
	a->w[1] = 0;
	a->w[2] = 0;
	a->w[3] = 0;
}

static __always_inline int ag_addr__equal(const union ag_addr *a, const union ag_addr *b)
{
	return ((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) |
		(a->w[3] ^ b->w[3])) == 0;
}

/* A key's tail: ports, protocol, family and zeroed padding (keys are compared as bytes). */
static __always_inline void ag_flow_key__ports(struct ag_flow_key *k, __be16 sport, __be16 dport,
					       __u8 proto)
{
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->family = AG_FAMILY_IPV4;
	k->pad[0] = 0;
	k->pad[1] = 0;
}

/* 5-tuple of a parsed packet (AG_PARSE_OK). */
static __always_inline void ag_flow_key__from_pkt(struct ag_flow_key *k, const struct ag_pkt *p)
{
	ag_addr__set4(&k->saddr, p->ip->saddr);
	ag_addr__set4(&k->daddr, p->ip->daddr);
	ag_flow_key__ports(k, p->sport, p->dport, p->proto);
}

/* Key of the backend's replies to flow f: backend -> NAT address. */
static __always_inline void ag_flow_key__reply_of(struct ag_flow_key *k, const struct ag_flow *f,
						  __u8 proto)
{
	k->saddr = f->backend_addr;
	k->daddr = f->nat_addr;
	ag_flow_key__ports(k, f->backend_port, f->nat_port, proto);
}

/* Key of the client flow that owns reverse entry r: client -> VIP. */
static __always_inline void ag_flow_key__client_of(struct ag_flow_key *k,
						   const struct ag_nat_rev *r, __u8 proto)
{
	k->saddr = r->client_addr;
	k->daddr = r->vip;
	ag_flow_key__ports(k, r->client_port, r->vip_port, proto);
}

/* Does reverse entry r belong to the client flow with key k? (A NAT port can be taken over.) */
static __always_inline int ag_nat_rev__owned_by(const struct ag_nat_rev *r,
						const struct ag_flow_key *k)
{
	return ag_addr__equal(&r->client_addr, &k->saddr) && ag_addr__equal(&r->vip, &k->daddr) &&
	       r->client_port == k->sport && r->vip_port == k->dport;
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
	return b->state == AG_BACKEND_DOWN && b->addr == f->backend_addr.v4;
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
	       s->nat_port_min <= s->nat_port_max && s->tcp_syn_idle_ns != 0 &&
	       s->tcp_closing_ns != 0;
}

/*
 * Is addr one of the NAT addresses of s? Only a packet to one can be a
 * backend's reply: a client's packet to a VIP skips the reverse table (a
 * lookup that misses costs a new flow about a cache miss). A NAT address
 * removed by a reload ends the flows that use it: their replies go to the
 * kernel, which owns the address.
 */
static __always_inline int ag_settings__is_nat_addr(const struct ag_settings *s, __be32 addr)
{
	__u32 i;

	for (i = 0; i < AG_MAX_NAT_ADDRS; i++) {
		if (i >= s->nat_addr_count)
			return 0;
		if (s->nat_addrs[i] == addr)
			return 1;
	}
	return 0;
}

/* --- TCP: which segments are valid, which start a flow, what state they move it to --- */

/*
 * Flag sets a TCP segment may carry (PSH, ECE and CWR aside), as netfilter's
 * conntrack has them: SYN, SYN|URG, SYN|ACK, RST, RST|ACK, FIN|ACK,
 * FIN|ACK|URG, ACK, ACK|URG. Everything else (SYN+FIN, SYN+RST, no flags, FIN
 * without ACK, Xmas, ...) is dropped: no stack sends it, scanners and
 * floods do. One bit per combination of FIN, SYN, RST, ACK, URG.
 */
#define AG_TCPF_CHECKED (AG_TCPF_FIN | AG_TCPF_SYN | AG_TCPF_RST | AG_TCPF_ACK | AG_TCPF_URG)
#define AG_TCPF_VALID_SETS                                                                         \
	((1ULL << AG_TCPF_SYN) | (1ULL << (AG_TCPF_SYN | AG_TCPF_URG)) |                           \
	 (1ULL << (AG_TCPF_SYN | AG_TCPF_ACK)) | (1ULL << AG_TCPF_RST) |                           \
	 (1ULL << (AG_TCPF_RST | AG_TCPF_ACK)) | (1ULL << (AG_TCPF_FIN | AG_TCPF_ACK)) |           \
	 (1ULL << (AG_TCPF_FIN | AG_TCPF_ACK | AG_TCPF_URG)) | (1ULL << AG_TCPF_ACK) |             \
	 (1ULL << (AG_TCPF_ACK | AG_TCPF_URG)))

static __always_inline int ag_tcp__flags_valid(__u8 flags)
{
	return (AG_TCPF_VALID_SETS >> (flags & AG_TCPF_CHECKED)) & 1;
}

/* A segment that may open a flow: SYN without ACK, RST or FIN. */
static __always_inline int ag_tcp__is_syn(__u8 flags)
{
	return (flags & (AG_TCPF_SYN | AG_TCPF_ACK | AG_TCPF_RST | AG_TCPF_FIN)) == AG_TCPF_SYN;
}

/* The flags byte of a TCP segment ag_parse() accepted (0, invalid, if it is not there). */
static __always_inline __u8 ag_tcp__flags(const struct ag_pkt *p)
{
	const __u8 *th = p->l4;

	if ((const void *)(th + 20) > p->data_end)
		return 0;
	return th[13];
}

/* AG_TCP_* bits a client segment with flags adds to a flow that has cur. */
static __always_inline __u32 ag_tcp__client_bits(__u32 cur, __u8 flags)
{
	__u32 add = 0;

	if (flags & AG_TCPF_RST)
		add |= AG_TCP_RST;
	if (flags & AG_TCPF_FIN)
		add |= AG_TCP_FIN_C;
	/* The third step of the handshake: only after the backend's SYN-ACK. */
	if ((flags & (AG_TCPF_ACK | AG_TCPF_SYN)) == AG_TCPF_ACK && (cur & AG_TCP_SYNACK_B))
		add |= AG_TCP_EST;
	return add & ~cur;
}

/* AG_TCP_* bits a backend segment with flags adds to a flow that has cur. */
static __always_inline __u32 ag_tcp__backend_bits(__u32 cur, __u8 flags)
{
	__u32 add = 0;

	if (flags & AG_TCPF_RST)
		add |= AG_TCP_RST;
	if (flags & AG_TCPF_FIN)
		add |= AG_TCP_FIN_B;
	if ((flags & (AG_TCPF_SYN | AG_TCPF_ACK)) == (AG_TCPF_SYN | AG_TCPF_ACK))
		add |= AG_TCP_SYNACK_B;
	return add & ~cur;
}

/* Over: a RST, or a FIN from both sides. Its port may soon serve another flow. */
static __always_inline int ag_tcp__closed(__u32 tcp)
{
	return (tcp & AG_TCP_RST) ||
	       (tcp & (AG_TCP_FIN_C | AG_TCP_FIN_B)) == (AG_TCP_FIN_C | AG_TCP_FIN_B);
}

/* Handshake not completed: the backend has not answered, or the client not acknowledged. */
static __always_inline int ag_tcp__half_open(__u32 tcp)
{
	return !(tcp & AG_TCP_EST) && !ag_tcp__closed(tcp);
}

/*
 * The state whose idle timeout a flow follows (ag_flow__timeout_ns), as the
 * sweepers count and operators see it.
 */
enum ag_flow_state {
	AG_FLOW_STATE_HALF_OPEN = 0,   /* TCP, handshake not completed: tcp_syn_idle */
	AG_FLOW_STATE_ESTABLISHED = 1, /* TCP: tcp_idle */
	AG_FLOW_STATE_CLOSING = 2,     /* TCP, a RST or a FIN from both sides: tcp_closing */
	AG_FLOW_STATE_UDP = 3,	       /* udp_idle */
	AG_FLOW_STATE__MAX
};

static __always_inline int ag_flow__state(__u8 proto, __u32 tcp)
{
	if (proto != IPPROTO_TCP)
		return AG_FLOW_STATE_UDP;
	if (ag_tcp__closed(tcp))
		return AG_FLOW_STATE_CLOSING;
	return (tcp & AG_TCP_EST) ? AG_FLOW_STATE_ESTABLISHED : AG_FLOW_STATE_HALF_OPEN;
}

/*
 * How long a flow of protocol proto in TCP state tcp lives without a packet:
 * UDP udp_idle; TCP closed tcp_closing, established tcp_idle, half-open
 * tcp_syn_idle. A half-open flow is what a spoofed SYN leaves behind.
 */
static __always_inline __u64 ag_flow__timeout_ns(const struct ag_settings *s, __u8 proto, __u32 tcp)
{
	if (proto != IPPROTO_TCP)
		return s->udp_idle_ns;
	if (ag_tcp__closed(tcp))
		return s->tcp_closing_ns;
	if (tcp & AG_TCP_EST)
		return s->tcp_idle_ns;
	return s->tcp_syn_idle_ns;
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
 * NAT source port (host order) at offset cursor + attempt into [min, max]:
 * each CPU walks the range in order from its own cursor, so a port comes back
 * only after the whole range went by (the oldest flows' ports first, and a
 * backend's TIME_WAIT for the tuple as long past as the range allows), and a
 * claim at 90% occupancy still finds a free port within a few attempts where
 * random tries fail. min <= max, min != 0 (ag_settings__usable).
 */
static __always_inline __u16 ag_nat__port_at(__u32 cursor, __u32 attempt, __u16 min, __u16 max)
{
	__u32 range = (__u32)max - min + 1;

	return (__u16)(min + (cursor + attempt) % range);
}

/*
 * The cursor after a claim that tried `tried` ports (>= 1) from cursor: the
 * next claim starts at the port after the last one tried. Kept within
 * [1, range] (the same offsets modulo range) so that it never wraps at 2^32
 * and jumps back, and never reads as 0, "not started".
 */
static __always_inline __u32 ag_nat__cursor_next(__u32 cursor, __u32 tried, __u16 min, __u16 max)
{
	__u32 range = (__u32)max - min + 1;

	return (cursor + tried - 1) % range + 1;
}

/*
 * The base offset of claim attempt n (ag_nat__port_at(base, n)): the first
 * AG_NAT_PORT_RUN attempts walk on from the CPU's cursor, the rest from a
 * random offset rnd. Several CPUs walk one range: a CPU that catches up with
 * another's recent trail finds every port in it busy and would crawl through
 * it 16 ports per refused flow; the jump takes the claim elsewhere at once
 * (at 90% occupancy, 8 random ports all busy: 43%; 8 + 8: 18.5%, and the
 * cursor then walks on from the jump). After the claim the cursor is
 * ag_nat__cursor_next(base, n + 1) with the base of the last attempt.
 */
static __always_inline __u32 ag_nat__claim_base(__u32 cursor, __u32 rnd, __u32 n, __u16 min,
						__u16 max)
{
	__u32 range = (__u32)max - min + 1;

	if (n < AG_NAT_PORT_RUN)
		return cursor;
	/* rnd % range + range >= AG_NAT_PORT_RUN: no wrap below 0 */
	return rnd % range + range - AG_NAT_PORT_RUN;
}

/*
 * Where a CPU's cursor starts (its state is zero at first): spread over the
 * range so that CPUs do not walk the same ports one behind the other.
 */
static __always_inline __u32 ag_nat__cursor_start(__u32 cpu)
{
	return ag_hash__mix32(cpu + AG_HASH_NAT_SALT) | 1;
}

/*
 * Take one new flow from bucket b, refilled at rate per second up to one
 * second's worth (rate 0: no limit). 1 when admitted. Per CPU: no atomics.
 */
static __always_inline int ag_bucket__take(struct ag_bucket *b, __u32 rate, __u64 now)
{
	__u64 cap = (__u64)rate * 1000, tokens, dt, add, stamp;

	if (!rate)
		return 1;
	tokens = b->tokens_milli;
	dt = ag_flow__age(now, b->stamp_ns);
	if (!b->stamp_ns || dt >= 1000000000ULL) {
		tokens = cap;
		stamp = now;
	} else {
		add = dt * rate / 1000000; /* ns x flows/s = milli-flows x 10^6 */
		tokens += add;
		/* only the time the credited thousandths account for is spent */
		stamp = b->stamp_ns + add * 1000000 / rate;
	}
	if (tokens >= cap) {
		tokens = cap;
		stamp = now;
	}
	b->stamp_ns = stamp;
	if (tokens < 1000) {
		b->tokens_milli = tokens;
		return 0;
	}
	b->tokens_milli = tokens - 1000;
	return 1;
}

/*
 * The SYN challenge cookie of flow k at now: keyed by the secret, valid in its
 * 2^32 ns window and the next one. The challenge SYN-ACK carries it as its ACK
 * number; the client's RST carries it back as its sequence number.
 */
static __always_inline __u32 ag_syn__cookie(const struct ag_flow_key *k, __u64 secret, __u64 now)
{
	__u32 window = (__u32)(now >> AG_SYN_COOKIE_SHIFT);

	return ag_jhash_4words(k->saddr.w[0] ^ k->saddr.w[1] ^ k->saddr.w[2] ^ k->saddr.w[3],
			       k->daddr.w[0] ^ k->daddr.w[1] ^ k->daddr.w[2] ^ k->daddr.w[3],
			       ((__u32)k->sport << 16) | k->dport, window ^ (__u32)(secret >> 32),
			       (__u32)secret);
}

/*
 * The ACK number of the challenge to a SYN with sequence number seq (host
 * order): the cookie, its lowest bit chosen so that it is never seq + 1, the
 * one ACK the client would accept (then it would not answer with a RST).
 */
static __always_inline __u32 ag_syn__challenge_ack(__u32 cookie, __u32 seq)
{
	return (cookie & ~1u) | (~(seq + 1) & 1u);
}

/* Does a RST with sequence number seq (host order) answer our challenge to flow k? */
static __always_inline int ag_syn__cookie_ok(const struct ag_flow_key *k, __u64 secret, __u64 now,
					     __u32 seq)
{
	__u64 window = 1ULL << AG_SYN_COOKIE_SHIFT;

	if (((ag_syn__cookie(k, secret, now) ^ seq) & ~1u) == 0)
		return 1;
	return now >= window && ((ag_syn__cookie(k, secret, now - window) ^ seq) & ~1u) == 0;
}

#endif /* AG_CORE_FLOW_H */
