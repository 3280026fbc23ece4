/* SPDX-License-Identifier: BSD-3-Clause */
#include "proximity.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t ag_proximity__median(uint64_t *vals, unsigned int n)
{
	unsigned int i, k = 0;

	for (i = 0; i < n; i++)
		if (vals[i])
			vals[k++] = vals[i];
	if (!k)
		return 0;
	qsort(vals, k, sizeof(*vals), cmp_u64);
	return k % 2 ? vals[k / 2] : (vals[k / 2 - 1] + vals[k / 2]) / 2;
}

static uint64_t rtt_of(const uint32_t *groups, const uint64_t *rtt_ns, unsigned int n, uint32_t id,
		       unsigned int *pos)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (groups[i] == id) {
			if (pos)
				*pos = i;
			return rtt_ns[i];
		}
	}
	if (pos)
		*pos = n;
	return 0;
}

/* Does b (behind) overtake a (ahead)? */
static bool overtakes(uint64_t rb, uint64_t ra, bool hysteresis)
{
	if (!rb)
		return false;
	if (!ra)
		return true;
	if (!hysteresis)
		return rb < ra;
	return rb * 100 < ra * (100 - AG_PROX_REL_PCT) && rb + AG_PROX_ABS_NS < ra;
}

static bool same_set(const uint32_t *groups, const uint32_t *prev, unsigned int n)
{
	unsigned int i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < n && groups[j] != prev[i]; j++)
			;
		if (j == n)
			return false;
	}
	return true;
}

void ag_proximity__order(const uint32_t *groups, const uint64_t *rtt_ns, unsigned int n,
			 const uint32_t *prev, uint32_t *order)
{
	bool hysteresis = prev && same_set(groups, prev, n);
	bool swapped = true;
	unsigned int i, passes = 0;

	memcpy(order, hysteresis ? prev : groups, n * sizeof(*order));
	/*
	 * Adjacent swaps until stable: a stable sort without hysteresis, and with
	 * it a group moves ahead only past groups it clearly beats. n passes at most.
	 */
	while (swapped && passes++ <= n) {
		swapped = false;
		for (i = 0; i + 1 < n; i++) {
			uint64_t ra = rtt_of(groups, rtt_ns, n, order[i], NULL);
			uint64_t rb = rtt_of(groups, rtt_ns, n, order[i + 1], NULL);

			if (overtakes(rb, ra, hysteresis && ra)) {
				uint32_t t = order[i];

				order[i] = order[i + 1];
				order[i + 1] = t;
				swapped = true;
			}
		}
	}
}
