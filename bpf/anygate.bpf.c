// SPDX-License-Identifier: BSD-3-Clause
/*
 * anygate XDP fast path: NAT each TCP/UDP flow to a VIP onto a backend chosen
 * from the listener's live lookup table, and NAT the backend's replies back.
 *
 * Maps are defined here with the names of abi.h (AG_MAP_*) and no pinning:
 * anygated sizes them (bpf_map__set_max_entries) and pins them
 * (bpf_map__set_pin_path) before load. All parsing, hashing, the backend
 * choice, flow liveness and NAT port decisions, rewriting and checksum work
 * is dataplane/core, shared with the DPDK fast path; this file reads the
 * maps for it (ag_tables__*()) and does the inserts and deletes.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "consts.h"
#include "compat.h"
#include "parse.h"
#include "hash.h"
#include "csum.h"
#include "nat.h"
#include "flow.h"
#include "flowlife.h"
#include "natclaim.h"
#include "choose.h"
#include "admit.h"
#include "rst.h"
#include "hygiene.h"

/* <sys/socket.h> and <errno.h> are not available to BPF programs. */
#define AG_AF_INET 2
#define AG_EEXIST  17
#define AG_E2BIG   7

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ag_settings);
} ag_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AG_MAX_LISTENER_KEYS);
	__type(key, struct ag_listener_key);
	__type(value, __u32);
} ag_listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AG_MAX_LISTENERS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct ag_listener_state);
} ag_lstate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AG_LOOKUP_BUCKETS(AG_RING_SIZE_DEFAULT));
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct ag_lookup_bucket);
} ag_lookup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AG_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct ag_backend);
} ag_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AG_MAX_PORT_OVERRIDES);
	__type(key, struct ag_port_ovr_key);
	__type(value, struct ag_port_ovr);
} ag_port_ovr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AG_MAX_VIPS);
	__type(key, __be32);
	__type(value, __u32);
} ag_vips SEC(".maps");

/* What anygated registered of each attached interface: MAC and roles (abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AG_MAX_IFINDEX);
	__type(key, __u32);
	__type(value, struct ag_iface);
} ag_ifaces SEC(".maps");

/* Preallocated, never LRU: a live flow is never evicted to make room (abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AG_FLOWS_DEFAULT);
	__type(key, struct ag_flow_key);
	__type(value, struct ag_flow);
} ag_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AG_FLOWS_DEFAULT);
	__type(key, struct ag_flow_key);
	__type(value, struct ag_nat_rev);
} ag_nat_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ag_cpu_state);
} ag_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, AG_SYN_AUTH_ENTRIES);
	__type(key, union ag_addr);
	__type(value, __u64);
} ag_syn_auth SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AG_MAX_BACKENDS *AG_MAX_NAT_ADDRS);
	__type(key, __u32);
	__type(value, struct ag_nexthop_cache);
} ag_nexthops SEC(".maps");

/*
 * Per-CPU room for what a new flow builds: the program's stack (512 bytes
 * over all its calls) cannot hold it beside the packet's own state. Not part
 * of the ABI; nothing survives from one packet to the next.
 */
struct ag_scratch {
	struct ag_flow flow; /* the flow the packet creates or moves (anygate_xdp) */
	struct ag_flow_key ork;
	struct ag_flow old;
	struct ag_nat_rev rv;
	struct bpf_fib_lookup fib;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ag_scratch);
} ag_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AG_MAX_LISTENERS);
	__type(key, __u32);
	__type(value, struct ag_traffic_stats);
} ag_lstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AG_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct ag_traffic_stats);
} ag_bstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AG_R__MAX);
	__type(key, __u32);
	__type(value, struct ag_reason_stats);
} ag_rstats SEC(".maps");

/* Count a packet in ag_rstats under reason. */
static __always_inline void ag_count_reason(int reason, __u64 bytes)
{
	__u32 key = (__u32)reason;
	struct ag_reason_stats *rs = bpf_map_lookup_elem(&ag_rstats, &key);

	if (rs) {
		rs->packets++;
		rs->bytes += bytes;
	}
}

/* Count a packet we do not forward; return its verdict: drop reasons drop, the rest pass. */
static __always_inline int ag_verdict(int reason, __u64 bytes)
{
	ag_count_reason(reason, bytes);
	return ag_reason__is_drop(reason) ? XDP_DROP : XDP_PASS;
}

/* Per-CPU traffic counters of a listener or backend (id out of range: not counted). */
static __always_inline void ag_count_fwd(void *map, __u32 id, __u64 bytes, int new_flow)
{
	struct ag_traffic_stats *ts = bpf_map_lookup_elem(map, &id);

	if (ts) {
		ts->packets++;
		ts->bytes += bytes;
		if (new_flow)
			ts->new_flows++;
	}
}

static __always_inline void ag_count_ret(void *map, __u32 id, __u64 bytes)
{
	struct ag_traffic_stats *ts = bpf_map_lookup_elem(map, &id);

	if (ts) {
		ts->ret_packets++;
		ts->ret_bytes += bytes;
	}
}

/* Route saddr:sport -> daddr:dport as the kernel would for a packet arriving on ctx's interface. */
static __always_inline long ag_fib(struct xdp_md *ctx, struct bpf_fib_lookup *fib, __u8 tos,
				   __u8 proto, __be32 saddr, __be16 sport, __be32 daddr,
				   __be16 dport, __u16 tot_len)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AG_AF_INET;
	fib->tos = tos;
	fib->l4_protocol = proto;
	fib->sport = sport;
	fib->dport = dport;
	fib->tot_len = tot_len; /* the kernel checks it against the route's MTU */
	fib->ipv4_src = saddr;
	fib->ipv4_dst = daddr;
	fib->ifindex = ctx->ingress_ifindex;
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
}

/* The next hop of a successful lookup, checked for packets up to max_len bytes (abi.h). */
static __always_inline void ag_nexthop_set(struct ag_nexthop *nh, const struct bpf_fib_lookup *fib,
					   __u16 max_len)
{
	nh->ifindex = fib->ifindex;
	nh->max_len = max_len;
	__builtin_memcpy(nh->dmac, fib->dmac, ETH_ALEN);
	__builtin_memcpy(nh->smac, fib->smac, ETH_ALEN);
	nh->pad = 0;
}

static __always_inline int ag_nexthop_equal(const struct ag_nexthop *a, const struct ag_nexthop *b)
{
	__u32 x[5], y[5];

	_Static_assert(sizeof(x) == sizeof(*a), "ag_nexthop compared as 5 words");
	__builtin_memcpy(x, a, sizeof(x));
	__builtin_memcpy(y, b, sizeof(y));
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/*
 * Send a rewritten packet to its next hop. nh is the next hop read with the
 * flow (or reverse) entry, cache the same field in the map entry (NULL: not
 * to be written). A cached hop is used as it is unless this packet refreshed
 * the entry's last_seen (then the route is looked up again, at most once a
 * second) or is longer than the hop was checked for (the MTU). A lookup that
 * finds another hop, or a longer checked length, is written back; one that
 * fails clears the cache.
 *
 * The TTL is decremented only when we transmit ourselves: a packet passed to
 * the kernel is forwarded, and decremented, by the kernel.
 */
static __always_inline int ag_xmit(struct xdp_md *ctx, struct ag_pkt *p, __u64 bytes,
				   const struct ag_nexthop *nh, struct ag_nexthop *cache,
				   int refresh)
{
	struct bpf_fib_lookup fib;
	struct ethhdr *eth = p->eth;
	struct iphdr *ip = p->ip;
	struct ag_nexthop fresh;
	long rc;

	if ((void *)(eth + 1) > p->data_end || (void *)(ip + 1) > p->data_end)
		return ag_verdict(AG_R_DROP_TRUNC_IP, bytes);

	if (!refresh && nh->ifindex && p->tot_len <= nh->max_len) {
		ag_ipv4__dec_ttl(ip);
		__builtin_memcpy(eth->h_dest, nh->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, nh->smac, ETH_ALEN);
		return bpf_redirect(nh->ifindex, 0);
	}

	rc = ag_fib(ctx, &fib, ip->tos, p->proto, ip->saddr, p->sport, ip->daddr, p->dport,
		    p->tot_len);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		ag_ipv4__dec_ttl(ip);
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		if (cache) {
			/*
			 * Checked for this packet's length: a refresh starts over (the
			 * MTU may have shrunk), and without one we only get here for a
			 * longer packet than the cache covered.
			 */
			ag_nexthop_set(&fresh, &fib, p->tot_len);
			/* Unchanged (the usual refresh): do not dirty the entry. */
			if (!ag_nexthop_equal(nh, &fresh))
				*cache = fresh;
		}
		return bpf_redirect(fib.ifindex, 0);
	}
	/*
	 * Longer than the route's MTU: the kernel answers (ICMP fragmentation
	 * needed, or fragments). The cached hop stays right for shorter
	 * packets, but may not cover this length any more.
	 */
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		if (cache && nh->ifindex && nh->max_len >= p->tot_len)
			cache->max_len = fib.mtu_result < p->tot_len ? fib.mtu_result : 0;
		return ag_verdict(AG_R_PASS_NO_ROUTE, bytes);
	}
	if (cache && nh->ifindex)
		cache->ifindex = 0;
	/*
	 * The next hop's MAC is not known yet. The packet is already rewritten,
	 * so the kernel forwards it like any routed packet and resolves the
	 * neighbour on the way; the following packets find it and are redirected.
	 */
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return ag_verdict(AG_R_PASS_NO_NEIGH, bytes);
	/* Unreachable, blackhole, forwarding off: the kernel decides, answers ICMP. */
	return ag_verdict(AG_R_PASS_NO_ROUTE, bytes);
}

static __always_inline struct ag_settings *ag_settings_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ag_settings, &zero);
}

/*
 * dataplane/core reads the tables through ag_tables__*() (choose.h,
 * flowlife.h, natclaim.h). The XDP program's tables are its maps, so struct
 * ag_tables is never defined here: every call passes AG_MAPS.
 */
#define AG_MAPS ((struct ag_tables *)0)

/*
 * *out = the value at key in map: 1, or 0 when there is none. A macro so that
 * the copy keeps its type's alignment (a memcpy from void * goes byte by byte).
 */
#define AG_MAP_COPY(map, key, out)                                                                 \
	({                                                                                         \
		const __typeof__(*(out)) *v_ = bpf_map_lookup_elem(map, key);                      \
		if (v_)                                                                            \
			*(out) = *v_;                                                              \
		v_ != 0;                                                                           \
	})

static __always_inline int ag_tables__listener(struct ag_tables *t,
					       const struct ag_listener_key *lk, __u32 *lid)
{
	return AG_MAP_COPY(&ag_listeners, lk, lid);
}

static __always_inline int ag_tables__lstate(struct ag_tables *t, __u32 lid,
					     struct ag_listener_state *out)
{
	struct ag_listener_state *ls = bpf_map_lookup_elem(&ag_lstate, &lid);

	if (!ls)
		return 0;
	/* The publisher switches slot with one store; read it exactly once. */
	out->slot = AG_READ_ONCE(ls->slot);
	out->affinity = ls->affinity;
	out->flags = ls->flags;
	return 1;
}

static __always_inline const struct ag_settings *ag_tables__settings(struct ag_tables *t)
{
	return ag_settings_get();
}

static __always_inline int ag_tables__lookup(struct ag_tables *t, __u32 idx, __u32 *bid)
{
	__u32 key = ag_lookup__bucket(idx);
	struct ag_lookup_bucket *bucket = bpf_map_lookup_elem(&ag_lookup, &key);

	if (!bucket) /* past the map's end */
		return 0;
	*bid = bucket->backend[ag_lookup__lane(idx)];
	return 1;
}

static __always_inline int ag_tables__backend(struct ag_tables *t, __u32 bid,
					      struct ag_backend *out)
{
	return AG_MAP_COPY(&ag_backends, &bid, out);
}

static __always_inline int ag_tables__port_ovr(struct ag_tables *t, const struct ag_port_ovr_key *k,
					       __be16 *port)
{
	struct ag_port_ovr *ovr = bpf_map_lookup_elem(&ag_port_ovr, k);

	if (!ovr)
		return 0;
	*port = ovr->port;
	return 1;
}

static __always_inline int ag_tables__nat_rev(struct ag_tables *t, const struct ag_flow_key *rk,
					      struct ag_nat_rev *out)
{
	return AG_MAP_COPY(&ag_nat_rev, rk, out);
}

static __always_inline int ag_tables__flow(struct ag_tables *t, const struct ag_flow_key *k,
					   struct ag_flow *out)
{
	return AG_MAP_COPY(&ag_flows, k, out);
}

static __always_inline int ag_tables__is_vip(struct ag_tables *t, __be32 addr)
{
	return bpf_map_lookup_elem(&ag_vips, &addr) != 0;
}

static __always_inline int ag_tables__syn_verified(struct ag_tables *t, const union ag_addr *a,
						   __u64 *when)
{
	return AG_MAP_COPY(&ag_syn_auth, a, when);
}

/* Remove a flow and, when it is still the flow's, its reverse entry. */
static __always_inline void ag_flow_delete(const struct ag_flow_key *k, const struct ag_flow *f)
{
	struct ag_flow_key rk;
	struct ag_nat_rev r;

	if (ag_flow__own_rev(AG_MAPS, k, f, &rk, &r))
		bpf_map_delete_elem(&ag_nat_rev, &rk);
	bpf_map_delete_elem(&ag_flows, k);
}

/*
 * The NAT port rk names is taken: take it over for rv (flow k) when its
 * holder lets go (natclaim.h): its flow is over (expired, or closed and
 * quiet), then deleted, or it has none. Returns 1 when rk now maps to rv.
 */
static __always_inline int ag_nat_rev_take_over(const struct ag_flow_key *rk,
						const struct ag_nat_rev *rv,
						const struct ag_flow_key *k,
						const struct ag_settings *s, __u64 now, __u64 bytes)
{
	struct ag_nat_rev *old = bpf_map_lookup_elem(&ag_nat_rev, rk);
	struct ag_flow_key owner;
	int hold;

	if (!old) /* deleted since our insert failed */
		return bpf_map_update_elem(&ag_nat_rev, rk, rv, BPF_NOEXIST) == 0;
	hold = ag_nat_rev__hold(AG_MAPS, rk, old, s, now, &owner);
	if (hold == AG_NAT_HOLD_BUSY)
		return 0;
	if (hold == AG_NAT_HOLD_IDLE)
		bpf_map_delete_elem(&ag_flows, &owner);
	if (bpf_map_update_elem(&ag_nat_rev, rk, rv, BPF_ANY))
		return 0;
	/* Another CPU may have taken the same port at once: keep it only if ours. */
	old = bpf_map_lookup_elem(&ag_nat_rev, rk);
	if (!old || !ag_nat_rev__owned_by(old, k))
		return 0;
	ag_count_reason(AG_R_NAT_TAKEOVER, bytes);
	return 1;
}

/*
 * A packet of a known (or just created) flow: NAT towards its pinned backend.
 * fp is the flow's map entry (NULL when f was just written: nothing to
 * update). Counted as forwarded once rewritten; a NO_NEIGH / NO_ROUTE pass to
 * the kernel shows in ag_rstats as well.
 */
static __always_inline int ag_forward(struct xdp_md *ctx, struct ag_pkt *p, const struct ag_flow *f,
				      struct ag_flow *fp, __u64 bytes, int new_flow, int refresh)
{
	if (p->ip->ttl <= 1)
		return ag_verdict(AG_R_DROP_TTL, bytes);
	if (ag_nat__forward(p, f))
		return ag_verdict(AG_R_DROP_TRUNC_L4, bytes);
	ag_count_fwd(&ag_lstats, f->listener_id, bytes, new_flow);
	ag_count_fwd(&ag_bstats, f->backend_id, bytes, new_flow);
	return ag_xmit(ctx, p, bytes, &f->nh, fp ? &fp->nh : 0, refresh);
}

/*
 * A backend's TCP segment with SYN, FIN or RST moves its flow's state (rk is
 * its tuple, r the reverse entry): the flow is found from the client's side.
 */
static __always_inline void ag_reply_state(const struct ag_flow_key *rk, const struct ag_nat_rev *r,
					   __u8 flags)
{
	struct ag_flow_key ck;
	struct ag_flow *fp;
	__u32 add;

	ag_flow_key__client_of(&ck, r, IPPROTO_TCP);
	fp = bpf_map_lookup_elem(&ag_flows, &ck);
	if (!fp || !ag_nat_rev__belongs(rk, r, &ck, fp))
		return;
	add = ag_tcp__backend_bits(fp->tcp, flags);
	if (add)
		__sync_fetch_and_or(&fp->tcp, add);
}

/* A backend's reply to a NAT port (tuple rk): back to the client, from the VIP. */
static __noinline int ag_reply(struct xdp_md *ctx, struct ag_pkt *p, const struct ag_flow_key *rk,
			       struct ag_nat_rev *rp)
{
	__u64 bytes = (__u64)(p->data_end - p->data);
	struct ag_nat_rev r = *rp;
	int refresh = 0;
	__u8 flags;

	/* Flags were checked with the rest of the packet (ag_hyg__ours). */
	if (p->proto == IPPROTO_TCP) {
		flags = ag_tcp__flags(p);
		if (flags & (AG_TCPF_SYN | AG_TCPF_FIN | AG_TCPF_RST))
			ag_reply_state(rk, &r, flags);
	}
	if (p->ip->ttl <= 1)
		return ag_verdict(AG_R_DROP_TTL, bytes);
	/*
	 * Cheap clock to decide, precise one to stamp (as for forward flows),
	 * finer than the forward side: how recent the replies are tells an
	 * overloaded backend from a dead one (ag_flow__on_backend). The first
	 * reply always stamps: until then last_seen is the flow's creation.
	 */
	if (!(r.flags & AG_REV_REPLIED) ||
	    ag_flow__age(bpf_ktime_get_coarse_ns(), r.last_seen_ns) >= AG_REPLY_GRANULARITY_NS) {
		rp->last_seen_ns = bpf_ktime_get_ns();
		rp->flags = r.flags | AG_REV_REPLIED;
		refresh = 1;
	}
	if (ag_nat__reverse(p, &r))
		return ag_verdict(AG_R_DROP_TRUNC_L4, bytes);
	ag_count_ret(&ag_lstats, r.listener_id, bytes);
	ag_count_ret(&ag_bstats, r.backend_id, bytes);
	return ag_xmit(ctx, p, bytes, &r.nh, &rp->nh, refresh);
}

/*
 * A TCP segment of a flow whose backend is down: answer the client with a
 * RST from the VIP, out of the interface it came in on, and forget the flow.
 * A RST from the client is not answered (and its flow is over as well).
 */
static __always_inline int ag_reset(struct xdp_md *ctx, struct ag_pkt *p,
				    const struct ag_flow_key *k, const struct ag_flow *f,
				    __u64 bytes)
{
	int len = ag_tcp__make_rst(p);

	ag_flow_delete(k, f);
	if (len < 0)
		return ag_verdict(AG_R_DROP_NO_BACKEND, bytes);
	/*
	 * Payload and options go. Should the trim fail, the IPv4 total length
	 * still says 40: what follows is padding to every receiver.
	 */
	if ((__u64)len < bytes)
		bpf_xdp_adjust_tail(ctx, -(int)(bytes - (__u64)len));
	ag_count_reason(AG_R_TX_RST_BACKEND_DOWN, bytes);
	return XDP_TX;
}

/* An unverified SYN past the budget: answer it with the challenge (rst.h), no state kept. */
static __noinline int ag_challenge(struct xdp_md *ctx, struct ag_pkt *p,
				   const struct ag_flow_key *k)
{
	__u64 bytes = (__u64)(p->data_end - p->data);
	struct ag_settings *s = ag_settings_get();
	int len;

	if (!s)
		return ag_verdict(AG_R_DROP_BAD_STATE, bytes);
	len = ag_tcp__make_syn_challenge(p,
					 ag_syn__cookie(k, s->syn_auth_secret, bpf_ktime_get_ns()));
	if (len < 0)
		return ag_verdict(AG_R_DROP_TRUNC_L4, bytes);
	if ((__u64)len < bytes)
		bpf_xdp_adjust_tail(ctx, -(int)(bytes - (__u64)len));
	ag_count_reason(AG_R_TX_SYN_CHALLENGE, bytes);
	return XDP_TX;
}

/*
 * A TCP segment of no flow that is not a SYN (admit.h decides): nothing is
 * created for it. The RST that answers a SYN challenge verifies its source.
 */
static __noinline int ag_not_syn(struct ag_pkt *p, const struct ag_flow_key *k)
{
	__u64 bytes = (__u64)(p->data_end - p->data), now = bpf_ktime_get_ns();
	int r = ag_tcp__not_syn(AG_MAPS, p, k, ag_tcp__flags(p), now);

	if (r != AG_R_SYN_AUTH_PASSED)
		return ag_verdict(r, bytes);
	bpf_map_update_elem(&ag_syn_auth, &k->saddr, &now, BPF_ANY);
	ag_count_reason(AG_R_SYN_AUTH_PASSED, bytes);
	return XDP_DROP;
}

/*
 * Pin moved flow k (was old, now f with reverse key rk), replaced whole: a
 * reader sees the old flow or the new one, never a mix. (A CPU moving the
 * same flow at the same time may leave one reverse entry that still names
 * the client; the sweeper removes it as an orphan.)
 */
static __always_inline int ag_flow_move(const struct ag_flow_key *k, const struct ag_flow *f,
					const struct ag_flow_key *rk, const struct ag_flow *old)
{
	struct ag_flow_key ork;

	if (bpf_map_update_elem(&ag_flows, k, f, BPF_ANY)) {
		bpf_map_delete_elem(&ag_nat_rev, rk);
		return AG_R_DROP_FLOW_INSERT;
	}
	if (ag_flow__stale_rev(AG_MAPS, k, old, rk, &ork))
		bpf_map_delete_elem(&ag_nat_rev, &ork);
	return AG_FLOW_RESTEERED;
}

/*
 * Claim a NAT port for choice c of flow k: from this CPU's cursor on, the
 * first port that is free or whose holder lets go. Returns AG_CHOICE_OK with
 * *rk the claimed reverse key and *rv written there, or an AG_R_* reason.
 */
static __always_inline int ag_claim(const struct ag_choice *c, const struct ag_flow_key *k,
				    struct ag_cpu_state *cpu, struct ag_flow_key *rk,
				    struct ag_nat_rev *rv, int resteer, __be16 own_port, __u64 now,
				    __u64 bytes)
{
	__u16 min = c->s->nat_port_min, max = c->s->nat_port_max;
	__u32 i, cursor, base, rnd = 0;
	long rc;

	if (!cpu->nat_cursor)
		cpu->nat_cursor = ag_nat__cursor_start(bpf_get_smp_processor_id());
	cursor = cpu->nat_cursor;
	base = cursor;
	for (i = 0; i < AG_NAT_PORT_RETRIES; i++) {
		if (i == AG_NAT_PORT_RUN)
			rnd = bpf_get_prandom_u32();
		base = ag_nat__claim_base(cursor, rnd, i, min, max);
		ag_choice__rev_key(rk, c, k, ag_choice__nat_port(c, base, i, resteer, own_port));
		rc = bpf_map_update_elem(&ag_nat_rev, rk, rv, BPF_NOEXIST);
		if (rc == 0)
			break;
		if (rc != -AG_EEXIST)
			return rc == -AG_E2BIG ? AG_R_DROP_FLOW_FULL : AG_R_DROP_FLOW_INSERT;
		if (ag_nat_rev_take_over(rk, rv, k, c->s, now, bytes))
			break;
	}
	if (i == AG_NAT_PORT_RETRIES) {
		cpu->nat_cursor = ag_nat__cursor_next(base, i, min, max);
		return AG_R_DROP_NAT_PORTS;
	}
	cpu->nat_cursor = ag_nat__cursor_next(base, i + 1, min, max);
	return AG_CHOICE_OK;
}

/*
 * Choose a backend (dataplane/core/choose.h), admit the flow, claim a NAT
 * port and pin both: the first packet of a flow (a TCP SYN, or UDP), or
 * (resteer, *f the flow) a UDP flow whose backend went down, which moves to
 * the backend a new flow with its tuple would get now. A moved flow keeps its
 * NAT port when that port is free towards the new backend, else gets one as a
 * new flow does; its old reverse entry goes. The flow entry carries the next
 * hop towards the backend from the start. Returns an AG_R_* reason, or
 * AG_FLOW_* with *f the flow (AG_FLOW_CHALLENGE: nothing created).
 */
/*
 * The next hop of new flow f (choice c) towards its backend: the one cached
 * for its backend and NAT address when looked up within the last second for
 * the same endpoint and at least this packet's length, else looked up and
 * cached. One lookup per backend and second instead of one per new flow;
 * the flow's own refresh (ag_xmit) looks its route up again with its ports
 * within a second, so a multipath route to the backend spreads flows again.
 */
static __always_inline void ag_new_flow_nexthop(struct xdp_md *ctx, struct ag_pkt *p,
						const struct ag_choice *c, struct ag_flow *f,
						struct bpf_fib_lookup *fib, __u64 now)
{
	__u32 idx = c->bid * AG_MAX_NAT_ADDRS + c->nat_index;
	struct ag_nexthop_cache *nc = bpf_map_lookup_elem(&ag_nexthops, &idx);

	if (nc && nc->stamp_ns &&
	    !ag_flow__is_idle(now, nc->stamp_ns, AG_LAST_SEEN_GRANULARITY_NS) &&
	    nc->backend_addr == c->backend_addr && nc->nat_addr == c->nat_addr && nc->nh.ifindex &&
	    p->tot_len <= nc->nh.max_len) {
		f->nh = nc->nh;
		return;
	}
	if (ag_fib(ctx, fib, p->ip->tos, p->proto, c->nat_addr, f->nat_port, c->backend_addr,
		   f->backend_port, p->tot_len) != BPF_FIB_LKUP_RET_SUCCESS)
		return;
	ag_nexthop_set(&f->nh, fib, p->tot_len);
	if (nc) {
		nc->nh = f->nh;
		nc->backend_addr = c->backend_addr;
		nc->nat_addr = c->nat_addr;
		nc->stamp_ns = now;
	}
}

static __noinline int ag_new_flow(struct xdp_md *ctx, struct ag_pkt *p, const struct ag_flow_key *k,
				  struct ag_flow *f, int resteer)
{
	__u64 bytes = (__u64)(p->data_end - p->data);
	struct ag_cpu_state *cpu;
	struct ag_scratch *sc;
	struct ag_flow_key rk;
	struct ag_choice c;
	struct ag_flow *fp;
	__be16 own_port = 0;
	__u32 zero = 0;
	__u64 now;
	int r;

	cpu = bpf_map_lookup_elem(&ag_cpu, &zero);
	sc = bpf_map_lookup_elem(&ag_scratch, &zero);
	if (!cpu || !sc)
		return AG_R_DROP_BAD_STATE;
	/* What a moved flow keeps or gives back, read before *f is rewritten. */
	if (resteer) {
		sc->old = *f;
		own_port = f->nat_port;
		/* Its old reverse entry goes first: a move needs no room, even in a full table. */
		if (ag_flow__own_rev(AG_MAPS, k, f, &sc->ork, &sc->rv))
			bpf_map_delete_elem(&ag_nat_rev, &sc->ork);
	}
	r = ag_choose(AG_MAPS, k, p->ip->ttl, &c);
	if (r != AG_CHOICE_OK)
		return r;
	/* Read the clock only here: traffic that is not ours never pays for it. */
	now = bpf_ktime_get_ns();
	if (!resteer) {
		r = ag_admit(AG_MAPS, k, c.s, cpu, now);
		if (r != AG_CHOICE_OK)
			return r;
	}
	ag_choice__rev(&sc->rv, &c, k, now);
	r = ag_claim(&c, k, cpu, &rk, &sc->rv, resteer, own_port, now, bytes);
	if (r != AG_CHOICE_OK)
		return r;

	ag_choice__flow(f, &c, &rk, now);
	/* Pinned with its next hop: the flow's next packet needs no route lookup. */
	ag_new_flow_nexthop(ctx, p, &c, f, &sc->fib, now);
	if (resteer)
		return ag_flow_move(k, f, &rk, &sc->old);
	r = bpf_map_update_elem(&ag_flows, k, f, BPF_NOEXIST);
	if (r == 0)
		return AG_FLOW_CREATED;
	bpf_map_delete_elem(&ag_nat_rev, &rk);
	if (r != -AG_EEXIST)
		return r == -AG_E2BIG ? AG_R_DROP_FLOW_FULL : AG_R_DROP_FLOW_INSERT;
	/*
	 * Another CPU created this flow since our lookup (two packets of one
	 * new flow at once): our NAT port is given back, follow its choice.
	 */
	fp = bpf_map_lookup_elem(&ag_flows, k);
	if (!fp)
		return AG_R_DROP_FLOW_INSERT;
	*f = *fp;
	return AG_FLOW_JOINED;
}

/* Results of ag_hit() besides XDP verdicts: the packet goes on as the first of a flow. */
#define AG_HIT_GO_NEW  16 /* its flow is over (expired, or closed and this is a SYN) */
#define AG_HIT_GO_MOVE 17 /* UDP flow on a DOWN backend: move it (*f the flow) */

/*
 * A packet of known flow fp (key k): refresh and expire the
 * flow at most once a second, move its TCP state, and forward it unless its
 * backend is down. Read in place, not copied (80 bytes a packet): only a
 * move replaces an entry, which the caller does from *fp.
 */
static __noinline int ag_hit(struct xdp_md *ctx, struct ag_pkt *p, const struct ag_flow_key *k,
			     struct ag_flow *fp)
{
	__u64 bytes = (__u64)(p->data_end - p->data), now;
	struct ag_settings *s;
	struct ag_backend *be;
	__u8 flags = 0;
	int r, refresh = 0;
	__u32 bid, add;

	/* Flags were checked with the rest of the packet (ag_hyg__ours). */
	if (p->proto == IPPROTO_TCP)
		flags = ag_tcp__flags(p);
	/*
	 * Fresh within the refresh granularity (<= the minimum idle time):
	 * nothing to check or write. The coarse clock is the same
	 * CLOCK_MONOTONIC at tick resolution for a fraction of the cost (about
	 * 20 ns per packet here); it only decides whether to look closer.
	 * Stamps are always bpf_ktime_get_ns().
	 */
	if (ag_flow__needs_refresh(bpf_ktime_get_coarse_ns(), fp->last_seen_ns)) {
		now = bpf_ktime_get_ns();
		s = ag_settings_get();
		if (!s || !ag_flow__live(AG_MAPS, k, fp, s, now)) {
			/* Over: forget it; this packet is one of no flow. */
			ag_flow_delete(k, fp);
			return AG_HIT_GO_NEW;
		}
		fp->last_seen_ns = now;
		refresh = 1;
	}
	if (p->proto == IPPROTO_TCP) {
		/* A new connection on the tuple of a closed one. */
		if (ag_tcp__is_syn(flags) && ag_tcp__closed(fp->tcp)) {
			ag_flow_delete(k, fp);
			return AG_HIT_GO_NEW;
		}
		add = ag_tcp__client_bits(fp->tcp, flags);
		if (add)
			__sync_fetch_and_or(&fp->tcp, add);
	}
	/* The backend's health, as anygated last published it. */
	bid = fp->backend_id;
	be = bpf_map_lookup_elem(&ag_backends, &bid);
	if (be && ag_flow__backend_down(fp, be)) {
		r = ag_flow__on_backend(AG_MAPS, k, fp, be, ag_settings_get(), bpf_ktime_get_ns());
		if (r == AG_HIT_RESET)
			return ag_reset(ctx, p, k, fp, bytes);
		if (r == AG_HIT_RESTEER)
			return AG_HIT_GO_MOVE;
		ag_count_reason(AG_R_KEPT_BACKEND_REPLYING, bytes);
	}
	return ag_forward(ctx, p, fp, fp, bytes, 0, refresh);
}

/* The first packet of a flow, pinned as f (created: by us, not joined or moved). */
static __noinline int ag_forward_new(struct xdp_md *ctx, struct ag_pkt *p, const struct ag_flow *f,
				     int created)
{
	/* f was just written whole, with a fresh next hop: no entry to update. */
	return ag_forward(ctx, p, f, 0, (__u64)(p->data_end - p->data), created, 0);
}

/*
 * The interface a packet arrived on, as anygated registered it. Entry 0 is
 * never written (no interface has ifindex 0): one past the table is looked
 * up as that unregistered interface. NULL only if the map were gone.
 */
static __always_inline const struct ag_iface *ag_iface_of(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex;

	if (ifindex >= AG_MAX_IFINDEX)
		ifindex = 0;
	return bpf_map_lookup_elem(&ag_ifaces, &ifindex);
}

SEC("xdp")
int anygate_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = (__u64)(data_end - data);
	const struct ag_iface *ifc;
	struct ag_settings *s;
	struct ag_flow_key k;
	struct ag_scratch *sc;
	struct ag_nat_rev *rp;
	struct ag_flow *fp;
	struct ag_pkt p;
	__u32 zero = 0;
	int r, resteer = 0;

	ifc = ag_iface_of(ctx);
	if (!ifc)
		return ag_verdict(AG_R_DROP_BAD_STATE, bytes);
	r = ag_hyg__ingress(AG_MAPS, &p, ifc, data, data_end);
	if (r != AG_PARSE_OK)
		return ag_verdict(r, bytes);
	ag_flow_key__from_pkt(&k, &p);

	/*
	 * To a NAT address: a backend's reply, never a client's flow (a NAT
	 * address is not a VIP); one of no flow of ours is the host's
	 * (ag_hyg__nat_miss). Else a client's packet, never a reply: each
	 * packet costs one table lookup, not two. Either is checked
	 * (hygiene.h) before it touches its entry.
	 */
	s = ag_settings_get();
	if (s && ag_settings__is_nat_addr(s, p.ip->daddr)) {
		r = ag_hyg__ours(&p, ifc, AG_ROLE_BACKEND);
		if (r != AG_HYG_OK)
			return ag_verdict(r, bytes);
		rp = bpf_map_lookup_elem(&ag_nat_rev, &k);
		if (rp)
			return ag_reply(ctx, &p, &k, rp);
		return ag_verdict(ag_hyg__nat_miss(&p), bytes);
	}
	fp = bpf_map_lookup_elem(&ag_flows, &k);
	r = fp ? ag_hyg__ours(&p, ifc, AG_ROLE_CLIENT) : ag_hyg__no_flow(AG_MAPS, &p, ifc);
	if (r != AG_HYG_OK)
		return ag_verdict(r, bytes);
	if (fp) {
		r = ag_hit(ctx, &p, &k, fp);
		if (r != AG_HIT_GO_NEW && r != AG_HIT_GO_MOVE)
			return r;
		resteer = r == AG_HIT_GO_MOVE;
	}
	/* Only a SYN opens a TCP flow. */
	if (!resteer && p.proto == IPPROTO_TCP && !ag_tcp__is_syn(ag_tcp__flags(&p)))
		return ag_not_syn(&p, &k);
	/* The flow being built lives in per-CPU scratch: the stack has no 80 bytes for it. */
	sc = bpf_map_lookup_elem(&ag_scratch, &zero);
	if (!sc)
		return ag_verdict(AG_R_DROP_BAD_STATE, bytes);
	if (resteer)
		sc->flow = *fp;
	r = ag_new_flow(ctx, &p, &k, &sc->flow, resteer);
	if (r < AG_R__MAX)
		return ag_verdict(r, bytes);
	if (r == AG_FLOW_CHALLENGE)
		return ag_challenge(ctx, &p, &k);
	if (r == AG_FLOW_RESTEERED)
		ag_count_reason(AG_R_UDP_RESTEER, bytes);
	return ag_forward_new(ctx, &p, &sc->flow, r == AG_FLOW_CREATED);
}
