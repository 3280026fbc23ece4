// SPDX-License-Identifier: BSD-3-Clause
/*
 * ag-testcli: UDP request/reply flows for the lab tests.
 *   ag-testcli ADDR PORT COUNT [--sport-base N] [--timeout-ms T]
 * Sends COUNT requests one after the other, each from its own socket (and from
 * source port N+i when --sport-base is given, so every request is a distinct
 * flow), and prints one line per request: the reply's first line, "TIMEOUT", or
 * "BADSRC a.b.c.d:p" when the reply came from anywhere but ADDR:PORT (a missed
 * reverse NAT). Exit 0 only when every request got a reply from ADDR:PORT.
 * --timestamps prefixes each line with the CLOCK_REALTIME milliseconds at which
 * the request was sent (for failover timing).
 * --stream-pps P: instead, COUNT requests from one socket (one flow, from port N
 * when --sport-base is given) at P a second, replies counted as they come and
 * for T ms after the last request; prints one line
 *   stream sent=N replies=M lost=L loss_pct=X moved=K
 * (moved: replies from another backend than the first reply's). Exit 0 when
 * every request got a reply.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: ag-testcli ADDR PORT COUNT [--sport-base N] [--timeout-ms T] [--timestamps]\n"
	    "                  [--stream-pps P]\n");
	exit(2);
}

/* One request from its own socket; returns 0 when a good reply was printed. */
static int timestamps;

static int one_request(const struct sockaddr_in *dst, int sport, long i, int timeout_ms)
{
	struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(sport)};
	struct sockaddr_in from = {0}; /* recvfrom() fills it; zero if it ever did not */
	socklen_t flen;
	struct pollfd pfd;
	char buf[512], req[64];
	int fd, one = 1, rc = 1;
	ssize_t n;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		printf("BIND %d %s\n", sport, strerror(errno));
		goto out;
	}
	snprintf(req, sizeof(req), "request %ld\n", i);
	if (timestamps) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		printf("%lld ", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	}
	if (sendto(fd, req, strlen(req), 0, (const struct sockaddr *)dst, sizeof(*dst)) < 0) {
		printf("SEND %s\n", strerror(errno));
		goto out;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, timeout_ms) <= 0) {
		printf("TIMEOUT\n");
		goto out;
	}
	flen = sizeof(from);
	n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen);
	if (n < 0) {
		printf("RECV %s\n", strerror(errno));
		goto out;
	}
	if (from.sin_addr.s_addr != dst->sin_addr.s_addr || from.sin_port != dst->sin_port) {
		printf("BADSRC %s:%u\n", inet_ntoa(from.sin_addr), ntohs(from.sin_port));
		goto out;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	printf("%s\n", buf[0] ? buf : "EMPTY");
	rc = buf[0] ? 0 : 1;
out:
	close(fd);
	return rc;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct stream_count {
	long replies, moved;
	char first[64];
};

/* Count the replies waiting on fd (connected: only ADDR:PORT's reach it) until `until` ns. */
static void stream_drain(int fd, uint64_t until, struct stream_count *c)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char buf[512];
	uint64_t now;
	ssize_t n;

	while ((now = mono_ns()) < until) {
		if (poll(&pfd, 1, (int)((until - now + 999999) / 1000000)) <= 0)
			continue;
		while ((n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) >= 0) {
			buf[n] = '\0';
			buf[strcspn(buf, "\r\n")] = '\0';
			buf[sizeof(c->first) - 1] = '\0'; /* a backend's name is short */
			if (!c->replies++)
				memcpy(c->first, buf, sizeof(c->first));
			else if (strcmp(buf, c->first))
				c->moved++;
		}
	}
}

/* --stream-pps: one flow, COUNT requests at pps a second; 0 when all were answered. */
static int stream(const struct sockaddr_in *dst, int sport, long count, long pps, int timeout_ms)
{
	struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(sport)};
	struct stream_count c = {0};
	uint64_t t0;
	char req[64];
	long i, sent = 0;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
	    connect(fd, (const struct sockaddr *)dst, sizeof(*dst))) {
		perror("ag-testcli: stream socket");
		return 1;
	}
	t0 = mono_ns();
	for (i = 0; i < count; i++) {
		stream_drain(fd, t0 + (uint64_t)i * 1000000000ULL / (uint64_t)pps, &c);
		snprintf(req, sizeof(req), "stream %ld\n", i);
		if (send(fd, req, strlen(req), 0) >= 0)
			sent++;
	}
	stream_drain(fd, mono_ns() + (uint64_t)timeout_ms * 1000000ULL, &c);
	close(fd);
	printf("stream sent=%ld replies=%ld lost=%ld loss_pct=%.2f moved=%ld\n", count, c.replies,
	       count - c.replies, 100.0 * (double)(count - c.replies) / (double)count, c.moved);
	return sent == count && c.replies == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"sport-base", required_argument, NULL, 's'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"timestamps", no_argument, NULL, 'T'},
	    {"stream-pps", required_argument, NULL, 'p'},
	    {0},
	};
	struct sockaddr_in dst = {.sin_family = AF_INET};
	long count, i, sport_base = 0, timeout_ms = 2000, failed = 0, stream_pps = 0;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sport_base = ag_cli__num(optarg, 1, 65535);
			break;
		case 't':
			timeout_ms = ag_cli__num(optarg, 1, 60000);
			break;
		case 'T':
			timestamps = 1;
			break;
		case 'p':
			stream_pps = ag_cli__num(optarg, 1, 1000000);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 3)
		usage();
	if (inet_pton(AF_INET, argv[optind], &dst.sin_addr) != 1) {
		fprintf(stderr, "ag-testcli: bad IPv4 address '%s'\n", argv[optind]);
		return 2;
	}
	dst.sin_port = htons(ag_cli__num(argv[optind + 1], 1, 65535));
	count = ag_cli__num(argv[optind + 2], 1, 1000000);
	if (sport_base && sport_base + count - 1 > 65535) {
		fprintf(stderr, "ag-testcli: --sport-base %ld + COUNT runs past port 65535\n",
			sport_base);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (stream_pps)
		return stream(&dst, (int)sport_base, count, stream_pps, (int)timeout_ms);
	for (i = 0; i < count; i++)
		failed += one_request(&dst, sport_base ? sport_base + i : 0, i, timeout_ms);
	fprintf(stderr, "ag-testcli: %ld requests, %ld replied, %ld failed\n", count,
		count - failed, failed);
	return failed ? 1 : 0;
}
