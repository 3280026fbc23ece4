/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated's metrics source: fills a scrape's snapshot from the daemon's
 * state (plan, view, prober, publisher) and the fast path's counters. Runs on
 * the event loop's thread, inside MHD_run.
 */
#include "metrics_src.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "daemon.h"
#include "fastpath.h"
#include "log.h"
#include "metrics.h"
#include "probe.h"

#ifndef AG_VERSION
#define AG_VERSION "unknown"
#endif

/* The flow table can hold millions of entries: walk it at most this often. */
#define AG_METRICS_FLOW_CACHE_NS 1000000000ull

struct ag_metrics_src {
	struct ag_daemon *d;
	struct ag_metrics *server;
	/* Last flow-table walk: per backend id, and when. */
	uint64_t *active;
	unsigned int n_active;
	const struct ag_plan *active_plan; /* ids are per plan: a reload invalidates */
	uint64_t entries;
	uint64_t walked_ns;
	bool walked;
};

/* Live flows per backend (see ag_daemon__active_flows) and the flow table's entries. */
static int count_flows(struct ag_metrics_src *g)
{
	struct ag_daemon *d = g->d;
	uint64_t now = ag_now_ns();
	unsigned int n = d->plan->n_backends;
	long entries;
	int err;

	if (g->walked && g->active_plan == d->plan && now - g->walked_ns < AG_METRICS_FLOW_CACHE_NS)
		return 0;
	if (n > g->n_active || !g->active) {
		uint64_t *grown = realloc(g->active, (n ? n : 1) * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		g->active = grown;
		g->n_active = n;
	}
	err = ag_daemon__active_flows(d, g->active, &g->entries);
	if (err == -EOPNOTSUPP) {
		/* anygate-dp reports only the table size: per-backend counts stay 0. */
		entries = d->fp->ops->flow_entries(d->fp);
		if (entries < 0)
			return (int)entries;
		g->entries = (uint64_t)entries;
	} else if (err) {
		return err;
	}
	g->walked = true;
	g->walked_ns = now;
	g->active_plan = d->plan;
	return 0;
}

static void listener_label(const struct ag_plan_listener *pl, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%u", pl->cfg->proto == IPPROTO_TCP ? "tcp" : "udp",
		 pl->cfg->ranges[0].first);
}

/* Per listener: its counters; share[] receives every backend's share of new flows. */
static int fill_listeners(struct ag_daemon *d, struct ag_metrics_snapshot *s, double *share)
{
	const struct ag_plan *plan = d->plan;
	unsigned int i;
	int err;

	for (i = 0; i < plan->n_listeners; i++) {
		const struct ag_plan_listener *pl = &plan->listeners[i];
		struct ag_metrics_listener *ml = &s->listeners[i];

		ml->accelerator = pl->accel->name;
		ml->fastpath = d->fp->ops->kind;
		listener_label(pl, ml->listener, sizeof(ml->listener));
		err = d->fp->ops->listener_stats(d->fp, pl->fpid, &ml->traffic);
		if (err)
			return err;
		ml->failing_open = d->fail_open[pl->fpid].on;
		ml->fail_open_new_flows = ag_daemon__fail_open_flows(d, pl->fpid);
		ml->fail_open_episodes = d->fail_open[pl->fpid].episodes;
		/* Shares as the weight compiler gave them to the published tables. */
		err = ag_plan__compile(plan, pl->id, &d->view, share, NULL);
		if (err)
			return err;
	}
	s->n_listeners = plan->n_listeners;
	return 0;
}

static int fill_backends(struct ag_metrics_src *g, struct ag_metrics_snapshot *s,
			 const double *share)
{
	struct ag_daemon *d = g->d;
	const struct ag_plan *plan = d->plan;
	unsigned int i, r;
	int err;

	for (i = 0; i < plan->n_backends; i++) {
		const struct ag_plan_backend *pb = &plan->backends[i];
		const struct ag_plan_listener *pl = &plan->listeners[pb->listener_id];
		struct ag_metrics_backend *mb = &s->backends[i];

		mb->accelerator = pl->accel->name;
		listener_label(pl, mb->listener, sizeof(mb->listener));
		mb->region = plan->groups[pb->group_id].cfg->region;
		inet_ntop(AF_INET, &pb->addr, mb->address, sizeof(mb->address));
		err = d->fp->ops->backend_stats(d->fp, pb->fpid, &mb->traffic);
		if (err)
			return err;
		mb->active_flows = pb->id < g->n_active ? g->active[pb->id] : 0;
		mb->up = d->vs.up[pb->id];
		mb->srtt_ns = d->prober ? ag_prober__srtt_ns(d->prober, pb->fpid) : 0;
		mb->weight = ag_view__weight(&d->view, pb);
		mb->share = share[pb->id];
		for (r = 0; r < AG_PROBE__MAX && d->prober; r++)
			mb->probes[r] = ag_prober__count(d->prober, pb->fpid, r);
	}
	s->n_backends = plan->n_backends;
	return 0;
}

static int fill_reasons(struct ag_daemon *d, struct ag_metrics_snapshot *s)
{
	unsigned int r;
	int err;

	for (r = 0; r < AG_R__MAX; r++) {
		struct ag_reason_stats rs;

		err = d->fp->ops->reason_stats(d->fp, r, &rs);
		if (err)
			return err;
		s->reasons[r].name = ag_reason__name(r);
		s->reasons[r].packets = rs.packets;
		s->reasons[r].bytes = rs.bytes;
	}
	s->n_reasons = AG_R__MAX;
	return 0;
}

_Static_assert(AG_METRICS_FLOW_STATES == AG_FLOW_STATES, "one series per flow state");

/* The flow table's size, and what anygated's sweeper removed (where it sweeps). */
static void fill_flow_table(struct ag_daemon *d, struct ag_metrics_snapshot *s)
{
	struct ag_reclaim_stats rs;
	unsigned int i;

	s->flow_max_entries = d->cfg->edge.max_flows;
	if (d->fp->ops->reclaim_stats(d->fp, &rs))
		return;
	for (i = 0; i < AG_FLOW_STATES; i++) {
		s->flow_states[i].state = ag_flow_state__name((int)i);
		s->flow_states[i].expired = rs.expired[i];
		s->flow_states[i].evicted = rs.evicted[i];
	}
	s->n_flow_states = AG_FLOW_STATES;
	s->nat_rev_entries = rs.nat_revs;
	s->nat_orphans_removed = rs.orphans;
	s->sweeps = rs.passes;
	s->last_sweep_ns = rs.last_pass_ns;
}

static void fill_control(struct ag_daemon *d, struct ag_metrics_snapshot *s)
{
	struct ag_metrics_control *c = &s->control;
	struct ag_ctl_stats cs;

	if (!d->ctl)
		return;
	ag_ctl__stats(d->ctl, &cs);
	*c = (struct ag_metrics_control){
	    .present = true,
	    .clients = cs.clients,
	    .accepted = cs.accepted,
	    .refused_busy = cs.refused_busy,
	    .refused_admin_slots = cs.refused_admin_slots,
	    .refused_uid = cs.refused_uid,
	    .denied = cs.denied,
	    .replies_too_big = cs.replies_too_big,
	    .replies_no_room = cs.replies_no_room,
	    .streams_failed = cs.streams_failed,
	    .stream_waits = cs.stream_waits,
	    .closed_idle = cs.closed_idle,
	    .closed_long_line = cs.closed_long_line,
	    .queued = cs.queued,
	    .queued_peak = cs.queued_peak,
	};
}

int ag_metrics_src__collect(void *ctx, struct ag_metrics_snapshot *s)
{
	struct ag_metrics_src *g = ctx;
	struct ag_daemon *d = g->d;
	const struct ag_plan *plan = d->plan;
	double *share = NULL;
	int err;

	err = count_flows(g);
	if (err)
		return err;
	s->listeners = calloc(plan->n_listeners ? plan->n_listeners : 1, sizeof(*s->listeners));
	s->backends = calloc(plan->n_backends ? plan->n_backends : 1, sizeof(*s->backends));
	share = calloc(plan->n_backends ? plan->n_backends : 1, sizeof(*share));
	if (!s->listeners || !s->backends || !share) {
		err = -ENOMEM;
		goto out;
	}
	err = fill_listeners(d, s, share);
	if (!err)
		err = fill_backends(g, s, share);
	if (!err)
		err = fill_reasons(d, s);
	if (err)
		goto out;
	s->flow_entries = g->entries;
	fill_flow_table(d, s);
	s->publishes = d->pub.stats.publishes;
	s->last_publish_ns = d->pub.stats.last_duration_ns;
	s->reloads = d->reloads;
	s->reload_failures = d->reload_failures;
	s->failovers = d->last_change.count;
	s->last_failover_ns = d->last_change.published_ns - d->last_change.decided_ns;
	fill_control(d, s);
	s->version = AG_VERSION;
	s->abi = AG_ABI_VERSION;
out:
	free(share);
	return err;
}

int ag_metrics_src__start(struct ag_daemon *d)
{
	const struct ag_cfg_edge *edge = &d->cfg->edge;
	struct ag_metrics_src *g;

	if (!edge->metrics_port) {
		pr_info("metrics: disabled (edge.metrics is \"\")\n");
		return 0;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->d = d;
	g->server = ag_metrics__start(&d->loop, edge->metrics_ip, edge->metrics_port,
				      ag_metrics_src__collect, g);
	if (!g->server) {
		int err = -errno;

		free(g);
		return err;
	}
	d->metrics = g;
	return 0;
}

void ag_metrics_src__stop(struct ag_daemon *d)
{
	struct ag_metrics_src *g = d->metrics;

	if (!g)
		return;
	ag_metrics__stop(g->server);
	free(g->active);
	free(g);
	d->metrics = NULL;
}
