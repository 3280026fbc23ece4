/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygate-dp-bench-newflow: how new flows scale over lcores. Every worker
 * lcore creates COUNT new UDP flows of its own through anygate-dp's
 * ag_dp_flows__create() (choice, admission, NAT port claim and pin under the
 * flow tables' lock), all starting at once, on the tables of a segment that
 * ag-shm-publish filled (scripts/bench/dpdk-newflow sets it all up):
 *
 *   anygate-dp-bench-newflow EAL-ARGS -- CONFIG COUNT
 *
 * Prints each lcore's ns per new flow and the total rate. No ports: the
 * config's port address and routes only give new flows their next hops.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_rcu_qsbr.h>

#include "config.h"
#include "dp.h"
#include "flow.h"
#include "flows.h"
#include "log.h"
#include "neigh.h"
#include "route.h"
#include "shm.h"

static struct ag_dp dp;
static unsigned int count;
static int go, done;
static uint64_t cycles[RTE_MAX_LCORE], created[RTE_MAX_LCORE];

/* New flow i of lcore index l: client 10.(100 + l).x.y, one of 256 VIPs, UDP 1001. */
static void flow_key_of(struct ag_flow_key *k, unsigned int l, unsigned int i)
{
	ag_addr__set4(&k->saddr, htonl((10u << 24) | ((100u + l) << 16) | (i >> 6)));
	ag_addr__set4(&k->daddr, htonl((10u << 24) | (253u << 16) | (i & 255)));
	ag_flow_key__ports(k, htons((uint16_t)(1024 + (i & 63) * 941)), htons(1001), IPPROTO_UDP);
}

static int worker(void *arg)
{
	struct ag_dp_lcore *lc = arg;
	unsigned int me = rte_lcore_id(), i;
	struct ag_flow_key k;
	struct ag_dp_flow *fv;
	uint64_t t0;

	rte_rcu_qsbr_thread_online(dp.qsbr, me);
	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
		rte_pause();
	t0 = rte_rdtsc();
	for (i = 0; i < count; i++) {
		flow_key_of(&k, lc->index, i);
		if (ag_dp_flows__create(lc, &k, 64, ag_dp__now(&dp), 64, NULL, &fv) ==
		    AG_FLOW_CREATED)
			created[lc->index]++;
		/* As the forwarding loop after a burst. */
		if (i % AG_DP_BURST == 0)
			rte_rcu_qsbr_quiescent(dp.qsbr, me);
	}
	cycles[lc->index] = rte_rdtsc() - t0;
	rte_rcu_qsbr_thread_offline(dp.qsbr, me);
	__atomic_fetch_add(&done, 1, __ATOMIC_RELEASE);
	return 0;
}

/* The tables and one ag_dp_lcore per worker, as anygate-dp's set-up makes them. */
static int setup(const char *path)
{
	unsigned int lcore, i = 0;

	dp.cfg = ag_config__load_or_report(path);
	if (!dp.cfg)
		return -1;
	dp.shm = ag_shm__attach(dp.cfg->edge.dpdk.shm_name, dp.cfg->edge.ring_size);
	if (!dp.shm)
		return -1;
	dp.hdr = ag_shm__hdr(dp.shm);
	dp.seg = *ag_shm__view(dp.shm);
	dp.tsc_mult = (uint64_t)((1000000000ull << 32) / rte_get_tsc_hz());
	dp.n_fwd = rte_lcore_count() - 1;
	dp.n_ports = 1;
	if (dp.cfg->edge.dpdk.n_port_addrs < 1)
		return -1;
	dp.ports[0].addr = dp.cfg->edge.dpdk.port_addrs[0].addr;
	dp.ports[0].mask = htonl(~0u << (32 - dp.cfg->edge.dpdk.port_addrs[0].len));
	if (ag_dp_flows__init(&dp) || ag_dp_route__init(&dp) || ag_dp_neigh__init(&dp))
		return -1;
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		struct ag_dp_lcore *lc = &dp.lcores[i];

		lc->dp = &dp;
		lc->index = i++;
		lc->lcore_id = lcore;
		lc->lane = ag_shm__lane(&dp.seg, lc->index);
		lc->settings_ok = ag_shm__settings_get(&dp.seg, &lc->settings) == 1;
		rte_rcu_qsbr_thread_register(dp.qsbr, lcore);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int n = rte_eal_init(argc, argv);
	double secs = 0, s;
	uint64_t total = 0;
	unsigned int i;

	if (n < 0 || argc - n != 3 || rte_lcore_count() < 2) {
		fprintf(stderr, "usage: %s EAL-ARGS (2 lcores or more) -- CONFIG COUNT\n", argv[0]);
		return 2;
	}
	count = (unsigned int)strtoul(argv[n + 2], NULL, 10);
	ag_log__set_level(AG_LOG_WARN);
	if (setup(argv[n + 1]))
		return 1;
	for (i = 0; i < dp.n_fwd; i++)
		rte_eal_remote_launch(worker, &dp.lcores[i], dp.lcores[i].lcore_id);
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	/* Sleep, not spin: the main lcore may share a CPU with a worker. */
	while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < (int)dp.n_fwd)
		usleep(1000);
	rte_eal_mp_wait_lcore();
	for (i = 0; i < dp.n_fwd; i++) {
		s = (double)cycles[i] / (double)rte_get_tsc_hz();
		printf("lcore %u: %lu of %u created, %.0f ns per new flow\n", i,
		       (unsigned long)created[i], count, s * 1e9 / count);
		secs = s > secs ? s : secs;
		total += created[i];
	}
	printf("%u lcores: %.3f M new flows/s\n", dp.n_fwd, (double)total / secs / 1e6);
	return 0;
}
