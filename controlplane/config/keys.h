/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The declaration of every config key (keys.c): its place, type, range or
 * rule, default, restart-only flag and meaning, written once. The parser checks
 * and fills the structures of config.h from it, the unknown-key check and the
 * "is required" check read it, the reload check finds the restart-only keys in
 * it, and the key tables of docs/config.md are printed from it (doc.c).
 *
 * Private to the config library, its tests and its doc tool.
 */
#ifndef AG_CONFIG_KEYS_H
#define AG_CONFIG_KEYS_H

#include "schema.h"

/* The whole file: edge and accelerators, and every block under them. */
extern const struct ag_cfg_block ag_cfg_root;

#endif /* AG_CONFIG_KEYS_H */
