// SPDX-License-Identifier: BSD-3-Clause
/*
 * Typed values of a config file: each reader takes one libconfig setting and
 * either returns its value or records "file:line: key: problem" saying what was
 * expected and what was given. The bounds come from the key's declaration
 * (keys.c), so a message and the documented range cannot disagree.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* ------------------------------------------------------------------------- */
/* Problems                                                                   */

const char *ag_cfg__file(const struct ag_cfg_ctx *ctx, const config_setting_t *s)
{
	const char *f = s ? config_setting_source_file(s) : NULL;

	return f ? f : ctx->path;
}

int ag_cfg__line(const config_setting_t *s)
{
	return s ? config_setting_source_line(s) : 0;
}

void ag_cfg__err(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
		 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ag_errors__vadd(ctx->errs, ag_cfg__file(ctx, s), ag_cfg__line(s), key, fmt, ap);
	va_end(ap);
	ctx->n_errs++;
}

void ag_cfg__oom(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key)
{
	if (!ctx->oom)
		ag_cfg__err(ctx, s, key, "out of memory");
	ctx->oom = true;
}

void *ag_cfg__calloc(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key, size_t n,
		     size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		ag_cfg__oom(ctx, s, key);
	return p;
}

char *ag_cfg__strdup(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
		     const char *str)
{
	char *p = strdup(str);

	if (!p)
		ag_cfg__oom(ctx, s, key);
	return p;
}

/* ------------------------------------------------------------------------- */
/* Key paths and quoted values                                                */

/*
 * Keys are built into KEY_MAX buffers; one too long is cut short (only an
 * unknown key of absurd length can be), which still locates it with its line.
 */
static size_t key_append(char *out, size_t o, const char *s)
{
	while (*s && o < KEY_MAX - 1)
		out[o++] = *s++;
	out[o] = '\0';
	return o;
}

void ag_cfg__key_member(char *out, const char *prefix, const char *name)
{
	size_t o = key_append(out, 0, prefix);

	if (prefix[0])
		o = key_append(out, o, ".");
	key_append(out, o, name);
}

void ag_cfg__key_elem(char *out, const char *prefix, unsigned int i)
{
	char idx[16];

	snprintf(idx, sizeof(idx), "[%u]", i);
	key_append(out, key_append(out, 0, prefix), idx);
}

/* Bounded, and with control characters escaped so that one problem is one line. */
struct ag_cfg_quoted ag_cfg__quote(const char *in)
{
	struct ag_cfg_quoted q;
	size_t o = 0, i;

	q.s[o++] = '"';
	for (i = 0; in[i]; i++) {
		unsigned char c = in[i];

		if (o + 8 >= sizeof(q.s)) {
			memcpy(q.s + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '"' || c == '\\') {
			q.s[o++] = '\\';
			q.s[o++] = c;
		} else if (c < 0x20 || c >= 0x7f) {
			o += snprintf(q.s + o, sizeof(q.s) - o, "\\x%02x", c);
		} else {
			q.s[o++] = c;
		}
	}
	q.s[o++] = '"';
	q.s[o] = '\0';
	return q;
}

/* ------------------------------------------------------------------------- */
/* Setting types                                                              */

const char *ag_cfg__type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

bool ag_cfg__is_int(const config_setting_t *s)
{
	int t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

/*
 * libconfig reads a hex literal without L suffix as a 32-bit pattern: take it
 * as unsigned, so 0xdeadbeef means 3735928559 and not a negative number.
 */
long long ag_cfg__int_of(const config_setting_t *s)
{
	if (config_setting_type(s) == CONFIG_TYPE_INT &&
	    config_setting_get_format(s) == CONFIG_FORMAT_HEX)
		return (uint32_t)config_setting_get_int(s);
	return config_setting_get_int64(s);
}

/* Scalars in an array [...] or a list (...): both read the same. */
bool ag_cfg__is_seq(const config_setting_t *s)
{
	int t = config_setting_type(s);

	return t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST;
}

/* Groups come in a list (...); an empty [] is accepted as an empty list. */
bool ag_cfg__is_group_list(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_LIST ||
	       (config_setting_type(s) == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0);
}

bool ag_cfg__want_group(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key)
{
	if (config_setting_type(s) == CONFIG_TYPE_GROUP)
		return true;
	ag_cfg__err(ctx, s, key, "must be a group { ... } (got %s)", ag_cfg__type_name(s));
	return false;
}

bool ag_cfg__want_group_list(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key)
{
	if (ag_cfg__is_group_list(s))
		return true;
	ag_cfg__err(ctx, s, key, "must be a list ( { ... }, ... ) (got %s)", ag_cfg__type_name(s));
	return false;
}

bool ag_cfg__want_seq(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key)
{
	if (ag_cfg__is_seq(s))
		return true;
	ag_cfg__err(ctx, s, key, "must be an array [ ... ] (got %s)", ag_cfg__type_name(s));
	return false;
}

bool ag_cfg__want_string(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key)
{
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return true;
	ag_cfg__err(ctx, s, key, "must be a string (got %s)", ag_cfg__type_name(s));
	return false;
}

bool ag_cfg__check_count(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k,
			 const config_setting_t *s, const char *key)
{
	long long n = config_setting_length(s);

	if (k->min == 0 && k->max == 0)
		return true;
	if (n >= k->min && n <= k->max)
		return true;
	if (k->max == UINT_MAX)
		ag_cfg__err(ctx, s, key, "must have at least %lld %s (got %lld)", k->min,
			    k->min == 1 ? "entry" : "entries", n);
	else
		ag_cfg__err(ctx, s, key, "must have %lld-%lld entries (got %lld)", k->min, k->max,
			    n);
	return false;
}

bool ag_cfg__is_token(const char *s)
{
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return false;
	return true;
}

/* Digits only; bounds in a config are 16-bit or prefix lengths: reject early, no overflow. */
bool ag_cfg__parse_uint(const char *s, const char **end, unsigned long *v)
{
	unsigned long x = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		x = x * 10 + (*p - '0');
		if (x > 1000000)
			return false;
	}
	*v = x;
	*end = p;
	return true;
}

/* ------------------------------------------------------------------------- */
/* Numbers                                                                    */

int ag_cfg__int(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k, const config_setting_t *s,
		const char *key, long long *out)
{
	const char *problem;
	long long v;

	if (!ag_cfg__is_int(s)) {
		ag_cfg__err(ctx, s, key, "must be an integer (got %s)", ag_cfg__type_name(s));
		return AG_CFG_INVALID;
	}
	v = ag_cfg__int_of(s);
	if (k->min < k->max && (v < k->min || v > k->max)) {
		ag_cfg__err(ctx, s, key, "must be %lld-%lld (got %lld)", k->min, k->max, v);
		return AG_CFG_INVALID;
	}
	problem = k->check ? k->check(v) : NULL;
	if (problem) {
		ag_cfg__err(ctx, s, key, "%s (got %lld)", problem, v);
		return AG_CFG_INVALID;
	}
	*out = v;
	return AG_CFG_VALUE;
}

int ag_cfg__float(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k, const config_setting_t *s,
		  const char *key, double *out)
{
	double v;

	if (ag_cfg__is_int(s)) {
		v = ag_cfg__int_of(s);
	} else if (config_setting_type(s) == CONFIG_TYPE_FLOAT) {
		v = config_setting_get_float(s);
	} else {
		ag_cfg__err(ctx, s, key, "must be a number (got %s)", ag_cfg__type_name(s));
		return AG_CFG_INVALID;
	}
	if (!(v >= k->min && v <= k->max)) {
		ag_cfg__err(ctx, s, key, "must be %.1f-%.1f (got %g)", (double)k->min,
			    (double)k->max, v);
		return AG_CFG_INVALID;
	}
	*out = v;
	return AG_CFG_VALUE;
}

static bool parse_range_str(const char *s, unsigned long min, unsigned long max, uint16_t *first,
			    uint16_t *last, bool *reversed)
{
	unsigned long a, b;
	const char *p;

	*reversed = false;
	if (!ag_cfg__parse_uint(s, &p, &a))
		return false;
	b = a;
	if (*p == '-' && !ag_cfg__parse_uint(p + 1, &p, &b))
		return false;
	if (*p || a < min || b > max)
		return false;
	if (a > b) {
		*reversed = true;
		return false;
	}
	*first = a;
	*last = b;
	return true;
}

int ag_cfg__range(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k, const config_setting_t *s,
		  const char *key, uint16_t *first, uint16_t *last)
{
	bool reversed;
	const char *v;
	long long n;

	if (ag_cfg__is_int(s)) {
		n = ag_cfg__int_of(s);
		if (n < k->min || n > k->max) {
			ag_cfg__err(ctx, s, key, "%s must be %lld-%lld (got %lld)", k->unit, k->min,
				    k->max, n);
			return AG_CFG_INVALID;
		}
		*first = *last = n;
		return AG_CFG_VALUE;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		ag_cfg__err(ctx, s, key, "must be a %s number or a \"first-last\" string (got %s)",
			    k->unit, ag_cfg__type_name(s));
		return AG_CFG_INVALID;
	}
	v = config_setting_get_string(s);
	if (parse_range_str(v, k->min, k->max, first, last, &reversed))
		return AG_CFG_VALUE;
	if (reversed)
		ag_cfg__err(ctx, s, key, "range must run from low to high (got %s)",
			    ag_cfg__quote(v).s);
	else
		ag_cfg__err(ctx, s, key,
			    "must be a %s %lld-%lld or a range \"first-last\" within it (got %s)",
			    k->unit, k->min, k->max, ag_cfg__quote(v).s);
	return AG_CFG_INVALID;
}

/* ------------------------------------------------------------------------- */
/* Strings                                                                    */

int ag_cfg__string(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
		   const char **out)
{
	if (!ag_cfg__want_string(ctx, s, key))
		return AG_CFG_INVALID;
	*out = config_setting_get_string(s);
	return AG_CFG_VALUE;
}

int ag_cfg__enum(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k, const config_setting_t *s,
		 const char *key, int *out)
{
	const char *const *names = k->words;
	char list[128] = "";
	const char *v;
	size_t o = 0;
	int i;

	if (ag_cfg__string(ctx, s, key, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	for (i = 0; names[i]; i++) {
		if (!strcmp(names[i], v)) {
			*out = i;
			return AG_CFG_VALUE;
		}
	}
	for (i = 0; names[i] && o < sizeof(list); i++)
		o += snprintf(list + o, sizeof(list) - o, "%s\"%s\"",
			      i == 0	     ? ""
			      : names[i + 1] ? ", "
					     : " or ",
			      names[i]);
	ag_cfg__err(ctx, s, key, "must be %s (got %s)", list, ag_cfg__quote(v).s);
	return AG_CFG_INVALID;
}

/* A string that `check` accepts (it returns NULL, else the problem words). */
static int checked_string(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
			  const char *(*check)(const char *v), const char **out)
{
	const char *v, *problem;

	if (ag_cfg__string(ctx, s, key, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	problem = check(v);
	if (problem) {
		ag_cfg__err(ctx, s, key, "%s (got %s)", problem, ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	*out = v;
	return AG_CFG_VALUE;
}

int ag_cfg__name(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
		 const char **out)
{
	return checked_string(ctx, s, key, ag_config__check_name, out);
}

static const char *check_abs_path(const char *v)
{
	if (v[0] != '/')
		return "must be an absolute path";
	if (strlen(v) >= PATH_MAX)
		return "must be shorter than PATH_MAX";
	return NULL;
}

int ag_cfg__path(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k, const config_setting_t *s,
		 const char *key, const char **out)
{
	const char *v;

	if (checked_string(ctx, s, key, check_abs_path, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (k->max && strlen(v) > (size_t)k->max) {
		ag_cfg__err(ctx, s, key, "must be at most %lld bytes long (got %zu)", k->max,
			    strlen(v));
		return AG_CFG_INVALID;
	}
	*out = v;
	return AG_CFG_VALUE;
}

/*
 * A group name that exists on this host, resolved now so that a typo is a
 * config error (file:line), not a socket that silently lets nobody in.
 */
int ag_cfg__unix_group(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k,
		       const config_setting_t *s, const char *key, const char **out, gid_t *gid)
{
	struct group gr, *res = NULL;
	char buf[4096];
	const char *v;
	int err;

	if (ag_cfg__string(ctx, s, key, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (strlen(v) < (size_t)k->min || strlen(v) > (size_t)k->max || !ag_cfg__is_token(v) ||
	    strchr(v, ':')) {
		ag_cfg__err(ctx, s, key, "must be a group name of %lld-%lld characters (got %s)",
			    k->min, k->max, ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	err = getgrnam_r(v, &gr, buf, sizeof(buf), &res);
	if (err || !res) {
		if (err && err != ENOENT && err != ESRCH)
			ag_cfg__err(ctx, s, key, "cannot look up group %s: %s", ag_cfg__quote(v).s,
				    strerror(err));
		else
			ag_cfg__err(ctx, s, key, "no such group (got %s)", ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	*out = v;
	*gid = gr.gr_gid;
	return AG_CFG_VALUE;
}

void ag_cfg__strings(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
		     char ***out, unsigned int *n)
{
	char ekey[KEY_MAX];
	unsigned int i, len;
	char **v;

	len = config_setting_length(s);
	if (!len)
		return;
	v = ag_cfg__calloc(ctx, s, key, len, sizeof(*v));
	if (!v)
		return;
	*out = v;
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		const char *str;

		ag_cfg__key_elem(ekey, key, i);
		if (ag_cfg__string(ctx, e, ekey, &str) != AG_CFG_VALUE)
			continue;
		if (!str[0]) {
			ag_cfg__err(ctx, e, ekey, "must not be empty");
			continue;
		}
		v[*n] = ag_cfg__strdup(ctx, e, ekey, str);
		if (v[*n])
			(*n)++;
	}
}

/* ------------------------------------------------------------------------- */
/* Single-field validators, shared with the control socket                    */

const char *ag_config__check_weight(long long v)
{
	return v < 0 || v > 255 ? "must be 0-255" : NULL;
}

const char *ag_config__check_dial(long long v)
{
	return v < 0 || v > 100 ? "must be 0-100" : NULL;
}

const char *ag_config__check_name(const char *s)
{
	size_t i, len = strlen(s);

	if (len == 0 || len >= AG_NAME_MAX)
		return "must be 1-63 characters of A-Z a-z 0-9 . _ -";
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return "must be 1-63 characters of A-Z a-z 0-9 . _ -";
	return NULL;
}

/* Maglev fills every slot only when M is prime to each backend's skip. */
const char *ag_cfg__check_prime(long long n)
{
	long long d;

	if (n < 2)
		return "must be a prime number";
	for (d = 2; d * d <= n; d++)
		if (n % d == 0)
			return "must be a prime number";
	return NULL;
}
