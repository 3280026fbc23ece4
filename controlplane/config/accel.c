// SPDX-License-Identifier: BSD-3-Clause
/*
 * Accelerators and their listeners: VIPs (unique over the file, never a NAT
 * address), port lists, the ports two listeners may not share, region order,
 * and the limits on them over the whole file (consts.h).
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int ag_cfg__parse_accels(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key)
{
	unsigned long keys;

	ag_cfg__parse_all_elems(sc, k, m, key, NULL, NULL);
	keys = ag_config__listener_keys(sc->base);
	if (keys > AG_MAX_LISTENER_KEYS)
		ag_cfg__err(sc->ctx, m, key,
			    "%lu listener keys (addresses x ports) exceed the limit of %d", keys,
			    AG_MAX_LISTENER_KEYS);
	return AG_CFG_VALUE;
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

int ag_cfg__parse_accel_name(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			     config_setting_t *m, const char *key)
{
	const struct ag_config *cfg = sc->up->base;
	const struct ag_cfg_accelerator *a = sc->base;
	unsigned int i;

	if (ag_cfg__value(sc, k, m, key) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	for (i = 0; i + 1 < cfg->n_accels; i++) { /* the accelerators before this one */
		if (!strcmp(cfg->accels[i].name, a->name)) {
			ag_cfg__err(sc->ctx, m, key,
				    "duplicate accelerator name %s (also at line %d)",
				    ag_cfg__quote(a->name).s, cfg->accels[i].line);
			return AG_CFG_INVALID;
		}
	}
	return AG_CFG_VALUE;
}

/* A VIP belongs to one accelerator, and is never an edge NAT source. */
static void check_vip(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
		      const char *key, unsigned int elem, uint32_t addr)
{
	struct ag_cfg_ctx *ctx = sc->ctx;
	const struct ag_config *cfg = sc->up->base;
	const config_setting_t *e = config_setting_get_elem(m, elem);
	unsigned int j, accel = cfg->n_accels - 1;
	unsigned int seen = ctx->n_vips < k->total ? ctx->n_vips : k->total;
	char ekey[KEY_MAX], buf[INET_ADDRSTRLEN];

	ag_cfg__key_elem(ekey, key, elem);
	ag_cfg__format_addr(addr, buf);
	for (j = 0; j < seen; j++) {
		if (ctx->vips[j].addr == addr) {
			ag_cfg__err(ctx, e, ekey,
				    "%s is already an address of accelerators[%u] (line %d)", buf,
				    ctx->vips[j].accel, ctx->vips[j].line);
			return;
		}
	}
	for (j = 0; j < ctx->edge->n_nat_addrs; j++)
		if (ctx->edge->nat_addrs[j] == addr)
			ag_cfg__err(ctx, e, ekey, "%s is also an edge NAT address", buf);
	if (ctx->n_vips < k->total)
		ctx->vips[ctx->n_vips] = (struct ag_cfg_vip_seen){addr, accel, ag_cfg__line(e)};
	if (++ctx->n_vips == k->total + 1)
		ag_cfg__err(ctx, e, ekey, "exceeds the limit of %lld addresses over all %s",
			    k->total, k->total_over);
}

int ag_cfg__parse_vips(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
		       const char *key)
{
	struct ag_cfg_accelerator *a = sc->base;
	unsigned int *elems = NULL, i;

	ag_cfg__addr_list(sc->ctx, k, m, key, &a->addrs, &a->n_addrs, &elems);
	for (i = 0; i < a->n_addrs; i++)
		check_vip(sc, k, m, key, elems[i], a->addrs[i]);
	free(elems);
	return AG_CFG_VALUE;
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

/* The ranges of listeners of protocol proto, sorted by first port; NULL when fewer than 2. */
static struct range_ref *sorted_ranges(struct ag_cfg_ctx *ctx, const config_setting_t *ls,
				       const char *akey, const struct ag_cfg_accelerator *a,
				       uint8_t proto, unsigned int *n)
{
	struct range_ref *refs;
	unsigned int i, j;

	*n = 0;
	for (i = 0; i < a->n_listeners; i++)
		if (a->listeners[i].proto == proto)
			*n += a->listeners[i].n_ranges;
	if (*n < 2)
		return NULL;
	refs = ag_cfg__calloc(ctx, ls, akey, *n, sizeof(*refs));
	if (!refs)
		return NULL;
	*n = 0;
	for (i = 0; i < a->n_listeners; i++) {
		const struct ag_cfg_listener *l = &a->listeners[i];

		if (l->proto != proto)
			continue;
		for (j = 0; j < l->n_ranges; j++)
			refs[(*n)++] = (struct range_ref){l->ranges[j].first, l->ranges[j].last, i,
							  j, l->ranges[j].line};
	}
	qsort(refs, *n, sizeof(*refs), range_ref_cmp);
	return refs;
}

/* Reported at the range written later, naming the other. */
static void report_overlap(struct ag_cfg_ctx *ctx, const config_setting_t *ls, const char *akey,
			   const struct range_ref *a, const struct range_ref *b, const char *pname)
{
	const struct range_ref *later = a, *earlier = b;
	char k1[KEY_MAX], k2[KEY_MAX], r1[16], r2[16];

	if (a->listener < b->listener || (a->listener == b->listener && a->range < b->range)) {
		later = b;
		earlier = a;
	}
	snprintf(k1, sizeof(k1), "%s.listeners[%u].ports[%u]", akey, later->listener, later->range);
	snprintf(k2, sizeof(k2), "%s.listeners[%u].ports[%u]", akey, earlier->listener,
		 earlier->range);
	format_range(r1, sizeof(r1), later->first, later->last);
	format_range(r2, sizeof(r2), earlier->first, earlier->last);
	ctx->n_errs++;
	ag_errors__add(ctx->errs, ag_cfg__file(ctx, ls), later->line, k1,
		       "%s ports %s overlap %s (%s, line %d)", pname, r1, k2, r2, earlier->line);
}

/*
 * Two listeners of one accelerator (so the same VIPs) and one protocol must
 * not claim the same port: the listener map has one key per (vip, proto, port).
 * Sort every range by its first port and sweep, keeping the range that reaches
 * furthest: O(n log n) even for lists of thousands of single ports.
 */
static void check_overlaps(struct ag_cfg_ctx *ctx, const config_setting_t *ls, const char *akey,
			   const struct ag_cfg_accelerator *a, uint8_t proto)
{
	struct range_ref *refs, *far;
	unsigned int i, n;

	refs = sorted_ranges(ctx, ls, akey, a, proto, &n);
	if (!refs)
		return;
	far = &refs[0];
	for (i = 1; i < n; i++) {
		if (refs[i].first <= far->last)
			report_overlap(ctx, ls, akey, &refs[i], far,
				       proto == IPPROTO_TCP ? "tcp" : "udp");
		if (refs[i].last > far->last)
			far = &refs[i];
	}
	free(refs);
}

int ag_cfg__parse_listeners(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key)
{
	ag_cfg__parse_all_elems(sc, k, m, key, &sc->ctx->n_listeners, "listeners");
	check_overlaps(sc->ctx, m, sc->key, sc->base, IPPROTO_TCP);
	check_overlaps(sc->ctx, m, sc->key, sc->base, IPPROTO_UDP);
	return AG_CFG_VALUE;
}

int ag_cfg__parse_ports(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			const char *key)
{
	struct ag_cfg_listener *l = sc->base;
	char ekey[KEY_MAX];
	unsigned int i, len;

	if (!ag_cfg__want_seq(sc->ctx, m, key) || !ag_cfg__check_count(sc->ctx, k, m, key))
		return AG_CFG_INVALID;
	len = config_setting_length(m);
	l->ranges = ag_cfg__calloc(sc->ctx, m, key, len, sizeof(*l->ranges));
	for (i = 0; l->ranges && i < len; i++) {
		config_setting_t *e = config_setting_get_elem(m, i);
		struct ag_cfg_port_range *r = &l->ranges[l->n_ranges];

		ag_cfg__key_elem(ekey, key, i);
		if (ag_cfg__range(sc->ctx, k->elem, e, ekey, &r->first, &r->last) != AG_CFG_VALUE)
			continue;
		r->line = ag_cfg__line(e);
		l->n_ranges++;
	}
	return AG_CFG_VALUE;
}

/* Whether v names a group of the listener, and is not listed before index i. */
static bool check_region(struct ag_cfg_ctx *ctx, const config_setting_t *m, const char *key,
			 unsigned int i, const struct ag_cfg_listener *l, const char *v)
{
	const config_setting_t *e = config_setting_get_elem(m, i);
	char ekey[KEY_MAX], okey[KEY_MAX];
	unsigned int j;

	ag_cfg__key_elem(ekey, key, i);
	for (j = 0; j < l->n_groups; j++)
		if (l->groups[j].region[0] && !strcmp(l->groups[j].region, v))
			break;
	if (j == l->n_groups) {
		ag_cfg__err(ctx, e, ekey,
			    "%s is not the region of an endpoint group of this listener",
			    ag_cfg__quote(v).s);
		return false;
	}
	for (j = 0; j < i; j++) {
		const config_setting_t *o = config_setting_get_elem(m, j);

		if (config_setting_type(o) == CONFIG_TYPE_STRING &&
		    !strcmp(config_setting_get_string(o), v))
			break;
	}
	if (j < i) {
		ag_cfg__key_elem(okey, key, j);
		ag_cfg__err(ctx, e, ekey, "%s is listed twice (also %s)", ag_cfg__quote(v).s, okey);
		return false;
	}
	return true;
}

int ag_cfg__parse_region_order(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			       config_setting_t *m, const char *key)
{
	struct ag_cfg_listener *l = sc->base;
	char ekey[KEY_MAX];
	unsigned int i, len;

	if (!ag_cfg__want_seq(sc->ctx, m, key))
		return AG_CFG_INVALID;
	len = config_setting_length(m);
	if (!len)
		return AG_CFG_VALUE;
	l->region_order = ag_cfg__calloc(sc->ctx, m, key, len, sizeof(*l->region_order));
	for (i = 0; l->region_order && i < len; i++) {
		config_setting_t *e = config_setting_get_elem(m, i);
		const char *v;

		ag_cfg__key_elem(ekey, key, i);
		if (ag_cfg__string(sc->ctx, e, ekey, &v) != AG_CFG_VALUE ||
		    !check_region(sc->ctx, m, key, i, l, v))
			continue;
		l->region_order[l->n_region_order] = ag_cfg__strdup(sc->ctx, e, ekey, v);
		if (l->region_order[l->n_region_order])
			l->n_region_order++;
	}
	return AG_CFG_VALUE;
}
