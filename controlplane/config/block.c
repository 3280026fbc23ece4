// SPDX-License-Identifier: BSD-3-Clause
/*
 * A block of the config file parsed by its declaration (keys.c): members that
 * are not declared are "unknown key", declared ones are read in declaration
 * order (so problems come out in the order the docs list the keys), checked
 * by type and range, and stored in the block's structure; a key with a parser
 * of its own gets it instead. Defaults are stored when the scope opens, so a
 * key left out, or refused, reads as its default.
 *
 * A block with a selector (health_check's protocol) has keys that are valid
 * only for one of the selector's words: they are refused under another word,
 * and parsed after the others once the word is known.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int ag_cfg__int_at_most(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			const config_setting_t *m, const char *key, const char *bound,
			long long limit, long long *out)
{
	if (ag_cfg__int(sc->ctx, k, m, key, out) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	/* against an invalid bound, nothing can be said */
	if (!ag_cfg__was_bad(sc, bound) && *out > limit) {
		ag_cfg__err(sc->ctx, m, key, "must be %lld-%lld, at most %s (got %lld)", k->min,
			    limit, bound, *out);
		return AG_CFG_INVALID;
	}
	return AG_CFG_VALUE;
}

void *ag_cfg__field(const struct ag_cfg_scope *sc, const struct ag_cfg_key *k)
{
	return (char *)sc->base + k->offset;
}

bool ag_cfg__was_bad(const struct ag_cfg_scope *sc, const char *name)
{
	const struct ag_cfg_key *k = ag_cfg__key(sc->block, name);

	return k && (sc->bad & (1ull << (k - sc->block->keys)));
}

/* Integers and enums go into fields of 1, 2, 4 or 8 bytes (uint8_t ... enum). */
static void store_uint(void *p, unsigned int size, long long v)
{
	uint8_t u8 = v;
	uint16_t u16 = v;
	uint32_t u32 = v;
	uint64_t u64 = v;

	if (size == 1)
		memcpy(p, &u8, 1);
	else if (size == 2)
		memcpy(p, &u16, 2);
	else if (size == 4)
		memcpy(p, &u32, 4);
	else
		memcpy(p, &u64, 8);
}

static long long load_uint(const void *p, unsigned int size)
{
	uint64_t u64 = 0;
	uint32_t u32 = 0;
	uint16_t u16 = 0;
	uint8_t u8 = 0;

	if (size == 1)
		memcpy(&u8, p, 1);
	else if (size == 2)
		memcpy(&u16, p, 2);
	else if (size == 4)
		memcpy(&u32, p, 4);
	else
		memcpy(&u64, p, 8);
	return (long long)(u64 | u32 | u16 | u8);
}

static long long enum_value(const struct ag_cfg_key *k, int i)
{
	return k->values ? k->values[i] : i;
}

/* The word of an ENUM key as stored in the scope's structure. */
static const char *enum_word(const struct ag_cfg_scope *sc, const struct ag_cfg_key *k)
{
	long long v = load_uint(ag_cfg__field(sc, k), k->size);
	int i;

	for (i = 0; k->words[i]; i++)
		if (enum_value(k, i) == v)
			return k->words[i];
	return NULL;
}

static void store_string(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			 const config_setting_t *s, const char *key, const char *v)
{
	char **p = ag_cfg__field(sc, k);

	if (k->flags & AG_CFG_F_INLINE) {
		snprintf((char *)p, AG_NAME_MAX, "%s", v);
		return;
	}
	free(*p);
	*p = ag_cfg__strdup(sc->ctx, s, key, v);
}

static bool is_string(const struct ag_cfg_key *k)
{
	return k->type == AG_CFG_STRING || k->type == AG_CFG_NAME || k->type == AG_CFG_PATH;
}

/*
 * A key's default. A string default of a key valid for one selector word is
 * stored only under that word (only_keys): elsewhere NULL says "not this
 * protocol".
 */
static void store_default(struct ag_cfg_scope *sc, const struct ag_cfg_key *k)
{
	char key[KEY_MAX];
	void *p = ag_cfg__field(sc, k);

	switch (k->type) {
	case AG_CFG_INT:
		store_uint(p, k->size, k->def);
		break;
	case AG_CFG_ENUM:
		store_uint(p, k->size, enum_value(k, k->def));
		break;
	case AG_CFG_FLOAT:
		memcpy(p, &k->fdef, sizeof(double));
		break;
	case AG_CFG_RANGE:
		store_uint(p, sizeof(uint16_t), k->def);
		store_uint((char *)sc->base + k->offset2, sizeof(uint16_t), k->def_hi);
		break;
	case AG_CFG_UNIX_GROUP:
		*(gid_t *)((char *)sc->base + k->offset2) = (gid_t)-1;
		break;
	default:
		if (is_string(k) && k->sdef && !k->only) {
			ag_cfg__key_member(key, sc->key, k->name);
			store_string(sc, k, sc->grp, key, k->sdef);
		}
		break;
	}
}

void ag_cfg__scope(struct ag_cfg_scope *sc, struct ag_cfg_ctx *ctx, struct ag_cfg_scope *up,
		   const struct ag_cfg_block *b, const config_setting_t *grp, const char *key,
		   void *base)
{
	unsigned int i;

	*sc = (struct ag_cfg_scope){
	    .ctx = ctx, .block = b, .grp = grp, .key = key, .base = base, .up = up};
	for (i = 0; i < b->n_keys; i++)
		if (!(b->keys[i].flags & AG_CFG_F_REQUIRED))
			store_default(sc, &b->keys[i]);
}

bool ag_cfg__elem(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
		  const char *key, unsigned int i, char *ekey, void *base, struct ag_cfg_scope *esc)
{
	config_setting_t *e = config_setting_get_elem(m, i);

	ag_cfg__key_elem(ekey, key, i);
	if (!ag_cfg__want_group(sc->ctx, e, ekey))
		return false;
	ag_cfg__scope(esc, sc->ctx, sc, k->sub, e, ekey, base);
	return true;
}

/* A LIST key's array and count, in the scope's structure. */
static void *list_array(const struct ag_cfg_scope *sc, const struct ag_cfg_key *k)
{
	void *array;

	memcpy(&array, ag_cfg__field(sc, k), sizeof(array));
	return array;
}

static unsigned int *list_count(const struct ag_cfg_scope *sc, const struct ag_cfg_key *k)
{
	return (unsigned int *)((char *)sc->base + k->offset2);
}

void ag_cfg__parse_elems(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key, bool (*keep)(struct ag_cfg_scope *esc))
{
	unsigned int i, len = config_setting_length(m), *n = list_count(sc, k);
	char *array = list_array(sc, k), ekey[KEY_MAX];
	struct ag_cfg_scope esc;

	for (i = 0; i < len; i++) {
		if (!ag_cfg__elem(sc, k, m, key, i, ekey, array + *n * k->size, &esc))
			continue;
		ag_cfg__parse_block(&esc);
		if (!esc.bad && (!keep || keep(&esc)))
			(*n)++;
	}
}

void ag_cfg__parse_all_elems(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			     config_setting_t *m, const char *key, unsigned int *total,
			     const char *what)
{
	unsigned int i, len = config_setting_length(m), *n = list_count(sc, k);
	char *array = list_array(sc, k), ekey[KEY_MAX];
	struct ag_cfg_scope esc;

	for (i = 0; i < len; i++) {
		if (!ag_cfg__elem(sc, k, m, key, i, ekey, array + *n * k->size, &esc))
			continue;
		(*n)++;
		if (total && ++*total == k->total + 1)
			ag_cfg__err(sc->ctx, esc.grp, ekey,
				    "exceeds the limit of %lld %s over all %s", k->total, what,
				    k->total_over);
		ag_cfg__parse_block(&esc);
	}
}

/*
 * A LIST key: a list of groups with min-max entries, its array allocated for
 * all of them; then its parser, or each element kept when valid.
 */
static int parse_list(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
		      const char *key)
{
	unsigned int len;
	void *array;

	if (!ag_cfg__want_group_list(sc->ctx, m, key) || !ag_cfg__check_count(sc->ctx, k, m, key))
		return AG_CFG_INVALID;
	len = config_setting_length(m);
	if (len) {
		array = ag_cfg__calloc(sc->ctx, m, key, len, k->size);
		if (!array)
			return AG_CFG_INVALID;
		memcpy(ag_cfg__field(sc, k), &array, sizeof(array));
	}
	if (k->parse)
		return k->parse(sc, k, m, key);
	ag_cfg__parse_elems(sc, k, m, key, NULL);
	return AG_CFG_VALUE;
}

/* A GROUP key: its block's defaults and finish hold whether or not it is written. */
static int parse_group(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
		       const char *key)
{
	bool ok = m && ag_cfg__want_group(sc->ctx, m, key);
	struct ag_cfg_scope sub;

	ag_cfg__scope(&sub, sc->ctx, sc, k->sub, ok ? m : NULL, key, ag_cfg__field(sc, k));
	ag_cfg__parse_block(&sub);
	if (!m)
		return AG_CFG_ABSENT;
	return ok && !sub.bad ? AG_CFG_VALUE : AG_CFG_INVALID;
}

static int parse_scalar(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			const char *key)
{
	struct ag_cfg_ctx *ctx = sc->ctx;
	void *p = ag_cfg__field(sc, k), *p2 = (char *)sc->base + k->offset2;
	const char *v;
	long long n;
	int i, ret;

	switch (k->type) {
	case AG_CFG_INT:
		ret = ag_cfg__int(ctx, k, m, key, &n);
		if (ret == AG_CFG_VALUE)
			store_uint(p, k->size, n);
		return ret;
	case AG_CFG_FLOAT:
		return ag_cfg__float(ctx, k, m, key, p);
	case AG_CFG_ENUM:
		ret = ag_cfg__enum(ctx, k, m, key, &i);
		if (ret == AG_CFG_VALUE)
			store_uint(p, k->size, enum_value(k, i));
		return ret;
	case AG_CFG_RANGE:
		return ag_cfg__range(ctx, k, m, key, p, p2);
	case AG_CFG_ADDR:
		return ag_cfg__addr(ctx, m, key, p);
	case AG_CFG_UNIX_GROUP:
		ret = ag_cfg__unix_group(ctx, k, m, key, &v, p2);
		break;
	case AG_CFG_NAME:
		ret = ag_cfg__name(ctx, m, key, &v);
		break;
	case AG_CFG_PATH:
		ret = ag_cfg__path(ctx, k, m, key, &v);
		break;
	default:
		ret = ag_cfg__string(ctx, m, key, &v);
		break;
	}
	if (ret == AG_CFG_VALUE)
		store_string(sc, k, m, key, v);
	return ret;
}

int ag_cfg__value(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
		  const char *key)
{
	switch (k->type) {
	case AG_CFG_GROUP:
		return parse_group(sc, k, m, key);
	case AG_CFG_STRINGS:
		if (!ag_cfg__want_seq(sc->ctx, m, key) || !ag_cfg__check_count(sc->ctx, k, m, key))
			return AG_CFG_INVALID;
		ag_cfg__strings(sc->ctx, m, key, ag_cfg__field(sc, k),
				(unsigned int *)((char *)sc->base + k->offset2));
		return AG_CFG_VALUE;
	case AG_CFG_LIST:
		return parse_list(sc, k, m, key);
	case AG_CFG_ADDRS:
	case AG_CFG_RANGES:
	case AG_CFG_PREFIXES:
		/* keys.c gives each of these a parser; the unit test checks it */
		ag_cfg__err(sc->ctx, m, key, "has no parser");
		return AG_CFG_INVALID;
	default:
		return parse_scalar(sc, k, m, key);
	}
}

/* An absent key: "is required", or its default; a group's defaults and finish all the same. */
static int parse_absent(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, const char *key)
{
	int ret = AG_CFG_ABSENT;

	if ((k->flags & AG_CFG_F_REQUIRED) && k->only) {
		ag_cfg__err(sc->ctx, sc->grp, key, "is required when %s = \"%s\"",
			    sc->block->selector, k->only);
		ret = AG_CFG_INVALID;
	} else if (k->flags & AG_CFG_F_REQUIRED) {
		ag_cfg__err(sc->ctx, sc->grp, key, "is required");
		ret = AG_CFG_INVALID;
	}
	if (k->type == AG_CFG_GROUP)
		parse_group(sc, k, NULL, key);
	return ret;
}

int ag_cfg__parse_key(struct ag_cfg_scope *sc, const struct ag_cfg_key *k)
{
	config_setting_t *m = config_setting_get_member(sc->grp, k->name);
	char key[KEY_MAX];
	int ret;

	ag_cfg__key_member(key, sc->key, k->name);
	if (!m)
		ret = parse_absent(sc, k, key);
	else if (k->parse && k->type != AG_CFG_LIST) /* a LIST's parser runs in parse_list */
		ret = k->parse(sc, k, m, key);
	else
		ret = ag_cfg__value(sc, k, m, key);
	if (ret == AG_CFG_INVALID)
		sc->bad |= 1ull << (k - sc->block->keys);
	return ret;
}

static void check_unknown(struct ag_cfg_scope *sc)
{
	char key[KEY_MAX];
	int i, n = config_setting_length(sc->grp);

	for (i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(sc->grp, i);
		const char *name = config_setting_name(m);

		if (ag_cfg__key(sc->block, name))
			continue;
		ag_cfg__key_member(key, sc->key, name);
		ag_cfg__err(sc->ctx, m, key, "unknown key");
	}
}

/*
 * The keys valid only under one word of the selector: before the others are
 * parsed (!parse), each written under another word than `word` is refused;
 * after them (parse), each of `word` is parsed, its default first.
 */
static void only_keys(struct ag_cfg_scope *sc, const char *word, bool parse)
{
	const struct ag_cfg_block *b = sc->block;
	char key[KEY_MAX];
	unsigned int i;

	for (i = 0; i < b->n_keys; i++) {
		const struct ag_cfg_key *k = &b->keys[i];
		const config_setting_t *m = config_setting_get_member(sc->grp, k->name);
		bool mine = k->only && !strcmp(k->only, word);

		ag_cfg__key_member(key, sc->key, k->name);
		if (!parse && k->only && !mine && m) {
			ag_cfg__err(sc->ctx, m, key, "only valid with %s = \"%s\"", b->selector,
				    k->only);
		} else if (parse && mine) {
			if (is_string(k) && k->sdef)
				store_string(sc, k, sc->grp, key, k->sdef);
			ag_cfg__parse_key(sc, k);
		}
	}
}

void ag_cfg__parse_block(struct ag_cfg_scope *sc)
{
	const struct ag_cfg_block *b = sc->block;
	const char *word = NULL;
	unsigned int i;

	if (sc->grp) {
		if (b->has_line)
			*(int *)((char *)sc->base + b->line_offset) = ag_cfg__line(sc->grp);
		check_unknown(sc);
	}
	for (i = 0; sc->grp && i < b->n_keys; i++) {
		const struct ag_cfg_key *k = &b->keys[i];

		if (k->only)
			continue;
		/* with an unknown selector word, the keys that depend on it cannot be judged */
		if (ag_cfg__parse_key(sc, k) != AG_CFG_INVALID && b->selector &&
		    !strcmp(k->name, b->selector)) {
			word = enum_word(sc, k);
			only_keys(sc, word, false);
		}
	}
	if (word)
		only_keys(sc, word, true);
	if (b->finish)
		b->finish(sc);
}
