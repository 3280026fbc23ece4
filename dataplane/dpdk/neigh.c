/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Neighbours and ARP: what the kernel's neighbour table does for the XDP
 * path (bpf_fib_lookup's NO_NEIGH).
 *
 * Neighbours live in an array indexed through an rte_hash (ip -> index) that
 * only the main lcore changes; forwarding lcores read an entry's ip and its
 * packed MAC/state word without locks and check the ip again after (a slot is
 * reset and reused only after an RCU grace period, and a flow's cached index
 * is always checked against its next-hop ip). Unresolved next hops: the
 * forwarding lcore hands the (already rewritten) packet to the main lcore,
 * which holds a few per neighbour, asks by ARP and sends them on the answer.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "dp.h"
#include "io.h"
#include "log.h"
#include "neigh.h"
#include "port.h"

static uint32_t free_stack[AG_DP_MAX_NEIGH];
static unsigned int n_free;

/* The neighbour hash's deferred free: the slot may be reused now. */
static void neigh_slot_free(void *p, void *data)
{
	struct ag_dp *dp = p;
	uint32_t idx = (uint32_t)(uintptr_t)data - 1;
	struct ag_dp_neigh *n = &dp->neigh[idx];
	unsigned int i;

	for (i = 0; i < n->nq; i++)
		rte_pktmbuf_free(n->q[i]);
	__atomic_store_n(&n->ip, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&n->mac_state, 0, __ATOMIC_RELEASE);
	memset((char *)n + offsetof(struct ag_dp_neigh, used), 0,
	       sizeof(*n) - offsetof(struct ag_dp_neigh, used));
	free_stack[n_free++] = idx;
}

static uint32_t neigh_create(struct ag_dp *dp, uint32_t ip, uint16_t port, uint8_t state,
			     const struct rte_ether_addr *mac)
{
	static const struct rte_ether_addr zero;
	struct ag_dp_neigh *n;
	uint32_t idx;

	if (!n_free)
		return AG_DP_NONE;
	idx = free_stack[--n_free];
	if (idx >= dp->neigh_high)
		dp->neigh_high = idx + 1;
	n = &dp->neigh[idx];
	n->port = port;
	n->probes = 0;
	n->nq = 0;
	n->used = 0;
	n->confirmed_ns = 0;
	n->asked_ns = 0;
	n->last_used_ns = 0;
	/* MAC and state before ip: a reader that sees the ip sees them. */
	__atomic_store_n(&n->mac_state, ag_dp_neigh__pack(mac ? mac : &zero, state, (uint8_t)port),
			 __ATOMIC_RELEASE);
	__atomic_store_n(&n->ip, ip, __ATOMIC_RELEASE);
	if (rte_hash_add_key_data(dp->neigh_hash, &ip, (void *)(uintptr_t)(idx + 1)) < 0) {
		__atomic_store_n(&n->ip, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&n->mac_state, 0, __ATOMIC_RELEASE);
		free_stack[n_free++] = idx;
		return AG_DP_NONE;
	}
	return idx;
}

int ag_dp_neigh__init(struct ag_dp *dp)
{
	const struct ag_cfg_dpdk *c = &dp->cfg->edge.dpdk;
	struct rte_hash_parameters p = {
	    .name = "ag_neigh",
	    .entries = AG_DP_MAX_NEIGH,
	    .key_len = sizeof(uint32_t),
	    .hash_func = rte_jhash,
	    .socket_id = (int)rte_socket_id(),
	    .extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct rte_hash_rcu_config rcu = {
	    .v = dp->qsbr,
	    .mode = RTE_HASH_QSBR_MODE_DQ,
	    .key_data_ptr = dp,
	    .free_key_data_func = neigh_slot_free,
	};
	unsigned int i;

	dp->neigh =
	    rte_zmalloc("ag_neigh", sizeof(*dp->neigh) * AG_DP_MAX_NEIGH, RTE_CACHE_LINE_SIZE);
	dp->neigh_hash = rte_hash_create(&p);
	if (!dp->neigh || !dp->neigh_hash || rte_hash_rcu_qsbr_add(dp->neigh_hash, &rcu)) {
		pr_err("neighbour table: %s\n", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (i = 0; i < AG_DP_MAX_NEIGH; i++)
		free_stack[i] = AG_DP_MAX_NEIGH - 1 - i;
	n_free = AG_DP_MAX_NEIGH;

	for (i = 0; i < c->n_neighbours; i++) {
		struct rte_ether_addr mac;
		int port = ag_dp_ports__of_addr(dp, c->neighbours[i].addr);

		memcpy(mac.addr_bytes, c->neighbours[i].mac, RTE_ETHER_ADDR_LEN);
		if (port < 0 || neigh_create(dp, c->neighbours[i].addr, (uint16_t)port,
					     AG_DP_NEIGH_STATIC, &mac) == AG_DP_NONE) {
			pr_err("static neighbour %u: cannot add\n", i);
			return -EINVAL;
		}
	}
	return 0;
}

void ag_dp_neigh__fini(struct ag_dp *dp)
{
	unsigned int i, j;

	if (dp->neigh) {
		for (i = 0; i < AG_DP_MAX_NEIGH; i++)
			for (j = 0; j < dp->neigh[i].nq; j++)
				rte_pktmbuf_free(dp->neigh[i].q[j]);
	}
	rte_hash_free(dp->neigh_hash);
	rte_free(dp->neigh);
	dp->neigh_hash = NULL;
	dp->neigh = NULL;
}

uint32_t ag_dp_neigh__find(const struct ag_dp *dp, uint32_t ip)
{
	void *d;

	if (rte_hash_lookup_data(dp->neigh_hash, &ip, &d) < 0)
		return AG_DP_NONE;
	return (uint32_t)(uintptr_t)d - 1;
}

/* Frame m for neighbour n and send it. */
static void send_to(struct ag_dp *dp, struct rte_mbuf *m, const struct ag_dp_neigh *n)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	uint64_t v = __atomic_load_n(&n->mac_state, __ATOMIC_ACQUIRE);

	memcpy(eth->dst_addr.addr_bytes, &v, RTE_ETHER_ADDR_LEN);
	rte_ether_addr_copy(&dp->ports[n->port].mac, &eth->src_addr);
	ag_dp__send_from_main(dp, m, n->port);
}

static void send_arp(struct ag_dp *dp, uint16_t port, uint16_t op, uint32_t tip,
		     const struct rte_ether_addr *dst)
{
	const struct ag_dp_port *pt = &dp->ports[port];
	struct rte_ether_hdr *eth;
	struct rte_arp_hdr *arp;
	struct rte_mbuf *m;

	m = rte_pktmbuf_alloc(dp->pool);
	if (!m) {
		ag_dp__count(dp->main_lane, AG_DPC_TX_DROPPED, 1);
		return;
	}
	eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	arp = (struct rte_arp_hdr *)(eth + 1);
	m->data_len = m->pkt_len = RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN;
	memset(eth, 0, m->data_len);
	if (dst)
		rte_ether_addr_copy(dst, &eth->dst_addr);
	else
		memset(eth->dst_addr.addr_bytes, 0xff, RTE_ETHER_ADDR_LEN);
	rte_ether_addr_copy(&pt->mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = RTE_ETHER_ADDR_LEN;
	arp->arp_plen = 4;
	arp->arp_opcode = rte_cpu_to_be_16(op);
	rte_ether_addr_copy(&pt->mac, &arp->arp_data.arp_sha);
	arp->arp_data.arp_sip = pt->addr;
	arp->arp_data.arp_tip = tip;
	ag_dp__count(dp->main_lane, AG_DPC_ARP_REQUESTS, 1);
	ag_dp__send_from_main(dp, m, port);
}

static void flush_held(struct ag_dp *dp, struct ag_dp_neigh *n)
{
	unsigned int i;

	for (i = 0; i < n->nq; i++)
		send_to(dp, n->q[i], n);
	n->nq = 0;
}

static void drop_held(struct ag_dp *dp, struct ag_dp_neigh *n)
{
	unsigned int i;

	for (i = 0; i < n->nq; i++)
		rte_pktmbuf_free(n->q[i]);
	ag_dp__count(dp->main_lane, AG_DPC_NEIGH_DROPPED, n->nq);
	n->nq = 0;
}

static void set_state(struct ag_dp_neigh *n, uint8_t state, const struct rte_ether_addr *mac)
{
	uint64_t v = __atomic_load_n(&n->mac_state, __ATOMIC_RELAXED);
	struct rte_ether_addr cur;

	memcpy(cur.addr_bytes, &v, RTE_ETHER_ADDR_LEN);
	__atomic_store_n(&n->mac_state,
			 ag_dp_neigh__pack(mac ? mac : &cur, state, (uint8_t)n->port),
			 __ATOMIC_RELEASE);
}

void ag_dp_neigh__hold(struct ag_dp *dp, struct rte_mbuf *m, uint16_t port, uint32_t ip,
		       uint64_t now)
{
	uint32_t idx = ag_dp_neigh__find(dp, ip);
	struct ag_dp_neigh *n;
	uint64_t v;

	if (idx == AG_DP_NONE)
		idx = neigh_create(dp, ip, port, AG_DP_NEIGH_INCOMPLETE, NULL);
	if (idx == AG_DP_NONE) {
		rte_pktmbuf_free(m);
		ag_dp__count(dp->main_lane, AG_DPC_NEIGH_DROPPED, 1);
		return;
	}
	n = &dp->neigh[idx];
	v = __atomic_load_n(&n->mac_state, __ATOMIC_ACQUIRE);
	if (ag_dp_neigh__usable(v)) { /* resolved since the lcore looked */
		send_to(dp, m, n);
		return;
	}
	if (ag_dp_neigh__state(v) == AG_DP_NEIGH_FAILED) {
		/* A new packet restarts resolution (as the kernel does). */
		set_state(n, AG_DP_NEIGH_INCOMPLETE, NULL);
		n->probes = 0;
		n->asked_ns = 0;
	}
	if (n->nq < AG_DP_NEIGH_QLEN) {
		n->q[n->nq++] = m;
		ag_dp__count(dp->main_lane, AG_DPC_NEIGH_HELD, 1);
	} else {
		rte_pktmbuf_free(m);
		ag_dp__count(dp->main_lane, AG_DPC_NEIGH_DROPPED, 1);
	}
	n->last_used_ns = now;
	if (!n->asked_ns || now - n->asked_ns >= AG_DP_NEIGH_PROBE_NS) {
		n->asked_ns = now;
		n->probes++;
		send_arp(dp, n->port, RTE_ARP_OP_REQUEST, ip, NULL);
	}
}

/* Is tip an address this edge answers ARP for on port p: its own, a VIP, a NAT address? */
static bool arp_ours(struct ag_dp *dp, uint16_t p, uint32_t tip)
{
	struct ag_settings s;
	uint32_t i;

	if (tip == dp->ports[p].addr)
		return true;
	if (ag_shm__vip_get(&dp->seg, tip) == 1)
		return true;
	if (ag_shm__settings_get(&dp->seg, &s) == 1 && s.nat_addr_count <= AG_MAX_NAT_ADDRS)
		for (i = 0; i < s.nat_addr_count; i++)
			if (s.nat_addrs[i] == tip)
				return true;
	return false;
}

/*
 * The kernel's own ARP requests out of the taps, the last few: the edge asked,
 * so their answers are not unsolicited (the kernel keeps its own table; ours
 * learns only from our requests, neigh_rules.h).
 */
#define KERNEL_ASKED_SLOTS 16
static struct {
	uint32_t ip;
	uint64_t ns;
} kernel_asked[KERNEL_ASKED_SLOTS];
static unsigned int kernel_asked_next;

/* An ARP packet of the usual shape (Ethernet, IPv4), or NULL. */
static struct rte_arp_hdr *arp_of(const struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);

	if (rte_pktmbuf_data_len(m) < sizeof(*eth) + sizeof(*arp) ||
	    eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP) ||
	    arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != 4)
		return NULL;
	return arp;
}

void ag_dp_arp__from_kernel(struct ag_dp *dp, const struct rte_mbuf *m, uint64_t now)
{
	const struct rte_arp_hdr *arp = arp_of(m);

	if (!arp || arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST))
		return;
	kernel_asked[kernel_asked_next].ip = arp->arp_data.arp_tip;
	kernel_asked[kernel_asked_next].ns = now;
	kernel_asked_next = (kernel_asked_next + 1) % KERNEL_ASKED_SLOTS;
}

static bool asked_by_kernel(uint32_t ip, uint64_t now)
{
	unsigned int i;

	for (i = 0; i < KERNEL_ASKED_SLOTS; i++)
		if (kernel_asked[i].ip == ip &&
		    now - kernel_asked[i].ns < AG_DP_NEIGH_PROBES * AG_DP_NEIGH_PROBE_NS)
			return true;
	return false;
}

/* One unicast probe of n, to the MAC it has (only that MAC can confirm it in PROBE). */
static void probe_unicast(struct ag_dp *dp, struct ag_dp_neigh *n, uint64_t now)
{
	uint64_t v = __atomic_load_n(&n->mac_state, __ATOMIC_RELAXED);
	struct rte_ether_addr cur;

	memcpy(cur.addr_bytes, &v, RTE_ETHER_ADDR_LEN);
	n->asked_ns = now;
	send_arp(dp, n->port, RTE_ARP_OP_REQUEST, n->ip, &cur);
}

/* An entry in use, too old or contradicted: PROBE it (still usable meanwhile). */
static void reverify(struct ag_dp *dp, struct ag_dp_neigh *n, uint64_t now)
{
	set_state(n, AG_DP_NEIGH_PROBE, NULL);
	n->probes = 1;
	probe_unicast(dp, n, now);
}

/* What ARP packet arp (on port p) does to its sender's entry: neigh_rules.h. */
static void learn(struct ag_dp *dp, uint16_t p, const struct rte_arp_hdr *arp, bool reply,
		  uint64_t now)
{
	uint32_t sip = arp->arp_data.arp_sip, idx = sip ? ag_dp_neigh__find(dp, sip) : AG_DP_NONE;
	const struct rte_ether_addr *sha = &arp->arp_data.arp_sha;
	struct ag_dp_arp_seen a = {.reply = reply,
				   .to_us = arp->arp_data.arp_tip == dp->ports[p].addr};
	struct ag_dp_neigh *n = NULL;
	unsigned int act;

	if (idx != AG_DP_NONE && rte_is_valid_assigned_ether_addr(sha)) {
		uint64_t v = __atomic_load_n(&dp->neigh[idx].mac_state, __ATOMIC_RELAXED);

		n = &dp->neigh[idx];
		a.known = true;
		a.state = ag_dp_neigh__state(v);
		a.asked = n->asked_ns != 0;
		a.on_port = n->port == p;
		a.same_mac = !memcmp(&v, sha->addr_bytes, RTE_ETHER_ADDR_LEN);
	}
	act = ag_dp_arp__rule(&a);
	if ((act & AG_DP_ARP_UNSOLICITED) && !asked_by_kernel(sip, now))
		ag_dp__count(dp->main_lane, AG_DPC_ARP_UNSOLICITED, 1);
	if (act & (AG_DP_ARP_TAKE | AG_DP_ARP_CONFIRM)) {
		set_state(n, AG_DP_NEIGH_REACHABLE, act & AG_DP_ARP_TAKE ? sha : NULL);
		n->confirmed_ns = now;
		n->probes = 0;
		n->asked_ns = 0; /* answered: nothing outstanding */
		flush_held(dp, n);
	}
	if (act & AG_DP_ARP_REVERIFY) {
		ag_dp__count(dp->main_lane, AG_DPC_ARP_REVERIFY, 1);
		reverify(dp, n, now);
	}
}

/*
 * An ARP packet that arrived on port index m->port (untagged; tagged ARP goes
 * to the kernel with the rest). Apply the neighbour rules (neigh_rules.h),
 * answer requests for our addresses, hand everything else to the kernel.
 */
void ag_dp_arp__input(struct ag_dp *dp, struct rte_mbuf *m, uint64_t now)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_arp_hdr *arp = arp_of(m);
	uint16_t p = m->port;
	uint32_t sip, tip;
	uint16_t op;

	ag_dp__count(dp->main_lane, AG_DPC_ARP_IN, 1);
	if (!arp) {
		ag_dp__to_kernel(dp, m, p);
		return;
	}
	op = rte_be_to_cpu_16(arp->arp_opcode);
	sip = arp->arp_data.arp_sip;
	tip = arp->arp_data.arp_tip;
	if (op == RTE_ARP_OP_REQUEST || op == RTE_ARP_OP_REPLY)
		learn(dp, p, arp, op == RTE_ARP_OP_REPLY, now);

	if (op == RTE_ARP_OP_REQUEST && sip != tip && arp_ours(dp, p, tip)) {
		/* Answer in place: the requester gets our port's MAC for tip. */
		const struct rte_ether_addr *mac = &dp->ports[p].mac;

		rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
		rte_ether_addr_copy(mac, &eth->src_addr);
		arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
		rte_ether_addr_copy(&arp->arp_data.arp_sha, &arp->arp_data.arp_tha);
		arp->arp_data.arp_tip = sip;
		rte_ether_addr_copy(mac, &arp->arp_data.arp_sha);
		arp->arp_data.arp_sip = tip;
		ag_dp__count(dp->main_lane, AG_DPC_ARP_REPLIES, 1);
		ag_dp__send_from_main(dp, m, p);
		return;
	}
	/* Everything else is the kernel's to see too (its own neighbours, its requests). */
	ag_dp__to_kernel(dp, m, p);
}

/* A PROBE: unicast to the MAC it has; silent after AG_DP_NEIGH_PROBES, ask everyone. */
static void probe_tick(struct ag_dp *dp, struct ag_dp_neigh *n, uint64_t now)
{
	if (now - n->asked_ns < AG_DP_NEIGH_PROBE_NS)
		return;
	if (n->probes >= AG_DP_NEIGH_PROBES) {
		/* Gone, or moved: resolve afresh by broadcast (not usable meanwhile). */
		set_state(n, AG_DP_NEIGH_INCOMPLETE, NULL);
		n->probes = 1;
		n->asked_ns = now;
		send_arp(dp, n->port, RTE_ARP_OP_REQUEST, n->ip, NULL);
		return;
	}
	n->probes++;
	probe_unicast(dp, n, now);
}

/* INCOMPLETE: broadcast again; silent after AG_DP_NEIGH_PROBES, failed. */
static void incomplete_tick(struct ag_dp *dp, struct ag_dp_neigh *n, uint64_t now)
{
	if (now - n->asked_ns < AG_DP_NEIGH_PROBE_NS)
		return;
	if (n->probes >= AG_DP_NEIGH_PROBES) {
		set_state(n, AG_DP_NEIGH_FAILED, NULL);
		drop_held(dp, n);
		return;
	}
	n->probes++;
	n->asked_ns = now;
	send_arp(dp, n->port, RTE_ARP_OP_REQUEST, n->ip, NULL);
}

void ag_dp_neigh__tick(struct ag_dp *dp, uint64_t now)
{
	unsigned int i;
	uint64_t resolved = 0;

	/* Slots are handed out lowest first: only [0, neigh_high) was ever used. */
	for (i = 0; i < dp->neigh_high; i++) {
		struct ag_dp_neigh *n = &dp->neigh[i];
		uint64_t v = __atomic_load_n(&n->mac_state, __ATOMIC_RELAXED);
		uint8_t st = ag_dp_neigh__state(v);
		uint32_t ip = n->ip;

		if (!ip || st == AG_DP_NEIGH_FREE)
			continue;
		if (n->used) {
			n->used = 0;
			n->last_used_ns = now;
		}
		switch (st) {
		case AG_DP_NEIGH_STATIC:
			resolved++;
			break;
		case AG_DP_NEIGH_REACHABLE:
			resolved++;
			if (now - n->confirmed_ns < AG_DP_NEIGH_REACHABLE_NS)
				break;
			if (now - n->last_used_ns < AG_DP_NEIGH_REACHABLE_NS) {
				/* Old but in use: keep using it while its MAC confirms it. */
				reverify(dp, n, now);
			} else if (now - n->last_used_ns >= AG_DP_NEIGH_GC_NS) {
				rte_hash_del_key(dp->neigh_hash, &ip);
			}
			break;
		case AG_DP_NEIGH_PROBE:
			resolved++;
			probe_tick(dp, n, now);
			break;
		case AG_DP_NEIGH_INCOMPLETE:
			incomplete_tick(dp, n, now);
			break;
		case AG_DP_NEIGH_FAILED:
			if (now - n->asked_ns >= AG_DP_NEIGH_GC_NS)
				rte_hash_del_key(dp->neigh_hash, &ip);
			break;
		}
	}
	dp->hdr->dp.neighbours = resolved;
}
