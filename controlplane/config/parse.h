/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the parts of the config parser share: the parse context (where problems
 * go, running totals over the whole file), the scope of a block being parsed,
 * the typed value readers (value.c, addr.c), the engine that parses a block by
 * its declaration (block.c), and the parsers of the keys that need their own
 * (edge.c, dpdk.c, health.c, accel.c, group.c).
 *
 * Every problem is "file:line: key: problem"; the key is the dotted path of
 * the setting (accelerators[0].listeners[1].ports[0]), built into KEY_MAX
 * buffers as the parser descends.
 */
#ifndef AG_CONFIG_PARSE_H
#define AG_CONFIG_PARSE_H

#include <libconfig.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "schema.h"

/* Dotted setting paths: the deepest is about 80 characters. */
#define KEY_MAX 256

struct ag_cfg_vip_seen {
	uint32_t addr;
	unsigned int accel;
	int line;
};

struct ag_cfg_ctx {
	const char *path; /* as the caller named it: used in every message */
	struct ag_errors *errs;
	unsigned int n_errs; /* problems found by this load */
	bool oom;
	/* running totals over the whole file, checked against consts.h */
	unsigned int n_listeners, n_groups, n_backends, n_overrides, n_vips;
	struct ag_cfg_vip_seen vips[AG_MAX_VIPS];
	const struct ag_cfg_edge *edge; /* for VIP vs NAT address clashes */
};

/* A block being parsed: a group of the file and the structure it fills. */
struct ag_cfg_scope {
	struct ag_cfg_ctx *ctx;
	const struct ag_cfg_block *block;
	const config_setting_t *grp; /* NULL: the block is not in the file */
	const char *key;	     /* its dotted path */
	void *base;		     /* the structure its keys are stored in */
	struct ag_cfg_scope *up;     /* the enclosing block */
	uint64_t bad;		     /* keys found invalid, by index in block->keys */
};

/* load.c: a file's text (NULL with *err set), and the words for that error. */
char *ag_cfg__read_text(const char *path, size_t *len, int *err);
const char *ag_cfg__read_problem(int err);

/* scan.c: refuse integer literals libconfig would truncate, in text and in @includes. */
void ag_cfg__scan_text(struct ag_cfg_ctx *ctx, const char *file, const char *p, const char *end);
void ag_cfg__scan_includes(struct ag_cfg_ctx *ctx, const config_t *c, const char *dir);

/*
 * include.c: every @include of text (and of the files it includes), relative
 * to dir, that exists must be a regular file, checked before libconfig opens
 * it with a blocking fopen(); errors "file:line: @include: NAME: a FIFO, not a
 * regular file: not read". False when one was refused.
 */
bool ag_cfg__check_includes(struct ag_cfg_ctx *ctx, const char *text, size_t len, const char *dir);

/* errors.c: append one message (see ag_errors__add). */
void ag_errors__vadd(struct ag_errors *errs, const char *file, int line, const char *key,
		     const char *fmt, va_list ap);

/* ------------------------------------------------------------------------- */
/* value.c: problems, key paths, typed values                                 */

const char *ag_cfg__file(const struct ag_cfg_ctx *ctx, const config_setting_t *s);
int ag_cfg__line(const config_setting_t *s);
void ag_cfg__err(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void ag_cfg__oom(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key);
void *ag_cfg__calloc(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key, size_t n,
		     size_t size);
char *ag_cfg__strdup(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
		     const char *str);

void ag_cfg__key_member(char *out, const char *prefix, const char *name);
void ag_cfg__key_elem(char *out, const char *prefix, unsigned int i);

/* A user string quoted for a message: bounded, control characters escaped. */
struct ag_cfg_quoted {
	char s[80];
};
struct ag_cfg_quoted ag_cfg__quote(const char *in);

const char *ag_cfg__type_name(const config_setting_t *s);
bool ag_cfg__is_int(const config_setting_t *s);
long long ag_cfg__int_of(const config_setting_t *s);
bool ag_cfg__is_seq(const config_setting_t *s);
bool ag_cfg__is_group_list(const config_setting_t *s);
bool ag_cfg__want_group(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key);
bool ag_cfg__want_group_list(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key);
bool ag_cfg__want_seq(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key);
bool ag_cfg__want_string(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key);
/* Element counts within k's min-max: "must have 1-16 entries (got 17)". */
bool ag_cfg__check_count(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k,
			 const config_setting_t *s, const char *key);
/* Printable ASCII without spaces: goes verbatim into an HTTP request line. */
bool ag_cfg__is_token(const char *s);
bool ag_cfg__parse_uint(const char *s, const char **end, unsigned long *v);

/* The typed readers: AG_CFG_VALUE with *out set, or AG_CFG_INVALID (recorded). */
int ag_cfg__int(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k, const config_setting_t *s,
		const char *key, long long *out);
int ag_cfg__float(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k, const config_setting_t *s,
		  const char *key, double *out);
int ag_cfg__string(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
		   const char **out);
int ag_cfg__enum(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k, const config_setting_t *s,
		 const char *key, int *out);
int ag_cfg__name(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
		 const char **out);
int ag_cfg__path(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k, const config_setting_t *s,
		 const char *key, const char **out);
/* A port or status: an integer N or a string "N" / "A-B" within k's min-max. */
int ag_cfg__range(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k, const config_setting_t *s,
		  const char *key, uint16_t *first, uint16_t *last);
/* A group of this host within k's min-max characters, and its gid. */
int ag_cfg__unix_group(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k,
		       const config_setting_t *s, const char *key, const char **out, gid_t *gid);
/* An array of non-empty strings, copied into *out (the caller frees). */
void ag_cfg__strings(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
		     char ***out, unsigned int *n);

/* ------------------------------------------------------------------------- */
/* addr.c: IPv4 addresses, prefixes, MAC addresses                            */

bool ag_cfg__parse_ipv4(const char *s, uint32_t *addr);
void ag_cfg__format_addr(uint32_t addr, char *buf);
int ag_cfg__addr(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key, uint32_t *out);
bool ag_cfg__is_unicast(uint32_t addr);
/*
 * An array of k's min-max unicast IPv4 strings without duplicates: *out gets
 * the valid ones, *n their count, and (when elems is given) elems[j] the array
 * index of (*out)[j], for messages about it; the caller frees both.
 */
void ag_cfg__addr_list(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k,
		       const config_setting_t *s, const char *key, uint32_t **out, unsigned int *n,
		       unsigned int **elems);
/* "a.b.c.d/len", len 0-32. */
bool ag_cfg__parse_prefix(const char *v, uint32_t *addr, uint8_t *len);
uint32_t ag_cfg__prefix_mask(uint8_t len);
/* "xx:xx:xx:xx:xx:xx", hex digits. */
bool ag_cfg__parse_mac(const char *v, uint8_t mac[6]);
/* "a.b.c.d:port", port 1-65535. */
bool ag_cfg__parse_host_port(const char *v, uint32_t *ip, uint16_t *port);

/* ------------------------------------------------------------------------- */
/* block.c: a block parsed by its declaration                                 */

/* Opens the scope of block b over grp (NULL: absent) and stores its defaults. */
void ag_cfg__scope(struct ag_cfg_scope *sc, struct ag_cfg_ctx *ctx, struct ag_cfg_scope *up,
		   const struct ag_cfg_block *b, const config_setting_t *grp, const char *key,
		   void *base);
/* Unknown keys, then every key in declaration order, then block->finish. */
void ag_cfg__parse_block(struct ag_cfg_scope *sc);
/* One key: its member, "is required", its parse (k->parse or by type). */
int ag_cfg__parse_key(struct ag_cfg_scope *sc, const struct ag_cfg_key *k);
/* The parse by type, for a parse_fn that adds rules to it. */
int ag_cfg__value(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
		  const char *key);
/*
 * An INT key that may not exceed another key of the block, `bound` (parsed
 * before it), now at limit: "must be 1-100, at most interval_ms (got 150)".
 * Nothing more is said against an invalid bound. AG_CFG_VALUE with *out, or
 * AG_CFG_INVALID (recorded).
 */
int ag_cfg__int_at_most(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			const config_setting_t *m, const char *key, const char *bound,
			long long limit, long long *out);
/* Whether key `name` of the scope's block was found invalid. */
bool ag_cfg__was_bad(const struct ag_cfg_scope *sc, const char *name);
/* The field of key k in the scope's structure. */
void *ag_cfg__field(const struct ag_cfg_scope *sc, const struct ag_cfg_key *k);
/*
 * Element i of the list m (key k): its key path in ekey, false (recorded)
 * unless it is a group. On true, *esc is its scope over base (defaults stored).
 */
bool ag_cfg__elem(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
		  const char *key, unsigned int i, char *ekey, void *base,
		  struct ag_cfg_scope *esc);

/*
 * The elements of LIST m (key k), into the array the engine allocated for it:
 * each is kept, counted, when all its keys are valid and keep (if given)
 * accepts it; keep records why not.
 */
void ag_cfg__parse_elems(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key, bool (*keep)(struct ag_cfg_scope *esc));
/*
 * The elements of LIST m (key k), each counted before its keys are parsed and
 * kept even when invalid (its allocations are freed with the config):
 * accelerators, listeners, endpoint groups. *total (if given) counts them over
 * the whole file against k->total ("exceeds the limit of 64 listeners over all
 * accelerators", `what` = "listeners").
 */
void ag_cfg__parse_all_elems(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			     config_setting_t *m, const char *key, unsigned int *total,
			     const char *what);

/* ------------------------------------------------------------------------- */
/* The keys' own parsers and rules, named in keys.c                           */
/* (a LIST key's parser runs once the engine has checked and allocated it)    */

const char *ag_cfg__check_prime(long long v);

int ag_cfg__parse_accels(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key);
void ag_cfg__edge_finish(struct ag_cfg_scope *sc);
int ag_cfg__parse_ifaces(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key);
/*
 * Roles of n interfaces or ports (what: "interface", "port"; the role of
 * element i at roles + i * stride bytes): at least one must take clients'
 * packets and one backends' replies, or an error on s.
 */
void ag_cfg__check_roles(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
			 const char *what, const enum ag_iface_role *roles, size_t stride,
			 unsigned int n);
bool ag_cfg__same_ifaces(const void *old_edge, const void *new_edge);
int ag_cfg__parse_ifname(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key);
int ag_cfg__parse_nat_addrs(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key);
int ag_cfg__parse_metrics(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			  const char *key);
int ag_cfg__parse_tcp_short(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key);

int ag_cfg__parse_port_addrs(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			     config_setting_t *m, const char *key);
int ag_cfg__parse_port_roles(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			     config_setting_t *m, const char *key);
int ag_cfg__parse_routes(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key);
int ag_cfg__parse_route_to(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			   const char *key);
int ag_cfg__parse_route_via(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key);
int ag_cfg__parse_neigh_addr(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			     config_setting_t *m, const char *key);
int ag_cfg__parse_neigh_mac(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key);

int ag_cfg__parse_accel_name(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			     config_setting_t *m, const char *key);
int ag_cfg__parse_vips(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
		       const char *key);
int ag_cfg__parse_listeners(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key);
int ag_cfg__parse_ports(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			const char *key);
int ag_cfg__parse_region_order(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			       config_setting_t *m, const char *key);

int ag_cfg__parse_groups(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key);
void ag_cfg__group_finish(struct ag_cfg_scope *sc);
int ag_cfg__parse_overrides(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key);
int ag_cfg__parse_endpoints(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key);

void ag_cfg__health_finish(struct ag_cfg_scope *sc);
int ag_cfg__parse_timeout(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			  const char *key);
int ag_cfg__parse_http_path(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key);
int ag_cfg__parse_http_host(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key);
int ag_cfg__parse_payload(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			  const char *key);

#endif /* AG_CONFIG_PARSE_H */
