// SPDX-License-Identifier: BSD-3-Clause
/*
 * A listener's endpoint groups (one per region), their port overrides and
 * endpoints, and the limits on them over the whole file (consts.h).
 */
#include <arpa/inet.h>
#include <string.h>

#include "parse.h"

/* A region has one group per listener: its order and spill-over are by region. */
void ag_cfg__group_finish(struct ag_cfg_scope *sc)
{
	const struct ag_cfg_listener *l = sc->up->base;
	const struct ag_cfg_group *g = sc->base;
	char rkey[KEY_MAX];
	unsigned int j;

	/* an invalid region stays "": it never matches region_order or a duplicate */
	if (ag_cfg__was_bad(sc, "region"))
		return;
	for (j = 0; j + 1 < l->n_groups; j++) /* the groups before this one */
		if (!strcmp(l->groups[j].region, g->region))
			break;
	if (j + 1 < l->n_groups) {
		ag_cfg__key_member(rkey, sc->key, "region");
		ag_cfg__err(sc->ctx, config_setting_get_member(sc->grp, "region"), rkey,
			    "region %s already has an endpoint group in this listener (line %d)",
			    ag_cfg__quote(g->region).s, l->groups[j].line);
	}
}

int ag_cfg__parse_groups(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key)
{
	ag_cfg__parse_all_elems(sc, k, m, key, &sc->ctx->n_groups, "endpoint groups");
	return AG_CFG_VALUE;
}

static bool listener_has_port(const struct ag_cfg_listener *l, unsigned int port)
{
	unsigned int i;

	for (i = 0; i < l->n_ranges; i++)
		if (port >= l->ranges[i].first && port <= l->ranges[i].last)
			return true;
	return false;
}

/* A valid override is kept when it names a port of the listener not yet overridden. */
static bool keep_override(struct ag_cfg_scope *esc)
{
	const struct ag_cfg_group *g = esc->up->base;
	const struct ag_cfg_listener *l = esc->up->up->base;
	const struct ag_cfg_port_override *o = esc->base;
	const config_setting_t *m = config_setting_get_member(esc->grp, "listener_port");
	char pkey[KEY_MAX];
	unsigned int j;

	ag_cfg__key_member(pkey, esc->key, "listener_port");
	if (!listener_has_port(l, o->listener_port)) {
		ag_cfg__err(esc->ctx, m, pkey, "%u is not a port of this listener",
			    o->listener_port);
		return false;
	}
	for (j = 0; j < g->n_overrides; j++) {
		if (g->overrides[j].listener_port == o->listener_port) {
			ag_cfg__err(esc->ctx, m, pkey, "port %u is already overridden at line %d",
				    o->listener_port, g->overrides[j].line);
			return false;
		}
	}
	return true;
}

/*
 * Whether `len` more entries of key k fit its limit over the whole file
 * (*total counts them). Past it, reported at the first list that crosses it,
 * or (!once) at every list after it too.
 */
static bool within_total(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key, unsigned int *total, unsigned int len, const char *what,
			 bool once)
{
	if (*total + len <= k->total) {
		*total += len;
		return true;
	}
	if (!once || *total <= k->total)
		ag_cfg__err(sc->ctx, m, key, "exceeds the limit of %lld %s over all %s", k->total,
			    what, k->total_over);
	*total = k->total + 1;
	return false;
}

int ag_cfg__parse_overrides(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key)
{
	unsigned int len = config_setting_length(m);

	if (!len)
		return AG_CFG_VALUE;
	if (!within_total(sc, k, m, key, &sc->ctx->n_overrides, len, "port overrides", false))
		return AG_CFG_INVALID;
	ag_cfg__parse_elems(sc, k, m, key, keep_override);
	return AG_CFG_VALUE;
}

/* A valid endpoint is kept unless the group has its address already. */
static bool keep_endpoint(struct ag_cfg_scope *esc)
{
	const struct ag_cfg_group *g = esc->up->base;
	const struct ag_cfg_endpoint *ep = esc->base;
	char akey[KEY_MAX], buf[INET_ADDRSTRLEN];
	unsigned int j;

	for (j = 0; j < g->n_endpoints; j++) {
		if (g->endpoints[j].addr == ep->addr) {
			ag_cfg__format_addr(ep->addr, buf);
			ag_cfg__key_member(akey, esc->key, "address");
			ag_cfg__err(esc->ctx, config_setting_get_member(esc->grp, "address"), akey,
				    "duplicate endpoint %s in this group (also at line %d)", buf,
				    g->endpoints[j].line);
			return false;
		}
	}
	return true;
}

int ag_cfg__parse_endpoints(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key)
{
	unsigned int len = config_setting_length(m);

	if (!within_total(sc, k, m, key, &sc->ctx->n_backends, len, "endpoints", true))
		return AG_CFG_INVALID;
	ag_cfg__parse_elems(sc, k, m, key, keep_endpoint);
	return AG_CFG_VALUE;
}
