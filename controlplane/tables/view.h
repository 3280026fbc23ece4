/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The memory behind a view (plan.h's struct ag_view): per-plan arrays of
 * what the control plane knows beyond the config (health, proximity) and
 * what the operator overrides. One per plan: a reload builds a new one.
 */
#ifndef AG_VIEW_H
#define AG_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "plan.h"

/* Indexed by backend / group / listener id of the plan they were made for. */
struct ag_view_state {
	bool *up;	 /* health, per backend */
	int16_t *weight; /* operator weight override, -1 none */
	bool *drained;
	int16_t *dial;		 /* operator dial override, per group, -1 none */
	bool *drilled;		 /* region drill, per group */
	uint64_t *group_rtt_ns;	 /* robust RTT of each group's healthy endpoints, 0 unknown */
	bool *group_pending;	 /* healthy endpoints, none measured yet: not ranked */
	uint64_t *fail_since_ns; /* per backend: start of the first failed probe of the
				  * current failure streak, 0 while probes succeed */
	uint32_t **group_order;	 /* per listener: its group ids nearest first */
	uint32_t **order_store;	 /* backing memory of group_order rows */
};

/* Arrays sized for plan, all defaults (up, no override, config order). 0 or -ENOMEM. */
int ag_view_state__init(struct ag_view_state *vs, const struct ag_plan *plan);
void ag_view_state__free(struct ag_view_state *vs, const struct ag_plan *plan);
/* Point view at vs's arrays (what the weight compiler and the publisher read). */
void ag_view_state__bind(const struct ag_view_state *vs, struct ag_view *view);

#endif /* AG_VIEW_H */
