/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The main() of a CUnit suite, once: register the tests in order, run them
 * verbosely (scripts/test.sh reads CUnit's Run Summary), and exit non-zero
 * when anything failed or CUnit itself could not run them.
 */
#ifndef AG_TEST_CU_MAIN_H
#define AG_TEST_CU_MAIN_H

#include <CUnit/Basic.h>

struct ag_cu_test {
	const char *name;
	CU_TestFunc fn;
};

static inline int ag_cu__main(const char *suite_name, CU_InitializeFunc init, CU_CleanupFunc clean,
			      const struct ag_cu_test *tests, unsigned int n)
{
	unsigned int i, failed = 0;
	CU_pSuite suite;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite(suite_name, init, clean);
	for (i = 0; suite && i < n; i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			suite = NULL;
	if (suite) {
		CU_basic_set_mode(CU_BRM_VERBOSE);
		CU_basic_run_tests();
		failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	}
	if (!suite || CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

#define AG_CU_MAIN(name, init, clean, tests)                                                       \
	ag_cu__main(name, init, clean, tests, sizeof(tests) / sizeof((tests)[0]))

#endif /* AG_TEST_CU_MAIN_H */
