/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygate-dp: the DPDK fast path of an anygate edge (edge.fastpath = "dpdk").
 *
 *   anygate-dp -c FILE [--wait-shm SECS] [--idle-sleep US] [-v|-q]
 *
 * Reads the same config as anygated (edge.dpdk: EAL arguments, ports, port
 * addresses, routes, static neighbours, exception path), attaches to the
 * shared-memory segment anygated publishes the tables into, and forwards
 * until SIGINT or SIGTERM. Set-up reads straight through; every failure says
 * what is missing and exits non-zero.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "dp.h"
#include "flows.h"
#include "fwd.h"
#include "log.h"
#include "neigh.h"
#include "port.h"
#include "route.h"
#include "shm.h"
#include "slow.h"

static void on_signal(int sig)
{
	/* Only the flag: every loop polls it. */
	ag_dp_quit = sig;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: anygate-dp -c FILE [--wait-shm SECS] [--idle-sleep US] [-v] [-q]\n"
		"\n"
		"  -c, --config FILE     the edge's config (edge.fastpath = \"dpdk\", edge.dpdk)\n"
		"      --wait-shm SECS   wait up to SECS for anygated to create the segment\n"
		"      --idle-sleep US   sleep US microseconds when a lcore finds nothing to do\n"
		"                        for a while (shared machines, labs; default 0: poll)\n"
		"  -v, --verbose         more log output\n"
		"  -q, --quiet           warnings and errors only\n"
		"  -V, --version         print the version\n"
		"  -h, --help            this text\n");
}

static bool has_arg(const struct ag_cfg_dpdk *c, const char *const *names)
{
	unsigned int i;
	const char *const *n;

	for (i = 0; i < c->n_eal_args; i++)
		for (n = names; *n; n++)
			if (!strncmp(c->eal_args[i], *n, strlen(*n)))
				return true;
	return false;
}

/* Without --no-huge, EAL needs free hugepages: say so before it fails obscurely. */
static int check_hugepages(const struct ag_cfg_dpdk *c)
{
	static const char *const nohuge[] = {"--no-huge", NULL};
	char line[128];
	long free_pages = -1;
	FILE *f;

	if (has_arg(c, nohuge))
		return 0;
	f = fopen("/proc/meminfo", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &free_pages) == 1)
			break;
	fclose(f);
	if (free_pages == 0) {
		pr_err("no free hugepages (HugePages_Free: 0): reserve some "
		       "(echo 512 > /proc/sys/vm/nr_hugepages) or add \"--no-huge\", \"-m\", "
		       "\"1024\" to edge.dpdk.eal_args\n");
		return -ENOMEM;
	}
	return 0;
}

static struct ag_shm *attach_shm(const struct ag_config *cfg, unsigned int wait_s)
{
	unsigned int i;
	struct ag_shm *m;

	for (i = 0;; i++) {
		m = ag_shm__attach(cfg->edge.dpdk.shm_name, cfg->edge.ring_size);
		if (m || errno != ENOENT || i >= wait_s * 10)
			return m;
		if (i == 0)
			pr_info("waiting up to %us for anygated to create the segment\n", wait_s);
		usleep(100000);
		if (ag_dp_quit)
			return NULL;
	}
}

/* argv for rte_eal_init: ours, the config's, the ports, a file prefix of our own. */
static char **eal_argv(const struct ag_cfg_dpdk *c, int *argc)
{
	static const char *const prefix[] = {"--file-prefix", NULL};
	static const char *const devsel[] = {"-a", "--allow", "-b", "--block", "--no-pci", NULL};
	char **v = calloc(c->n_eal_args + 2 * c->n_ports + 8, sizeof(*v));
	bool any_pci = false;
	unsigned int i;
	int n = 0;

	if (!v)
		return NULL;
	v[n++] = strdup("anygate-dp");
	for (i = 0; i < c->n_eal_args; i++)
		v[n++] = strdup(c->eal_args[i]);
	for (i = 0; i < c->n_ports; i++) {
		bool pci = ag_dp__is_pci(c->ports[i]);

		any_pci |= pci;
		v[n++] = strdup(pci ? "-a" : "--vdev");
		v[n++] = strdup(c->ports[i]);
	}
	/* Two DPDK processes on one host need distinct runtime directories. */
	if (!has_arg(c, prefix)) {
		char buf[128];

		snprintf(buf, sizeof(buf), "--file-prefix=anygate-dp-%s", c->shm_name);
		v[n++] = strdup(buf);
	}
	/* Only the configured devices: never take a PCI device nobody named. */
	if (!any_pci && !has_arg(c, devsel))
		v[n++] = strdup("--no-pci");
	for (i = 0; i < (unsigned int)n; i++) {
		if (!v[i]) {
			while (n)
				free(v[--n]);
			free(v);
			return NULL;
		}
	}
	*argc = n;
	return v;
}

/* A single-producer, single-consumer ring between two lcores; NULL (said why) on failure. */
static struct rte_ring *make_ring(const char *name, unsigned int size)
{
	struct rte_ring *r =
	    rte_ring_create(name, size, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);

	if (!r)
		pr_err("ring %s: %s\n", name, rte_strerror(rte_errno));
	return r;
}

static int setup_lcores(struct ag_dp *dp)
{
	unsigned int lcore, i = 0;
	char name[RTE_RING_NAMESIZE];

	dp->n_fwd = rte_lcore_count() - 1;
	dp->main_forwards = dp->n_fwd == 0;
	if (dp->main_forwards)
		dp->n_fwd = 1;
	if (dp->n_fwd + 1 > AG_SHM_LANES) {
		pr_err("%u forwarding lcores: at most %u (counter lanes of the segment)\n",
		       dp->n_fwd, AG_SHM_LANES - 1);
		return -EINVAL;
	}
	if (dp->main_forwards) {
		dp->lcores[0].lcore_id = rte_get_main_lcore();
	} else {
		RTE_LCORE_FOREACH_WORKER(lcore)
		dp->lcores[i++].lcore_id = lcore;
	}
	for (i = 0; i < dp->n_fwd; i++) {
		struct ag_dp_lcore *lc = &dp->lcores[i];

		lc->dp = dp;
		lc->index = i;
		lc->lane = ag_shm__lane(&dp->seg, i);
		snprintf(name, sizeof(name), "ag_to_main_%u", i);
		lc->to_main = make_ring(name, AG_DP_RING_SIZE);
		snprintf(name, sizeof(name), "ag_arp_to_main_%u", i);
		lc->arp_to_main = make_ring(name, AG_DP_ARP_RING_SIZE);
		if (!lc->to_main || !lc->arp_to_main)
			return -ENOMEM;
		/* Each lcore its share of the process's exception-path rate and burst. */
		ag_dp_bucket__init(&lc->slow, AG_DP_SLOW_PPS / dp->n_fwd,
				   AG_DP_SLOW_BURST / dp->n_fwd ?: 1);
	}
	dp->lcores[0].from_main = make_ring("ag_from_main", AG_DP_RING_SIZE);
	if (!dp->lcores[0].from_main)
		return -ENOMEM;
	dp->main_lane = ag_shm__lane(&dp->seg, dp->main_forwards ? 0 : dp->n_fwd);
	pr_info("%u forwarding lcore%s%s\n", dp->n_fwd, dp->n_fwd == 1 ? "" : "s",
		dp->main_forwards ? " (the main lcore: no workers given)" : "");
	return 0;
}

static int make_pool(struct ag_dp *dp)
{
	unsigned int n_ports = dp->cfg->edge.dpdk.n_ports;
	/* Descriptors of every queue and tap, the rings, and room for held packets. */
	unsigned int n = n_ports * (AG_DP_RX_DESC + AG_DP_TX_DESC) * dp->n_fwd +
			 n_ports * (AG_DP_RX_DESC + AG_DP_TX_DESC) +
			 (dp->n_fwd + 1) * AG_DP_RING_SIZE + dp->n_fwd * AG_DP_ARP_RING_SIZE + 4096;

	dp->pool = rte_pktmbuf_pool_create("ag_mbufs", n, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					   (int)rte_socket_id());
	if (!dp->pool) {
		pr_err("mbuf pool of %u buffers (%u MiB): %s (more memory: hugepages, or a "
		       "larger -m with --no-huge)\n",
		       n, (unsigned int)((uint64_t)n * (RTE_MBUF_DEFAULT_BUF_SIZE + 128) >> 20),
		       rte_strerror(rte_errno));
		return -ENOMEM;
	}
	return 0;
}

static int check_config(const struct ag_config *cfg, const char *path)
{
	const struct ag_cfg_dpdk *c = &cfg->edge.dpdk;

	if (cfg->edge.fastpath != AG_FASTPATH_DPDK) {
		pr_err("%s: edge.fastpath is \"xdp\": anygate-dp serves edges with fastpath = "
		       "\"dpdk\"\n",
		       path);
		return -EINVAL;
	}
	if (c->n_ports > AG_MAX_IFACES) {
		pr_err("%s: edge.dpdk.ports: at most %u ports\n", path, AG_MAX_IFACES);
		return -EINVAL;
	}
	if (c->n_port_addrs != c->n_ports) {
		pr_err("%s: edge.dpdk.port_addresses is required by anygate-dp (one per port: "
		       "ARP and next hops need each port's address and subnet)\n",
		       path);
		return -EINVAL;
	}
	return 0;
}

/* What the command line asks for. */
struct ag_dp_opts {
	const char *config_path;
	unsigned int wait_s;
	unsigned int idle_sleep_us;
	int verbosity;
};

/* parse_args(): go on and run (any other result is main's exit status). */
#define AG_DP_RUN (-1)

static int parse_args(int argc, char **argv, struct ag_dp_opts *o)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"wait-shm", required_argument, NULL, 'w'},
	    {"idle-sleep", required_argument, NULL, 'i'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->verbosity = AG_LOG_INFO;
	while ((c = getopt_long(argc, argv, "c:vqVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config_path = optarg;
			break;
		case 'w':
			o->wait_s = (unsigned int)strtoul(optarg, &end, 10);
			if (*end || o->wait_s > 3600) {
				fprintf(stderr, "--wait-shm: seconds 0-3600 (got %s)\n", optarg);
				return 2;
			}
			break;
		case 'i':
			o->idle_sleep_us = (unsigned int)strtoul(optarg, &end, 10);
			if (*end || o->idle_sleep_us > 100000) {
				fprintf(stderr, "--idle-sleep: microseconds 0-100000 (got %s)\n",
					optarg);
				return 2;
			}
			break;
		case 'v':
			o->verbosity++;
			break;
		case 'q':
			o->verbosity = AG_LOG_WARN;
			break;
		case 'V':
			printf("anygate-dp %s (ABI %d, segment layout %d)\n", AG_VERSION,
			       AG_ABI_VERSION, AG_SHM_LAYOUT_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o->config_path || optind != argc) {
		usage(stderr);
		return 2;
	}
	return AG_DP_RUN;
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int attach(struct ag_dp *dp, unsigned int wait_s)
{
	dp->shm = attach_shm(dp->cfg, wait_s);
	if (!dp->shm)
		return -ENOENT;
	dp->hdr = ag_shm__hdr(dp->shm);
	dp->seg = *ag_shm__view(dp->shm);
	pr_info("attached to %s (ring_size %u, generation %llu)\n", ag_shm__path(dp->shm),
		dp->seg.lay.ring_size, (unsigned long long)dp->hdr->pub.generation);
	return 0;
}

/* EAL's arguments: kept until after rte_eal_cleanup(), EAL may point into them. */
struct ag_dp_eal {
	char **args;
	int argc;
	bool up;
};

static int eal_start(struct ag_dp *dp, struct ag_dp_eal *e)
{
	char **copy;
	int err;

	e->args = eal_argv(&dp->cfg->edge.dpdk, &e->argc);
	if (!e->args) {
		pr_err("out of memory\n");
		return -ENOMEM;
	}
	/* rte_eal_init permutes argv: give it a copy of the pointers. */
	copy = calloc(e->argc + 1, sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, e->args, e->argc * sizeof(*copy));
	err = rte_eal_init(e->argc, copy);
	free(copy);
	if (err < 0) {
		pr_err("EAL initialisation failed: %s (the EAL messages above say why; check "
		       "edge.dpdk.eal_args, hugepages, and that every port exists)\n",
		       rte_strerror(rte_errno));
		return -rte_errno;
	}
	e->up = true;
	dp->tsc_mult = (uint64_t)((1000000000ull << 32) / rte_get_tsc_hz());
	return 0;
}

static void eal_stop(struct ag_dp_eal *e)
{
	int i;

	if (e->up)
		rte_eal_cleanup();
	if (e->args) {
		for (i = 0; i < e->argc; i++)
			free(e->args[i]);
		free(e->args);
	}
}

/* Lcores, buffers, ports, tables, taps: everything the loops need, in that order. */
static int setup(struct ag_dp *dp)
{
	unsigned int i;

	if (setup_lcores(dp) || make_pool(dp) || ag_dp_ports__setup(dp) || ag_dp_flows__init(dp) ||
	    ag_dp_route__init(dp) || ag_dp_neigh__init(dp) || ag_dp_ports__taps(dp))
		return -1;
	for (i = 0; i < dp->n_fwd; i++)
		rte_rcu_qsbr_thread_register(dp->qsbr, dp->lcores[i].lcore_id);
	if (!dp->main_forwards)
		rte_rcu_qsbr_thread_register(dp->qsbr, rte_get_main_lcore());
	return 0;
}

static void teardown(struct ag_dp *dp)
{
	unsigned int i;

	ag_dp_ports__close(dp);
	ag_dp_neigh__fini(dp);
	ag_dp_flows__fini(dp);
	for (i = 0; i < dp->n_fwd; i++)
		rte_ring_free(dp->lcores[i].to_main);
	rte_ring_free(dp->lcores[i].arp_to_main);
	rte_ring_free(dp->lcores[0].from_main);
	rte_mempool_free(dp->pool);
}

/* Forward until a signal: workers on their lcores, the main loop here. */
static void run(struct ag_dp *dp)
{
	unsigned int i, lcore;
	int err;

	/* What anygated reads of us: lanes in use, start, heartbeat, and (last) our pid. */
	dp->hdr->dp.lanes_used = dp->main_forwards ? 1 : dp->n_fwd + 1;
	dp->hdr->dp.started_ns = ag_shm__now_ns();
	dp->hdr->dp.heartbeat_ns = dp->hdr->dp.started_ns;
	__atomic_store_n(&dp->hdr->dp.pid, (uint32_t)getpid(), __ATOMIC_RELEASE);

	pr_info("anygate-dp ready: edge %s, %u ports, %u forwarding lcores, segment %s\n",
		dp->cfg->edge.name, dp->n_ports, dp->n_fwd, ag_shm__path(dp->shm));
	for (i = 0; !dp->main_forwards && i < dp->n_fwd; i++) {
		err =
		    rte_eal_remote_launch(ag_dp__fwd_loop, &dp->lcores[i], dp->lcores[i].lcore_id);
		if (err) {
			pr_err("launching lcore %u: %s\n", dp->lcores[i].lcore_id,
			       rte_strerror(-err));
			ag_dp_quit = SIGTERM;
			break;
		}
	}
	ag_dp__main_loop(dp);
	RTE_LCORE_FOREACH_WORKER(lcore)
	rte_eal_wait_lcore(lcore);
	pr_info("%s: shutting down\n", strsignal(ag_dp_quit ? ag_dp_quit : SIGTERM));
	__atomic_store_n(&dp->hdr->dp.pid, 0, __ATOMIC_RELEASE);
}

int main(int argc, char **argv)
{
	static struct ag_dp dp; /* big (per-lcore arrays): not on the stack */
	struct ag_dp_eal eal = {0};
	struct ag_config *cfg;
	struct ag_dp_opts o;
	int ret;

	ret = parse_args(argc, argv, &o);
	if (ret != AG_DP_RUN)
		return ret;
	ag_log__set_level(o.verbosity > AG_LOG_DEBUG ? AG_LOG_DEBUG : o.verbosity);
	catch_signals();
	cfg = ag_config__load_or_report(o.config_path);
	if (!cfg)
		return 1;
	dp.cfg = cfg;
	dp.idle_sleep_us = o.idle_sleep_us;
	ret = 1;
	if (check_config(cfg, o.config_path) || check_hugepages(&cfg->edge.dpdk) ||
	    attach(&dp, o.wait_s) || eal_start(&dp, &eal))
		goto out;
	if (!setup(&dp)) {
		run(&dp);
		ret = 0;
	}
	teardown(&dp);
out:
	eal_stop(&eal);
	ag_shm__close(dp.shm);
	ag_config__free(cfg);
	return ret;
}
