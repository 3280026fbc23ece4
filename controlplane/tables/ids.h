/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fast path's ids of listeners, endpoint groups and backends (plan.h's
 * fpid), given by identity (plan.h's keys) and kept across reloads:
 * - a listener, group or endpoint that stays keeps its id, whatever moved
 *   around it in the file (so an old lookup table and a new one agree on what
 *   every id means: a reload never rewrites a live id's backend);
 * - a new one takes the lowest free id;
 * - the id of one that left is retired: its backend entry stays as it was
 *   (its flows keep their target, and their RST or re-steer when it is down)
 *   and nobody else gets it until nothing in the fast path can name it:
 *     backend   its traffic counters have not moved for quiet_ns, the longest
 *               flow idle timeout: every flow pinned to it has expired or moved;
 *     listener  the same, on its listener counters;
 *     group     no live or retired backend belongs to it.
 *   An endpoint that comes back while retired gets its id back.
 * Fresh ids (anygated's start) number the plan in config order, as
 * ag_plan__new does. Pure bookkeeping: counters are read through a callback.
 */
#ifndef AG_IDS_H
#define AG_IDS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "plan.h"

enum ag_id_kind { AG_ID_LISTENER = 0, AG_ID_GROUP = 1, AG_ID_BACKEND = 2, AG_ID__KINDS };

enum ag_id_state {
	AG_ID_FREE = 0,
	AG_ID_LIVE = 1,	   /* named by the running plan */
	AG_ID_RETIRED = 2, /* left the plan; held until nothing can name it */
};

struct ag_id_entry {
	char key[AG_PLAN_KEY_MAX]; /* identity; "" when free */
	uint8_t state;		   /* enum ag_id_state */
	uint32_t parent;	   /* fpid of a backend's group, of a group's listener */
	uint64_t activity;	   /* retired: counters when last read */
	uint64_t quiet_since_ns;   /* retired: when they last moved (or it retired) */
};

struct ag_ids {
	struct ag_id_entry *e[AG_ID__KINDS]; /* ag_ids__cap(kind) entries each */
};

/* Ids of a kind the fast path has: AG_MAX_LISTENERS, AG_MAX_GROUPS, AG_MAX_BACKENDS. */
uint32_t ag_ids__cap(enum ag_id_kind k);
const char *ag_id_kind__name(enum ag_id_kind k);

/* All free. 0 or -ENOMEM. */
int ag_ids__init(struct ag_ids *ids);
void ag_ids__fini(struct ag_ids *ids);

/*
 * Give every listener, group and backend of plan its fpid (and index them),
 * changing nothing in ids. 0; -ENOSPC when a kind has no free id left (the
 * rest are retired: why says which kind and how many); -EINVAL when two items
 * of plan have one identity; -ENOMEM. On error plan's fpids are unusable.
 */
int ag_ids__number(const struct ag_ids *ids, struct ag_plan *plan, char *why, size_t len);

/*
 * plan (numbered against ids) is live: its ids become LIVE with its keys,
 * ids live before that it does not name become RETIRED at now_ns.
 */
void ag_ids__commit(struct ag_ids *ids, const struct ag_plan *plan, uint64_t now_ns);

/* Traffic of id (packets both ways, any monotonic sum): 0, or -errno (then it is kept). */
typedef int (*ag_id_activity_fn)(void *ctx, enum ag_id_kind k, uint32_t id, uint64_t *activity);

/*
 * Free the retired ids that can no longer be named (see above) at now_ns.
 * Freed backend ids are written to freed (room for AG_MAX_BACKENDS) for the
 * caller to clear their entries; returns how many.
 */
unsigned int ag_ids__reap(struct ag_ids *ids, uint64_t now_ns, uint64_t quiet_ns,
			  ag_id_activity_fn fn, void *ctx, uint32_t *freed);

/* Ids of kind k in state s. */
unsigned int ag_ids__count(const struct ag_ids *ids, enum ag_id_kind k, enum ag_id_state s);

/*
 * How long a retired id's counters must stand still: the longest idle timeout
 * of a flow (TCP established, half-open, closing; UDP), plus the granularity
 * at which a flow's last_seen is refreshed.
 */
uint64_t ag_ids__quiet_ns(const struct ag_config *cfg);

#endif /* AG_IDS_H */
