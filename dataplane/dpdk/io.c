/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The main lcore's way out: to the kernel through a port's tap, and to the
 * wire through lcore 0's ring (a port's TX queues belong to the forwarding
 * lcores; lcore 0 sends what the main lcore hands it).
 */
#include <rte_ethdev.h>
#include <rte_ring.h>

#include "dp.h"
#include "io.h"

void ag_dp__hand_to_main(struct ag_dp_lcore *lc, struct rte_mbuf *m, enum ag_dp_slow_kind kind)
{
	struct rte_ring *r = lc->to_main;
	enum ag_dp_counter queued = AG_DPC_SLOW_QUEUED, dropped = AG_DPC_SLOW_DROPPED;

	if (kind == AG_DP_SLOW_ARP) {
		r = lc->arp_to_main;
		queued = AG_DPC_ARP_QUEUED;
		dropped = AG_DPC_ARP_DROPPED;
	} else if (kind == AG_DP_SLOW_KERNEL &&
		   !ag_dp_bucket__take(&lc->slow, ag_dp__now(lc->dp))) {
		/* Over the rate: dropped here, before it costs a ring slot or the main lcore. */
		rte_pktmbuf_free(m);
		ag_dp__count(lc->lane, AG_DPC_SLOW_RATE_DROPPED, 1);
		return;
	}
	if (rte_ring_sp_enqueue(r, m)) {
		rte_pktmbuf_free(m);
		ag_dp__count(lc->lane, dropped, 1);
		return;
	}
	ag_dp__count(lc->lane, queued, 1);
}

void ag_dp__to_kernel(struct ag_dp *dp, struct rte_mbuf *m, uint16_t p)
{
	uint16_t tap = p < dp->n_ports ? dp->ports[p].tap : AG_DP_NO_PORT;

	if (tap == AG_DP_NO_PORT || rte_eth_tx_burst(tap, 0, &m, 1) != 1) {
		rte_pktmbuf_free(m);
		ag_dp__count(dp->main_lane, AG_DPC_KERNEL_DROPPED, 1);
		return;
	}
	ag_dp__count(dp->main_lane, AG_DPC_TO_KERNEL, 1);
}

void ag_dp__send_from_main(struct ag_dp *dp, struct rte_mbuf *m, uint16_t port)
{
	m->hash.fdir.lo = port;
	if (rte_ring_enqueue(dp->lcores[0].from_main, m)) {
		rte_pktmbuf_free(m);
		ag_dp__count(dp->main_lane, AG_DPC_TX_DROPPED, 1);
	}
}
