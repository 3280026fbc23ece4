/* SPDX-License-Identifier: BSD-3-Clause */
#include "json_out.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Cell text: one line always, so tables stay aligned. */
static char *cell_text(const json_t *v)
{
	const char *s;
	char *out = NULL;
	size_t len, i, o = 0;
	double d;

	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		len = json_string_length(v);
		out = malloc(4 * len + 1);
		if (!out)
			return NULL;
		for (i = 0; i < len; i++) {
			unsigned char c = s[i];

			if (c == '\n') {
				memcpy(out + o, "\\n", 2);
				o += 2;
			} else if (c == '\t') {
				memcpy(out + o, "\\t", 2);
				o += 2;
			} else if (c < 0x20 || c == 0x7f) {
				o += sprintf(out + o, "\\x%02x", c);
			} else {
				out[o++] = c;
			}
		}
		out[o] = '\0';
		return out;
	case JSON_INTEGER:
		if (asprintf(&out, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
			return NULL;
		return out;
	case JSON_REAL:
		d = json_real_value(v);
		/* Whole numbers without a fraction; others to 6 significant digits. */
		if (d == floor(d) && fabs(d) < 1e15) {
			if (asprintf(&out, "%.0f", d) < 0)
				return NULL;
		} else if (asprintf(&out, "%.6g", d) < 0) {
			return NULL;
		}
		return out;
	case JSON_TRUE:
		return strdup("true");
	case JSON_FALSE:
		return strdup("false");
	case JSON_NULL:
		return strdup("-");
	default:
		return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	}
}

/* Columns on a terminal: UTF-8 code points (bytes that do not continue a character). */
static size_t width_of(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void pad(FILE *out, size_t n)
{
	while (n--)
		fputc(' ', out);
}

static bool all_objects(const json_t *arr)
{
	size_t i;
	json_t *v;

	if (!json_array_size(arr))
		return false;
	json_array_foreach(arr, i, v) if (!json_is_object(v)) return false;
	return true;
}

static int print_table(FILE *out, const json_t *arr, int indent)
{
	size_t nrows = json_array_size(arr), ncols = 0, r, c, *width = NULL;
	const char **cols = NULL;
	char **cells = NULL;
	bool *numeric = NULL;
	int err = -ENOMEM;
	const char *key;
	json_t *row, *v;

	/* Columns: the first row's keys in order, then keys only later rows have. */
	json_array_foreach(arr, r, row)
	{
		json_object_foreach((json_t *)row, key, v)
		{
			const char **p;

			for (c = 0; c < ncols; c++)
				if (!strcmp(cols[c], key))
					break;
			if (c < ncols)
				continue;
			p = realloc(cols, (ncols + 1) * sizeof(*cols));
			if (!p)
				goto out;
			cols = p;
			cols[ncols++] = key;
		}
	}
	if (!ncols) {
		fputs("(none)\n", out);
		err = 0;
		goto out;
	}
	cells = calloc(nrows * ncols, sizeof(*cells));
	width = calloc(ncols, sizeof(*width));
	numeric = calloc(ncols, sizeof(*numeric));
	if (!cells || !width || !numeric)
		goto out;
	for (c = 0; c < ncols; c++) {
		width[c] = width_of(cols[c]);
		numeric[c] = true;
	}
	/* By index up to nrows, as the printing below reads them: every cell is filled. */
	for (r = 0; r < nrows; r++) {
		row = json_array_get(arr, r);
		for (c = 0; c < ncols; c++) {
			v = json_object_get(row, cols[c]);
			cells[r * ncols + c] = v ? cell_text(v) : strdup("-");
			if (!cells[r * ncols + c])
				goto out;
			if (v && !json_is_null(v) && !json_is_number(v))
				numeric[c] = false;
			if (width_of(cells[r * ncols + c]) > width[c])
				width[c] = width_of(cells[r * ncols + c]);
		}
	}
	/* Header in capitals, numbers right-aligned, no trailing blanks. */
	pad(out, indent);
	for (c = 0; c < ncols; c++) {
		size_t w = width_of(cols[c]);
		const char *k;

		if (numeric[c])
			pad(out, width[c] - w);
		for (k = cols[c]; *k; k++)
			fputc(toupper((unsigned char)*k), out);
		if (c + 1 < ncols)
			pad(out, (numeric[c] ? 0 : width[c] - w) + 2);
	}
	fputc('\n', out);
	for (r = 0; r < nrows; r++) {
		pad(out, indent);
		for (c = 0; c < ncols; c++) {
			const char *s = cells[r * ncols + c];
			size_t w = width_of(s);

			if (numeric[c])
				pad(out, width[c] - w);
			fputs(s, out);
			if (c + 1 < ncols)
				pad(out, (numeric[c] ? 0 : width[c] - w) + 2);
		}
		fputc('\n', out);
	}
	err = 0;
out:
	if (cells)
		for (r = 0; r < nrows * ncols; r++)
			free(cells[r]);
	free(cells);
	free(width);
	free(numeric);
	free(cols);
	return err;
}

static int print_object(FILE *out, const json_t *obj)
{
	size_t kw = 0;
	const char *key;
	json_t *v;
	char *s;
	int err;

	json_object_foreach((json_t *)obj, key, v) if (width_of(key) > kw) kw = width_of(key);
	json_object_foreach((json_t *)obj, key, v)
	{
		if (json_is_array(v) && all_objects(v)) {
			fprintf(out, "%s:\n", key);
			err = print_table(out, v, 2);
			if (err)
				return err;
			continue;
		}
		s = cell_text(v);
		if (!s)
			return -ENOMEM;
		fprintf(out, "%s:", key);
		pad(out, kw - width_of(key) + 1);
		fprintf(out, "%s\n", s);
		free(s);
	}
	return 0;
}

int ag_json_out__human(FILE *out, const json_t *data)
{
	size_t i;
	json_t *v;
	char *s;
	int err = 0;

	switch (json_typeof(data)) {
	case JSON_OBJECT:
		err = print_object(out, data);
		break;
	case JSON_ARRAY:
		if (!json_array_size(data)) {
			fputs("(none)\n", out);
		} else if (all_objects(data)) {
			err = print_table(out, data, 0);
		} else {
			json_array_foreach(data, i, v)
			{
				s = cell_text(v);
				if (!s)
					return -ENOMEM;
				fprintf(out, "%s\n", s);
				free(s);
			}
		}
		break;
	case JSON_STRING:
		/* A lone string is a message: print it whole, line breaks included. */
		fwrite(json_string_value(data), 1, json_string_length(data), out);
		fputc('\n', out);
		break;
	case JSON_NULL:
		break;
	default:
		s = cell_text(data);
		if (!s)
			return -ENOMEM;
		fprintf(out, "%s\n", s);
		free(s);
		break;
	}
	if (!err && (fflush(out) || ferror(out)))
		err = -EIO;
	return err;
}
