/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Property tests of the weighted Maglev builder: determinism, balance, zero
 * weights, minimal disruption, input validation. Inputs come from a fixed
 * xorshift PRNG, so every run checks the same cases and a failure reproduces.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consts.h"
#include "maglev.h"

#define M AG_RING_SIZE_DEFAULT

static uint32_t rng_state;

static void rng_seed(uint32_t s)
{
	rng_state = s ? s : 1;
}

static uint32_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static uint32_t *table_new(uint32_t m)
{
	uint32_t *t = malloc(m * sizeof(*t));

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	return t;
}

/* Backends with id = index and distinct pseudo-random keys. */
static void make_backends(struct ag_maglev_backend *b, unsigned int n, uint32_t weight)
{
	unsigned int i, j;

	for (i = 0; i < n; i++) {
		b[i].id = i;
		b[i].weight = weight;
		do {
			b[i].key = rng_next();
			for (j = 0; j < i && b[j].key != b[i].key; j++)
				;
		} while (j < i);
	}
}

/* cnt[id] = slots holding id; also checks every slot holds one of the ids given. */
static void count_slots(const uint32_t *t, uint32_t m, unsigned int n, unsigned int *cnt)
{
	uint32_t s;

	memset(cnt, 0, n * sizeof(*cnt));
	for (s = 0; s < m; s++) {
		CU_ASSERT_FATAL(t[s] < n);
		cnt[t[s]]++;
	}
}

/*
 * Each backend's share of the table is within 1 percentage point of its
 * weight's share (the requirement), and — much tighter — within 2 slots of its
 * exact quota m * w / W. The builder apportions by Sainte-Laguë (each quota
 * rounded after scaling by a common divisor close to 1), which lands within
 * one slot for these inputs (measured worst 0.9 slot); a lost or doubled turn,
 * or an overflow in the turn comparison with large weights, shows up here long
 * before it could reach the 1% bound (655 slots).
 */
static void check_balance(const struct ag_maglev_backend *b, unsigned int n, uint32_t m,
			  uint32_t seed)
{
	uint32_t *t = table_new(m);
	unsigned int *cnt = calloc(n, sizeof(*cnt));
	double total = 0;
	unsigned int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cnt);
	CU_ASSERT_EQUAL_FATAL(ag_maglev__build(b, n, m, seed, t), 0);
	count_slots(t, m, n, cnt);
	for (i = 0; i < n; i++)
		total += b[i].weight;
	for (i = 0; i < n; i++) {
		double quota = (double)m * b[i].weight / total;
		double share = (double)cnt[i] / m;
		double expect = b[i].weight / total;

		CU_ASSERT(share - expect <= 0.01 && expect - share <= 0.01);
		CU_ASSERT(cnt[i] - quota <= 2.0 && quota - cnt[i] <= 2.0);
	}
	free(cnt);
	free(t);
}

static void test_is_prime(void)
{
	CU_ASSERT_TRUE(ag_maglev__is_prime(65537));
	CU_ASSERT_FALSE(ag_maglev__is_prime(65536));
	CU_ASSERT_TRUE(ag_maglev__is_prime(262139));
	CU_ASSERT_TRUE(ag_maglev__is_prime(13));
	CU_ASSERT_FALSE(ag_maglev__is_prime(1));
	CU_ASSERT_FALSE(ag_maglev__is_prime(0));
	CU_ASSERT_TRUE(ag_maglev__is_prime(2));
	CU_ASSERT_TRUE(ag_maglev__is_prime(3));
	CU_ASSERT_FALSE(ag_maglev__is_prime(9));
	CU_ASSERT_FALSE(ag_maglev__is_prime(65535));
	/* 65537^2 overflows 32 bits; 65521 * 65519 does not and is composite. */
	CU_ASSERT_FALSE(ag_maglev__is_prime(65521u * 65519u));
	CU_ASSERT_TRUE(ag_maglev__is_prime(4294967291u)); /* largest 32-bit prime */
	CU_ASSERT_FALSE(ag_maglev__is_prime(UINT32_MAX));
}

/*
 * Input order must not matter: build, shuffle (Fisher-Yates), build again.
 * Equal weights make every backend tie on every round, so turn order among
 * ties (by key) decides many slots: a builder that broke ties by input
 * position would differ here.
 */
static void check_order_independent(const struct ag_maglev_backend *b, unsigned int n,
				    uint32_t seed)
{
	struct ag_maglev_backend *shuffled = malloc(n * sizeof(*b));
	uint32_t *t1 = table_new(M), *t2 = table_new(M);
	unsigned int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(shuffled);
	memcpy(shuffled, b, n * sizeof(*b));
	for (i = n - 1; i > 0; i--) {
		unsigned int j = rng_next() % (i + 1);
		struct ag_maglev_backend tmp = shuffled[i];

		shuffled[i] = shuffled[j];
		shuffled[j] = tmp;
	}
	CU_ASSERT_NOT_EQUAL(memcmp(shuffled, b, n * sizeof(*b)), 0);
	CU_ASSERT_EQUAL(ag_maglev__build(b, n, M, seed, t1), 0);
	CU_ASSERT_EQUAL(ag_maglev__build(shuffled, n, M, seed, t2), 0);
	CU_ASSERT_EQUAL(memcmp(t1, t2, M * sizeof(*t1)), 0);
	free(shuffled);
	free(t1);
	free(t2);
}

static void test_determinism(void)
{
	struct ag_maglev_backend b[50];
	uint32_t *t1 = table_new(M), *t2 = table_new(M);
	unsigned int i;

	rng_seed(101);
	make_backends(b, 50, 1);
	check_order_independent(b, 50, 3);
	for (i = 0; i < 50; i++)
		b[i].weight = 1 + rng_next() % 3;
	check_order_independent(b, 50, 5);
	for (i = 0; i < 50; i++)
		b[i].weight = 1 + rng_next() % 100;
	check_order_independent(b, 50, 7);

	CU_ASSERT_EQUAL(ag_maglev__build(b, 50, M, 7, t1), 0);
	CU_ASSERT_EQUAL(ag_maglev__build(b, 50, M, 7, t2), 0);
	CU_ASSERT_EQUAL(memcmp(t1, t2, M * sizeof(*t1)), 0);

	/*
	 * Another seed gives other permutations: with 50 backends a slot keeps its
	 * owner by chance about 2% of the time, so most slots must differ.
	 */
	CU_ASSERT_EQUAL(ag_maglev__build(b, 50, M, 8, t2), 0);
	CU_ASSERT(ag_maglev__diff(t1, t2, M) > M / 2);

	/* The workspace variant, reused across builds of other sizes, agrees. */
	{
		struct ag_maglev_ws *ws = ag_maglev_ws__new();

		CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
		CU_ASSERT_EQUAL(ag_maglev__build_ws(b, 3, 13, 1, t2, ws), 0);
		CU_ASSERT_EQUAL(ag_maglev__build_ws(b, 50, M, 7, t2, ws), 0);
		CU_ASSERT_EQUAL(memcmp(t1, t2, M * sizeof(*t1)), 0);
		ag_maglev_ws__free(ws);
	}
	free(t1);
	free(t2);
}

static void test_balance_equal(void)
{
	static const unsigned int sizes[] = {1, 2, 3, 7, 10, 100, 1000};
	struct ag_maglev_backend *b = calloc(1000, sizeof(*b));
	unsigned int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	rng_seed(202);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		make_backends(b, sizes[i], 1);
		check_balance(b, sizes[i], M, rng_next());
		/* The weight's scale must not matter, only ratios. */
		make_backends(b, sizes[i], 1u << 24);
		check_balance(b, sizes[i], M, rng_next());
	}
	free(b);
}

static void test_balance_weighted(void)
{
	static const uint32_t w112[] = {1, 1, 2}, w1234[] = {1, 2, 3, 4}, w1_255[] = {1, 255},
			      wbig[] = {1u << 24, 3, (1u << 24) - 1},
			      wmax[] = {UINT32_MAX, UINT32_MAX - 1, UINT32_MAX / 3};
	static const struct {
		const uint32_t *w;
		unsigned int n;
	} cases[] = {
	    {w112, 3}, {w1234, 4}, {w1_255, 2}, {wbig, 3}, {wmax, 3},
	};
	struct ag_maglev_backend *b = calloc(AG_MAX_BACKENDS, sizeof(*b));
	unsigned int i, j, round;

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	rng_seed(303);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		make_backends(b, cases[i].n, 0);
		for (j = 0; j < cases[i].n; j++)
			b[j].weight = cases[i].w[j];
		check_balance(b, cases[i].n, M, rng_next());
	}

	/* Random weights 1..255 (the config range) and 1..2^24 (compiled weights). */
	for (round = 0; round < 4; round++) {
		unsigned int n = (round & 1) ? 100 : 10;
		uint32_t range = (round & 2) ? (1u << 24) : 255;

		make_backends(b, n, 0);
		for (j = 0; j < n; j++)
			b[j].weight = 1 + rng_next() % range;
		check_balance(b, n, M, rng_next());
	}

	/* The largest fleet, on the smallest and the largest tables. */
	make_backends(b, AG_MAX_BACKENDS, 0);
	for (j = 0; j < AG_MAX_BACKENDS; j++)
		b[j].weight = 1 + rng_next() % 255;
	check_balance(b, AG_MAX_BACKENDS, AG_RING_SIZE_MAX, rng_next());

	/* The smallest table (1% is not one slot there): 13 = 4 + 4 + 5. */
	{
		uint32_t t[AG_RING_SIZE_MIN];
		unsigned int cnt[3];

		make_backends(b, 3, 1);
		CU_ASSERT_EQUAL_FATAL(ag_maglev__build(b, 3, AG_RING_SIZE_MIN, 9, t), 0);
		count_slots(t, AG_RING_SIZE_MIN, 3, cnt);
		for (j = 0; j < 3; j++)
			CU_ASSERT(cnt[j] == 4 || cnt[j] == 5);
	}
	free(b);
}

static void test_zero_weight(void)
{
	struct ag_maglev_backend b[10];
	uint32_t *t = table_new(M), *t2 = table_new(M);
	unsigned int cnt[10], i;
	uint32_t s;

	rng_seed(404);
	make_backends(b, 10, 5);
	b[3].weight = 0;
	b[7].weight = 0;
	CU_ASSERT_EQUAL(ag_maglev__build(b, 10, M, 1, t), 0);
	count_slots(t, M, 10, cnt);
	CU_ASSERT_EQUAL(cnt[3], 0);
	CU_ASSERT_EQUAL(cnt[7], 0);
	for (i = 0; i < 10; i++)
		if (i != 3 && i != 7)
			CU_ASSERT(cnt[i] > 0);

	/* A zero-weight backend is as good as absent: same table without it. */
	b[3] = b[9];
	CU_ASSERT_EQUAL(ag_maglev__build(b, 9, M, 1, t2), 0);
	CU_ASSERT_EQUAL(memcmp(t, t2, M * sizeof(*t)), 0);

	make_backends(b, 10, 0);
	memset(t, 0, M * sizeof(*t));
	CU_ASSERT_EQUAL(ag_maglev__build(b, 10, M, 1, t), 0);
	for (s = 0; s < M; s++)
		CU_ASSERT_EQUAL_FATAL(t[s], AG_BACKEND_NONE);

	memset(t, 0, M * sizeof(*t));
	CU_ASSERT_EQUAL(ag_maglev__build(NULL, 0, M, 1, t), 0);
	for (s = 0; s < M; s++)
		CU_ASSERT_EQUAL_FATAL(t[s], AG_BACKEND_NONE);
	free(t);
	free(t2);
}

/*
 * Disruption bounds. Ideal churn for removing backend r is exactly the slots r
 * owned; Maglev adds some survivor-to-survivor moves because survivors that pick
 * up r's slots walk ahead in their permutations and take slots others held.
 * That extra grows with n/M (the paper asks for M >> 100 n). Measured over 500
 * random key sets and seeds at M = 65537 (changed slots / ideal):
 *   n = 10:  mean 1.025, worst 1.41 (remove); mean 1.026, worst 1.42 (double)
 *   n = 100: mean 1.564, worst 2.01 (remove); mean 1.568, worst 2.25 (double)
 * So each case must stay under the worst seen plus margin (1.5, 2.5), and the
 * mean over the 20 cases here under the measured mean plus margin (1.10, 1.75).
 * A builder whose permutations depended on position or on other backends
 * (e.g. input order instead of keys) changes most of the table and fails.
 */
struct churn_bound {
	unsigned int n;
	double each, mean;
};

static const struct churn_bound churn_bounds[] = {
    {10, 1.5, 1.10},
    {100, 2.5, 1.75},
};

#define CHURN_TRIALS 20

static void test_disruption_remove(void)
{
	struct ag_maglev_backend b[100], rest[100];
	uint32_t *before = table_new(M), *after = table_new(M);
	unsigned int c, trial, i, k;

	rng_seed(505);
	for (c = 0; c < sizeof(churn_bounds) / sizeof(churn_bounds[0]); c++) {
		unsigned int n = churn_bounds[c].n;
		double sum = 0;

		for (trial = 0; trial < CHURN_TRIALS; trial++) {
			uint32_t seed = rng_next(), s;
			unsigned int r, owned = 0, moved_survivor = 0, changed;

			make_backends(b, n, 1);
			r = rng_next() % n;
			CU_ASSERT_EQUAL_FATAL(ag_maglev__build(b, n, M, seed, before), 0);
			for (i = 0, k = 0; i < n; i++)
				if (i != r)
					rest[k++] = b[i];
			CU_ASSERT_EQUAL_FATAL(ag_maglev__build(rest, n - 1, M, seed, after), 0);

			for (s = 0; s < M; s++) {
				CU_ASSERT_NOT_EQUAL_FATAL(after[s], r);
				if (before[s] == r)
					owned++;
				else if (before[s] != after[s])
					moved_survivor++;
			}
			changed = ag_maglev__diff(before, after, M);
			CU_ASSERT_EQUAL(changed, owned + moved_survivor);
			CU_ASSERT_FATAL(owned > 0);
			CU_ASSERT((double)changed <= churn_bounds[c].each * owned);
			sum += (double)changed / owned;
		}
		CU_ASSERT(sum / CHURN_TRIALS <= churn_bounds[c].mean);
	}
	free(before);
	free(after);
}

static void test_disruption_double_weight(void)
{
	struct ag_maglev_backend b[100];
	uint32_t *before = table_new(M), *after = table_new(M);
	unsigned int cnt_before[100], cnt_after[100];
	unsigned int c, trial;

	rng_seed(606);
	for (c = 0; c < sizeof(churn_bounds) / sizeof(churn_bounds[0]); c++) {
		unsigned int n = churn_bounds[c].n;
		double sum = 0;

		for (trial = 0; trial < CHURN_TRIALS; trial++) {
			uint32_t seed = rng_next();
			unsigned int r, gained, changed;

			make_backends(b, n, 1);
			r = rng_next() % n;
			CU_ASSERT_EQUAL_FATAL(ag_maglev__build(b, n, M, seed, before), 0);
			b[r].weight = 2;
			CU_ASSERT_EQUAL_FATAL(ag_maglev__build(b, n, M, seed, after), 0);
			count_slots(before, M, n, cnt_before);
			count_slots(after, M, n, cnt_after);
			CU_ASSERT_FATAL(cnt_after[r] > cnt_before[r]);
			/*
			 * Ideal: only the slots r gains change. Each of those is a slot
			 * that must change, so changed >= gained holds for any builder.
			 */
			gained = cnt_after[r] - cnt_before[r];
			changed = ag_maglev__diff(before, after, M);
			CU_ASSERT(changed >= gained);
			CU_ASSERT((double)changed <= churn_bounds[c].each * gained);
			sum += (double)changed / gained;
		}
		CU_ASSERT(sum / CHURN_TRIALS <= churn_bounds[c].mean);
	}
	free(before);
	free(after);
}

static void test_errors(void)
{
	struct ag_maglev_backend b[3] = {
	    {.id = 0, .key = 10, .weight = 1},
	    {.id = 1, .key = 20, .weight = 1},
	    {.id = 2, .key = 30, .weight = 1},
	};
	struct ag_maglev_backend *many;
	uint32_t *t = table_new(AG_RING_SIZE_MAX);
	uint32_t s;

	/* Bad calls must leave the table as it was. */
	memset(t, 0xab, AG_RING_SIZE_MAX * sizeof(*t));
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, 65536, 1, t), -EINVAL);
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, 65535, 1, t), -EINVAL);
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, 11, 1, t), -EINVAL);	/* prime, < MIN */
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, 262147, 1, t), -EINVAL); /* prime, > MAX */
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, 0, 1, t), -EINVAL);
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, 2, 1, t), -EINVAL);
	CU_ASSERT_EQUAL(ag_maglev__build(NULL, 3, M, 1, t), -EINVAL);
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, M, 1, NULL), -EINVAL);

	b[2].key = 10; /* duplicate of b[0] */
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, M, 1, t), -EINVAL);
	b[2].weight = 0; /* even when the duplicate would get no slots */
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, M, 1, t), -EINVAL);
	b[2].key = 30;
	b[2].weight = 1;

	b[1].id = AG_MAX_BACKENDS;
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, M, 1, t), -EINVAL);
	b[1].id = AG_BACKEND_NONE;
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, M, 1, t), -EINVAL);
	b[1].id = 1;

	many = calloc(AG_MAX_BACKENDS + 1, sizeof(*many));
	CU_ASSERT_PTR_NOT_NULL_FATAL(many);
	for (s = 0; s <= AG_MAX_BACKENDS; s++) {
		many[s].id = s % AG_MAX_BACKENDS;
		many[s].key = s;
		many[s].weight = 1;
	}
	CU_ASSERT_EQUAL(ag_maglev__build(many, AG_MAX_BACKENDS + 1, M, 1, t), -EINVAL);
	free(many);

	for (s = 0; s < AG_RING_SIZE_MAX; s++)
		CU_ASSERT_EQUAL_FATAL(t[s], 0xababababu);

	/* The good call still works, at both ends of the size range. */
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, AG_RING_SIZE_MIN, 1, t), 0);
	CU_ASSERT_EQUAL(ag_maglev__build(b, 3, AG_RING_SIZE_MAX, 1, t), 0);
	free(t);
}

static void test_diff(void)
{
	uint32_t a[13], b[13];

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	CU_ASSERT_EQUAL(ag_maglev__diff(a, b, 13), 0);
	b[0] = 1;
	b[12] = AG_BACKEND_NONE;
	CU_ASSERT_EQUAL(ag_maglev__diff(a, b, 13), 2);
	CU_ASSERT_EQUAL(ag_maglev__diff(a, b, 12), 1);
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
	    {"is_prime", test_is_prime},
	    {"determinism", test_determinism},
	    {"balance_equal", test_balance_equal},
	    {"balance_weighted", test_balance_weighted},
	    {"zero_weight", test_zero_weight},
	    {"disruption_remove", test_disruption_remove},
	    {"disruption_double_weight", test_disruption_double_weight},
	    {"errors", test_errors},
	    {"diff", test_diff},
	};
	CU_pSuite suite;
	unsigned int i, failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return CU_get_error();
	suite = CU_add_suite("maglev", NULL, NULL);
	if (!suite)
		goto cleanup_registry;
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			goto cleanup_registry;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;

cleanup_registry:
	CU_cleanup_registry();
	return 1;
}
