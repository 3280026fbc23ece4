/* SPDX-License-Identifier: BSD-3-Clause */
#include "plan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A 64-bit mix (splitmix64's finaliser): spreads each override before they are summed. */
static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A group's port overrides as one number, whatever their order in the file. */
static uint64_t overrides_hash(const struct ag_cfg_group *gc)
{
	uint64_t h = 0;
	unsigned int o;

	for (o = 0; o < gc->n_overrides; o++)
		h += mix64(((uint64_t)gc->overrides[o].listener_port << 16 |
			    gc->overrides[o].endpoint_port) +
			   1);
	return h;
}

/* Each item's identity (plan.h), written into plan->keys. */
static void name_items(struct ag_plan *plan)
{
	char *k = plan->keys;
	unsigned int i;

	for (i = 0; i < plan->n_listeners; i++, k += AG_PLAN_KEY_MAX) {
		struct ag_plan_listener *pl = &plan->listeners[i];

		snprintf(k, AG_PLAN_KEY_MAX, "%s/%s:%u", pl->accel->name,
			 pl->cfg->proto == IPPROTO_TCP ? "tcp" : "udp", pl->cfg->ranges[0].first);
		pl->key = k;
	}
	for (i = 0; i < plan->n_groups; i++, k += AG_PLAN_KEY_MAX) {
		struct ag_plan_group *pg = &plan->groups[i];

		snprintf(k, AG_PLAN_KEY_MAX, "%s|%s|%016llx", plan->listeners[pg->listener_id].key,
			 pg->cfg->region, (unsigned long long)overrides_hash(pg->cfg));
		pg->key = k;
	}
	for (i = 0; i < plan->n_backends; i++, k += AG_PLAN_KEY_MAX) {
		struct ag_plan_backend *pb = &plan->backends[i];
		char addr[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &pb->addr, addr, sizeof(addr));
		snprintf(k, AG_PLAN_KEY_MAX, "%s|%s", plan->groups[pb->group_id].key, addr);
		pb->key = k;
	}
}

/* Listener l of accelerator acc, its groups and their endpoints, appended to plan. */
static void lay_out_listener(struct ag_plan *plan, const struct ag_cfg_accelerator *acc,
			     const struct ag_cfg_listener *lc)
{
	struct ag_plan_listener *pl = &plan->listeners[plan->n_listeners];
	unsigned int g, e;

	pl->id = pl->fpid = plan->n_listeners++;
	pl->accel = acc;
	pl->cfg = lc;
	pl->first_group = plan->n_groups;
	pl->n_groups = lc->n_groups;
	for (g = 0; g < lc->n_groups; g++) {
		const struct ag_cfg_group *gc = &lc->groups[g];
		struct ag_plan_group *pg = &plan->groups[plan->n_groups];

		pg->id = pg->fpid = plan->n_groups++;
		pg->listener_id = pl->id;
		pg->cfg = gc;
		pg->first_backend = plan->n_backends;
		pg->n_backends = gc->n_endpoints;
		for (e = 0; e < gc->n_endpoints; e++) {
			struct ag_plan_backend *pb = &plan->backends[plan->n_backends];

			pb->id = pb->fpid = plan->n_backends++;
			pb->addr = gc->endpoints[e].addr;
			pb->group_id = pg->id;
			pb->listener_id = pl->id;
			pb->weight = gc->endpoints[e].weight;
			pb->cfg = &gc->endpoints[e];
		}
	}
}

struct ag_plan *ag_plan__new(const struct ag_config *cfg)
{
	unsigned int n_listeners = 0, n_groups = 0, n_backends = 0, n_items;
	unsigned int a, l, g;
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
	n_items = n_listeners + n_groups + n_backends;
	plan->cfg = cfg;
	plan->listeners = calloc(n_listeners ? n_listeners : 1, sizeof(*plan->listeners));
	plan->groups = calloc(n_groups ? n_groups : 1, sizeof(*plan->groups));
	plan->backends = calloc(n_backends ? n_backends : 1, sizeof(*plan->backends));
	plan->keys = calloc(n_items ? n_items : 1, AG_PLAN_KEY_MAX);
	if (!plan->listeners || !plan->groups || !plan->backends || !plan->keys) {
		ag_plan__free(plan);
		errno = ENOMEM;
		return NULL;
	}
	for (a = 0; a < cfg->n_accels; a++)
		for (l = 0; l < cfg->accels[a].n_listeners; l++)
			lay_out_listener(plan, &cfg->accels[a], &cfg->accels[a].listeners[l]);
	name_items(plan);
	ag_plan__index_fpids(plan);
	return plan;
}

void ag_plan__free(struct ag_plan *plan)
{
	if (!plan)
		return;
	free(plan->listeners);
	free(plan->groups);
	free(plan->backends);
	free(plan->keys);
	free(plan);
}

void ag_plan__index_fpids(struct ag_plan *plan)
{
	unsigned int i;

	memset(plan->backend_at, 0xff, sizeof(plan->backend_at));
	memset(plan->listener_at, 0xff, sizeof(plan->listener_at));
	for (i = 0; i < plan->n_backends; i++)
		if (plan->backends[i].fpid < AG_MAX_BACKENDS)
			plan->backend_at[plan->backends[i].fpid] = i;
	for (i = 0; i < plan->n_listeners; i++)
		if (plan->listeners[i].fpid < AG_MAX_LISTENERS)
			plan->listener_at[plan->listeners[i].fpid] = i;
}

const struct ag_plan_backend *ag_plan__backend_by_fpid(const struct ag_plan *plan, uint32_t fpid)
{
	if (fpid >= AG_MAX_BACKENDS || plan->backend_at[fpid] == AG_PLAN_NO_ID)
		return NULL;
	return &plan->backends[plan->backend_at[fpid]];
}

const struct ag_plan_listener *ag_plan__listener_by_fpid(const struct ag_plan *plan, uint32_t fpid)
{
	if (fpid >= AG_MAX_LISTENERS || plan->listener_at[fpid] == AG_PLAN_NO_ID)
		return NULL;
	return &plan->listeners[plan->listener_at[fpid]];
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
