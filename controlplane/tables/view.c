/* SPDX-License-Identifier: BSD-3-Clause */
#include "view.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ag_view_state__init(struct ag_view_state *vs, const struct ag_plan *plan)
{
	unsigned int nb = plan->n_backends ? plan->n_backends : 1;
	unsigned int ng = plan->n_groups ? plan->n_groups : 1;
	unsigned int nl = plan->n_listeners ? plan->n_listeners : 1;
	unsigned int i;

	memset(vs, 0, sizeof(*vs));
	vs->up = calloc(nb, sizeof(*vs->up));
	vs->weight = calloc(nb, sizeof(*vs->weight));
	vs->drained = calloc(nb, sizeof(*vs->drained));
	vs->dial = calloc(ng, sizeof(*vs->dial));
	vs->drilled = calloc(ng, sizeof(*vs->drilled));
	vs->group_rtt_ns = calloc(ng, sizeof(*vs->group_rtt_ns));
	vs->fail_since_ns = calloc(nb, sizeof(*vs->fail_since_ns));
	vs->group_pending = calloc(ng, sizeof(*vs->group_pending));
	vs->group_order = calloc(nl, sizeof(*vs->group_order));
	vs->order_store = calloc(nl, sizeof(*vs->order_store));
	if (!vs->up || !vs->weight || !vs->drained || !vs->dial || !vs->drilled ||
	    !vs->group_rtt_ns || !vs->fail_since_ns || !vs->group_pending || !vs->group_order ||
	    !vs->order_store)
		goto enomem;
	for (i = 0; i < plan->n_backends; i++) {
		vs->up[i] = true;
		vs->weight[i] = -1;
	}
	for (i = 0; i < plan->n_groups; i++)
		vs->dial[i] = -1;
	for (i = 0; i < plan->n_listeners; i++) {
		vs->order_store[i] =
		    calloc(plan->listeners[i].n_groups ? plan->listeners[i].n_groups : 1,
			   sizeof(uint32_t));
		if (!vs->order_store[i])
			goto enomem;
		ag_plan__group_order(plan, i, NULL, vs->order_store[i]);
		vs->group_order[i] = vs->order_store[i];
	}
	return 0;
enomem:
	ag_view_state__free(vs, plan);
	return -ENOMEM;
}

void ag_view_state__free(struct ag_view_state *vs, const struct ag_plan *plan)
{
	unsigned int i;

	if (vs->order_store && plan)
		for (i = 0; i < plan->n_listeners; i++)
			free(vs->order_store[i]);
	free(vs->order_store);
	free(vs->group_order);
	free(vs->group_rtt_ns);
	free(vs->fail_since_ns);
	free(vs->group_pending);
	free(vs->drilled);
	free(vs->dial);
	free(vs->drained);
	free(vs->weight);
	free(vs->up);
	memset(vs, 0, sizeof(*vs));
}

void ag_view_state__bind(const struct ag_view_state *vs, struct ag_view *view)
{
	view->up = vs->up;
	view->weight = vs->weight;
	view->drained = vs->drained;
	view->dial = vs->dial;
	view->drilled = vs->drilled;
	view->group_order = (const uint32_t *const *)vs->group_order;
}
