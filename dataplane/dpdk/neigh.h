/* SPDX-License-Identifier: BSD-3-Clause */
/* Neighbours and ARP (neigh.c): above the ports and the main lcore's I/O. */
#ifndef AG_DP_NEIGH_H
#define AG_DP_NEIGH_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "dp.h"

/* The table, and the static neighbours of edge.dpdk.neighbours. */
int ag_dp_neigh__init(struct ag_dp *dp);
void ag_dp_neigh__fini(struct ag_dp *dp);
/* Index of neighbour ip (network order), or AG_DP_NONE. Any lcore. */
uint32_t ag_dp_neigh__find(const struct ag_dp *dp, uint32_t ip);
/* Main lcore: hold m for next hop ip on port index `port` and resolve it. */
void ag_dp_neigh__hold(struct ag_dp *dp, struct rte_mbuf *m, uint16_t port, uint32_t ip,
		       uint64_t now);
/* Main lcore: a frame the kernel sends out of a tap; notes its ARP requests. */
void ag_dp_arp__from_kernel(struct ag_dp *dp, const struct rte_mbuf *m, uint64_t now);
/* Main lcore: an ARP packet that arrived on port index m->port (neigh_rules.h). */
void ag_dp_arp__input(struct ag_dp *dp, struct rte_mbuf *m, uint64_t now);
/* Main lcore: age, re-probe and forget neighbours. */
void ag_dp_neigh__tick(struct ag_dp *dp, uint64_t now);

#endif /* AG_DP_NEIGH_H */
