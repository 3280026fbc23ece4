/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated: the anygate control-plane daemon. Loads the config, lays it out
 * into a plan, loads and attaches the fast path, publishes the tables, and
 * then serves events (signals now; probes and the control socket join this
 * loop) until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <jemalloc/jemalloc.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "fastpath.h"
#include "shm.h"
#include "log.h"
#include "loop.h"
#include "plan.h"
#include "probe.h"
#include "publish.h"
#include "xdp.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: anygated -c FILE [-v] [-q] [--keep-fastpath-on-exit]\n"
		"       anygated --check FILE\n"
		"       anygated --detach -c FILE\n"
		"\n"
		"  -c, --config FILE   run with this configuration\n"
		"      --check FILE    validate FILE and exit 0 (valid) or 1 (errors on stderr)\n"
		"      --keep-fastpath-on-exit\n"
		"                      on SIGTERM/SIGINT leave XDP attached and the maps pinned\n"
		"                      (restart/upgrade: the next anygated adopts them); SIGUSR2\n"
		"                      does this for one exit without the option\n"
		"      --detach        detach the XDP links and remove the pins a kept fast path\n"
		"                      left under FILE's bpffs_dir, then exit (nothing starts)\n"
		"  -v, --verbose       more log output (repeat for libbpf detail)\n"
		"  -q, --quiet         warnings and errors only\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this text\n");
}

static void log_plan(const struct ag_daemon *d)
{
	const struct ag_plan *plan = d->plan;
	double *share = calloc(plan->n_backends ? plan->n_backends : 1, sizeof(*share));
	double *gshare = calloc(plan->n_groups ? plan->n_groups : 1, sizeof(*gshare));
	unsigned int l, g, b;

	if (!share || !gshare)
		goto out;
	for (l = 0; l < plan->n_listeners; l++) {
		const struct ag_plan_listener *pl = &plan->listeners[l];
		char vip[INET_ADDRSTRLEN];

		if (ag_plan__compile(plan, l, &d->view, share, gshare))
			continue;
		inet_ntop(AF_INET, &pl->accel->addrs[0], vip, sizeof(vip));
		pr_info("listener %u: %s %s %s port %u%s: %u groups\n", l, pl->accel->name, vip,
			pl->cfg->proto == IPPROTO_TCP ? "tcp" : "udp", pl->cfg->ranges[0].first,
			pl->cfg->n_ranges > 1 || pl->cfg->ranges[0].last != pl->cfg->ranges[0].first
			    ? "+"
			    : "",
			pl->n_groups);
		for (g = 0; g < pl->n_groups; g++) {
			const struct ag_plan_group *pg = &plan->groups[pl->first_group + g];

			pr_info("  %-12s %5.1f%% of new flows\n", pg->cfg->region,
				100.0 * gshare[pg->id]);
			for (b = 0; b < pg->n_backends; b++) {
				const struct ag_plan_backend *pb =
				    &plan->backends[pg->first_backend + b];
				char addr[INET_ADDRSTRLEN];

				inet_ntop(AF_INET, &pb->addr, addr, sizeof(addr));
				pr_info("    backend %u %-15s weight %3u share %5.1f%%\n", pb->id,
					addr, pb->weight, 100.0 * share[pb->id]);
			}
		}
	}
out:
	free(share);
	free(gshare);
}

static void log_stats(struct ag_daemon *d)
{
	struct ag_traffic_stats ts;
	struct ag_reason_stats rs;
	unsigned int i;

	for (i = 0; i < d->plan->n_listeners; i++)
		if (!d->fp_ops->listener_stats(d->fp, i, &ts))
			pr_info("listener %u: %llu packets %llu bytes %llu new flows, return %llu "
				"packets %llu bytes\n",
				i, (unsigned long long)ts.packets, (unsigned long long)ts.bytes,
				(unsigned long long)ts.new_flows,
				(unsigned long long)ts.ret_packets,
				(unsigned long long)ts.ret_bytes);
	for (i = 0; i < d->plan->n_backends; i++)
		if (!d->fp_ops->backend_stats(d->fp, i, &ts) && (ts.packets || ts.ret_packets))
			pr_info("backend %u: %llu packets %llu new flows, return %llu packets\n", i,
				(unsigned long long)ts.packets, (unsigned long long)ts.new_flows,
				(unsigned long long)ts.ret_packets);
	for (i = 0; i < AG_R__MAX; i++)
		if (!d->fp_ops->reason_stats(d->fp, i, &rs) && rs.packets)
			pr_info("%s: %llu packets\n", ag_reason__name(i),
				(unsigned long long)rs.packets);
}

/* Which edge settings a reload cannot change without reloading the fast path. */
int ag_daemon__check_reload_edge(const struct ag_cfg_edge *old, const struct ag_cfg_edge *new,
				 const char *path, struct ag_errors *errs)
{
	unsigned int i;
	int err = 0;

#define AG_RESTART_ONLY(cond, key)                                                                 \
	do {                                                                                       \
		if (cond) {                                                                        \
			ag_errors__add(errs, path, new->line, key,                                 \
				       "changes only with a restart (running: unchanged)");        \
			err = -EINVAL;                                                             \
		}                                                                                  \
	} while (0)
	AG_RESTART_ONLY(old->ring_size != new->ring_size, "edge.ring_size");
	AG_RESTART_ONLY(old->max_flows != new->max_flows, "edge.max_flows");
	AG_RESTART_ONLY(strcmp(old->bpffs_dir, new->bpffs_dir), "edge.bpffs_dir");
	AG_RESTART_ONLY(old->fastpath != new->fastpath, "edge.fastpath");
	AG_RESTART_ONLY(strcmp(old->control_socket, new->control_socket), "edge.control_socket");
	AG_RESTART_ONLY(strcmp(old->metrics_addr, new->metrics_addr), "edge.metrics");
	AG_RESTART_ONLY(strcmp(old->dpdk.shm_name ? old->dpdk.shm_name : "",
			       new->dpdk.shm_name ? new->dpdk.shm_name : ""),
			"edge.dpdk.shm_name");
	AG_RESTART_ONLY(old->admin_gid != new->admin_gid, "edge.admin_group");
	AG_RESTART_ONLY(old->control_gid != new->control_gid, "edge.control_group");
	for (i = 0; i < old->n_ifaces && old->n_ifaces == new->n_ifaces; i++)
		if (strcmp(old->ifaces[i].name, new->ifaces[i].name))
			break;
	AG_RESTART_ONLY(old->n_ifaces != new->n_ifaces || i < old->n_ifaces, "edge.interfaces");
#undef AG_RESTART_ONLY
	return err;
}

int ag_daemon__reload(struct ag_daemon *d, struct ag_errors *errs)
{
	struct ag_view_state vs, old_vs;
	struct ag_plan *plan, *old_plan;
	struct ag_config *cfg, *old_cfg;
	unsigned int first = errs->count, i;
	int err;

	pr_info("reload: reading %s\n", d->config_path);
	cfg = ag_config__load(d->config_path, errs);
	if (!cfg && errs->count == first)
		ag_errors__add(errs, d->config_path, 0, NULL, "%s", strerror(errno));
	if (cfg && ag_daemon__check_reload_edge(&d->cfg->edge, &cfg->edge, d->config_path, errs)) {
		ag_config__free(cfg);
		cfg = NULL;
	}
	if (!cfg) {
		for (i = first; i < errs->count; i++)
			pr_err("%s\n", errs->msgs[i]);
		pr_err("reload refused: %s has errors; running tables unchanged\n", d->config_path);
		d->reload_failures++;
		return -EINVAL;
	}
	plan = ag_plan__new(cfg);
	if (!plan || ag_view_state__init(&vs, plan)) {
		err = -(errno ? errno : ENOMEM);
		ag_errors__add(errs, d->config_path, 0, NULL, "reload refused: %s", strerror(-err));
		ag_plan__free(plan);
		ag_config__free(cfg);
		d->reload_failures++;
		return err;
	}
	/* Swap in, publish; on failure swap the old state back (tables untouched). */
	old_cfg = d->cfg;
	old_plan = d->plan;
	old_vs = d->vs;
	d->cfg = cfg;
	d->plan = plan;
	d->vs = vs;
	ag_daemon__bind_view(d);
	ag_cmds__apply(d); /* the operator's overrides hold across reloads */
	d->pub.seed = cfg->edge.hash_seed;
	err = d->prober ? ag_health__retarget(d) : 0;
	if (!err)
		err = ag_publisher__publish(&d->pub, plan, &d->view);
	if (err) {
		pr_err("reload: publish failed: %s; keeping the running config\n", strerror(-err));
		ag_errors__add(errs, d->config_path, 0, NULL, "publish failed: %s", strerror(-err));
		d->cfg = old_cfg;
		d->plan = old_plan;
		d->vs = old_vs;
		ag_daemon__bind_view(d);
		d->pub.seed = old_cfg->edge.hash_seed;
		if (d->prober)
			ag_health__retarget(d);
		ag_view_state__free(&vs, plan);
		ag_plan__free(plan);
		ag_config__free(cfg);
		d->reload_failures++;
		return err;
	}
	ag_view_state__free(&old_vs, old_plan);
	ag_plan__free(old_plan);
	ag_config__free(old_cfg);
	d->reloads++;
	pr_info("reload: published %u listeners, %u backends in %.3f ms (%llu slots written)\n",
		plan->n_listeners, plan->n_backends, d->pub.stats.last_duration_ns / 1e6,
		(unsigned long long)d->pub.stats.slots_written);
	log_plan(d);
	return 0;
}

static void handle_signals(struct ag_ev *ev, uint32_t events)
{
	struct ag_daemon *d = ev->data;
	struct signalfd_siginfo si;

	while (read(ev->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			pr_info("%s: shutting down%s\n", strsignal(si.ssi_signo),
				d->keep_fastpath ? ", keeping the fast path" : "");
			ag_loop__stop(&d->loop);
			break;
		case SIGUSR2:
			/* Upgrade: exit, the fast path keeps forwarding (see README). */
			pr_info("%s: exiting, keeping the fast path\n", strsignal(si.ssi_signo));
			d->keep_fastpath = true;
			ag_loop__stop(&d->loop);
			break;
		case SIGHUP: {
			struct ag_errors errs;

			ag_errors__init(&errs);
			ag_daemon__reload(d, &errs);
			ag_errors__free(&errs);
			break;
		}
		}
	}
}

/* Signals arrive as events of the loop: the handler never runs in signal context. */
static int setup_signals(struct ag_daemon *d)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	d->sig.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sig.fd < 0)
		return -errno;
	d->sig.cb = handle_signals;
	d->sig.data = d;
	return ag_loop__add(&d->loop, &d->sig, EPOLLIN);
}

static void log_allocator(void)
{
	const char *version = NULL;
	size_t len = sizeof(version);

	if (!mallctl("version", &version, &len, NULL, 0))
		pr_info("allocator: jemalloc %s\n", version);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", required_argument, NULL, 'C'},
	    {"keep-fastpath-on-exit", no_argument, NULL, 'K'},
	    {"detach", no_argument, NULL, 'D'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	struct ag_daemon d = {
	    .loop = {.epfd = -1},
	    .sig = {.fd = -1},
	    .proximity_timer = {.ev = {.fd = -1}},
	};
	const char *config_path = NULL;
	bool keep = false, detach = false, dpdk;
	int verbosity = AG_LOG_INFO, c, err, ret = 1;

	while ((c = getopt_long(argc, argv, "c:vqVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'C': {
			struct ag_config *cfg = ag_config__load_or_report(optarg);

			if (!cfg)
				return 1;
			printf("%s: ok\n", optarg);
			ag_config__free(cfg);
			return 0;
		}
		case 'K':
			keep = true;
			break;
		case 'D':
			detach = true;
			break;
		case 'v':
			verbosity++;
			break;
		case 'q':
			verbosity = AG_LOG_WARN;
			break;
		case 'V':
			printf("anygated %s (ABI %d)\n", AG_VERSION, AG_ABI_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!config_path || optind != argc) {
		usage(stderr);
		return 2;
	}
	ag_log__set_level(verbosity > AG_LOG_DEBUG ? AG_LOG_DEBUG : verbosity);
	ag_log__hook_libbpf();
	log_allocator();

	d.config_path = config_path;
	d.started_ns = ag_now_ns();
	d.keep_fastpath = keep;
	d.cfg = ag_config__load_or_report(config_path);
	if (!d.cfg)
		return 1;
	dpdk = d.cfg->edge.fastpath == AG_FASTPATH_DPDK;
	if (detach) {
		if (dpdk)
			ret = ag_shm__unlink(d.cfg->edge.dpdk.shm_name) ? 1 : 0;
		else
			ret = ag_xdp__remove_pinned(&d.cfg->edge) ? 1 : 0;
		goto out;
	}
	d.plan = ag_plan__new(d.cfg);
	if (!d.plan || ag_view_state__init(&d.vs, d.plan)) {
		pr_err("laying out %s: %s\n", config_path, strerror(errno ? errno : ENOMEM));
		goto out;
	}
	ag_daemon__bind_view(&d);
	err = ag_loop__init(&d.loop);
	if (!err)
		err = setup_signals(&d);
	if (err) {
		pr_err("event loop: %s\n", strerror(-err));
		goto out;
	}
	/* Overrides from edge.state_file are in the view before the first publish. */
	err = ag_cmds__init(&d);
	if (err) {
		pr_err("operator commands: %s\n", strerror(-err));
		goto out;
	}

	/*
	 * The fast path: XDP (load or adopt the program and its pinned maps) or
	 * anygate-dp (create or adopt the shared-memory table segment it attaches to).
	 */
	if (dpdk) {
		d.shm = ag_shm__open(&d.cfg->edge);
		if (!d.shm) {
			pr_err("table segment %s: %s\n", d.cfg->edge.dpdk.shm_name,
			       strerror(errno));
			goto out;
		}
		d.fp_ops = &ag_fastpath_dpdk;
		d.fp = d.shm;
	} else {
		d.xdp = ag_xdp__open(&d.cfg->edge);
		if (!d.xdp)
			goto out;
		d.fp_ops = &ag_fastpath_xdp;
		d.fp = d.xdp;
	}
	err = ag_publisher__init(&d.pub, d.fp_ops->sink_ops(), d.fp, d.cfg->edge.ring_size,
				 d.cfg->edge.hash_seed);
	if (err) {
		pr_err("publisher: %s\n", strerror(-err));
		goto out_unpin;
	}
	/* Tables before attach: the first packet already finds them. */
	err = ag_publisher__publish(&d.pub, d.plan, &d.view);
	if (err) {
		pr_err("publishing tables: %s\n", strerror(-err));
		goto out_unpin;
	}
	pr_info("published %u listeners, %u backends in %.3f ms (%llu slots written)\n",
		d.plan->n_listeners, d.plan->n_backends, d.pub.stats.last_duration_ns / 1e6,
		(unsigned long long)d.pub.stats.slots_written);
	log_plan(&d);
	if (dpdk)
		pr_info("tables published into %s: anygate-dp attaches to it and forwards\n",
			ag_shm__path(d.shm));
	else if ((err = ag_xdp__attach(d.xdp, &d.cfg->edge)))
		goto out_unpin;
	err = ag_health__start(&d);
	if (err) {
		pr_err("health probes: %s\n", strerror(-err));
		goto out_detach;
	}
	err = ag_daemon__metrics_start(&d);
	if (err)
		goto out_detach;
	err = ag_cmds__start(&d);
	if (err)
		goto out_detach;

	pr_info("anygated ready: edge %s, fast path %s, %u interfaces, %u listeners, %u backends\n",
		d.cfg->edge.name, d.fp_ops->kind, d.cfg->edge.n_ifaces, d.plan->n_listeners,
		d.plan->n_backends);
	err = ag_loop__run(&d.loop);
	if (err)
		pr_err("event loop: %s\n", strerror(-err));
	ret = err ? 1 : 0;

	log_stats(&d);
out_detach:
	ag_daemon__metrics_stop(&d);
	ag_health__stop(&d);
out_unpin:
	/*
	 * Clean exit detaches and unpins everything, unless asked to keep the fast
	 * path; a start that fails after adopting a running fast path leaves it
	 * forwarding as it found it.
	 */
	if (dpdk) {
		/* anygate-dp keeps forwarding on the last tables; --detach removes them. */
		if (d.shm)
			pr_info("table segment %s stays for anygate-dp (anygated --detach removes "
				"it)\n",
				ag_shm__path(d.shm));
	} else if (d.keep_fastpath || (ret && ag_xdp__adopted(d.xdp))) {
		ag_xdp__keep(d.xdp);
	} else {
		ag_xdp__detach(d.xdp);
		ag_xdp__unpin(d.xdp);
	}
out:
	ag_cmds__free(&d);
	ag_publisher__fini(&d.pub);
	ag_xdp__close(d.xdp);
	ag_shm__close(d.shm);
	if (d.sig.fd >= 0)
		close(d.sig.fd);
	ag_loop__fini(&d.loop);
	ag_view_state__free(&d.vs, d.plan);
	ag_plan__free(d.plan);
	ag_config__free(d.cfg);
	return ret;
}
