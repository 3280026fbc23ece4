// SPDX-License-Identifier: BSD-3-Clause
/*
 * ag-longconn: long-lived TCP connections for failover tests.
 *   ag-longconn ADDR PORT COUNT [--duration-ms D] [--interval-ms I] [--stall-ms S]
 * Opens COUNT connections to an ag-testsrv --echo port, reads the backend's name
 * from each, then every I ms writes a 16-byte line on every live connection and
 * expects it echoed back, for D ms. Prints one line per connection:
 *   <index> <backend> <status> <echoed-bytes> <end-ms>
 * status: "ok" (ran the whole duration), "reset" (ECONNRESET/EPIPE: a RST came),
 * "eof" (the peer closed), "stall" (an echo missing for S ms), "connect" (never
 * connected). end-ms is when the connection ended, in ms since the run started;
 * the first line on stderr gives that start as CLOCK_REALTIME milliseconds so a
 * test can relate it to other events. Exit 0 when every connection is "ok".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define LINE	  16
#define MAX_CONNS 1024

enum status { ST_LIVE, ST_OK, ST_RESET, ST_EOF, ST_STALL, ST_CONNECT };
static const char *const status_names[] = {"live", "ok", "reset", "eof", "stall", "connect"};

struct conn {
	int fd;
	enum status st;
	char name[64];
	size_t name_len;
	bool named;
	size_t pending; /* echo bytes still expected */
	long long pending_since;
	unsigned long long echoed;
	long long end_ms;
};

static long long now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void end(struct conn *c, enum status st, long long t)
{
	if (c->st != ST_LIVE)
		return;
	c->st = st;
	c->end_ms = t;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void on_readable(struct conn *c, long long t)
{
	char buf[4096];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	ssize_t i;

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		end(c, errno == ECONNRESET ? ST_RESET : ST_EOF, t);
		return;
	}
	if (n == 0) {
		end(c, ST_EOF, t);
		return;
	}
	for (i = 0; i < n; i++) {
		if (!c->named) {
			if (buf[i] == '\n')
				c->named = true;
			else if (c->name_len < sizeof(c->name) - 1)
				c->name[c->name_len++] = buf[i];
			continue;
		}
		if (c->pending) {
			c->pending--;
			c->echoed++;
		}
	}
}

static void send_line(struct conn *c, long long t)
{
	static const char line[LINE] = "ping-ag-longcn\r\n";
	ssize_t n;

	if (!c->named)
		return;
	n = send(c->fd, line, LINE, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN)
			return;
		end(c, (errno == ECONNRESET || errno == EPIPE) ? ST_RESET : ST_EOF, t);
		return;
	}
	if (!c->pending)
		c->pending_since = t;
	c->pending += (size_t)n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"duration-ms", required_argument, NULL, 'd'},
	    {"interval-ms", required_argument, NULL, 'i'},
	    {"stall-ms", required_argument, NULL, 's'},
	    {0},
	};
	long duration = 10000, interval = 200, stall = 3000, count, i;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	static struct conn conns[MAX_CONNS];
	static struct pollfd pfd[MAX_CONNS];
	long long t0, next_send, t;
	int c, failed = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			duration = ag_cli__num(optarg, 1, 3600000);
			break;
		case 'i':
			interval = ag_cli__num(optarg, 1, 60000);
			break;
		case 's':
			stall = ag_cli__num(optarg, 1, 600000);
			break;
		default:
			fprintf(stderr, "usage: ag-longconn ADDR PORT COUNT [--duration-ms D] "
					"[--interval-ms I] [--stall-ms S]\n");
			return 2;
		}
	}
	if (argc - optind != 3 || inet_pton(AF_INET, argv[optind], &sa.sin_addr) != 1) {
		fprintf(stderr, "usage: ag-longconn ADDR PORT COUNT [options]\n");
		return 2;
	}
	sa.sin_port = htons((uint16_t)ag_cli__num(argv[optind + 1], 1, 65535));
	count = ag_cli__num(argv[optind + 2], 1, MAX_CONNS);
	signal(SIGPIPE, SIG_IGN);

	fprintf(stderr, "start-realtime-ms %lld\n", now_ms(CLOCK_REALTIME));
	t0 = now_ms(CLOCK_MONOTONIC);
	for (i = 0; i < count; i++) {
		struct conn *k = &conns[i];
		struct timeval tv = {.tv_sec = 5};

		k->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		k->st = ST_LIVE;
		/* A blocking connect with a bound: then the echo loop is non-blocking. */
		setsockopt(k->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (k->fd < 0 || connect(k->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			end(k, ST_CONNECT, now_ms(CLOCK_MONOTONIC) - t0);
			continue;
		}
	}

	next_send = 0;
	for (;;) {
		long long deadline;
		int n = 0, live = 0, timeout;

		t = now_ms(CLOCK_MONOTONIC) - t0;
		if (t >= duration)
			break;
		for (i = 0; i < count; i++) {
			struct conn *k = &conns[i];

			if (k->st != ST_LIVE)
				continue;
			if (k->pending && t - k->pending_since > stall) {
				end(k, ST_STALL, t);
				continue;
			}
			live++;
		}
		if (!live)
			break;
		if (t >= next_send) {
			for (i = 0; i < count; i++)
				if (conns[i].st == ST_LIVE)
					send_line(&conns[i], t);
			next_send = t + interval;
		}
		for (i = 0; i < count; i++) {
			pfd[i].fd = conns[i].st == ST_LIVE ? conns[i].fd : -1;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		deadline = next_send < duration ? next_send : duration;
		timeout = (int)(deadline - t);
		n = poll(pfd, (nfds_t)count, timeout > 0 ? timeout : 0);
		if (n < 0 && errno != EINTR) {
			perror("poll");
			return 1;
		}
		t = now_ms(CLOCK_MONOTONIC) - t0;
		for (i = 0; n > 0 && i < count; i++)
			if (pfd[i].revents && conns[i].st == ST_LIVE)
				on_readable(&conns[i], t);
	}
	t = now_ms(CLOCK_MONOTONIC) - t0;
	for (i = 0; i < count; i++) {
		struct conn *k = &conns[i];

		if (k->st == ST_LIVE)
			end(k, ST_OK, t);
		if (k->st != ST_OK)
			failed++;
		printf("%ld %s %s %llu %lld\n", i, k->name_len ? k->name : "-", status_names[k->st],
		       k->echoed, k->end_ms);
	}
	return failed ? 1 : 0;
}
