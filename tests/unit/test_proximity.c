/* SPDX-License-Identifier: BSD-3-Clause */
/* Nearest-region order with hysteresis. */
#include <CUnit/Basic.h>
#include <string.h>

#include "proximity.h"

#define MS 1000000ull

static void check(const uint32_t *got, const uint32_t *want, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		CU_ASSERT_EQUAL(got[i], want[i]);
}

static void test_fresh_sort(void)
{
	uint32_t g[] = {10, 11, 12}, order[3];
	uint64_t rtt[] = {60 * MS, 2 * MS, 20 * MS};
	uint32_t want[] = {11, 12, 10};

	ag_proximity__order(g, rtt, 3, NULL, order);
	check(order, want, 3);
}

static void test_unknown_last_in_config_order(void)
{
	uint32_t g[] = {1, 2, 3, 4}, order[4];
	uint64_t rtt[] = {0, 30 * MS, 0, 5 * MS};
	uint32_t want[] = {4, 2, 1, 3};

	ag_proximity__order(g, rtt, 4, NULL, order);
	check(order, want, 4);
}

static void test_hysteresis_keeps_near_equal(void)
{
	uint32_t g[] = {1, 2}, prev[] = {1, 2}, order[2];
	/* 2 is 10% nearer: not enough to overtake. */
	uint64_t rtt[] = {20 * MS, 18 * MS};

	ag_proximity__order(g, rtt, 2, prev, order);
	check(order, prev, 2);
	/* Without a previous order, plain sort. */
	ag_proximity__order(g, rtt, 2, NULL, order);
	CU_ASSERT_EQUAL(order[0], 2);
}

static void test_hysteresis_needs_absolute_margin(void)
{
	uint32_t g[] = {1, 2}, prev[] = {1, 2}, order[2];
	/* 50% nearer but only 0.5 ms: sub-millisecond jitter never reorders. */
	uint64_t rtt[] = {1 * MS, MS / 2};

	ag_proximity__order(g, rtt, 2, prev, order);
	check(order, prev, 2);
}

static void test_clear_winner_overtakes(void)
{
	uint32_t g[] = {1, 2, 3}, prev[] = {1, 2, 3}, order[3];
	uint64_t rtt[] = {60 * MS, 20 * MS, 2 * MS};
	uint32_t want[] = {3, 2, 1};

	ag_proximity__order(g, rtt, 3, prev, order);
	check(order, want, 3);
}

static void test_recovered_region_returns_first(void)
{
	uint32_t g[] = {1, 2}, prev[] = {2, 1}, order[2];
	/* Region 1 was down (no RTT) and is back at 2 ms; 2 is at 20 ms. */
	uint64_t rtt[] = {2 * MS, 20 * MS};
	uint64_t down[] = {0, 20 * MS};

	ag_proximity__order(g, down, 2, prev, order);
	CU_ASSERT_EQUAL(order[0], 2);
	ag_proximity__order(g, rtt, 2, prev, order);
	CU_ASSERT_EQUAL(order[0], 1);
}

static void test_prev_of_other_set_ignored(void)
{
	uint32_t g[] = {1, 2}, prev[] = {7, 8}, order[2];
	uint64_t rtt[] = {20 * MS, 18 * MS};

	ag_proximity__order(g, rtt, 2, prev, order);
	CU_ASSERT_EQUAL(order[0], 2);
	CU_ASSERT_EQUAL(order[1], 1);
}

static void test_median(void)
{
	uint64_t a[] = {5, 0, 1, 9}, b[] = {4, 2}, c[] = {0, 0};

	CU_ASSERT_EQUAL(ag_proximity__median(a, 4), 5);
	CU_ASSERT_EQUAL(ag_proximity__median(b, 2), 3);
	CU_ASSERT_EQUAL(ag_proximity__median(c, 2), 0);
}

int main(void)
{
	CU_pSuite s;
	unsigned int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return CU_get_error();
	s = CU_add_suite("proximity", NULL, NULL);
	CU_add_test(s, "fresh sort by RTT", test_fresh_sort);
	CU_add_test(s, "unknown RTT last, config order", test_unknown_last_in_config_order);
	CU_add_test(s, "hysteresis keeps near-equal regions", test_hysteresis_keeps_near_equal);
	CU_add_test(s, "hysteresis needs an absolute margin",
		    test_hysteresis_needs_absolute_margin);
	CU_add_test(s, "a clearly nearer region overtakes", test_clear_winner_overtakes);
	CU_add_test(s, "a recovered region comes back first", test_recovered_region_returns_first);
	CU_add_test(s, "previous order of another set ignored", test_prev_of_other_set_ignored);
	CU_add_test(s, "median skips unknowns", test_median);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
