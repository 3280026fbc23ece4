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
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: ag-testcli ADDR PORT COUNT [--sport-base N] [--timeout-ms T] [--timestamps]\n");
	exit(2);
}

static long num(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "ag-testcli: bad number '%s' (%ld-%ld)\n", s, min, max);
		exit(2);
	}
	return v;
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"sport-base", required_argument, NULL, 's'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"timestamps", no_argument, NULL, 'T'},
	    {0},
	};
	struct sockaddr_in dst = {.sin_family = AF_INET};
	long count, i, sport_base = 0, timeout_ms = 2000, failed = 0;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sport_base = num(optarg, 1, 65535);
			break;
		case 't':
			timeout_ms = num(optarg, 1, 60000);
			break;
		case 'T':
			timestamps = 1;
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
	dst.sin_port = htons(num(argv[optind + 1], 1, 65535));
	count = num(argv[optind + 2], 1, 1000000);
	if (sport_base && sport_base + count - 1 > 65535) {
		fprintf(stderr, "ag-testcli: --sport-base %ld + COUNT runs past port 65535\n",
			sport_base);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < count; i++)
		failed += one_request(&dst, sport_base ? sport_base + i : 0, i, timeout_ms);
	fprintf(stderr, "ag-testcli: %ld requests, %ld replied, %ld failed\n", count,
		count - failed, failed);
	return failed ? 1 : 0;
}
