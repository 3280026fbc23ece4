/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated: the anygate control-plane daemon. Parses its options, builds the
 * daemon (daemon.c) and starts its parts (lifecycle.c), then serves events
 * from one loop (probes, the control socket, metrics and the signals below)
 * until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <jemalloc/jemalloc.h>
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
#include "kinds.h"
#include "lifecycle.h"
#include "log.h"
#include "loop.h"

struct options {
	const char *config_path;
	bool keep;   /* --keep-fastpath-on-exit */
	bool detach; /* --detach */
	int verbosity;
};

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

/* `anygated --check FILE`: exactly what loading the daemon's config does. */
static int check_config(const char *path)
{
	struct ag_config *cfg = ag_config__load_or_report(path);

	if (!cfg)
		return 1;
	printf("%s: ok\n", path);
	ag_config__free(cfg);
	return 0;
}

/* -1 to go on and run, else the exit status (options that answer at once, usage). */
static int parse_options(int argc, char **argv, struct options *o)
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
	int c;

	memset(o, 0, sizeof(*o));
	o->verbosity = AG_LOG_INFO;
	while ((c = getopt_long(argc, argv, "c:vqVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config_path = optarg;
			break;
		case 'C':
			return check_config(optarg);
		case 'K':
			o->keep = true;
			break;
		case 'D':
			o->detach = true;
			break;
		case 'v':
			o->verbosity++;
			break;
		case 'q':
			o->verbosity = AG_LOG_WARN;
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
	if (!o->config_path || optind != argc) {
		usage(stderr);
		return 2;
	}
	return -1;
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
static int setup_signals(struct ag_daemon *d, struct ag_ev *sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	sig->fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig->fd < 0)
		return -errno;
	sig->cb = handle_signals;
	sig->data = d;
	return ag_loop__add(&d->loop, sig, EPOLLIN);
}

static void log_allocator(void)
{
	const char *version = NULL;
	size_t len = sizeof(version);

	if (!mallctl("version", &version, &len, NULL, 0))
		pr_info("allocator: jemalloc %s\n", version);
}

/* What went through the fast path while we ran, for the log of the exit. */
static void log_stats(struct ag_daemon *d)
{
	const struct ag_fastpath_ops *ops = d->fp->ops;
	struct ag_traffic_stats ts;
	struct ag_reason_stats rs;
	unsigned int i;

	for (i = 0; i < d->plan->n_listeners; i++)
		if (!ops->listener_stats(d->fp, d->plan->listeners[i].fpid, &ts))
			pr_info("listener %u: %llu packets %llu bytes %llu new flows, return %llu "
				"packets %llu bytes\n",
				d->plan->listeners[i].fpid, (unsigned long long)ts.packets,
				(unsigned long long)ts.bytes, (unsigned long long)ts.new_flows,
				(unsigned long long)ts.ret_packets,
				(unsigned long long)ts.ret_bytes);
	for (i = 0; i < d->plan->n_backends; i++)
		if (!ops->backend_stats(d->fp, d->plan->backends[i].fpid, &ts) &&
		    (ts.packets || ts.ret_packets))
			pr_info("backend %u: %llu packets %llu new flows, return %llu packets\n",
				d->plan->backends[i].fpid, (unsigned long long)ts.packets,
				(unsigned long long)ts.new_flows,
				(unsigned long long)ts.ret_packets);
	for (i = 0; i < AG_R__MAX; i++)
		if (!ops->reason_stats(d->fp, i, &rs) && rs.packets)
			pr_info("%s: %llu packets\n", ag_reason__name(i),
				(unsigned long long)rs.packets);
}

/* `anygated --detach -c FILE`: remove what a kept fast path left, start nothing. */
static int detach(struct ag_daemon *d)
{
	return ag_fastpath__ops(d->cfg->edge.fastpath)->remove_kept(&d->cfg->edge) ? 1 : 0;
}

/* Serve until a signal stops the loop; the exit status. */
static int serve(struct ag_daemon *d)
{
	int err = ag_loop__run(&d->loop);

	if (err)
		pr_err("event loop: %s\n", strerror(-err));
	log_stats(d);
	ag_lifecycle__stop(d, err != 0);
	return err ? 1 : 0;
}

static int run(const struct options *o)
{
	struct ag_ev sig = {.fd = -1};
	struct ag_daemon d;
	int err, ret = 1;

	if (ag_daemon__init(&d, o->config_path))
		goto out;
	d.keep_fastpath = o->keep;
	if (o->detach) {
		ret = detach(&d);
		goto out;
	}
	if (ag_daemon__prepare(&d))
		goto out;
	err = setup_signals(&d, &sig);
	if (err) {
		pr_err("event loop: %s\n", strerror(-err));
		goto out;
	}
	if (!ag_lifecycle__start(&d))
		ret = serve(&d);
out:
	if (sig.fd >= 0)
		close(sig.fd);
	ag_daemon__fini(&d);
	return ret;
}

int main(int argc, char **argv)
{
	struct options o;
	int ret = parse_options(argc, argv, &o);

	if (ret >= 0)
		return ret;
	ag_log__set_level(o.verbosity > AG_LOG_DEBUG ? AG_LOG_DEBUG : o.verbosity);
	log_allocator();
	return run(&o);
}
