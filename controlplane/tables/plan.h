/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The plan: a validated config laid out as the fast path numbers it
 * (listener ids, group ids, backend ids), plus the weight compiler that turns
 * (plan, health view) into each backend's share of a listener's new flows.
 * Both are pure functions: no I/O, no globals, so they are unit-tested whole
 * and every edge with the same config and view computes the same tables.
 */
#ifndef AG_PLAN_H
#define AG_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/*
 * Identity of a listener, group or backend across reloads (ids.h): what the
 * config names it by. Listener "web/tcp:80" (accelerator, protocol, first
 * port); group: its listener's, its region and a hash of its port overrides;
 * backend: its group's and its address. Unique within a validated config.
 */
#define AG_PLAN_KEY_MAX 192

/*
 * Two numberings. `id` is the position in the plan: it indexes the plan's
 * arrays and the view's. `fpid` is the id the fast path knows it by (ag_backends,
 * lookup entries, ag_lstate, ag_port_ovr, counters, flows): given by identity
 * (ids.h), so it survives reloads. ag_plan__new sets fpid = id.
 */
struct ag_plan_backend {
	uint32_t id;   /* index into plan->backends and the view's per-backend arrays */
	uint32_t fpid; /* index into ag_backends */
	uint32_t addr; /* network order */
	uint32_t group_id;
	uint32_t listener_id;
	uint8_t weight; /* configured, 0-255 */
	const struct ag_cfg_endpoint *cfg;
	const char *key;
};

struct ag_plan_group {
	uint32_t id;   /* index into plan->groups */
	uint32_t fpid; /* ag_port_ovr key, ag_backend.group_id */
	uint32_t listener_id;
	uint32_t first_backend; /* backends [first_backend, first_backend + n_backends) */
	unsigned int n_backends;
	const struct ag_cfg_group *cfg;
	const char *key;
};

struct ag_plan_listener {
	uint32_t id;	      /* index into plan->listeners */
	uint32_t fpid;	      /* index into ag_lstate; lookup slots 2 fpid, 2 fpid + 1 */
	uint32_t first_group; /* groups [first_group, first_group + n_groups), config order */
	unsigned int n_groups;
	const struct ag_cfg_accelerator *accel;
	const struct ag_cfg_listener *cfg;
	const char *key;
};

#define AG_PLAN_NO_ID UINT32_MAX

struct ag_plan {
	const struct ag_config *cfg;
	struct ag_plan_listener *listeners;
	unsigned int n_listeners;
	struct ag_plan_group *groups;
	unsigned int n_groups;
	struct ag_plan_backend *backends;
	unsigned int n_backends;
	char *keys; /* storage of every key, AG_PLAN_KEY_MAX each */
	/* fpid -> id, AG_PLAN_NO_ID where the plan has none (ag_plan__index_fpids) */
	uint32_t backend_at[AG_MAX_BACKENDS];
	uint32_t listener_at[AG_MAX_LISTENERS];
};

/* Lay a validated config out into ids. Returns NULL with errno on failure. */
struct ag_plan *ag_plan__new(const struct ag_config *cfg);
void ag_plan__free(struct ag_plan *plan);
/* Rebuild backend_at and listener_at after the fpids changed. */
void ag_plan__index_fpids(struct ag_plan *plan);
/* The plan's backend (listener) the fast path knows as fpid, or NULL. */
const struct ag_plan_backend *ag_plan__backend_by_fpid(const struct ag_plan *plan, uint32_t fpid);
const struct ag_plan_listener *ag_plan__listener_by_fpid(const struct ag_plan *plan, uint32_t fpid);

/*
 * What the control plane knows beyond the config: health, proximity and the
 * operator's runtime overrides. Every array may be NULL (nothing known or
 * overridden). Per backend id: `up` (health), `weight` (override, -1 none),
 * `drained` (no new flows). Per group id: `dial` (override, -1 none),
 * `drilled` (a region drill: the group takes nothing on purpose).
 * `group_order` lists, per listener, its groups' ids nearest first (NULL: the
 * operator's region_order if set, else config order).
 */
struct ag_view {
	const bool *up;
	const int16_t *weight;
	const bool *drained;
	const int16_t *dial;
	const bool *drilled;
	const uint32_t *const *group_order;
};

/* Effective configured weight and dial under the view's overrides. */
uint8_t ag_view__weight(const struct ag_view *view, const struct ag_plan_backend *b);
uint8_t ag_view__dial(const struct ag_view *view, const struct ag_plan_group *g);

/*
 * The weight compiler. For listener `lid`, writes each of its backends' share
 * of new flows into share[backend id] (shares sum to 1, or all are 0 when the
 * failure policy is drop and nothing can take traffic). Semantics:
 * - groups are visited nearest first; a group takes traffic_dial% of what
 *   reaches it, scaled down by its capacity = min(1, healthy weight share x
 *   listener overprovisioning factor); the rest spills to the next group;
 * - what is left after the last group is spread back over the groups that
 *   took traffic, in proportion to what they took;
 * - within a group, healthy endpoints share by weight (weight 0: nothing); a
 *   drained endpoint counts as weight 0, a drilled group as dial 0;
 * - nothing healthy anywhere: fail_open spreads over every weighted endpoint
 *   of the nearest group not drilled, whatever its health says (the
 *   publisher then forwards to them: ag_plan__fail_open), drop gives every
 *   share 0.
 * group_share (may be NULL) receives each group's share, indexed by group id.
 * Returns 0 or -EINVAL for an unknown listener.
 */
int ag_plan__compile(const struct ag_plan *plan, uint32_t lid, const struct ag_view *view,
		     double *share, double *group_share);

/*
 * Is listener `lid` failing open under `view`: nothing healthy anywhere, the
 * policy fail_open, and a group to spread over? Then its endpoints are
 * published as forwarding although health says down (ag_publisher).
 */
bool ag_plan__fail_open(const struct ag_plan *plan, uint32_t lid, const struct ag_view *view);

/* The groups of listener `lid` in visiting order (nearest first) under `view`. */
void ag_plan__group_order(const struct ag_plan *plan, uint32_t lid, const struct ag_view *view,
			  uint32_t *order);

#endif /* AG_PLAN_H */
