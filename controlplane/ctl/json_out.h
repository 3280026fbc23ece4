/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Human rendering of control replies for anygatectl: one generic renderer, so
 * a new daemon command needs no client change. An array of objects becomes an
 * aligned table (columns in the key order of the first object, keys that only
 * later rows have appended), an object becomes "key: value" lines (a member
 * that is an array of objects becomes an indented table under "key:"), a
 * scalar prints as it is; anything nested deeper prints as compact JSON.
 */
#ifndef AG_JSON_OUT_H
#define AG_JSON_OUT_H

#include <jansson.h>
#include <stdio.h>

/* Returns 0, -ENOMEM, or -EIO when writing to out failed. */
int ag_json_out__human(FILE *out, const json_t *data);

#endif /* AG_JSON_OUT_H */
