/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK fast path as anygated drives it: anygate-dp, a process of its
 * own, attaches to the shared-memory segment (shm.h) that anygated creates
 * or adopts and publishes into. anygated never starts or stops anygate-dp:
 * on exit the segment stays, anygate-dp keeps forwarding with the last
 * tables, and `anygated --detach` removes the segment. anygate-dp keeps its
 * flows in its own memory: only their count is in the segment.
 */
#ifndef AG_DPDK_H
#define AG_DPDK_H

#include "fastpath.h"

extern const struct ag_fastpath_ops ag_dpdk__ops;

#endif /* AG_DPDK_H */
