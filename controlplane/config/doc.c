// SPDX-License-Identifier: BSD-3-Clause
/*
 * The key tables of docs/config.md, printed from the declarations (keys.c):
 * type, default, range and rule, meaning. What the parser enforces by a
 * declared bound is described from that bound, so the page says what the
 * code checks. scripts/gen-config-doc.sh writes them into the page; a unit
 * test fails when the page differs.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "parse.h"

static const char *const type_names[] = {
    [AG_CFG_INT] = "int",
    [AG_CFG_FLOAT] = "float (int accepted)",
    [AG_CFG_ENUM] = "string",
    [AG_CFG_STRING] = "string",
    [AG_CFG_NAME] = "name",
    [AG_CFG_PATH] = "absolute path",
    [AG_CFG_UNIX_GROUP] = "string",
    [AG_CFG_RANGE] = "port range",
    [AG_CFG_ADDR] = "IPv4",
    [AG_CFG_ADDRS] = "array of IPv4",
    [AG_CFG_STRINGS] = "array of strings",
    [AG_CFG_RANGES] = "array of port ranges",
    [AG_CFG_PREFIXES] = "array of `\"a.b.c.d/len\"`",
    [AG_CFG_GROUP] = "group",
    [AG_CFG_LIST] = "list of groups",
};

/* A table cell of parts separated by "; ". */
struct cell {
	FILE *out;
	bool started;
};

static void part(struct cell *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void part(struct cell *c, const char *fmt, ...)
{
	va_list ap;

	if (c->started)
		fputs("; ", c->out);
	c->started = true;
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
}

static void print_default(const struct ag_cfg_key *k, FILE *out)
{
	if (k->flags & AG_CFG_F_REQUIRED)
		fprintf(out, "**required**%s%s", k->only ? " for " : "", k->only ? k->only : "");
	else if (k->doc.def)
		fputs(k->doc.def, out);
	else if (k->type == AG_CFG_INT)
		fprintf(out, "`%lld`", k->def);
	else if (k->type == AG_CFG_FLOAT)
		fprintf(out, "`%g`", k->fdef);
	else if (k->type == AG_CFG_ENUM)
		fprintf(out, "`\"%s\"`", k->words[k->def]);
	else if (k->type == AG_CFG_RANGE)
		fprintf(out, "`\"%lld-%lld\"`", k->def, k->def_hi);
	else if (k->sdef)
		fprintf(out, "`\"%s\"`", k->sdef);
	else
		fputs("none", out);
}

/* `"a"`, `"b"` or `"c"`: as the parser's message lists them. */
static void print_words(struct cell *c, const char *const *w)
{
	unsigned int i;

	part(c, "`\"%s\"`", w[0]);
	for (i = 1; w[i]; i++)
		fprintf(c->out, "%s`\"%s\"`", w[i + 1] ? ", " : " or ", w[i]);
}

/* Entries of an array or list: "1-16", "≤ 32", "≥ 1", with the limit's name. */
static void print_count(struct cell *c, const struct ag_cfg_key *k)
{
	if (k->min == 0 && k->max == 0)
		return;
	if (k->max == UINT_MAX)
		part(c, "≥ %lld", k->min);
	else if (k->min == 0)
		part(c, "≤ %lld", k->max);
	else
		part(c, "%lld-%lld", k->min, k->max);
	if (k->limit)
		fprintf(c->out, " (`%s`)", k->limit);
}

/* What a check refuses, in its own words: those for an impossible value. */
static void print_check(struct cell *c, const struct ag_cfg_key *k)
{
	const char *w = k->check(LLONG_MIN);

	part(c, "%s", strncmp(w, "must be ", 8) ? w : w + 8);
}

static void print_range(struct cell *c, const struct ag_cfg_key *k)
{
	if (k->doc.range) {
		part(c, "%s", k->doc.range);
		return;
	}
	switch (k->type) {
	case AG_CFG_INT:
		if (k->min < k->max)
			part(c, "%lld-%lld", k->min, k->max);
		if (k->check)
			print_check(c, k);
		break;
	case AG_CFG_FLOAT:
		part(c, "%.1f-%.1f", (double)k->min, (double)k->max);
		break;
	case AG_CFG_RANGE:
		part(c, "%lld-%lld", k->min, k->max);
		break;
	case AG_CFG_ENUM:
		print_words(c, k->words);
		break;
	case AG_CFG_STRING:
	case AG_CFG_PATH:
		if (k->max && k->min)
			part(c, "%lld-%lld %s", k->min, k->max, k->unit ? k->unit : "bytes");
		else if (k->max)
			part(c, "≤ %lld %s", k->max, k->unit ? k->unit : "bytes");
		break;
	case AG_CFG_UNIX_GROUP:
		part(c, "%lld-%lld characters, no spaces or `:`", k->min, k->max);
		part(c, "must exist on the host (\"no such group\")");
		break;
	default:
		if (k->type == AG_CFG_STRINGS && !k->parse)
			part(c, "non-empty strings");
		print_count(c, k);
		break;
	}
}

static void print_rule(const struct ag_cfg_key *k, FILE *out)
{
	struct cell c = {.out = out};

	if (k->only)
		part(&c, "%s only", k->only);
	print_range(&c, k);
	if (k->total)
		part(&c, "≤ %lld over all %s (`%s`)", k->total, k->total_over, k->total_limit);
	if (k->doc.rule)
		part(&c, "%s", k->doc.rule);
	if (k->flags & AG_CFG_F_RESTART)
		part(&c, "restart only");
}

/* " text |", or " |" for an empty cell */
static void print_cell(FILE *out, const char *text)
{
	fprintf(out, text[0] ? " %s |" : " |", text);
}

static int print_row(const struct ag_cfg_key *k, FILE *out)
{
	char *rule = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&rule, &len);

	if (!m)
		return -errno;
	print_rule(k, m);
	if (fclose(m)) {
		free(rule);
		return -ENOMEM;
	}
	fprintf(out, "| `%s` | %s | ", k->name, k->doc.type ? k->doc.type : type_names[k->type]);
	print_default(k, out);
	fputs(" |", out);
	print_cell(out, rule);
	print_cell(out, k->doc.help ? k->doc.help : "");
	fputc('\n', out);
	free(rule);
	return 0;
}

int ag_cfg__doc_table(const struct ag_cfg_block *b, FILE *out)
{
	unsigned int i;
	int err;

	fputs("| key | type | default | range / rule | meaning |\n", out);
	fputs("|---|---|---|---|---|\n", out);
	for (i = 0; i < b->n_keys; i++) {
		err = print_row(&b->keys[i], out);
		if (err)
			return err;
	}
	return ferror(out) ? -EIO : 0;
}
