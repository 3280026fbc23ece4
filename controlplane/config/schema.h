/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vocabulary a config key is declared in: its type, flags, own parser,
 * and the block of keys it belongs to. The declarations themselves are in
 * keys.c (keys.h); the parser that reads a block by its declaration is
 * block.c (parse.h).
 *
 * Private to the config library, its tests and its doc tool.
 */
#ifndef AG_CONFIG_SCHEMA_H
#define AG_CONFIG_SCHEMA_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum ag_cfg_type {
	AG_CFG_INT,	   /* integer within min-max (when min < max), then `check` */
	AG_CFG_FLOAT,	   /* number within min-max; an integer is accepted (double) */
	AG_CFG_ENUM,	   /* one of words[]: stored as values[i] (int), or i */
	AG_CFG_STRING,	   /* a string (char *); a parser of its own judges min-max length */
	AG_CFG_NAME,	   /* ag_config__check_name (char *, or char[AG_NAME_MAX]) */
	AG_CFG_PATH,	   /* absolute path, at most max bytes when max > 0 (char *) */
	AG_CFG_UNIX_GROUP, /* a group of this host, min-max characters (char *, gid at offset2) */
	AG_CFG_RANGE,	   /* N or "A-B" within min-max (uint16_t first, last at offset2) */
	AG_CFG_ADDR,	   /* unicast IPv4 "a.b.c.d" (uint32_t, network order) */
	AG_CFG_ADDRS,	   /* array of unicast IPv4, min-max entries, no duplicates */
	AG_CFG_STRINGS,	   /* array of non-empty strings (char **, count at offset2) */
	AG_CFG_RANGES,	   /* array of port ranges */
	AG_CFG_PREFIXES,   /* array of "a.b.c.d/len" */
	AG_CFG_GROUP,	   /* { ... }: the keys of block `sub`, in a struct at offset */
	AG_CFG_LIST,	   /* ( { ... }, ... ) of block `sub`: array at offset, count at offset2 */
};

#define AG_CFG_F_REQUIRED (1u << 0) /* absent: "is required" */
#define AG_CFG_F_RESTART  (1u << 1) /* a reload may not change it (restart.c) */
#define AG_CFG_F_INLINE	  (1u << 2) /* NAME kept in char[AG_NAME_MAX], not malloc'd */

struct ag_cfg_scope;
struct ag_cfg_key;
struct ag_cfg_block;

/* Results of a key's parse. */
enum { AG_CFG_INVALID = -1, AG_CFG_ABSENT = 0, AG_CFG_VALUE = 1 };

/*
 * A key's own parser, for values a type alone cannot judge (duplicates,
 * subnets, a list's elements): called with the member present (a LIST once
 * it is known to be a list of min-max groups and its array is allocated),
 * returns AG_CFG_VALUE or AG_CFG_INVALID with the problem recorded.
 */
typedef int (*ag_cfg_parse_fn)(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			       config_setting_t *m, const char *key);

struct ag_cfg_key {
	const char *name;
	enum ag_cfg_type type;
	unsigned int flags; /* AG_CFG_F_* */
	/*
	 * INT, FLOAT, RANGE: the value's bounds; STRING, PATH, UNIX_GROUP: its
	 * length; arrays and lists: the number of entries. 0, 0: unbounded.
	 */
	long long min, max;
	const char *limit; /* the consts.h name of max, for the docs */
	/* entries of this key over the whole file: at most total, named total_limit */
	long long total;
	const char *total_limit, *total_over;
	long long def, def_hi;	  /* INT, ENUM (word index), RANGE (def-def_hi) */
	double fdef;		  /* FLOAT */
	const char *sdef;	  /* strings; NULL: none */
	const char *const *words; /* ENUM, NULL-terminated */
	const int *values;	  /* ENUM: the value stored for each word; NULL: its index */
	const char *unit;	  /* RANGE: the number's name ("port"); STRING: of the length */
	const char *only;	  /* valid only when the block's selector is this word */
	/* INT: a rule beyond the range; NULL when valid, else the problem words */
	const char *(*check)(long long v);
	ag_cfg_parse_fn parse; /* instead of the parse by type (a LIST's: of its elements) */
	/* AG_CFG_F_RESTART on a LIST: whether a reload keeps it */
	bool (*same)(const void *old_base, const void *new_base);
	const struct ag_cfg_block *sub; /* GROUP, LIST */
	const struct ag_cfg_key *elem;	/* RANGES: what each entry is */
	size_t offset, offset2;		/* in the block's structure */
	unsigned int size;		/* of the field at offset */
	struct {
		const char *type;  /* instead of the type's name */
		const char *def;   /* instead of the default derived from the value */
		const char *range; /* instead of the range derived from min-max */
		const char *rule;  /* more rules, after the range */
		const char *help;  /* the meaning */
	} doc;
};

struct ag_cfg_block {
	const char *id;	      /* docs/config.md marker "keys:<id>"; NULL: no table */
	const char *path;     /* dotted path: "edge.dpdk", "...health_check" */
	const char *selector; /* the ENUM key that `only` words refer to */
	const struct ag_cfg_key *keys;
	unsigned int n_keys;
	bool has_line; /* the structure has an `int line` at line_offset */
	size_t line_offset;
	/* After the keys, present or not: cross-key rules and derived values. */
	void (*finish)(struct ag_cfg_scope *sc);
};

/* The key `name` of block b, NULL when it has none. */
const struct ag_cfg_key *ag_cfg__key(const struct ag_cfg_block *b, const char *name);

/*
 * Calls fn on every block reachable from b (b first, then each GROUP or LIST
 * key's block, depth first in key order).
 */
void ag_cfg__walk(const struct ag_cfg_block *b, void (*fn)(const struct ag_cfg_block *, void *),
		  void *arg);

#endif /* AG_CONFIG_SCHEMA_H */
