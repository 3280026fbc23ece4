/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ag-flowfill BPFFS_DIR COUNT NAT_ADDR BACKEND_ADDR:PORT VIP:PORT
 *
 * Writes COUNT established TCP flows, each with its NAT reverse entry, into
 * the pinned flow maps of a running XDP fast path, as the program writes them
 * (last seen now: live for tcp_idle_s). Clients are 100.64.0.0/10 addresses
 * (never routed in the lab), one flow each; NAT ports 1024-65535 over
 * backend ports PORT, PORT+1, ... so every reverse key is distinct. For the
 * tests of what reading a large flow table costs (anygatectl flows).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi.h"
#include "flow.h"

static int parse_hostport(const char *s, uint32_t *addr, uint16_t *port)
{
	char buf[64], *colon;
	struct in_addr a;

	snprintf(buf, sizeof(buf), "%s", s);
	colon = strchr(buf, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*addr = a.s_addr;
	*port = (uint16_t)atoi(colon + 1);
	return 0;
}

static int open_pin(const char *dir, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		fprintf(stderr, "ag-flowfill: %s: %s\n", path, strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	uint32_t nat, backend, vip, i, count;
	uint16_t bport, vport;
	struct in_addr a;
	struct timespec ts;
	int flows_fd, revs_fd;
	uint64_t now;

	if (argc != 6 || inet_pton(AF_INET, argv[3], &a) != 1 ||
	    parse_hostport(argv[4], &backend, &bport) || parse_hostport(argv[5], &vip, &vport)) {
		fprintf(stderr,
			"usage: ag-flowfill BPFFS_DIR COUNT NAT_ADDR BACKEND:PORT VIP:PORT\n");
		return 2;
	}
	nat = a.s_addr;
	count = (uint32_t)strtoul(argv[2], NULL, 10);
	flows_fd = open_pin(argv[1], AG_MAP_FLOWS);
	revs_fd = open_pin(argv[1], AG_MAP_NAT_REV);
	if (flows_fd < 0 || revs_fd < 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	for (i = 0; i < count; i++) {
		struct ag_flow_key k, rk;
		struct ag_nat_rev r;
		struct ag_flow f;

		memset(&k, 0, sizeof(k));
		memset(&f, 0, sizeof(f));
		memset(&r, 0, sizeof(r));
		ag_addr__set4(&k.saddr, htonl(0x64400000u + i));
		ag_addr__set4(&k.daddr, vip);
		ag_flow_key__ports(&k, htons(40000), htons(vport), IPPROTO_TCP);
		f.last_seen_ns = now;
		ag_addr__set4(&f.backend_addr, backend);
		ag_addr__set4(&f.nat_addr, nat);
		f.nat_port = htons((uint16_t)(1024 + i % 64512));
		f.backend_port = htons((uint16_t)(bport + i / 64512));
		f.tcp = AG_TCP_SYN_C | AG_TCP_SYNACK_B | AG_TCP_EST;
		ag_flow_key__reply_of(&rk, &f, IPPROTO_TCP);
		r.last_seen_ns = now;
		r.client_addr = k.saddr;
		r.vip = k.daddr;
		r.client_port = k.sport;
		r.vip_port = k.dport;
		r.family = AG_FAMILY_IPV4;
		r.flags = AG_REV_REPLIED;
		if (bpf_map_update_elem(flows_fd, &k, &f, BPF_ANY) ||
		    bpf_map_update_elem(revs_fd, &rk, &r, BPF_ANY)) {
			fprintf(stderr, "ag-flowfill: entry %u: %s\n", i, strerror(errno));
			return 1;
		}
	}
	printf("ag-flowfill: %u flows\n", count);
	return 0;
}
