/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What every fuzz target shares: libFuzzer's entry point, and CHECK, which
 * turns a property that does not hold into a crash libFuzzer reports and
 * keeps the input of (an abort, whatever NDEBUG says).
 */
#ifndef AG_FUZZ_H
#define AG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif /* AG_FUZZ_H */
