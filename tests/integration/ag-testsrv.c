// SPDX-License-Identifier: BSD-3-Clause
/*
 * ag-testsrv: the lab's backend server. It tells the client who answered, so a
 * test can see which backend the fast path chose:
 *   --http PORT   HTTP/1.0: every request gets "<name>" (no newline) and the
 *                 connection closes
 *                 (so one curl with N URLs makes N TCP connections)
 *   --udp PORT    every datagram gets "<name>\n" back
 *   --bulk PORT --bulk-file F   every connection gets the bytes of F, then EOF
 *   --echo PORT   "<name>\n" first, then every byte received is sent back, until
 *                 the client closes (long-lived connections for failover tests)
 * Each TCP connection is served by a forked child, so a slow or stuck client
 * never holds up the others. Prints "ready" on stdout once every socket listens.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

enum { SRV_HTTP, SRV_BULK, SRV_ECHO, SRV_UDP, SRV_N };

static const char *name;
static const char *bulk_file;

static int listen_on(int type, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1, fd;

	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto err;
	if (type == SOCK_STREAM && listen(fd, 1024) < 0)
		goto err;
	return fd;
err:
	one = -errno;
	close(fd);
	return one;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Close gracefully: send FIN, then wait for the peer's FIN so close() sends no RST. */
static void finish(int fd)
{
	char buf[4096];

	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

static void serve_http(int fd)
{
	char req[8192], resp[512];
	size_t got = 0;
	int len;

	/* Read the request head; the answer does not depend on it. */
	while (got < sizeof(req) - 1) {
		ssize_t n = read(fd, req + got, sizeof(req) - 1 - got);

		if (n <= 0)
			break;
		got += n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	if (got == 0) {
		close(fd);
		return;
	}
	len = snprintf(resp, sizeof(resp),
		       "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		       "Connection: close\r\n\r\n%s",
		       strlen(name), name);
	write_all(fd, resp, len);
	finish(fd);
}

static void serve_bulk(int fd)
{
	struct stat st;
	off_t off = 0;
	int in;

	in = open(bulk_file, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0) {
		perror(bulk_file);
		close(fd);
		return;
	}
	while (off < st.st_size) {
		ssize_t n = sendfile(fd, in, &off, st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
	}
	close(in);
	finish(fd);
}

static void serve_echo(int fd)
{
	char buf[4096];
	ssize_t n;

	/* Long-lived: a quiet client is normal here, only its close ends it. */
	struct timeval tv = {0};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(buf, sizeof(buf), "%s\n", name);
	if (write_all(fd, buf, strlen(buf)))
		goto out;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write_all(fd, buf, n))
			break;
out:
	close(fd);
}

static void serve_udp(int fd)
{
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	char buf[2048], resp[256];
	int len;

	if (recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen) < 0)
		return;
	len = snprintf(resp, sizeof(resp), "%s\n", name);
	sendto(fd, resp, len, 0, (struct sockaddr *)&from, flen);
}

static void usage(void)
{
	fprintf(stderr, "usage: ag-testsrv --name NAME [--http PORT] [--udp PORT] "
			"[--bulk PORT --bulk-file FILE] [--echo PORT]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"http", required_argument, NULL, 'h'},
	    {"udp", required_argument, NULL, 'u'},
	    {"bulk", required_argument, NULL, 'b'},
	    {"bulk-file", required_argument, NULL, 'f'},
	    {"echo", required_argument, NULL, 'e'},
	    {0},
	};
	int port[SRV_N] = {0};
	struct pollfd pfd[SRV_N];
	int c, i, np = 0, kind[SRV_N];

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'h':
			port[SRV_HTTP] = atoi(optarg);
			break;
		case 'u':
			port[SRV_UDP] = atoi(optarg);
			break;
		case 'b':
			port[SRV_BULK] = atoi(optarg);
			break;
		case 'f':
			bulk_file = optarg;
			break;
		case 'e':
			port[SRV_ECHO] = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (!name || optind != argc || (port[SRV_BULK] && !bulk_file))
		usage();
	for (i = 0; i < SRV_N; i++) {
		if (port[i] < 0 || port[i] > 65535)
			usage();
		if (!port[i])
			continue;
		pfd[np].fd = listen_on(i == SRV_UDP ? SOCK_DGRAM : SOCK_STREAM, port[i]);
		if (pfd[np].fd < 0) {
			fprintf(stderr, "ag-testsrv: port %d: %s\n", port[i],
				strerror(-pfd[np].fd));
			return 1;
		}
		pfd[np].events = POLLIN;
		kind[np++] = i;
	}
	if (!np)
		usage();
	/* Children are never waited for: let the kernel reap them. */
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	printf("ready\n");
	fflush(stdout);

	for (;;) {
		if (poll(pfd, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		for (i = 0; i < np; i++) {
			struct timeval tv = {.tv_sec = 10};
			pid_t pid;
			int fd;

			if (!(pfd[i].revents & POLLIN))
				continue;
			if (kind[i] == SRV_UDP) {
				serve_udp(pfd[i].fd);
				continue;
			}
			fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			/* A client that stops reading or sending cannot pin a child forever. */
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			pid = fork();
			if (pid == 0) {
				for (c = 0; c < np; c++)
					close(pfd[c].fd);
				if (kind[i] == SRV_HTTP)
					serve_http(fd);
				else if (kind[i] == SRV_ECHO)
					serve_echo(fd);
				else
					serve_bulk(fd);
				_exit(0);
			}
			if (pid < 0)
				perror("fork");
			close(fd);
		}
	}
}
