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
 * Pin flow k to a backend (as ag_new_flow in XDP): a new flow, once admitted
 * (admit.h: this lcore's budgets), or (moving: its current entry) a UDP flow
 * whose backend is down, which moves to the backend a new flow would get now
 * and keeps its NAT port when it can. bytes: of the packet, for counters.
 * Returns an AG_R_* reason, AG_FLOW_CHALLENGE (not admitted yet, nothing
 * created), or AG_FLOW_* (flow.h) with *out the flow to forward on.
 */
int ag_dp_flows__create(struct ag_dp_lcore *lc, const struct ag_flow_key *k, uint8_t ttl,
			uint64_t now, uint32_t bytes, struct ag_dp_flow *moving,
			struct ag_dp_flow **out);
/* Remove flow k (when it is still fv) and its reverse entry (when still its). */
void ag_dp_flows__expire(struct ag_dp *dp, const struct ag_flow_key *k, struct ag_dp_flow *fv);
/* ag_flow__live() (flowlife.h) on anygate-dp's tables. */
bool ag_dp_flows__live(struct ag_dp *dp, const struct ag_flow_key *k, const struct ag_flow *f,
		       const struct ag_settings *s, uint64_t now);
/*
 * ag_flow__on_backend() (flowlife.h) on anygate-dp's tables, as the reason
 * the packet is counted under: AG_CHOICE_OK (forward),
 * AG_R_KEPT_BACKEND_REPLYING (forward, counted), AG_R_TX_RST_BACKEND_DOWN
 * (answer with a RST) or AG_R_UDP_RESTEER (move the flow).
 */
int ag_dp_flows__on_backend(struct ag_dp *dp, const struct ag_flow_key *k, const struct ag_flow *f,
			    const struct ag_backend *b, const struct ag_settings *s, uint64_t now);
/*
 * A backend's TCP segment with flags, to reverse key rk (entry r): add what it
 * says (ag_tcp__backend_bits) to the flow r belongs to, if it still does.
 */
void ag_dp_flows__reply_state(struct ag_dp *dp, const struct ag_flow_key *rk,
			      const struct ag_nat_rev *r, uint8_t flags);
/* Main lcore: remove a slice of what is over (flows) or orphaned (reverse entries). */
void ag_dp_flows__sweep(struct ag_dp *dp, uint64_t now);

#endif /* AG_DP_FLOWS_H */
