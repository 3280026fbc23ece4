/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated's state, shared by its parts: lifecycle (anygated.c), health and
 * proximity (health.c), operator commands (commands.c), metrics. One thread:
 * everything runs from the event loop.
 */
#ifndef AG_DAEMON_H
#define AG_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "plan.h"
#include "publish.h"

struct ag_xdp;
struct ag_shm;
struct ag_fastpath_ops;
struct ag_prober;
struct ag_ctl;
struct ag_cmds;
struct ag_metrics_glue;

/* Per-plan arrays the view points into (indexed by backend / group / listener id). */
struct ag_view_state {
	bool *up;	 /* health, per backend */
	int16_t *weight; /* operator weight override, -1 none */
	bool *drained;
	int16_t *dial;		 /* operator dial override, per group, -1 none */
	bool *drilled;		 /* region drill, per group */
	uint64_t *group_rtt_ns;	 /* robust RTT of each group's healthy endpoints, 0 unknown */
	bool *group_pending;	 /* healthy endpoints, none measured yet: not ranked */
	uint64_t *fail_since_ns; /* per backend: start of the first failed probe of the
				  * current failure streak, 0 while probes succeed */
	uint32_t **group_order;	 /* per listener: its group ids nearest first */
	uint32_t **order_store;	 /* backing memory of group_order rows */
};

struct ag_failover_timing {
	uint64_t first_fail_ns; /* start of the first failed probe (downs only) */
	uint64_t decided_ns;	/* the probe result that changed a state */
	uint64_t published_ns;	/* the table switch that followed */
	uint64_t count;		/* state changes published */
};

struct ag_daemon {
	const char *config_path;
	struct ag_config *cfg;
	struct ag_plan *plan;
	struct ag_xdp *xdp; /* edge.fastpath = xdp */
	struct ag_shm *shm; /* edge.fastpath = dpdk: the table segment */
	const struct ag_fastpath_ops *fp_ops;
	void *fp; /* xdp or shm, for fp_ops */
	struct ag_publisher pub;
	struct ag_loop loop;
	struct ag_ev sig;
	struct ag_prober *prober;
	struct ag_ctl *ctl;
	struct ag_cmds *cmds; /* operator commands and overrides (commands.c) */
	struct ag_timer proximity_timer;
	struct ag_view_state vs;
	struct ag_view view; /* points into vs */
	struct ag_failover_timing last_change;
	uint64_t started_ns;
	uint64_t reloads;
	uint64_t reload_failures;
	struct ag_metrics_glue *metrics; /* NULL: metrics disabled */
	bool keep_fastpath;		 /* exit leaving XDP and maps in place (upgrade) */
};

/* Health and proximity (health.c). */
int ag_health__start(struct ag_daemon *d);
/* After a reload: new targets (state of unchanged targets kept). */
int ag_health__retarget(struct ag_daemon *d);
void ag_health__stop(struct ag_daemon *d);
/* Recompute group RTTs and orders; true when any order changed. */
bool ag_health__update_order(struct ag_daemon *d);

/* Prometheus endpoint on edge.metrics (metrics_src.c); "" disables. 0 or -errno. */
int ag_daemon__metrics_start(struct ag_daemon *d);
void ag_daemon__metrics_stop(struct ag_daemon *d);

/* View arrays sized for d->plan, all defaults (up, no override). */
int ag_view_state__init(struct ag_view_state *vs, const struct ag_plan *plan);
void ag_view_state__free(struct ag_view_state *vs, const struct ag_plan *plan);
void ag_daemon__bind_view(struct ag_daemon *d);

/*
 * Re-read the config file: parse, validate, lay out, publish atomically. On any
 * error the running config and tables stay exactly as they were and every
 * problem ("file:line: key: problem") is appended to errs. 0 or -errno.
 */
int ag_daemon__reload(struct ag_daemon *d, struct ag_errors *errs);

/* Rebuild and publish every listener's table from the current view. */
int ag_daemon__republish(struct ag_daemon *d, const char *why);

/*
 * Edge keys a reload cannot change (they need a restart): each one that
 * differs between old and new is added to errs as file:line: key: problem.
 */
int ag_daemon__check_reload_edge(const struct ag_cfg_edge *old, const struct ag_cfg_edge *new,
				 const char *path, struct ag_errors *errs);

/*
 * Operator commands (commands.c). init: load edge.state_file and apply its
 * overrides to d->vs (before the first publish; needs the loop). start: serve
 * the control socket. apply: re-apply the overrides to a new plan's d->vs (a
 * reload, before it publishes). free: after the loop has returned.
 */
int ag_cmds__init(struct ag_daemon *d);
int ag_cmds__start(struct ag_daemon *d);
void ag_cmds__apply(struct ag_daemon *d);
void ag_cmds__free(struct ag_daemon *d);

#endif /* AG_DAEMON_H */
