/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frames between the lcores, the ports and the kernel (io.c): how a
 * forwarding lcore marks a packet it hands to the main lcore, and how the
 * main lcore sends (through lcore 0, which owns the TX queues it uses) and
 * passes packets to the kernel.
 */
#ifndef AG_DP_IO_H
#define AG_DP_IO_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "dp.h"

/* Why a packet went to the main lcore (mbuf hash.fdir.lo, see ag_dp_slow_mark). */
enum ag_dp_slow_kind {
	AG_DP_SLOW_KERNEL = 1, /* exception path: to the tap of the input port */
	AG_DP_SLOW_ARP = 2,    /* ARP: answer, learn, copy to the kernel */
	AG_DP_SLOW_NEIGH = 3,  /* next hop unresolved: hold and resolve */
};

/*
 * Mark an mbuf for the main lcore (its RSS hash is of no use past RX): why,
 * and for a held packet its output port index and next hop. m->port then
 * holds the input port's index, not its DPDK id.
 */
static inline void ag_dp_slow_mark(struct rte_mbuf *m, enum ag_dp_slow_kind kind, uint16_t out_port,
				   uint32_t nh_ip)
{
	m->hash.fdir.lo = (uint32_t)kind | (uint32_t)out_port << 16;
	m->hash.fdir.hi = nh_ip;
}

/*
 * A forwarding lcore hands marked m to the main lcore: ARP into its own ring
 * (arp_queued / arp_dropped), packets for the kernel through the lcore's
 * token bucket first (slow_rate_dropped, dp.h AG_DP_SLOW_PPS), the rest into
 * the common ring (slow_queued / slow_dropped).
 */
void ag_dp__hand_to_main(struct ag_dp_lcore *lc, struct rte_mbuf *m, enum ag_dp_slow_kind kind);
/* Exception path: hand m (arrived on port index p) to the kernel through p's tap. */
void ag_dp__to_kernel(struct ag_dp *dp, struct rte_mbuf *m, uint16_t p);
/* Hand a finished frame to lcore 0 for transmission on port index `port`. */
void ag_dp__send_from_main(struct ag_dp *dp, struct rte_mbuf *m, uint16_t port);

#endif /* AG_DP_IO_H */
