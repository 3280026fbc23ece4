/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated's operator commands (docs/control.md): the command table served on
 * the control socket, and the runtime overrides behind the commands that
 * change state (set weight, set dial, drain, region fail ...).
 *
 * A change goes: new override list -> saved to edge.state_file (atomically;
 * if that fails nothing changes) -> applied to the view -> tables published
 * (if that fails the old list comes back). With --dry-run it stops after
 * computing what the tables would become; with --confirm-within it also
 * remembers the list before it and a timer rolls back to it unless `confirm`
 * arrives in time. The rollback point is saved too, so a restart in between
 * still rolls back.
 *
 * Every handler runs on the event loop. Reading tables and counters is plain
 * memory or a few syscalls; walking the flow table (endpoints, flows) is
 * O(flows), so it is streamed: a slice of the table per event-loop turn, as
 * the client reads the reply, so that probes and other clients go on.
 */
#include "commands.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "abi.h"
#include "config.h"
#include "ctl.h"
#include "daemon.h"
#include "fastpath.h"
#include "flow.h"
#include "log.h"
#include "overrides.h"
#include "plan.h"
#include "probe.h"
#include "publish.h"

#define FLOWS_LIMIT_DEFAULT 100
#define FLOWS_LIMIT_MAX	    100000 /* rows of one reply (about 200 bytes each) */
#define CONFIRM_MAX_S	    86400

/* The overrides themselves are the daemon's (d->ovr): a reload applies them too. */
struct ag_cmds {
	struct ag_daemon *d;
	struct ag_timer confirm;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC of the rollback, when pending */
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double round2(double v)
{
	return round(v * 100.0) / 100.0;
}

static double ms(uint64_t ns)
{
	return round(ns / 1e4) / 100.0;
}

static void fmt_addr(uint32_t addr, char *buf)
{
	inet_ntop(AF_INET, &addr, buf, INET_ADDRSTRLEN);
}

static void fmt_time(int64_t s, char *buf, size_t len)
{
	time_t t = (time_t)s;
	struct tm tm;

	if (!s || !gmtime_r(&t, &tm))
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *proto_name(uint8_t proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

/* "web/tcp:80": how logs and tables name a listener. */
static void listener_label(const struct ag_plan *plan, uint32_t lid, char *buf, size_t len)
{
	const struct ag_plan_listener *pl = &plan->listeners[lid];

	snprintf(buf, len, "%s/%s:%u", pl->accel->name, proto_name(pl->cfg->proto),
		 pl->cfg->ranges[0].first);
}

/* A growing string for joined lists; on allocation failure it stays what it was. */
struct strbuf {
	char *s;
	size_t len, cap;
};

static void sb_add(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *s = realloc(b->s, cap);

		if (!s)
			return;
		b->s = s;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += n;
}

static const char *sb_str(const struct strbuf *b)
{
	return b->s ? b->s : "";
}

/* Every collected config problem, one a line, after a heading. */
static char *errors_text(const char *heading, const struct ag_errors *errs, unsigned int first)
{
	struct strbuf b = {0};
	unsigned int i;

	sb_add(&b, "%s", heading);
	for (i = first; i < errs->count; i++)
		sb_add(&b, "\n%s", errs->msgs[i]);
	return b.s;
}

/* ------------------------------------------------------------------------ */
/* Reading the fast path: live tables, flows                                */

/* Entries of listener lid's live lookup slot per backend (counts: n_backends, plan ids). */
static void live_counts(struct ag_daemon *d, uint32_t lid, uint32_t *counts)
{
	const struct ag_listener_state *st =
	    d->pub.ops->lstate(d->pub.ctx, d->plan->listeners[lid].fpid);
	const uint32_t *t =
	    d->pub.ops->lookup_slot(d->pub.ctx, __atomic_load_n(&st->slot, __ATOMIC_ACQUIRE));
	const struct ag_plan_backend *pb;
	uint32_t i;

	for (i = 0; i < d->pub.ring_size; i++)
		if ((pb = ag_plan__backend_by_fpid(d->plan, t[i])))
			counts[pb->id]++;
}

/*
 * Right after a publish the spare slot of each listener still holds the table
 * it replaced: the entries that differ are the new flows that now land on
 * another backend.
 */
static uint64_t slots_moved(struct ag_daemon *d)
{
	uint64_t n = 0;
	uint32_t l, i;

	for (l = 0; l < d->plan->n_listeners; l++) {
		const struct ag_listener_state *st =
		    d->pub.ops->lstate(d->pub.ctx, d->plan->listeners[l].fpid);
		uint32_t live = __atomic_load_n(&st->slot, __ATOMIC_ACQUIRE);
		const uint32_t *now = d->pub.ops->lookup_slot(d->pub.ctx, live);
		const uint32_t *before = d->pub.ops->lookup_slot(d->pub.ctx, live ^ 1);

		for (i = 0; i < d->pub.ring_size; i++)
			n += now[i] != before[i];
	}
	return n;
}

/* ------------------------------------------------------------------------ */
/* Overrides: state, changes, confirm and rollback                          */

static void disarm(struct ag_cmds *c)
{
	struct itimerspec off = {{0, 0}, {0, 0}};

	c->deadline_ns = 0;
	if (c->confirm.ev.fd >= 0)
		timerfd_settime(c->confirm.ev.fd, 0, &off, NULL);
}

static void arm(struct ag_cmds *c)
{
	struct ag_ovr_state *st = &c->d->ovr;
	int64_t left = st->deadline_ms - wall_ms();

	if (left < 1)
		left = 1;
	c->deadline_ns = ag_now_ns() + (uint64_t)left * 1000000ull;
	ag_timer__arm(&c->confirm, (uint64_t)left * 1000000ull, 0);
}

/*
 * Make ns the state: saved first (when must_save, a failed save changes
 * nothing), then applied and published; a failed publish puts the old state
 * back. On success ns is consumed (moved into d->ovr).
 */
static int set_state(struct ag_cmds *c, struct ag_ovr_state *ns, const char *why, bool must_save,
		     char **err)
{
	struct ag_daemon *d = c->d;
	struct ag_ovr_state old;
	char msg[PATH_MAX + 128];
	int rc;

	rc = ag_ovr_state__save(ns, d->cfg->edge.state_file, msg, sizeof(msg));
	if (rc) {
		if (must_save)
			return ag_ctl__fail(err, AG_CTL_EINTERNAL,
					    "cannot save the overrides (%s): nothing changed", msg);
		pr_err("overrides: cannot save (%s); applying anyway\n", msg);
	}
	old = d->ovr;
	d->ovr = *ns;
	ag_daemon__apply_overrides(d);
	rc = ag_daemon__republish(d, why);
	if (rc) {
		d->ovr = old;
		ag_daemon__apply_overrides(d);
		ag_daemon__republish(d, "overrides restored after a failed publish");
		if (ag_ovr_state__save(&d->ovr, d->cfg->edge.state_file, msg, sizeof(msg)))
			pr_err("overrides: cannot save (%s)\n", msg);
		return ag_ctl__fail(err, AG_CTL_EINTERNAL,
				    "publishing the tables failed (%s): overrides unchanged",
				    strerror(-rc));
	}
	ag_ovr_state__free(&old);
	memset(ns, 0, sizeof(*ns));
	if (d->ovr.pending)
		arm(c);
	else
		disarm(c);
	return 0;
}

static void rollback(struct ag_cmds *c, const char *why)
{
	struct ag_ovr_state *st = &c->d->ovr;
	struct ag_ovr_state ns;
	char *err = NULL;

	ag_ovr_state__init(&ns);
	if (ag_overrides__copy(&ns.cur, &st->rollback)) {
		pr_err("confirm-within: out of memory rolling back; retrying in 1 s\n");
		st->deadline_ms = wall_ms() + 1000;
		arm(c);
		return;
	}
	pr_warn("confirm-within: %s: rolling back \"%s\" (%u overrides -> %u)\n", why, st->change,
		st->cur.n, ns.cur.n);
	if (set_state(c, &ns, "confirm-within rollback", false, &err)) {
		pr_err("confirm-within: rollback failed: %s; retrying in 1 s\n", err ? err : "?");
		free(err);
		ag_ovr_state__free(&ns);
		st->deadline_ms = wall_ms() + 1000;
		arm(c);
		return;
	}
	pr_warn("confirm-within: rolled back; %u overrides now\n", st->cur.n);
}

static void confirm_expired(struct ag_timer *t)
{
	struct ag_cmds *c = t->data;
	struct ag_ovr_state *st = &c->d->ovr;

	if (!st->pending)
		return;
	/* A timer that fired early (clock adjustments) waits for the wall deadline. */
	if (wall_ms() < st->deadline_ms) {
		arm(c);
		return;
	}
	rollback(c, "not confirmed in time");
}

/* Options of a changing command, around its positional arguments. */
struct change_opts {
	bool dry_run;
	unsigned int confirm_s; /* 0: none */
	int argc;
	char *argv[AG_CTL_MAX_WORDS];
};

static int parse_change_opts(struct ag_ctl_req *req, int min, int max, struct change_opts *o,
			     char **err)
{
	const char *name = req->cmd->words[1] ? req->cmd->words[1] : req->cmd->words[0];
	bool opts_done = false;
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < req->argc; i++) {
		const char *a = req->argv[i];

		if (!opts_done && !strcmp(a, "--")) {
			opts_done = true;
		} else if (!opts_done && !strcmp(a, "--dry-run")) {
			o->dry_run = true;
		} else if (!opts_done && !strcmp(a, "--confirm-within")) {
			char *end;
			long v;

			if (i + 1 >= req->argc)
				return ag_ctl__fail(err, AG_CTL_EUSAGE,
						    "--confirm-within needs SECONDS");
			errno = 0;
			v = strtol(req->argv[++i], &end, 10);
			if (errno || end == req->argv[i] || *end || v < 1 || v > CONFIRM_MAX_S)
				return ag_ctl__fail(err, AG_CTL_EINVALID,
						    "--confirm-within: must be 1-%d seconds (got "
						    "\"%.32s\")",
						    CONFIRM_MAX_S, req->argv[i]);
			o->confirm_s = v;
		} else if (!opts_done && a[0] == '-' && a[1] == '-') {
			return ag_ctl__fail(err, AG_CTL_EUSAGE,
					    "%s: unknown option %.32s (want --dry-run or "
					    "--confirm-within SECONDS)",
					    name, a);
		} else {
			o->argv[o->argc++] = req->argv[i];
		}
	}
	if (o->dry_run && o->confirm_s)
		return ag_ctl__fail(err, AG_CTL_EUSAGE,
				    "--dry-run applies nothing: it takes no --confirm-within");
	if (o->argc < min || o->argc > max) {
		char cname[64];

		const char *w1 = req->cmd->words[1];

		snprintf(cname, sizeof(cname), "%s%s%s", req->cmd->words[0], w1 ? " " : "",
			 w1 ? w1 : "");
		return ag_ctl__fail(err, AG_CTL_EUSAGE, "usage: %s %s", cname, req->cmd->args);
	}
	return 0;
}

/* The change as people read it: the command words and its arguments. */
static void change_text(const struct ag_ctl_req *req, const struct change_opts *o, char *buf,
			size_t len)
{
	char *args = ag_ctl__join(o->argc, o->argv);

	snprintf(buf, len, "%s%s%s%s%s", req->cmd->words[0], req->cmd->words[1] ? " " : "",
		 req->cmd->words[1] ? req->cmd->words[1] : "", o->argc ? " " : "",
		 args ? args : "");
	free(args);
}

/* A preview under construction: the view with the overrides to come, and its rows. */
struct preview {
	struct ag_daemon *d;
	struct ag_view_state tmp; /* override arrays of the view to come */
	struct ag_view nv;
	double *ob, *nbs, *og, *ngs; /* old and new shares per backend and per group */
	json_t *ls, *gs, *es;	     /* rows per listener, group, endpoint */
	uint64_t total;		     /* slots changed over every listener */
};

static void preview_free(struct preview *p)
{
	free(p->tmp.weight);
	free(p->tmp.drained);
	free(p->tmp.dial);
	free(p->tmp.drilled);
	free(p->ob);
	free(p->nbs);
	free(p->og);
	free(p->ngs);
	json_decref(p->ls);
	json_decref(p->gs);
	json_decref(p->es);
}

/* The view next would make: the running view, overrides replaced. 0 or -ENOMEM. */
static int preview_init(struct preview *p, struct ag_daemon *d, const struct ag_overrides *next)
{
	const struct ag_plan *plan = d->plan;
	unsigned int nb = plan->n_backends ? plan->n_backends : 1;
	unsigned int ng = plan->n_groups ? plan->n_groups : 1;

	memset(p, 0, sizeof(*p));
	p->d = d;
	p->tmp = d->vs;
	p->tmp.weight = calloc(nb, sizeof(*p->tmp.weight));
	p->tmp.drained = calloc(nb, sizeof(*p->tmp.drained));
	p->tmp.dial = calloc(ng, sizeof(*p->tmp.dial));
	p->tmp.drilled = calloc(ng, sizeof(*p->tmp.drilled));
	p->ob = calloc(nb, sizeof(*p->ob));
	p->nbs = calloc(nb, sizeof(*p->nbs));
	p->og = calloc(ng, sizeof(*p->og));
	p->ngs = calloc(ng, sizeof(*p->ngs));
	p->ls = json_array();
	p->gs = json_array();
	p->es = json_array();
	if (!p->tmp.weight || !p->tmp.drained || !p->tmp.dial || !p->tmp.drilled || !p->ob ||
	    !p->nbs || !p->og || !p->ngs || !p->ls || !p->gs || !p->es)
		return -ENOMEM;
	ag_overrides__apply(next, plan, &p->tmp);
	ag_view_state__bind(&p->tmp, &p->nv);
	return 0;
}

/* Listener l's rows: slots its table would change, old and new shares of its groups and endpoints.
 */
static int preview_listener(struct preview *p, uint32_t l)
{
	const struct ag_plan *plan = p->d->plan;
	const struct ag_plan_listener *pl = &plan->listeners[l];
	uint32_t ring = p->d->pub.ring_size;
	uint64_t moved = 0;
	unsigned int g, b;
	char name[96];
	int rc;

	listener_label(plan, l, name, sizeof(name));
	rc = ag_plan__compile(plan, l, &p->d->view, p->ob, p->og);
	if (!rc)
		rc = ag_plan__compile(plan, l, &p->nv, p->nbs, p->ngs);
	if (!rc)
		rc = ag_publisher__diff(&p->d->pub, plan, l, &p->nv, &moved);
	if (rc)
		return rc;
	p->total += moved;
	json_array_append_new(p->ls,
			      json_pack("{s:s, s:I, s:I, s:f}", "listener", name, "slots_changed",
					(json_int_t)moved, "slots", (json_int_t)ring, "changed_pct",
					round2(100.0 * moved / ring)));
	for (g = 0; g < pl->n_groups; g++) {
		const struct ag_plan_group *pg = &plan->groups[pl->first_group + g];

		json_array_append_new(p->gs, json_pack("{s:s, s:s, s:f, s:f}", "listener", name,
						       "region", pg->cfg->region, "old_pct",
						       round2(100.0 * p->og[pg->id]), "new_pct",
						       round2(100.0 * p->ngs[pg->id])));
		for (b = 0; b < pg->n_backends; b++) {
			const struct ag_plan_backend *pb = &plan->backends[pg->first_backend + b];
			char addr[INET_ADDRSTRLEN];

			fmt_addr(pb->addr, addr);
			json_array_append_new(
			    p->es, json_pack("{s:s, s:s, s:s, s:f, s:f}", "listener", name,
					     "region", pg->cfg->region, "address", addr, "old_pct",
					     round2(100.0 * p->ob[pb->id]), "new_pct",
					     round2(100.0 * p->nbs[pb->id])));
		}
	}
	return 0;
}

/* What `next` would do to the tables: per listener slots moved, old/new shares. */
static int preview(struct ag_cmds *c, const struct ag_overrides *next, const char *what,
		   json_t **data, char **err)
{
	struct preview p;
	uint32_t l;
	int rc;

	rc = preview_init(&p, c->d, next);
	for (l = 0; !rc && l < c->d->plan->n_listeners; l++)
		rc = preview_listener(&p, l);
	if (!rc) {
		*data =
		    json_pack("{s:b, s:s, s:I, s:i, s:o, s:o, s:o}", "dry_run", 1, "change", what,
			      "slots_changed", (json_int_t)p.total, "overrides", (int)next->n,
			      "listeners", p.ls, "groups", p.gs, "endpoints", p.es);
		p.ls = p.gs = p.es = NULL;
		rc = *data ? 0 : -ENOMEM;
	}
	preview_free(&p);
	if (rc)
		return ag_ctl__fail(err, AG_CTL_EINTERNAL, "%s: preview failed: %s", what,
				    strerror(-rc));
	return AG_CTL_OK;
}

/* Preview or apply `next` (consumed either way). */
static int change(struct ag_ctl_req *req, const struct change_opts *o, struct ag_overrides *next,
		  const char *what, unsigned int matched, json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	struct ag_cmds *c = d->cmds;
	struct ag_ovr_state ns;
	char at[32];
	int rc;

	if (o->dry_run) {
		rc = preview(c, next, what, data, err);
		ag_overrides__free(next);
		return rc;
	}
	ag_ovr_state__init(&ns);
	ns.cur = *next;
	memset(next, 0, sizeof(*next));
	if (d->ovr.pending) {
		/* Joins the unconfirmed change: one rollback undoes both. */
		if (ag_overrides__copy(&ns.rollback, &d->ovr.rollback))
			goto enomem;
		ns.pending = true;
		ns.deadline_ms =
		    o->confirm_s ? wall_ms() + o->confirm_s * 1000ll : d->ovr.deadline_ms;
		snprintf(ns.change, sizeof(ns.change), "%.240s; %.240s", d->ovr.change, what);
	} else if (o->confirm_s) {
		if (ag_overrides__copy(&ns.rollback, &d->ovr.cur))
			goto enomem;
		ns.pending = true;
		ns.deadline_ms = wall_ms() + o->confirm_s * 1000ll;
		snprintf(ns.change, sizeof(ns.change), "%s", what);
	}
	rc = set_state(c, &ns, what, true, err);
	if (rc) {
		ag_ovr_state__free(&ns);
		return rc;
	}
	if (d->ovr.pending)
		pr_warn("confirm-within: \"%s\" rolls back in %.0f s unless `anygatectl confirm`\n",
			d->ovr.change, (d->ovr.deadline_ms - wall_ms()) / 1000.0);
	fmt_time(d->ovr.pending ? d->ovr.deadline_ms / 1000 : 0, at, sizeof(at));
	*data = json_pack("{s:s, s:i, s:i, s:f, s:I, s:o, s:o}", "change", what, "matched",
			  (int)matched, "overrides", (int)d->ovr.cur.n, "publish_ms",
			  ms(d->pub.stats.last_duration_ns), "slots_changed",
			  (json_int_t)slots_moved(d), "confirm_by",
			  d->ovr.pending ? json_string(at) : json_null(), "pending_change",
			  d->ovr.pending ? json_string(d->ovr.change) : json_null());
	return AG_CTL_OK;
enomem:
	ag_ovr_state__free(&ns);
	return ag_ctl__fail(err, AG_CTL_EINTERNAL, "%s: out of memory", what);
}

/* The common path of set weight / set dial / drain / undrain / region fail / restore. */
static int set_override(struct ag_ctl_req *req, enum ag_ovr_kind kind, int flag_value,
			json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	bool endpoint = ag_ovr_kind__endpoint(kind),
	     flag = kind == AG_OVR_DRAIN || kind == AG_OVR_DRILL;
	struct ag_overrides next;
	struct change_opts o;
	struct ag_override ov;
	const char *problem;
	char what[AG_OVR_CHANGE_MAX], msg[160];
	unsigned int matched;
	int rc;

	rc = parse_change_opts(req, flag ? 1 : 2, flag ? 1 : 2, &o, err);
	if (rc)
		return rc;
	change_text(req, &o, what, sizeof(what));
	memset(&ov, 0, sizeof(ov));
	ov.kind = kind;
	if (ag_ovr_sel__parse(&ov.sel, o.argv[0], endpoint, &problem))
		return ag_ctl__fail(err, AG_CTL_EINVALID, "%s %.64s: %s",
				    endpoint ? "endpoint" : "group", o.argv[0], problem);
	if (flag) {
		ov.value = flag_value;
	} else if (ag_ovr__value(kind, o.argv[1], &ov.value, msg, sizeof(msg))) {
		return ag_ctl__fail(err, AG_CTL_EINVALID, "%s", msg);
	}
	matched = ag_ovr_sel__count(&ov.sel, d->plan);
	if (!matched)
		return ag_ctl__fail(err, AG_CTL_EINVALID, "no %s matches %s",
				    endpoint ? "endpoint" : "endpoint group", ov.sel.text);
	ov.set_at = wall_ms() / 1000;
	snprintf(ov.by, sizeof(ov.by), "uid %u pid %d", (unsigned int)req->uid, (int)req->pid);
	ag_overrides__init(&next);
	rc = ag_overrides__copy(&next, &d->ovr.cur);
	if (!rc)
		rc = ag_overrides__set(&next, &ov, d->plan);
	if (rc) {
		ag_overrides__free(&next);
		if (rc == -E2BIG)
			return ag_ctl__fail(err, AG_CTL_EINVALID,
					    "%u overrides already: clear some first", AG_OVR_MAX);
		return rc;
	}
	if (kind == AG_OVR_DRILL && !o.dry_run)
		pr_warn("DR drill: region %s %s on purpose by uid %u (%u endpoint groups)\n",
			ov.sel.text, flag_value ? "failed" : "restored", (unsigned int)req->uid,
			matched);
	return change(req, &o, &next, what, matched, data, err);
}

static int cmd_set_weight(struct ag_ctl_req *req, json_t **data, char **err)
{
	return set_override(req, AG_OVR_WEIGHT, 0, data, err);
}

static int cmd_set_dial(struct ag_ctl_req *req, json_t **data, char **err)
{
	return set_override(req, AG_OVR_DIAL, 0, data, err);
}

static int cmd_drain(struct ag_ctl_req *req, json_t **data, char **err)
{
	return set_override(req, AG_OVR_DRAIN, 1, data, err);
}

static int cmd_undrain(struct ag_ctl_req *req, json_t **data, char **err)
{
	return set_override(req, AG_OVR_DRAIN, 0, data, err);
}

static int cmd_region_fail(struct ag_ctl_req *req, json_t **data, char **err)
{
	return set_override(req, AG_OVR_DRILL, 1, data, err);
}

static int cmd_region_restore(struct ag_ctl_req *req, json_t **data, char **err)
{
	return set_override(req, AG_OVR_DRILL, 0, data, err);
}

/* A selector of either kind: an endpoint if it ends with an address, else a group. */
static int parse_any_sel(const char *text, struct ag_ovr_sel *sel, char **err)
{
	const char *problem, *p2;

	if (!ag_ovr_sel__parse(sel, text, true, &problem))
		return 0;
	if (!ag_ovr_sel__parse(sel, text, false, &p2))
		return 0;
	return ag_ctl__fail(err, AG_CTL_EINVALID,
			    "selector %.64s: want [ACCELERATOR/][REGION/]ADDRESS or "
			    "[ACCELERATOR/]REGION",
			    text);
}

static int cmd_overrides_clear(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	struct ag_overrides next;
	struct ag_ovr_sel sel;
	struct change_opts o;
	char what[AG_OVR_CHANGE_MAX];
	unsigned int removed;
	int rc;

	rc = parse_change_opts(req, 0, 1, &o, err);
	if (rc)
		return rc;
	change_text(req, &o, what, sizeof(what));
	if (o.argc && parse_any_sel(o.argv[0], &sel, err))
		return AG_CTL_EINVALID;
	ag_overrides__init(&next);
	if (ag_overrides__copy(&next, &d->ovr.cur))
		return -ENOMEM;
	removed = ag_overrides__clear(&next, o.argc ? &sel : NULL, d->plan);
	if (!removed) {
		ag_overrides__free(&next);
		if (o.argc)
			return ag_ctl__fail(err, AG_CTL_EINVALID, "no override matches %s",
					    sel.text);
		return ag_ctl__fail(err, AG_CTL_EINVALID, "no overrides to clear");
	}
	return change(req, &o, &next, what, removed, data, err);
}

static int cmd_confirm(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	struct ag_cmds *c = d->cmds;
	struct ag_ovr_state ns;
	char change_was[AG_OVR_CHANGE_MAX];
	int rc;

	if (!d->ovr.pending)
		return ag_ctl__fail(err, AG_CTL_EINVALID,
				    "nothing to confirm: no change made with --confirm-within is "
				    "pending");
	snprintf(change_was, sizeof(change_was), "%s", d->ovr.change);
	ag_ovr_state__init(&ns);
	if (ag_overrides__copy(&ns.cur, &d->ovr.cur))
		return -ENOMEM;
	rc = set_state(c, &ns, "confirm", true, err);
	if (rc) {
		ag_ovr_state__free(&ns);
		return rc;
	}
	pr_info("confirm-within: \"%s\" confirmed by uid %u\n", change_was, (unsigned int)req->uid);
	*data = json_pack("{s:s, s:i}", "confirmed", change_was, "overrides", (int)d->ovr.cur.n);
	return AG_CTL_OK;
}

static json_t *override_row(const struct ag_override *ov, unsigned int idx, unsigned int matches)
{
	char at[32];

	fmt_time(ov->set_at, at, sizeof(at));
	return json_pack("{s:i, s:s, s:s, s:o, s:i, s:s, s:s}", "index", (int)idx, "kind",
			 ag_ovr_kind__name(ov->kind), "selector", ov->sel.text, "value",
			 ov->kind == AG_OVR_DRAIN || ov->kind == AG_OVR_DRILL
			     ? json_boolean(ov->value)
			     : json_integer(ov->value),
			 "matches", (int)matches, "set_at", at, "by", ov->by);
}

static int cmd_overrides(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	json_t *arr = json_array();
	unsigned int i;

	(void)err;
	if (!arr)
		return -ENOMEM;
	for (i = 0; i < d->ovr.cur.n; i++)
		json_array_append_new(arr,
				      override_row(&d->ovr.cur.v[i], i + 1,
						   ag_overrides__matches(&d->ovr.cur, i, d->plan)));
	*data = arr;
	return AG_CTL_OK;
}

/* ------------------------------------------------------------------------ */
/* Read-only commands                                                       */

static unsigned int drills(const struct ag_daemon *d, struct strbuf *names)
{
	unsigned int g, n = 0;

	for (g = 0; g < d->plan->n_groups; g++) {
		const struct ag_plan_group *pg = &d->plan->groups[g];
		char name[2 * AG_NAME_MAX];
		bool seen = false;
		unsigned int h;

		if (!d->vs.drilled[g])
			continue;
		n++;
		snprintf(name, sizeof(name), "%s/%s",
			 d->plan->listeners[pg->listener_id].accel->name, pg->cfg->region);
		/* One name per accelerator and region, not per listener. */
		for (h = 0; h < g && !seen; h++) {
			const struct ag_plan_group *ph = &d->plan->groups[h];

			seen = d->vs.drilled[h] && !strcmp(ph->cfg->region, pg->cfg->region) &&
			       d->plan->listeners[ph->listener_id].accel ==
				   d->plan->listeners[pg->listener_id].accel;
		}
		if (!seen)
			sb_add(names, "%s%s", names->len ? ", " : "", name);
	}
	return n;
}

static int cmd_status(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	struct strbuf ifs = {0}, dr = {0};
	struct ag_ctl_stats cs;
	unsigned int i, up = 0, drained = 0;
	char pend[AG_OVR_CHANGE_MAX + 64];
	json_t *o;

	(void)err;
	for (i = 0; i < d->cfg->edge.n_ifaces; i++)
		sb_add(&ifs, "%s%s", i ? "," : "", d->cfg->edge.ifaces[i].name);
	for (i = 0; i < d->plan->n_backends; i++) {
		up += d->vs.up[i];
		drained += d->vs.drained[i];
	}
	drills(d, &dr);
	ag_ctl__stats(req->ctl, &cs);
	if (d->ovr.pending)
		snprintf(pend, sizeof(pend), "%s (rolls back in %.0f s unless confirmed)",
			 d->ovr.change, fmax(0.0, (d->ovr.deadline_ms - wall_ms()) / 1000.0));
	o = json_pack("{s:s, s:s, s:s, s:s, s:f, s:i, s:i, s:i, s:i}", "edge", d->cfg->edge.name,
		      "version", AG_VERSION, "config", d->config_path, "fast_path",
		      d->fp->ops->kind, "uptime_s",
		      round((ag_now_ns() - d->started_ns) / 1e7) / 100.0, "listeners",
		      (int)d->plan->n_listeners, "backends", (int)d->plan->n_backends,
		      "backends_up", (int)up, "backends_down", (int)(d->plan->n_backends - up));
	if (!o) {
		free(ifs.s);
		free(dr.s);
		return -ENOMEM;
	}
	json_object_set_new(o, "interfaces", json_string(sb_str(&ifs)));
	json_object_set_new(o, "publishes", json_integer(d->pub.stats.publishes));
	json_object_set_new(o, "last_publish_ms", json_real(ms(d->pub.stats.last_duration_ns)));
	json_object_set_new(o, "last_slots_written", json_integer(d->pub.stats.slots_written));
	json_object_set_new(o, "failovers", json_integer(d->last_change.count));
	json_object_set_new(o, "last_failover_ms",
			    d->last_change.count ? json_real(ms(d->last_change.published_ns -
								d->last_change.decided_ns))
						 : json_null());
	json_object_set_new(o, "reloads", json_integer(d->reloads));
	json_object_set_new(o, "reload_failures", json_integer(d->reload_failures));
	json_object_set_new(o, "overrides", json_integer(d->ovr.cur.n));
	json_object_set_new(o, "drained", json_integer(drained));
	json_object_set_new(o, "drill", dr.len ? json_string(sb_str(&dr)) : json_null());
	json_object_set_new(o, "confirm_pending", d->ovr.pending ? json_string(pend) : json_null());
	json_object_set_new(o, "control_clients", json_integer(cs.clients));
	free(ifs.s);
	free(dr.s);
	*data = o;
	return AG_CTL_OK;
}

static void fmt_ports(const struct ag_cfg_listener *l, struct strbuf *b)
{
	unsigned int r;

	for (r = 0; r < l->n_ranges; r++) {
		if (l->ranges[r].first == l->ranges[r].last)
			sb_add(b, "%s%u", r ? "," : "", l->ranges[r].first);
		else
			sb_add(b, "%s%u-%u", r ? "," : "", l->ranges[r].first, l->ranges[r].last);
	}
}

static int cmd_listeners(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	const struct ag_plan *plan = d->plan;
	json_t *arr = json_array();
	unsigned int l, i;

	(void)err;
	if (!arr)
		return -ENOMEM;
	for (l = 0; l < plan->n_listeners; l++) {
		const struct ag_plan_listener *pl = &plan->listeners[l];
		const struct ag_listener_state *st = d->pub.ops->lstate(d->pub.ctx, pl->fpid);
		struct strbuf vips = {0}, ports = {0}, order = {0};
		uint32_t ord[AG_MAX_GROUPS_PER_LISTENER];
		char name[96];
		bool drill = false;

		listener_label(plan, l, name, sizeof(name));
		for (i = 0; i < pl->accel->n_addrs; i++) {
			char a[INET_ADDRSTRLEN];

			fmt_addr(pl->accel->addrs[i], a);
			sb_add(&vips, "%s%s", i ? "," : "", a);
		}
		fmt_ports(pl->cfg, &ports);
		/* Visiting order with RTTs; dials and drills marked where they apply. */
		ag_plan__group_order(plan, l, &d->view, ord);
		for (i = 0; i < pl->n_groups; i++) {
			const struct ag_plan_group *pg = &plan->groups[ord[i]];
			uint64_t rtt = d->vs.group_rtt_ns[pg->id];
			uint8_t dial = ag_view__dial(&d->view, pg);

			sb_add(&order, "%s%s", i ? " > " : "", pg->cfg->region);
			if (rtt)
				sb_add(&order, " %.2fms", rtt / 1e6);
			else
				sb_add(&order, " ?ms");
			if (d->vs.drilled[pg->id]) {
				sb_add(&order, " [DRILL]");
				drill = true;
			} else if (dial != 100) {
				sb_add(&order, " [dial %u]", dial);
			}
		}
		json_array_append_new(
		    arr,
		    json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:i, s:b}", "id",
			      (int)pl->fpid, "listener", name, "accelerator", pl->accel->name,
			      "vips", sb_str(&vips), "proto", proto_name(pl->cfg->proto), "ports",
			      sb_str(&ports), "affinity",
			      pl->cfg->affinity == AG_AFFINITY_SOURCE_IP ? "source_ip" : "none",
			      "failure_policy",
			      pl->cfg->failure_policy == AG_FAIL_DROP ? "drop" : "open", "order",
			      sb_str(&order), "drill", drill, "generation",
			      (int)__atomic_load_n(&st->generation, __ATOMIC_ACQUIRE),
			      "failing_open", d->fail_open[pl->fpid].on));
		free(vips.s);
		free(ports.s);
		free(order.s);
	}
	*data = arr;
	return AG_CTL_OK;
}

/*
 * endpoints and flows walk the flow table a slice per event-loop turn, as the
 * client reads (ctl.h: streams). A slice of flows is at most this many rows
 * of about 250 bytes: well within a piece (AG_CTL_PIECE_MAX).
 */
#define WALK_SLICE	   256
#define ENDPOINT_ROWS_STEP 64 /* rows of endpoints per piece (about 400 bytes each) */

/* The plan a walk started with is still the one in use (a reload renumbers backends). */
static bool same_plan(const struct ag_daemon *d, const struct ag_plan *plan, uint64_t reloads)
{
	return d->plan == plan && d->reloads == reloads;
}

static json_t *endpoint_row(struct ag_daemon *d, unsigned int b, const uint32_t *counts,
			    const uint64_t *flows)
{
	const struct ag_plan *plan = d->plan;
	const struct ag_plan_backend *pb = &plan->backends[b];
	const struct ag_plan_group *pg = &plan->groups[pb->group_id];
	struct ag_traffic_stats ts = {0};
	char name[96], addr[INET_ADDRSTRLEN];
	struct strbuf ovr = {0};
	uint64_t srtt = d->prober ? ag_prober__srtt_ns(d->prober, pb->fpid) : 0;
	const char *reason = d->prober ? ag_prober__last_reason(d->prober, pb->fpid) : "";
	/* Down, but forwarded to anyway: its listener fails open. */
	bool fail_open = !d->vs.up[b] && d->fail_open[plan->listeners[pb->listener_id].fpid].on;
	json_t *row;

	listener_label(plan, pb->listener_id, name, sizeof(name));
	fmt_addr(pb->addr, addr);
	d->fp->ops->backend_stats(d->fp, pb->fpid, &ts);
	if (d->vs.weight[b] >= 0)
		sb_add(&ovr, "weight %d", d->vs.weight[b]);
	if (d->vs.drained[b])
		sb_add(&ovr, "%sdrained", ovr.len ? ", " : "");
	if (d->vs.dial[pg->id] >= 0)
		sb_add(&ovr, "%sdial %d", ovr.len ? ", " : "", d->vs.dial[pg->id]);
	if (d->vs.drilled[pg->id])
		sb_add(&ovr, "%sDRILL", ovr.len ? ", " : "");
	row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:i, s:i, s:f, s:o, s:I, s:I, s:s?}",
			"listener", name, "region", pg->cfg->region, "address", addr, "health",
			d->vs.up[b] ? "up"
			: fail_open ? "down (fail_open)"
				    : "down",
			"reason", reason, "rtt_ms", srtt ? json_real(ms(srtt)) : json_null(),
			"weight", pb->weight, "effective", ag_view__weight(&d->view, pb),
			"share_pct", round2(100.0 * counts[b] / d->pub.ring_size), "flows",
			flows ? json_integer(flows[b]) : json_null(), "packets",
			(json_int_t)ts.packets, "bytes", (json_int_t)ts.bytes, "override",
			ovr.len ? sb_str(&ovr) : NULL);
	free(ovr.s);
	return row;
}

/* endpoints: a walk counting live flows per backend, then the rows a few at a time. */
struct endpoints_stream {
	struct ag_ctl_stream s;
	struct ag_daemon *d;
	const struct ag_fastpath_ops *ops; /* closes the cursor, also after the fast path */
	struct ag_flow_cursor *cur;	   /* NULL once walked, or when flows cannot be walked */
	const struct ag_plan *plan;	   /* the plan the counts are for */
	uint64_t reloads;
	struct ag_flow_tally tally;
	bool walk_ok;
	bool opened;	  /* walked: the array of rows is under way */
	uint32_t *counts; /* live lookup-table entries per backend */
	bool has_sel;
	struct ag_ovr_sel sel;
	unsigned int next_b, shown;
};

static void endpoints_free(struct ag_ctl_stream *s)
{
	struct endpoints_stream *es = ag_container_of(s, struct endpoints_stream, s);

	es->ops->flow_cursor_close(es->cur);
	free(es->tally.per_backend);
	free(es->counts);
	free(es);
}

/* The walk's next slice; at its end the table shares, and the array opens. 1 or -errno. */
static int endpoints_walk(struct endpoints_stream *es)
{
	struct ag_daemon *d = es->d;
	unsigned int l;
	int rc =
	    es->cur ? es->ops->flow_cursor_step(es->cur, ag_daemon__tally_flow, &es->tally) : 0;

	if (rc > 0)
		return 1;
	if (rc < 0)
		pr_warn("endpoints: reading the flow table: %s\n", strerror(-rc));
	es->walk_ok = es->cur && !rc;
	es->ops->flow_cursor_close(es->cur);
	es->cur = NULL;
	for (l = 0; l < d->plan->n_listeners; l++)
		live_counts(d, l, es->counts);
	es->opened = true;
	return ag_ctl_stream__text(&es->s, "[", 1) ?: 1;
}

static int endpoints_next(struct ag_ctl_stream *s, char **err)
{
	struct endpoints_stream *es = ag_container_of(s, struct endpoints_stream, s);
	struct ag_daemon *d = es->d;
	const struct ag_plan *plan = d->plan;
	unsigned int n;
	int rc;

	if (!same_plan(d, es->plan, es->reloads)) {
		ag_ctl_stream__text(s, es->opened ? "]" : "null", es->opened ? 1 : 4);
		return ag_ctl__fail(err, AG_CTL_EBUSY,
				    "the configuration was reloaded during the walk; ask again");
	}
	if (!es->opened)
		return endpoints_walk(es);
	for (n = 0; es->next_b < plan->n_backends && n < ENDPOINT_ROWS_STEP; es->next_b++) {
		const struct ag_plan_backend *pb = &plan->backends[es->next_b];

		if (es->has_sel &&
		    (es->sel.endpoint
			 ? !ag_ovr_sel__match_backend(&es->sel, plan, pb)
			 : !ag_ovr_sel__match_group(&es->sel, plan, &plan->groups[pb->group_id])))
			continue;
		if (es->shown && ag_ctl_stream__text(s, ",", 1))
			return -ENOMEM;
		rc = ag_ctl_stream__json(s,
					 endpoint_row(d, es->next_b, es->counts,
						      es->walk_ok ? es->tally.per_backend : NULL));
		if (rc)
			return rc;
		es->shown++;
		n++;
	}
	if (es->next_b < plan->n_backends)
		return 1;
	return ag_ctl_stream__text(s, "]", 1);
}

static int cmd_endpoints(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	unsigned int nb = d->plan->n_backends ? d->plan->n_backends : 1;
	struct endpoints_stream *es;

	es = calloc(1, sizeof(*es));
	if (!es)
		return -ENOMEM;
	es->s.next = endpoints_next;
	es->s.free = endpoints_free;
	es->d = d;
	es->ops = d->fp->ops;
	es->plan = d->plan;
	es->reloads = d->reloads;
	es->tally.plan = d->plan;
	es->tally.per_backend = calloc(nb, sizeof(*es->tally.per_backend));
	es->counts = calloc(nb, sizeof(*es->counts));
	if (!es->tally.per_backend || !es->counts) {
		endpoints_free(&es->s);
		return -ENOMEM;
	}
	if (req->argc && parse_any_sel(req->argv[0], &es->sel, err)) {
		endpoints_free(&es->s);
		return AG_CTL_EINVALID;
	}
	es->has_sel = req->argc > 0;
	/* No cursor (anygate-dp keeps its flows): rows with "flows": null. */
	es->cur = d->fp->ops->flow_cursor_open(d->fp, WALK_SLICE);
	if (!es->cur && errno != EOPNOTSUPP)
		pr_warn("endpoints: reading the flow table: %s\n", strerror(errno));
	req->stream = &es->s;
	return AG_CTL_OK;
}

struct flow_list {
	struct ag_daemon *d;
	struct ag_ctl_stream *out;
	bool by_backend, by_client;
	uint32_t backend, client;
	unsigned long limit, shown;
	uint64_t count, expired;
	int err;
};

static void list_flow(void *ctx, const struct ag_flow_key *k, const struct ag_flow *f, bool live,
		      uint64_t idle)
{
	struct flow_list *fl = ctx;
	char c[INET_ADDRSTRLEN], v[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], cs[32], vs[32], bs[32];
	const struct ag_plan_listener *pl;
	char lname[96] = "-";
	json_t *row;

	if ((fl->by_backend && f->backend_addr.v4 != fl->backend) ||
	    (fl->by_client && k->saddr.v4 != fl->client))
		return;
	if (!live) {
		fl->expired++;
		return;
	}
	fl->count++;
	if (fl->err || fl->shown >= fl->limit)
		return;
	fmt_addr(k->saddr.v4, c);
	fmt_addr(k->daddr.v4, v);
	fmt_addr(f->backend_addr.v4, b);
	snprintf(cs, sizeof(cs), "%s:%u", c, ntohs(k->sport));
	snprintf(vs, sizeof(vs), "%s:%u", v, ntohs(k->dport));
	snprintf(bs, sizeof(bs), "%s:%u", b, ntohs(f->backend_port));
	pl = ag_plan__listener_by_fpid(fl->d->plan, f->listener_id);
	if (pl)
		listener_label(fl->d->plan, pl->id, lname, sizeof(lname));
	row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:f}", "client", cs, "vip", vs,
			"proto", proto_name(k->proto), "state",
			ag_flow_state__name(ag_flow__state(k->proto, f->tcp)), "listener", lname,
			"backend", bs, "nat_port", (int)ntohs(f->nat_port), "idle_s",
			round(idle / 1e8) / 10.0);
	if (fl->shown && ag_ctl_stream__text(fl->out, ",", 1))
		fl->err = -ENOMEM;
	else
		fl->err = ag_ctl_stream__json(fl->out, row);
	fl->shown += !fl->err;
}

/* flows: the rows as the walk finds them, then the counts the whole walk made. */
struct flows_stream {
	struct ag_ctl_stream s;
	const struct ag_fastpath_ops *ops; /* closes the cursor, also after the fast path */
	struct ag_flow_cursor *cur;
	struct flow_list fl;
	bool started;
};

static void flows_free(struct ag_ctl_stream *s)
{
	struct flows_stream *fs = ag_container_of(s, struct flows_stream, s);

	fs->ops->flow_cursor_close(fs->cur);
	free(fs);
}

static int flows_next(struct ag_ctl_stream *s, char **err)
{
	struct flows_stream *fs = ag_container_of(s, struct flows_stream, s);
	char tail[128];
	int rc, n;

	if (!fs->started) {
		fs->started = true;
		if (ag_ctl_stream__text(s, "{\"flows\":[", 10))
			return -ENOMEM;
	}
	rc = fs->ops->flow_cursor_step(fs->cur, list_flow, &fs->fl);
	if (rc >= 0 && fs->fl.err)
		rc = fs->fl.err;
	if (rc > 0)
		return 1;
	n = snprintf(tail, sizeof(tail),
		     "],\"count\":%" PRIu64 ",\"expired\":%" PRIu64 ",\"shown\":%lu}", fs->fl.count,
		     fs->fl.expired, fs->fl.shown);
	if (ag_ctl_stream__text(s, tail, n))
		return -ENOMEM;
	if (rc < 0)
		return ag_ctl__fail(err, AG_CTL_EINTERNAL, "reading the flow table: %s",
				    strerror(-rc));
	return 0;
}

static int parse_flows_args(struct ag_ctl_req *req, struct flow_list *fl, char **err)
{
	int i;

	for (i = 0; i < req->argc; i += 2) {
		const char *k = req->argv[i], *v = i + 1 < req->argc ? req->argv[i + 1] : NULL;
		struct in_addr a;

		if (!v || (strcmp(k, "backend") && strcmp(k, "client") && strcmp(k, "limit")))
			return ag_ctl__fail(err, AG_CTL_EUSAGE, "usage: flows %s", req->cmd->args);
		if (!strcmp(k, "limit")) {
			char *end;

			errno = 0;
			fl->limit = strtoul(v, &end, 10);
			if (errno || end == v || *end || v[0] == '-' || fl->limit < 1 ||
			    fl->limit > FLOWS_LIMIT_MAX)
				return ag_ctl__fail(err, AG_CTL_EINVALID,
						    "limit: must be 1-%d (got \"%.32s\")",
						    FLOWS_LIMIT_MAX, v);
			continue;
		}
		if (inet_pton(AF_INET, v, &a) != 1)
			return ag_ctl__fail(err, AG_CTL_EINVALID,
					    "%s: must be an IPv4 address (got \"%.64s\")", k, v);
		if (!strcmp(k, "backend")) {
			fl->by_backend = true;
			fl->backend = a.s_addr;
		} else {
			fl->by_client = true;
			fl->client = a.s_addr;
		}
	}
	return 0;
}

static int cmd_flows(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	struct flows_stream *fs;
	int rc;

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->s.next = flows_next;
	fs->s.free = flows_free;
	fs->ops = d->fp->ops;
	fs->fl.d = d;
	fs->fl.out = &fs->s;
	fs->fl.limit = FLOWS_LIMIT_DEFAULT;
	rc = parse_flows_args(req, &fs->fl, err);
	if (!rc) {
		fs->cur = d->fp->ops->flow_cursor_open(d->fp, WALK_SLICE);
		if (!fs->cur)
			rc = ag_ctl__fail(err, AG_CTL_EINTERNAL, "reading the flow table: %s",
					  strerror(errno));
	}
	if (rc) {
		flows_free(&fs->s);
		return rc;
	}
	req->stream = &fs->s;
	return AG_CTL_OK;
}

/*
 * The flow table into o: its fill and, where anygated sweeps it, what the
 * sweeper removed by flow state. Entries: as the sweeper last counted them,
 * else as the fast path reports them. 0 or -ENOMEM.
 */
static int stats_flow_table(struct ag_daemon *d, json_t *o)
{
	uint64_t max = d->cfg->edge.max_flows, n = 0;
	struct ag_reclaim_stats rs;
	json_t *states;
	bool swept;
	long e;
	int i;

	swept = !d->fp->ops->reclaim_stats(d->fp, &rs) && rs.passes;
	if (swept) {
		n = rs.flows;
	} else {
		e = d->fp->ops->flow_entries(d->fp);
		n = e > 0 ? (uint64_t)e : 0;
	}
	json_object_set_new(o, "flow_entries", json_integer((json_int_t)n));
	json_object_set_new(o, "flow_max_entries", json_integer((json_int_t)max));
	json_object_set_new(o, "flow_fill_pct", json_real(round(1000.0 * n / max) / 10.0));
	if (!swept)
		return 0;
	json_object_set_new(o, "nat_rev_entries", json_integer((json_int_t)rs.nat_revs));
	json_object_set_new(o, "table_pressure", json_boolean(rs.pressure));
	json_object_set_new(o, "sweeps", json_integer((json_int_t)rs.passes));
	json_object_set_new(o, "last_sweep_ms", json_real(ms(rs.last_pass_ns)));
	json_object_set_new(o, "nat_orphans_removed", json_integer((json_int_t)rs.orphans));
	states = json_array();
	if (!states)
		return -ENOMEM;
	for (i = 0; i < AG_FLOW_STATE__MAX; i++)
		json_array_append_new(states,
				      json_pack("{s:s, s:I, s:I}", "state", ag_flow_state__name(i),
						"expired", (json_int_t)rs.expired[i], "evicted",
						(json_int_t)rs.evicted[i]));
	return json_object_set_new(o, "flows_removed", states) ? -ENOMEM : 0;
}

/* The control socket's own counters (docs/control.md): every refusal and close. */
static json_t *control_stats(const struct ag_ctl *ctl)
{
	struct ag_ctl_stats cs;

	ag_ctl__stats(ctl, &cs);
	return json_pack(
	    "{s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I}",
	    "clients", (int)cs.clients, "admins", (int)cs.admins, "streams", (int)cs.streams,
	    "accepted", (json_int_t)cs.accepted, "refused_busy", (json_int_t)cs.refused_busy,
	    "refused_admin_slots", (json_int_t)cs.refused_admin_slots, "refused_uid",
	    (json_int_t)cs.refused_uid, "requests", (json_int_t)cs.requests, "errors",
	    (json_int_t)cs.errors, "denied", (json_int_t)cs.denied, "replies_too_big",
	    (json_int_t)cs.replies_too_big, "replies_no_room", (json_int_t)cs.replies_no_room,
	    "streams_failed", (json_int_t)cs.streams_failed, "stream_waits",
	    (json_int_t)cs.stream_waits, "closed_idle", (json_int_t)cs.closed_idle,
	    "closed_long_line", (json_int_t)cs.closed_long_line, "queued_bytes",
	    (json_int_t)cs.queued, "queued_peak_bytes", (json_int_t)cs.queued_peak);
}

static int cmd_stats(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	json_t *reasons = json_array(), *ls = json_array();
	unsigned int r, l;

	(void)err;
	*data = NULL;
	if (!reasons || !ls)
		goto enomem;
	for (r = 0; r < AG_R__MAX; r++) {
		struct ag_reason_stats rs = {0};

		d->fp->ops->reason_stats(d->fp, r, &rs);
		json_array_append_new(
		    reasons, json_pack("{s:s, s:s, s:I, s:I}", "reason", ag_reason__name(r),
				       "action", ag_reason__action(r), "packets",
				       (json_int_t)rs.packets, "bytes", (json_int_t)rs.bytes));
	}
	for (l = 0; l < d->plan->n_listeners; l++) {
		struct ag_traffic_stats ts = {0};
		char name[96];

		uint32_t fpid = d->plan->listeners[l].fpid;

		listener_label(d->plan, l, name, sizeof(name));
		d->fp->ops->listener_stats(d->fp, fpid, &ts);
		json_array_append_new(
		    ls, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:I, s:I}", "listener", name,
				  "packets", (json_int_t)ts.packets, "bytes", (json_int_t)ts.bytes,
				  "new_flows", (json_int_t)ts.new_flows, "ret_packets",
				  (json_int_t)ts.ret_packets, "ret_bytes", (json_int_t)ts.ret_bytes,
				  "failing_open", d->fail_open[fpid].on, "fail_open_new_flows",
				  (json_int_t)ag_daemon__fail_open_flows(d, fpid),
				  "fail_open_episodes", (json_int_t)d->fail_open[fpid].episodes));
	}
	*data = json_object();
	if (!*data || stats_flow_table(d, *data))
		goto enomem;
	/* each call takes its reference, also when it fails */
	if (json_object_set_new(*data, "reasons", reasons) |
	    json_object_set_new(*data, "listeners", ls) |
	    json_object_set_new(*data, "control", control_stats(req->ctl))) {
		json_decref(*data);
		*data = NULL;
		return -ENOMEM;
	}
	return AG_CTL_OK;
enomem:
	json_decref(*data);
	*data = NULL;
	json_decref(reasons);
	json_decref(ls);
	return -ENOMEM;
}

static int cmd_reload(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	struct ag_errors errs;
	int rc;

	ag_errors__init(&errs);
	rc = ag_daemon__reload(d, &errs);
	if (rc) {
		char *text = errors_text("reload refused; the running config and tables are "
					 "unchanged:",
					 &errs, 0);

		ag_errors__free(&errs);
		if (!text)
			return rc;
		free(*err);
		*err = text;
		return AG_CTL_EINVALID;
	}
	ag_errors__free(&errs);
	*data =
	    json_pack("{s:s, s:i, s:i, s:f, s:I, s:i, s:i}", "reloaded", d->config_path,
		      "listeners", (int)d->plan->n_listeners, "backends", (int)d->plan->n_backends,
		      "publish_ms", ms(d->pub.stats.last_duration_ns), "slots_written",
		      (json_int_t)d->pub.stats.slots_written, "overrides", (int)d->ovr.cur.n,
		      "overrides_matching_nothing", (int)ag_daemon__stale_overrides(d, false));
	return AG_CTL_OK;
}

/*
 * check FILE refuses what is not a regular file before anything opens it:
 * open() of a FIFO blocks the loop until a writer comes, of a device may act
 * on it. Links are followed without opening anything (realpath); the loader
 * then opens with O_NONBLOCK and looks again (ag_cfg__read_text), so a file
 * swapped in meanwhile cannot block either.
 */
static int check_regular(const char *path, char **err)
{
	char real[PATH_MAX];
	struct stat st;

	/* Missing or out of reach: the loader says so, and fails without blocking. */
	if (!realpath(path, real) || lstat(real, &st) || S_ISREG(st.st_mode))
		return 0;
	return ag_ctl__fail(err, AG_CTL_EINVALID, "%s: %s, not a regular file: not read", path,
			    ag_config__file_kind(st.st_mode));
}

static int cmd_check(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct ag_daemon *d = req->ctx;
	const char *path = req->argc ? req->argv[0] : d->config_path;
	struct ag_errors errs;
	struct ag_config *cfg;
	struct ag_plan *plan = NULL;
	unsigned int nl = 0, nb = 0;
	char why[256] = "";
	int rc;

	rc = check_regular(path, err);
	if (rc)
		return rc;
	ag_errors__init(&errs);
	cfg = ag_config__load(path, &errs);
	if (!cfg && !errs.count)
		ag_errors__add(&errs, path, 0, NULL, "%s", strerror(errno));
	if (cfg) {
		/* What a reload of this file would refuse beyond the validator. */
		ag_config__check_restart_only(d->cfg, cfg, &errs);
		plan = ag_plan__new(cfg);
		if (!plan)
			ag_errors__add(&errs, path, 0, NULL, "laying out: %s", strerror(errno));
		else if (ag_ids__number(&d->ids, plan, why, sizeof(why)))
			ag_errors__add(&errs, path, 0, NULL, "a reload would be refused: %s", why);
		else {
			nl = plan->n_listeners;
			nb = plan->n_backends;
		}
	}
	ag_plan__free(plan);
	ag_config__free(cfg);
	if (errs.count) {
		char head[PATH_MAX + 64];
		char *text;

		snprintf(head, sizeof(head), "%s: %u problem%s (as anygated reads it):", path,
			 errs.count, errs.count == 1 ? "" : "s");
		text = errors_text(head, &errs, 0);
		ag_errors__free(&errs);
		if (!text)
			return -ENOMEM;
		free(*err);
		*err = text;
		return AG_CTL_EINVALID;
	}
	ag_errors__free(&errs);
	*data = json_pack("{s:s, s:b, s:i, s:i}", "file", path, "ok", 1, "listeners", (int)nl,
			  "backends", (int)nb);
	return AG_CTL_OK;
}

/* ------------------------------------------------------------------------ */
/* The table                                                                */

#define CHANGE_ARGS(pos) pos " [--dry-run | --confirm-within SECONDS]"

static const struct ag_ctl_cmd daemon_cmds[] = {
    {{"status"},
     NULL,
     0,
     0,
     AG_CTL_READ,
     cmd_status,
     "edge, fast path, uptime, counts, publishes, failover and reload figures, overrides"},
    {{"listeners"},
     NULL,
     0,
     0,
     AG_CTL_READ,
     cmd_listeners,
     "listeners: VIPs, protocol, ports, affinity, region order with RTTs, drills"},
    {{"endpoints"},
     "[SELECTOR]",
     0,
     1,
     AG_CTL_READ,
     cmd_endpoints,
     "endpoints: health, RTT, weights, table share, active flows (walks the flow table)"},
    {{"set", "weight"},
     CHANGE_ARGS("ENDPOINT WEIGHT"),
     2,
     5,
     AG_CTL_ADMIN,
     cmd_set_weight,
     "override the weight (0-255) of [ACCELERATOR/][REGION/]ADDRESS"},
    {{"set", "dial"},
     CHANGE_ARGS("GROUP DIAL"),
     2,
     5,
     AG_CTL_ADMIN,
     cmd_set_dial,
     "override the traffic dial (0-100) of [ACCELERATOR/]REGION"},
    {{"drain"},
     CHANGE_ARGS("ENDPOINT"),
     1,
     4,
     AG_CTL_ADMIN,
     cmd_drain,
     "no new flows to an endpoint; its flows continue"},
    {{"undrain"}, CHANGE_ARGS("ENDPOINT"), 1, 4, AG_CTL_ADMIN, cmd_undrain, "end a drain"},
    {{"region", "fail"},
     CHANGE_ARGS("GROUP"),
     1,
     4,
     AG_CTL_ADMIN,
     cmd_region_fail,
     "DR drill: take a region out of service on purpose (new flows go elsewhere)"},
    {{"region", "restore"},
     CHANGE_ARGS("GROUP"),
     1,
     4,
     AG_CTL_ADMIN,
     cmd_region_restore,
     "end a DR drill"},
    {{"overrides"},
     NULL,
     0,
     0,
     AG_CTL_READ,
     cmd_overrides,
     "runtime overrides in force (kept in edge.state_file across restarts)"},
    {{"overrides", "clear"},
     CHANGE_ARGS("[SELECTOR]"),
     0,
     4,
     AG_CTL_ADMIN,
     cmd_overrides_clear,
     "remove the overrides touching SELECTOR, or all"},
    {{"confirm"},
     NULL,
     0,
     0,
     AG_CTL_ADMIN,
     cmd_confirm,
     "keep a change made with --confirm-within"},
    {{"flows"},
     "[backend ADDRESS] [client ADDRESS] [limit N]",
     0,
     6,
     AG_CTL_READ,
     cmd_flows,
     "active flows: count and list (walks the flow table)"},
    {{"stats"},
     NULL,
     0,
     0,
     AG_CTL_READ,
     cmd_stats,
     "packets passed and dropped by reason; traffic per listener"},
    {{"reload"},
     NULL,
     0,
     0,
     AG_CTL_ADMIN,
     cmd_reload,
     "re-read the config file (as SIGHUP); a bad file changes nothing"},
    {{"check"},
     "[FILE]",
     0,
     1,
     AG_CTL_ADMIN,
     cmd_check,
     "validate FILE (default: the running config's file) as anygated reads it"},
};

/* ------------------------------------------------------------------------ */
/* Life cycle                                                               */

/* d->ovr from edge.state_file; a bad file is set aside, and the daemon starts without it. */
static void load_state(struct ag_daemon *d)
{
	const char *path = d->cfg->edge.state_file;
	char msg[PATH_MAX + 256];
	unsigned int i;
	int rc;

	rc = ag_ovr_state__load(&d->ovr, path, msg, sizeof(msg));
	if (rc == -EINVAL) {
		char bad[PATH_MAX + 8];

		snprintf(bad, sizeof(bad), "%s.bad", path);
		if (rename(path, bad))
			pr_err("overrides: %s; starting with no overrides (and cannot keep the bad "
			       "file as %s: %s)\n",
			       msg, bad, strerror(errno));
		else
			pr_err("overrides: %s; starting with no overrides; the bad file is kept as "
			       "%s\n",
			       msg, bad);
	} else if (rc && rc != -ENOENT) {
		pr_err("overrides: %s; starting with no overrides\n", msg);
	}
	if (rc) {
		ag_ovr_state__init(&d->ovr);
		return;
	}
	pr_info("overrides: %u loaded from %s\n", d->ovr.cur.n, path);
	for (i = 0; i < d->ovr.cur.n; i++)
		pr_info("  override %s %s %d (set by %s)\n",
			ag_ovr_kind__name(d->ovr.cur.v[i].kind), d->ovr.cur.v[i].sel.text,
			d->ovr.cur.v[i].value, d->ovr.cur.v[i].by);
	ag_daemon__stale_overrides(d, true);
}

/* A change nobody confirmed before the restart: its deadline still holds. */
static void resume_pending(struct ag_cmds *c)
{
	struct ag_ovr_state *st = &c->d->ovr;
	char msg[PATH_MAX + 256];

	if (!st->pending)
		return;
	if (wall_ms() < st->deadline_ms) {
		pr_warn("confirm-within: \"%s\" still rolls back in %.0f s unless confirmed\n",
			st->change, (st->deadline_ms - wall_ms()) / 1000.0);
		arm(c);
		return;
	}
	pr_warn("confirm-within: \"%s\" was not confirmed before its deadline: rolled back at "
		"start\n",
		st->change);
	ag_overrides__free(&st->cur);
	st->cur = st->rollback;
	memset(&st->rollback, 0, sizeof(st->rollback));
	st->pending = false;
	if (ag_ovr_state__save(st, c->d->cfg->edge.state_file, msg, sizeof(msg)))
		pr_err("overrides: cannot save (%s)\n", msg);
}

int ag_cmds__init(struct ag_daemon *d)
{
	struct ag_cmds *c;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->d = d;
	c->confirm.ev.fd = -1;
	rc = ag_timer__init(&d->loop, &c->confirm, confirm_expired, c);
	if (rc) {
		free(c);
		return rc;
	}
	d->cmds = c;
	load_state(d);
	resume_pending(c);
	ag_daemon__apply_overrides(d);
	return 0;
}

int ag_cmds__start(struct ag_daemon *d)
{
	struct ag_ctl_opts opts = {
	    .path = d->cfg->edge.control_socket,
	    .version = AG_VERSION,
	    .sock_gid = d->cfg->edge.control_gid,
	    .admin_gid = d->cfg->edge.admin_gid,
	    .cmds = daemon_cmds,
	    .n_cmds = sizeof(daemon_cmds) / sizeof(daemon_cmds[0]),
	    .ctx = d,
	};

	d->ctl = ag_ctl__new(&d->loop, &opts);
	return d->ctl ? 0 : -errno;
}

void ag_cmds__free(struct ag_daemon *d)
{
	struct ag_cmds *c = d->cmds;

	ag_ctl__free(d->ctl);
	d->ctl = NULL;
	if (!c)
		return;
	ag_timer__fini(&d->loop, &c->confirm);
	free(c);
	d->cmds = NULL;
}
