/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The XDP fast path's flow tables from user space, private to xdp.c: the
 * walk behind `anygatectl flows` and the metrics, and the sweeper. Since the
 * flow maps are plain preallocated hashes, nothing in the kernel evicts: an
 * expired pair is removed by the packet that finds it (the program) or by
 * this sweeper, which anygated runs every AG_SWEEP_PERIOD_NS. Both decide
 * with dataplane/core (ag_flow__live, ag_nat_rev__hold), as the program does.
 */
#ifndef AG_XDP_FLOWS_H
#define AG_XDP_FLOWS_H

#include <stdbool.h>
#include <stdint.h>

#include "abi.h"
#include "fastpath.h"

/* Entries per bpf_map_lookup_batch call. */
#define AG_SWEEP_BATCH		   4096
/*
 * A pass (every AG_SWEEP_PERIOD_NS) works for about this long, going on where
 * the last one stopped: it runs in anygated's one event loop, beside the
 * probes and the control socket. Measured here (1M entries): a live entry
 * costs about 0.33 us to look at, an expired one 2.4 us to remove with its
 * reverse entry, so a slice looks at about 30,000 entries or removes about
 * 4,000 (40,000 a second).
 */
#define AG_SWEEP_SLICE_NS	   10000000ull
/* Entries a pass looks at, at most (flows; reverse entries, when it walks those). */
#define AG_SWEEP_PASS_FLOWS	   65536
#define AG_SWEEP_PASS_REVS	   16384
/*
 * Under pressure (sweep.h: AG_SWEEP_PRESSURE_PCT full, or a full-table
 * refusal since the last pass) a pass works this long with no cap on
 * entries, and also removes quiet half-open and closing flows.
 */
#define AG_SWEEP_PRESSURE_SLICE_NS 50000000ull

/* fn for every flow entry with its liveness, in batches. 0 or -errno. */
int ag_xdp_flows__walk(int flows_fd, int revs_fd, const struct ag_settings *s, uint64_t now,
		       ag_flow_fn fn, void *ctx);

struct ag_tables;

/* A bpf_map_lookup_batch walk that can stop and go on later where it stopped. */
struct ag_batch_walk {
	int fd;
	unsigned int cap;  /* entries of one batch */
	void *keys, *vals; /* cap entries each */
	uint64_t cursor;   /* where the next batch starts (the kernel's token) */
	bool resume;	   /* cursor is valid; else the next batch starts a walk */
};

/*
 * The walk above a batch at a time, for callers that must yield in between
 * (the control socket walks a slice per event-loop turn). Entries added or
 * removed while it is under way may be seen or not; none is seen twice
 * where the kernel has batch lookups.
 */
struct ag_xdp_flow_cursor {
	struct ag_tables *tables; /* the accessors dataplane/core reads through */
	struct ag_settings settings;
	struct ag_batch_walk batch;
	bool started, done;
	bool one_by_one; /* no batch lookups: key by key from `last` */
	bool have_last;
	struct ag_flow_key last;
	uint64_t visited, bound; /* key by key: gives up after bound keys */
};

/* batch: entries per step. 0 or -ENOMEM. The fds stay the caller's. */
int ag_xdp_flows__cursor_init(struct ag_xdp_flow_cursor *c, int flows_fd, int revs_fd,
			      const struct ag_settings *s, unsigned int batch);
/* fn for the next batch, judged at now: 1 while more is to come, 0 at the end, -errno. */
int ag_xdp_flows__cursor_next(struct ag_xdp_flow_cursor *c, uint64_t now, ag_flow_fn fn, void *ctx);
void ag_xdp_flows__cursor_fini(struct ag_xdp_flow_cursor *c);

struct ag_xdp_sweep {
	struct ag_batch_walk flows, revs;
	uint32_t max_flows;
	/* Entries a pass looks at: AG_SWEEP_PASS_FLOWS and _REVS (tests lower them). */
	uint64_t pass_flows, pass_revs;
	uint64_t cycle_flows, cycle_revs; /* entries left in the walk under way */
	/* Victims of one batch: keys to delete and the state each flow was in. */
	struct ag_flow_key *del_flows, *del_revs;
	uint8_t *del_state, *del_evicted;
	bool *gone;
	struct ag_reclaim_stats st;
};

/* 0 or -ENOMEM. The fds stay the caller's. */
int ag_xdp_sweep__init(struct ag_xdp_sweep *sw, int flows_fd, int revs_fd, uint32_t max_flows);
void ag_xdp_sweep__fini(struct ag_xdp_sweep *sw);

/*
 * One pass at now under settings s; table_full: the program refused a flow
 * for a full table since the last pass. 0 or -errno (the walk resumes at
 * its start next time).
 */
int ag_xdp_sweep__pass(struct ag_xdp_sweep *sw, const struct ag_settings *s, bool table_full,
		       uint64_t now);

#endif /* AG_XDP_FLOWS_H */
