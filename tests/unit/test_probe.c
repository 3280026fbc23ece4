/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The probe engine against real sockets on 127.0.0.1: TCP listeners, a closed
 * port, HTTP servers answering 200, 503, nothing or garbage, UDP responders,
 * 2000 targets at once and a capped number of sockets.
 *
 * The loop runs until a condition holds or a generous deadline passes; the
 * assertions are about outcomes (states, reasons, exact probe counts at each
 * decision), never about how long anything took.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "probe.h"

#define LOOPBACK htonl(INADDR_LOOPBACK)
#define MS	 1000000ull

/* ------------------------------------------------------------------------ */
/* servers, each in its own thread                                           */

enum srv_kind {
	SRV_ACCEPT,	 /* TCP: accept and close */
	SRV_HTTP,	 /* read a request, answer `status`, close */
	SRV_RAW,	 /* TCP: send `raw`, read the request, close */
	SRV_RAW_RST,	 /* TCP: send `raw`, close with a RST */
	SRV_UDP_ECHO,	 /* reply "pong" to any datagram */
	SRV_UDP_GARBAGE, /* reply something else, longer than expect */
};

struct server {
	enum srv_kind kind;
	int fd;
	uint16_t port;
	pthread_t th;
	bool running;
	atomic_bool stop;
	atomic_int status;
	atomic_ulong served;
	const char *raw;
	char first_request[512];
	atomic_bool have_request;
};

static int bound_socket(int type, uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = LOOPBACK};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static void http_serve(struct server *srv, int c)
{
	char req[2048], resp[256];
	size_t got = 0;
	int n;

	/* Read up to the end of the request head (bounded wait). */
	while (got < sizeof(req) - 1) {
		struct pollfd pfd = {.fd = c, .events = POLLIN};
		ssize_t r;

		if (poll(&pfd, 1, 1000) <= 0)
			return;
		r = recv(c, req + got, sizeof(req) - 1 - got, 0);
		if (r <= 0)
			return;
		got += (size_t)r;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	if (!atomic_load(&srv->have_request)) {
		snprintf(srv->first_request, sizeof(srv->first_request), "%.*s",
			 (int)sizeof(srv->first_request) - 1, req);
		atomic_store(&srv->have_request, true);
	}
	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 %d Test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
		     atomic_load(&srv->status));
	send(c, resp, (size_t)n, MSG_NOSIGNAL);
}

static void raw_serve(struct server *srv, int c)
{
	struct pollfd pfd = {.fd = c, .events = POLLIN};
	char req[2048];

	send(c, srv->raw, strlen(srv->raw), MSG_NOSIGNAL);
	if (srv->kind == SRV_RAW_RST) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		return;
	}
	/* Closing with the request unread would send a RST rather than a FIN. */
	if (poll(&pfd, 1, 1000) > 0)
		recv(c, req, sizeof(req), MSG_DONTWAIT);
}

static void *server_main(void *arg)
{
	struct server *srv = arg;
	bool udp = srv->kind == SRV_UDP_ECHO || srv->kind == SRV_UDP_GARBAGE;

	while (!atomic_load(&srv->stop)) {
		struct pollfd pfd = {.fd = srv->fd, .events = POLLIN};
		int c;

		if (poll(&pfd, 1, 20) <= 0)
			continue;
		if (udp) {
			struct sockaddr_in from;
			socklen_t len = sizeof(from);
			char buf[256];
			ssize_t n = recvfrom(srv->fd, buf, sizeof(buf), MSG_DONTWAIT,
					     (struct sockaddr *)&from, &len);
			const char *reply = srv->kind == SRV_UDP_ECHO
						? "pong from test"
						: "garbage, not the expected reply";

			if (n < 0)
				continue;
			sendto(srv->fd, reply, strlen(reply), 0, (struct sockaddr *)&from, len);
			atomic_fetch_add(&srv->served, 1);
			continue;
		}
		c = accept4(srv->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		if (srv->kind == SRV_HTTP)
			http_serve(srv, c);
		else if (srv->kind == SRV_RAW || srv->kind == SRV_RAW_RST)
			raw_serve(srv, c);
		atomic_fetch_add(&srv->served, 1);
		close(c);
	}
	return NULL;
}

static int server_start(struct server *srv, enum srv_kind kind)
{
	bool udp = kind == SRV_UDP_ECHO || kind == SRV_UDP_GARBAGE;

	memset(srv, 0, sizeof(*srv));
	srv->kind = kind;
	atomic_store(&srv->status, 200);
	srv->fd = bound_socket(udp ? SOCK_DGRAM : SOCK_STREAM, &srv->port);
	if (srv->fd < 0)
		return -1;
	if (!udp && listen(srv->fd, 4096))
		return -1;
	if (pthread_create(&srv->th, NULL, server_main, srv))
		return -1;
	srv->running = true;
	return 0;
}

static void server_stop(struct server *srv)
{
	if (srv->running) {
		atomic_store(&srv->stop, true);
		pthread_join(srv->th, NULL);
		srv->running = false;
	}
	if (srv->fd >= 0)
		close(srv->fd);
	srv->fd = -1;
}

/* ------------------------------------------------------------------------ */
/* the engine under test, with what its callbacks saw                        */

#define MAX_EVENTS 64

struct change {
	uint32_t id;
	bool up;
	char reason[96];
	uint64_t decided_ns;
	uint64_t counts[AG_PROBE__MAX]; /* the target's counters when it was decided */
};

static struct ag_loop loop;
static struct ag_prober *prober;
static struct change changes[MAX_EVENTS];
static unsigned int n_changes;

static void on_change(void *ctx, uint32_t id, bool up, const char *reason, uint64_t decided_ns)
{
	struct change *c;
	int r;

	CU_ASSERT_PTR_EQUAL(ctx, &changes);
	/* The state is already the new one when the callback runs. */
	CU_ASSERT_EQUAL(ag_prober__is_up(prober, id), up);
	if (n_changes >= MAX_EVENTS)
		return;
	c = &changes[n_changes++];
	c->id = id;
	c->up = up;
	c->decided_ns = decided_ns;
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
	for (r = 0; r < AG_PROBE__MAX; r++)
		c->counts[r] = ag_prober__count(prober, id, r);
}

static int setup(void)
{
	n_changes = 0;
	if (ag_loop__init(&loop))
		return -1;
	prober = ag_prober__new(&loop, on_change, &changes);
	return prober ? 0 : -1;
}

static void teardown(void)
{
	ag_prober__free(prober);
	prober = NULL;
	ag_loop__fini(&loop);
}

/* Run the loop until cond(ctx) holds (checked every 2 ms) or max_ms pass. */
struct waiter {
	struct ag_timer tick;
	bool (*cond)(void *ctx);
	void *ctx;
	uint64_t deadline;
	bool met;
};

static void waiter_tick(struct ag_timer *t)
{
	struct waiter *w = t->data;

	if (w->cond(w->ctx)) {
		w->met = true;
		ag_loop__stop(&loop);
	} else if (ag_now_ns() >= w->deadline) {
		ag_loop__stop(&loop);
	}
}

static bool run_until(bool (*cond)(void *ctx), void *ctx, unsigned int max_ms)
{
	struct waiter w = {.cond = cond, .ctx = ctx, .deadline = ag_now_ns() + max_ms * MS};

	if (cond(ctx))
		return true;
	CU_ASSERT_EQUAL_FATAL(ag_timer__init(&loop, &w.tick, waiter_tick, &w), 0);
	CU_ASSERT_EQUAL_FATAL(ag_timer__arm(&w.tick, 2 * MS, 2 * MS), 0);
	loop.stop = false;
	CU_ASSERT_EQUAL(ag_loop__run(&loop), 0);
	loop.stop = false;
	ag_timer__fini(&loop, &w.tick);
	return w.met;
}

struct count_goal {
	uint32_t id;
	enum ag_probe_result r;
	uint64_t n;
};

static bool count_reached(void *ctx)
{
	const struct count_goal *g = ctx;

	return ag_prober__count(prober, g->id, g->r) >= g->n;
}

static bool wait_count(uint32_t id, enum ag_probe_result r, uint64_t n, unsigned int max_ms)
{
	struct count_goal g = {id, r, n};

	return run_until(count_reached, &g, max_ms);
}

static bool changes_reached(void *ctx)
{
	return n_changes >= *(unsigned int *)ctx;
}

static bool wait_changes(unsigned int n, unsigned int max_ms)
{
	return run_until(changes_reached, &n, max_ms);
}

static struct ag_cfg_health health(enum ag_hc_proto proto, uint8_t rise, uint8_t fall)
{
	struct ag_cfg_health hc = {
	    .proto = proto,
	    .status_min = 200,
	    .status_max = 399,
	    .interval_ms = 100,
	    .timeout_ms = 80,
	    .healthy_threshold = rise,
	    .unhealthy_threshold = fall,
	};

	return hc;
}

static struct ag_probe_target target(uint32_t id, uint16_t port, const struct ag_cfg_health *hc)
{
	struct ag_probe_target t = {
	    .id = id,
	    .addr = LOOPBACK,
	    .port = port,
	    .hc = hc,
	    .label = "test 127.0.0.1",
	};

	return t;
}

static uint64_t failures(uint32_t id)
{
	uint64_t n = 0;
	int r;

	for (r = AG_PROBE_OK + 1; r < AG_PROBE__MAX; r++)
		n += ag_prober__count(prober, id, r);
	return n;
}

/* ------------------------------------------------------------------------ */

static void test_tcp_up(void)
{
	struct ag_cfg_health hc = health(AG_HC_TCP, 2, 2);
	struct server srv;
	struct ag_probe_target t;
	uint64_t s[AG_PROBE_RTT_SAMPLES], srtt = 0, sorted[AG_PROBE_RTT_SAMPLES], v;
	unsigned int n, i, j;

	CU_ASSERT_EQUAL_FATAL(server_start(&srv, SRV_ACCEPT), 0);
	t = target(1, srv.port, &hc);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, &t, 1), 0);
	CU_ASSERT(ag_prober__is_up(prober, 1)); /* up from the start */
	CU_ASSERT_EQUAL(ag_prober__srtt_ns(prober, 1), 0);
	CU_ASSERT(wait_count(1, AG_PROBE_OK, 5, 5000));
	CU_ASSERT(ag_prober__is_up(prober, 1));
	CU_ASSERT_EQUAL(failures(1), 0);
	CU_ASSERT_EQUAL(n_changes, 0);
	CU_ASSERT_STRING_EQUAL(ag_prober__last_reason(prober, 1), "connected");

	/* Every success left an RTT sample; SRTT is RFC 6298's recursion over them. */
	n = ag_prober__rtt_samples(prober, 1, s);
	CU_ASSERT_EQUAL(n, ag_prober__count(prober, 1, AG_PROBE_OK));
	CU_ASSERT_FATAL(n >= 5 && n <= AG_PROBE_RTT_SAMPLES);
	for (i = n; i-- > 0;) { /* oldest first */
		CU_ASSERT(s[i] > 0);
		srtt = i == n - 1 ? s[i] : (7 * srtt + s[i]) / 8;
	}
	CU_ASSERT(srtt > 0);
	CU_ASSERT_EQUAL(ag_prober__srtt_ns(prober, 1), srtt);
	memcpy(sorted, s, sizeof(s));
	for (i = 1; i < n; i++) {
		v = sorted[i];
		for (j = i; j && sorted[j - 1] > v; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = v;
	}
	CU_ASSERT_EQUAL(ag_prober__rtt_median_ns(prober, 1),
			n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2);
	CU_ASSERT(atomic_load(&srv.served) >= 1);
	server_stop(&srv);
}

static void test_refused_thresholds(void)
{
	struct ag_cfg_health hc = health(AG_HC_TCP, 2, 3);
	struct ag_probe_target t;
	uint16_t port;
	int fd = bound_socket(SOCK_STREAM, &port); /* bound, not listening: RST */

	CU_ASSERT_FATAL(fd >= 0);
	t = target(7, port, &hc);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, &t, 1), 0);

	/* Two refusals: still up. The third decides. */
	CU_ASSERT(wait_count(7, AG_PROBE_REFUSED, 2, 5000));
	CU_ASSERT(ag_prober__is_up(prober, 7));
	CU_ASSERT_EQUAL(n_changes, 0);
	CU_ASSERT(wait_changes(1, 5000));
	CU_ASSERT_EQUAL_FATAL(n_changes, 1);
	CU_ASSERT_EQUAL(changes[0].id, 7);
	CU_ASSERT_FALSE(changes[0].up);
	CU_ASSERT_STRING_EQUAL(changes[0].reason, "connection refused");
	CU_ASSERT_EQUAL(changes[0].counts[AG_PROBE_REFUSED], 3);
	CU_ASSERT_EQUAL(changes[0].counts[AG_PROBE_OK], 0);
	CU_ASSERT(changes[0].decided_ns > 0 && changes[0].decided_ns <= ag_now_ns());
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 7));
	CU_ASSERT_EQUAL(ag_prober__srtt_ns(prober, 7), 0);

	/* The port starts listening: up again after exactly two successes. */
	CU_ASSERT_EQUAL_FATAL(listen(fd, 128), 0);
	CU_ASSERT(wait_count(7, AG_PROBE_OK, 1, 5000));
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 7));
	CU_ASSERT(wait_changes(2, 5000));
	CU_ASSERT_EQUAL_FATAL(n_changes, 2);
	CU_ASSERT(changes[1].up);
	CU_ASSERT_STRING_EQUAL(changes[1].reason, "connected");
	CU_ASSERT_EQUAL(changes[1].counts[AG_PROBE_OK], 2);
	CU_ASSERT(changes[1].decided_ns > changes[0].decided_ns);
	CU_ASSERT(ag_prober__srtt_ns(prober, 7) > 0);
	close(fd);
}

static void test_http_status(void)
{
	struct ag_cfg_health hc = health(AG_HC_HTTP, 2, 2);
	struct server srv;
	struct ag_probe_target t;
	char host[64];
	uint64_t bad;

	hc.path = "/health";
	CU_ASSERT_EQUAL_FATAL(server_start(&srv, SRV_HTTP), 0);
	t = target(3, srv.port, &hc);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, &t, 1), 0);
	CU_ASSERT(wait_count(3, AG_PROBE_OK, 2, 5000));
	CU_ASSERT(ag_prober__is_up(prober, 3));
	CU_ASSERT_STRING_EQUAL(ag_prober__last_reason(prober, 3), "status 200");
	CU_ASSERT(ag_prober__srtt_ns(prober, 3) > 0);

	/* What went over the wire. */
	CU_ASSERT_FATAL(atomic_load(&srv.have_request));
	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", srv.port);
	CU_ASSERT(!strncmp(srv.first_request, "GET /health HTTP/1.1\r\n", 22));
	CU_ASSERT_PTR_NOT_NULL(strstr(srv.first_request, host));
	CU_ASSERT_PTR_NOT_NULL(strstr(srv.first_request, "\r\nConnection: close\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(srv.first_request, "\r\nUser-Agent: anygate-probe/1\r\n"));

	/* 503: down after exactly two of them. */
	atomic_store(&srv.status, 503);
	CU_ASSERT(wait_changes(1, 5000));
	CU_ASSERT_EQUAL_FATAL(n_changes, 1);
	CU_ASSERT_FALSE(changes[0].up);
	CU_ASSERT_STRING_EQUAL(changes[0].reason, "status 503");
	CU_ASSERT_EQUAL(changes[0].counts[AG_PROBE_BAD_STATUS], 2);
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 3));

	/* 302 is within the default 200-399: up after two. */
	bad = ag_prober__count(prober, 3, AG_PROBE_BAD_STATUS);
	atomic_store(&srv.status, 302);
	CU_ASSERT(wait_changes(2, 5000));
	CU_ASSERT_EQUAL_FATAL(n_changes, 2);
	CU_ASSERT(changes[1].up);
	CU_ASSERT_STRING_EQUAL(changes[1].reason, "status 302");
	CU_ASSERT(changes[1].counts[AG_PROBE_BAD_STATUS] <= bad + 1);
	server_stop(&srv);
}

static void test_http_host_and_range(void)
{
	struct ag_cfg_health hc = health(AG_HC_HTTP, 1, 1);
	struct server srv;
	struct ag_probe_target t;

	/* A configured Host is sent as is; a narrow range makes 200 a bad status. */
	hc.host = "svc.example";
	hc.status_min = 204;
	hc.status_max = 204;
	CU_ASSERT_EQUAL_FATAL(server_start(&srv, SRV_HTTP), 0);
	t = target(4, srv.port, &hc);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, &t, 1), 0);
	CU_ASSERT(wait_changes(1, 5000));
	CU_ASSERT_EQUAL_FATAL(n_changes, 1);
	CU_ASSERT_FALSE(changes[0].up);
	CU_ASSERT_STRING_EQUAL(changes[0].reason, "status 200");
	CU_ASSERT_EQUAL(changes[0].counts[AG_PROBE_BAD_STATUS], 1);
	CU_ASSERT_FATAL(atomic_load(&srv.have_request));
	CU_ASSERT(!strncmp(srv.first_request, "GET / HTTP/1.1\r\n", 16));
	CU_ASSERT_PTR_NOT_NULL(strstr(srv.first_request, "\r\nHost: svc.example\r\n"));
	server_stop(&srv);
}

static void test_http_silent(void)
{
	struct ag_cfg_health hc = health(AG_HC_HTTP, 2, 2);
	struct ag_probe_target t;
	uint16_t port;
	int fd = bound_socket(SOCK_STREAM, &port);

	/* Listening, never accepting: the kernel completes the handshake, nobody answers. */
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(listen(fd, 4096), 0);
	hc.timeout_ms = 50;
	t = target(5, port, &hc);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, &t, 1), 0);
	CU_ASSERT(wait_changes(1, 5000));
	CU_ASSERT_EQUAL_FATAL(n_changes, 1);
	CU_ASSERT_FALSE(changes[0].up);
	CU_ASSERT_STRING_EQUAL(changes[0].reason, "timeout after 50 ms waiting for the response");
	CU_ASSERT_EQUAL(changes[0].counts[AG_PROBE_TIMEOUT], 2);
	CU_ASSERT_EQUAL(changes[0].counts[AG_PROBE_OK], 0);
	close(fd);
}

static void test_http_garbage(void)
{
	static const char *const want[] = {
	    "bad reply: malformed status line",
	    "bad reply: truncated body",
	    "connection reset",
	};
	static const enum ag_probe_result want_res[] = {
	    AG_PROBE_BAD_REPLY,
	    AG_PROBE_BAD_REPLY,
	    AG_PROBE_ERROR,
	};
	struct ag_cfg_health hc = health(AG_HC_HTTP, 2, 2);
	struct server srv[3];
	struct ag_probe_target t[3];
	unsigned int i;

	CU_ASSERT_EQUAL_FATAL(server_start(&srv[0], SRV_RAW), 0);
	srv[0].raw = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
	CU_ASSERT_EQUAL_FATAL(server_start(&srv[1], SRV_RAW), 0);
	srv[1].raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this";
	CU_ASSERT_EQUAL_FATAL(server_start(&srv[2], SRV_RAW_RST), 0);
	srv[2].raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this";
	for (i = 0; i < 3; i++)
		t[i] = target(10 + i, srv[i].port, &hc);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, t, 3), 0);
	CU_ASSERT(wait_changes(3, 5000));
	CU_ASSERT_EQUAL_FATAL(n_changes, 3);
	for (i = 0; i < 3; i++) {
		const struct change *c = &changes[i];

		CU_ASSERT_FATAL(c->id >= 10 && c->id < 13);
		CU_ASSERT_FALSE(c->up);
		CU_ASSERT_EQUAL(c->counts[want_res[c->id - 10]], 2);
		CU_ASSERT_EQUAL(c->counts[AG_PROBE_OK], 0);
		CU_ASSERT_STRING_EQUAL(c->reason, want[c->id - 10]);
	}
	CU_ASSERT(changes[0].id != changes[1].id && changes[1].id != changes[2].id &&
		  changes[0].id != changes[2].id);
	for (i = 0; i < 3; i++)
		server_stop(&srv[i]);
}

static void test_udp_echo(void)
{
	struct ag_cfg_health hc = health(AG_HC_UDP, 2, 2);
	struct server srv;
	struct ag_probe_target t;

	hc.send = "ping";
	hc.expect = "pong";
	CU_ASSERT_EQUAL_FATAL(server_start(&srv, SRV_UDP_ECHO), 0);
	t = target(20, srv.port, &hc);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, &t, 1), 0);
	CU_ASSERT(wait_count(20, AG_PROBE_OK, 3, 5000));
	CU_ASSERT(ag_prober__is_up(prober, 20));
	CU_ASSERT_EQUAL(failures(20), 0);
	CU_ASSERT_EQUAL(n_changes, 0);
	CU_ASSERT_STRING_EQUAL(ag_prober__last_reason(prober, 20), "reply ok");
	CU_ASSERT(ag_prober__srtt_ns(prober, 20) > 0);
	server_stop(&srv);
}

static void test_udp_mismatch(void)
{
	struct ag_cfg_health hc = health(AG_HC_UDP, 2, 2);
	struct server srv;
	struct ag_probe_target t;

	hc.send = "ping";
	hc.expect = "pong";
	CU_ASSERT_EQUAL_FATAL(server_start(&srv, SRV_UDP_GARBAGE), 0);
	t = target(21, srv.port, &hc);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, &t, 1), 0);
	CU_ASSERT(wait_changes(1, 5000));
	CU_ASSERT_EQUAL_FATAL(n_changes, 1);
	CU_ASSERT_FALSE(changes[0].up);
	CU_ASSERT_STRING_EQUAL(changes[0].reason, "reply mismatch");
	CU_ASSERT_EQUAL(changes[0].counts[AG_PROBE_BAD_REPLY], 2);
	CU_ASSERT_EQUAL(ag_prober__srtt_ns(prober, 21), 0);
	server_stop(&srv);
}

static void test_udp_refused(void)
{
	struct ag_cfg_health hc = health(AG_HC_UDP, 2, 2);
	struct ag_probe_target t;
	uint16_t port;
	int fd = bound_socket(SOCK_DGRAM, &port);

	/* A port nobody holds: the kernel answers ICMP port unreachable. */
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	hc.send = "ping";
	t = target(22, port, &hc);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, &t, 1), 0);
	CU_ASSERT(wait_changes(1, 5000));
	CU_ASSERT_EQUAL_FATAL(n_changes, 1);
	CU_ASSERT_FALSE(changes[0].up);
	CU_ASSERT_STRING_EQUAL(changes[0].reason, "connection refused");
	CU_ASSERT_EQUAL(changes[0].counts[AG_PROBE_REFUSED], 2);
}

static void test_reload(void)
{
	struct ag_cfg_health hc = health(AG_HC_TCP, 2, 2), hc_b2 = hc, hc_copy = hc;
	struct ag_cfg_health bad_http = health(AG_HC_HTTP, 2, 2);
	struct ag_probe_target t[3];
	struct server srv;
	uint64_t refused, ok_c;
	uint16_t port;
	int fd = bound_socket(SOCK_STREAM, &port);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(server_start(&srv, SRV_ACCEPT), 0);
	t[0] = target(100, port, &hc);	   /* A: refused, goes down */
	t[1] = target(200, srv.port, &hc); /* B: up */
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, t, 2), 0);
	CU_ASSERT(wait_changes(1, 5000));
	CU_ASSERT(wait_count(200, AG_PROBE_OK, 2, 5000));
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 100));
	CU_ASSERT(ag_prober__srtt_ns(prober, 200) > 0);

	/*
	 * Reload: A unchanged (its settings in a different struct, a new label),
	 * B with another interval (a different check: starts afresh), C new.
	 */
	hc_b2.interval_ms = 200;
	t[0] = target(100, port, &hc_copy);
	t[0].label = "renamed";
	t[1] = target(200, srv.port, &hc_b2);
	t[2] = target(300, srv.port, &hc);
	refused = ag_prober__count(prober, 100, AG_PROBE_REFUSED);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, t, 3), 0);
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 100));
	CU_ASSERT_EQUAL(ag_prober__count(prober, 100, AG_PROBE_REFUSED), refused);
	CU_ASSERT(ag_prober__is_up(prober, 200));
	CU_ASSERT_EQUAL(ag_prober__count(prober, 200, AG_PROBE_OK), 0);
	CU_ASSERT_EQUAL(ag_prober__srtt_ns(prober, 200), 0);
	CU_ASSERT(ag_prober__is_up(prober, 300));
	CU_ASSERT_EQUAL(ag_prober__count(prober, 300, AG_PROBE_OK), 0);

	/* A stays down (no new change: its failure streak carried over), C is probed. */
	CU_ASSERT(wait_count(300, AG_PROBE_OK, 2, 5000));
	CU_ASSERT(wait_count(100, AG_PROBE_REFUSED, refused + 2, 5000));
	CU_ASSERT_EQUAL(n_changes, 1);
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 100));

	/* Refused sets leave the running one as it was. */
	ok_c = ag_prober__count(prober, 300, AG_PROBE_OK);
	t[1] = target(100, srv.port, &hc);
	CU_ASSERT_EQUAL(ag_prober__set_targets(prober, t, 2), -EINVAL); /* id 100 twice */
	bad_http.path = "/a b";
	t[1] = target(400, srv.port, &bad_http);
	CU_ASSERT_EQUAL(ag_prober__set_targets(prober, t, 2), -EINVAL);
	t[1] = target(400, srv.port, NULL);
	CU_ASSERT_EQUAL(ag_prober__set_targets(prober, t, 2), -EINVAL);
	t[1] = target(400, 0, &hc);
	CU_ASSERT_EQUAL(ag_prober__set_targets(prober, t, 2), -EINVAL);
	CU_ASSERT(ag_prober__count(prober, 300, AG_PROBE_OK) >= ok_c);
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 100));
	CU_ASSERT(ag_prober__is_up(prober, 300));
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 400));

	/* Only C left: the others are gone from every query. */
	t[0] = target(300, srv.port, &hc);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, t, 1), 0);
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 100));
	CU_ASSERT_EQUAL(ag_prober__count(prober, 100, AG_PROBE_REFUSED), 0);
	CU_ASSERT_EQUAL(ag_prober__count(prober, 200, AG_PROBE_OK), 0);
	CU_ASSERT(ag_prober__count(prober, 300, AG_PROBE_OK) >= ok_c);
	CU_ASSERT(wait_count(300, AG_PROBE_OK, ok_c + 2, 5000));
	CU_ASSERT_EQUAL(ag_prober__set_targets(prober, NULL, 0), 0);
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 300));
	server_stop(&srv);
	close(fd);
}

/* 2000 targets: many ids per listening port. */
#define SPREAD_TARGETS	   2000
#define SPREAD_SERVERS	   5
#define SPREAD_INTERVAL_MS 100

struct spread_log {
	uint64_t base_ns;
	uint64_t *due_ns, *start_ns;
	unsigned int n, cap;
	uint64_t bad;
};

static void spread_result(void *ctx, const struct ag_probe_report *rep)
{
	struct spread_log *l = ctx;

	if (rep->result != AG_PROBE_OK)
		l->bad++;
	if (l->n < l->cap) {
		l->due_ns[l->n] = rep->due_ns;
		l->start_ns[l->n] = rep->start_ns;
		l->n++;
	}
}

static bool all_ok_twice(void *ctx)
{
	unsigned int id;

	for (id = 0; id < SPREAD_TARGETS; id++)
		if (ag_prober__count(prober, id, AG_PROBE_OK) < 2)
			return false;
	return true;
}

/* Most probes in one millisecond, over [from, to). */
static unsigned int max_per_ms(const uint64_t *ns, unsigned int n, uint64_t from, uint64_t to)
{
	unsigned int buckets = (unsigned int)((to - from) / MS) + 1, *count, i, max = 0;

	count = calloc(buckets, sizeof(*count));
	CU_ASSERT_PTR_NOT_NULL_FATAL(count);
	for (i = 0; i < n; i++) {
		if (ns[i] < from || ns[i] >= to)
			continue;
		if (++count[(ns[i] - from) / MS] > max)
			max = count[(ns[i] - from) / MS];
	}
	free(count);
	return max;
}

static void test_spread_2000(void)
{
	struct ag_cfg_health hc = health(AG_HC_TCP, 2, 2);
	struct server srv[SPREAD_SERVERS];
	struct ag_probe_target *t = calloc(SPREAD_TARGETS, sizeof(*t));
	struct spread_log l = {.cap = 8 * SPREAD_TARGETS};
	struct ag_prober_stats st;
	unsigned int i, max_due, max_start, in_window = 0;
	uint64_t from, to;

	l.due_ns = calloc(l.cap, sizeof(uint64_t));
	l.start_ns = calloc(l.cap, sizeof(uint64_t));
	CU_ASSERT_FATAL(t && l.due_ns && l.start_ns);
	for (i = 0; i < SPREAD_SERVERS; i++)
		CU_ASSERT_EQUAL_FATAL(server_start(&srv[i], SRV_ACCEPT), 0);
	hc.interval_ms = SPREAD_INTERVAL_MS;
	hc.timeout_ms = SPREAD_INTERVAL_MS;
	for (i = 0; i < SPREAD_TARGETS; i++)
		t[i] = target(i, srv[i % SPREAD_SERVERS].port, &hc);
	ag_prober__set_result_cb(prober, spread_result, &l);
	l.base_ns = ag_now_ns();
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, t, SPREAD_TARGETS), 0);
	CU_ASSERT(run_until(all_ok_twice, NULL, 30000));
	ag_prober__set_result_cb(prober, NULL, NULL);

	/* Everyone up, nothing failed, no state change. */
	for (i = 0; i < SPREAD_TARGETS; i++) {
		CU_ASSERT(ag_prober__is_up(prober, i));
		CU_ASSERT(ag_prober__count(prober, i, AG_PROBE_OK) >= 2);
	}
	CU_ASSERT_EQUAL(l.bad, 0);
	CU_ASSERT_EQUAL(n_changes, 0);

	/*
	 * The first interval, from the earliest due time (id 0's phase is 0):
	 * every target is scheduled exactly once in it.
	 */
	from = UINT64_MAX;
	for (i = 0; i < l.n; i++)
		if (l.due_ns[i] < from)
			from = l.due_ns[i];
	CU_ASSERT(from >= l.base_ns);
	to = from + SPREAD_INTERVAL_MS * MS;
	for (i = 0; i < l.n; i++)
		in_window += l.due_ns[i] >= from && l.due_ns[i] < to;
	CU_ASSERT_EQUAL(in_window, SPREAD_TARGETS);
	max_due = max_per_ms(l.due_ns, l.n, from, to);
	max_start = max_per_ms(l.start_ns, l.n, from, to);
	ag_prober__stats(prober, &st);
	printf(
	    "\n    %u targets, interval %u ms: %u probes; most scheduled in one ms: %u (%.2f%%), "
	    "most started in one ms: %u (%.2f%%); peak sockets in flight %u\n    ",
	    SPREAD_TARGETS, SPREAD_INTERVAL_MS, l.n, max_due, 100.0 * max_due / SPREAD_TARGETS,
	    max_start, 100.0 * max_start / SPREAD_TARGETS, st.peak_inflight);
	/* The schedule is exact: at most 2% in any millisecond (the mean is 1%). */
	CU_ASSERT(max_due <= SPREAD_TARGETS / 50);
	/* Actual starts follow the schedule unless the machine stalls: a loose bound. */
	CU_ASSERT(max_start <= SPREAD_TARGETS / 10);
	for (i = 0; i < SPREAD_SERVERS; i++)
		server_stop(&srv[i]);
	free(l.due_ns);
	free(l.start_ns);
	free(t);
}

static bool all_timed_out(void *ctx)
{
	unsigned int id, n = *(unsigned int *)ctx;

	for (id = 0; id < n; id++)
		if (ag_prober__count(prober, id, AG_PROBE_TIMEOUT) < 1)
			return false;
	return true;
}

static void test_inflight_cap(void)
{
	struct ag_cfg_health hc = health(AG_HC_HTTP, 1, 1);
	struct ag_probe_target t[12];
	struct ag_prober_stats st;
	unsigned int i, n = 12;
	uint16_t port;
	int fd = bound_socket(SOCK_STREAM, &port);

	/* Silent server: each probe holds its socket for the whole timeout. */
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(listen(fd, 4096), 0);
	hc.timeout_ms = 60;
	for (i = 0; i < n; i++)
		t[i] = target(i, port, &hc);
	CU_ASSERT_EQUAL(ag_prober__set_max_inflight(prober, 0), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_max_inflight(prober, 3), 0);
	CU_ASSERT_EQUAL_FATAL(ag_prober__set_targets(prober, t, n), 0);
	CU_ASSERT(run_until(all_timed_out, &n, 10000));
	ag_prober__stats(prober, &st);
	CU_ASSERT_EQUAL(st.max_inflight, 3);
	CU_ASSERT(st.peak_inflight <= 3);
	CU_ASSERT(st.deferred > 0);
	CU_ASSERT(st.started >= n);
	CU_ASSERT_EQUAL(n_changes, n);
	close(fd);
}

static void test_api_edges(void)
{
	struct ag_cfg_health hc = health(AG_HC_TCP, 2, 2);
	struct ag_probe_target t = target(1, 9, &hc);
	uint64_t s[AG_PROBE_RTT_SAMPLES];

	CU_ASSERT_STRING_EQUAL(ag_probe_result__name(AG_PROBE_OK), "ok");
	CU_ASSERT_STRING_EQUAL(ag_probe_result__name(AG_PROBE_TIMEOUT), "timeout");
	CU_ASSERT_STRING_EQUAL(ag_probe_result__name(AG_PROBE_REFUSED), "refused");
	CU_ASSERT_STRING_EQUAL(ag_probe_result__name(AG_PROBE_UNREACHABLE), "unreachable");
	CU_ASSERT_STRING_EQUAL(ag_probe_result__name(AG_PROBE_BAD_STATUS), "bad_status");
	CU_ASSERT_STRING_EQUAL(ag_probe_result__name(AG_PROBE_BAD_REPLY), "bad_reply");
	CU_ASSERT_STRING_EQUAL(ag_probe_result__name(AG_PROBE_ERROR), "error");
	CU_ASSERT_STRING_EQUAL(ag_probe_result__name(AG_PROBE__MAX), "unknown");
	/* Unknown ids answer nothing. */
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 1));
	CU_ASSERT_EQUAL(ag_prober__srtt_ns(prober, 1), 0);
	CU_ASSERT_EQUAL(ag_prober__rtt_samples(prober, 1, s), 0);
	CU_ASSERT_EQUAL(ag_prober__rtt_median_ns(prober, 1), 0);
	CU_ASSERT_EQUAL(ag_prober__count(prober, 1, AG_PROBE_OK), 0);
	CU_ASSERT_STRING_EQUAL(ag_prober__last_reason(prober, 1), "");
	/* Settings that cannot be probed. */
	hc.interval_ms = 0;
	CU_ASSERT_EQUAL(ag_prober__set_targets(prober, &t, 1), -EINVAL);
	hc.interval_ms = 100;
	hc.unhealthy_threshold = 0;
	CU_ASSERT_EQUAL(ag_prober__set_targets(prober, &t, 1), -EINVAL);
	hc.unhealthy_threshold = 2;
	hc.proto = 7;
	CU_ASSERT_EQUAL(ag_prober__set_targets(prober, &t, 1), -EINVAL);
	CU_ASSERT_EQUAL(ag_prober__set_targets(prober, NULL, 1), -EINVAL);
	CU_ASSERT_FALSE(ag_prober__is_up(prober, 1));
	hc.proto = AG_HC_TCP;
	CU_ASSERT_EQUAL(ag_prober__set_targets(prober, &t, 1), 0);
	CU_ASSERT(ag_prober__is_up(prober, 1));
}

/* ------------------------------------------------------------------------ */

#define TEST(fn)                                                                                   \
	static void fn##_wrapped(void)                                                             \
	{                                                                                          \
		CU_ASSERT_EQUAL_FATAL(setup(), 0);                                                 \
		fn();                                                                              \
		teardown();                                                                        \
	}
TEST(test_tcp_up)
TEST(test_refused_thresholds)
TEST(test_http_status)
TEST(test_http_host_and_range)
TEST(test_http_silent)
TEST(test_http_garbage)
TEST(test_udp_echo)
TEST(test_udp_mismatch)
TEST(test_udp_refused)
TEST(test_reload)
TEST(test_spread_2000)
TEST(test_inflight_cap)
TEST(test_api_edges)

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"TCP listener: up, RTT samples, SRTT", test_tcp_up_wrapped},
	    {"closed port: refused, exact thresholds", test_refused_thresholds_wrapped},
	    {"HTTP 200 then 503 then 302", test_http_status_wrapped},
	    {"HTTP Host and status range", test_http_host_and_range_wrapped},
	    {"HTTP silent server: timeout", test_http_silent_wrapped},
	    {"HTTP garbage and truncated replies", test_http_garbage_wrapped},
	    {"UDP echo: up", test_udp_echo_wrapped},
	    {"UDP garbage reply: down", test_udp_mismatch_wrapped},
	    {"UDP closed port: refused", test_udp_refused_wrapped},
	    {"reload keeps state", test_reload_wrapped},
	    {"2000 targets: spread, all up", test_spread_2000_wrapped},
	    {"sockets in flight capped", test_inflight_cap_wrapped},
	    {"API edges and bad settings", test_api_edges_wrapped},
	};
	CU_pSuite suite;
	unsigned int i, failed;

	/* State changes (info) and refused settings (warnings) are logged: AG_TEST_VERBOSE=1. */
	ag_log__set_level(getenv("AG_TEST_VERBOSE") ? AG_LOG_DEBUG : AG_LOG_ERR);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return CU_get_error();
	suite = CU_add_suite("probe", NULL, NULL);
	if (!suite)
		goto cleanup;
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			goto cleanup;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
cleanup:
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
