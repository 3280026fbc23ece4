/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The main lcore: everything that is not per packet. It drains what the
 * forwarding lcores hand over (ARP, the kernel's traffic, packets waiting for
 * a next hop), carries the kernel's own packets from the taps to the ports,
 * and every tick ages neighbours, sweeps idle flows and writes the heartbeat
 * anygated reads. With no worker lcores it also runs the forwarding loop.
 */
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "dp.h"
#include "flows.h"
#include "fwd.h"
#include "io.h"
#include "neigh.h"
#include "shm.h"
#include "slow.h"

/*
 * ARP first, whatever else waits: every lcore's ARP ring to the end (at most
 * AG_DP_ARP_RING_SIZE each). Returns how many packets it handled.
 */
static unsigned int drain_arp(struct ag_dp *dp, uint64_t now)
{
	struct rte_mbuf *ms[AG_DP_BURST];
	unsigned int l, i, n, moved = 0;

	for (l = 0; l < dp->n_fwd; l++) {
		do {
			n = rte_ring_sc_dequeue_burst(dp->lcores[l].arp_to_main, (void **)ms,
						      AG_DP_BURST, NULL);
			for (i = 0; i < n; i++)
				ag_dp_arp__input(dp, ms[i], now);
			moved += n;
		} while (n == AG_DP_BURST);
	}
	return moved;
}

/* Returns how many packets it moved. */
static unsigned int drain(struct ag_dp *dp, uint64_t now)
{
	struct rte_mbuf *ms[AG_DP_BURST];
	unsigned int l, i, n, p, moved = drain_arp(dp, now);

	for (l = 0; l < dp->n_fwd; l++) {
		n = rte_ring_sc_dequeue_burst(dp->lcores[l].to_main, (void **)ms, AG_DP_BURST,
					      NULL);
		for (i = 0; i < n; i++) {
			struct rte_mbuf *m = ms[i];
			uint32_t lo = m->hash.fdir.lo;

			switch (lo & 0xffff) {
			case AG_DP_SLOW_ARP:
				ag_dp_arp__input(dp, m, now);
				break;
			case AG_DP_SLOW_NEIGH:
				ag_dp_neigh__hold(dp, m, (uint16_t)(lo >> 16), m->hash.fdir.hi,
						  now);
				break;
			default:
				ag_dp__to_kernel(dp, m, m->port);
				break;
			}
		}
		moved += n;
	}
	/* The kernel's packets out of each tap leave through its port, as the kernel framed them.
	 */
	for (p = 0; p < dp->n_ports; p++) {
		if (dp->ports[p].tap == AG_DP_NO_PORT)
			continue;
		n = rte_eth_rx_burst(dp->ports[p].tap, 0, ms, AG_DP_BURST);
		ag_dp__count(dp->main_lane, AG_DPC_FROM_KERNEL, n);
		for (i = 0; i < n; i++) {
			/* The kernel's own ARP requests: their answers are solicited too. */
			ag_dp_arp__from_kernel(dp, ms[i], now);
			ag_dp__send_from_main(dp, ms[i], (uint16_t)p);
		}
		moved += n;
	}
	return moved;
}

static void tick(struct ag_dp *dp, uint64_t now)
{
	struct ag_shm_dp *st = &dp->hdr->dp;

	if (now >= dp->next_neigh_tick_ns) {
		ag_dp_neigh__tick(dp, now);
		dp->next_neigh_tick_ns = now + AG_DP_NEIGH_TICK_NS;
	}
	ag_dp_flows__sweep(dp, now);
	st->flows = __atomic_load_n(&dp->n_flows, __ATOMIC_RELAXED);
	st->nat_rev = __atomic_load_n(&dp->n_revs, __ATOMIC_RELAXED);
	__atomic_store_n(&st->heartbeat_ns, ag_shm__now_ns(), __ATOMIC_RELEASE);
}

int ag_dp__main_loop(struct ag_dp *dp)
{
	unsigned int me = rte_lcore_id();

	rte_rcu_qsbr_thread_online(dp->qsbr, me);
	while (!__atomic_load_n(&ag_dp_quit, __ATOMIC_RELAXED)) {
		uint64_t now = ag_dp__now(dp);
		unsigned int moved;

		if (dp->main_forwards)
			ag_dp__fwd_poll(&dp->lcores[0]);
		moved = drain(dp, now);
		if (now >= dp->next_tick_ns) {
			tick(dp, now);
			dp->next_tick_ns = now + AG_DP_TICK_NS;
		}
		rte_rcu_qsbr_quiescent(dp->qsbr, me);
		/* With workers forwarding, the main lcore only needs to be prompt, not busy. */
		if (!dp->main_forwards && !moved)
			usleep(AG_DP_MAIN_IDLE_US);
	}
	rte_rcu_qsbr_thread_offline(dp->qsbr, me);
	return 0;
}
