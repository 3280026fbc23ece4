/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fast path as anygated sees it, and the only seam between them: one
 * table of operations per kind (edge.fastpath), chosen once at start-up.
 *
 *   xdp   the XDP program and its maps pinned in bpffs (xdp.c, and
 *         xdp_flows.c for the flow tables: the only files of the control
 *         plane that include libbpf)
 *   dpdk  anygate-dp, which attaches to a shared-memory segment that
 *         anygated creates and publishes into (dpdk.c over shm.c)
 *
 * Life of a fast path in anygated: open (load or adopt) -> the publisher
 * writes the first tables into its sink -> attach (start forwarding) ->
 * counters and flows are read while it runs -> release (keep it running for
 * an upgrade, or remove it) -> close.
 */
#ifndef AG_FASTPATH_H
#define AG_FASTPATH_H

#include <stdbool.h>
#include <stdint.h>

#include "abi.h"
#include "config.h"
#include "publish.h"

/*
 * A fast path opened by anygated. Each implementation embeds it in its own
 * state and reaches that state with ag_container_of; users only call ops.
 */
struct ag_fastpath {
	const struct ag_fastpath_ops *ops;
};

/*
 * One entry of the flow table: its key, its value, whether it is live under
 * the fast path's own idle timeouts (dataplane/core/flowlife.h), and how long
 * its client side has been idle.
 */
struct ag_flow_cursor;

typedef void (*ag_flow_fn)(void *ctx, const struct ag_flow_key *k, const struct ag_flow *f,
			   bool live, uint64_t idle_ns);

/* Flow states (enum ag_flow_state of flow.h, which needs <linux/in.h>: not included here). */
#define AG_FLOW_STATES 4

/*
 * What the sweeper of the flow table did since anygated started
 * (docs/flows.md), by the state a flow was in (enum ag_flow_state, flow.h).
 */
struct ag_reclaim_stats {
	uint64_t expired[AG_FLOW_STATES]; /* pairs removed: idle past their state's timeout */
	uint64_t evicted[AG_FLOW_STATES]; /* removed before it, the table near full */
	uint64_t orphans;		  /* reverse entries no flow owns, removed once quiet */
	uint64_t passes;		  /* sweeps */
	uint64_t last_pass_ns;		  /* how long the last one took */
	uint64_t flows;			  /* flow entries after the last complete walk */
	uint64_t nat_revs;		  /* reverse entries after the last complete walk */
	bool pressure;			  /* the last pass found the table near full */
};

struct ag_fastpath_ops {
	const char *kind; /* "xdp" or "dpdk": metric label, status, logs */
	/*
	 * Load it, or adopt the one an earlier anygated left running (its flows
	 * stay). NULL + errno, after logging why.
	 */
	struct ag_fastpath *(*open)(const struct ag_cfg_edge *edge);
	/* Start forwarding, after the first publish: the first packet finds tables. */
	int (*attach)(struct ag_fastpath *fp, const struct ag_cfg_edge *edge);
	/* True when open or attach found a fast path running. */
	bool (*adopted)(const struct ag_fastpath *fp);
	/*
	 * Before close, on the way out: keep leaves it forwarding with the last
	 * tables (an upgrade: the next anygated adopts it); !keep removes it
	 * where anygated owns its life (XDP: detach and unpin).
	 */
	void (*release)(struct ag_fastpath *fp, bool keep);
	void (*close)(struct ag_fastpath *fp);
	/*
	 * `anygated --detach`: without opening anything, remove what a kept
	 * fast path left behind. 0 (also when nothing was there) or -errno.
	 */
	int (*remove_kept)(const struct ag_cfg_edge *edge);

	/* Where the publisher writes: its ops and their ctx. */
	void (*sink)(struct ag_fastpath *fp, const struct ag_sink_ops **ops, void **ctx);
	/*
	 * CPUs (anygate-dp: forwarding lcores) that each apply the new-flow
	 * budgets of the settings on their own: the edge's rates are divided
	 * over them. 0 while unknown (no anygate-dp attached yet).
	 */
	unsigned int (*cpus)(struct ag_fastpath *fp);

	/* Counters, summed over CPUs or lanes. 0 or -errno. */
	int (*listener_stats)(struct ag_fastpath *fp, uint32_t lid, struct ag_traffic_stats *out);
	int (*backend_stats)(struct ag_fastpath *fp, uint32_t id, struct ag_traffic_stats *out);
	int (*reason_stats)(struct ag_fastpath *fp, enum ag_reason r, struct ag_reason_stats *out);
	/* Entries in the flow table, idle ones included, or -errno. */
	long (*flow_entries)(struct ag_fastpath *fp);
	/*
	 * fn for every entry of the flow table, with its liveness: O(flows),
	 * for operators and scrapes, not per packet. 0, or -EOPNOTSUPP where
	 * the flows live in another process's memory (anygate-dp), or -errno.
	 */
	int (*walk_flows)(struct ag_fastpath *fp, ag_flow_fn fn, void *ctx);
	/*
	 * walk_flows a slice at a time, for the control socket (a slice per
	 * event-loop turn): open a cursor stepping up to `slice` entries (NULL
	 * and errno EOPNOTSUPP where walk_flows is, or ENOMEM); each step calls fn
	 * for the next slice, judged at that moment, and returns 1 while more is
	 * to come, 0 at the end, or -errno. A cursor may be closed after its fast
	 * path (it is only freed) but not stepped.
	 */
	struct ag_flow_cursor *(*flow_cursor_open)(struct ag_fastpath *fp, unsigned int slice);
	int (*flow_cursor_step)(struct ag_flow_cursor *c, ag_flow_fn fn, void *ctx);
	void (*flow_cursor_close)(struct ag_flow_cursor *c);
	/*
	 * One pass of the flow-table sweeper, every AG_SWEEP_PERIOD_NS, a
	 * bounded slice of work: remove every pair that is not live, orphan reverse
	 * entries, and with the table near full half-open and closing flows
	 * before their timeout. NULL where the fast path reclaims its own
	 * tables (anygate-dp). 0 or -errno.
	 */
	int (*sweep)(struct ag_fastpath *fp);
	/* The sweeper's counters; -EOPNOTSUPP where anygated does not sweep. */
	int (*reclaim_stats)(struct ag_fastpath *fp, struct ag_reclaim_stats *out);
};

/* How often anygated runs the fast path's sweep: short slices, often (xdp_flows.h). */
#define AG_SWEEP_PERIOD_NS 100000000ull

/* Metric label of a reason ("drop_truncated_ipv4"). */
const char *ag_reason__name(enum ag_reason r);
/* What a reason's group says the fast path did: "pass", "drop" or "act". */
const char *ag_reason__action(enum ag_reason r);
/* Label of a flow state: "half-open", "established", "closing", "udp". */
const char *ag_flow_state__name(int state);

#endif /* AG_FASTPATH_H */
