/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygate-dp: the DPDK fast path. One process: EAL, ports, forwarding lcores
 * running a short run-to-completion loop (fwd.c), and the main lcore doing
 * everything that is not per packet (slow.c): ARP and next-hop resolution,
 * the exception path to the kernel, flow expiry, the heartbeat.
 *
 * Tables: the control plane's in the shared-memory segment (abi_shm.h, read
 * lock-free); the flows and NAT reverse entries in rte_hash tables with
 * lock-free readers (flows.c); neighbours in an rte_hash plus an array
 * (neigh.c). Nothing on the per-packet path takes a lock.
 *
 * This header holds what every module shares: limits, the process's state
 * (struct ag_dp, one per process, each module owning its fields) and the
 * per-lcore counters. Each module's functions are in its own header, and a
 * module calls only those before it in this order (lowest first):
 *
 *   port.h, io.h, neigh.h, route.h, flows.h, fwd.h, slow.h, then main.c
 */
#ifndef AG_DP_H
#define AG_DP_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include "abi.h"
#include "abi_shm.h"
#include "config.h"
#include "neigh_rules.h"

struct rte_hash;
struct rte_mempool;
struct rte_ring;
struct rte_rcu_qsbr;
struct ag_dp_synauth;

#define AG_DP_BURST		 32
#define AG_DP_RX_DESC		 1024
#define AG_DP_TX_DESC		 1024
/* Queue between a forwarding lcore and the main lcore (each way). */
#define AG_DP_RING_SIZE		 2048
/*
 * ARP's own queue from each forwarding lcore to the main lcore, which drains
 * it before anything else: however much other traffic waits for the main
 * lcore (the kernel's, junk to our addresses), ARP goes first.
 */
#define AG_DP_ARP_RING_SIZE	 512
/*
 * The rest of the exception path (packets for the kernel behind the taps) is
 * a token bucket: at most AG_DP_SLOW_PPS packets per second for the whole
 * process (each forwarding lcore has its share), in bursts of at most
 * AG_DP_SLOW_BURST; the rest is dropped before it is queued, counted as
 * slow_rate_dropped. Enough for what a kernel on an edge receives (BGP, SSH,
 * anygated's probe replies: 1,000 endpoints at 10 probes/s are ~30k packets
 * in 2 s bursts at worst, spread), far below what a flood would bring.
 */
#define AG_DP_SLOW_PPS		 20000
#define AG_DP_SLOW_BURST	 1024
/* Neighbours (resolved next hops and on-link hosts). */
#define AG_DP_MAX_NEIGH		 4096
/* Packets held per unresolved neighbour (as the kernel's unres_qlen, smaller). */
#define AG_DP_NEIGH_QLEN	 8
/* A neighbour is trusted this long after the last ARP from it... */
#define AG_DP_NEIGH_REACHABLE_NS (30ull * 1000000000ull)
/* ...then re-probed (still used meanwhile) this often, this many times. */
#define AG_DP_NEIGH_PROBE_NS	 (1000000000ull)
#define AG_DP_NEIGH_PROBES	 3
/* Unused this long: forgotten. */
#define AG_DP_NEIGH_GC_NS	 (120ull * 1000000000ull)
/* Main lcore housekeeping period, and the heartbeat anygated reads. */
#define AG_DP_TICK_NS		 (10ull * 1000000ull)
/* Neighbours are aged every this often (their timers are in seconds). */
#define AG_DP_NEIGH_TICK_NS	 (100ull * 1000000ull)
/*
 * A sweep pass over the flow tables starts this often (idle timeouts are whole
 * seconds) and visits at most this many entries of each table per tick, so a
 * big table is spread over many ticks and the main lcore stays mostly asleep.
 */
#define AG_DP_SWEEP_PERIOD_NS	 (1000ull * 1000000ull)
#define AG_DP_SWEEP_PER_TICK	 4096
/*
 * Key slots of the flow and reverse tables beyond max_flows. A deleted key's
 * slot comes back only after an RCU grace period (every lcore, the main one
 * included, has passed a quiescent state), so a move or a NAT port take-over,
 * which deletes then adds, would find no slot in a table that is exactly
 * full. Fullness is counted on live entries (n_flows, n_revs) against
 * max_flows; this slack holds what waits for its grace period (bounded by
 * what one sweep slice and the lcores' bursts delete in that time).
 */
#define AG_DP_TABLE_SLACK(n)	 ((n) / 16 + 2 * AG_DP_SWEEP_PER_TICK)
/* The main lcore sleeps this long when a round found nothing to do (workers forward). */
#define AG_DP_MAIN_IDLE_US	 500
#define AG_DP_NONE		 0xffffffffu

/* Where a flow's packets go: the route's result, resolved once per flow. */
struct ag_dp_nh {
	uint32_t ip;   /* next hop (gateway or the destination), network order */
	uint16_t port; /* output port index, AG_DP_NO_PORT: no route */
	uint16_t pad;
	uint32_t neigh; /* cached neighbour index (checked against ip), or AG_DP_NONE */
	uint32_t pad2;
};
#define AG_DP_NO_PORT 0xffff

/*
 * Values of the flow tables: the ABI structs (their XDP next-hop cache, nh,
 * unused here) plus our own next hop, resolved by route at creation. Since
 * ABI v3 (16-byte addresses, TCP state) the ABI structs alone are 80 and 72
 * bytes, so a value no longer fits one cache line: it takes two, aligned
 * (128 bytes). The fields a packet reads are in the ABI struct's first 56
 * bytes and our next hop in the second line; both lines are prefetched
 * together after the bulk lookup, so a miss costs one memory round trip, not
 * two. (Squeezing our next hop into the unused XDP cache bytes would save a
 * line but alias an ABI field; measured, the second line costs nothing
 * visible: README.md.)
 */
struct ag_dp_flow {
	struct ag_flow f;
	struct ag_dp_nh nh;
} __rte_cache_aligned;
_Static_assert(sizeof(struct ag_dp_flow) == 2 * RTE_CACHE_LINE_SIZE, "two cache lines");

struct ag_dp_rev {
	struct ag_nat_rev r;
	struct ag_dp_nh nh;
} __rte_cache_aligned;
_Static_assert(sizeof(struct ag_dp_rev) == 2 * RTE_CACHE_LINE_SIZE, "two cache lines");

/* Neighbour states: enum ag_dp_neigh_state (neigh_rules.h). */

/*
 * One neighbour. Forwarding lcores read ip and mac_state (one 8-byte load:
 * MAC in bytes 0-5, state in byte 6, port in byte 7) and set used; the main
 * lcore writes everything else.
 */
struct ag_dp_neigh {
	uint64_t mac_state;
	uint32_t ip;	       /* network order, 0 when free */
	uint32_t used;	       /* set by lcores (only when 0), cleared by main */
	uint64_t confirmed_ns; /* last ARP from it */
	uint64_t asked_ns;     /* last request we sent */
	uint64_t last_used_ns;
	uint16_t port;
	uint8_t probes;
	uint8_t nq;
	uint32_t pad;
	struct rte_mbuf *q[AG_DP_NEIGH_QLEN]; /* held packets */
} __rte_cache_aligned;

static inline uint64_t ag_dp_neigh__pack(const struct rte_ether_addr *mac, uint8_t state,
					 uint8_t port)
{
	uint64_t v = 0;

	memcpy(&v, mac->addr_bytes, RTE_ETHER_ADDR_LEN);
	return v | (uint64_t)state << 48 | (uint64_t)port << 56;
}

static inline uint8_t ag_dp_neigh__state(uint64_t v)
{
	return (uint8_t)(v >> 48);
}

static inline bool ag_dp_neigh__usable(uint64_t v)
{
	uint8_t st = ag_dp_neigh__state(v);

	return st == AG_DP_NEIGH_REACHABLE || st == AG_DP_NEIGH_PROBE || st == AG_DP_NEIGH_STATIC;
}

struct ag_dp_route {
	uint32_t prefix; /* network order */
	uint32_t mask;	 /* network order */
	uint32_t via;	 /* 0: on-link (the destination is the next hop) */
	uint16_t port;
	uint8_t len;
};

struct ag_dp_port {
	uint16_t id;  /* DPDK port id */
	uint16_t tap; /* DPDK port id of its exception tap, AG_DP_NO_PORT: none */
	struct rte_ether_addr mac;
	struct ag_iface iface; /* its MAC and roles, as hygiene.h checks them */
	uint32_t addr;	       /* port address, network order */
	uint32_t mask;
	char name[64]; /* as configured */
};

/*
 * A token bucket as a theoretical arrival time (GCRA): a packet is admitted
 * when next_ns is at most tolerance_ns ahead of now, and pushes it one
 * interval further. One lcore's, no atomics.
 */
struct ag_dp_bucket {
	uint64_t next_ns;
	uint64_t interval_ns;  /* 1 s / rate */
	uint64_t tolerance_ns; /* (burst - 1) intervals */
};

static inline void ag_dp_bucket__init(struct ag_dp_bucket *b, uint64_t per_s, uint64_t burst)
{
	b->next_ns = 0;
	b->interval_ns = per_s ? 1000000000ull / per_s : 1;
	b->tolerance_ns = (burst ? burst - 1 : 0) * b->interval_ns;
}

static inline bool ag_dp_bucket__take(struct ag_dp_bucket *b, uint64_t now)
{
	uint64_t next = b->next_ns > now ? b->next_ns : now;

	if (next - now > b->tolerance_ns)
		return false;
	b->next_ns = next + b->interval_ns;
	return true;
}

/* A forwarding lcore's transmit buffer for one port. */
struct ag_dp_txq {
	uint16_t n;
	struct rte_mbuf *m[AG_DP_BURST];
};

struct ag_dp;

/* Per forwarding lcore: lane, queues, its rings to and from the main lcore. */
struct ag_dp_lcore {
	struct ag_dp *dp;
	unsigned int lcore_id;
	unsigned int index; /* 0..n_fwd-1: RX/TX queue on every port, and counter lane */
	struct ag_shm_lane *lane;
	struct rte_ring *to_main;
	struct rte_ring *arp_to_main; /* ARP only: drained first (AG_DP_ARP_RING_SIZE) */
	struct ag_dp_bucket slow;     /* this lcore's share of AG_DP_SLOW_PPS */
	struct rte_ring *from_main;   /* lcore 0 only: the main lcore's transmissions */
	struct ag_settings settings;  /* copy of the live settings */
	uint64_t settings_gen;
	int settings_ok;
	/* New-flow budgets and NAT port cursor: this lcore's, as the XDP ag_cpu per CPU. */
	struct ag_cpu_state cpu;
	uint64_t idle_polls;
	struct ag_dp_txq txq[AG_MAX_IFACES];
} __rte_cache_aligned;

struct ag_dp {
	const struct ag_config *cfg;
	struct ag_shm *shm;
	struct ag_shm_hdr *hdr; /* the mapping: its pub and dp parts only */
	struct ag_shm_view seg; /* the tables, through the validated layout (abi_shm.h) */
	struct ag_dp_port ports[AG_MAX_IFACES];
	unsigned int n_ports;
	struct rte_mempool *pool;
	/* flows.c */
	struct rte_hash *flows;
	struct rte_hash *revs;
	struct rte_mempool *flow_vals;
	struct rte_mempool *rev_vals;
	struct rte_rcu_qsbr *qsbr;
	struct ag_dp_synauth *syn; /* verified sources (synauth.h), shared by the lcores */
	rte_spinlock_t wlock;	   /* serialises every change of flows and revs */
	uint64_t n_flows, n_revs;  /* live entries (changed under wlock) */
	uint64_t max_entries;	   /* of each table: edge.max_flows */
	/* neigh.c */
	struct rte_hash *neigh_hash;
	struct ag_dp_neigh *neigh;
	/* route.c */
	struct ag_dp_route routes[AG_MAX_ROUTES + AG_MAX_IFACES];
	unsigned int n_routes;
	/* lcores */
	struct ag_dp_lcore lcores[RTE_MAX_LCORE];
	unsigned int n_fwd;
	bool main_forwards; /* no worker lcores: the main lcore forwards too */
	struct ag_shm_lane *main_lane;
	unsigned int idle_sleep_us;
	uint64_t tsc_mult; /* ns = tsc * tsc_mult >> 32 */
	uint32_t sweep_next_flow, sweep_next_rev;
	bool sweep_flows_done, sweep_revs_done;
	bool sweep_pressure;	/* this pass evicts (sweep.h) */
	uint64_t sweep_refused; /* drop_flow_table_full over all lanes when it started */
	uint64_t next_sweep_ns;
	uint64_t next_tick_ns;
	uint64_t next_neigh_tick_ns;
	uint32_t neigh_high; /* neighbour slots ever used: [0, neigh_high) */
};

static inline uint64_t ag_dp__now(const struct ag_dp *dp)
{
	return (uint64_t)(((unsigned __int128)rte_rdtsc() * dp->tsc_mult) >> 32);
}

/* Count into a lane (lanes are per lcore: plain adds). */
static inline void ag_dp__count(struct ag_shm_lane *l, enum ag_dp_counter c, uint64_t n)
{
	l->dp[c] += n;
}

static inline void ag_dp__reason(struct ag_shm_lane *l, int reason, uint64_t bytes)
{
	l->rstats[reason].packets++;
	l->rstats[reason].bytes += bytes;
}

#endif /* AG_DP_H */
