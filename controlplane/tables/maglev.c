/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Weighted Maglev table builder. See maglev.h for the scheme; the notes here
 * are about how it is made exact, deterministic and fast.
 *
 * - Turn order uses integer cross-multiplication only: no floating point, so
 *   no FMA contraction or rounding mode can make two edges disagree.
 * - Only backends with weight > 0 take part, and the next turn is found with a
 *   binary heap: O(m log n) however skewed the weights are (a round-robin credit
 *   loop would spin through every light backend on each heavy backend's turn).
 * - A backend's walk keeps its position in its own permutation between turns,
 *   so each backend visits each slot at most once: the total walk is the
 *   classic Maglev m * ln(m) expected, independent of the weights.
 * - The table doubles as the "taken" marker (AG_BACKEND_NONE = free), which is
 *   why ids must be below AG_MAX_BACKENDS.
 */
#include "maglev.h"

#include <errno.h>
#include <stdlib.h>

/* Per active backend, indexed by rank in key order. */
struct mg_state {
	uint32_t id;
	uint32_t weight;
	uint32_t pos;	/* next slot of this backend's permutation to try */
	uint32_t skip;	/* permutation step, in [1, m-1] */
	uint32_t turns; /* turns taken so far (= slots claimed) */
};

struct mg_sort {
	uint32_t key;
	uint32_t idx; /* index into the caller's array */
};

struct ag_maglev_ws {
	unsigned int cap;
	struct mg_state *st;
	struct mg_sort *sort;
	uint32_t *heap; /* ranks; st[heap[0]] takes the next turn */
};

static struct ag_maglev_ws *ws_alloc(unsigned int cap)
{
	struct ag_maglev_ws *ws;

	ws = calloc(1, sizeof(*ws));
	if (!ws)
		goto err;
	ws->cap = cap;
	/* cap may be 0 (n == 0): allocate one element so NULL always means failure. */
	ws->st = calloc(cap ? cap : 1, sizeof(*ws->st));
	ws->sort = calloc(cap ? cap : 1, sizeof(*ws->sort));
	ws->heap = calloc(cap ? cap : 1, sizeof(*ws->heap));
	if (!ws->st || !ws->sort || !ws->heap)
		goto err_free;
	return ws;

err_free:
	ag_maglev_ws__free(ws);
err:
	errno = ENOMEM;
	return NULL;
}

struct ag_maglev_ws *ag_maglev_ws__new(void)
{
	return ws_alloc(AG_MAX_BACKENDS);
}

void ag_maglev_ws__free(struct ag_maglev_ws *ws)
{
	if (!ws)
		return;
	free(ws->st);
	free(ws->sort);
	free(ws->heap);
	free(ws);
}

bool ag_maglev__is_prime(uint32_t m)
{
	uint32_t d;

	if (m < 2)
		return false;
	if (m < 4)
		return true;
	if (!(m & 1))
		return false;
	/* d <= m / d instead of d * d <= m: no overflow near UINT32_MAX. */
	for (d = 3; d <= m / d; d += 2)
		if (m % d == 0)
			return false;
	return true;
}

unsigned int ag_maglev__diff(const uint32_t *a, const uint32_t *b, uint32_t m)
{
	unsigned int n = 0;
	uint32_t i;

	for (i = 0; i < m; i++)
		n += a[i] != b[i];
	return n;
}

static inline uint32_t rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/*
 * MurmurHash3 x86_32 of the 4-byte key: good avalanche, fixed definition, so
 * every edge derives the same permutation. Deliberately not the packet hash:
 * the two must stay free to change independently.
 */
static uint32_t mg_hash(uint32_t key, uint32_t seed)
{
	uint32_t k = key, h = seed;

	k *= 0xcc9e2d51u;
	k = rotl32(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = rotl32(h, 13);
	h = h * 5 + 0xe6546b64u;
	h ^= 4; /* length in bytes */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static int mg_sort_cmp(const void *pa, const void *pb)
{
	const struct mg_sort *a = pa, *b = pb;

	return (a->key > b->key) - (a->key < b->key);
}

/*
 * Does rank a take its next turn before rank b? Turn k of a backend happens at
 * (2k + 1) / (2 w); compare (2ka + 1) / wa < (2kb + 1) / wb crosswise. 2k + 1 <=
 * 2m + 1 < 2^19 and w < 2^32, so the products fit in 64 bits. Equal times go
 * to the lower key (lower rank), which keeps the order a function of the set.
 */
static inline bool turn_before(const struct mg_state *st, uint32_t a, uint32_t b)
{
	uint64_t ta = (2 * (uint64_t)st[a].turns + 1) * st[b].weight;
	uint64_t tb = (2 * (uint64_t)st[b].turns + 1) * st[a].weight;

	if (ta != tb)
		return ta < tb;
	return a < b;
}

static void heap_sift_down(const struct mg_state *st, uint32_t *heap, unsigned int len,
			   unsigned int i)
{
	uint32_t v = heap[i];

	for (;;) {
		unsigned int c = 2 * i + 1;

		if (c >= len)
			break;
		if (c + 1 < len && turn_before(st, heap[c + 1], heap[c]))
			c++;
		if (!turn_before(st, heap[c], v))
			break;
		heap[i] = heap[c];
		i = c;
	}
	heap[i] = v;
}

int ag_maglev__build_ws(const struct ag_maglev_backend *b, unsigned int n, uint32_t m,
			uint32_t seed, uint32_t *table, struct ag_maglev_ws *ws)
{
	struct mg_state *st;
	unsigned int i, active = 0;
	uint32_t filled;

	if (!table || !ws || (n && !b))
		return -EINVAL;
	if (m < AG_RING_SIZE_MIN || m > AG_RING_SIZE_MAX || !ag_maglev__is_prime(m))
		return -EINVAL;
	if (n > AG_MAX_BACKENDS || n > ws->cap)
		return -EINVAL;

	for (i = 0; i < n; i++) {
		/* Also rules out AG_BACKEND_NONE, which marks free slots below. */
		if (b[i].id >= AG_MAX_BACKENDS)
			return -EINVAL;
		ws->sort[i].key = b[i].key;
		ws->sort[i].idx = i;
	}
	/* Key order makes the result independent of the caller's order. */
	qsort(ws->sort, n, sizeof(*ws->sort), mg_sort_cmp);
	for (i = 1; i < n; i++)
		if (ws->sort[i].key == ws->sort[i - 1].key)
			return -EINVAL;

	st = ws->st;
	for (i = 0; i < n; i++) {
		const struct ag_maglev_backend *be = &b[ws->sort[i].idx];

		if (!be->weight)
			continue;
		st[active].id = be->id;
		st[active].weight = be->weight;
		st[active].pos = mg_hash(be->key, seed) % m;
		st[active].skip = mg_hash(be->key, seed ^ 0x9e3779b9u) % (m - 1) + 1;
		st[active].turns = 0;
		ws->heap[active] = active;
		active++;
	}

	for (filled = 0; filled < m; filled++)
		table[filled] = AG_BACKEND_NONE;
	if (!active)
		return 0;

	for (i = active / 2; i-- > 0;)
		heap_sift_down(st, ws->heap, active, i);

	for (filled = 0; filled < m; filled++) {
		struct mg_state *s = &st[ws->heap[0]];
		uint32_t pos = s->pos;

		/*
		 * m is prime and 1 <= skip < m, so the walk visits every slot once per
		 * m steps; filled < m guarantees a free one within that.
		 */
		while (table[pos] != AG_BACKEND_NONE) {
			pos += s->skip;
			if (pos >= m)
				pos -= m;
		}
		table[pos] = s->id;
		pos += s->skip;
		if (pos >= m)
			pos -= m;
		s->pos = pos;
		s->turns++;
		heap_sift_down(st, ws->heap, active, 0);
	}
	return 0;
}

int ag_maglev__build(const struct ag_maglev_backend *b, unsigned int n, uint32_t m, uint32_t seed,
		     uint32_t *table)
{
	struct ag_maglev_ws *ws;
	int err;

	if (n > AG_MAX_BACKENDS)
		return -EINVAL;
	ws = ws_alloc(n);
	if (!ws)
		return -ENOMEM;
	err = ag_maglev__build_ws(b, n, m, seed, table, ws);
	ag_maglev_ws__free(ws);
	return err;
}
