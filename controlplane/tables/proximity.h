/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Nearest-region order: endpoint groups sorted by this edge's measured RTT to
 * them, with hysteresis so that two regions at nearly the same distance do not
 * swap places on every probe. Pure: the caller keeps the previous order.
 */
#ifndef AG_PROXIMITY_H
#define AG_PROXIMITY_H

#include <stdint.h>

/* A group overtakes the one ahead only when it is this much nearer: both must hold. */
#define AG_PROX_REL_PCT 20	   /* at least 20% lower RTT */
#define AG_PROX_ABS_NS	1000000ull /* and at least 1 ms lower */

/*
 * groups[i] (ids, config order) with rtt_ns[i] (0 = unknown: no healthy
 * endpoint measured). prev: the previous order of the same ids, or NULL for a
 * fresh sort. Writes the new order into order[0..n-1]. Known RTTs come before
 * unknown ones; unknown ones keep config order.
 */
void ag_proximity__order(const uint32_t *groups, const uint64_t *rtt_ns, unsigned int n,
			 const uint32_t *prev, uint32_t *order);

/* Median of n values (0 values are skipped); 0 when none. Sorts vals in place. */
uint64_t ag_proximity__median(uint64_t *vals, unsigned int n);

#endif /* AG_PROXIMITY_H */
