/* SPDX-License-Identifier: BSD-3-Clause */
/* Routes (route.c): a flow's next hop, with its neighbour looked up (neigh.h). */
#ifndef AG_DP_ROUTE_H
#define AG_DP_ROUTE_H

#include <stdint.h>

#include "dp.h"

/* On-link routes of the port subnets, then edge.dpdk.routes; longest prefix first. */
int ag_dp_route__init(struct ag_dp *dp);
/* Where packets to dst (network order) go: port and next hop, AG_DP_NO_PORT when nowhere. */
void ag_dp_route__lookup(const struct ag_dp *dp, uint32_t dst, struct ag_dp_nh *nh);

#endif /* AG_DP_ROUTE_H */
