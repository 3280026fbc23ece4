/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The XDP fast path as anygated drives it: load the embedded skeleton with its
 * maps pinned under bpffs_dir, attach in native mode, expose the maps as a
 * publisher sink, read the per-CPU counters, detach and unpin.
 */
#ifndef AG_XDP_H
#define AG_XDP_H

#include <stdbool.h>
#include <stdint.h>

#include "abi.h"
#include "config.h"
#include "publish.h"

struct ag_xdp;

/*
 * Open and load the program, pinning its maps under bpffs_dir, or adopting
 * maps pinned there by an earlier anygated (flows survive a restart). Pins
 * that cannot be adopted are refused with the map, the property and the way
 * out in the log. NULL + errno on failure.
 */
struct ag_xdp *ag_xdp__open(const struct ag_cfg_edge *edge);
/*
 * Attach to every configured interface in native (driver) mode, each as a
 * bpf_link pinned at <bpffs_dir>/link_<ifname>. A link pinned there by an
 * earlier anygated is adopted: our program replaces its program atomically
 * (bpf_link_update), so forwarding never stops. Links pinned for interfaces
 * no longer configured are detached. 0 or -errno (what this call attached
 * anew is undone; adopted links stay).
 */
int ag_xdp__attach(struct ag_xdp *x, const struct ag_cfg_edge *edge);
/* True when open or attach found a fast path pinned by an earlier anygated. */
bool ag_xdp__adopted(const struct ag_xdp *x);
/* Detach every link, even one pinned or held elsewhere, and remove the link pins. */
void ag_xdp__detach(struct ag_xdp *x);
/* Remove the pinned maps (after detach): nothing of anygate stays in bpffs. */
void ag_xdp__unpin(struct ag_xdp *x);
/*
 * Exit leaving the fast path running (upgrade, restart): close our fds only;
 * links and maps stay pinned, forwarding goes on with the last tables. Logs
 * what stays. Call instead of detach + unpin.
 */
void ag_xdp__keep(struct ag_xdp *x);
void ag_xdp__close(struct ag_xdp *x);
/*
 * `anygated --detach`: without loading anything, detach every XDP link
 * pinned under edge->bpffs_dir and remove the links' and anygate's maps'
 * pins (only names anygate uses). 0 (also when nothing was there) or -errno.
 */
int ag_xdp__remove_pinned(const struct ag_cfg_edge *edge);

const struct ag_sink_ops *ag_xdp__sink_ops(void);

/* Counters summed over CPUs. */
int ag_xdp__listener_stats(struct ag_xdp *x, uint32_t lid, struct ag_traffic_stats *out);
int ag_xdp__backend_stats(struct ag_xdp *x, uint32_t id, struct ag_traffic_stats *out);
int ag_xdp__reason_stats(struct ag_xdp *x, enum ag_reason r, struct ag_reason_stats *out);
/* Entries in the flow table (walks it: for operators, not per packet). */
long ag_xdp__flow_count(struct ag_xdp *x);
/*
 * One walk of the flow table: *entries = all entries; active[id] = flows of
 * backend id (< n_backends) seen within their protocol's idle timeout of
 * now_ns (CLOCK_MONOTONIC, the fast path's clock). 0 or -errno.
 */
int ag_xdp__flow_counts(struct ag_xdp *x, uint64_t now_ns, uint64_t tcp_idle_ns,
			uint64_t udp_idle_ns, uint64_t *active, unsigned int n_backends,
			uint64_t *entries);

/* Metric label of a reason ("drop_truncated_ipv4"). */
const char *ag_reason__name(enum ag_reason r);

#endif /* AG_XDP_H */
