// SPDX-License-Identifier: BSD-3-Clause
/*
 * anygate configuration: libconfig text -> struct ag_config.
 *
 * The whole file is parsed into a fresh struct and every problem is collected
 * as "file:line: key: problem" before anything is handed back; a file with any
 * problem yields NULL and nothing partial, so a reload can refuse a bad file
 * whole and keep running on the old one. The key is the dotted path of the
 * setting (accelerators[0].listeners[1].ports[0]) so an operator can find it
 * even in a file whose line numbers they do not have at hand.
 *
 * Limits come from consts.h, the same names the BPF maps and DPDK tables are
 * sized with, so a config that loads always fits the fast path.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "abi.h"

/* Dotted setting paths: the deepest is about 80 characters. */
#define KEY_MAX		256
/* A config larger than this is a mistake (a wrong file), not a fleet. */
#define CONFIG_FILE_MAX (64u << 20)
/* Bounds on free-form health check strings: they go into one probe packet. */
#define HC_PATH_MAX	1024
#define HC_HOST_MAX	255
#define HC_PAYLOAD_MAX	512
/* Unix socket paths must fit sun_path with its terminating NUL. */
#define SOCK_PATH_MAX	(sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

#define DEFAULT_BPFFS_DIR	 "/sys/fs/bpf/anygate"
#define DEFAULT_CONTROL_SOCKET	 "/run/anygate/anygated.sock"
#define DEFAULT_STATE_FILE	 "/var/lib/anygate/state.json"
#define DEFAULT_METRICS		 "127.0.0.1:9464"
#define DEFAULT_SHM_NAME	 "anygate"
#define DEFAULT_WEIGHT		 128
#define DEFAULT_DIAL		 100
#define DEFAULT_OVERPROVISIONING 1.4
#define HC_INTERVAL_MIN		 100
#define HC_INTERVAL_MAX		 30000
#define HC_INTERVAL_DEFAULT	 1000
#define HC_THRESHOLD_MIN	 1
#define HC_THRESHOLD_MAX	 10
#define HC_THRESHOLD_DEFAULT	 2

/* ------------------------------------------------------------------------- */
/* Error collection                                                           */

/*
 * Recorded in place of a message that could not be allocated. One slot of the
 * array is always kept free for it, so running out of memory is never silent.
 */
static char errors_oom_msg[] = "out of memory: further problems were not recorded";

void ag_errors__init(struct ag_errors *errs)
{
	errs->msgs = NULL;
	errs->count = 0;
	errs->cap = 0;
}

void ag_errors__free(struct ag_errors *errs)
{
	unsigned int i;

	for (i = 0; i < errs->count; i++)
		if (errs->msgs[i] != errors_oom_msg)
			free(errs->msgs[i]);
	free(errs->msgs);
	ag_errors__init(errs);
}

bool ag_errors__oom(const struct ag_errors *errs)
{
	return errs->count && errs->msgs[errs->count - 1] == errors_oom_msg;
}

static void errors_vadd(struct ag_errors *errs, const char *file, int line, const char *key,
			const char *fmt, va_list ap)
{
	char *problem = NULL, *msg = NULL;
	char where[32] = "";
	int ret;

	if (ag_errors__oom(errs))
		return;
	if (errs->count + 2 > errs->cap) {
		unsigned int cap = errs->cap ? errs->cap * 2 : 16;
		char **msgs = realloc(errs->msgs, cap * sizeof(*msgs));

		if (!msgs)
			goto oom;
		errs->msgs = msgs;
		errs->cap = cap;
	}
	if (vasprintf(&problem, fmt, ap) < 0) {
		problem = NULL;
		goto oom;
	}
	if (line > 0)
		snprintf(where, sizeof(where), ":%d", line);
	if (key)
		ret = asprintf(&msg, "%s%s: %s: %s", file, where, key, problem);
	else
		ret = asprintf(&msg, "%s%s: %s", file, where, problem);
	free(problem);
	if (ret < 0)
		goto oom;
	errs->msgs[errs->count++] = msg;
	return;
oom:
	if (errs->count < errs->cap)
		errs->msgs[errs->count++] = errors_oom_msg;
}

void ag_errors__add(struct ag_errors *errs, const char *file, int line, const char *key,
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errors_vadd(errs, file, line, key, fmt, ap);
	va_end(ap);
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

/* ------------------------------------------------------------------------- */
/* Parse context and small helpers                                            */

struct vip_seen {
	uint32_t addr;
	unsigned int accel;
	int line;
};

struct ctx {
	const char *path; /* as the caller named it: used in every message */
	struct ag_errors *errs;
	unsigned int n_errs; /* problems found by this load */
	bool oom;
	/* running totals over the whole file, checked against consts.h */
	unsigned int n_listeners, n_groups, n_backends, n_overrides, n_vips;
	struct vip_seen vips[AG_MAX_VIPS];
	const struct ag_cfg_edge *edge; /* for VIP vs NAT address clashes */
};

static const char *setting_file(const struct ctx *ctx, const config_setting_t *s)
{
	const char *f = s ? config_setting_source_file(s) : NULL;

	return f ? f : ctx->path;
}

static int setting_line(const config_setting_t *s)
{
	return s ? config_setting_source_line(s) : 0;
}

static void cfg_err(struct ctx *ctx, const config_setting_t *s, const char *key, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

static void cfg_err(struct ctx *ctx, const config_setting_t *s, const char *key, const char *fmt,
		    ...)
{
	va_list ap;

	va_start(ap, fmt);
	errors_vadd(ctx->errs, setting_file(ctx, s), setting_line(s), key, fmt, ap);
	va_end(ap);
	ctx->n_errs++;
}

static void cfg_oom(struct ctx *ctx, const config_setting_t *s, const char *key)
{
	if (!ctx->oom)
		cfg_err(ctx, s, key, "out of memory");
	ctx->oom = true;
}

static void *cfg_calloc(struct ctx *ctx, const config_setting_t *s, const char *key, size_t n,
			size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		cfg_oom(ctx, s, key);
	return p;
}

static char *cfg_strdup(struct ctx *ctx, const config_setting_t *s, const char *key,
			const char *str)
{
	char *p = strdup(str);

	if (!p)
		cfg_oom(ctx, s, key);
	return p;
}

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

static void key_member(char *out, const char *prefix, const char *name)
{
	size_t o = key_append(out, 0, prefix);

	if (prefix[0])
		o = key_append(out, o, ".");
	key_append(out, o, name);
}

static void key_elem(char *out, const char *prefix, unsigned int i)
{
	char idx[16];

	snprintf(idx, sizeof(idx), "[%u]", i);
	key_append(out, key_append(out, 0, prefix), idx);
}

/*
 * A user string quoted for a message: bounded, and with control characters
 * escaped so that one problem is always one line.
 */
struct quoted {
	char s[80];
};

static struct quoted quote(const char *in)
{
	struct quoted q;
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

static const char *type_name(const config_setting_t *s)
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

static bool is_int(const config_setting_t *s)
{
	int t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

/*
 * libconfig reads a hex literal without L suffix as a 32-bit pattern: take it
 * as unsigned, so 0xdeadbeef means 3735928559 and not a negative number.
 */
static long long int_of(const config_setting_t *s)
{
	if (config_setting_type(s) == CONFIG_TYPE_INT &&
	    config_setting_get_format(s) == CONFIG_FORMAT_HEX)
		return (uint32_t)config_setting_get_int(s);
	return config_setting_get_int64(s);
}

/* Scalars in an array [...] or a list (...): both read the same. */
static bool is_seq(const config_setting_t *s)
{
	int t = config_setting_type(s);

	return t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST;
}

/* Groups come in a list (...); an empty [] is accepted as an empty list. */
static bool is_group_list(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_LIST ||
	       (config_setting_type(s) == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0);
}

static bool want_group(struct ctx *ctx, const config_setting_t *s, const char *key)
{
	if (config_setting_type(s) == CONFIG_TYPE_GROUP)
		return true;
	cfg_err(ctx, s, key, "must be a group { ... } (got %s)", type_name(s));
	return false;
}

static bool want_group_list(struct ctx *ctx, const config_setting_t *s, const char *key)
{
	if (is_group_list(s))
		return true;
	cfg_err(ctx, s, key, "must be a list ( { ... }, ... ) (got %s)", type_name(s));
	return false;
}

static bool want_seq(struct ctx *ctx, const config_setting_t *s, const char *key)
{
	if (is_seq(s))
		return true;
	cfg_err(ctx, s, key, "must be an array [ ... ] (got %s)", type_name(s));
	return false;
}

static bool want_string(struct ctx *ctx, const config_setting_t *s, const char *key)
{
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return true;
	cfg_err(ctx, s, key, "must be a string (got %s)", type_name(s));
	return false;
}

/* Every member of grp must be in `known` (NULL-terminated). */
static void check_keys(struct ctx *ctx, const config_setting_t *grp, const char *gkey,
		       const char *const *known)
{
	char key[KEY_MAX];
	int i, n = config_setting_length(grp);

	for (i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(grp, i);
		const char *name = config_setting_name(m);
		const char *const *k;

		for (k = known; *k; k++)
			if (!strcmp(*k, name))
				break;
		if (*k)
			continue;
		key_member(key, gkey, name);
		cfg_err(ctx, m, key, "unknown key");
	}
}

/* The member `name` of grp; NULL when absent ("is required" when it must be there). */
static config_setting_t *get_member(struct ctx *ctx, const config_setting_t *grp, const char *gkey,
				    const char *name, bool required, char *key)
{
	config_setting_t *m = config_setting_get_member(grp, name);

	key_member(key, gkey, name);
	if (!m && required)
		cfg_err(ctx, grp, key, "is required");
	return m;
}

/* Element counts: "must have 1-16 entries (got 17)". */
static bool check_count(struct ctx *ctx, const config_setting_t *s, const char *key,
			unsigned int min, unsigned int max)
{
	unsigned int n = config_setting_length(s);

	if (n >= min && n <= max)
		return true;
	if (max == UINT_MAX)
		cfg_err(ctx, s, key, "must have at least %u %s (got %u)", min,
			min == 1 ? "entry" : "entries", n);
	else
		cfg_err(ctx, s, key, "must have %u-%u entries (got %u)", min, max, n);
	return false;
}

/* Results of the value getters. */
enum { GOT_INVALID = -1, GOT_ABSENT = 0, GOT_VALUE = 1 };

typedef const char *(*int_check_fn)(long long v);

static int int_value(struct ctx *ctx, const config_setting_t *s, const char *key, long long min,
		     long long max, int_check_fn check, long long *out)
{
	const char *problem;
	long long v;

	if (!is_int(s)) {
		cfg_err(ctx, s, key, "must be an integer (got %s)", type_name(s));
		return GOT_INVALID;
	}
	v = int_of(s);
	if (check) {
		problem = check(v);
		if (problem) {
			cfg_err(ctx, s, key, "%s (got %lld)", problem, v);
			return GOT_INVALID;
		}
	} else if (v < min || v > max) {
		cfg_err(ctx, s, key, "must be %lld-%lld (got %lld)", min, max, v);
		return GOT_INVALID;
	}
	*out = v;
	return GOT_VALUE;
}

static int get_int(struct ctx *ctx, const config_setting_t *grp, const char *gkey, const char *name,
		   bool required, long long min, long long max, long long *out)
{
	char key[KEY_MAX];
	config_setting_t *s = get_member(ctx, grp, gkey, name, required, key);

	if (!s)
		return required ? GOT_INVALID : GOT_ABSENT;
	return int_value(ctx, s, key, min, max, NULL, out);
}

static int get_int_checked(struct ctx *ctx, const config_setting_t *grp, const char *gkey,
			   const char *name, int_check_fn check, long long *out)
{
	char key[KEY_MAX];
	config_setting_t *s = get_member(ctx, grp, gkey, name, false, key);

	if (!s)
		return GOT_ABSENT;
	return int_value(ctx, s, key, 0, 0, check, out);
}

static int get_string(struct ctx *ctx, const config_setting_t *grp, const char *gkey,
		      const char *name, bool required, const char **out, config_setting_t **sp,
		      char *key)
{
	config_setting_t *s = get_member(ctx, grp, gkey, name, required, key);

	if (sp)
		*sp = s;
	if (!s)
		return required ? GOT_INVALID : GOT_ABSENT;
	if (!want_string(ctx, s, key))
		return GOT_INVALID;
	*out = config_setting_get_string(s);
	return GOT_VALUE;
}

/* names: NULL-terminated; *out is the index of the match. */
static int get_enum(struct ctx *ctx, const config_setting_t *grp, const char *gkey,
		    const char *name, bool required, const char *const *names, int *out)
{
	char key[KEY_MAX], list[128] = "";
	config_setting_t *s;
	const char *v;
	size_t o = 0;
	int i, ret;

	ret = get_string(ctx, grp, gkey, name, required, &v, &s, key);
	if (ret != GOT_VALUE)
		return ret;
	for (i = 0; names[i]; i++) {
		if (!strcmp(names[i], v)) {
			*out = i;
			return GOT_VALUE;
		}
	}
	for (i = 0; names[i] && o < sizeof(list); i++)
		o += snprintf(list + o, sizeof(list) - o, "%s\"%s\"",
			      i == 0	     ? ""
			      : names[i + 1] ? ", "
					     : " or ",
			      names[i]);
	cfg_err(ctx, s, key, "must be %s (got %s)", list, quote(v).s);
	return GOT_INVALID;
}

static bool parse_ipv4(const char *s, uint32_t *addr)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	*addr = a.s_addr;
	return true;
}

/*
 * VIPs, NAT sources and backends must be unicast: 0/8 (this network),
 * 127/8 (loopback), 224/4 (multicast) and 240/4 (reserved, broadcast) never
 * route as a flow's endpoint.
 */
static bool is_unicast(uint32_t addr)
{
	uint8_t first = ntohl(addr) >> 24;

	return first != 0 && first != 127 && first < 224;
}

static int addr_value(struct ctx *ctx, const config_setting_t *s, const char *key, uint32_t *out)
{
	const char *v;

	if (!want_string(ctx, s, key))
		return GOT_INVALID;
	v = config_setting_get_string(s);
	if (!parse_ipv4(v, out)) {
		cfg_err(ctx, s, key, "must be an IPv4 address a.b.c.d (got %s)", quote(v).s);
		return GOT_INVALID;
	}
	if (!is_unicast(*out)) {
		cfg_err(ctx, s, key,
			"must be a unicast IPv4 address, not in 0/8, 127/8 or 224/3 (got %s)",
			quote(v).s);
		return GOT_INVALID;
	}
	return GOT_VALUE;
}

static void format_addr(uint32_t addr, char *buf)
{
	struct in_addr a = {.s_addr = addr};

	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/*
 * A list of 1..max unicast IPv4 strings without duplicates. *out gets the valid
 * ones, *n their count, and (when elems is given) elems[k] the list index of
 * (*out)[k], for messages about it; the caller frees both.
 */
static void parse_addr_list(struct ctx *ctx, const config_setting_t *s, const char *key,
			    unsigned int max, uint32_t **out, unsigned int *n, unsigned int **elems)
{
	char ekey[KEY_MAX], okey[KEY_MAX], buf[INET_ADDRSTRLEN];
	unsigned int i, j, len, *idx;
	uint32_t *addrs;

	if (!want_seq(ctx, s, key) || !check_count(ctx, s, key, 1, max))
		return;
	len = config_setting_length(s);
	addrs = cfg_calloc(ctx, s, key, len, sizeof(*addrs));
	idx = cfg_calloc(ctx, s, key, len, sizeof(*idx));
	if (!addrs || !idx) {
		free(addrs);
		free(idx);
		return;
	}
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		uint32_t a;

		key_elem(ekey, key, i);
		if (addr_value(ctx, e, ekey, &a) != GOT_VALUE)
			continue;
		for (j = 0; j < *n; j++)
			if (addrs[j] == a)
				break;
		if (j < *n) {
			format_addr(a, buf);
			key_elem(okey, key, idx[j]);
			cfg_err(ctx, e, ekey, "duplicate address %s (also %s)", buf, okey);
			continue;
		}
		idx[*n] = i;
		addrs[(*n)++] = a;
	}
	*out = addrs;
	if (elems)
		*elems = idx;
	else
		free(idx);
}

static bool parse_uint(const char *s, const char **end, unsigned long *v)
{
	unsigned long x = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		x = x * 10 + (*p - '0');
		if (x > 1000000)
			return false; /* bounds are 16-bit: reject early, no overflow */
	}
	*v = x;
	*end = p;
	return true;
}

/* "N" or "A-B" with min <= A <= B <= max, digits only. */
static bool parse_range_str(const char *s, unsigned long min, unsigned long max, uint16_t *first,
			    uint16_t *last, bool *reversed)
{
	unsigned long a, b;
	const char *p;

	*reversed = false;
	if (!parse_uint(s, &p, &a))
		return false;
	b = a;
	if (*p == '-' && !parse_uint(p + 1, &p, &b))
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

/*
 * A port or status range given as an integer N or a string "N" / "A-B".
 * `what` names the unit in messages ("port", "status").
 */
static int range_value(struct ctx *ctx, const config_setting_t *s, const char *key,
		       unsigned long min, unsigned long max, const char *what, uint16_t *first,
		       uint16_t *last)
{
	bool reversed;
	const char *v;
	long long n;

	if (is_int(s)) {
		n = int_of(s);
		if (n < (long long)min || n > (long long)max) {
			cfg_err(ctx, s, key, "%s must be %lu-%lu (got %lld)", what, min, max, n);
			return GOT_INVALID;
		}
		*first = *last = n;
		return GOT_VALUE;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		cfg_err(ctx, s, key, "must be a %s number or a \"first-last\" string (got %s)",
			what, type_name(s));
		return GOT_INVALID;
	}
	v = config_setting_get_string(s);
	if (parse_range_str(v, min, max, first, last, &reversed))
		return GOT_VALUE;
	if (reversed)
		cfg_err(ctx, s, key, "range must run from low to high (got %s)", quote(v).s);
	else
		cfg_err(ctx, s, key,
			"must be a %s %lu-%lu or a range \"first-last\" within it (got %s)", what,
			min, max, quote(v).s);
	return GOT_INVALID;
}

static const char *check_abs_path(const char *v)
{
	if (v[0] != '/')
		return "must be an absolute path";
	if (strlen(v) >= PATH_MAX)
		return "must be shorter than PATH_MAX";
	return NULL;
}

/* Absolute path string member; *out is libconfig's string (copied by the caller). */
static int get_path(struct ctx *ctx, const config_setting_t *grp, const char *gkey,
		    const char *name, size_t max_len, const char **out)
{
	char key[KEY_MAX];
	config_setting_t *s;
	const char *v, *problem;
	int ret;

	ret = get_string(ctx, grp, gkey, name, false, &v, &s, key);
	if (ret != GOT_VALUE)
		return ret;
	problem = check_abs_path(v);
	if (problem) {
		cfg_err(ctx, s, key, "%s (got %s)", problem, quote(v).s);
		return GOT_INVALID;
	}
	if (max_len && strlen(v) > max_len) {
		cfg_err(ctx, s, key, "must be at most %zu bytes long (got %zu)", max_len,
			strlen(v));
		return GOT_INVALID;
	}
	*out = v;
	return GOT_VALUE;
}

/* A name member (edge, accelerator, region) copied into a fixed buffer. */
static int get_name(struct ctx *ctx, const config_setting_t *grp, const char *gkey,
		    const char *name, char out[AG_NAME_MAX], config_setting_t **sp)
{
	char key[KEY_MAX];
	const char *v, *problem;
	int ret;

	ret = get_string(ctx, grp, gkey, name, true, &v, sp, key);
	if (ret != GOT_VALUE)
		return ret;
	problem = ag_config__check_name(v);
	if (problem) {
		cfg_err(ctx, *sp, key, "%s (got %s)", problem, quote(v).s);
		return GOT_INVALID;
	}
	snprintf(out, AG_NAME_MAX, "%s", v);
	return GOT_VALUE;
}

/* Printable ASCII without spaces: goes verbatim into an HTTP request line. */
static bool is_token(const char *s)
{
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return false;
	return true;
}

static bool is_prime(unsigned long n)
{
	unsigned long d;

	if (n < 2)
		return false;
	for (d = 2; d * d <= n; d++)
		if (n % d == 0)
			return false;
	return true;
}

/* ------------------------------------------------------------------------- */
/* edge                                                                       */

static const char *const fastpath_names[] = {"xdp", "dpdk", NULL};
static const char *const role_names[] = {"client", "backend", "both", NULL};

static const char *check_ifname(const char *v)
{
	size_t len = strlen(v);

	if (len == 0 || len >= IFNAMSIZ)
		return "must be 1-15 characters";
	if (!strcmp(v, ".") || !strcmp(v, ".."))
		return "is not a valid interface name";
	for (; *v; v++)
		if (*v == '/' || *v == ':' || *v <= 0x20 || *v >= 0x7f)
			return "must not contain '/', ':', spaces or control characters";
	return NULL;
}

static void parse_ifaces(struct ctx *ctx, const config_setting_t *s, const char *key,
			 struct ag_cfg_edge *edge)
{
	static const char *const keys[] = {"name", "role", NULL};
	char ekey[KEY_MAX], nkey[KEY_MAX];
	unsigned int i, j, len;

	if (!want_group_list(ctx, s, key) || !check_count(ctx, s, key, 0, AG_MAX_IFACES))
		return;
	len = config_setting_length(s);
	if (!len)
		return;
	edge->ifaces = cfg_calloc(ctx, s, key, len, sizeof(*edge->ifaces));
	if (!edge->ifaces)
		return;
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i), *ns;
		struct ag_cfg_iface *ifc = &edge->ifaces[edge->n_ifaces];
		const char *name, *problem;
		int role = AG_IFACE_BOTH;
		bool ok = true;

		key_elem(ekey, key, i);
		if (!want_group(ctx, e, ekey))
			continue;
		check_keys(ctx, e, ekey, keys);
		if (get_string(ctx, e, ekey, "name", true, &name, &ns, nkey) == GOT_VALUE) {
			problem = check_ifname(name);
			if (problem) {
				cfg_err(ctx, ns, nkey, "%s (got %s)", problem, quote(name).s);
				ok = false;
			}
		} else {
			ok = false;
		}
		if (get_enum(ctx, e, ekey, "role", false, role_names, &role) == GOT_INVALID)
			ok = false;
		if (!ok)
			continue;
		for (j = 0; j < edge->n_ifaces; j++) {
			if (!strcmp(edge->ifaces[j].name, name))
				break;
		}
		if (j < edge->n_ifaces) {
			cfg_err(ctx, ns, nkey, "duplicate interface %s (also at line %d)",
				quote(name).s, edge->ifaces[j].line);
			continue;
		}
		snprintf(ifc->name, sizeof(ifc->name), "%s", name);
		ifc->role = role;
		ifc->line = setting_line(e);
		edge->n_ifaces++;
	}
}

/*
 * XDP sees a packet only on the interface it arrived on: clients' packets on a
 * client-facing one, backends' replies (reverse NAT) on a backend-facing one.
 */
static void check_roles(struct ctx *ctx, const config_setting_t *s, const char *key,
			const struct ag_cfg_edge *edge)
{
	bool client = false, backend = false;
	unsigned int i;

	for (i = 0; i < edge->n_ifaces; i++) {
		client |= edge->ifaces[i].role != AG_IFACE_BACKEND;
		backend |= edge->ifaces[i].role != AG_IFACE_CLIENT;
	}
	if (!client)
		cfg_err(ctx, s, key,
			"no interface has role \"client\" or \"both\": clients could not reach the "
			"VIPs");
	if (!backend)
		cfg_err(ctx, s, key,
			"no interface has role \"backend\" or \"both\": backend replies would not "
			"be translated back");
}

static void parse_str_array(struct ctx *ctx, const config_setting_t *s, const char *key,
			    bool nonempty_strings, char ***out, unsigned int *n)
{
	char ekey[KEY_MAX];
	unsigned int i, len;
	char **v;

	if (!want_seq(ctx, s, key))
		return;
	len = config_setting_length(s);
	if (!len)
		return;
	v = cfg_calloc(ctx, s, key, len, sizeof(*v));
	if (!v)
		return;
	*out = v;
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		const char *str;

		key_elem(ekey, key, i);
		if (!want_string(ctx, e, ekey))
			continue;
		str = config_setting_get_string(e);
		if (nonempty_strings && !str[0]) {
			cfg_err(ctx, e, ekey, "must not be empty");
			continue;
		}
		v[*n] = cfg_strdup(ctx, e, ekey, str);
		if (v[*n])
			(*n)++;
	}
}

static const char *const exception_names[] = {"tap", "none", NULL};

/* "a.b.c.d/len", len 0-32. */
static bool parse_prefix(const char *v, uint32_t *addr, uint8_t *len)
{
	char buf[INET_ADDRSTRLEN];
	const char *slash = strchr(v, '/'), *end;
	unsigned long l;

	if (!slash || slash == v || (size_t)(slash - v) >= sizeof(buf))
		return false;
	memcpy(buf, v, slash - v);
	buf[slash - v] = '\0';
	if (!parse_ipv4(buf, addr) || !parse_uint(slash + 1, &end, &l) || *end || l > 32)
		return false;
	*len = (uint8_t)l;
	return true;
}

static uint32_t prefix_mask(uint8_t len)
{
	return len ? htonl(~0u << (32 - len)) : 0;
}

/* "xx:xx:xx:xx:xx:xx", hex digits. */
static bool parse_mac(const char *v, uint8_t mac[6])
{
	unsigned int b[6];
	int n = -1, i;

	if (sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &n) !=
		6 ||
	    n != 17 || v[n])
		return false;
	for (i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)v[3 * i]) || !isxdigit((unsigned char)v[3 * i + 1]))
			return false;
		mac[i] = (uint8_t)b[i];
	}
	return true;
}

/* Index of the port whose subnet holds addr, or -1. */
static int port_of(const struct ag_cfg_dpdk *dpdk, uint32_t addr)
{
	unsigned int i;

	for (i = 0; i < dpdk->n_port_addrs; i++) {
		uint32_t mask = prefix_mask(dpdk->port_addrs[i].len);

		if ((addr & mask) == (dpdk->port_addrs[i].addr & mask))
			return (int)i;
	}
	return -1;
}

static void parse_port_addrs(struct ctx *ctx, const config_setting_t *s, const char *key,
			     struct ag_cfg_dpdk *dpdk)
{
	char ekey[KEY_MAX];
	unsigned int i, j, len;

	if (!want_seq(ctx, s, key) || !check_count(ctx, s, key, 1, AG_MAX_IFACES))
		return;
	len = config_setting_length(s);
	dpdk->port_addrs = cfg_calloc(ctx, s, key, len, sizeof(*dpdk->port_addrs));
	if (!dpdk->port_addrs)
		return;
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		struct ag_cfg_prefix p = {.line = setting_line(e)};
		const char *v;

		key_elem(ekey, key, i);
		if (!want_string(ctx, e, ekey))
			continue;
		v = config_setting_get_string(e);
		if (!parse_prefix(v, &p.addr, &p.len) || p.len == 0) {
			cfg_err(ctx, e, ekey,
				"must be an IPv4 address with its prefix length, "
				"\"a.b.c.d/len\" with len 1-32 (got %s)",
				quote(v).s);
			continue;
		}
		if (!is_unicast(p.addr)) {
			cfg_err(ctx, e, ekey, "must be a unicast IPv4 address (got %s)",
				quote(v).s);
			continue;
		}
		for (j = 0; j < dpdk->n_port_addrs; j++)
			if (dpdk->port_addrs[j].addr == p.addr)
				break;
		if (j < dpdk->n_port_addrs) {
			cfg_err(ctx, e, ekey, "duplicate address %s", quote(v).s);
			continue;
		}
		dpdk->port_addrs[dpdk->n_port_addrs++] = p;
	}
}

static void parse_routes(struct ctx *ctx, const config_setting_t *s, const char *key,
			 struct ag_cfg_dpdk *dpdk)
{
	static const char *const keys[] = {"to", "via", NULL};
	char ekey[KEY_MAX], mkey[KEY_MAX];
	unsigned int i, j, len;

	if (!want_group_list(ctx, s, key) || !check_count(ctx, s, key, 0, AG_MAX_ROUTES))
		return;
	len = config_setting_length(s);
	dpdk->routes = cfg_calloc(ctx, s, key, len, sizeof(*dpdk->routes));
	if (!dpdk->routes)
		return;
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i), *m;
		struct ag_cfg_route r = {.line = setting_line(e)};
		bool ok = true;
		const char *v;

		key_elem(ekey, key, i);
		if (!want_group(ctx, e, ekey))
			continue;
		check_keys(ctx, e, ekey, keys);
		if (get_string(ctx, e, ekey, "to", true, &v, &m, mkey) == GOT_VALUE) {
			if (!strcmp(v, "default")) {
				r.to.addr = 0;
				r.to.len = 0;
			} else if (!parse_prefix(v, &r.to.addr, &r.to.len)) {
				cfg_err(ctx, m, mkey,
					"must be \"a.b.c.d/len\" (len 0-32) or "
					"\"default\" (got %s)",
					quote(v).s);
				ok = false;
			} else if (r.to.addr & ~prefix_mask(r.to.len)) {
				cfg_err(ctx, m, mkey,
					"has bits set past the prefix length (got %s)", quote(v).s);
				ok = false;
			}
			for (j = 0; ok && j < dpdk->n_routes; j++) {
				if (dpdk->routes[j].to.addr == r.to.addr &&
				    dpdk->routes[j].to.len == r.to.len) {
					cfg_err(ctx, m, mkey,
						"duplicate destination %s (also line %d)",
						quote(v).s, dpdk->routes[j].line);
					ok = false;
				}
			}
		} else {
			ok = false;
		}
		m = get_member(ctx, e, ekey, "via", true, mkey);
		if (!m || addr_value(ctx, m, mkey, &r.via) != GOT_VALUE) {
			ok = false;
		} else if (port_of(dpdk, r.via) < 0) {
			cfg_err(ctx, m, mkey,
				"is not inside the subnet of any edge.dpdk.port_addresses "
				"entry: a next hop must be on a port's link");
			ok = false;
		}
		if (ok)
			dpdk->routes[dpdk->n_routes++] = r;
	}
}

static void parse_neighbours(struct ctx *ctx, const config_setting_t *s, const char *key,
			     struct ag_cfg_dpdk *dpdk)
{
	static const char *const keys[] = {"address", "mac", NULL};
	char ekey[KEY_MAX], mkey[KEY_MAX];
	unsigned int i, j, len;

	if (!want_group_list(ctx, s, key) || !check_count(ctx, s, key, 0, AG_MAX_STATIC_NEIGH))
		return;
	len = config_setting_length(s);
	dpdk->neighbours = cfg_calloc(ctx, s, key, len, sizeof(*dpdk->neighbours));
	if (!dpdk->neighbours)
		return;
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i), *m;
		struct ag_cfg_neigh n = {.line = setting_line(e)};
		bool ok = true;
		const char *v;

		key_elem(ekey, key, i);
		if (!want_group(ctx, e, ekey))
			continue;
		check_keys(ctx, e, ekey, keys);
		m = get_member(ctx, e, ekey, "address", true, mkey);
		if (!m || addr_value(ctx, m, mkey, &n.addr) != GOT_VALUE) {
			ok = false;
		} else if (port_of(dpdk, n.addr) < 0) {
			cfg_err(ctx, m, mkey,
				"is not inside the subnet of any edge.dpdk.port_addresses "
				"entry");
			ok = false;
		} else {
			for (j = 0; j < dpdk->n_neighbours; j++) {
				if (dpdk->neighbours[j].addr == n.addr) {
					cfg_err(ctx, m, mkey, "duplicate address (also line %d)",
						dpdk->neighbours[j].line);
					ok = false;
				}
			}
		}
		if (get_string(ctx, e, ekey, "mac", true, &v, &m, mkey) == GOT_VALUE) {
			if (!parse_mac(v, n.mac)) {
				cfg_err(ctx, m, mkey,
					"must be a MAC address xx:xx:xx:xx:xx:xx (got %s)",
					quote(v).s);
				ok = false;
			} else if ((n.mac[0] & 1) || !(n.mac[0] | n.mac[1] | n.mac[2] | n.mac[3] |
						       n.mac[4] | n.mac[5])) {
				cfg_err(ctx, m, mkey,
					"must be a unicast MAC address, not zero or "
					"multicast (got %s)",
					quote(v).s);
				ok = false;
			}
		} else {
			ok = false;
		}
		if (ok)
			dpdk->neighbours[dpdk->n_neighbours++] = n;
	}
}

static void parse_dpdk(struct ctx *ctx, const config_setting_t *s, const char *key,
		       struct ag_cfg_dpdk *dpdk)
{
	static const char *const keys[] = {
	    "eal_args", "ports",      "shm_name",	"port_addresses",
	    "routes",	"neighbours", "exception_path", NULL,
	};
	char mkey[KEY_MAX];
	config_setting_t *m;
	const char *v, *problem;
	int exception = AG_EXCEPTION_TAP;

	dpdk->line = setting_line(s);
	if (!want_group(ctx, s, key))
		return;
	check_keys(ctx, s, key, keys);
	m = get_member(ctx, s, key, "eal_args", false, mkey);
	if (m)
		parse_str_array(ctx, m, mkey, true, &dpdk->eal_args, &dpdk->n_eal_args);
	m = get_member(ctx, s, key, "ports", false, mkey);
	if (m)
		parse_str_array(ctx, m, mkey, true, &dpdk->ports, &dpdk->n_ports);
	if (get_string(ctx, s, key, "shm_name", false, &v, &m, mkey) == GOT_VALUE) {
		/* becomes a file name under /dev/shm and a DPDK memzone prefix */
		problem = ag_config__check_name(v);
		if (problem)
			cfg_err(ctx, m, mkey, "%s (got %s)", problem, quote(v).s);
		else
			dpdk->shm_name = cfg_strdup(ctx, m, mkey, v);
	}
	m = get_member(ctx, s, key, "port_addresses", false, mkey);
	if (m) {
		parse_port_addrs(ctx, m, mkey, dpdk);
		if (is_seq(m) && (unsigned int)config_setting_length(m) != dpdk->n_ports)
			cfg_err(ctx, m, mkey,
				"must have one entry per port, in the order of "
				"edge.dpdk.ports (%u ports, got %u)",
				dpdk->n_ports, (unsigned int)config_setting_length(m));
	}
	/* Routes and neighbours are checked against the port subnets: after them. */
	m = get_member(ctx, s, key, "routes", false, mkey);
	if (m)
		parse_routes(ctx, m, mkey, dpdk);
	m = get_member(ctx, s, key, "neighbours", false, mkey);
	if (m)
		parse_neighbours(ctx, m, mkey, dpdk);
	get_enum(ctx, s, key, "exception_path", false, exception_names, &exception);
	dpdk->exception_path = exception;
}

static bool parse_metrics(const char *v, uint32_t *ip, uint16_t *port)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(v, ':'), *end;
	unsigned long p;

	if (!colon || (size_t)(colon - v) >= sizeof(host))
		return false;
	memcpy(host, v, colon - v);
	host[colon - v] = '\0';
	if (!parse_ipv4(host, ip) || !parse_uint(colon + 1, &end, &p) || *end || p < 1 || p > 65535)
		return false;
	*port = p;
	return true;
}

/*
 * edge.admin_group / edge.control_group: a group name that exists on this host,
 * resolved now so that a typo is a config error (file:line), not a socket that
 * silently lets nobody in. 0 with *name and *gid set, 1 when absent, -1 (error
 * recorded) when invalid.
 */
static int get_group(struct ctx *ctx, const config_setting_t *s, const char *name, const char **out,
		     gid_t *gid)
{
	struct group gr, *res = NULL;
	char key[KEY_MAX], buf[4096];
	config_setting_t *m;
	const char *v;
	int err;

	if (get_string(ctx, s, "edge", name, false, &v, &m, key) != GOT_VALUE)
		return m ? -1 : 1;
	if (!v[0] || strlen(v) > 32 || !is_token(v) || strchr(v, ':')) {
		cfg_err(ctx, m, key, "must be a group name of 1-32 characters (got %s)",
			quote(v).s);
		return -1;
	}
	err = getgrnam_r(v, &gr, buf, sizeof(buf), &res);
	if (err || !res) {
		if (err && err != ENOENT && err != ESRCH)
			cfg_err(ctx, m, key, "cannot look up group %s: %s", quote(v).s,
				strerror(err));
		else
			cfg_err(ctx, m, key, "no such group (got %s)", quote(v).s);
		return -1;
	}
	*out = v;
	*gid = gr.gr_gid;
	return 0;
}

static void parse_edge(struct ctx *ctx, const config_setting_t *root, struct ag_cfg_edge *edge)
{
	static const char *const keys[] = {
	    "name",	 "hash_seed",	   "fastpath",	  "interfaces",	   "nat_addresses",
	    "nat_ports", "bpffs_dir",	   "tcp_idle_s",  "udp_idle_s",	   "ring_size",
	    "max_flows", "control_socket", "admin_group", "control_group", "state_file",
	    "metrics",	 "dpdk",	   NULL,
	};
	const char *bpffs = DEFAULT_BPFFS_DIR, *sock = DEFAULT_CONTROL_SOCKET;
	const char *state = DEFAULT_STATE_FILE, *metrics = DEFAULT_METRICS;
	const char *admin = NULL, *control = NULL, *v;
	config_setting_t *s, *m, *ifs;
	char key[KEY_MAX];
	int fastpath = AG_FASTPATH_XDP;
	long long n;

	edge->hash_seed = 0;
	edge->nat_port_min = AG_NAT_PORT_MIN_DEFAULT;
	edge->nat_port_max = AG_NAT_PORT_MAX_DEFAULT;
	edge->tcp_idle_s = AG_TCP_IDLE_DEFAULT;
	edge->udp_idle_s = AG_UDP_IDLE_DEFAULT;
	edge->ring_size = AG_RING_SIZE_DEFAULT;
	edge->max_flows = AG_FLOWS_DEFAULT;
	edge->admin_gid = (gid_t)-1;
	edge->control_gid = (gid_t)-1;
	parse_metrics(DEFAULT_METRICS, &edge->metrics_ip, &edge->metrics_port);

	s = get_member(ctx, root, "", "edge", true, key);
	if (!s || !want_group(ctx, s, "edge"))
		goto defaults;
	edge->line = setting_line(s);
	check_keys(ctx, s, "edge", keys);

	get_name(ctx, s, "edge", "name", edge->name, &m);
	if (get_int(ctx, s, "edge", "hash_seed", false, 0, UINT32_MAX, &n) == GOT_VALUE)
		edge->hash_seed = n;
	get_enum(ctx, s, "edge", "fastpath", false, fastpath_names, &fastpath);
	edge->fastpath = fastpath;

	ifs = get_member(ctx, s, "edge", "interfaces", true, key);
	if (ifs) {
		parse_ifaces(ctx, ifs, key, edge);
		if (fastpath == AG_FASTPATH_XDP && is_group_list(ifs) &&
		    config_setting_length(ifs) == 0)
			cfg_err(ctx, ifs, key,
				"must list at least one interface when fastpath = \"xdp\"");
		else if (fastpath == AG_FASTPATH_XDP && edge->n_ifaces &&
			 edge->n_ifaces == (unsigned int)config_setting_length(ifs))
			check_roles(ctx, ifs, key, edge);
	}

	m = get_member(ctx, s, "edge", "nat_addresses", true, key);
	if (m)
		parse_addr_list(ctx, m, key, AG_MAX_NAT_ADDRS, &edge->nat_addrs, &edge->n_nat_addrs,
				NULL);

	m = get_member(ctx, s, "edge", "nat_ports", false, key);
	if (m)
		range_value(ctx, m, key, 1, 65535, "port", &edge->nat_port_min,
			    &edge->nat_port_max);

	get_path(ctx, s, "edge", "bpffs_dir", 0, &bpffs);
	if (get_int(ctx, s, "edge", "tcp_idle_s", false, AG_IDLE_MIN, AG_IDLE_MAX, &n) == GOT_VALUE)
		edge->tcp_idle_s = n;
	if (get_int(ctx, s, "edge", "udp_idle_s", false, AG_IDLE_MIN, AG_IDLE_MAX, &n) == GOT_VALUE)
		edge->udp_idle_s = n;
	if (get_int(ctx, s, "edge", "ring_size", false, AG_RING_SIZE_MIN, AG_RING_SIZE_MAX, &n) ==
	    GOT_VALUE) {
		/* Maglev fills every slot only when M is prime to each backend's skip */
		if (is_prime(n)) {
			edge->ring_size = n;
		} else {
			m = get_member(ctx, s, "edge", "ring_size", false, key);
			cfg_err(ctx, m, key, "must be a prime number (got %lld)", n);
		}
	}
	if (get_int(ctx, s, "edge", "max_flows", false, AG_FLOWS_MIN, AG_FLOWS_MAX, &n) ==
	    GOT_VALUE)
		edge->max_flows = n;
	get_path(ctx, s, "edge", "control_socket", SOCK_PATH_MAX, &sock);
	if (get_group(ctx, s, "admin_group", &admin, &edge->admin_gid))
		admin = NULL;
	if (get_group(ctx, s, "control_group", &control, &edge->control_gid))
		control = NULL;
	get_path(ctx, s, "edge", "state_file", 0, &state);
	if (get_string(ctx, s, "edge", "metrics", false, &v, &m, key) == GOT_VALUE) {
		if (!v[0]) {
			metrics = v;
			edge->metrics_ip = 0;
			edge->metrics_port = 0;
		} else if (parse_metrics(v, &edge->metrics_ip, &edge->metrics_port)) {
			metrics = v;
		} else {
			cfg_err(ctx, m, key,
				"must be \"a.b.c.d:port\" with port 1-65535, or \"\" to disable "
				"(got %s)",
				quote(v).s);
		}
	}

	m = get_member(ctx, s, "edge", "dpdk", false, key);
	if (m)
		parse_dpdk(ctx, m, key, &edge->dpdk);
	if (fastpath == AG_FASTPATH_DPDK) {
		config_setting_t *pm = m && config_setting_type(m) == CONFIG_TYPE_GROUP
					   ? config_setting_get_member(m, "ports")
					   : NULL;

		if (!m)
			cfg_err(ctx, s, key, "is required when fastpath = \"dpdk\"");
		else if (config_setting_type(m) == CONFIG_TYPE_GROUP && !pm)
			cfg_err(ctx, m, "edge.dpdk.ports", "is required when fastpath = \"dpdk\"");
		else if (pm && is_seq(pm) && config_setting_length(pm) == 0)
			cfg_err(ctx, pm, "edge.dpdk.ports",
				"must list at least one port when fastpath = \"dpdk\"");
	}

defaults:
	edge->bpffs_dir = cfg_strdup(ctx, s, "edge.bpffs_dir", bpffs);
	edge->control_socket = cfg_strdup(ctx, s, "edge.control_socket", sock);
	edge->state_file = cfg_strdup(ctx, s, "edge.state_file", state);
	edge->metrics_addr = cfg_strdup(ctx, s, "edge.metrics", metrics);
	if (admin)
		edge->admin_group = cfg_strdup(ctx, s, "edge.admin_group", admin);
	if (control)
		edge->control_group = cfg_strdup(ctx, s, "edge.control_group", control);
	if (!edge->dpdk.shm_name)
		edge->dpdk.shm_name = cfg_strdup(ctx, s, "edge.dpdk.shm_name", DEFAULT_SHM_NAME);
}

/* ------------------------------------------------------------------------- */
/* health checks                                                              */

static const char *const hc_proto_names[] = {"tcp", "http", "udp", NULL};

static void parse_health(struct ctx *ctx, const config_setting_t *grp, const char *gkey,
			 struct ag_cfg_health *hc)
{
	static const char *const keys[] = {
	    "protocol",
	    "port",
	    "path",
	    "status",
	    "host",
	    "send",
	    "expect",
	    "interval_ms",
	    "timeout_ms",
	    "healthy_threshold",
	    "unhealthy_threshold",
	    NULL,
	};
	static const char *const http_only[] = {"path", "status", "host", NULL};
	static const char *const udp_only[] = {"send", "expect", NULL};
	char key[KEY_MAX];
	config_setting_t *s, *m;
	int proto = AG_HC_TCP, i;
	bool interval_ok = true, proto_ok = true;
	const char *v;
	long long n;

	hc->proto = AG_HC_TCP;
	hc->interval_ms = HC_INTERVAL_DEFAULT;
	hc->healthy_threshold = HC_THRESHOLD_DEFAULT;
	hc->unhealthy_threshold = HC_THRESHOLD_DEFAULT;
	hc->status_min = 200;
	hc->status_max = 399;
	hc->line = setting_line(grp);

	s = get_member(ctx, grp, gkey, "health_check", false, key);
	if (s && !want_group(ctx, s, key))
		s = NULL;
	if (s) {
		/* key is now "<group>.health_check": the prefix of every member below */
		hc->line = setting_line(s);
		check_keys(ctx, s, key, keys);
		/* with an unknown protocol, protocol-specific keys cannot be judged */
		proto_ok =
		    get_enum(ctx, s, key, "protocol", false, hc_proto_names, &proto) != GOT_INVALID;
		hc->proto = proto;
		for (i = 0; proto_ok && http_only[i]; i++) {
			m = config_setting_get_member(s, http_only[i]);
			if (m && proto != AG_HC_HTTP) {
				char mkey[KEY_MAX];

				key_member(mkey, key, http_only[i]);
				cfg_err(ctx, m, mkey, "only valid with protocol = \"http\"");
			}
		}
		for (i = 0; proto_ok && udp_only[i]; i++) {
			m = config_setting_get_member(s, udp_only[i]);
			if (m && proto != AG_HC_UDP) {
				char mkey[KEY_MAX];

				key_member(mkey, key, udp_only[i]);
				cfg_err(ctx, m, mkey, "only valid with protocol = \"udp\"");
			}
		}
		if (get_int(ctx, s, key, "port", false, 1, 65535, &n) == GOT_VALUE)
			hc->port = n;
		if (get_int(ctx, s, key, "interval_ms", false, HC_INTERVAL_MIN, HC_INTERVAL_MAX,
			    &n) == GOT_VALUE)
			hc->interval_ms = n;
		else if (config_setting_get_member(s, "interval_ms"))
			interval_ok = false;
		if (get_int(ctx, s, key, "timeout_ms", false, 1, HC_INTERVAL_MAX, &n) ==
		    GOT_VALUE) {
			if (interval_ok && n > hc->interval_ms) {
				char mkey[KEY_MAX];

				m = get_member(ctx, s, key, "timeout_ms", false, mkey);
				cfg_err(ctx, m, mkey,
					"must be 1-%u, at most interval_ms (got %lld)",
					hc->interval_ms, n);
			} else {
				hc->timeout_ms = n;
			}
		}
		if (get_int(ctx, s, key, "healthy_threshold", false, HC_THRESHOLD_MIN,
			    HC_THRESHOLD_MAX, &n) == GOT_VALUE)
			hc->healthy_threshold = n;
		if (get_int(ctx, s, key, "unhealthy_threshold", false, HC_THRESHOLD_MIN,
			    HC_THRESHOLD_MAX, &n) == GOT_VALUE)
			hc->unhealthy_threshold = n;
	}
	if (!hc->timeout_ms)
		hc->timeout_ms = (hc->interval_ms < 2000 ? hc->interval_ms : 2000) / 2;
	if (!s || !proto_ok)
		return;

	if (proto == AG_HC_HTTP) {
		char mkey[KEY_MAX];
		const char *path = "/";

		if (get_string(ctx, s, key, "path", false, &v, &m, mkey) == GOT_VALUE) {
			if (v[0] != '/' || strlen(v) > HC_PATH_MAX || !is_token(v))
				cfg_err(ctx, m, mkey,
					"must start with '/' and be at most %d printable "
					"characters without spaces (got %s)",
					HC_PATH_MAX, quote(v).s);
			else
				path = v;
		}
		hc->path = cfg_strdup(ctx, s, mkey, path);
		m = get_member(ctx, s, key, "status", false, mkey);
		if (m)
			range_value(ctx, m, mkey, 100, 599, "status", &hc->status_min,
				    &hc->status_max);
		if (get_string(ctx, s, key, "host", false, &v, &m, mkey) == GOT_VALUE) {
			if (!v[0] || strlen(v) > HC_HOST_MAX || !is_token(v))
				cfg_err(ctx, m, mkey,
					"must be 1-%d printable characters without spaces (got %s)",
					HC_HOST_MAX, quote(v).s);
			else
				hc->host = cfg_strdup(ctx, m, mkey, v);
		}
	} else if (proto == AG_HC_UDP) {
		char mkey[KEY_MAX];

		if (get_string(ctx, s, key, "send", false, &v, &m, mkey) == GOT_VALUE) {
			if (!v[0] || strlen(v) > HC_PAYLOAD_MAX)
				cfg_err(ctx, m, mkey, "must be 1-%d bytes (got %zu)",
					HC_PAYLOAD_MAX, strlen(v));
			else
				hc->send = cfg_strdup(ctx, m, mkey, v);
		} else if (!m) {
			cfg_err(ctx, s, mkey, "is required when protocol = \"udp\"");
		}
		if (get_string(ctx, s, key, "expect", false, &v, &m, mkey) == GOT_VALUE) {
			if (!v[0] || strlen(v) > HC_PAYLOAD_MAX)
				cfg_err(
				    ctx, m, mkey,
				    "must be 1-%d bytes, or left out to accept any reply (got %zu)",
				    HC_PAYLOAD_MAX, strlen(v));
			else
				hc->expect = cfg_strdup(ctx, m, mkey, v);
		}
	}
}

/* ------------------------------------------------------------------------- */
/* accelerators, listeners, endpoint groups                                   */

static const char *const proto_names[] = {"tcp", "udp", NULL};
static const uint8_t proto_values[] = {IPPROTO_TCP, IPPROTO_UDP};
static const char *const affinity_names[] = {"none", "source_ip", NULL};
static const uint8_t affinity_values[] = {AG_AFFINITY_NONE, AG_AFFINITY_SOURCE_IP};
static const char *const failure_names[] = {"fail_open", "drop", NULL};

static bool listener_has_port(const struct ag_cfg_listener *l, unsigned int port)
{
	unsigned int i;

	for (i = 0; i < l->n_ranges; i++)
		if (port >= l->ranges[i].first && port <= l->ranges[i].last)
			return true;
	return false;
}

static void parse_overrides(struct ctx *ctx, const config_setting_t *s, const char *key,
			    const struct ag_cfg_listener *l, struct ag_cfg_group *g)
{
	static const char *const keys[] = {"listener_port", "endpoint_port", NULL};
	char ekey[KEY_MAX], pkey[KEY_MAX];
	unsigned int i, j, len;

	if (!want_group_list(ctx, s, key))
		return;
	len = config_setting_length(s);
	if (!len)
		return;
	if (ctx->n_overrides + len > AG_MAX_PORT_OVERRIDES) {
		cfg_err(ctx, s, key, "exceeds the limit of %d port overrides over all groups",
			AG_MAX_PORT_OVERRIDES);
		ctx->n_overrides = AG_MAX_PORT_OVERRIDES + 1; /* report once */
		return;
	}
	ctx->n_overrides += len;
	g->overrides = cfg_calloc(ctx, s, key, len, sizeof(*g->overrides));
	if (!g->overrides)
		return;
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		struct ag_cfg_port_override *o = &g->overrides[g->n_overrides];
		long long lp, ep;
		bool ok = true;

		key_elem(ekey, key, i);
		if (!want_group(ctx, e, ekey))
			continue;
		check_keys(ctx, e, ekey, keys);
		if (get_int(ctx, e, ekey, "listener_port", true, 1, 65535, &lp) != GOT_VALUE)
			ok = false;
		if (get_int(ctx, e, ekey, "endpoint_port", true, 1, 65535, &ep) != GOT_VALUE)
			ok = false;
		if (!ok)
			continue;
		key_member(pkey, ekey, "listener_port");
		if (!listener_has_port(l, lp)) {
			cfg_err(ctx, config_setting_get_member(e, "listener_port"), pkey,
				"%lld is not a port of this listener", lp);
			continue;
		}
		for (j = 0; j < g->n_overrides; j++)
			if (g->overrides[j].listener_port == lp)
				break;
		if (j < g->n_overrides) {
			cfg_err(ctx, config_setting_get_member(e, "listener_port"), pkey,
				"port %lld is already overridden at line %d", lp,
				g->overrides[j].line);
			continue;
		}
		o->listener_port = lp;
		o->endpoint_port = ep;
		o->line = setting_line(e);
		g->n_overrides++;
	}
}

static void parse_endpoints(struct ctx *ctx, const config_setting_t *s, const char *key,
			    struct ag_cfg_group *g)
{
	static const char *const keys[] = {"address", "weight", NULL};
	char ekey[KEY_MAX], akey[KEY_MAX], buf[INET_ADDRSTRLEN];
	unsigned int i, j, len;

	if (!want_group_list(ctx, s, key) ||
	    !check_count(ctx, s, key, 1, AG_MAX_ENDPOINTS_PER_GROUP))
		return;
	len = config_setting_length(s);
	if (ctx->n_backends + len > AG_MAX_BACKENDS) {
		if (ctx->n_backends <= AG_MAX_BACKENDS)
			cfg_err(ctx, s, key, "exceeds the limit of %d endpoints over all groups",
				AG_MAX_BACKENDS);
		ctx->n_backends = AG_MAX_BACKENDS + 1; /* report once */
		return;
	}
	ctx->n_backends += len;
	g->endpoints = cfg_calloc(ctx, s, key, len, sizeof(*g->endpoints));
	if (!g->endpoints)
		return;
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i), *as;
		struct ag_cfg_endpoint *ep = &g->endpoints[g->n_endpoints];
		long long w = DEFAULT_WEIGHT;
		bool ok = true;
		uint32_t a;

		key_elem(ekey, key, i);
		if (!want_group(ctx, e, ekey))
			continue;
		check_keys(ctx, e, ekey, keys);
		as = get_member(ctx, e, ekey, "address", true, akey);
		if (!as || addr_value(ctx, as, akey, &a) != GOT_VALUE)
			ok = false;
		if (get_int_checked(ctx, e, ekey, "weight", ag_config__check_weight, &w) ==
		    GOT_INVALID)
			ok = false;
		if (!ok)
			continue;
		for (j = 0; j < g->n_endpoints; j++)
			if (g->endpoints[j].addr == a)
				break;
		if (j < g->n_endpoints) {
			format_addr(a, buf);
			cfg_err(ctx, as, akey,
				"duplicate endpoint %s in this group (also at line %d)", buf,
				g->endpoints[j].line);
			continue;
		}
		ep->addr = a;
		ep->weight = w;
		ep->line = setting_line(e);
		g->n_endpoints++;
	}
}

static void parse_group(struct ctx *ctx, const config_setting_t *s, const char *key,
			struct ag_cfg_listener *l)
{
	static const char *const keys[] = {
	    "region", "traffic_dial", "health_check", "port_overrides", "endpoints", NULL,
	};
	struct ag_cfg_group *g = &l->groups[l->n_groups];
	char mkey[KEY_MAX], rkey[KEY_MAX];
	config_setting_t *m, *rs = NULL;
	long long dial = DEFAULT_DIAL;
	unsigned int j;
	bool ok = true;

	if (!want_group(ctx, s, key))
		return;
	g->traffic_dial = DEFAULT_DIAL;
	if (++ctx->n_groups == AG_MAX_GROUPS + 1)
		cfg_err(ctx, s, key, "exceeds the limit of %d endpoint groups over all listeners",
			AG_MAX_GROUPS);
	check_keys(ctx, s, key, keys);
	g->line = setting_line(s);
	key_member(rkey, key, "region");
	if (get_name(ctx, s, key, "region", g->region, &rs) != GOT_VALUE)
		ok = false; /* region stays "": never matches region_order or a duplicate */
	if (get_int_checked(ctx, s, key, "traffic_dial", ag_config__check_dial, &dial) == GOT_VALUE)
		g->traffic_dial = dial;
	parse_health(ctx, s, key, &g->health);
	m = get_member(ctx, s, key, "port_overrides", false, mkey);
	if (m)
		parse_overrides(ctx, m, mkey, l, g);
	m = get_member(ctx, s, key, "endpoints", true, mkey);
	if (m)
		parse_endpoints(ctx, m, mkey, g);
	if (ok) {
		for (j = 0; j < l->n_groups; j++)
			if (!strcmp(l->groups[j].region, g->region))
				break;
		if (j < l->n_groups)
			cfg_err(
			    ctx, rs, rkey,
			    "region %s already has an endpoint group in this listener (line %d)",
			    quote(g->region).s, l->groups[j].line);
	}
	/* kept even when invalid: its allocations are freed with the config */
	l->n_groups++;
}

static void parse_region_order(struct ctx *ctx, const config_setting_t *s, const char *key,
			       struct ag_cfg_listener *l)
{
	char ekey[KEY_MAX], okey[KEY_MAX];
	unsigned int i, j, len;

	if (!want_seq(ctx, s, key))
		return;
	len = config_setting_length(s);
	if (!len)
		return;
	l->region_order = cfg_calloc(ctx, s, key, len, sizeof(*l->region_order));
	if (!l->region_order)
		return;
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		const char *v;

		key_elem(ekey, key, i);
		if (!want_string(ctx, e, ekey))
			continue;
		v = config_setting_get_string(e);
		for (j = 0; j < l->n_groups; j++)
			if (l->groups[j].region[0] && !strcmp(l->groups[j].region, v))
				break;
		if (j == l->n_groups) {
			cfg_err(ctx, e, ekey,
				"%s is not the region of an endpoint group of this listener",
				quote(v).s);
			continue;
		}
		for (j = 0; j < i; j++) {
			const config_setting_t *o = config_setting_get_elem(s, j);

			if (config_setting_type(o) == CONFIG_TYPE_STRING &&
			    !strcmp(config_setting_get_string(o), v))
				break;
		}
		if (j < i) {
			key_elem(okey, key, j);
			cfg_err(ctx, e, ekey, "%s is listed twice (also %s)", quote(v).s, okey);
			continue;
		}
		l->region_order[l->n_region_order] = cfg_strdup(ctx, e, ekey, v);
		if (l->region_order[l->n_region_order])
			l->n_region_order++;
	}
}

static void parse_ports(struct ctx *ctx, const config_setting_t *s, const char *key,
			struct ag_cfg_listener *l)
{
	char ekey[KEY_MAX];
	unsigned int i, len;

	if (!want_seq(ctx, s, key) || !check_count(ctx, s, key, 1, UINT_MAX))
		return;
	len = config_setting_length(s);
	l->ranges = cfg_calloc(ctx, s, key, len, sizeof(*l->ranges));
	if (!l->ranges)
		return;
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		struct ag_cfg_port_range *r = &l->ranges[l->n_ranges];

		key_elem(ekey, key, i);
		if (range_value(ctx, e, ekey, 1, 65535, "port", &r->first, &r->last) != GOT_VALUE)
			continue;
		r->line = setting_line(e);
		l->n_ranges++;
	}
}

static void parse_listener(struct ctx *ctx, const config_setting_t *s, const char *key,
			   struct ag_cfg_accelerator *a)
{
	static const char *const keys[] = {
	    "protocol",		"ports",	"client_affinity", "failure_policy",
	    "overprovisioning", "region_order", "endpoint_groups", NULL,
	};
	struct ag_cfg_listener *l = &a->listeners[a->n_listeners];
	char mkey[KEY_MAX], ekey[KEY_MAX];
	config_setting_t *m;
	int proto = -1, aff = 0, fail = AG_FAIL_OPEN;
	unsigned int i, len;

	if (!want_group(ctx, s, key))
		return;
	a->n_listeners++;
	if (++ctx->n_listeners == AG_MAX_LISTENERS + 1)
		cfg_err(ctx, s, key, "exceeds the limit of %d listeners over all accelerators",
			AG_MAX_LISTENERS);
	l->line = setting_line(s);
	check_keys(ctx, s, key, keys);
	if (get_enum(ctx, s, key, "protocol", true, proto_names, &proto) == GOT_VALUE)
		l->proto = proto_values[proto];
	m = get_member(ctx, s, key, "ports", true, mkey);
	if (m)
		parse_ports(ctx, m, mkey, l);
	get_enum(ctx, s, key, "client_affinity", false, affinity_names, &aff);
	l->affinity = affinity_values[aff];
	get_enum(ctx, s, key, "failure_policy", false, failure_names, &fail);
	l->failure_policy = fail;

	l->overprovisioning = DEFAULT_OVERPROVISIONING;
	m = get_member(ctx, s, key, "overprovisioning", false, mkey);
	if (m) {
		double v;

		if (is_int(m)) {
			v = int_of(m);
		} else if (config_setting_type(m) == CONFIG_TYPE_FLOAT) {
			v = config_setting_get_float(m);
		} else {
			cfg_err(ctx, m, mkey, "must be a number (got %s)", type_name(m));
			v = DEFAULT_OVERPROVISIONING;
		}
		if (!(v >= 1.0 && v <= 10.0))
			cfg_err(ctx, m, mkey, "must be 1.0-10.0 (got %g)", v);
		else
			l->overprovisioning = v;
	}

	m = get_member(ctx, s, key, "endpoint_groups", true, mkey);
	if (m && want_group_list(ctx, m, mkey) &&
	    check_count(ctx, m, mkey, 1, AG_MAX_GROUPS_PER_LISTENER)) {
		len = config_setting_length(m);
		l->groups = cfg_calloc(ctx, m, mkey, len, sizeof(*l->groups));
		for (i = 0; l->groups && i < len; i++) {
			key_elem(ekey, mkey, i);
			parse_group(ctx, config_setting_get_elem(m, i), ekey, l);
		}
	}
	/* after the groups: it names their regions */
	m = get_member(ctx, s, key, "region_order", false, mkey);
	if (m)
		parse_region_order(ctx, m, mkey, l);
}

/* One port range of a listener, for the overlap sweep. */
struct range_ref {
	uint16_t first, last;
	unsigned int listener, range;
	int line;
};

static int range_ref_cmp(const void *pa, const void *pb)
{
	const struct range_ref *a = pa, *b = pb;

	if (a->first != b->first)
		return a->first < b->first ? -1 : 1;
	if (a->listener != b->listener)
		return a->listener < b->listener ? -1 : 1;
	return a->range < b->range ? -1 : a->range > b->range;
}

static void format_range(char *buf, size_t n, uint16_t first, uint16_t last)
{
	if (first == last)
		snprintf(buf, n, "%u", first);
	else
		snprintf(buf, n, "%u-%u", first, last);
}

/*
 * Two listeners of one accelerator (so the same VIPs) and one protocol must
 * not claim the same port: the listener map has one key per (vip, proto, port).
 * Sort every range by its first port and sweep, keeping the range that reaches
 * furthest: O(n log n) even for lists of thousands of single ports.
 */
static void check_overlaps(struct ctx *ctx, const config_setting_t *ls, const char *akey,
			   const struct ag_cfg_accelerator *a, uint8_t proto)
{
	char k1[KEY_MAX], k2[KEY_MAX], r1[16], r2[16];
	struct range_ref *refs, *far;
	unsigned int i, j, n = 0;
	const char *pname = proto == IPPROTO_TCP ? "tcp" : "udp";

	for (i = 0; i < a->n_listeners; i++)
		if (a->listeners[i].proto == proto)
			n += a->listeners[i].n_ranges;
	if (n < 2)
		return;
	refs = cfg_calloc(ctx, ls, akey, n, sizeof(*refs));
	if (!refs)
		return;
	n = 0;
	for (i = 0; i < a->n_listeners; i++) {
		const struct ag_cfg_listener *l = &a->listeners[i];

		if (l->proto != proto)
			continue;
		for (j = 0; j < l->n_ranges; j++)
			refs[n++] = (struct range_ref){l->ranges[j].first, l->ranges[j].last, i, j,
						       l->ranges[j].line};
	}
	qsort(refs, n, sizeof(*refs), range_ref_cmp);
	far = &refs[0];
	for (i = 1; i < n; i++) {
		struct range_ref *cur = &refs[i], *later = cur, *earlier = far;

		if (cur->first <= far->last) {
			/* report at the one written later, naming the other */
			if (cur->listener < far->listener ||
			    (cur->listener == far->listener && cur->range < far->range)) {
				later = far;
				earlier = cur;
			}
			snprintf(k1, sizeof(k1), "%s.listeners[%u].ports[%u]", akey,
				 later->listener, later->range);
			snprintf(k2, sizeof(k2), "%s.listeners[%u].ports[%u]", akey,
				 earlier->listener, earlier->range);
			format_range(r1, sizeof(r1), later->first, later->last);
			format_range(r2, sizeof(r2), earlier->first, earlier->last);
			ctx->n_errs++;
			ag_errors__add(ctx->errs, setting_file(ctx, ls), later->line, k1,
				       "%s ports %s overlap %s (%s, line %d)", pname, r1, k2, r2,
				       earlier->line);
		}
		if (cur->last > far->last)
			far = cur;
	}
	free(refs);
}

/* A VIP belongs to one accelerator, and is never an edge NAT source. */
static void check_vip(struct ctx *ctx, const config_setting_t *e, const char *key,
		      unsigned int elem, unsigned int accel, uint32_t addr)
{
	char ekey[KEY_MAX], buf[INET_ADDRSTRLEN];
	unsigned int j, seen = ctx->n_vips < AG_MAX_VIPS ? ctx->n_vips : AG_MAX_VIPS;

	key_elem(ekey, key, elem);
	format_addr(addr, buf);
	for (j = 0; j < seen; j++) {
		if (ctx->vips[j].addr == addr) {
			cfg_err(ctx, e, ekey,
				"%s is already an address of accelerators[%u] (line %d)", buf,
				ctx->vips[j].accel, ctx->vips[j].line);
			return;
		}
	}
	for (j = 0; j < ctx->edge->n_nat_addrs; j++)
		if (ctx->edge->nat_addrs[j] == addr)
			cfg_err(ctx, e, ekey, "%s is also an edge NAT address", buf);
	if (ctx->n_vips < AG_MAX_VIPS)
		ctx->vips[ctx->n_vips] = (struct vip_seen){addr, accel, setting_line(e)};
	if (++ctx->n_vips == AG_MAX_VIPS + 1)
		cfg_err(ctx, e, ekey, "exceeds the limit of %d addresses over all accelerators",
			AG_MAX_VIPS);
}

static void parse_accel(struct ctx *ctx, const config_setting_t *s, const char *key,
			struct ag_config *cfg)
{
	static const char *const keys[] = {"name", "addresses", "listeners", NULL};
	struct ag_cfg_accelerator *a = &cfg->accels[cfg->n_accels];
	char mkey[KEY_MAX], ekey[KEY_MAX];
	config_setting_t *m, *ns = NULL;
	unsigned int i, len;

	if (!want_group(ctx, s, key))
		return;
	cfg->n_accels++;
	a->line = setting_line(s);
	check_keys(ctx, s, key, keys);
	if (get_name(ctx, s, key, "name", a->name, &ns) == GOT_VALUE) {
		for (i = 0; i + 1 < cfg->n_accels; i++)
			if (!strcmp(cfg->accels[i].name, a->name))
				break;
		if (i + 1 < cfg->n_accels) {
			key_member(mkey, key, "name");
			cfg_err(ctx, ns, mkey, "duplicate accelerator name %s (also at line %d)",
				quote(a->name).s, cfg->accels[i].line);
		}
	}

	m = get_member(ctx, s, key, "addresses", true, mkey);
	if (m) {
		unsigned int *elems = NULL;

		parse_addr_list(ctx, m, mkey, AG_MAX_VIPS, &a->addrs, &a->n_addrs, &elems);
		for (i = 0; i < a->n_addrs; i++)
			check_vip(ctx, config_setting_get_elem(m, elems[i]), mkey, elems[i],
				  cfg->n_accels - 1, a->addrs[i]);
		free(elems);
	}

	m = get_member(ctx, s, key, "listeners", true, mkey);
	if (m && want_group_list(ctx, m, mkey) && check_count(ctx, m, mkey, 1, UINT_MAX)) {
		len = config_setting_length(m);
		a->listeners = cfg_calloc(ctx, m, mkey, len, sizeof(*a->listeners));
		for (i = 0; a->listeners && i < len; i++) {
			key_elem(ekey, mkey, i);
			parse_listener(ctx, config_setting_get_elem(m, i), ekey, a);
		}
		check_overlaps(ctx, m, key, a, IPPROTO_TCP);
		check_overlaps(ctx, m, key, a, IPPROTO_UDP);
	}
}

static void parse_accels(struct ctx *ctx, const config_setting_t *root, struct ag_config *cfg)
{
	char key[KEY_MAX], ekey[KEY_MAX];
	config_setting_t *s;
	unsigned long keys;
	unsigned int i, len;

	s = get_member(ctx, root, "", "accelerators", true, key);
	if (!s || !want_group_list(ctx, s, key) || !check_count(ctx, s, key, 1, UINT_MAX))
		return;
	len = config_setting_length(s);
	cfg->accels = cfg_calloc(ctx, s, key, len, sizeof(*cfg->accels));
	if (!cfg->accels)
		return;
	for (i = 0; i < len; i++) {
		key_elem(ekey, key, i);
		parse_accel(ctx, config_setting_get_elem(s, i), ekey, cfg);
	}
	keys = ag_config__listener_keys(cfg);
	if (keys > AG_MAX_LISTENER_KEYS)
		cfg_err(ctx, s, key, "%lu listener keys (addresses x ports) exceed the limit of %d",
			keys, AG_MAX_LISTENER_KEYS);
}

unsigned long ag_config__listener_keys(const struct ag_config *cfg)
{
	unsigned long total = 0, ports;
	unsigned int a, l, r;

	for (a = 0; a < cfg->n_accels; a++) {
		const struct ag_cfg_accelerator *acc = &cfg->accels[a];

		ports = 0;
		for (l = 0; l < acc->n_listeners; l++)
			for (r = 0; r < acc->listeners[l].n_ranges; r++)
				ports += acc->listeners[l].ranges[r].last -
					 acc->listeners[l].ranges[r].first + 1;
		total += ports * acc->n_addrs;
	}
	return total;
}

/* ------------------------------------------------------------------------- */
/* Integer literals libconfig 1.5 would silently truncate                     */

/*
 * libconfig 1.5 reads a decimal integer without an L suffix through a 32-bit
 * int and a hex one through a 32-bit pattern: 4294968320 becomes 1024 without
 * a word. Find such literals in the text (outside strings and comments) and
 * refuse them, so no value ever changes on its way in.
 */
static void scan_literal(struct ctx *ctx, const char *file, int line, const char *tok, size_t len)
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

static void scan_text(struct ctx *ctx, const char *file, const char *p, const char *end)
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

static const char *read_problem(int err)
{
	if (err == EINVAL)
		return "not a regular file";
	if (err == EFBIG)
		return "larger than 64 MiB: not a config file";
	return strerror(err);
}

static char *read_text(const char *path, size_t *len, int *err)
{
	struct stat st;
	char *buf = NULL;
	size_t got;
	FILE *f;

	f = fopen(path, "r");
	if (!f) {
		*err = errno;
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0) {
		*err = errno;
		goto close_file;
	}
	if (!S_ISREG(st.st_mode)) {
		*err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto close_file;
	}
	if ((unsigned long long)st.st_size > CONFIG_FILE_MAX) {
		*err = EFBIG;
		goto close_file;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		*err = ENOMEM;
		goto close_file;
	}
	got = fread(buf, 1, st.st_size, f);
	if (ferror(f)) {
		*err = EIO;
		free(buf);
		buf = NULL;
		goto close_file;
	}
	buf[got] = '\0';
	*len = got;
close_file:
	fclose(f);
	return buf;
}

/* The included files libconfig read (recorded as written in @include). */
static void scan_includes(struct ctx *ctx, const config_t *c, const char *dir)
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
			cfg_oom(ctx, NULL, NULL);
			return;
		}
		text = read_text(path, &len, &err);
		if (!text) {
			ctx->n_errs++;
			ag_errors__add(ctx->errs, name, 0, NULL, "cannot read: %s",
				       read_problem(err));
		} else {
			scan_text(ctx, name, text, text + len);
		}
		free(text);
		free(path);
	}
}

/* ------------------------------------------------------------------------- */
/* Load and free                                                              */

static void free_health(struct ag_cfg_health *hc)
{
	free(hc->path);
	free(hc->host);
	free(hc->send);
	free(hc->expect);
}

static void free_strv(char **v, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void ag_config__free(struct ag_config *cfg)
{
	unsigned int a, l, g;

	if (!cfg)
		return;
	for (a = 0; a < cfg->n_accels; a++) {
		struct ag_cfg_accelerator *acc = &cfg->accels[a];

		for (l = 0; l < acc->n_listeners; l++) {
			struct ag_cfg_listener *lis = &acc->listeners[l];

			for (g = 0; g < lis->n_groups; g++) {
				free_health(&lis->groups[g].health);
				free(lis->groups[g].overrides);
				free(lis->groups[g].endpoints);
			}
			free(lis->groups);
			free(lis->ranges);
			free_strv(lis->region_order, lis->n_region_order);
		}
		free(acc->listeners);
		free(acc->addrs);
	}
	free(cfg->accels);
	free(cfg->edge.ifaces);
	free(cfg->edge.nat_addrs);
	free(cfg->edge.bpffs_dir);
	free(cfg->edge.control_socket);
	free(cfg->edge.admin_group);
	free(cfg->edge.control_group);
	free(cfg->edge.state_file);
	free(cfg->edge.metrics_addr);
	free_strv(cfg->edge.dpdk.eal_args, cfg->edge.dpdk.n_eal_args);
	free_strv(cfg->edge.dpdk.ports, cfg->edge.dpdk.n_ports);
	free(cfg->edge.dpdk.shm_name);
	free(cfg->edge.dpdk.port_addrs);
	free(cfg->edge.dpdk.routes);
	free(cfg->edge.dpdk.neighbours);
	free(cfg->path);
	free(cfg);
}

struct ag_config *ag_config__load(const char *path, struct ag_errors *errs)
{
	static const char *const root_keys[] = {"edge", "accelerators", NULL};
	struct ctx *ctx = NULL;
	struct ag_config *cfg = NULL;
	char *text = NULL, *dir = NULL, *slash;
	size_t len = 0;
	int err = 0;
	config_t c;

	text = read_text(path, &len, &err);
	if (!text) {
		ag_errors__add(errs, path, 0, NULL, "cannot read: %s", read_problem(err));
		errno = err;
		return NULL;
	}
	if (memchr(text, '\0', len)) {
		ag_errors__add(errs, path, 0, NULL, "contains a NUL byte: not a config file");
		free(text);
		errno = EINVAL;
		return NULL;
	}
	ctx = calloc(1, sizeof(*ctx));
	cfg = calloc(1, sizeof(*cfg));
	dir = strdup(path);
	if (!ctx || !cfg || !dir || !(cfg->path = strdup(path))) {
		ag_errors__add(errs, path, 0, NULL, "out of memory");
		free(ctx);
		free(cfg);
		free(dir);
		free(text);
		errno = ENOMEM;
		return NULL;
	}
	ctx->path = path;
	ctx->errs = errs;
	ctx->edge = &cfg->edge;

	/* @include names are relative to the including file, not to our cwd */
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	config_init(&c);
	if (slash)
		config_set_include_dir(&c, dir[0] ? dir : "/");
	if (!config_read_string(&c, text)) {
		const char *file = config_error_file(&c), *what = config_error_text(&c);
		/* libconfig's words do not say how to write a mixed port list */
		const char *hint =
		    strstr(what, "mismatched element type")
			? " (an array [ ] holds values of one type: use a list ( ) to mix them)"
			: "";

		ag_errors__add(errs, file ? file : path, config_error_line(&c), "syntax error",
			       "%s%s", what, hint);
		ctx->n_errs++;
		goto destroy;
	}
	scan_text(ctx, path, text, text + len);
	scan_includes(ctx, &c, slash ? (dir[0] ? dir : "/") : NULL);
	if (ctx->n_errs)
		goto destroy; /* values may be truncated: judging them would mislead */

	check_keys(ctx, config_root_setting(&c), "", root_keys);
	parse_edge(ctx, config_root_setting(&c), &cfg->edge);
	parse_accels(ctx, config_root_setting(&c), cfg);

destroy:
	config_destroy(&c);
	free(text);
	free(dir);
	if (ctx->n_errs) {
		err = ctx->oom || ag_errors__oom(errs) ? ENOMEM : EINVAL;
		ag_config__free(cfg);
		cfg = NULL;
	}
	free(ctx);
	if (!cfg)
		errno = err;
	return cfg;
}

struct ag_config *ag_config__load_or_report(const char *path)
{
	struct ag_errors errs;
	struct ag_config *cfg;
	unsigned int i;

	ag_errors__init(&errs);
	cfg = ag_config__load(path, &errs);
	for (i = 0; i < errs.count; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	if (!cfg && !errs.count)
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
	ag_errors__free(&errs);
	return cfg;
}
