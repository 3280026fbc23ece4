/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Maglev build time: M = 65537 (and the largest M) with 10, 100, 1000 and
 * AG_MAX_BACKENDS backends, equal, random (1..255) and skewed weights (one
 * heavy backend among light ones, where a credit round-robin would spin).
 * Prints the median of a few runs with the workspace reused, as anygated does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consts.h"
#include "maglev.h"

#define RUNS 9

static uint32_t rng_state = 2463534242u;

static uint32_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(void)
{
	static const unsigned int sizes[] = {10, 100, 1000, AG_MAX_BACKENDS};
	static const uint32_t ms[] = {AG_RING_SIZE_DEFAULT, AG_RING_SIZE_MAX};
	static const char *const kinds[] = {"equal", "random", "skewed"};
	struct ag_maglev_backend *b = calloc(AG_MAX_BACKENDS, sizeof(*b));
	uint32_t *table = malloc(AG_RING_SIZE_MAX * sizeof(*table));
	struct ag_maglev_ws *ws = ag_maglev_ws__new();
	unsigned int mi, si, kind, i, r;
	int err, ret = 1;

	if (!b || !table || !ws) {
		fprintf(stderr, "maglev bench: out of memory\n");
		goto cleanup;
	}
	printf("%-8s %-7s %6s %10s\n", "M", "weights", "n", "median_ms");
	for (mi = 0; mi < sizeof(ms) / sizeof(ms[0]); mi++)
		for (kind = 0; kind < 3; kind++)
			for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
				unsigned int n = sizes[si];
				double t[RUNS];

				for (i = 0; i < n; i++) {
					b[i].id = i;
					b[i].key = i * 2654435761u; /* distinct: odd multiplier */
					b[i].weight = kind == 1 ? 1 + rng_next() % 255 : 1;
				}
				if (kind == 2)
					b[0].weight = 1u << 24;
				for (r = 0; r < RUNS; r++) {
					double t0 = now_ms();

					err = ag_maglev__build_ws(b, n, ms[mi], 1, table, ws);
					t[r] = now_ms() - t0;
					if (err) {
						fprintf(stderr, "maglev bench: build: %s\n",
							strerror(-err));
						goto cleanup;
					}
				}
				qsort(t, RUNS, sizeof(t[0]), cmp_double);
				printf("%-8u %-7s %6u %10.2f\n", ms[mi], kinds[kind], n,
				       t[RUNS / 2]);
			}
	ret = 0;
cleanup:
	ag_maglev_ws__free(ws);
	free(table);
	free(b);
	return ret;
}
