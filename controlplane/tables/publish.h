/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Table publisher: turns (plan, view) into the ABI tables of abi.h and writes
 * them into a sink (pinned BPF maps for XDP; a shared-memory segment for DPDK).
 * Lookup tables and listener state are plain memory in both sinks (mmap), so
 * the double-buffered write and the one-store switch live here, once.
 */
#ifndef AG_PUBLISH_H
#define AG_PUBLISH_H

#include <stdbool.h>
#include <stdint.h>

#include "abi.h"
#include "plan.h"

struct ag_sink_ops {
	int (*settings)(void *ctx, const struct ag_settings *s);
	/* Replace the whole set: entries not given are removed. */
	int (*vips)(void *ctx, const uint32_t *vips, unsigned int n);
	int (*listener_keys)(void *ctx, const struct ag_listener_key *keys, const uint32_t *ids,
			     unsigned int n);
	int (*port_overrides)(void *ctx, const struct ag_port_ovr_key *keys,
			      const struct ag_port_ovr *vals, unsigned int n);
	int (*backend)(void *ctx, uint32_t id, const struct ag_backend *b);
	/* Memory of lookup slot `slot` (ring_size entries) and of listener state `lid`. */
	uint32_t *(*lookup_slot)(void *ctx, uint32_t slot);
	struct ag_listener_state *(*lstate)(void *ctx, uint32_t lid);
};

struct ag_publish_stats {
	uint64_t publishes;	   /* completed publishes */
	uint64_t last_duration_ns; /* whole publish, last one */
	uint64_t slots_written;	   /* lookup entries written, last publish */
};

struct ag_publisher {
	const struct ag_sink_ops *ops;
	void *ctx;
	uint32_t ring_size;
	uint32_t seed;
	uint32_t *scratch; /* ring_size entries */
	struct ag_publish_stats stats;
	bool first; /* no publish yet: the first clears every backend id the plan does not name */
	/* CPUs (anygate-dp: forwarding lcores) the new-flow budgets divide over, >= 1 */
	unsigned int cpus;
	/* Keys the SYN challenge cookies: random per publisher, i.e. per anygated start. */
	uint64_t syn_auth_secret;
	/* Per listener id, as of the last publish: failing open (ag_plan__fail_open). */
	bool fail_open[AG_MAX_LISTENERS];
};

/* 0, or -errno (no memory, no randomness for the secret). */
int ag_publisher__init(struct ag_publisher *p, const struct ag_sink_ops *ops, void *ctx,
		       uint32_t ring_size, uint32_t seed);
void ag_publisher__fini(struct ag_publisher *p);

/*
 * The fast path's CPUs (or lcores) changed: true when that changes what the
 * settings say (then ag_publisher__publish_settings). 0 counts as 1.
 */
bool ag_publisher__set_cpus(struct ag_publisher *p, unsigned int cpus);

/*
 * A per-edge rate (per second) as each of cpus CPUs applies it: divided, and
 * rounded up so that a limit never becomes 0 (which means no limit).
 */
uint32_t ag_publish__per_cpu(uint32_t rate, unsigned int cpus);

/*
 * How recent a down backend's replies must be for its flows to be kept
 * (ag_settings.backend_alive_ns): the health checks' detection time, the
 * longest over all groups: interval_ms x unhealthy_threshold + timeout_ms.
 */
uint64_t ag_publish__backend_alive_ns(const struct ag_config *cfg);

/*
 * Settings for a config: abi version, seed, NAT, timeouts by flow state,
 * backend_alive_ns, and the edge's new-flow rates divided over cpus CPUs.
 */
void ag_publish__settings_from(const struct ag_config *cfg, unsigned int cpus,
			       uint64_t syn_auth_secret, struct ag_settings *s);

/* Only the settings (the CPUs changed): 0 or -errno. */
int ag_publisher__publish_settings(struct ag_publisher *p, const struct ag_config *cfg);

/* Settings, port overrides, VIPs and listener keys of plan alone. 0 or -errno. */
int ag_publisher__publish_config(struct ag_publisher *p, const struct ag_plan *plan);

/*
 * Backend states and every listener's lookup table, at the plan's fpids: what
 * a health change moves. Backends first (a new table never points at an
 * unset backend), then each table written into its spare slot (only entries
 * that differ) and switched with one store. Ids the plan does not name are
 * not touched (but see `first`).
 */
int ag_publisher__publish_tables(struct ag_publisher *p, const struct ag_plan *plan,
				 const struct ag_view *view);

/*
 * Publish plan, which replaces old (NULL: nothing, the first publish), in the
 * order that keeps every packet on one generation (docs/control.md):
 *   1. port overrides of both plans (new groups have fresh fpids);
 *   2. backends into their fpids: a kept id keeps its address and group, a
 *      new one was free (no table points at it);
 *   3. each listener's table, switched with one store;
 *   4. settings, VIPs and listener keys (a new listener is reachable only
 *      once its table is live);
 *   5. listeners the plan does not name deactivated.
 * Ids old had and plan has not are left as they are: the caller retires them
 * (ids.h) and clears their entries once nothing can name them. 0 or -errno;
 * on error the listeners not yet switched keep their live slots.
 */
int ag_publisher__publish_reload(struct ag_publisher *p, const struct ag_plan *old,
				 const struct ag_plan *plan, const struct ag_view *view);
/* ag_publisher__publish_reload with no old plan. */
int ag_publisher__publish(struct ag_publisher *p, const struct ag_plan *plan,
			  const struct ag_view *view);

/* Clear backend entry fpid (state UNUSED): a retired id nothing can name now. 0 or -errno. */
int ag_publisher__clear_backend(struct ag_publisher *p, uint32_t fpid);

/*
 * A preview: build listener `lid`'s table for (plan, view) as a publish would,
 * and count the entries that differ from its live slot, writing nothing.
 * (Uses the publisher's scratch table: not during a publish.) 0 or -errno.
 */
int ag_publisher__diff(struct ag_publisher *p, const struct ag_plan *plan, uint32_t lid,
		       const struct ag_view *view, uint64_t *changed);

/* Stable Maglev identity of a backend: its address and its group's region. */
uint32_t ag_publish__backend_key(const struct ag_plan *plan, const struct ag_plan_backend *b);

#endif /* AG_PUBLISH_H */
