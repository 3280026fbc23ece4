/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Runtime overrides: what an operator changed through the control socket on
 * top of the config (an endpoint's weight, a group's traffic dial, a drained
 * endpoint, a region drill). They are kept by identity, never by id: plan ids
 * are renumbered by every reload, names and addresses are not.
 *
 *   endpoint selector  [ACCELERATOR/][REGION/]ADDRESS
 *                      ADDRESS alone: that address in every listener and group;
 *                      X/ADDRESS: X is an accelerator or a region name;
 *                      A/R/ADDRESS: both must match.
 *   group selector     [ACCELERATOR/]REGION: that region's group in every
 *                      listener (of that accelerator).
 *
 * A list of overrides is applied in order onto a view (a later one wins where
 * two match the same endpoint or group). It is saved as JSON, atomically, in
 * edge.state_file, so it survives a restart; a change applied with a deadline
 * ("confirm within") is saved with what it rolls back to.
 *
 * Everything here is pure (no daemon, no loop): unit-tested whole.
 */
#ifndef AG_OVERRIDES_H
#define AG_OVERRIDES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consts.h"
#include "plan.h"

struct ag_view_state;

#define AG_OVR_STATE_VERSION 1	  /* "anygate_state" of the state file */
#define AG_OVR_MAX	     4096 /* overrides kept at once: a state file, not a database */
#define AG_OVR_SEL_MAX	     (2 * AG_NAME_MAX + 20) /* "accelerator/region/a.b.c.d" and its NUL */
#define AG_OVR_BY_MAX	     64			    /* "uid 0 pid 1234" */
#define AG_OVR_CHANGE_MAX    512		    /* what an unconfirmed change did, for people */

enum ag_ovr_kind {
	AG_OVR_WEIGHT = 0, /* endpoint: weight 0-255 */
	AG_OVR_DRAIN = 1,  /* endpoint: 1 drained (no new flows), 0 not */
	AG_OVR_DIAL = 2,   /* group: traffic dial 0-100 */
	AG_OVR_DRILL = 3,  /* group: 1 failed on purpose (DR drill), 0 restored */
	AG_OVR__MAX,
};

struct ag_ovr_sel {
	bool endpoint;		   /* endpoint selector (has addr), else group selector */
	char accel[AG_NAME_MAX];   /* "" = any */
	char region[AG_NAME_MAX];  /* "" = any (endpoint selectors only) */
	char either[AG_NAME_MAX];  /* X of "X/ADDRESS": accelerator or region */
	uint32_t addr;		   /* network order */
	char text[AG_OVR_SEL_MAX]; /* canonical text */
};

struct ag_override {
	enum ag_ovr_kind kind;
	struct ag_ovr_sel sel;
	int value;
	int64_t set_at;		/* wall clock, seconds since the epoch */
	char by[AG_OVR_BY_MAX]; /* who set it, for people */
};

struct ag_overrides {
	struct ag_override *v;
	unsigned int n, cap;
};

/* What is saved: the overrides, and an unconfirmed change's way back. */
struct ag_ovr_state {
	struct ag_overrides cur;
	bool pending;			/* a change waits for `confirm` */
	int64_t deadline_ms;		/* wall clock (CLOCK_REALTIME) of the rollback */
	char change[AG_OVR_CHANGE_MAX]; /* the unconfirmed change(s) */
	struct ag_overrides rollback;	/* the overrides before it */
};

/* "weight", "drain", "dial", "drill"; NULL out of range. */
const char *ag_ovr_kind__name(enum ag_ovr_kind k);
/* True for kinds that select endpoints (weight, drain), false for groups. */
bool ag_ovr_kind__endpoint(enum ag_ovr_kind k);

/*
 * Parse a selector (endpoint or group, as `endpoint` says). Returns 0, or
 * -EINVAL with *problem set to a static description.
 */
int ag_ovr_sel__parse(struct ag_ovr_sel *sel, const char *text, bool endpoint,
		      const char **problem);
bool ag_ovr_sel__match_backend(const struct ag_ovr_sel *sel, const struct ag_plan *plan,
			       const struct ag_plan_backend *b);
bool ag_ovr_sel__match_group(const struct ag_ovr_sel *sel, const struct ag_plan *plan,
			     const struct ag_plan_group *g);
/* Endpoints (endpoint selector) or groups (group selector) of plan it matches. */
unsigned int ag_ovr_sel__count(const struct ag_ovr_sel *sel, const struct ag_plan *plan);

/*
 * A value for kind k from text, validated by the very functions the config
 * file uses (ag_config__check_weight/dial). Returns 0, or -EINVAL with msg set
 * to "weight: must be 0-255 (got 256)" (the config file's words after its key).
 * Drain and drill take no text (pass NULL): their value is 1.
 */
int ag_ovr__value(enum ag_ovr_kind k, const char *text, int *value, char *msg, size_t len);

void ag_overrides__init(struct ag_overrides *o);
void ag_overrides__free(struct ag_overrides *o);
int ag_overrides__copy(struct ag_overrides *dst, const struct ag_overrides *src);
bool ag_overrides__equal(const struct ag_overrides *a, const struct ag_overrides *b);

/*
 * Add ov (a later override wins) and tidy the list for plan: an override that
 * later ones replace on everything it matches is dropped, and so is an undrain
 * or restore that changes nothing. Overrides that match nothing in plan (left
 * by a reload) are kept: a later config may bring their endpoints back.
 * Returns 0; -ENOENT when ov matches nothing in plan (the caller says "no
 * endpoint matches ..."); -E2BIG past AG_OVR_MAX; -ENOMEM.
 */
int ag_overrides__set(struct ag_overrides *o, const struct ag_override *ov,
		      const struct ag_plan *plan);
/*
 * Remove every override that touches what sel matches in plan (a group
 * selector also takes the endpoint overrides inside its groups), and any
 * whose selector reads exactly as sel's. sel NULL removes all. Returns how
 * many were removed.
 */
unsigned int ag_overrides__clear(struct ag_overrides *o, const struct ag_ovr_sel *sel,
				 const struct ag_plan *plan);
/* Endpoints or groups of plan that override i matches. */
unsigned int ag_overrides__matches(const struct ag_overrides *o, unsigned int i,
				   const struct ag_plan *plan);

/*
 * Write the overrides into vs (arrays sized for plan): every weight, drain,
 * dial and drill reset to "none", then each override in order. Health, RTT and
 * group order in vs are left alone.
 */
void ag_overrides__apply(const struct ag_overrides *o, const struct ag_plan *plan,
			 struct ag_view_state *vs);

void ag_ovr_state__init(struct ag_ovr_state *s);
void ag_ovr_state__free(struct ag_ovr_state *s);

/* The state as saved: {"anygate_state":1,"overrides":[...],"pending":{...}}. */
json_t *ag_ovr_state__to_json(const struct ag_ovr_state *s);
json_t *ag_overrides__to_json(const struct ag_overrides *o);
/*
 * Read a state (validated whole, values through the config's validators) into
 * s (initialised, left empty on failure). Returns 0 or -EINVAL with msg set
 * ("overrides[2].value: must be 0-255 (got 300)"), -ENOMEM.
 */
int ag_ovr_state__from_json(struct ag_ovr_state *s, const json_t *j, char *msg, size_t len);

/*
 * Save s to path atomically: a temporary file in the same directory, written
 * and fsync'd, renamed over path, the directory fsync'd. The directory is
 * created if missing. A crash leaves the old file or the new one, never half
 * of one. Returns 0 or -errno (msg says which step failed).
 */
int ag_ovr_state__save(const struct ag_ovr_state *s, const char *path, char *msg, size_t len);
/*
 * Load s from path. Returns 0; -ENOENT when there is no file (no overrides);
 * -EINVAL for a file that is not a valid state (msg says where); other -errno
 * when it cannot be read.
 */
int ag_ovr_state__load(struct ag_ovr_state *s, const char *path, char *msg, size_t len);

#endif /* AG_OVERRIDES_H */
