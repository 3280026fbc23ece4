// SPDX-License-Identifier: BSD-3-Clause
/*
 * Addresses in a config file: IPv4 addresses (VIPs, NAT sources, backends,
 * next hops), prefixes, MAC addresses and "a.b.c.d:port" listen addresses.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

bool ag_cfg__parse_ipv4(const char *s, uint32_t *addr)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	*addr = a.s_addr;
	return true;
}

void ag_cfg__format_addr(uint32_t addr, char *buf)
{
	struct in_addr a = {.s_addr = addr};

	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/*
 * VIPs, NAT sources and backends must be unicast: 0/8 (this network),
 * 127/8 (loopback), 224/4 (multicast) and 240/4 (reserved, broadcast) never
 * route as a flow's endpoint.
 */
bool ag_cfg__is_unicast(uint32_t addr)
{
	uint8_t first = ntohl(addr) >> 24;

	return first != 0 && first != 127 && first < 224;
}

int ag_cfg__addr(struct ag_cfg_ctx *ctx, const config_setting_t *s, const char *key, uint32_t *out)
{
	const char *v;

	if (ag_cfg__string(ctx, s, key, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (!ag_cfg__parse_ipv4(v, out)) {
		ag_cfg__err(ctx, s, key, "must be an IPv4 address a.b.c.d (got %s)",
			    ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	if (!ag_cfg__is_unicast(*out)) {
		ag_cfg__err(ctx, s, key,
			    "must be a unicast IPv4 address, not in 0/8, 127/8 or 224/3 (got %s)",
			    ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	return AG_CFG_VALUE;
}

void ag_cfg__addr_list(struct ag_cfg_ctx *ctx, const struct ag_cfg_key *k,
		       const config_setting_t *s, const char *key, uint32_t **out, unsigned int *n,
		       unsigned int **elems)
{
	char ekey[KEY_MAX], okey[KEY_MAX], buf[INET_ADDRSTRLEN];
	unsigned int i, j, len, *idx;
	uint32_t *addrs;

	if (!ag_cfg__want_seq(ctx, s, key) || !ag_cfg__check_count(ctx, k, s, key))
		return;
	len = config_setting_length(s);
	addrs = ag_cfg__calloc(ctx, s, key, len, sizeof(*addrs));
	idx = ag_cfg__calloc(ctx, s, key, len, sizeof(*idx));
	if (!addrs || !idx) {
		free(addrs);
		free(idx);
		return;
	}
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		uint32_t a;

		ag_cfg__key_elem(ekey, key, i);
		if (ag_cfg__addr(ctx, e, ekey, &a) != AG_CFG_VALUE)
			continue;
		for (j = 0; j < *n; j++)
			if (addrs[j] == a)
				break;
		if (j < *n) {
			ag_cfg__format_addr(a, buf);
			ag_cfg__key_elem(okey, key, idx[j]);
			ag_cfg__err(ctx, e, ekey, "duplicate address %s (also %s)", buf, okey);
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

bool ag_cfg__parse_prefix(const char *v, uint32_t *addr, uint8_t *len)
{
	char buf[INET_ADDRSTRLEN];
	const char *slash = strchr(v, '/'), *end;
	unsigned long l;

	if (!slash || slash == v || (size_t)(slash - v) >= sizeof(buf))
		return false;
	memcpy(buf, v, slash - v);
	buf[slash - v] = '\0';
	if (!ag_cfg__parse_ipv4(buf, addr) || !ag_cfg__parse_uint(slash + 1, &end, &l) || *end ||
	    l > 32)
		return false;
	*len = (uint8_t)l;
	return true;
}

uint32_t ag_cfg__prefix_mask(uint8_t len)
{
	return len ? htonl(~0u << (32 - len)) : 0;
}

bool ag_cfg__parse_mac(const char *v, uint8_t mac[6])
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

bool ag_cfg__parse_host_port(const char *v, uint32_t *ip, uint16_t *port)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(v, ':'), *end;
	unsigned long p;

	if (!colon || (size_t)(colon - v) >= sizeof(host))
		return false;
	memcpy(host, v, colon - v);
	host[colon - v] = '\0';
	if (!ag_cfg__parse_ipv4(host, ip) || !ag_cfg__parse_uint(colon + 1, &end, &p) || *end ||
	    p < 1 || p > 65535)
		return false;
	*port = p;
	return true;
}
