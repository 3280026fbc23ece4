// SPDX-License-Identifier: BSD-3-Clause
/*
 * ag-config-doc: print the key table of every config block, each between the
 * markers docs/config.md carries it in:
 *
 *   <!-- keys:edge begin -->
 *   | key | type | default | range / rule | meaning |
 *   ...
 *   <!-- keys:edge end -->
 *
 * scripts/gen-config-doc.sh puts them into the page.
 */
#include <stdio.h>
#include <stdlib.h>

#include "doc.h"
#include "keys.h"

static void print_block(const struct ag_cfg_block *b, void *arg)
{
	int *err = arg;

	if (!b->id)
		return;
	printf("<!-- keys:%s begin -->\n", b->id);
	if (ag_cfg__doc_table(b, stdout))
		*err = 1;
	printf("<!-- keys:%s end -->\n", b->id);
}

int main(void)
{
	int err = 0;

	ag_cfg__walk(&ag_cfg_root, print_block, &err);
	if (fflush(stdout) || err) {
		perror("ag-config-doc");
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
