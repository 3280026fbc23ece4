/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Routes: what bpf_fib_lookup does for the XDP path. They come from the
 * config (edge.dpdk.routes) plus one on-link route per port subnet, are
 * fixed at start-up, and a flow looks its routes up once, at creation; the
 * result carries the next hop's neighbour index as a cache (checked against
 * the next hop's address on every use).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>

#include "dp.h"
#include "log.h"
#include "neigh.h"
#include "port.h"
#include "route.h"

static uint32_t mask_of(uint8_t len)
{
	return len ? rte_cpu_to_be_32(~0u << (32 - len)) : 0;
}

static int cmp_route(const void *a, const void *b)
{
	const struct ag_dp_route *x = a, *y = b;

	return (int)y->len - (int)x->len; /* longest prefix first */
}

int ag_dp_route__init(struct ag_dp *dp)
{
	const struct ag_cfg_dpdk *c = &dp->cfg->edge.dpdk;
	unsigned int i;

	for (i = 0; i < dp->n_ports; i++) {
		struct ag_dp_route *r = &dp->routes[dp->n_routes++];

		r->mask = dp->ports[i].mask;
		r->prefix = dp->ports[i].addr & r->mask;
		r->len = (uint8_t)__builtin_popcount(r->mask);
		r->via = 0;
		r->port = (uint16_t)i;
	}
	for (i = 0; i < c->n_routes; i++) {
		struct ag_dp_route *r = &dp->routes[dp->n_routes];
		int port = ag_dp_ports__of_addr(dp, c->routes[i].via);

		if (port < 0) {
			pr_err("route to %08x via %08x: the next hop is on no port's subnet\n",
			       rte_be_to_cpu_32(c->routes[i].to.addr),
			       rte_be_to_cpu_32(c->routes[i].via));
			return -EINVAL;
		}
		r->mask = mask_of(c->routes[i].to.len);
		r->prefix = c->routes[i].to.addr;
		r->len = c->routes[i].to.len;
		r->via = c->routes[i].via;
		r->port = (uint16_t)port;
		dp->n_routes++;
	}
	qsort(dp->routes, dp->n_routes, sizeof(dp->routes[0]), cmp_route);
	return 0;
}

void ag_dp_route__lookup(const struct ag_dp *dp, uint32_t dst, struct ag_dp_nh *nh)
{
	unsigned int i;

	memset(nh, 0, sizeof(*nh));
	nh->port = AG_DP_NO_PORT;
	nh->neigh = AG_DP_NONE;
	for (i = 0; i < dp->n_routes; i++) {
		const struct ag_dp_route *r = &dp->routes[i];

		if ((dst & r->mask) == r->prefix) {
			nh->port = r->port;
			nh->ip = r->via ? r->via : dst;
			nh->neigh = ag_dp_neigh__find(dp, nh->ip);
			return;
		}
	}
}
