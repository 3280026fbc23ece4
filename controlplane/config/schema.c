/* SPDX-License-Identifier: BSD-3-Clause */
/* Finding keys in a block's declaration, and walking the blocks under it. */
#include <string.h>

#include "schema.h"

const struct ag_cfg_key *ag_cfg__key(const struct ag_cfg_block *b, const char *name)
{
	unsigned int i;

	for (i = 0; i < b->n_keys; i++)
		if (!strcmp(b->keys[i].name, name))
			return &b->keys[i];
	return NULL;
}

void ag_cfg__walk(const struct ag_cfg_block *b, void (*fn)(const struct ag_cfg_block *, void *),
		  void *arg)
{
	unsigned int i;

	fn(b, arg);
	for (i = 0; i < b->n_keys; i++)
		if (b->keys[i].sub)
			ag_cfg__walk(b->keys[i].sub, fn, arg);
}
