/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Read by the static analyzer only (scripts/check.sh force-includes it into the
 * CUnit tests; it is never compiled into a test). A failed *_FATAL assertion
 * longjmps out of the test, but CU_assertImplementation() is not marked as
 * such, so without this model the analyzer walks on past every fatal check
 * and reports the NULL it was meant to stop. Here a failed fatal assertion
 * ends the path; everything else still goes through CUnit's own function.
 */
#include <CUnit/CUnit.h>

void ag_check__fatal_assertion_failed(void) __attribute__((noreturn));

#define CU_assertImplementation(value, line, cond, file, fn, fatal)                                \
	({                                                                                         \
		CU_BOOL ag_check_v_ = !!(value), ag_check_f_ = (fatal);                            \
		if (!ag_check_v_ && ag_check_f_)                                                   \
			ag_check__fatal_assertion_failed();                                        \
		(CU_assertImplementation)(ag_check_v_, line, cond, file, fn, ag_check_f_);         \
	})
