/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The forwarding lcore: receive a burst on each port, look the burst's flows
 * up at once, rewrite, transmit; the same decisions as bpf/anygate.bpf.c,
 * step by step, on the same dataplane/core functions. Everything that is not
 * a forwarded TCP/UDP packet goes to the main lcore (ARP, the kernel's
 * traffic, unresolved next hops) or is dropped with its reason counted.
 */
#include <stddef.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "dp.h"
#include "core.h"
#include "flows.h"
#include "fwd.h"
#include "io.h"
#include "neigh.h"
#include "select.h"
#include "synauth.h"

volatile int ag_dp_quit;

static inline void tx_flush(struct ag_dp_lcore *lc, uint16_t port)
{
	struct ag_dp_txq *q = &lc->txq[port];
	uint16_t sent;

	if (!q->n)
		return;
	sent = rte_eth_tx_burst(lc->dp->ports[port].id, (uint16_t)lc->index, q->m, q->n);
	ag_dp__count(lc->lane, AG_DPC_TX_PACKETS, sent);
	if (unlikely(sent < q->n)) {
		ag_dp__count(lc->lane, AG_DPC_TX_DROPPED, q->n - sent);
		rte_pktmbuf_free_bulk(&q->m[sent], q->n - sent);
	}
	q->n = 0;
}

static inline void tx_enqueue(struct ag_dp_lcore *lc, uint16_t port, struct rte_mbuf *m)
{
	struct ag_dp_txq *q = &lc->txq[port];

	q->m[q->n++] = m;
	if (q->n == AG_DP_BURST)
		tx_flush(lc, port);
}

static void to_main(struct ag_dp_lcore *lc, struct rte_mbuf *m, enum ag_dp_slow_kind kind,
		    uint16_t in_port, uint16_t out_port, uint32_t nh_ip)
{
	m->port = in_port; /* the main lcore speaks port indexes */
	ag_dp_slow_mark(m, kind, out_port, nh_ip);
	ag_dp__hand_to_main(lc, m, kind);
}

/* A packet we do not forward: count its reason; drop reasons drop, the rest pass. */
static void verdict(struct ag_dp_lcore *lc, struct rte_mbuf *m, int reason, uint16_t in_port)
{
	const struct rte_ether_hdr *eth;

	ag_dp__reason(lc->lane, reason, m->pkt_len);
	if (ag_reason__is_drop(reason)) {
		rte_pktmbuf_free(m);
		return;
	}
	eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	if (reason == AG_R_PASS_NOT_IPV4 && m->data_len >= sizeof(*eth) &&
	    eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
		to_main(lc, m, AG_DP_SLOW_ARP, in_port, 0, 0);
	else
		to_main(lc, m, AG_DP_SLOW_KERNEL, in_port, 0, 0);
}

/*
 * Send a rewritten packet to its next hop. The TTL is decremented only when we
 * transmit ourselves (as in XDP): a packet passed to the kernel is forwarded,
 * and decremented, by the kernel. An unresolved next hop is ours to resolve,
 * so that packet is decremented here and held by the main lcore.
 */
static inline void xmit(struct ag_dp_lcore *lc, struct rte_mbuf *m, struct ag_pkt *p,
			struct ag_dp_nh *nh, uint16_t in_port)
{
	struct ag_dp *dp = lc->dp;
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p->eth;
	uint32_t idx = nh->neigh;
	int tries;

	if (unlikely(nh->port == AG_DP_NO_PORT)) {
		verdict(lc, m, AG_R_PASS_NO_ROUTE, in_port);
		return;
	}
	ag_ipv4__dec_ttl(p->ip);
	for (tries = 0; tries < 2; tries++) {
		if (likely(idx != AG_DP_NONE)) {
			struct ag_dp_neigh *n = &dp->neigh[idx];
			uint32_t ip = __atomic_load_n(&n->ip, __ATOMIC_ACQUIRE);
			uint64_t v = __atomic_load_n(&n->mac_state, __ATOMIC_ACQUIRE);

			/* ip read again: the slot was not reset under us. */
			if (likely(ip == nh->ip && ag_dp_neigh__usable(v) &&
				   __atomic_load_n(&n->ip, __ATOMIC_ACQUIRE) == ip)) {
				memcpy(eth->dst_addr.addr_bytes, &v, RTE_ETHER_ADDR_LEN);
				rte_ether_addr_copy(&dp->ports[nh->port].mac, &eth->src_addr);
				if (unlikely(!n->used))
					n->used = 1;
				tx_enqueue(lc, nh->port, m);
				return;
			}
		}
		/* Cache miss or a stale slot: ask the table, remember the answer. */
		idx = ag_dp_neigh__find(dp, nh->ip);
		nh->neigh = idx;
		if (idx == AG_DP_NONE)
			break;
	}
	ag_dp__reason(lc->lane, AG_R_PASS_NO_NEIGH, m->pkt_len);
	to_main(lc, m, AG_DP_SLOW_NEIGH, in_port, nh->port, nh->ip);
}

static inline void count_fwd(struct ag_shm_lane *l, const struct ag_flow *f, uint64_t bytes,
			     bool created)
{
	struct ag_traffic_stats *ts;

	if (likely(f->listener_id < AG_MAX_LISTENERS)) {
		ts = &l->lstats[f->listener_id];
		ts->packets++;
		ts->bytes += bytes;
		ts->new_flows += created;
	}
	if (likely(f->backend_id < AG_MAX_BACKENDS)) {
		ts = &l->bstats[f->backend_id];
		ts->packets++;
		ts->bytes += bytes;
		ts->new_flows += created;
	}
}

static inline void count_ret(struct ag_shm_lane *l, const struct ag_nat_rev *r, uint64_t bytes)
{
	if (likely(r->listener_id < AG_MAX_LISTENERS)) {
		l->lstats[r->listener_id].ret_packets++;
		l->lstats[r->listener_id].ret_bytes += bytes;
	}
	if (likely(r->backend_id < AG_MAX_BACKENDS)) {
		l->bstats[r->backend_id].ret_packets++;
		l->bstats[r->backend_id].ret_bytes += bytes;
	}
}

/* A packet of a known (or just created) flow: NAT towards its pinned backend. */
static inline void forward(struct ag_dp_lcore *lc, struct rte_mbuf *m, struct ag_pkt *p,
			   struct ag_dp_flow *fv, bool created, uint16_t in_port)
{
	if (unlikely(p->ip->ttl <= 1)) {
		verdict(lc, m, AG_R_DROP_TTL, in_port);
		return;
	}
	if (unlikely(ag_nat__forward(p, &fv->f))) {
		verdict(lc, m, AG_R_DROP_TRUNC_L4, in_port);
		return;
	}
	count_fwd(lc->lane, &fv->f, m->pkt_len, created);
	xmit(lc, m, p, &fv->nh, in_port);
}

/*
 * A backend's reply to a NAT port (reverse key rk): back to the client, from
 * the VIP. A TCP segment with SYN, FIN or RST moves its flow's state. The
 * entry's last_seen is refreshed more often than a flow's: how recent the
 * replies are tells an overloaded backend from a dead one.
 */
static inline void reply(struct ag_dp_lcore *lc, struct rte_mbuf *m, struct ag_pkt *p,
			 const struct ag_flow_key *rk, struct ag_dp_rev *rv, uint8_t flags,
			 uint64_t now, uint16_t in_port)
{
	struct ag_nat_rev r = rv->r;

	/* Flags were checked with the rest of the packet (ag_hyg__ours). */
	if (p->proto == IPPROTO_TCP && unlikely(flags & (AG_TCPF_SYN | AG_TCPF_FIN | AG_TCPF_RST)))
		ag_dp_flows__reply_state(lc->dp, rk, &r, flags);
	if (unlikely(p->ip->ttl <= 1)) {
		verdict(lc, m, AG_R_DROP_TTL, in_port);
		return;
	}
	/* The first reply always stamps: until then last_seen is the flow's creation. */
	if (unlikely(!(r.flags & AG_REV_REPLIED)) ||
	    ag_flow__age(now, r.last_seen_ns) >= AG_REPLY_GRANULARITY_NS) {
		rv->r.last_seen_ns = now;
		rv->r.flags = r.flags | AG_REV_REPLIED;
	}
	if (unlikely(ag_nat__reverse(p, &r))) {
		verdict(lc, m, AG_R_DROP_TRUNC_L4, in_port);
		return;
	}
	count_ret(lc->lane, &r, m->pkt_len);
	xmit(lc, m, p, &rv->nh, in_port);
}

/* Pick up a new copy of the settings when the publisher changed anything. */
static inline void settings_refresh(struct ag_dp_lcore *lc)
{
	uint64_t gen = __atomic_load_n(&lc->dp->hdr->pub.generation, __ATOMIC_ACQUIRE);

	if (likely(gen == lc->settings_gen && lc->settings_ok))
		return;
	if (ag_shm__settings_get(&lc->dp->seg, &lc->settings) == 1) {
		lc->settings_ok = 1;
		lc->settings_gen = gen;
	}
}

/* p was rewritten in place into an answer of len bytes: trim it and send it back. */
static void answer(struct ag_dp_lcore *lc, struct rte_mbuf *m, int len, int reason,
		   uint16_t in_port)
{
	uint32_t bytes = m->pkt_len;

	/* Payload and options go. */
	if ((uint32_t)len < m->data_len)
		rte_pktmbuf_trim(m, m->data_len - (uint16_t)len);
	ag_dp__reason(lc->lane, reason, bytes);
	tx_enqueue(lc, in_port, m);
}

/*
 * A TCP segment of a flow whose backend is down: answer the client with a RST
 * from the VIP, out of the port it came in on, and forget the flow. A RST
 * from the client is not answered (and its flow is over as well).
 */
static void reset(struct ag_dp_lcore *lc, struct rte_mbuf *m, struct ag_pkt *p,
		  const struct ag_flow_key *k, struct ag_dp_flow *fv, uint16_t in_port)
{
	int len = ag_tcp__make_rst(p);

	ag_dp_flows__expire(lc->dp, k, fv);
	if (len < 0)
		verdict(lc, m, AG_R_DROP_NO_BACKEND, in_port);
	else
		answer(lc, m, len, AG_R_TX_RST_BACKEND_DOWN, in_port);
}

/* An unverified SYN past this lcore's budget: answer it with the challenge (rst.h), no state. */
static void challenge(struct ag_dp_lcore *lc, struct rte_mbuf *m, struct ag_pkt *p,
		      const struct ag_flow_key *k, uint64_t now, uint16_t in_port)
{
	int len =
	    ag_tcp__make_syn_challenge(p, ag_syn__cookie(k, lc->settings.syn_auth_secret, now));

	if (len < 0)
		verdict(lc, m, AG_R_DROP_TRUNC_L4, in_port);
	else
		answer(lc, m, len, AG_R_TX_SYN_CHALLENGE, in_port);
}

/*
 * ag_flow_key__from_pkt(), with the ports read from the L4 header as one word
 * (TCP and UDP both start with source and destination port) rather than from
 * the two halves ag_parse() just stored: the same key, without a load that
 * straddles two fresh stores (a store-forwarding stall per packet).
 */
_Static_assert(offsetof(struct ag_flow_key, dport) == offsetof(struct ag_flow_key, sport) + 2,
	       "ports adjacent in the key");
static inline void flow_key(struct ag_flow_key *k, const struct ag_pkt *p)
{
	uint32_t ports;

	memcpy(&ports, p->l4, sizeof(ports));
	ag_addr__set4(&k->saddr, p->ip->saddr);
	ag_addr__set4(&k->daddr, p->ip->daddr);
	memcpy(&k->sport, &ports, sizeof(ports));
	k->proto = p->proto;
	k->family = AG_FAMILY_IPV4;
	k->pad[0] = 0;
	k->pad[1] = 0;
}

/*
 * Choose, admit and pin a new flow (or move flow moving), then forward the
 * packet on it; or answer the SYN with a challenge; or count the refusal.
 */
static void new_flow(struct ag_dp_lcore *lc, struct rte_mbuf *m, struct ag_pkt *p,
		     const struct ag_flow_key *k, struct ag_dp_flow *moving, uint64_t now,
		     uint16_t in_port)
{
	struct ag_dp_flow *fv;
	int r;

	r = ag_dp_flows__create(lc, k, p->ip->ttl, now, m->pkt_len, moving, &fv);
	if (r < AG_R__MAX) {
		verdict(lc, m, r, in_port);
		return;
	}
	if (r == AG_FLOW_CHALLENGE) {
		challenge(lc, m, p, k, now, in_port);
		return;
	}
	if (r == AG_FLOW_RESTEERED)
		ag_dp__reason(lc->lane, AG_R_UDP_RESTEER, m->pkt_len);
	forward(lc, m, p, fv, r == AG_FLOW_CREATED, in_port);
}

/*
 * A packet of no flow (none, or its flow just ended). Only a SYN opens a TCP
 * flow; any other segment creates nothing (admit.h): the RST that answers a
 * challenge verifies its source, the rest is refused.
 */
static void no_flow(struct ag_dp_lcore *lc, struct rte_mbuf *m, struct ag_pkt *p,
		    const struct ag_flow_key *k, uint8_t flags, uint64_t now, uint16_t in_port)
{
	int r;

	if (p->proto != IPPROTO_TCP || ag_tcp__is_syn(flags)) {
		new_flow(lc, m, p, k, NULL, now, in_port);
		return;
	}
	r = ag_dp__not_syn(&lc->dp->seg, lc->settings_ok ? &lc->settings : NULL, p, k, flags, now);
	if (r == AG_R_SYN_AUTH_PASSED) {
		ag_dp_synauth__record(lc->dp->syn, &k->saddr, now);
		ag_dp__reason(lc->lane, r, m->pkt_len);
		rte_pktmbuf_free(m);
		return;
	}
	verdict(lc, m, r, in_port);
}

/* The backend flow fv is pinned to, as anygated last published it (NULL: id out of range). */
static inline const struct ag_backend *backend_of(const struct ag_dp *dp,
						  const struct ag_dp_flow *fv)
{
	return likely(fv->f.backend_id < AG_MAX_BACKENDS)
		   ? &ag_shm__backends(&dp->seg)[fv->f.backend_id]
		   : NULL;
}

/*
 * A packet of flow fv (key k), in the XDP program's order (its flags were
 * checked with the rest of the packet, ag_hyg__ours): the flow still live (checked when last_seen
 * is due for a refresh, else it is fresh by definition); a SYN on a closed flow starts a new one;
 * the client's flags move the state; then the backend's health decides.
 */
static void on_flow(struct ag_dp_lcore *lc, struct rte_mbuf *m, struct ag_pkt *p,
		    const struct ag_flow_key *k, struct ag_dp_flow *fv, uint8_t flags, uint64_t now,
		    uint16_t in_port)
{
	struct ag_dp *dp = lc->dp;
	const struct ag_settings *s = lc->settings_ok ? &lc->settings : NULL;
	const struct ag_backend *b;
	uint32_t bits;

	if (unlikely(ag_flow__needs_refresh(now, fv->f.last_seen_ns))) {
		if (!s || !ag_dp_flows__live(dp, k, &fv->f, s, now))
			goto over;
		fv->f.last_seen_ns = now;
	}
	if (p->proto == IPPROTO_TCP) {
		bits = __atomic_load_n(&fv->f.tcp, __ATOMIC_RELAXED);
		/* A new connection on the tuple of a closed one. */
		if (unlikely(ag_tcp__is_syn(flags) && ag_tcp__closed(bits)))
			goto over;
		bits = ag_tcp__client_bits(bits, flags);
		if (unlikely(bits))
			__atomic_fetch_or(&fv->f.tcp, bits, __ATOMIC_RELAXED);
	}
	b = backend_of(dp, fv);
	if (likely(!b || !ag_flow__backend_down(&fv->f, b))) {
		forward(lc, m, p, fv, false, in_port);
		return;
	}
	switch (ag_dp_flows__on_backend(dp, k, &fv->f, b, s, now)) {
	case AG_R_TX_RST_BACKEND_DOWN:
		reset(lc, m, p, k, fv, in_port);
		return;
	case AG_R_UDP_RESTEER:
		new_flow(lc, m, p, k, fv, now, in_port);
		return;
	case AG_R_KEPT_BACKEND_REPLYING:
		ag_dp__reason(lc->lane, AG_R_KEPT_BACKEND_REPLYING, m->pkt_len);
		/* fall through */
	default:
		forward(lc, m, p, fv, false, in_port);
		return;
	}
over:
	/* Over: forget it; this packet is one of no flow. */
	ag_dp_flows__expire(dp, k, fv);
	no_flow(lc, m, p, k, flags, now, in_port);
}

/* The packets of a burst bound for one table (process_burst). */
struct ag_dp_group {
	uint16_t n;
	uint16_t idx[AG_DP_BURST]; /* of each packet in the burst */
	const void *kp[AG_DP_BURST];
	void *data[AG_DP_BURST];
};

/*
 * A client's packet (group 0): checked as every packet to a VIP when it has
 * a flow, else also as the first packet of one (hygiene.h), then handled.
 */
static void from_client(struct ag_dp_lcore *lc, struct rte_mbuf *m, struct ag_pkt *p,
			const struct ag_flow_key *k, struct ag_dp_flow *fv, uint8_t flags,
			uint64_t now, uint16_t in_port)
{
	const struct ag_iface *ifc = &lc->dp->ports[in_port].iface;
	int r = fv ? ag_hyg__ours(p, ifc, AG_ROLE_CLIENT)
		   : ag_dp__no_flow(&lc->dp->seg, lc->settings_ok ? &lc->settings : NULL, p, ifc);

	if (unlikely(r != AG_HYG_OK))
		verdict(lc, m, r, in_port);
	else if (fv)
		on_flow(lc, m, p, k, fv, flags, now, in_port);
	else
		no_flow(lc, m, p, k, flags, now, in_port);
}

/*
 * One group's keys looked up in bulk, each found value's two cache lines
 * fetched (dp.h), then each packet handled: rev, a group of replies (their
 * packets were checked before the lookup); one of no reverse entry is the
 * host's (the NAT address is its own too).
 */
static void process_group(struct ag_dp_lcore *lc, struct rte_mbuf **pkts, struct ag_pkt *pp,
			  struct ag_dp_group *g, bool rev, uint16_t in_port, uint64_t now)
{
	struct rte_hash *h = rev ? lc->dp->revs : lc->dp->flows;
	uint64_t hits = 0;
	uint16_t i;

	if (!g->n)
		return;
	rte_hash_lookup_bulk_data(h, g->kp, g->n, &hits, g->data);
	for (i = 0; i < g->n; i++) {
		if (hits & (1ull << i)) {
			rte_prefetch0(g->data[i]);
			rte_prefetch0((const char *)g->data[i] + RTE_CACHE_LINE_SIZE);
		}
	}
	for (i = 0; i < g->n; i++) {
		struct rte_mbuf *m = pkts[g->idx[i]];
		struct ag_pkt *p = &pp[g->idx[i]];
		const struct ag_flow_key *k = g->kp[i];
		uint8_t flags = p->proto == IPPROTO_TCP ? ag_tcp__flags(p) : 0;

		bool hit = hits & (1ull << i);

		if (!rev)
			from_client(lc, m, p, k, hit ? g->data[i] : NULL, flags, now, in_port);
		else if (likely(hit))
			reply(lc, m, p, k, g->data[i], flags, now, in_port);
		else
			verdict(lc, m, ag_hyg__nat_miss(p), in_port);
	}
}

/*
 * Parse and check a burst (hygiene.h), then look each packet up in the one
 * table it can be in (as the XDP program): a packet to a NAT address is a
 * backend's reply, checked now, any other a client's, checked once its flow
 * is known. Clients' packets go first, then replies: the order within a flow
 * is kept.
 */
static void process_burst(struct ag_dp_lcore *lc, struct rte_mbuf **pkts, uint16_t n,
			  uint16_t in_port, uint64_t now)
{
	struct ag_dp *dp = lc->dp;
	const struct ag_iface *ifc = &dp->ports[in_port].iface;
	struct ag_flow_key keys[AG_DP_BURST];
	struct ag_pkt pp[AG_DP_BURST];
	struct ag_dp_group g[2];
	uint16_t i;
	bool rev = false;

	g[0].n = g[1].n = 0;
	for (i = 0; i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		uint8_t *d = rte_pktmbuf_mtod(m, uint8_t *);
		int r = ag_dp__ingress(&dp->seg, &pp[i], ifc, d, d + m->data_len);

		if (likely(r == AG_PARSE_OK)) {
			rev = lc->settings_ok &&
			      ag_settings__is_nat_addr(&lc->settings, pp[i].ip->daddr);
			if (rev)
				r = ag_hyg__ours(&pp[i], ifc, AG_ROLE_BACKEND);
		}
		if (unlikely(r != AG_PARSE_OK)) {
			verdict(lc, m, r, in_port);
			continue;
		}
		flow_key(&keys[i], &pp[i]);
		g[rev].idx[g[rev].n] = i;
		g[rev].kp[g[rev].n++] = &keys[i];
	}
	process_group(lc, pkts, pp, &g[0], false, in_port, now);
	process_group(lc, pkts, pp, &g[1], true, in_port, now);
}

/* Transmissions of the main lcore (ARP, the kernel's packets, held packets): lcore 0 sends them. */
static void drain_from_main(struct ag_dp_lcore *lc)
{
	struct rte_mbuf *ms[AG_DP_BURST];
	unsigned int n, i;

	n = rte_ring_sc_dequeue_burst(lc->from_main, (void **)ms, AG_DP_BURST, NULL);
	for (i = 0; i < n; i++) {
		uint16_t port = (uint16_t)ms[i]->hash.fdir.lo;

		if (unlikely(port >= lc->dp->n_ports)) {
			rte_pktmbuf_free(ms[i]);
			continue;
		}
		tx_enqueue(lc, port, ms[i]);
	}
}

/* One iteration of the loop: every port once, then flush. */
void ag_dp__fwd_poll(struct ag_dp_lcore *lc)
{
	struct ag_dp *dp = lc->dp;
	struct rte_mbuf *pkts[AG_DP_BURST];
	unsigned int port; /* < n_ports <= AG_MAX_IFACES */
	uint16_t n, total = 0;
	uint64_t now = 0;

	settings_refresh(lc);
	for (port = 0; port < dp->n_ports; port++) {
		n = rte_eth_rx_burst(dp->ports[port].id, (uint16_t)lc->index, pkts, AG_DP_BURST);
		if (!n)
			continue;
		if (!now)
			now = ag_dp__now(dp);
		total += n;
		ag_dp__count(lc->lane, AG_DPC_RX_PACKETS, n);
		process_burst(lc, pkts, n, (uint16_t)port, now);
	}
	if (lc->from_main)
		drain_from_main(lc);
	for (port = 0; port < dp->n_ports; port++)
		tx_flush(lc, (uint16_t)port);
	if (total) {
		lc->idle_polls = 0;
	} else if (dp->idle_sleep_us && ++lc->idle_polls > 1024) {
		/* A lab on a shared machine: give the core back while nothing arrives. */
		rte_delay_us_sleep(dp->idle_sleep_us);
	}
}

int ag_dp__fwd_loop(void *arg)
{
	struct ag_dp_lcore *lc = arg;
	struct ag_dp *dp = lc->dp;

	rte_rcu_qsbr_thread_online(dp->qsbr, lc->lcore_id);
	while (!__atomic_load_n(&ag_dp_quit, __ATOMIC_RELAXED)) {
		ag_dp__fwd_poll(lc);
		rte_rcu_qsbr_quiescent(dp->qsbr, lc->lcore_id);
	}
	rte_rcu_qsbr_thread_offline(dp->qsbr, lc->lcore_id);
	return 0;
}
