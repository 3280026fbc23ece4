/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Weighted Maglev lookup tables (Eisenbud et al., NSDI'16), built off the fast
 * path and published whole (or slot by slot where they differ).
 *
 * Pure functions: the table is a function of the set of (key, id, weight), m
 * and seed only — not of input order, not of the host — so every edge with the
 * same view builds the same table.
 *
 * Weighting: backend i takes its k-th turn (k = 0, 1, ...) at virtual time
 * (k + 1/2) / weight_i, ties broken by key; in its turn it claims the next free
 * slot of its own permutation. The first m turns fill the table, so backend i
 * gets its Sainte-Laguë (Webster) apportionment of the m slots: within about one
 * slot of m * w_i / sum(w). A backend's turn times depend on its own weight only,
 * so removing or reweighting one backend leaves the others' relative order
 * intact, which is what keeps Maglev's disruption small.
 */
#ifndef AG_MAGLEV_H
#define AG_MAGLEV_H

#include <stdbool.h>
#include <stdint.h>

#include "consts.h"

struct ag_maglev_backend {
	/* Written into the table: a backend id, < AG_MAX_BACKENDS. */
	uint32_t id;
	/*
	 * Stable identity the permutation derives from (e.g. a hash of address and
	 * group): the same key yields the same permutation on every build and edge.
	 * Keys are unique within one build.
	 */
	uint32_t key;
	/* Relative weight, any uint32_t; 0 = no slots. */
	uint32_t weight;
};

/* Scratch space for ag_maglev__build_ws(), sized for AG_MAX_BACKENDS. */
struct ag_maglev_ws;

/* Returns NULL and sets errno (ENOMEM) on failure. */
struct ag_maglev_ws *ag_maglev_ws__new(void);
void ag_maglev_ws__free(struct ag_maglev_ws *ws);

/*
 * Fill table[0..m-1] with backend ids. m must be a prime in
 * AG_RING_SIZE_MIN..AG_RING_SIZE_MAX; seed mixes the permutations (the same on
 * every edge). A total weight of 0 (or n == 0) sets every slot to AG_BACKEND_NONE.
 * Returns 0, or -EINVAL (bad m, n > AG_MAX_BACKENDS, NULL pointers, an id
 * >= AG_MAX_BACKENDS, duplicate keys; table untouched), or -ENOMEM.
 */
int ag_maglev__build(const struct ag_maglev_backend *b, unsigned int n, uint32_t m, uint32_t seed,
		     uint32_t *table);
/* Same, with caller-provided scratch: never allocates, never returns -ENOMEM. */
int ag_maglev__build_ws(const struct ag_maglev_backend *b, unsigned int n, uint32_t m,
			uint32_t seed, uint32_t *table, struct ag_maglev_ws *ws);

bool ag_maglev__is_prime(uint32_t m);

/* Number of slots in which two tables of m entries differ. */
unsigned int ag_maglev__diff(const uint32_t *a, const uint32_t *b, uint32_t m);

#endif /* AG_MAGLEV_H */
