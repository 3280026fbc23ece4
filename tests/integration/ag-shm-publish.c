/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ag-shm-publish: publish a config's tables into the DPDK shared-memory
 * segment, with the same code anygated uses (config, plan, ag_publisher,
 * controlplane/fastpath/shm.c), then exit: the segment keeps the tables, anygate-dp
 * keeps forwarding. For the DPDK integration tests and the memif benchmark.
 *
 *   ag-shm-publish CONFIG [--down ADDR]... [--remove | --stats]
 *
 * --down ADDR publishes the backends with that address as down (a health
 * view, as the probes would make it); --remove deletes the segment instead;
 * --stats prints the fast path's status and its counters summed over lanes
 * ("name value" lines, non-zero ones) instead of publishing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "plan.h"
#include "publish.h"
#include "shm.h"

#define MAX_DOWN 64

static const char *ag_reason_name(unsigned int r)
{
	static const char *const names[] = {
#define AG_REASON_NAME(name, label) [AG_R_##name] = label,
	    AG_REASONS(AG_REASON_NAME)
#undef AG_REASON_NAME
	};

	return r < AG_R__MAX ? names[r] : "unknown";
}

static void print_stats(struct ag_shm *m, const struct ag_plan *plan)
{
	struct ag_traffic_stats ts;
	struct ag_reason_stats rs;
	struct ag_shm_dp st;
	unsigned int i;
	uint64_t v;

	printf("fastpath_alive %d\n", ag_shm__fastpath(m, 2000000000ull, &st) == 0);
	printf("flows %llu\nnat_rev %llu\nneighbours %llu\n", (unsigned long long)st.flows,
	       (unsigned long long)st.nat_rev, (unsigned long long)st.neighbours);
	for (i = 0; i < plan->n_listeners; i++) {
		ag_shm__listener_stats(m, i, &ts);
		printf("listener%u packets=%llu bytes=%llu new_flows=%llu ret_packets=%llu "
		       "ret_bytes=%llu\n",
		       i, (unsigned long long)ts.packets, (unsigned long long)ts.bytes,
		       (unsigned long long)ts.new_flows, (unsigned long long)ts.ret_packets,
		       (unsigned long long)ts.ret_bytes);
	}
	for (i = 0; i < plan->n_backends; i++) {
		char a[INET_ADDRSTRLEN];

		ag_shm__backend_stats(m, i, &ts);
		inet_ntop(AF_INET, &plan->backends[i].addr, a, sizeof(a));
		printf("backend%u %s packets=%llu new_flows=%llu ret_packets=%llu\n", i, a,
		       (unsigned long long)ts.packets, (unsigned long long)ts.new_flows,
		       (unsigned long long)ts.ret_packets);
	}
	for (i = 0; i < AG_R__MAX; i++)
		if (!ag_shm__reason_stats(m, i, &rs) && rs.packets)
			printf("reason_%s %llu\n", ag_reason_name(i),
			       (unsigned long long)rs.packets);
	for (i = 0; i < AG_DPC__MAX; i++)
		if (!ag_shm__dp_counter(m, i, &v) && v)
			printf("dp_%s %llu\n", ag_dp_counter__name(i), (unsigned long long)v);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"down", required_argument, NULL, 'd'},
	    {"remove", no_argument, NULL, 'r'},
	    {"stats", no_argument, NULL, 's'},
	    {},
	};
	uint32_t down[MAX_DOWN];
	unsigned int n_down = 0, i, j;
	struct ag_publisher pub = {0};
	struct ag_plan *plan = NULL;
	struct ag_config *cfg;
	struct ag_shm *m = NULL;
	bool remove = false, stats = false, *up = NULL;
	int c, err, ret = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (n_down == MAX_DOWN || inet_pton(AF_INET, optarg, &down[n_down]) != 1) {
				fprintf(stderr, "--down %s: an IPv4 address (at most %d)\n", optarg,
					MAX_DOWN);
				return 2;
			}
			n_down++;
			break;
		case 'r':
			remove = true;
			break;
		case 's':
			stats = true;
			break;
		default:
			fprintf(
			    stderr,
			    "usage: ag-shm-publish CONFIG [--down ADDR]... [--remove | --stats]\n");
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr,
			"usage: ag-shm-publish CONFIG [--down ADDR]... [--remove | --stats]\n");
		return 2;
	}
	cfg = ag_config__load_or_report(argv[optind]);
	if (!cfg)
		return 1;
	if (remove) {
		err = ag_shm__unlink(cfg->edge.dpdk.shm_name);
		if (err && err != -ENOENT)
			fprintf(stderr, "removing segment %s: %s\n", cfg->edge.dpdk.shm_name,
				strerror(-err));
		ret = err && err != -ENOENT;
		goto out;
	}
	plan = ag_plan__new(cfg);
	if (!plan) {
		fprintf(stderr, "plan: %s\n", strerror(errno));
		goto out;
	}
	up = calloc(plan->n_backends ? plan->n_backends : 1, sizeof(*up));
	if (!up)
		goto out;
	for (i = 0; i < plan->n_backends; i++) {
		up[i] = true;
		for (j = 0; j < n_down; j++)
			if (plan->backends[i].addr == down[j])
				up[i] = false;
	}
	if (stats) {
		/* Beside a running anygated too: a read-only view, no lock. */
		m = ag_shm__observe(cfg->edge.dpdk.shm_name);
		if (!m) {
			fprintf(stderr, "segment %s: %s\n", cfg->edge.dpdk.shm_name,
				strerror(errno));
			goto out;
		}
		print_stats(m, plan);
		ret = 0;
		goto out;
	}
	m = ag_shm__open(&cfg->edge);
	if (!m)
		goto out;
	err = ag_publisher__init(&pub, ag_shm__sink_ops(), m, cfg->edge.ring_size,
				 cfg->edge.hash_seed);
	if (!err) {
		struct ag_view view = {.up = up};

		err = ag_publisher__publish(&pub, plan, &view);
	}
	if (err) {
		fprintf(stderr, "publish: %s\n", strerror(-err));
		goto out;
	}
	printf("published %u listeners, %u backends (%u down) into %s, generation %llu\n",
	       plan->n_listeners, plan->n_backends, n_down, ag_shm__path(m),
	       (unsigned long long)ag_shm__hdr(m)->pub.generation);
	ret = 0;
out:
	ag_publisher__fini(&pub);
	ag_shm__close(m);
	free(up);
	ag_plan__free(plan);
	ag_config__free(cfg);
	return ret;
}
