/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The XDP fast path as anygated drives it: load the embedded skeleton with its
 * maps pinned under bpffs_dir, attach in native mode, expose the maps as a
 * publisher sink, read the per-CPU counters, detach and unpin.
 */
#ifndef AG_XDP_H
#define AG_XDP_H

#include <stdint.h>

#include "abi.h"
#include "config.h"
#include "publish.h"

struct ag_xdp;

/* Open and load the program, pinning (or reusing pinned) maps. NULL + errno on failure. */
struct ag_xdp *ag_xdp__open(const struct ag_cfg_edge *edge);
/* Attach to every configured interface in native (driver) mode. 0 or -errno. */
int ag_xdp__attach(struct ag_xdp *x, const struct ag_cfg_edge *edge);
void ag_xdp__detach(struct ag_xdp *x);
/* Remove the pinned maps (after detach): nothing of anygate stays in bpffs. */
void ag_xdp__unpin(struct ag_xdp *x);
void ag_xdp__close(struct ag_xdp *x);

const struct ag_sink_ops *ag_xdp__sink_ops(void);

/* Counters summed over CPUs. */
int ag_xdp__listener_stats(struct ag_xdp *x, uint32_t lid, struct ag_traffic_stats *out);
int ag_xdp__backend_stats(struct ag_xdp *x, uint32_t id, struct ag_traffic_stats *out);
int ag_xdp__reason_stats(struct ag_xdp *x, enum ag_reason r, struct ag_reason_stats *out);
/* Entries in the flow table (walks it: for operators, not per packet). */
long ag_xdp__flow_count(struct ag_xdp *x);

/* Metric label of a reason ("drop_truncated_ipv4"). */
const char *ag_reason__name(enum ag_reason r);

#endif /* AG_XDP_H */
