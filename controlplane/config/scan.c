// SPDX-License-Identifier: BSD-3-Clause
/*
 * Integer literals libconfig 1.5 would silently truncate: found in the text of
 * the file and of every file it @includes, and refused before any value is
 * judged.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/*
 * libconfig 1.5 reads a decimal integer without an L suffix through a 32-bit
 * int and a hex one through a 32-bit pattern: 4294968320 becomes 1024 without
 * a word. Find such literals in the text (outside strings and comments) and
 * refuse them, so no value ever changes on its way in.
 */
static void scan_literal(struct ag_cfg_ctx *ctx, const char *file, int line, const char *tok,
			 size_t len)
{
	char text[48];
	const char *p = tok, *end = tok + len;
	bool neg = false, hex, l_suffix = false;
	unsigned long long v = 0, limit, limit64;
	bool overflow = false;

	snprintf(text, sizeof(text), "%.*s", (int)(len < 40 ? len : 40), tok);
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	hex = end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
	if (hex)
		p += 2;
	while (end > p && (end[-1] == 'L' || end[-1] == 'l')) {
		end--;
		l_suffix = true;
	}
	for (; p < end; p++) {
		unsigned int d;

		if (isdigit((unsigned char)*p))
			d = *p - '0';
		else if (hex && isxdigit((unsigned char)*p))
			d = tolower((unsigned char)*p) - 'a' + 10;
		else
			return; /* a float or not a number: libconfig judges it */
		if (v > (ULLONG_MAX - d) / (hex ? 16 : 10))
			overflow = true;
		v = v * (hex ? 16 : 10) + d;
	}
	if (hex) {
		limit64 = ULLONG_MAX;
		limit = UINT32_MAX;
	} else {
		limit64 = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
		limit = neg ? (unsigned long long)INT32_MAX + 1 : INT32_MAX;
	}
	if (l_suffix)
		limit = limit64;
	if (!overflow && v <= limit)
		return;
	ctx->n_errs++;
	if (l_suffix || overflow || v > limit64)
		ag_errors__add(ctx->errs, file, line, "syntax error",
			       "integer %s does not fit in 64 bits", text);
	else
		ag_errors__add(
		    ctx->errs, file, line, "syntax error",
		    "integer %s does not fit in 32 bits (write %sL for a 64-bit integer)", text,
		    text);
}

void ag_cfg__scan_text(struct ag_cfg_ctx *ctx, const char *file, const char *p, const char *end)
{
	int line = 1;

	while (p < end) {
		if (*p == '\n') {
			line++;
			p++;
		} else if (*p == '#' || (*p == '/' && p + 1 < end && p[1] == '/')) {
			while (p < end && *p != '\n')
				p++;
		} else if (*p == '/' && p + 1 < end && p[1] == '*') {
			for (p += 2; p < end && !(*p == '*' && p + 1 < end && p[1] == '/'); p++)
				if (*p == '\n')
					line++;
			p += 2;
		} else if (*p == '"') {
			for (p++; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				if (*p == '\n')
					line++;
			}
			p++;
		} else if (isalpha((unsigned char)*p) || *p == '*' || *p == '@') {
			/* a setting name, true/false or @include: may contain digits */
			for (p++; p < end && (isalnum((unsigned char)*p) || *p == '-' ||
					      *p == '_' || *p == '*');
			     p++)
				;
		} else if (isdigit((unsigned char)*p) ||
			   ((*p == '-' || *p == '+' || *p == '.') && p + 1 < end &&
			    isdigit((unsigned char)p[1]))) {
			const char *tok = p;

			/* the whole token, exponent signs included, so floats pass whole */
			for (p++; p < end; p++) {
				if (isalnum((unsigned char)*p) || *p == '.')
					continue;
				if ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E') &&
				    !(tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X')))
					continue;
				break;
			}
			scan_literal(ctx, file, line, tok, p - tok);
		} else {
			p++;
		}
	}
}

/* The included files libconfig read (recorded as written in @include). */
void ag_cfg__scan_includes(struct ag_cfg_ctx *ctx, const config_t *c, const char *dir)
{
	unsigned int i;

	for (i = 0; i < c->num_filenames; i++) {
		const char *name = c->filenames[i];
		char *path = NULL, *text;
		size_t len = 0;
		int err = 0;

		if (name[0] == '/' || !dir)
			path = strdup(name);
		else if (asprintf(&path, "%s/%s", dir, name) < 0)
			path = NULL;
		if (!path) {
			ag_cfg__oom(ctx, NULL, NULL);
			return;
		}
		text = ag_cfg__read_text(path, &len, &err);
		if (!text) {
			ctx->n_errs++;
			ag_errors__add(ctx->errs, name, 0, NULL, "cannot read: %s",
				       ag_cfg__read_problem(err));
		} else {
			ag_cfg__scan_text(ctx, name, text, text + len);
		}
		free(text);
		free(path);
	}
}
