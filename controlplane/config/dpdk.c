// SPDX-License-Identifier: BSD-3-Clause
/*
 * edge.dpdk's own rules: anygate-dp's port addresses, its static routes and
 * neighbours, each checked against the ports' subnets (a next hop must be on
 * a port's link).
 */
#include <string.h>

#include "parse.h"

/* Index of the port whose subnet holds addr, or -1. */
static int port_of(const struct ag_cfg_dpdk *dpdk, uint32_t addr)
{
	unsigned int i;

	for (i = 0; i < dpdk->n_port_addrs; i++) {
		uint32_t mask = ag_cfg__prefix_mask(dpdk->port_addrs[i].len);

		if ((addr & mask) == (dpdk->port_addrs[i].addr & mask))
			return (int)i;
	}
	return -1;
}

/* A per-port array has one entry per port, in the order of edge.dpdk.ports. */
static void check_per_port(struct ag_cfg_scope *sc, config_setting_t *m, const char *key,
			   unsigned int len)
{
	const struct ag_cfg_dpdk *dpdk = sc->base;

	if (len != dpdk->n_ports)
		ag_cfg__err(sc->ctx, m, key,
			    "must have one entry per port, in the order of "
			    "edge.dpdk.ports (%u ports, got %u)",
			    dpdk->n_ports, len);
}

static void parse_port_addr(struct ag_cfg_ctx *ctx, config_setting_t *e, const char *ekey,
			    struct ag_cfg_dpdk *dpdk)
{
	struct ag_cfg_prefix p = {.line = ag_cfg__line(e)};
	const char *v;
	unsigned int j;

	if (ag_cfg__string(ctx, e, ekey, &v) != AG_CFG_VALUE)
		return;
	if (!ag_cfg__parse_prefix(v, &p.addr, &p.len) || p.len == 0) {
		ag_cfg__err(ctx, e, ekey,
			    "must be an IPv4 address with its prefix length, "
			    "\"a.b.c.d/len\" with len 1-32 (got %s)",
			    ag_cfg__quote(v).s);
		return;
	}
	if (!ag_cfg__is_unicast(p.addr)) {
		ag_cfg__err(ctx, e, ekey, "must be a unicast IPv4 address (got %s)",
			    ag_cfg__quote(v).s);
		return;
	}
	for (j = 0; j < dpdk->n_port_addrs; j++)
		if (dpdk->port_addrs[j].addr == p.addr)
			break;
	if (j < dpdk->n_port_addrs) {
		ag_cfg__err(ctx, e, ekey, "duplicate address %s", ag_cfg__quote(v).s);
		return;
	}
	dpdk->port_addrs[dpdk->n_port_addrs++] = p;
}

int ag_cfg__parse_port_addrs(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			     config_setting_t *m, const char *key)
{
	struct ag_cfg_dpdk *dpdk = sc->base;
	unsigned int i, len;
	char ekey[KEY_MAX];

	if (!ag_cfg__want_seq(sc->ctx, m, key))
		return AG_CFG_INVALID;
	len = config_setting_length(m);
	if (ag_cfg__check_count(sc->ctx, k, m, key)) {
		dpdk->port_addrs = ag_cfg__calloc(sc->ctx, m, key, len, sizeof(*dpdk->port_addrs));
		for (i = 0; dpdk->port_addrs && i < len; i++) {
			ag_cfg__key_elem(ekey, key, i);
			parse_port_addr(sc->ctx, config_setting_get_elem(m, i), ekey, dpdk);
		}
	}
	check_per_port(sc, m, key, len);
	return AG_CFG_VALUE;
}

/* edge.dpdk.port_roles: one of role words (keys.c) per port, as edge.interfaces[].role. */
int ag_cfg__parse_port_roles(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			     config_setting_t *m, const char *key)
{
	struct ag_cfg_dpdk *dpdk = sc->base;
	unsigned int i, j, len, errors = sc->ctx->errs->count;
	char ekey[KEY_MAX];
	const char *v;

	if (!ag_cfg__want_seq(sc->ctx, m, key))
		return AG_CFG_INVALID;
	len = config_setting_length(m);
	if (ag_cfg__check_count(sc->ctx, k, m, key))
		dpdk->port_roles = ag_cfg__calloc(sc->ctx, m, key, len, sizeof(*dpdk->port_roles));
	for (i = 0; dpdk->port_roles && i < len; i++) {
		ag_cfg__key_elem(ekey, key, i);
		if (ag_cfg__string(sc->ctx, config_setting_get_elem(m, i), ekey, &v) !=
		    AG_CFG_VALUE)
			continue;
		for (j = 0; k->words[j] && strcmp(k->words[j], v); j++)
			;
		if (!k->words[j])
			ag_cfg__err(sc->ctx, config_setting_get_elem(m, i), ekey,
				    "must be \"client\", \"backend\" or \"both\" (got %s)",
				    ag_cfg__quote(v).s);
		else
			dpdk->port_roles[i] = (enum ag_iface_role)j;
	}
	dpdk->n_port_roles = dpdk->port_roles ? len : 0;
	check_per_port(sc, m, key, len);
	if (dpdk->n_port_roles && sc->ctx->errs->count == errors)
		ag_cfg__check_roles(sc->ctx, m, key, "port", dpdk->port_roles,
				    sizeof(*dpdk->port_roles), dpdk->n_port_roles);
	return AG_CFG_VALUE;
}

int ag_cfg__parse_route_to(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			   const char *key)
{
	const struct ag_cfg_dpdk *dpdk = sc->up->base;
	struct ag_cfg_prefix *to = ag_cfg__field(sc, k);
	const char *v;
	unsigned int j;

	if (ag_cfg__string(sc->ctx, m, key, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (!strcmp(v, "default")) {
		to->addr = 0;
		to->len = 0;
	} else if (!ag_cfg__parse_prefix(v, &to->addr, &to->len)) {
		ag_cfg__err(sc->ctx, m, key,
			    "must be \"a.b.c.d/len\" (len 0-32) or \"default\" (got %s)",
			    ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	} else if (to->addr & ~ag_cfg__prefix_mask(to->len)) {
		ag_cfg__err(sc->ctx, m, key, "has bits set past the prefix length (got %s)",
			    ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	for (j = 0; j < dpdk->n_routes; j++) {
		if (dpdk->routes[j].to.addr == to->addr && dpdk->routes[j].to.len == to->len) {
			ag_cfg__err(sc->ctx, m, key, "duplicate destination %s (also line %d)",
				    ag_cfg__quote(v).s, dpdk->routes[j].line);
			return AG_CFG_INVALID;
		}
	}
	return AG_CFG_VALUE;
}

int ag_cfg__parse_route_via(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key)
{
	uint32_t *via = ag_cfg__field(sc, k);

	if (ag_cfg__addr(sc->ctx, m, key, via) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (port_of(sc->up->base, *via) < 0) {
		ag_cfg__err(
		    sc->ctx, m, key,
		    "is not inside the subnet of any edge.dpdk.port_addresses entry: a next "
		    "hop must be on a port's link");
		return AG_CFG_INVALID;
	}
	return AG_CFG_VALUE;
}

int ag_cfg__parse_neigh_addr(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			     config_setting_t *m, const char *key)
{
	const struct ag_cfg_dpdk *dpdk = sc->up->base;
	uint32_t *addr = ag_cfg__field(sc, k);
	int ret = AG_CFG_VALUE;
	unsigned int j;

	if (ag_cfg__addr(sc->ctx, m, key, addr) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (port_of(dpdk, *addr) < 0) {
		ag_cfg__err(sc->ctx, m, key,
			    "is not inside the subnet of any edge.dpdk.port_addresses entry");
		return AG_CFG_INVALID;
	}
	for (j = 0; j < dpdk->n_neighbours; j++) {
		if (dpdk->neighbours[j].addr == *addr) {
			ag_cfg__err(sc->ctx, m, key, "duplicate address (also line %d)",
				    dpdk->neighbours[j].line);
			ret = AG_CFG_INVALID;
		}
	}
	return ret;
}

int ag_cfg__parse_neigh_mac(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key)
{
	uint8_t *mac = ag_cfg__field(sc, k);
	const char *v;

	if (ag_cfg__string(sc->ctx, m, key, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (!ag_cfg__parse_mac(v, mac)) {
		ag_cfg__err(sc->ctx, m, key, "must be a MAC address xx:xx:xx:xx:xx:xx (got %s)",
			    ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
		ag_cfg__err(sc->ctx, m, key,
			    "must be a unicast MAC address, not zero or multicast (got %s)",
			    ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	return AG_CFG_VALUE;
}
