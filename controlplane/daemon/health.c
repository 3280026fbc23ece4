/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Health and proximity glue: probe targets from the plan, a state change
 * republishes at once (recording decision -> switch time), and a periodic
 * pass orders each listener's groups by measured RTT with hysteresis.
 */
#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "log.h"
#include "probe.h"
#include "proximity.h"

/* How often group RTTs are re-ranked (probe intervals are 100 ms and up). */
#define AG_PROXIMITY_PERIOD_NS 500000000ull

struct ag_health {
	struct ag_timer proximity; /* re-ranks groups by RTT every AG_PROXIMITY_PERIOD_NS */
};

/* The traffic port of an endpoint: its listener's first port, after overrides. */
static uint16_t traffic_port(const struct ag_plan *plan, const struct ag_plan_backend *b)
{
	const struct ag_plan_group *g = &plan->groups[b->group_id];
	const struct ag_cfg_listener *l = plan->listeners[b->listener_id].cfg;
	uint16_t port = l->ranges[0].first;
	unsigned int i;

	for (i = 0; i < g->cfg->n_overrides; i++)
		if (g->cfg->overrides[i].listener_port == port)
			return g->cfg->overrides[i].endpoint_port;
	return port;
}

static void listener_name(const struct ag_plan *plan, uint32_t lid, char *buf, size_t len)
{
	const struct ag_plan_listener *pl = &plan->listeners[lid];

	snprintf(buf, len, "%s/%s:%u", pl->accel->name,
		 pl->cfg->proto == IPPROTO_TCP ? "tcp" : "udp", pl->cfg->ranges[0].first);
}

/* "web/tcp:80 eu-west 10.1.1.11": how logs name a backend. */
static void backend_label(const struct ag_plan *plan, uint32_t id, char *buf, size_t len)
{
	const struct ag_plan_backend *b = &plan->backends[id];
	char addr[INET_ADDRSTRLEN], lname[96];

	inet_ntop(AF_INET, &b->addr, addr, sizeof(addr));
	listener_name(plan, b->listener_id, lname, sizeof(lname));
	snprintf(buf, len, "%s %s %s", lname, plan->groups[b->group_id].cfg->region, addr);
}

/* Re-rank one listener's groups by RTT; pinned regions keep their places first. */
static bool order_listener(struct ag_daemon *d, uint32_t lid)
{
	const struct ag_plan_listener *pl = &d->plan->listeners[lid];
	uint32_t groups[AG_MAX_GROUPS_PER_LISTENER], order[AG_MAX_GROUPS_PER_LISTENER];
	uint64_t rtt[AG_MAX_GROUPS_PER_LISTENER];
	uint32_t base[AG_MAX_GROUPS_PER_LISTENER];
	unsigned int pinned = pl->cfg->n_region_order, n, i;
	uint32_t *cur = d->vs.group_order[lid];
	bool changed;

	/*
	 * Not before every group with healthy endpoints has a measurement: at
	 * start-up the first group probed would otherwise jump ahead of nearer
	 * ones for a probe interval, and new flows with it.
	 */
	for (i = 0; i < pl->n_groups; i++)
		if (d->vs.group_pending[pl->first_group + i])
			return false;
	/* Operator-pinned regions first (their order), the rest ranked by RTT. */
	ag_plan__group_order(d->plan, lid, NULL, base);
	if (pinned > pl->n_groups)
		pinned = pl->n_groups;
	n = pl->n_groups - pinned;
	for (i = 0; i < n; i++) {
		groups[i] = base[pinned + i];
		rtt[i] = d->vs.group_rtt_ns[groups[i]];
	}
	ag_proximity__order(groups, rtt, n, cur + pinned, order);
	changed = memcmp(order, cur + pinned, n * sizeof(*order)) != 0 ||
		  memcmp(base, cur, pinned * sizeof(*base)) != 0;
	if (changed) {
		char name[96];

		memcpy(cur, base, pinned * sizeof(*base));
		memcpy(cur + pinned, order, n * sizeof(*order));
		listener_name(d->plan, lid, name, sizeof(name));
		for (i = 0; i < pl->n_groups; i++)
			pr_info("listener %s: #%u %s (rtt %.1f ms)\n", name, i + 1,
				d->plan->groups[cur[i]].cfg->region,
				d->vs.group_rtt_ns[cur[i]] / 1e6);
	}
	return changed;
}

/* Recompute group RTTs and orders; true when any order changed. */
static bool update_order(struct ag_daemon *d)
{
	uint64_t vals[AG_MAX_ENDPOINTS_PER_GROUP];
	bool changed = false;
	unsigned int g, b, lid;

	if (!d->prober)
		return false;
	/* A group's RTT: the median of its healthy endpoints' smoothed RTTs. */
	for (g = 0; g < d->plan->n_groups; g++) {
		const struct ag_plan_group *pg = &d->plan->groups[g];
		unsigned int n = 0;

		for (b = 0; b < pg->n_backends; b++) {
			uint32_t id = pg->first_backend + b;

			if (d->vs.up[id])
				vals[n++] =
				    ag_prober__srtt_ns(d->prober, d->plan->backends[id].fpid);
		}
		d->vs.group_rtt_ns[g] = ag_proximity__median(vals, n);
		d->vs.group_pending[g] = n && !d->vs.group_rtt_ns[g];
	}
	for (lid = 0; lid < d->plan->n_listeners; lid++)
		changed |= order_listener(d, lid);
	return changed;
}

static void proximity_tick(struct ag_timer *t)
{
	struct ag_daemon *d = t->data;

	if (update_order(d))
		ag_daemon__republish(d, "nearest region changed");
}

/* CLOCK_MONOTONIC ns -> CLOCK_REALTIME ms, for lining logs up with clients' clocks. */
static long long realtime_ms(uint64_t mono_ns)
{
	struct timespec ts;
	long long now_rt;

	clock_gettime(CLOCK_REALTIME, &ts);
	now_rt = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return now_rt - (long long)(ag_now_ns() - mono_ns) / 1000000;
}

/* Every finished probe: remember when the current failure streak began. */
static void probe_result(void *ctx, const struct ag_probe_report *rep)
{
	struct ag_daemon *d = ctx;
	const struct ag_plan_backend *pb = ag_plan__backend_by_fpid(d->plan, rep->id);

	if (!pb || !rep->verdict)
		return;
	if (rep->result == AG_PROBE_OK)
		d->vs.fail_since_ns[pb->id] = 0;
	else if (!d->vs.fail_since_ns[pb->id])
		d->vs.fail_since_ns[pb->id] = rep->start_ns;
}

/* Probe targets are the backends' fpids: a reload keeps a kept endpoint's probe state. */
static void state_changed(void *ctx, uint32_t fpid, bool up, const char *reason,
			  uint64_t decided_ns)
{
	struct ag_daemon *d = ctx;
	const struct ag_plan_backend *pb = ag_plan__backend_by_fpid(d->plan, fpid);
	uint32_t id = pb ? pb->id : 0;
	uint64_t done, first_fail;
	char label[192];

	if (!pb || d->vs.up[id] == up)
		return;
	d->vs.up[id] = up;
	first_fail = up ? 0 : d->vs.fail_since_ns[id];
	update_order(d);
	if (ag_daemon__republish(d, up ? "endpoint up" : "endpoint down"))
		return;
	done = ag_now_ns();
	d->last_change.first_fail_ns = first_fail;
	d->last_change.decided_ns = decided_ns;
	d->last_change.published_ns = done;
	d->last_change.count++;
	backend_label(d->plan, id, label, sizeof(label));
	if (!up && first_fail && first_fail <= decided_ns)
		pr_info("backend %u (%s) down: detected %.1f ms after the first failed probe, "
			"tables switched %.3f ms after the decision (publish %.3f ms); "
			"first_fail_ms=%lld switched_ms=%lld\n",
			fpid, label, (decided_ns - first_fail) / 1e6, (done - decided_ns) / 1e6,
			d->pub.stats.last_duration_ns / 1e6, realtime_ms(first_fail),
			realtime_ms(done));
	else
		pr_info("backend %u (%s) %s: tables switched %.3f ms after the deciding probe "
			"(publish %.3f ms)\n",
			fpid, label, up ? "up" : "down", (done - decided_ns) / 1e6,
			d->pub.stats.last_duration_ns / 1e6);
}

static int set_targets(struct ag_daemon *d)
{
	struct ag_probe_target *t;
	char(*labels)[192];
	unsigned int i;
	int err;

	t = calloc(d->plan->n_backends ? d->plan->n_backends : 1, sizeof(*t));
	labels = calloc(d->plan->n_backends ? d->plan->n_backends : 1, sizeof(*labels));
	if (!t || !labels) {
		free(t);
		free(labels);
		return -ENOMEM;
	}
	for (i = 0; i < d->plan->n_backends; i++) {
		const struct ag_plan_backend *b = &d->plan->backends[i];
		const struct ag_cfg_group *g = d->plan->groups[b->group_id].cfg;

		backend_label(d->plan, i, labels[i], sizeof(labels[i]));
		t[i].id = b->fpid;
		t[i].addr = b->addr;
		t[i].port = g->health.port ? g->health.port : traffic_port(d->plan, b);
		t[i].hc = &g->health;
		t[i].label = labels[i];
	}
	err = ag_prober__set_targets(d->prober, t, d->plan->n_backends);
	free(t);
	free(labels);
	return err;
}

/* After a reload (or its undoing): the plan's targets; state of unchanged targets kept. */
static int retarget(struct ag_daemon *d)
{
	unsigned int i;
	int err = set_targets(d);

	if (err)
		return err;
	/* The new plan's view starts from what the prober knows of each id. */
	for (i = 0; i < d->plan->n_backends; i++)
		d->vs.up[i] = ag_prober__is_up(d->prober, d->plan->backends[i].fpid);
	update_order(d);
	return 0;
}

int ag_health__start(struct ag_daemon *d)
{
	int err;

	d->health = calloc(1, sizeof(*d->health));
	if (!d->health)
		return -ENOMEM;
	d->health->proximity.ev.fd = -1;
	d->prober = ag_prober__new(&d->loop, state_changed, d);
	if (!d->prober)
		return -errno;
	ag_prober__set_result_cb(d->prober, probe_result, d);
	err = set_targets(d);
	if (err)
		return err;
	d->on_replan = retarget;
	err = ag_timer__init(&d->loop, &d->health->proximity, proximity_tick, d);
	if (err)
		return err;
	return ag_timer__arm(&d->health->proximity, AG_PROXIMITY_PERIOD_NS, AG_PROXIMITY_PERIOD_NS);
}

void ag_health__stop(struct ag_daemon *d)
{
	d->on_replan = NULL;
	if (d->health)
		ag_timer__fini(&d->loop, &d->health->proximity);
	free(d->health);
	d->health = NULL;
	ag_prober__free(d->prober);
	d->prober = NULL;
}
