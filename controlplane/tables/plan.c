/* SPDX-License-Identifier: BSD-3-Clause */
#include "plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ag_plan *ag_plan__new(const struct ag_config *cfg)
{
	unsigned int n_listeners = 0, n_groups = 0, n_backends = 0;
	unsigned int a, l, g, e;
	struct ag_plan *plan;

	for (a = 0; a < cfg->n_accels; a++) {
		const struct ag_cfg_accelerator *acc = &cfg->accels[a];

		n_listeners += acc->n_listeners;
		for (l = 0; l < acc->n_listeners; l++) {
			n_groups += acc->listeners[l].n_groups;
			for (g = 0; g < acc->listeners[l].n_groups; g++)
				n_backends += acc->listeners[l].groups[g].n_endpoints;
		}
	}
	/* The validator enforces these; a plan must never index past a map. */
	if (n_listeners > AG_MAX_LISTENERS || n_groups > AG_MAX_GROUPS ||
	    n_backends > AG_MAX_BACKENDS) {
		errno = E2BIG;
		return NULL;
	}

	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return NULL;
	plan->cfg = cfg;
	plan->listeners = calloc(n_listeners ? n_listeners : 1, sizeof(*plan->listeners));
	plan->groups = calloc(n_groups ? n_groups : 1, sizeof(*plan->groups));
	plan->backends = calloc(n_backends ? n_backends : 1, sizeof(*plan->backends));
	if (!plan->listeners || !plan->groups || !plan->backends) {
		ag_plan__free(plan);
		errno = ENOMEM;
		return NULL;
	}

	for (a = 0; a < cfg->n_accels; a++) {
		const struct ag_cfg_accelerator *acc = &cfg->accels[a];

		for (l = 0; l < acc->n_listeners; l++) {
			const struct ag_cfg_listener *lc = &acc->listeners[l];
			struct ag_plan_listener *pl = &plan->listeners[plan->n_listeners];

			pl->id = plan->n_listeners++;
			pl->accel = acc;
			pl->cfg = lc;
			pl->first_group = plan->n_groups;
			pl->n_groups = lc->n_groups;
			for (g = 0; g < lc->n_groups; g++) {
				const struct ag_cfg_group *gc = &lc->groups[g];
				struct ag_plan_group *pg = &plan->groups[plan->n_groups];

				pg->id = plan->n_groups++;
				pg->listener_id = pl->id;
				pg->cfg = gc;
				pg->first_backend = plan->n_backends;
				pg->n_backends = gc->n_endpoints;
				for (e = 0; e < gc->n_endpoints; e++) {
					struct ag_plan_backend *pb =
					    &plan->backends[plan->n_backends];

					pb->id = plan->n_backends++;
					pb->addr = gc->endpoints[e].addr;
					pb->group_id = pg->id;
					pb->listener_id = pl->id;
					pb->weight = gc->endpoints[e].weight;
					pb->cfg = &gc->endpoints[e];
				}
			}
		}
	}
	return plan;
}

void ag_plan__free(struct ag_plan *plan)
{
	if (!plan)
		return;
	free(plan->listeners);
	free(plan->groups);
	free(plan->backends);
	free(plan);
}

void ag_plan__group_order(const struct ag_plan *plan, uint32_t lid, const struct ag_view *view,
			  uint32_t *order)
{
	const struct ag_plan_listener *pl = &plan->listeners[lid];
	const struct ag_cfg_listener *lc = pl->cfg;
	unsigned int n = 0, i, g;
	bool placed[AG_MAX_GROUPS_PER_LISTENER] = {false};

	if (view && view->group_order && view->group_order[lid]) {
		memcpy(order, view->group_order[lid], pl->n_groups * sizeof(*order));
		return;
	}
	/* Operator-pinned regions first, in their order; the rest in config order. */
	for (i = 0; i < lc->n_region_order; i++) {
		for (g = 0; g < pl->n_groups; g++) {
			if (!placed[g] && !strcmp(lc->groups[g].region, lc->region_order[i])) {
				placed[g] = true;
				order[n++] = pl->first_group + g;
				break;
			}
		}
	}
	for (g = 0; g < pl->n_groups; g++)
		if (!placed[g])
			order[n++] = pl->first_group + g;
}

static bool backend_up(const struct ag_view *view, uint32_t id)
{
	return !view || !view->up || view->up[id];
}

uint8_t ag_view__weight(const struct ag_view *view, const struct ag_plan_backend *b)
{
	if (view && view->drained && view->drained[b->id])
		return 0;
	if (view && view->weight && view->weight[b->id] >= 0)
		return (uint8_t)view->weight[b->id];
	return b->weight;
}

uint8_t ag_view__dial(const struct ag_view *view, const struct ag_plan_group *g)
{
	if (view && view->drilled && view->drilled[g->id])
		return 0;
	if (view && view->dial && view->dial[g->id] >= 0)
		return (uint8_t)view->dial[g->id];
	return g->cfg->traffic_dial;
}

/* What a listener's groups take of its new flows, visited nearest first. */
struct visit {
	uint32_t order[AG_MAX_GROUPS_PER_LISTENER];
	double take[AG_MAX_GROUPS_PER_LISTENER];
	double healthy_w[AG_MAX_GROUPS_PER_LISTENER];
	double taken;
	bool any_healthy;
};

/* Fill v for listener pl; zero pl's entries of share and group_share (either may be NULL). */
static void visit_groups(const struct ag_plan *plan, const struct ag_plan_listener *pl,
			 const struct ag_view *view, struct visit *v, double *share,
			 double *group_share)
{
	double reaching = 1.0;
	unsigned int i, b;

	memset(v, 0, sizeof(*v));
	ag_plan__group_order(plan, pl->id, view, v->order);
	for (i = 0; i < pl->n_groups; i++) {
		const struct ag_plan_group *pg = &plan->groups[v->order[i]];
		double total_w = 0.0, capacity;

		for (b = 0; b < pg->n_backends; b++) {
			const struct ag_plan_backend *pb = &plan->backends[pg->first_backend + b];
			uint8_t w = ag_view__weight(view, pb);

			if (share)
				share[pb->id] = 0.0;
			total_w += w;
			if (backend_up(view, pb->id))
				v->healthy_w[i] += w;
		}
		if (group_share)
			group_share[pg->id] = 0.0;
		v->any_healthy |= v->healthy_w[i] > 0.0;
		if (total_w <= 0.0 || v->healthy_w[i] <= 0.0)
			continue;
		capacity = v->healthy_w[i] / total_w * pl->cfg->overprovisioning;
		if (capacity > 1.0)
			capacity = 1.0;
		v->take[i] = reaching * ag_view__dial(view, pg) / 100.0 * capacity;
		reaching -= v->take[i];
		v->taken += v->take[i];
	}
}

/* Sum of the effective weights of group pg's endpoints. */
static double group_weight(const struct ag_plan *plan, const struct ag_plan_group *pg,
			   const struct ag_view *view)
{
	double total_w = 0.0;
	unsigned int b;

	for (b = 0; b < pg->n_backends; b++)
		total_w += ag_view__weight(view, &plan->backends[pg->first_backend + b]);
	return total_w;
}

/*
 * The group fail_open spreads listener pl's new flows over (nothing healthy
 * anywhere: the nearest group not drilled with weighted endpoints), or NULL
 * when it does not apply: something takes traffic, healthy endpoints exist
 * (every dial 0: the operator turned it off), the policy is drop, or no
 * group has a weighted endpoint.
 */
static const struct ag_plan_group *fail_open_group(const struct ag_plan *plan,
						   const struct ag_plan_listener *pl,
						   const struct ag_view *view,
						   const struct visit *v)
{
	unsigned int i;

	if (v->taken > 0.0 || v->any_healthy || pl->cfg->failure_policy == AG_FAIL_DROP)
		return NULL;
	for (i = 0; i < pl->n_groups; i++) {
		const struct ag_plan_group *pg = &plan->groups[v->order[i]];

		if (view && view->drilled && view->drilled[pg->id])
			continue;
		if (group_weight(plan, pg, view) > 0.0)
			return pg;
	}
	return NULL;
}

bool ag_plan__fail_open(const struct ag_plan *plan, uint32_t lid, const struct ag_view *view)
{
	struct visit v;

	if (lid >= plan->n_listeners)
		return false;
	visit_groups(plan, &plan->listeners[lid], view, &v, NULL, NULL);
	return fail_open_group(plan, &plan->listeners[lid], view, &v) != NULL;
}

int ag_plan__compile(const struct ag_plan *plan, uint32_t lid, const struct ag_view *view,
		     double *share, double *group_share)
{
	const struct ag_plan_listener *pl;
	const struct ag_plan_group *pg;
	struct visit v;
	unsigned int i, b;

	if (lid >= plan->n_listeners)
		return -EINVAL;
	pl = &plan->listeners[lid];
	visit_groups(plan, pl, view, &v, share, group_share);

	if (v.taken <= 0.0) {
		double total_w;

		pg = fail_open_group(plan, pl, view, &v);
		if (!pg)
			return 0;
		/* Every endpoint of the group by weight, whatever its health says. */
		total_w = group_weight(plan, pg, view);
		for (b = 0; b < pg->n_backends; b++) {
			const struct ag_plan_backend *pb = &plan->backends[pg->first_backend + b];

			share[pb->id] = ag_view__weight(view, pb) / total_w;
		}
		if (group_share)
			group_share[pg->id] = 1.0;
		return 0;
	}

	/* What no group took goes back to those that took, in proportion. */
	for (i = 0; i < pl->n_groups; i++) {
		double gs = v.take[i] / v.taken;

		pg = &plan->groups[v.order[i]];
		if (group_share)
			group_share[pg->id] = gs;
		if (gs <= 0.0)
			continue;
		for (b = 0; b < pg->n_backends; b++) {
			const struct ag_plan_backend *pb = &plan->backends[pg->first_backend + b];

			if (backend_up(view, pb->id))
				share[pb->id] = gs * ag_view__weight(view, pb) / v.healthy_w[i];
		}
	}
	return 0;
}
