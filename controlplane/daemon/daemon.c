/* SPDX-License-Identifier: BSD-3-Clause */
#include "daemon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastpath.h"
#include "kinds.h"
#include "log.h"

int ag_daemon__init(struct ag_daemon *d, const char *config_path)
{
	memset(d, 0, sizeof(*d));
	d->loop.epfd = -1;
	d->upkeep.ev.fd = -1;
	d->config_path = config_path;
	d->started_ns = ag_now_ns();
	ag_ovr_state__init(&d->ovr);
	if (ag_ids__init(&d->ids))
		return -ENOMEM;
	d->cfg = ag_config__load_or_report(config_path);
	return d->cfg ? 0 : -EINVAL;
}

int ag_daemon__prepare(struct ag_daemon *d)
{
	char why[256] = "";
	int err;

	d->plan = ag_plan__new(d->cfg);
	if (!d->plan || ag_view_state__init(&d->vs, d->plan)) {
		err = errno ? errno : ENOMEM;
		pr_err("laying out %s: %s\n", d->config_path, strerror(err));
		return -err;
	}
	/* Fresh ids: config order (committed by the first publish). */
	err = ag_ids__number(&d->ids, d->plan, why, sizeof(why));
	if (err) {
		pr_err("numbering %s: %s\n", d->config_path, why[0] ? why : strerror(-err));
		return err;
	}
	ag_view_state__bind(&d->vs, &d->view);
	err = ag_loop__init(&d->loop);
	if (err)
		pr_err("event loop: %s\n", strerror(-err));
	return err;
}

/* Each listener's groups and backends with the share of new flows the tables give them. */
static void log_plan(const struct ag_daemon *d)
{
	const struct ag_plan *plan = d->plan;
	double *share = calloc(plan->n_backends ? plan->n_backends : 1, sizeof(*share));
	double *gshare = calloc(plan->n_groups ? plan->n_groups : 1, sizeof(*gshare));
	unsigned int l, g, b;

	if (!share || !gshare)
		goto out;
	for (l = 0; l < plan->n_listeners; l++) {
		const struct ag_plan_listener *pl = &plan->listeners[l];
		char vip[INET_ADDRSTRLEN];

		if (ag_plan__compile(plan, l, &d->view, share, gshare))
			continue;
		inet_ntop(AF_INET, &pl->accel->addrs[0], vip, sizeof(vip));
		pr_info("listener %u: %s %s %s port %u%s: %u groups\n", pl->fpid, pl->accel->name,
			vip, pl->cfg->proto == IPPROTO_TCP ? "tcp" : "udp",
			pl->cfg->ranges[0].first,
			pl->cfg->n_ranges > 1 || pl->cfg->ranges[0].last != pl->cfg->ranges[0].first
			    ? "+"
			    : "",
			pl->n_groups);
		for (g = 0; g < pl->n_groups; g++) {
			const struct ag_plan_group *pg = &plan->groups[pl->first_group + g];

			pr_info("  %-12s %5.1f%% of new flows\n", pg->cfg->region,
				100.0 * gshare[pg->id]);
			for (b = 0; b < pg->n_backends; b++) {
				const struct ag_plan_backend *pb =
				    &plan->backends[pg->first_backend + b];
				char addr[INET_ADDRSTRLEN];

				inet_ntop(AF_INET, &pb->addr, addr, sizeof(addr));
				pr_info("    backend %u %-15s weight %3u share %5.1f%%\n", pb->fpid,
					addr, pb->weight, 100.0 * share[pb->id]);
			}
		}
	}
out:
	free(share);
	free(gshare);
}

/* The edge's new-flow budgets as each CPU (lcore) of the fast path applies them. */
static void log_budgets(const struct ag_daemon *d)
{
	const struct ag_cfg_edge *e = &d->cfg->edge;

	pr_info("new-flow budgets over %u CPUs of the fast path: unverified TCP %u/s (%u per "
		"CPU), UDP %u/s (%u per CPU); 0 = no limit\n",
		d->pub.cpus, e->syn_auth_rate, ag_publish__per_cpu(e->syn_auth_rate, d->pub.cpus),
		e->udp_flow_rate, ag_publish__per_cpu(e->udp_flow_rate, d->pub.cpus));
}

/* "web/tcp:80": how logs name a listener. */
static const char *listener_name(const struct ag_plan_listener *pl)
{
	return pl->key;
}

static uint64_t listener_new_flows(struct ag_daemon *d, uint32_t fpid)
{
	struct ag_traffic_stats ts = {0};

	if (!d->fp || d->fp->ops->listener_stats(d->fp, fpid, &ts))
		return 0;
	return ts.new_flows;
}

uint64_t ag_daemon__fail_open_flows(struct ag_daemon *d, uint32_t fpid)
{
	const struct ag_fail_open *fo = &d->fail_open[fpid];
	uint64_t now;

	if (!fo->on)
		return fo->new_flows;
	now = listener_new_flows(d, fpid);
	return fo->new_flows + (now > fo->base_new_flows ? now - fo->base_new_flows : 0);
}

/* After every publish: listeners that began or stopped failing open (logged, counted). */
static void note_fail_open(struct ag_daemon *d)
{
	uint32_t fpid;

	for (fpid = 0; fpid < AG_MAX_LISTENERS; fpid++) {
		const struct ag_plan_listener *pl = ag_plan__listener_by_fpid(d->plan, fpid);
		struct ag_fail_open *fo = &d->fail_open[fpid];
		bool on = pl && d->pub.fail_open[fpid];

		if (on == fo->on)
			continue;
		if (on) {
			fo->on = true;
			fo->since_ns = ag_now_ns();
			fo->base_new_flows = listener_new_flows(d, fpid);
			fo->episodes++;
			pr_warn("listener %s: every endpoint is down: failure_policy fail_open "
				"forwards its new flows anyway\n",
				listener_name(pl));
			continue;
		}
		fo->new_flows = ag_daemon__fail_open_flows(d, fpid);
		fo->on = false;
		if (pl)
			pr_info("listener %s: an endpoint is up again: no longer failing open "
				"(%llu new flows forwarded that way so far)\n",
				listener_name(pl), (unsigned long long)fo->new_flows);
	}
}

int ag_daemon__open_fastpath(struct ag_daemon *d)
{
	const struct ag_fastpath_ops *ops = ag_fastpath__ops(d->cfg->edge.fastpath);
	const struct ag_sink_ops *sink;
	void *ctx;
	int err;

	if (!ops)
		return -EINVAL;
	d->fp = ops->open(&d->cfg->edge);
	if (!d->fp)
		return -(errno ? errno : EIO);
	ops->sink(d->fp, &sink, &ctx);
	err =
	    ag_publisher__init(&d->pub, sink, ctx, d->cfg->edge.ring_size, d->cfg->edge.hash_seed);
	if (err) {
		pr_err("publisher: %s\n", strerror(-err));
		return err;
	}
	ag_publisher__set_cpus(&d->pub, d->fp->ops->cpus(d->fp));
	log_budgets(d);
	/* Tables before attach: the first packet already finds them. */
	err = ag_publisher__publish(&d->pub, d->plan, &d->view);
	if (err) {
		pr_err("publishing tables: %s\n", strerror(-err));
		return err;
	}
	ag_ids__commit(&d->ids, d->plan, ag_now_ns());
	note_fail_open(d);
	pr_info("published %u listeners, %u backends in %.3f ms (%llu slots written)\n",
		d->plan->n_listeners, d->plan->n_backends, d->pub.stats.last_duration_ns / 1e6,
		(unsigned long long)d->pub.stats.slots_written);
	log_plan(d);
	return ops->attach(d->fp, &d->cfg->edge);
}

void ag_daemon__release_fastpath(struct ag_daemon *d, bool failed)
{
	if (!d->fp)
		return;
	/*
	 * A clean exit removes the fast path, unless asked to keep it; a start
	 * that fails after adopting a running fast path leaves it forwarding as
	 * it found it.
	 */
	d->fp->ops->release(d->fp, d->keep_fastpath || (failed && d->fp->ops->adopted(d->fp)));
}

/* How often retired ids are looked at (their quarantine lasts minutes). */
#define AG_REAP_PERIOD_NS 1000000000ull

static int id_activity(void *ctx, enum ag_id_kind k, uint32_t id, uint64_t *activity)
{
	struct ag_daemon *d = ctx;
	struct ag_traffic_stats ts;
	int err = k == AG_ID_BACKEND ? d->fp->ops->backend_stats(d->fp, id, &ts)
				     : d->fp->ops->listener_stats(d->fp, id, &ts);

	*activity = ts.packets + ts.ret_packets;
	return err;
}

/* Free the retired ids nothing can name any more, and clear their backend entries. */
static void reap_ids(struct ag_daemon *d)
{
	uint32_t freed[AG_MAX_BACKENDS];
	uint64_t now = ag_now_ns();
	unsigned int n, i;
	int err;

	if (now < d->next_reap_ns)
		return;
	d->next_reap_ns = now + AG_REAP_PERIOD_NS;
	n = ag_ids__reap(&d->ids, now, ag_ids__quiet_ns(d->cfg), id_activity, d, freed);
	for (i = 0; i < n; i++) {
		err = ag_publisher__clear_backend(&d->pub, freed[i]);
		if (err)
			pr_err("clearing backend id %u: %s\n", freed[i], strerror(-err));
		else
			pr_debug("backend id %u is free: its endpoint left the config and "
				 "its flows have ended\n",
				 freed[i]);
	}
}

static void upkeep(struct ag_timer *t)
{
	struct ag_daemon *d = t->data;
	const struct ag_fastpath_ops *ops = d->fp->ops;
	unsigned int cpus = ops->cpus(d->fp);
	int err;

	/* 0: not known now (anygate-dp not running): the last count stays */
	if (cpus && ag_publisher__set_cpus(&d->pub, cpus)) {
		err = ag_publisher__publish_settings(&d->pub, d->cfg);
		if (err)
			pr_err("publishing the settings for %u CPUs: %s\n", cpus, strerror(-err));
		else
			log_budgets(d);
	}
	reap_ids(d);
	if (!ops->sweep)
		return;
	err = ops->sweep(d->fp);
	if (err && err != d->sweep_err)
		pr_err("sweeping the flow tables: %s (expired flows stay until it works again)\n",
		       strerror(-err));
	else if (!err && d->sweep_err)
		pr_info("sweeping the flow tables works again\n");
	d->sweep_err = err;
}

int ag_daemon__start_upkeep(struct ag_daemon *d)
{
	int err = ag_timer__init(&d->loop, &d->upkeep, upkeep, d);

	if (!err)
		err = ag_timer__arm(&d->upkeep, AG_SWEEP_PERIOD_NS, AG_SWEEP_PERIOD_NS);
	return err;
}

void ag_daemon__stop_upkeep(struct ag_daemon *d)
{
	ag_timer__fini(&d->loop, &d->upkeep);
}

void ag_daemon__fini(struct ag_daemon *d)
{
	ag_ids__fini(&d->ids);
	ag_publisher__fini(&d->pub);
	if (d->fp)
		d->fp->ops->close(d->fp);
	d->fp = NULL;
	ag_loop__fini(&d->loop);
	ag_view_state__free(&d->vs, d->plan);
	ag_plan__free(d->plan);
	d->plan = NULL;
	ag_config__free(d->cfg);
	d->cfg = NULL;
	ag_ovr_state__free(&d->ovr);
}

int ag_daemon__republish(struct ag_daemon *d, const char *why)
{
	int err = ag_publisher__publish_tables(&d->pub, d->plan, &d->view);

	if (err) {
		pr_err("publish (%s) failed: %s\n", why, strerror(-err));
		return err;
	}
	note_fail_open(d);
	pr_debug("published (%s) in %.3f ms, %llu slots written\n", why,
		 d->pub.stats.last_duration_ns / 1e6,
		 (unsigned long long)d->pub.stats.slots_written);
	return 0;
}

void ag_daemon__apply_overrides(struct ag_daemon *d)
{
	ag_overrides__apply(&d->ovr.cur, d->plan, &d->vs);
}

unsigned int ag_daemon__stale_overrides(const struct ag_daemon *d, bool log)
{
	unsigned int i, n = 0;

	for (i = 0; i < d->ovr.cur.n; i++) {
		const struct ag_override *ov = &d->ovr.cur.v[i];

		if (ag_ovr_sel__count(&ov->sel, d->plan))
			continue;
		n++;
		if (log)
			pr_warn("override %s %s matches nothing in the config now (kept; "
				"`anygatectl overrides clear %s` removes it)\n",
				ag_ovr_kind__name(ov->kind), ov->sel.text, ov->sel.text);
	}
	return n;
}

/* ------------------------------------------------------------------------ */
/* Reload                                                                   */

/* The config file as a reload takes it, or NULL with every problem in errs and the log. */
static struct ag_config *reload_config(struct ag_daemon *d, struct ag_errors *errs)
{
	unsigned int first = errs->count, i;
	struct ag_config *cfg;

	pr_info("reload: reading %s\n", d->config_path);
	cfg = ag_config__load(d->config_path, errs);
	if (!cfg && errs->count == first)
		ag_errors__add(errs, d->config_path, 0, NULL, "%s", strerror(errno));
	if (cfg && ag_config__check_restart_only(d->cfg, cfg, errs)) {
		ag_config__free(cfg);
		cfg = NULL;
	}
	if (!cfg) {
		for (i = first; i < errs->count; i++)
			pr_err("%s\n", errs->msgs[i]);
		pr_err("reload refused: %s has errors; running tables unchanged\n", d->config_path);
	}
	return cfg;
}

/* What a reload swaps as one: a config, its plan and the view made for that plan. */
struct generation {
	struct ag_config *cfg;
	struct ag_plan *plan;
	struct ag_view_state vs;
};

/* Exchange d's generation with g's (g then holds the one d had). */
static void swap_generation(struct ag_daemon *d, struct generation *g)
{
	struct generation had = {.cfg = d->cfg, .plan = d->plan, .vs = d->vs};

	d->cfg = g->cfg;
	d->plan = g->plan;
	d->vs = g->vs;
	*g = had;
	ag_view_state__bind(&d->vs, &d->view);
	d->pub.seed = d->cfg->edge.hash_seed;
}

static void generation_free(struct generation *g)
{
	ag_view_state__free(&g->vs, g->plan);
	ag_plan__free(g->plan);
	ag_config__free(g->cfg);
	memset(g, 0, sizeof(*g));
}

/* The new generation g laid out: its plan numbered by identity and its view. 0 or -errno. */
static int lay_out(struct ag_daemon *d, struct generation *g, struct ag_errors *errs)
{
	char why[256] = "";
	int err;

	g->plan = ag_plan__new(g->cfg);
	if (!g->plan || ag_view_state__init(&g->vs, g->plan)) {
		err = -(errno ? errno : ENOMEM);
		snprintf(why, sizeof(why), "%s", strerror(-err));
	} else {
		err = ag_ids__number(&d->ids, g->plan, why, sizeof(why));
	}
	if (err) {
		pr_err("reload refused: %s; running tables unchanged\n", why);
		ag_errors__add(errs, d->config_path, 0, NULL, "reload refused: %s", why);
	}
	return err;
}

/*
 * The plan in d is live: its ids are committed, listener ids new to the
 * fast path start their fail-open record afresh.
 */
static void commit_plan(struct ag_daemon *d)
{
	unsigned int l;

	for (l = 0; l < d->plan->n_listeners; l++) {
		uint32_t fpid = d->plan->listeners[l].fpid;

		if (d->ids.e[AG_ID_LISTENER][fpid].state == AG_ID_FREE)
			memset(&d->fail_open[fpid], 0, sizeof(d->fail_open[fpid]));
	}
	ag_ids__commit(&d->ids, d->plan, ag_now_ns());
	note_fail_open(d);
}

int ag_daemon__reload(struct ag_daemon *d, struct ag_errors *errs)
{
	struct generation g = {0};
	int err;

	g.cfg = reload_config(d, errs);
	if (!g.cfg) {
		d->reload_failures++;
		return -EINVAL;
	}
	err = lay_out(d, &g, errs);
	if (err) {
		generation_free(&g);
		d->reload_failures++;
		return err;
	}
	/* Swap in, publish; on failure swap the old generation back and republish it. */
	swap_generation(d, &g);
	ag_daemon__apply_overrides(d); /* the operator's overrides hold across reloads */
	ag_daemon__stale_overrides(d, true);
	err = d->on_replan ? d->on_replan(d) : 0;
	if (!err)
		err = ag_publisher__publish_reload(&d->pub, g.plan, d->plan, &d->view);
	if (err) {
		pr_err("reload: publish failed: %s; keeping the running config\n", strerror(-err));
		ag_errors__add(errs, d->config_path, 0, NULL, "publish failed: %s", strerror(-err));
		swap_generation(d, &g);
		if (d->on_replan)
			d->on_replan(d);
		/* Listeners switched before the failure go back to the running tables. */
		if (ag_publisher__publish_reload(&d->pub, g.plan, d->plan, &d->view))
			pr_err("reload: republishing the running config failed too\n");
		generation_free(&g);
		d->reload_failures++;
		return err;
	}
	commit_plan(d);
	generation_free(&g);
	d->reloads++;
	pr_info("reload: published %u listeners, %u backends in %.3f ms (%llu slots written); "
		"ids held by removed items: %u listeners, %u groups, %u backends\n",
		d->plan->n_listeners, d->plan->n_backends, d->pub.stats.last_duration_ns / 1e6,
		(unsigned long long)d->pub.stats.slots_written,
		ag_ids__count(&d->ids, AG_ID_LISTENER, AG_ID_RETIRED),
		ag_ids__count(&d->ids, AG_ID_GROUP, AG_ID_RETIRED),
		ag_ids__count(&d->ids, AG_ID_BACKEND, AG_ID_RETIRED));
	log_plan(d);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Flows                                                                    */

void ag_daemon__tally_flow(void *ctx, const struct ag_flow_key *k, const struct ag_flow *f,
			   bool live, uint64_t idle_ns)
{
	struct ag_flow_tally *t = ctx;
	const struct ag_plan_backend *pb = ag_plan__backend_by_fpid(t->plan, f->backend_id);

	t->entries++;
	if (live && pb && pb->addr == f->backend_addr.v4)
		t->per_backend[pb->id]++;
}

int ag_daemon__active_flows(struct ag_daemon *d, uint64_t *per_backend, uint64_t *entries)
{
	struct ag_flow_tally t = {.plan = d->plan, .per_backend = per_backend};
	int err;

	memset(per_backend, 0, (size_t)d->plan->n_backends * sizeof(*per_backend));
	err = d->fp->ops->walk_flows(d->fp, ag_daemon__tally_flow, &t);
	if (entries)
		*entries = t.entries;
	return err;
}
