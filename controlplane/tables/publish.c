/* SPDX-License-Identifier: BSD-3-Clause */
#include "publish.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"
#include "maglev.h"

/* Effective weights handed to Maglev: shares scaled to this total. */
#define AG_WEIGHT_SCALE (1u << 20)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int ag_publisher__init(struct ag_publisher *p, const struct ag_sink_ops *ops, void *ctx,
		       uint32_t ring_size, uint32_t seed)
{
	memset(p, 0, sizeof(*p));
	p->ops = ops;
	p->ctx = ctx;
	p->ring_size = ring_size;
	p->seed = seed;
	/*
	 * The first publish clears every backend entry: an adopted fast path may
	 * hold backends of a larger config from an earlier anygated.
	 */
	p->first = true;
	p->cpus = 1;
	if (getrandom(&p->syn_auth_secret, sizeof(p->syn_auth_secret), 0) !=
	    sizeof(p->syn_auth_secret))
		return -(errno ? errno : EIO);
	p->scratch = calloc(ring_size, sizeof(*p->scratch));
	return p->scratch ? 0 : -ENOMEM;
}

bool ag_publisher__set_cpus(struct ag_publisher *p, unsigned int cpus)
{
	if (!cpus)
		cpus = 1;
	if (cpus == p->cpus)
		return false;
	p->cpus = cpus;
	return true;
}

void ag_publisher__fini(struct ag_publisher *p)
{
	free(p->scratch);
	p->scratch = NULL;
}

uint32_t ag_publish__per_cpu(uint32_t rate, unsigned int cpus)
{
	if (!cpus)
		cpus = 1;
	return (uint32_t)(((uint64_t)rate + cpus - 1) / cpus);
}

uint64_t ag_publish__backend_alive_ns(const struct ag_config *cfg)
{
	uint64_t ms, most = 0;
	unsigned int a, l, g;

	for (a = 0; a < cfg->n_accels; a++) {
		const struct ag_cfg_accelerator *ac = &cfg->accels[a];

		for (l = 0; l < ac->n_listeners; l++) {
			for (g = 0; g < ac->listeners[l].n_groups; g++) {
				const struct ag_cfg_health *hc = &ac->listeners[l].groups[g].health;

				ms = (uint64_t)hc->interval_ms * hc->unhealthy_threshold +
				     hc->timeout_ms;
				if (ms > most)
					most = ms;
			}
		}
	}
	return most * 1000000ull;
}

void ag_publish__settings_from(const struct ag_config *cfg, unsigned int cpus,
			       uint64_t syn_auth_secret, struct ag_settings *s)
{
	const struct ag_cfg_edge *edge = &cfg->edge;
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->abi_version = AG_ABI_VERSION;
	s->hash_seed = edge->hash_seed;
	s->ring_size = edge->ring_size;
	s->nat_addr_count = edge->n_nat_addrs;
	for (i = 0; i < edge->n_nat_addrs && i < AG_MAX_NAT_ADDRS; i++)
		s->nat_addrs[i] = edge->nat_addrs[i];
	s->tcp_idle_ns = (uint64_t)edge->tcp_idle_s * 1000000000ull;
	s->udp_idle_ns = (uint64_t)edge->udp_idle_s * 1000000000ull;
	s->nat_port_min = edge->nat_port_min;
	s->nat_port_max = edge->nat_port_max;
	s->tcp_syn_idle_ns = (uint64_t)edge->tcp_syn_idle_s * 1000000000ull;
	s->tcp_closing_ns = (uint64_t)edge->tcp_closing_s * 1000000000ull;
	s->backend_alive_ns = ag_publish__backend_alive_ns(cfg);
	s->syn_cpu_rate = ag_publish__per_cpu(edge->syn_auth_rate, cpus);
	s->udp_cpu_rate = ag_publish__per_cpu(edge->udp_flow_rate, cpus);
	s->syn_auth_secret = syn_auth_secret;
	s->syn_auth_ttl_ns = (uint64_t)edge->syn_auth_ttl_s * 1000000000ull;
}

uint32_t ag_publish__backend_key(const struct ag_plan *plan, const struct ag_plan_backend *b)
{
	const char *region = plan->groups[b->group_id].cfg->region;
	const uint8_t *a = (const uint8_t *)&b->addr;
	uint32_t h = 2166136261u; /* FNV-1a over address bytes and region name */
	unsigned int i;

	for (i = 0; i < 4; i++)
		h = (h ^ a[i]) * 16777619u;
	for (; *region; region++)
		h = (h ^ (uint8_t)*region) * 16777619u;
	return h;
}

/* VIPs and listener keys (each key's value: its listener's fpid). */
static int publish_keys(struct ag_publisher *p, const struct ag_plan *plan)
{
	const struct ag_config *cfg = plan->cfg;
	unsigned long n_keys = ag_config__listener_keys(cfg);
	struct ag_listener_key *keys = calloc(n_keys ? n_keys : 1, sizeof(*keys));
	uint32_t *ids = calloc(n_keys ? n_keys : 1, sizeof(uint32_t));
	uint32_t *vips = calloc(AG_MAX_VIPS, sizeof(*vips));
	unsigned int n = 0, nv = 0, a, l, r, v;
	int err = -ENOMEM;

	if (!keys || !ids || !vips)
		goto out_free;
	for (l = 0; l < plan->n_listeners; l++) {
		const struct ag_plan_listener *pl = &plan->listeners[l];
		const struct ag_cfg_listener *lc = pl->cfg;

		for (v = 0; v < pl->accel->n_addrs; v++) {
			for (r = 0; r < lc->n_ranges; r++) {
				uint32_t port;

				for (port = lc->ranges[r].first; port <= lc->ranges[r].last;
				     port++) {
					if (n >= n_keys) {
						err = -E2BIG;
						goto out_free;
					}
					keys[n].vip = pl->accel->addrs[v];
					keys[n].port = htons((uint16_t)port);
					keys[n].proto = lc->proto;
					ids[n++] = pl->fpid;
				}
			}
		}
	}
	for (a = 0; a < cfg->n_accels; a++)
		for (v = 0; v < cfg->accels[a].n_addrs && nv < AG_MAX_VIPS; v++)
			vips[nv++] = cfg->accels[a].addrs[v];
	err = p->ops->vips(p->ctx, vips, nv);
	if (!err)
		err = p->ops->listener_keys(p->ctx, keys, ids, n);
out_free:
	free(keys);
	free(ids);
	free(vips);
	return err;
}

/* Append plan's port overrides (keyed by group fpid) to keys and vals at *n. */
static void add_overrides(const struct ag_plan *plan, struct ag_port_ovr_key *keys,
			  struct ag_port_ovr *vals, unsigned int *n)
{
	unsigned int g, o;

	for (g = 0; g < plan->n_groups; g++) {
		const struct ag_cfg_group *gc = plan->groups[g].cfg;

		for (o = 0; o < gc->n_overrides; o++) {
			keys[*n].group_id = plan->groups[g].fpid;
			keys[*n].port = htons(gc->overrides[o].listener_port);
			vals[*n].port = htons(gc->overrides[o].endpoint_port);
			(*n)++;
		}
	}
}

static unsigned int count_overrides(const struct ag_plan *plan)
{
	unsigned int g, n = 0;

	for (g = 0; plan && g < plan->n_groups; g++)
		n += plan->groups[g].cfg->n_overrides;
	return n;
}

/*
 * The port overrides of plan and of old (NULL: none). A group's overrides
 * are part of its identity, so a group fpid in both has the same entries in
 * both: a reload adds the new groups' and keeps the old ones' until the next.
 */
static int publish_overrides(struct ag_publisher *p, const struct ag_plan *old,
			     const struct ag_plan *plan)
{
	unsigned int cap = count_overrides(old) + count_overrides(plan), n = 0;
	struct ag_port_ovr_key *keys = calloc(cap ? cap : 1, sizeof(*keys));
	struct ag_port_ovr *vals = calloc(cap ? cap : 1, sizeof(*vals));
	int err = -ENOMEM;

	if (keys && vals) {
		if (old)
			add_overrides(old, keys, vals, &n);
		add_overrides(plan, keys, vals, &n);
		err = p->ops->port_overrides(p->ctx, keys, vals, n);
	}
	free(keys);
	free(vals);
	return err;
}

/*
 * What the fast path does with backend pb: health DOWN (its TCP flows get a
 * RST, its UDP flows move), DRAINING (no new flows, pinned flows continue) or
 * UP. A listener failing open does not believe health: its endpoints keep
 * their flows, and those of the group it spreads over take new ones.
 */
static uint8_t backend_state(const struct ag_view *view, const struct ag_plan_backend *pb,
			     bool failing_open)
{
	if (view && view->up && !view->up[pb->id] && !failing_open)
		return AG_BACKEND_DOWN;
	if (view && view->drained && view->drained[pb->id])
		return AG_BACKEND_DRAINING;
	return AG_BACKEND_UP;
}

static int publish_backend(struct ag_publisher *p, const struct ag_plan *plan,
			   const struct ag_plan_backend *pb, const struct ag_view *view)
{
	struct ag_backend b;

	memset(&b, 0, sizeof(b));
	b.addr = pb->addr;
	b.group_id = plan->groups[pb->group_id].fpid;
	b.mode = AG_MODE_NAT;
	b.state = backend_state(view, pb, p->fail_open[plan->listeners[pb->listener_id].fpid]);
	return p->ops->backend(p->ctx, pb->fpid, &b);
}

/*
 * The plan's backends, each at its fpid. The first publish also clears every
 * other id: an adopted fast path may hold backends of an earlier anygated.
 * Later ones never touch an id the plan does not name (a retired id keeps its
 * entry until ag_publisher__clear_backend).
 */
static int publish_backends(struct ag_publisher *p, const struct ag_plan *plan,
			    const struct ag_view *view)
{
	unsigned int i;
	int err;

	for (i = 0; i < plan->n_backends; i++) {
		err = publish_backend(p, plan, &plan->backends[i], view);
		if (err)
			return err;
	}
	for (i = 0; p->first && i < AG_MAX_BACKENDS; i++) {
		if (ag_plan__backend_by_fpid(plan, i))
			continue;
		err = ag_publisher__clear_backend(p, i);
		if (err)
			return err;
	}
	p->first = false;
	return 0;
}

int ag_publisher__clear_backend(struct ag_publisher *p, uint32_t fpid)
{
	struct ag_backend b;

	memset(&b, 0, sizeof(b));
	return p->ops->backend(p->ctx, fpid, &b);
}

static int cmp_mb_key(const void *a, const void *b)
{
	const struct ag_maglev_backend *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_mb_id(const void *a, const void *b)
{
	const struct ag_maglev_backend *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Maglev needs distinct keys. Two backends whose 32-bit identities collide
 * are told apart deterministically (the later id is re-hashed until unique),
 * so every edge resolves the same collision the same way.
 */
static void unique_keys(struct ag_maglev_backend *mb, unsigned int n)
{
	bool again = true;
	unsigned int i;

	while (again) {
		again = false;
		qsort(mb, n, sizeof(*mb), cmp_mb_key);
		for (i = 1; i < n; i++) {
			if (mb[i].key == mb[i - 1].key) {
				mb[i].key = (mb[i].key ^ 0x9e3779b9u) * 16777619u + 1;
				again = true;
			}
		}
	}
	qsort(mb, n, sizeof(*mb), cmp_mb_id);
}

/* Build listener `lid`'s table into p->scratch from its backends' shares (ag_plan__compile). */
static int build_table(struct ag_publisher *p, const struct ag_plan *plan, uint32_t lid,
		       const double *share)
{
	const struct ag_plan_listener *pl = &plan->listeners[lid];
	struct ag_maglev_backend *mb;
	unsigned int n = 0, g, b;
	int err;

	mb = calloc(AG_MAX_GROUPS_PER_LISTENER * AG_MAX_ENDPOINTS_PER_GROUP, sizeof(*mb));
	if (!mb)
		return -ENOMEM;
	for (g = 0; g < pl->n_groups; g++) {
		const struct ag_plan_group *pg = &plan->groups[pl->first_group + g];

		for (b = 0; b < pg->n_backends; b++) {
			const struct ag_plan_backend *pb = &plan->backends[pg->first_backend + b];
			double w = share[pb->id] * AG_WEIGHT_SCALE;

			mb[n].id = pb->id; /* the plan's: collisions resolve in config order */
			mb[n].key = ag_publish__backend_key(plan, pb);
			mb[n].weight =
			    share[pb->id] > 0.0 ? (w < 1.0 ? 1u : (uint32_t)lround(w)) : 0;
			n++;
		}
	}
	unique_keys(mb, n);
	for (b = 0; b < n; b++)
		mb[b].id = plan->backends[mb[b].id].fpid;
	err = ag_maglev__build(mb, n, p->ring_size, p->seed, p->scratch);
	free(mb);
	return err;
}

int ag_publisher__diff(struct ag_publisher *p, const struct ag_plan *plan, uint32_t lid,
		       const struct ag_view *view, uint64_t *changed)
{
	const struct ag_listener_state *st;
	const uint32_t *live;
	uint64_t n = 0;
	double *share;
	uint32_t i;
	int err;

	if (lid >= plan->n_listeners)
		return -EINVAL;
	share = calloc(plan->n_backends ? plan->n_backends : 1, sizeof(*share));
	if (!share)
		return -ENOMEM;
	err = ag_plan__compile(plan, lid, view, share, NULL);
	if (!err)
		err = build_table(p, plan, lid, share);
	free(share);
	if (err)
		return err;
	st = p->ops->lstate(p->ctx, plan->listeners[lid].fpid);
	live = p->ops->lookup_slot(p->ctx, __atomic_load_n(&st->slot, __ATOMIC_ACQUIRE));
	for (i = 0; i < p->ring_size; i++)
		n += live[i] != p->scratch[i];
	*changed = n;
	return 0;
}

int ag_publisher__publish_settings(struct ag_publisher *p, const struct ag_config *cfg)
{
	struct ag_settings s;

	ag_publish__settings_from(cfg, p->cpus, p->syn_auth_secret, &s);
	return p->ops->settings(p->ctx, &s);
}

/*
 * Every listener's shares (each listener writes only its own backends'), and
 * whether it fails open: a backend's state depends on its listener's.
 */
static int compile_all(struct ag_publisher *p, const struct ag_plan *plan,
		       const struct ag_view *view, double *share)
{
	uint32_t lid;
	int err;

	memset(p->fail_open, 0, sizeof(p->fail_open));
	for (lid = 0; lid < plan->n_listeners; lid++) {
		err = ag_plan__compile(plan, lid, view, share, NULL);
		if (err)
			return err;
		p->fail_open[plan->listeners[lid].fpid] = ag_plan__fail_open(plan, lid, view);
	}
	return 0;
}

/* Write listener lid's table into its spare slot (only what differs), then switch. */
static int switch_table(struct ag_publisher *p, const struct ag_plan *plan, uint32_t lid,
			const double *share, uint64_t *written)
{
	uint32_t fpid = plan->listeners[lid].fpid;
	struct ag_listener_state *st = p->ops->lstate(p->ctx, fpid);
	uint32_t live = __atomic_load_n(&st->slot, __ATOMIC_ACQUIRE);
	uint32_t spare = (live == 2 * fpid) ? 2 * fpid + 1 : 2 * fpid;
	uint32_t *dst = p->ops->lookup_slot(p->ctx, spare);
	uint32_t i;
	int err;

	err = build_table(p, plan, lid, share);
	if (err) {
		pr_err("listener %u: lookup table build failed: %s\n", lid, strerror(-err));
		return err;
	}
	/* The spare slot holds an older table: write only what differs. */
	for (i = 0; i < p->ring_size; i++) {
		if (dst[i] != p->scratch[i]) {
			__atomic_store_n(&dst[i], p->scratch[i], __ATOMIC_RELAXED);
			(*written)++;
		}
	}
	st->affinity = plan->listeners[lid].cfg->affinity;
	/* The switch: one aligned 32-bit store publishes the whole table. */
	__atomic_store_n(&st->slot, spare, __ATOMIC_RELEASE);
	__atomic_fetch_add(&st->generation, 1, __ATOMIC_RELEASE);
	/* Activated only once its slot is its own (listener keys come last anyway). */
	__atomic_store_n(&st->flags, AG_LF_ACTIVE, __ATOMIC_RELEASE);
	return 0;
}

int ag_publisher__publish_tables(struct ag_publisher *p, const struct ag_plan *plan,
				 const struct ag_view *view)
{
	uint64_t start = now_ns(), written = 0;
	double *share;
	uint32_t lid;
	int err;

	share = calloc(plan->n_backends ? plan->n_backends : 1, sizeof(*share));
	if (!share)
		return -ENOMEM;
	err = compile_all(p, plan, view, share);
	/* Backends before tables: a new table never points at an unset backend. */
	if (!err)
		err = publish_backends(p, plan, view);
	for (lid = 0; !err && lid < plan->n_listeners; lid++)
		err = switch_table(p, plan, lid, share, &written);
	if (!err) {
		p->stats.publishes++;
		p->stats.slots_written = written;
		p->stats.last_duration_ns = now_ns() - start;
	}
	free(share);
	return err;
}

/* Listeners the plan does not name take no new flows (their keys are gone already). */
static void deactivate_others(struct ag_publisher *p, const struct ag_plan *plan)
{
	uint32_t fpid;

	for (fpid = 0; fpid < AG_MAX_LISTENERS; fpid++) {
		if (ag_plan__listener_by_fpid(plan, fpid))
			continue;
		__atomic_store_n(&p->ops->lstate(p->ctx, fpid)->flags, 0, __ATOMIC_RELEASE);
	}
}

int ag_publisher__publish_config(struct ag_publisher *p, const struct ag_plan *plan)
{
	int err = ag_publisher__publish_settings(p, plan->cfg);

	if (!err)
		err = publish_overrides(p, NULL, plan);
	return err ? err : publish_keys(p, plan);
}

int ag_publisher__publish_reload(struct ag_publisher *p, const struct ag_plan *old,
				 const struct ag_plan *plan, const struct ag_view *view)
{
	uint64_t start = now_ns();
	int err;

	/* What new backends point at (their groups' port overrides) before the backends. */
	err = publish_overrides(p, old, plan);
	/* Backends into their ids, then each table switched: listener keys come after. */
	if (!err)
		err = ag_publisher__publish_tables(p, plan, view);
	if (!err)
		err = ag_publisher__publish_settings(p, plan->cfg);
	if (!err)
		err = publish_keys(p, plan);
	if (err)
		return err;
	deactivate_others(p, plan);
	p->stats.last_duration_ns = now_ns() - start;
	return 0;
}

int ag_publisher__publish(struct ag_publisher *p, const struct ag_plan *plan,
			  const struct ag_view *view)
{
	return ag_publisher__publish_reload(p, NULL, plan, view);
}
