// SPDX-License-Identifier: BSD-3-Clause
/*
 * ag-newconn: new TCP connections to an ag-testsrv --http port, as legitimate
 * clients make them: connect (bounded by --connect-timeout-ms, SYN
 * retransmissions included), send one HTTP/1.0 request, read the answer (the
 * backend's name) to the server's close, close.
 *
 *   ag-newconn ADDR PORT COUNT [--spread-ms D] [--concurrency C]
 *              [--connect-timeout-ms T] [--timeout-ms T] [--list]
 *
 * --spread-ms D: connection i starts at i * D / COUNT ms (clients arriving over
 * a duration, each on its own clock, however long the others take). Without
 * it: back to back, C connections in flight (default 1), as fast as they go.
 * At the end, one line for people and one for scripts:
 *   ag-newconn: N connections, K ok (P%), F failed (...); connect ms min/median/max ...
 *   newconn total=N ok=K failed=F timeout=.. refused=.. reset=.. noreply=.. badreply=..
 *           error=..
 *           seconds=S conn_per_s=R connect_ms_min=.. connect_ms_median=.. connect_ms_p99=..
 *           connect_ms_max=..
 * (connect times over the connections that connected). --list first prints a
 * line per connection: index start-ms connect-ms status backend.
 * Exit 0 when every connection got a backend's name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define NC_MAX_COUNT	1000000
#define NC_MAX_INFLIGHT 4096
#define NC_REPLY	512
#define NC_NAME		32
#define NC_REQUEST	"GET / HTTP/1.0\r\nHost: ag\r\n\r\n"

/* timeout: no connection within --connect-timeout-ms; noreply: no answer within --timeout-ms */
enum nc_status {
	NC_PENDING,
	NC_OK,
	NC_TIMEOUT,
	NC_REFUSED,
	NC_RESET,
	NC_NOREPLY,
	NC_BADREPLY,
	NC_ERROR,
	NC__N
};
static const char *const nc_names[NC__N] = {"pending", "ok",	  "timeout",  "refused",
					    "reset",   "noreply", "badreply", "error"};

/* One connection's record (kept for the summary). */
struct nc_result {
	double start_ms;   /* since the run started */
	double connect_ms; /* SYN to established; < 0: never connected */
	enum nc_status st;
	char name[NC_NAME];
};

/* A connection in flight. */
struct nc_conn {
	int fd;
	long idx;
	bool connected;
	double deadline_ms;
	size_t got;
	char reply[NC_REPLY];
};

struct nc_run {
	struct sockaddr_in dst;
	long count, concurrency, spread_ms, connect_timeout_ms, timeout_ms;
	bool list;
	int ep;
	double t0;
	long started, done, inflight;
	int nslots; /* slots[0..nslots) have been used: the scans stop there */
	struct nc_result *res;
	struct nc_conn *slots; /* NC_MAX_INFLIGHT */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void usage(void)
{
	fprintf(stderr, "usage: ag-newconn ADDR PORT COUNT [--spread-ms D] [--concurrency C]\n"
			"                  [--connect-timeout-ms T] [--timeout-ms T] [--list]\n");
	exit(2);
}

static void parse_args(int argc, char **argv, struct nc_run *r)
{
	static const struct option opts[] = {
	    {"spread-ms", required_argument, NULL, 's'},
	    {"concurrency", required_argument, NULL, 'c'},
	    {"connect-timeout-ms", required_argument, NULL, 'C'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"list", no_argument, NULL, 'l'},
	    {0},
	};
	int c;

	r->concurrency = 1;
	r->connect_timeout_ms = 3000;
	r->timeout_ms = 5000;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			r->spread_ms = ag_cli__num(optarg, 1, 3600000);
			break;
		case 'c':
			r->concurrency = ag_cli__num(optarg, 1, NC_MAX_INFLIGHT);
			break;
		case 'C':
			r->connect_timeout_ms = ag_cli__num(optarg, 1, 600000);
			break;
		case 't':
			r->timeout_ms = ag_cli__num(optarg, 1, 600000);
			break;
		case 'l':
			r->list = true;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 3)
		usage();
	r->dst.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[optind], &r->dst.sin_addr) != 1) {
		fprintf(stderr, "ag-newconn: bad IPv4 address '%s'\n", argv[optind]);
		exit(2);
	}
	r->dst.sin_port = htons((uint16_t)ag_cli__num(argv[optind + 1], 1, 65535));
	r->count = ag_cli__num(argv[optind + 2], 1, NC_MAX_COUNT);
}

static void nc_finish(struct nc_run *r, struct nc_conn *k, enum nc_status st)
{
	struct nc_result *res = &r->res[k->idx];

	res->st = st;
	if (st == NC_OK) {
		/* The body follows the blank line; it is the backend's name. */
		char *body = strstr(k->reply, "\r\n\r\n");

		if (!body || !body[4] || strncmp(k->reply, "HTTP/1.0 200", 12)) {
			res->st = NC_BADREPLY;
		} else {
			snprintf(res->name, sizeof(res->name), "%s", body + 4);
			res->name[strcspn(res->name, "\r\n ")] = '\0';
		}
	}
	epoll_ctl(r->ep, EPOLL_CTL_DEL, k->fd, NULL);
	close(k->fd);
	k->fd = -1;
	r->inflight--;
	r->done++;
}

static enum nc_status nc_errno_status(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return NC_REFUSED;
	case ECONNRESET:
	case EPIPE:
		return NC_RESET;
	case ETIMEDOUT:
		return NC_TIMEOUT;
	default:
		return NC_ERROR;
	}
}

/* Start connection r->started in a free slot; a failure right away is recorded. */
static void nc_start(struct nc_run *r)
{
	struct nc_conn *k = NULL;
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN};
	double t = now_ms();
	int i;

	for (i = 0; i < NC_MAX_INFLIGHT && !k; i++)
		if (r->slots[i].fd < 0)
			k = &r->slots[i];
	if (i > r->nslots)
		r->nslots = i;
	memset(k, 0, sizeof(*k));
	k->idx = r->started++;
	r->res[k->idx].start_ms = t - r->t0;
	r->res[k->idx].connect_ms = -1;
	k->deadline_ms = t + (double)r->connect_timeout_ms;
	r->inflight++;
	k->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (k->fd < 0) {
		r->res[k->idx].st = NC_ERROR;
		k->fd = -1;
		r->inflight--;
		r->done++;
		return;
	}
	ev.data.ptr = k;
	if ((connect(k->fd, (struct sockaddr *)&r->dst, sizeof(r->dst)) < 0 &&
	     errno != EINPROGRESS) ||
	    epoll_ctl(r->ep, EPOLL_CTL_ADD, k->fd, &ev) < 0)
		nc_finish(r, k, nc_errno_status(errno));
}

/* Connected (or failed): send the request, then wait for the answer. */
static void nc_on_connect(struct nc_run *r, struct nc_conn *k)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = k};
	int err = 0;
	socklen_t len = sizeof(err);
	double t = now_ms();

	if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		nc_finish(r, k, nc_errno_status(err));
		return;
	}
	k->connected = true;
	r->res[k->idx].connect_ms = t - r->t0 - r->res[k->idx].start_ms;
	k->deadline_ms = t + (double)r->timeout_ms;
	/* The request is small: one send fits the empty socket buffer. */
	if (send(k->fd, NC_REQUEST, sizeof(NC_REQUEST) - 1, MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(NC_REQUEST) - 1) {
		nc_finish(r, k, nc_errno_status(errno));
		return;
	}
	epoll_ctl(r->ep, EPOLL_CTL_MOD, k->fd, &ev);
}

static void nc_on_readable(struct nc_run *r, struct nc_conn *k)
{
	char sink[256];
	ssize_t n;

	for (;;) {
		if (k->got < sizeof(k->reply) - 1)
			n = read(k->fd, k->reply + k->got, sizeof(k->reply) - 1 - k->got);
		else
			n = read(k->fd, sink, sizeof(sink));
		if (n > 0 && k->got < sizeof(k->reply) - 1) {
			k->got += (size_t)n;
			k->reply[k->got] = '\0';
		}
		if (n == 0) {
			nc_finish(r, k, NC_OK); /* the server closed: the answer is complete */
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				nc_finish(r, k, nc_errno_status(errno));
			return;
		}
	}
}

static void nc_on_event(struct nc_run *r, struct nc_conn *k, unsigned int events)
{
	if (!k->connected) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			nc_on_connect(r, k);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		nc_on_readable(r, k);
}

/* Connections past their deadline. */
static void nc_expire(struct nc_run *r, double t)
{
	int i;

	for (i = 0; i < r->nslots; i++) {
		struct nc_conn *k = &r->slots[i];

		if (k->fd >= 0 && t >= k->deadline_ms)
			nc_finish(r, k, k->connected ? NC_NOREPLY : NC_TIMEOUT);
	}
}

/* When the next connection is due (ms since the start); negative: now. */
static double nc_next_due(const struct nc_run *r)
{
	if (r->started >= r->count)
		return 1e18;
	if (r->spread_ms)
		return (double)r->spread_ms * (double)r->started / (double)r->count;
	return r->inflight < r->concurrency ? -1 : 1e18;
}

static void nc_loop(struct nc_run *r)
{
	struct epoll_event evs[256];
	double t, due, wake;
	int i, n, timeout;

	while (r->done < r->count) {
		t = now_ms() - r->t0;
		while ((due = nc_next_due(r)) <= t && r->inflight < NC_MAX_INFLIGHT)
			nc_start(r);
		wake = due;
		for (i = 0; i < r->nslots; i++)
			if (r->slots[i].fd >= 0 && r->slots[i].deadline_ms - r->t0 < wake)
				wake = r->slots[i].deadline_ms - r->t0;
		timeout = wake >= 1e17 ? 1000 : (int)(wake - t + 1);
		n = epoll_wait(r->ep, evs, 256, timeout < 0 ? 0 : timeout);
		for (i = 0; i < n; i++)
			nc_on_event(r, evs[i].data.ptr, evs[i].events);
		nc_expire(r, now_ms());
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void nc_report(const struct nc_run *r, double secs)
{
	long per[NC__N] = {0}, i, nt = 0;
	double *ct = calloc((size_t)r->count, sizeof(double));
	double mn = 0, md = 0, p99 = 0, mx = 0;

	for (i = 0; i < r->count; i++) {
		per[r->res[i].st]++;
		if (ct && r->res[i].connect_ms >= 0)
			ct[nt++] = r->res[i].connect_ms;
		if (r->list)
			printf("%ld %.1f %.1f %s %s\n", i, r->res[i].start_ms, r->res[i].connect_ms,
			       nc_names[r->res[i].st], r->res[i].name[0] ? r->res[i].name : "-");
	}
	if (nt) {
		qsort(ct, (size_t)nt, sizeof(double), cmp_double);
		mn = ct[0];
		md = nt % 2 ? ct[nt / 2] : (ct[nt / 2 - 1] + ct[nt / 2]) / 2;
		p99 = ct[(nt * 99 + 99) / 100 - 1];
		mx = ct[nt - 1];
	}
	free(ct);
	printf(
	    "ag-newconn: %ld connections, %ld ok (%.1f%%), %ld failed (timeout %ld, refused %ld, "
	    "reset %ld, noreply %ld, badreply %ld, error %ld) in %.2f s: %.0f conn/s; connect ms "
	    "min/median/p99/max %.1f/%.1f/%.1f/%.1f\n",
	    r->count, per[NC_OK], 100.0 * (double)per[NC_OK] / (double)r->count,
	    r->count - per[NC_OK], per[NC_TIMEOUT], per[NC_REFUSED], per[NC_RESET], per[NC_NOREPLY],
	    per[NC_BADREPLY], per[NC_ERROR], secs, (double)r->count / secs, mn, md, p99, mx);
	printf("newconn total=%ld ok=%ld failed=%ld timeout=%ld refused=%ld reset=%ld noreply=%ld "
	       "badreply=%ld error=%ld seconds=%.3f conn_per_s=%.0f connect_ms_min=%.1f "
	       "connect_ms_median=%.1f "
	       "connect_ms_p99=%.1f connect_ms_max=%.1f\n",
	       r->count, per[NC_OK], r->count - per[NC_OK], per[NC_TIMEOUT], per[NC_REFUSED],
	       per[NC_RESET], per[NC_NOREPLY], per[NC_BADREPLY], per[NC_ERROR], secs,
	       (double)r->count / secs, mn, md, p99, mx);
}

int main(int argc, char **argv)
{
	struct nc_run r;
	struct rlimit rl;
	long i;
	int rc;

	memset(&r, 0, sizeof(r));
	parse_args(argc, argv, &r);
	/* Room for every connection in flight. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = 1;
	r.res = calloc((size_t)r.count, sizeof(*r.res));
	r.slots = calloc(NC_MAX_INFLIGHT, sizeof(*r.slots));
	r.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!r.res || !r.slots || r.ep < 0) {
		perror("ag-newconn");
		goto out;
	}
	for (i = 0; i < NC_MAX_INFLIGHT; i++)
		r.slots[i].fd = -1;
	r.t0 = now_ms();
	nc_loop(&r);
	nc_report(&r, (now_ms() - r.t0) / 1e3);
	rc = 0;
	for (i = 0; i < r.count; i++)
		if (r.res[i].st != NC_OK)
			rc = 1;
out:
	if (r.ep >= 0)
		close(r.ep);
	free(r.slots);
	free(r.res);
	return rc;
}
