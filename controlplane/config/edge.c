// SPDX-License-Identifier: BSD-3-Clause
/*
 * The edge block's own rules: interfaces (names, roles), NAT addresses, the
 * metrics address, what fastpath = "dpdk" requires, the short TCP timeouts
 * and the defaults derived from other keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static const char *check_ifname(const char *v)
{
	if (!strcmp(v, ".") || !strcmp(v, ".."))
		return "is not a valid interface name";
	for (; *v; v++)
		if (*v == '/' || *v == ':' || *v <= 0x20 || *v >= 0x7f)
			return "must not contain '/', ':', spaces or control characters";
	return NULL;
}

int ag_cfg__parse_ifname(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key)
{
	const char *v, *problem;

	if (ag_cfg__string(sc->ctx, m, key, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (strlen(v) < (size_t)k->min || strlen(v) > (size_t)k->max) {
		ag_cfg__err(sc->ctx, m, key, "must be %lld-%lld %s (got %s)", k->min, k->max,
			    k->unit, ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	problem = check_ifname(v);
	if (problem) {
		ag_cfg__err(sc->ctx, m, key, "%s (got %s)", problem, ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	snprintf(ag_cfg__field(sc, k), IFNAMSIZ, "%s", v);
	return AG_CFG_VALUE;
}

/*
 * XDP sees a packet only on the interface it arrived on: clients' packets on a
 * client-facing one, backends' replies (reverse NAT) on a backend-facing one.
 */
void ag_cfg__check_roles(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key,
			 const char *what, const enum ag_iface_role *roles, size_t stride,
			 unsigned int n)
{
	bool client = false, backend = false;
	enum ag_iface_role r;
	unsigned int i;

	for (i = 0; i < n; i++) {
		r = *(const enum ag_iface_role *)((const char *)roles + i * stride);
		client |= r != AG_IFACE_BACKEND;
		backend |= r != AG_IFACE_CLIENT;
	}
	if (!client)
		ag_cfg__err(ctx, s, key,
			    "no %s has role \"client\" or \"both\": clients could not reach the "
			    "VIPs",
			    what);
	if (!backend)
		ag_cfg__err(ctx, s, key,
			    "no %s has role \"backend\" or \"both\": backend replies would not be "
			    "translated back",
			    what);
}

/* A valid interface is kept unless another has its name. */
static bool keep_iface(struct ag_cfg_scope *esc)
{
	const struct ag_cfg_edge *edge = esc->up->base;
	const struct ag_cfg_iface *ifc = esc->base;
	char nkey[KEY_MAX];
	unsigned int j;

	for (j = 0; j < edge->n_ifaces; j++) {
		if (!strcmp(edge->ifaces[j].name, ifc->name)) {
			ag_cfg__key_member(nkey, esc->key, "name");
			ag_cfg__err(esc->ctx, config_setting_get_member(esc->grp, "name"), nkey,
				    "duplicate interface %s (also at line %d)",
				    ag_cfg__quote(ifc->name).s, edge->ifaces[j].line);
			return false;
		}
	}
	return true;
}

int ag_cfg__parse_ifaces(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			 const char *key)
{
	struct ag_cfg_edge *edge = sc->base;

	ag_cfg__parse_elems(sc, k, m, key, keep_iface);
	if (edge->fastpath != AG_FASTPATH_XDP)
		return AG_CFG_VALUE;
	if (config_setting_length(m) == 0)
		ag_cfg__err(sc->ctx, m, key,
			    "must list at least one interface when fastpath = \"xdp\"");
	else if (edge->n_ifaces == (unsigned int)config_setting_length(m))
		ag_cfg__check_roles(sc->ctx, m, key, "interface", &edge->ifaces[0].role,
				    sizeof(edge->ifaces[0]), edge->n_ifaces);
	return AG_CFG_VALUE;
}

/*
 * A reload keeps the interfaces XDP is attached to: the same names in the
 * same order, with the same roles (anygated writes them into ag_ifaces when it
 * attaches, so another role takes a restart).
 */
bool ag_cfg__same_ifaces(const void *old_edge, const void *new_edge)
{
	const struct ag_cfg_edge *old = old_edge, *new = new_edge;
	unsigned int i;

	if (old->n_ifaces != new->n_ifaces)
		return false;
	for (i = 0; i < old->n_ifaces; i++)
		if (strcmp(old->ifaces[i].name, new->ifaces[i].name) ||
		    old->ifaces[i].role != new->ifaces[i].role)
			return false;
	return true;
}

int ag_cfg__parse_nat_addrs(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key)
{
	struct ag_cfg_edge *edge = sc->base;

	ag_cfg__addr_list(sc->ctx, k, m, key, &edge->nat_addrs, &edge->n_nat_addrs, NULL);
	return AG_CFG_VALUE;
}

/* "a.b.c.d:port", or "" for no metrics endpoint. */
int ag_cfg__parse_metrics(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			  const char *key)
{
	const char *v;
	uint32_t ip;
	uint16_t port;

	if (ag_cfg__string(sc->ctx, m, key, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (v[0] && !ag_cfg__parse_host_port(v, &ip, &port)) {
		ag_cfg__err(
		    sc->ctx, m, key,
		    "must be \"a.b.c.d:port\" with port 1-65535, or \"\" to disable (got %s)",
		    ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	return ag_cfg__value(sc, k, m, key);
}

/*
 * tcp_syn_idle_s, tcp_closing_s: at most tcp_idle_s. A handshake or a close
 * that may outlast an established flow's idle time is a typo, not a policy.
 */
int ag_cfg__parse_tcp_short(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key)
{
	const struct ag_cfg_edge *edge = sc->base;
	long long n;

	if (ag_cfg__int_at_most(sc, k, m, key, "tcp_idle_s", edge->tcp_idle_s, &n) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	return ag_cfg__value(sc, k, m, key);
}

static bool has_key(const struct ag_cfg_scope *sc, const char *name)
{
	return sc->grp && config_setting_get_member(sc->grp, name);
}

/*
 * Defaults that follow other keys: the short TCP timeouts never exceed
 * tcp_idle_s; new UDP flows at the default rate, each living udp_idle_s at
 * least, fill at most half the flow table, leaving the rest to TCP.
 */
static void derived_defaults(struct ag_cfg_scope *sc)
{
	struct ag_cfg_edge *edge = sc->base;
	uint32_t rate;

	if (!has_key(sc, "tcp_syn_idle_s") && edge->tcp_syn_idle_s > edge->tcp_idle_s)
		edge->tcp_syn_idle_s = edge->tcp_idle_s;
	if (!has_key(sc, "tcp_closing_s") && edge->tcp_closing_s > edge->tcp_idle_s)
		edge->tcp_closing_s = edge->tcp_idle_s;
	if (!has_key(sc, "udp_flow_rate")) {
		rate = edge->max_flows / (2 * edge->udp_idle_s);
		edge->udp_flow_rate = rate ? rate : 1;
	}
}

/* fastpath = "dpdk" runs anygate-dp on the ports of edge.dpdk: it needs at least one. */
static void check_dpdk(struct ag_cfg_scope *sc)
{
	const config_setting_t *m = config_setting_get_member(sc->grp, "dpdk"), *pm = NULL;
	char key[KEY_MAX];

	if (m && config_setting_type(m) == CONFIG_TYPE_GROUP)
		pm = config_setting_get_member(m, "ports");
	ag_cfg__key_member(key, sc->key, "dpdk");
	if (!m)
		ag_cfg__err(sc->ctx, sc->grp, key, "is required when fastpath = \"dpdk\"");
	else if (config_setting_type(m) == CONFIG_TYPE_GROUP && !pm)
		ag_cfg__err(sc->ctx, m, "edge.dpdk.ports", "is required when fastpath = \"dpdk\"");
	else if (pm && ag_cfg__is_seq(pm) && config_setting_length(pm) == 0)
		ag_cfg__err(sc->ctx, pm, "edge.dpdk.ports",
			    "must list at least one port when fastpath = \"dpdk\"");
}

void ag_cfg__edge_finish(struct ag_cfg_scope *sc)
{
	struct ag_cfg_edge *edge = sc->base;

	if (sc->grp && edge->fastpath == AG_FASTPATH_DPDK)
		check_dpdk(sc);
	derived_defaults(sc);
	/* the address the metrics server binds: from the key, or its default */
	edge->metrics_ip = 0;
	edge->metrics_port = 0;
	if (edge->metrics_addr && edge->metrics_addr[0])
		ag_cfg__parse_host_port(edge->metrics_addr, &edge->metrics_ip, &edge->metrics_port);
}
