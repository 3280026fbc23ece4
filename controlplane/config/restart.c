// SPDX-License-Identifier: BSD-3-Clause
/*
 * Keys a reload cannot change (the fast path is attached, the socket bound,
 * the tables sized with them): those flagged AG_CFG_F_RESTART in keys.c. A
 * reload that changes one is refused whole, naming each.
 */
#include <errno.h>
#include <string.h>

#include "keys.h"
#include "parse.h"

static bool same_string(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

/* Whether a reload keeps key k (of blocks at old and new). */
static bool same_value(const struct ag_cfg_key *k, const char *old, const char *new)
{
	switch (k->type) {
	case AG_CFG_INT:
	case AG_CFG_ENUM:
		return !memcmp(old + k->offset, new + k->offset, k->size);
	case AG_CFG_UNIX_GROUP:
		/* what the group resolves to: its gid */
		return *(const gid_t *)(old + k->offset2) == *(const gid_t *)(new + k->offset2);
	case AG_CFG_STRING:
	case AG_CFG_NAME:
	case AG_CFG_PATH:
		if (k->flags & AG_CFG_F_INLINE)
			return !strcmp(old + k->offset, new + k->offset);
		return same_string(*(char *const *)(old + k->offset),
				   *(char *const *)(new + k->offset));
	default:
		return k->same(old, new);
	}
}

static int check_block(const struct ag_cfg_block *b, const char *old, const char *new,
		       const char *prefix, const struct ag_config *cfg, struct ag_errors *errs)
{
	char key[KEY_MAX];
	unsigned int i;
	int err = 0;

	for (i = 0; i < b->n_keys; i++) {
		const struct ag_cfg_key *k = &b->keys[i];

		ag_cfg__key_member(key, prefix, k->name);
		if (k->type == AG_CFG_GROUP) {
			if (check_block(k->sub, old + k->offset, new + k->offset, key, cfg, errs))
				err = -EINVAL;
		} else if ((k->flags & AG_CFG_F_RESTART) && !same_value(k, old, new)) {
			/* at the edge's line: the keys live there */
			ag_errors__add(errs, cfg->path, cfg->edge.line, key,
				       "changes only with a restart (running: unchanged)");
			err = -EINVAL;
		}
	}
	return err;
}

int ag_config__check_restart_only(const struct ag_config *old, const struct ag_config *new,
				  struct ag_errors *errs)
{
	return check_block(&ag_cfg_root, (const char *)old, (const char *)new, "", new, errs);
}
