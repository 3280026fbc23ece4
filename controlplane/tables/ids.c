/* SPDX-License-Identifier: BSD-3-Clause */
#include "ids.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t ag_ids__cap(enum ag_id_kind k)
{
	static const uint32_t cap[AG_ID__KINDS] = {AG_MAX_LISTENERS, AG_MAX_GROUPS,
						   AG_MAX_BACKENDS};

	return cap[k];
}

const char *ag_id_kind__name(enum ag_id_kind k)
{
	static const char *const name[AG_ID__KINDS] = {"listener", "group", "backend"};

	return name[k];
}

int ag_ids__init(struct ag_ids *ids)
{
	int k;

	memset(ids, 0, sizeof(*ids));
	for (k = 0; k < AG_ID__KINDS; k++) {
		ids->e[k] = calloc(ag_ids__cap(k), sizeof(*ids->e[k]));
		if (!ids->e[k]) {
			ag_ids__fini(ids);
			return -ENOMEM;
		}
	}
	return 0;
}

void ag_ids__fini(struct ag_ids *ids)
{
	int k;

	for (k = 0; k < AG_ID__KINDS; k++) {
		free(ids->e[k]);
		ids->e[k] = NULL;
	}
}

/* Item i of kind k in plan: its identity, its fpid, its parent's fpid. */
struct item {
	const char *key;
	uint32_t fpid;
	uint32_t parent;
};

static unsigned int n_items(const struct ag_plan *plan, enum ag_id_kind k)
{
	return k == AG_ID_LISTENER ? plan->n_listeners
	       : k == AG_ID_GROUP  ? plan->n_groups
				   : plan->n_backends;
}

/* Parents are numbered first (kinds in order), so parent fpids are known here. */
static struct item item_of(const struct ag_plan *plan, enum ag_id_kind k, unsigned int i)
{
	if (k == AG_ID_LISTENER)
		return (struct item){plan->listeners[i].key, plan->listeners[i].fpid,
				     AG_PLAN_NO_ID};
	if (k == AG_ID_GROUP)
		return (struct item){plan->groups[i].key, plan->groups[i].fpid,
				     plan->listeners[plan->groups[i].listener_id].fpid};
	return (struct item){plan->backends[i].key, plan->backends[i].fpid,
			     plan->groups[plan->backends[i].group_id].fpid};
}

static void set_fpid(struct ag_plan *plan, enum ag_id_kind k, unsigned int i, uint32_t fpid)
{
	if (k == AG_ID_LISTENER)
		plan->listeners[i].fpid = fpid;
	else if (k == AG_ID_GROUP)
		plan->groups[i].fpid = fpid;
	else
		plan->backends[i].fpid = fpid;
}

struct keyed {
	const char *key;
	uint32_t id;
};

static int cmp_keyed(const void *a, const void *b)
{
	return strcmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

/* Ids of kind k that are not free, sorted by key (n: how many). NULL on ENOMEM. */
static struct keyed *held_ids(const struct ag_ids *ids, enum ag_id_kind k, unsigned int *n)
{
	const struct ag_id_entry *e = ids->e[k];
	struct keyed *held = calloc(ag_ids__cap(k), sizeof(*held));
	uint32_t i;

	*n = 0;
	if (!held)
		return NULL;
	for (i = 0; i < ag_ids__cap(k); i++)
		if (e[i].state != AG_ID_FREE)
			held[(*n)++] = (struct keyed){e[i].key, i};
	qsort(held, *n, sizeof(*held), cmp_keyed);
	return held;
}

/* Number kind k: identities held keep their id, the rest take the lowest free ones. */
static int number_kind(const struct ag_ids *ids, struct ag_plan *plan, enum ag_id_kind k, char *why,
		       size_t len)
{
	unsigned int n = n_items(plan, k), n_held, i;
	uint32_t cap = ag_ids__cap(k), next = 0;
	struct keyed *held = held_ids(ids, k, &n_held);
	bool *taken = calloc(cap, sizeof(*taken));
	int err = 0;

	if (!held || !taken) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct item it = item_of(plan, k, i);
		struct keyed probe = {it.key, 0}, *found;

		found = bsearch(&probe, held, n_held, sizeof(*held), cmp_keyed);
		set_fpid(plan, k, i, found ? found->id : AG_PLAN_NO_ID);
		if (found && taken[found->id]) {
			snprintf(why, len, "two %ss named %s", ag_id_kind__name(k), it.key);
			err = -EINVAL;
			goto out;
		}
		if (found)
			taken[found->id] = true;
	}
	for (i = 0; i < n; i++) {
		struct item it = item_of(plan, k, i);

		if (it.fpid != AG_PLAN_NO_ID)
			continue;
		while (next < cap && (ids->e[k][next].state != AG_ID_FREE || taken[next]))
			next++;
		if (next == cap) {
			snprintf(why, len,
				 "no free %s id for %s: %u of %u are held (%u by %ss removed "
				 "from the config until their flows end; the running config's "
				 "are held as long as it runs)",
				 ag_id_kind__name(k), it.key,
				 cap - ag_ids__count(ids, k, AG_ID_FREE), cap,
				 ag_ids__count(ids, k, AG_ID_RETIRED), ag_id_kind__name(k));
			err = -ENOSPC;
			goto out;
		}
		set_fpid(plan, k, i, next);
		taken[next] = true;
	}
out:
	free(held);
	free(taken);
	return err;
}

int ag_ids__number(const struct ag_ids *ids, struct ag_plan *plan, char *why, size_t len)
{
	int k, err;

	for (k = 0; k < AG_ID__KINDS; k++) {
		err = number_kind(ids, plan, k, why, len);
		if (err)
			return err;
	}
	ag_plan__index_fpids(plan);
	return 0;
}

void ag_ids__commit(struct ag_ids *ids, const struct ag_plan *plan, uint64_t now_ns)
{
	bool named[AG_MAX_BACKENDS];
	unsigned int i;
	int k;

	for (k = 0; k < AG_ID__KINDS; k++) {
		struct ag_id_entry *e = ids->e[k];

		memset(named, 0, sizeof(named));
		for (i = 0; i < n_items(plan, k); i++) {
			struct item it = item_of(plan, k, i);
			struct ag_id_entry *x = &e[it.fpid];

			snprintf(x->key, sizeof(x->key), "%s", it.key);
			x->state = AG_ID_LIVE;
			x->parent = it.parent;
			named[it.fpid] = true;
		}
		for (i = 0; i < ag_ids__cap(k); i++) {
			if (e[i].state != AG_ID_LIVE || named[i])
				continue;
			e[i].state = AG_ID_RETIRED;
			e[i].activity = UINT64_MAX; /* unknown until the first reap reads it */
			e[i].quiet_since_ns = now_ns;
		}
	}
}

static void free_entry(struct ag_id_entry *x)
{
	memset(x, 0, sizeof(*x));
}

/* A retired backend or listener whose counters stood still for quiet_ns: true to free it. */
static bool quiet(struct ag_id_entry *x, enum ag_id_kind k, uint32_t id, uint64_t now_ns,
		  uint64_t quiet_ns, ag_id_activity_fn fn, void *ctx)
{
	uint64_t a;

	if (fn(ctx, k, id, &a))
		return false;
	if (a != x->activity) {
		x->activity = a;
		x->quiet_since_ns = now_ns;
		return false;
	}
	return now_ns - x->quiet_since_ns >= quiet_ns;
}

unsigned int ag_ids__reap(struct ag_ids *ids, uint64_t now_ns, uint64_t quiet_ns,
			  ag_id_activity_fn fn, void *ctx, uint32_t *freed)
{
	bool group_held[AG_MAX_GROUPS] = {false};
	struct ag_id_entry *e;
	unsigned int n = 0;
	uint32_t i;

	e = ids->e[AG_ID_BACKEND];
	for (i = 0; i < AG_MAX_BACKENDS; i++) {
		if (e[i].state == AG_ID_RETIRED &&
		    quiet(&e[i], AG_ID_BACKEND, i, now_ns, quiet_ns, fn, ctx)) {
			free_entry(&e[i]);
			freed[n++] = i;
		}
		if (e[i].state != AG_ID_FREE && e[i].parent < AG_MAX_GROUPS)
			group_held[e[i].parent] = true;
	}
	e = ids->e[AG_ID_LISTENER];
	for (i = 0; i < AG_MAX_LISTENERS; i++)
		if (e[i].state == AG_ID_RETIRED &&
		    quiet(&e[i], AG_ID_LISTENER, i, now_ns, quiet_ns, fn, ctx))
			free_entry(&e[i]);
	e = ids->e[AG_ID_GROUP];
	for (i = 0; i < AG_MAX_GROUPS; i++)
		if (e[i].state == AG_ID_RETIRED && !group_held[i])
			free_entry(&e[i]);
	return n;
}

unsigned int ag_ids__count(const struct ag_ids *ids, enum ag_id_kind k, enum ag_id_state s)
{
	unsigned int n = 0;
	uint32_t i;

	for (i = 0; i < ag_ids__cap(k); i++)
		n += ids->e[k][i].state == s;
	return n;
}

uint64_t ag_ids__quiet_ns(const struct ag_config *cfg)
{
	const struct ag_cfg_edge *e = &cfg->edge;
	uint32_t s = e->tcp_idle_s;

	if (e->udp_idle_s > s)
		s = e->udp_idle_s;
	if (e->tcp_syn_idle_s > s)
		s = e->tcp_syn_idle_s;
	if (e->tcp_closing_s > s)
		s = e->tcp_closing_s;
	return (uint64_t)s * 1000000000ull + AG_LAST_SEEN_GRANULARITY_NS;
}
