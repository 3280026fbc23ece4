/* SPDX-License-Identifier: BSD-3-Clause */
/* Flow and NAT reverse tables (flows.c): above routes, below the forwarding loop. */
#ifndef AG_DP_FLOWS_H
#define AG_DP_FLOWS_H

#include <stdbool.h>
#include <stdint.h>

#include "abi.h"
#include "dp.h"

int ag_dp_flows__init(struct ag_dp *dp);
void ag_dp_flows__fini(struct ag_dp *dp);
/*
 * Pin flow k to a backend (as ag_new_flow in XDP): a new flow, or (moving:
 * its current entry) a UDP flow whose backend is down, which moves to the
 * backend a new flow would get now and keeps its NAT port when it can.
 * Returns an AG_R_* reason, or AG_FLOW_* (choose.h) with *out the flow to
 * forward on.
 */
int ag_dp_flows__create(struct ag_dp_lcore *lc, const struct ag_flow_key *k, uint8_t ttl,
			uint64_t now, struct ag_dp_flow *moving, struct ag_dp_flow **out);
/* Remove flow k (when it is still fv) and its reverse entry (when still its). */
void ag_dp_flows__expire(struct ag_dp *dp, const struct ag_flow_key *k, struct ag_dp_flow *fv);
/* ag_flow__live() (flowlife.h) on anygate-dp's tables. */
bool ag_dp_flows__live(struct ag_dp *dp, const struct ag_flow_key *k, const struct ag_flow *f,
		       const struct ag_settings *s, uint64_t now);
/* Main lcore: remove a slice of what has been idle past its timeout. */
void ag_dp_flows__sweep(struct ag_dp *dp, uint64_t now);

#endif /* AG_DP_FLOWS_H */
