/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated's state and what changes it as a whole: the config, its plan, the
 * view (health, proximity, the operator's overrides), the fast path and the
 * publisher that writes the tables into it; a reload swaps config and plan
 * atomically. One thread: everything runs from the event loop.
 *
 * The parts on top (lifecycle.c composes them) use this state and never the
 * other way round: health.c (probes and proximity), commands.c (the control
 * socket; it changes d->ovr), metrics_src.c (Prometheus). What a reload must
 * tell a part goes through a hook the part sets (on_replan).
 */
#ifndef AG_DAEMON_H
#define AG_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ids.h"
#include "loop.h"
#include "overrides.h"
#include "plan.h"
#include "publish.h"
#include "view.h"

struct ag_fastpath;
struct ag_prober;
struct ag_health;
struct ag_ctl;
struct ag_cmds;
struct ag_metrics_src;

struct ag_failover_timing {
	uint64_t first_fail_ns; /* start of the first failed probe (downs only) */
	uint64_t decided_ns;	/* the probe result that changed a state */
	uint64_t published_ns;	/* the table switch that followed */
	uint64_t count;		/* state changes published */
};

/*
 * A listener failing open (every endpoint down, failure_policy fail_open),
 * per listener fpid: since when, and the new flows it forwarded that way
 * (its new-flow counter's growth while failing open).
 */
struct ag_fail_open {
	bool on;
	uint64_t since_ns;	 /* CLOCK_MONOTONIC, while on */
	uint64_t base_new_flows; /* the listener's new_flows when it began */
	uint64_t new_flows;	 /* over every episode that ended */
	uint64_t episodes;	 /* times it began */
};

struct ag_daemon {
	const char *config_path;
	struct ag_config *cfg;
	struct ag_plan *plan;
	struct ag_ids ids; /* the fast path's ids by identity (plan fpids), across reloads */
	uint64_t next_reap_ns;
	struct ag_fail_open fail_open[AG_MAX_LISTENERS];
	struct ag_view_state vs;
	struct ag_view view;	 /* points into vs */
	struct ag_ovr_state ovr; /* the operator's overrides, applied onto every plan */
	struct ag_fastpath *fp;	 /* NULL until ag_daemon__open_fastpath */
	struct ag_publisher pub;
	struct ag_loop loop;
	/*
	 * Set by a part that follows the plan beyond the view (health: its
	 * probe targets). A reload calls it once the new plan is in d, before
	 * publishing (an error refuses the reload), and again after putting
	 * the old plan back. NULL: nobody.
	 */
	int (*on_replan)(struct ag_daemon *d);
	struct ag_prober *prober;	/* health.c; NULL until probes run */
	struct ag_health *health;	/* health.c */
	struct ag_ctl *ctl;		/* commands.c: the control socket */
	struct ag_cmds *cmds;		/* commands.c: confirm-within timer */
	struct ag_metrics_src *metrics; /* metrics_src.c; NULL: metrics disabled */
	struct ag_timer upkeep;		/* every AG_SWEEP_PERIOD_NS: sweep, CPUs of the fast path */
	int sweep_err;			/* of the last sweep, logged when it changes */
	struct ag_failover_timing last_change;
	uint64_t started_ns;
	uint64_t reloads;
	uint64_t reload_failures;
	bool keep_fastpath; /* exit leaving the fast path in place (upgrade) */
};

/*
 * Load config_path into a fresh d (its problems reported on stderr as
 * file:line: key: problem). 0, or -EINVAL when it is not valid.
 */
int ag_daemon__init(struct ag_daemon *d, const char *config_path);
/* Lay the config out into a plan and its view; open the event loop. 0 or -errno (logged). */
int ag_daemon__prepare(struct ag_daemon *d);
/*
 * Open (or adopt) the fast path of edge.fastpath, publish the tables into it,
 * then let it forward. 0 or -errno (logged); ag_daemon__release_fastpath
 * undoes what was done either way.
 */
int ag_daemon__open_fastpath(struct ag_daemon *d);
/*
 * On the way out: keep the fast path forwarding when asked to
 * (d->keep_fastpath) or when a failed start had adopted a running one;
 * else remove it.
 */
void ag_daemon__release_fastpath(struct ag_daemon *d, bool failed);

/*
 * The fast path's upkeep, every AG_SWEEP_PERIOD_NS from the loop: its sweep
 * (XDP: anygated reclaims the flow tables) and the CPUs its budgets divide
 * over (anygate-dp reports them once it runs: the settings follow). 0 or
 * -errno; stop undoes start (and nothing when it did not start).
 */
int ag_daemon__start_upkeep(struct ag_daemon *d);
void ag_daemon__stop_upkeep(struct ag_daemon *d);
/* After the loop and every part have stopped. */
void ag_daemon__fini(struct ag_daemon *d);

/*
 * Re-read the config file: parse, validate, lay out, publish atomically. On any
 * error the running config and tables stay exactly as they were and every
 * problem ("file:line: key: problem") is appended to errs. 0 or -errno.
 */
int ag_daemon__reload(struct ag_daemon *d, struct ag_errors *errs);

/* Rebuild and publish every listener's table from the current view. */
int ag_daemon__republish(struct ag_daemon *d, const char *why);

/* Write d->ovr's overrides into the view (weights, dials, drains, drills). */
void ag_daemon__apply_overrides(struct ag_daemon *d);
/* Overrides that match nothing in the plan (a reload removed their endpoints). */
unsigned int ag_daemon__stale_overrides(const struct ag_daemon *d, bool log);

/*
 * Live flows per backend of the plan (per_backend: n_backends entries),
 * and all entries of the flow table: one walk of the fast path's flows.
 * 0, -EOPNOTSUPP (this fast path's flows cannot be walked: per_backend
 * stays 0), or -errno.
 */
int ag_daemon__active_flows(struct ag_daemon *d, uint64_t *per_backend, uint64_t *entries);

/*
 * New flows listener fpid forwarded while failing open, up to now (the running
 * episode included). 0 when the counters cannot be read.
 */
uint64_t ag_daemon__fail_open_flows(struct ag_daemon *d, uint32_t fpid);

struct ag_flow_key;
struct ag_flow;

/* The count behind ag_daemon__active_flows, for walks made a slice at a time. */
struct ag_flow_tally {
	const struct ag_plan *plan;
	uint64_t *per_backend; /* plan->n_backends entries, zeroed by the caller */
	uint64_t entries;
};

/* An ag_flow_fn: a live flow counts for the backend it is pinned to (id and address agree). */
void ag_daemon__tally_flow(void *ctx, const struct ag_flow_key *k, const struct ag_flow *f,
			   bool live, uint64_t idle_ns);

#endif /* AG_DAEMON_H */
