/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fast path as the rest of anygated sees it: where tables are published
 * and where counters come from. Chosen once at start-up from edge.fastpath:
 * the XDP program (pinned BPF maps) or anygate-dp (a shared-memory segment).
 */
#ifndef AG_FASTPATH_H
#define AG_FASTPATH_H

#include <stdint.h>

#include "abi.h"
#include "publish.h"

struct ag_fastpath_ops {
	const char *kind; /* "xdp" or "dpdk": metric label, status */
	const struct ag_sink_ops *(*sink_ops)(void);
	int (*listener_stats)(void *fp, uint32_t lid, struct ag_traffic_stats *out);
	int (*backend_stats)(void *fp, uint32_t id, struct ag_traffic_stats *out);
	int (*reason_stats)(void *fp, enum ag_reason r, struct ag_reason_stats *out);
	/*
	 * Active flows per backend (see ag_xdp__flow_counts), or -EOPNOTSUPP where
	 * the flow table lives in another process's memory (anygate-dp).
	 */
	int (*flow_counts)(void *fp, uint64_t now_ns, uint64_t tcp_idle_ns, uint64_t udp_idle_ns,
			   uint64_t *active, unsigned int n_backends, uint64_t *entries);
};

extern const struct ag_fastpath_ops ag_fastpath_xdp;
extern const struct ag_fastpath_ops ag_fastpath_dpdk;

#endif /* AG_FASTPATH_H */
