// SPDX-License-Identifier: BSD-3-Clause
/*
 * anygate XDP fast path: NAT each TCP/UDP flow to a VIP onto a backend chosen
 * from the listener's live lookup table, and NAT the backend's replies back.
 *
 * Maps are defined here with the names of abi.h (AG_MAP_*) and no pinning:
 * anygated sizes them (bpf_map__set_max_entries) and pins them
 * (bpf_map__set_pin_path) before load. All parsing, hashing, rewriting and
 * checksum work is dataplane/core, shared with the DPDK fast path.
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

/* <sys/socket.h> is not available to BPF programs. */
#define AG_AF_INET 2

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

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, AG_FLOWS_DEFAULT);
	__type(key, struct ag_flow_key);
	__type(value, struct ag_flow);
} ag_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, AG_FLOWS_DEFAULT);
	__type(key, struct ag_flow_key);
	__type(value, struct ag_nat_rev);
} ag_nat_rev SEC(".maps");

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

/* Count a packet we do not forward; return its verdict: drop reasons drop, the rest pass. */
static __always_inline int ag_verdict(int reason, __u64 bytes)
{
	__u32 key = (__u32)reason;
	struct ag_reason_stats *rs = bpf_map_lookup_elem(&ag_rstats, &key);

	if (rs) {
		rs->packets++;
		rs->bytes += bytes;
	}
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

/*
 * Send a rewritten packet to its next hop. The TTL is decremented only when we
 * transmit ourselves: a packet passed to the kernel is forwarded, and
 * decremented, by the kernel.
 */
static __always_inline int ag_xmit(struct xdp_md *ctx, struct ag_pkt *p, __u64 bytes)
{
	struct bpf_fib_lookup fib;
	struct ethhdr *eth = p->eth;
	struct iphdr *ip = p->ip;
	long rc;

	if ((void *)(eth + 1) > p->data_end || (void *)(ip + 1) > p->data_end)
		return ag_verdict(AG_R_DROP_TRUNC_IP, bytes);

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.family = AG_AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = p->proto;
	fib.sport = p->sport;
	fib.dport = p->dport;
	fib.tot_len = p->tot_len;
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		ag_ipv4__dec_ttl(ip);
		/* VLAN tags of the input stay where they are; only the MACs change. */
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		return bpf_redirect(fib.ifindex, 0);
	}
	/*
	 * The next hop's MAC is not known yet. The packet is already rewritten,
	 * so the kernel forwards it like any routed packet and resolves the
	 * neighbour on the way; the following packets find it and are redirected.
	 */
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return ag_verdict(AG_R_PASS_NO_NEIGH, bytes);
	/* Unreachable, blackhole, forwarding off, too big: the kernel decides, answers ICMP. */
	return ag_verdict(AG_R_PASS_NO_ROUTE, bytes);
}

static __always_inline struct ag_settings *ag_settings_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ag_settings, &zero);
}

/*
 * Is flow f (key k) still alive at now? Idle on its own side, it still lives
 * while the backend's replies flow (one-way traffic from the server).
 */
static __always_inline int ag_flow_alive(const struct ag_flow_key *k, const struct ag_flow *f,
					 const struct ag_settings *s, __u64 now)
{
	__u64 idle = ag_settings__idle_ns(s, k->proto);
	struct ag_flow_key rk;
	struct ag_nat_rev *rp;

	if (!ag_flow__is_idle(now, f->last_seen_ns, idle))
		return 1;
	ag_flow_key__reply_of(&rk, f, k->proto);
	rp = bpf_map_lookup_elem(&ag_nat_rev, &rk);
	return rp && ag_nat_rev__owned_by(rp, k) && !ag_flow__is_idle(now, rp->last_seen_ns, idle);
}

/* Remove an expired flow and, when it is still the flow's, its reverse entry. */
static __always_inline void ag_flow_delete(const struct ag_flow_key *k, const struct ag_flow *f)
{
	struct ag_flow_key rk;
	struct ag_nat_rev *rp;

	ag_flow_key__reply_of(&rk, f, k->proto);
	rp = bpf_map_lookup_elem(&ag_nat_rev, &rk);
	if (rp && ag_nat_rev__owned_by(rp, k))
		bpf_map_delete_elem(&ag_nat_rev, &rk);
	bpf_map_delete_elem(&ag_flows, k);
}

/*
 * The NAT port rk names is taken. Take it over if its owner is idle on both
 * sides: delete the owner's flow (when that flow still uses this port), then
 * overwrite. Returns 1 when rk now maps to rv.
 */
static __always_inline int ag_nat_rev_take_over(const struct ag_flow_key *rk,
						const struct ag_nat_rev *rv,
						const struct ag_settings *s, __u64 now)
{
	__u64 idle = ag_settings__idle_ns(s, rk->proto);
	struct ag_flow_key ok;
	struct ag_nat_rev *old;
	struct ag_flow *of;

	old = bpf_map_lookup_elem(&ag_nat_rev, rk);
	if (!old) /* evicted or deleted since our insert failed */
		return bpf_map_update_elem(&ag_nat_rev, rk, rv, BPF_NOEXIST) == 0;
	if (!ag_flow__is_idle(now, old->last_seen_ns, idle))
		return 0;
	ag_flow_key__client_of(&ok, old, rk->proto);
	of = bpf_map_lookup_elem(&ag_flows, &ok);
	if (of && of->nat_addr == rk->daddr && of->nat_port == rk->dport &&
	    of->backend_addr == rk->saddr && of->backend_port == rk->sport) {
		if (!ag_flow__is_idle(now, of->last_seen_ns, idle))
			return 0;
		bpf_map_delete_elem(&ag_flows, &ok);
	}
	if (bpf_map_update_elem(&ag_nat_rev, rk, rv, BPF_ANY))
		return 0;
	/* Another CPU may have taken the same stale port at once: keep it only if ours. */
	old = bpf_map_lookup_elem(&ag_nat_rev, rk);
	return old && old->client_addr == rv->client_addr && old->client_port == rv->client_port &&
	       old->vip == rv->vip && old->vip_port == rv->vip_port;
}

/*
 * A packet of a known (or just created) flow: NAT towards its pinned backend.
 * Counted as forwarded once rewritten; a NO_NEIGH / NO_ROUTE pass to the
 * kernel shows in ag_rstats as well.
 */
static __always_inline int ag_forward(struct xdp_md *ctx, struct ag_pkt *p, const struct ag_flow *f,
				      __u64 bytes, int new_flow)
{
	if (p->ip->ttl <= 1)
		return ag_verdict(AG_R_PASS_TTL, bytes);
	/*
	 * Next issue: here, before the rewrite, a flow whose
	 * ag_backends[f->backend_id] is AG_BACKEND_DOWN gets a TCP RST (from
	 * the VIP, back to the client) or a UDP re-steer.
	 */
	if (ag_nat__forward(p, f))
		return ag_verdict(AG_R_DROP_TRUNC_L4, bytes);
	ag_count_fwd(&ag_lstats, f->listener_id, bytes, new_flow);
	ag_count_fwd(&ag_bstats, f->backend_id, bytes, new_flow);
	return ag_xmit(ctx, p, bytes);
}

/* A backend's reply to a NAT port: back to the client, from the VIP. */
static __always_inline int ag_reply(struct xdp_md *ctx, struct ag_pkt *p, struct ag_nat_rev *rp,
				    __u64 bytes)
{
	struct ag_nat_rev r = *rp;

	if (p->ip->ttl <= 1)
		return ag_verdict(AG_R_PASS_TTL, bytes);
	/* Cheap clock to decide, precise one to stamp (as for forward flows). */
	if (ag_flow__needs_refresh(bpf_ktime_get_coarse_ns(), r.last_seen_ns))
		rp->last_seen_ns = bpf_ktime_get_ns();
	if (ag_nat__reverse(p, &r))
		return ag_verdict(AG_R_DROP_TRUNC_L4, bytes);
	ag_count_ret(&ag_lstats, r.listener_id, bytes);
	ag_count_ret(&ag_bstats, r.backend_id, bytes);
	return ag_xmit(ctx, p, bytes);
}

/*
 * First packet of a flow to a listener: choose the backend and a NAT port, pin
 * both. Returns AG_NEW_FLOW_CREATED or AG_NEW_FLOW_JOINED with *f filled in,
 * else the AG_R_* reason the packet is not forwarded.
 */
#define AG_NEW_FLOW_CREATED (AG_R__MAX + 1)
#define AG_NEW_FLOW_JOINED (AG_R__MAX + 2)

static __always_inline int ag_new_flow(struct ag_pkt *p, const struct ag_flow_key *k,
				       struct ag_flow *f)
{
	struct ag_listener_key lk = {
		.vip = k->daddr,
		.port = k->dport,
		.proto = k->proto,
		.pad = 0,
	};
	struct ag_port_ovr_key ok;
	struct ag_listener_state *ls;
	struct ag_port_ovr *ovr;
	struct ag_settings *s;
	struct ag_backend *be;
	struct ag_flow_key rk;
	struct ag_nat_rev rv;
	struct ag_flow *fp;
	__u32 *lidp, bucket_idx;
	struct ag_lookup_bucket *bucket;
	__u32 lid, bid, slot, idx, h, h2, i;
	__be32 baddr, naddr;
	__be16 bport;
	__u64 now;

	lidp = bpf_map_lookup_elem(&ag_listeners, &lk);
	if (!lidp)
		return AG_R_PASS_NO_LISTENER;
	lid = *lidp;
	ls = bpf_map_lookup_elem(&ag_lstate, &lid);
	if (!ls || !(ls->flags & AG_LF_ACTIVE))
		return AG_R_DROP_BAD_STATE;
	/* Before any state is created: the kernel answers with time exceeded. */
	if (p->ip->ttl <= 1)
		return AG_R_PASS_TTL;
	s = ag_settings_get();
	if (!s || !ag_settings__usable(s))
		return AG_R_DROP_BAD_STATE;
	/* Read the clock only here: traffic that is not ours never pays for it. */
	now = bpf_ktime_get_ns();

	/* The publisher switches slot with one store; read it exactly once. */
	slot = AG_READ_ONCE(ls->slot);
	if (slot >= AG_LOOKUP_SLOTS)
		return AG_R_DROP_BAD_STATE;
	h = ag_hash__select(k, ls->affinity, s->hash_seed);
	idx = ag_lookup__index(slot, s->ring_size, h);
	bucket_idx = ag_lookup__bucket(idx);
	bucket = bpf_map_lookup_elem(&ag_lookup, &bucket_idx);
	if (!bucket) /* ring_size and the map's size disagree */
		return AG_R_DROP_BAD_STATE;
	bid = bucket->backend[ag_lookup__lane(idx)];
	if (bid == AG_BACKEND_NONE)
		return AG_R_DROP_NO_BACKEND;
	be = bpf_map_lookup_elem(&ag_backends, &bid);
	if (!be || be->state != AG_BACKEND_UP)
		return AG_R_DROP_NO_BACKEND;
	if (be->mode != AG_MODE_NAT)
		return AG_R_DROP_BAD_STATE;
	baddr = be->addr;

	ok.group_id = be->group_id;
	ok.port = k->dport;
	ok.pad = 0;
	ovr = bpf_map_lookup_elem(&ag_port_ovr, &ok);
	bport = ovr ? ovr->port : k->dport;

	h2 = ag_hash__nat(k, s->hash_seed);
	naddr = s->nat_addrs[ag_nat__addr_index(h2, s->nat_addr_count)];

	__builtin_memset(&rv, 0, sizeof(rv));
	rv.last_seen_ns = now;
	rv.client_addr = k->saddr;
	rv.vip = k->daddr;
	rv.client_port = k->sport;
	rv.vip_port = k->dport;
	rv.backend_id = bid;
	rv.listener_id = (__u16)lid;

	rk.saddr = baddr;
	rk.daddr = naddr;
	rk.sport = bport;
	rk.proto = k->proto;
	rk.pad[0] = 0;
	rk.pad[1] = 0;
	rk.pad[2] = 0;
	for (i = 0; i < AG_NAT_PORT_RETRIES; i++) {
		__u16 port = ag_nat__port_candidate(h2, i, s->nat_port_min, s->nat_port_max);

		rk.dport = ag_htons(port);
		if (bpf_map_update_elem(&ag_nat_rev, &rk, &rv, BPF_NOEXIST) == 0)
			break;
		if (ag_nat_rev_take_over(&rk, &rv, s, now))
			break;
	}
	if (i == AG_NAT_PORT_RETRIES)
		return AG_R_DROP_NAT_PORTS;

	__builtin_memset(f, 0, sizeof(*f));
	f->last_seen_ns = now;
	f->backend_id = bid;
	f->listener_id = (__u16)lid;
	f->nat_port = rk.dport;
	f->nat_addr = naddr;
	f->backend_addr = baddr;
	f->backend_port = bport;
	if (bpf_map_update_elem(&ag_flows, k, f, BPF_NOEXIST) == 0)
		return AG_NEW_FLOW_CREATED;
	/*
	 * Another CPU created this flow since our lookup (two packets of one
	 * new flow at once): give our NAT port back and follow its choice.
	 */
	bpf_map_delete_elem(&ag_nat_rev, &rk);
	fp = bpf_map_lookup_elem(&ag_flows, k);
	if (!fp)
		return AG_R_DROP_FLOW_INSERT;
	*f = *fp;
	return AG_NEW_FLOW_JOINED;
}

SEC("xdp")
int anygate_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = (__u64)(data_end - data);
	struct ag_settings *s;
	struct ag_flow_key k;
	struct ag_nat_rev *rp;
	struct ag_flow f, *fp;
	struct ag_pkt p;
	int r, created = 0;
	__u64 now;

	r = ag_parse(&p, data, data_end);
	if (r != AG_PARSE_OK) {
		if (r == AG_R_PASS_FRAGMENT) {
			__be32 dst = p.ip->daddr;

			/* We cannot reassemble; the kernel does not own the VIP either. */
			if (bpf_map_lookup_elem(&ag_vips, &dst))
				r = AG_R_DROP_FRAGMENT;
		}
		return ag_verdict(r, bytes);
	}
	ag_flow_key__from_pkt(&k, &p);

	fp = bpf_map_lookup_elem(&ag_flows, &k);
	if (fp) {
		f = *fp;
		/*
		 * Fresh within the refresh granularity (<= the minimum idle
		 * time): nothing to check or write. The coarse clock is the
		 * same CLOCK_MONOTONIC at tick resolution for a fraction of
		 * the cost (about 20 ns per packet here); it only decides
		 * whether to look closer. Stamps are always bpf_ktime_get_ns().
		 */
		if (!ag_flow__needs_refresh(bpf_ktime_get_coarse_ns(), f.last_seen_ns))
			goto forward;
		now = bpf_ktime_get_ns();
		s = ag_settings_get();
		if (s && ag_flow_alive(&k, &f, s, now)) {
			fp->last_seen_ns = now;
			goto forward;
		}
		/* Expired: forget it, this packet starts a new flow. */
		ag_flow_delete(&k, &f);
	} else {
		rp = bpf_map_lookup_elem(&ag_nat_rev, &k);
		if (rp)
			return ag_reply(ctx, &p, rp, bytes);
	}

	r = ag_new_flow(&p, &k, &f);
	if (r < AG_R__MAX)
		return ag_verdict(r, bytes);
	created = r == AG_NEW_FLOW_CREATED;
forward:
	return ag_forward(ctx, &p, &f, bytes, created);
}
