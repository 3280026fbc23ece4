/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The key tables of docs/config.md, printed from the declarations (doc.c):
 * ag-config-doc and scripts/gen-config-doc.sh write them into the page, and a
 * unit test fails while page and declarations differ.
 */
#ifndef AG_CONFIG_DOC_H
#define AG_CONFIG_DOC_H

#include <stdio.h>

#include "schema.h"

/*
 * The markdown table of a block's keys (header line, rule line, one row per
 * key), as docs/config.md carries it between <!-- keys:ID begin/end -->.
 */
int ag_cfg__doc_table(const struct ag_cfg_block *b, FILE *out);

#endif /* AG_CONFIG_DOC_H */
