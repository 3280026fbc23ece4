// SPDX-License-Identifier: BSD-3-Clause
/*
 * @include targets checked before libconfig opens them. libconfig 1.5 opens
 * an included file itself, with a blocking fopen(): an @include naming a FIFO
 * would hang anygated's event loop (reload, `check FILE`) until a writer came,
 * and a device would be read as a config. So every @include in the file, and
 * in the files it includes, is looked at first (stat, following links as
 * libconfig does); one that exists and is not a regular file is refused as
 * ag_cfg__read_text() refuses the top file. A missing one is left to
 * libconfig, which reports it with its line.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parse.h"

/* libconfig 1.5's own bound on nested includes (scanctx.c, MAX_INCLUDE_DEPTH). */
#define INCLUDE_DEPTH_MAX 10

/*
 * The name of an @include directive at line start p (libconfig's scanner: a
 * line of optional blanks, "@include", blanks, a quoted string with \\ and \"
 * escapes) copied into name; false when the line is none.
 */
static bool include_name(const char *p, const char *end, char *name, size_t size)
{
	size_t n = 0;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (end - p < 9 || memcmp(p, "@include", 8) || (p[8] != ' ' && p[8] != '\t'))
		return false;
	for (p += 8; p < end && (*p == ' ' || *p == '\t'); p++)
		;
	if (p >= end || *p++ != '"')
		return false;
	for (; p < end && *p != '"' && *p != '\n'; p++) {
		if (*p == '\\' && p + 1 < end && (p[1] == '"' || p[1] == '\\'))
			p++;
		if (n + 1 >= size)
			return false;
		name[n++] = *p;
	}
	name[n] = '\0';
	return p < end && *p == '"' && n > 0;
}

static bool check_text(struct ag_cfg_ctx *ctx, const char *file, const char *text, size_t len,
		       const char *dir, unsigned int depth);

/* The include named at file:line: refused unless missing or a regular file; then its own. */
static bool check_one(struct ag_cfg_ctx *ctx, const char *file, int line, const char *name,
		      const char *dir, unsigned int depth)
{
	char path[PATH_MAX];
	struct stat st;
	char *text;
	size_t len = 0;
	bool ok;
	int err = 0;

	if (snprintf(path, sizeof(path), "%s%s%s", name[0] == '/' || !dir ? "" : dir,
		     name[0] == '/' || !dir ? "" : "/", name) >= (int)sizeof(path))
		return true; /* libconfig refuses it by itself */
	if (stat(path, &st) < 0)
		return true;
	if (!S_ISREG(st.st_mode)) {
		ag_errors__add(ctx->errs, file, line, "@include",
			       "%s: %s, not a regular file: not read", name,
			       ag_config__file_kind(st.st_mode));
		ctx->n_errs++;
		return false;
	}
	if (depth + 1 >= INCLUDE_DEPTH_MAX)
		return true; /* libconfig refuses the nesting itself */
	text = ag_cfg__read_text(path, &len, &err);
	if (!text)
		return true; /* reported by libconfig or ag_cfg__scan_includes() */
	ok = check_text(ctx, name, text, len, dir, depth + 1);
	free(text);
	return ok;
}

static bool check_text(struct ag_cfg_ctx *ctx, const char *file, const char *text, size_t len,
		       const char *dir, unsigned int depth)
{
	const char *p = text, *end = text + len, *nl;
	char name[PATH_MAX];
	bool ok = true;
	int line = 1;

	for (; p < end; p = nl + 1, line++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (include_name(p, nl, name, sizeof(name)))
			ok &= check_one(ctx, file, line, name, dir, depth);
	}
	return ok;
}

bool ag_cfg__check_includes(struct ag_cfg_ctx *ctx, const char *text, size_t len, const char *dir)
{
	return check_text(ctx, ctx->path, text, len, dir, 0);
}
