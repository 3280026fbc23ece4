/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The XDP fast path as anygated drives it: load the embedded skeleton with its
 * maps pinned under bpffs_dir (or adopt the maps an earlier anygated left
 * there), attach in native mode through pinned bpf_links, expose the maps as
 * a publisher sink, read the per-CPU counters and walk the flow table, and on
 * exit either keep everything pinned (upgrade) or detach and unpin.
 * xdp.c and xdp_flows.c (the flow tables) are the only files of the
 * control plane that include libbpf.
 */
#ifndef AG_XDP_H
#define AG_XDP_H

#include "fastpath.h"

extern const struct ag_fastpath_ops ag_xdp__ops;

#endif /* AG_XDP_H */
