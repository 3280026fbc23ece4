/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated as a whole, without a mock: a real daemon (daemon.c started by
 * lifecycle.c, as anygated starts it) with edge.fastpath = "dpdk", so its
 * publisher writes into a real shared-memory segment (/dev/shm/anygate.d/<unique>),
 * its parts run from a real event loop, operators reach it through a real
 * control socket in a private temporary directory, and its health probes
 * connect to real TCP listeners.
 *
 * Endpoints may not be loopback addresses (the config refuses 127.0.0.0/8),
 * so the test runs in a network namespace of its own where 10.0.0.0/8 is
 * local on lo: the listeners bind 10.1.1.11 and friends there. That needs
 * root; without it every test is skipped with a note.
 *
 * One thread drives the daemon: its loop runs in this thread while a request
 * is answered or until a condition holds (bounded), and stands still while
 * the test reads the daemon and the segment. Each test starts a fresh daemon
 * and removes the segment and the state file after it; the segment is also
 * removed at exit on every path. Nothing asserts on elapsed time.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cu_main.h"
#include "abi_shm.h"
#include "ctl_client.h"
#include "daemon.h"
#include "fastpath.h"
#include "lifecycle.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "metrics_src.h"
#include "shm.h"

#define RING	     251
#define IO_TIMEOUT_S 10	  /* a request gives up after this */
#define WAIT_S	     10	  /* a condition that does not hold by then fails */
#define METRICS_PORT 9464 /* in our own network namespace: nobody else's */

static bool have_root;
static char tmpdir[] = "/tmp/ag-test-daemon-XXXXXX";
static char conf_path[128], sock_path[128], state_path[128];
static char shm_name[64];
static uint16_t probe_port;

/* The endpoints, in the config's (and so the plan's) order, and their listeners. */
static const char *const endpoint_addrs[] = {"10.1.1.11", "10.1.1.12", "10.2.1.11"};
#define N_ENDPOINTS 3
#define EU_11	    0
#define EU_12	    1
#define US_11	    2
static int listeners[N_ENDPOINTS] = {-1, -1, -1};

static void skip_note(const char *what)
{
	printf("\n    skipped (needs root): %s ", what);
}

/* ------------------------------------------------------------------------ */
/* The network namespace and the backends' listeners                        */

static int ifreq_ioctl(int fd, unsigned long req, const char *name, const char *addr)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (req == SIOCSIFFLAGS) {
		ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
	} else {
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &sin->sin_addr);
	}
	return ioctl(fd, req, &ifr);
}

/* A namespace of our own with lo up and 10.0.0.0/8 local on it. */
static int private_netns(void)
{
	int fd, err = 0;

	if (unshare(CLONE_NEWNET))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ifreq_ioctl(fd, SIOCSIFFLAGS, "lo", NULL) ||
	    ifreq_ioctl(fd, SIOCSIFADDR, "lo:ag", "10.0.0.1") ||
	    ifreq_ioctl(fd, SIOCSIFNETMASK, "lo:ag", "255.0.0.0"))
		err = -errno;
	close(fd);
	return err;
}

/* Listen on addr:port (port 0: any; the port taken is returned). -1 on error. */
static int listen_on(const char *addr, uint16_t *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(*port)};
	socklen_t len = sizeof(sin);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, addr, &sin.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

static int open_listener(unsigned int i)
{
	if (listeners[i] < 0)
		listeners[i] = listen_on(endpoint_addrs[i], &probe_port);
	return listeners[i] < 0 ? -1 : 0;
}

static void close_listener(unsigned int i)
{
	if (listeners[i] >= 0)
		close(listeners[i]);
	listeners[i] = -1;
}

/* ------------------------------------------------------------------------ */
/* The config                                                               */

/*
 * One TCP listener; eu (two endpoints) before us (one) by region_order, so
 * proximity never reorders them: with everything up eu takes every new flow.
 * Line numbers matter: the refusal tests look for them.
 */
static int write_conf(uint32_t ring, const char *extra_edge, int weight_eu_11)
{
	FILE *f = fopen(conf_path, "w");

	if (!f)
		return -1;
	fprintf(f,
		"edge = {\n"
		"  name = \"t\"; hash_seed = 7; fastpath = \"dpdk\"; interfaces = ( );\n"
		"  nat_addresses = [ \"10.255.0.1\" ];\n"
		"  ring_size = %u; max_flows = 4096;\n"
		"  control_socket = \"%s\"; state_file = \"%s\";\n"
		"  metrics = \"127.0.0.1:%u\";\n"
		"  dpdk = { ports = [ \"net_null0\" ]; shm_name = \"%s\"; };\n"
		"  %s\n"
		"};\n"
		"accelerators = ( {\n"
		"  name = \"web\"; addresses = [ \"198.51.100.10\" ];\n"
		"  listeners = ( { protocol = \"tcp\"; ports = [ 80 ]; region_order = [ \"eu\", "
		"\"us\" ];\n"
		"    endpoint_groups = (\n"
		"      { region = \"eu\";\n"
		"        health_check = { port = %u; interval_ms = 100; timeout_ms = 100;\n"
		"                         healthy_threshold = 1; unhealthy_threshold = 2; };\n"
		"        endpoints = ( { address = \"%s\"; weight = %d; }, { address = \"%s\"; } "
		"); },\n"
		"      { region = \"us\";\n"
		"        health_check = { port = %u; interval_ms = 100; timeout_ms = 100;\n"
		"                         healthy_threshold = 1; unhealthy_threshold = 2; };\n"
		"        endpoints = ( { address = \"%s\"; } ); } ); } );\n"
		"} );\n",
		ring, sock_path, state_path, METRICS_PORT, shm_name, extra_edge ? extra_edge : "",
		probe_port, endpoint_addrs[EU_11], weight_eu_11, endpoint_addrs[EU_12], probe_port,
		endpoint_addrs[US_11]);
	return fclose(f) ? -1 : 0;
}

#define CONF_EXTRA_LINE 8 /* the line of write_conf's extra_edge */
#define CONF_EDGE_LINE	1

/* ------------------------------------------------------------------------ */
/* The daemon, its loop, and requests                                       */

static struct ag_daemon d;
static bool started;
static struct ag_ev accepts[N_ENDPOINTS]; /* the listeners, accepting in d's loop */

/* The daemon's probes connect; accept and close so the backlog never fills. */
static void accept_cb(struct ag_ev *ev, uint32_t events)
{
	int fd;

	while ((fd = accept4(ev->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
}

static void watch_listener(unsigned int i)
{
	accepts[i] = (struct ag_ev){.fd = listeners[i], .cb = accept_cb};
	if (listeners[i] >= 0)
		ag_loop__add(&d.loop, &accepts[i], EPOLLIN);
}

static bool daemon_start(void)
{
	unsigned int i;

	if (write_conf(RING, NULL, 128) || ag_daemon__init(&d, conf_path))
		return false;
	if (ag_daemon__prepare(&d) || ag_lifecycle__start(&d)) {
		ag_daemon__fini(&d);
		return false;
	}
	for (i = 0; i < N_ENDPOINTS; i++)
		watch_listener(i);
	started = true;
	return true;
}

static void daemon_stop(void)
{
	unsigned int i;

	if (!started)
		return;
	for (i = 0; i < N_ENDPOINTS; i++)
		if (listeners[i] >= 0)
			ag_loop__del(&d.loop, &accepts[i]);
	ag_lifecycle__stop(&d, false);
	ag_daemon__fini(&d);
	started = false;
	/* anygated leaves the segment for anygate-dp: the test removes it. */
	ag_shm__unlink(shm_name);
	unlink(state_path);
}

/* Run the loop until cond(ctx) holds (checked every 20 ms) or max_s passed. */
struct waiter {
	struct ag_timer tick;
	bool (*cond)(void *ctx);
	void *ctx;
	uint64_t deadline_ns;
	bool held;
};

static void waiter_tick(struct ag_timer *t)
{
	struct waiter *w = t->data;

	w->held = w->cond && w->cond(w->ctx);
	if (w->held || ag_now_ns() >= w->deadline_ns)
		ag_loop__stop(&d.loop);
}

static bool run_until(bool (*cond)(void *ctx), void *ctx, double max_s)
{
	struct waiter w = {.cond = cond, .ctx = ctx};

	w.deadline_ns = ag_now_ns() + (uint64_t)(max_s * 1e9);
	if (ag_timer__init(&d.loop, &w.tick, waiter_tick, &w) ||
	    ag_timer__arm(&w.tick, 20000000ull, 20000000ull)) {
		CU_FAIL("waiter timer");
		return false;
	}
	d.loop.stop = false;
	ag_loop__run(&d.loop);
	ag_timer__fini(&d.loop, &w.tick);
	return w.held;
}

/* Let the daemon run for s seconds (its timers fire), whatever happens. */
static void run_for(double s)
{
	run_until(NULL, NULL, s);
}

struct request {
	int argc;
	char *argv[16];
	json_t *reply;
	int err;
	struct ag_ev done; /* an eventfd: the client thread is finished */
};

static void *client_main(void *p)
{
	struct request *r = p;
	uint64_t one = 1;
	struct ag_ctlc c;

	r->err = ag_ctlc__connect(&c, sock_path, ag_now_ns() + IO_TIMEOUT_S * 1000000000ull);
	if (!r->err) {
		r->err = ag_ctlc__request(&c, r->argc, r->argv, &r->reply);
		ag_ctlc__close(&c);
	}
	if (write(r->done.fd, &one, sizeof(one)) != sizeof(one))
		r->err = -EIO;
	return NULL;
}

static void request_done(struct ag_ev *ev, uint32_t events)
{
	ag_loop__stop(&d.loop);
}

/* One request through the control socket: its reply, NULL if none came. */
static json_t *askv(const char *first, va_list ap)
{
	struct request r = {.done = {.cb = request_done}};
	const char *w = first;
	pthread_t thread;

	while (w && r.argc < 15) {
		r.argv[r.argc++] = (char *)w;
		w = va_arg(ap, const char *);
	}
	r.done.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r.done.fd < 0 || ag_loop__add(&d.loop, &r.done, EPOLLIN) ||
	    pthread_create(&thread, NULL, client_main, &r)) {
		CU_FAIL("request setup");
		return NULL;
	}
	d.loop.stop = false;
	ag_loop__run(&d.loop);
	pthread_join(thread, NULL);
	ag_loop__del(&d.loop, &r.done);
	close(r.done.fd);
	if (r.err)
		printf("\n    request %s: %s ", first, strerror(-r.err));
	return r.reply;
}

static json_t *ask(const char *first, ...)
{
	va_list ap;
	json_t *r;

	va_start(ap, first);
	r = askv(first, ap);
	va_end(ap);
	return r;
}

static bool is_ok(const json_t *r)
{
	return r && json_is_true(json_object_get(r, "ok"));
}

/* The reply's data when it succeeded (the reply is kept for json_decref). */
static json_t *data_of(const json_t *r)
{
	if (!is_ok(r)) {
		printf("\n    reply: %s ",
		       r ? json_string_value(json_object_get(r, "error")) : "none");
		return NULL;
	}
	return json_object_get(r, "data");
}

static const char *code_of(const json_t *r)
{
	if (!r)
		return "(no reply)";
	return is_ok(r) ? "ok" : json_string_value(json_object_get(r, "code"));
}

static const char *error_of(const json_t *r)
{
	const char *e = json_string_value(json_object_get(r, "error"));

	return e ? e : "";
}

/* A request that must succeed; 1 when it did (the reply is dropped). */
static int do_ok(const char *first, ...)
{
	va_list ap;
	json_t *r;
	int ok;

	va_start(ap, first);
	r = askv(first, ap);
	va_end(ap);
	ok = data_of(r) != NULL;
	json_decref(r);
	return ok;
}

static json_int_t int_of(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* ------------------------------------------------------------------------ */
/* The published tables, read from the segment                              */

struct tables {
	uint64_t generation;
	uint32_t lookup[RING]; /* listener 0's live table */
	uint32_t count[N_ENDPOINTS];
	uint8_t state[N_ENDPOINTS];
};

static bool read_tables(struct tables *t)
{
	struct ag_shm *obs = ag_shm__observe(shm_name);
	const struct ag_shm_view *h;
	uint32_t slot, i;

	memset(t, 0, sizeof(*t));
	if (!obs)
		return false;
	h = ag_shm__view(obs);
	t->generation = __atomic_load_n(&h->hdr->pub.generation, __ATOMIC_ACQUIRE);
	slot = __atomic_load_n(&ag_shm__lstate(h)[0].slot, __ATOMIC_ACQUIRE);
	memcpy(t->lookup, ag_shm__lookup(h) + (size_t)slot * RING, sizeof(t->lookup));
	for (i = 0; i < RING; i++)
		if (t->lookup[i] < N_ENDPOINTS)
			t->count[t->lookup[i]]++;
	for (i = 0; i < N_ENDPOINTS; i++)
		t->state[i] = ag_shm__backends(h)[i].state;
	ag_shm__close(obs);
	return true;
}

static struct tables now_tables(void)
{
	struct tables t;

	CU_ASSERT_FATAL(read_tables(&t));
	return t;
}

static bool same_lookup(const struct tables *a, const struct tables *b)
{
	return !memcmp(a->lookup, b->lookup, sizeof(a->lookup));
}

static bool file_exists(const char *path)
{
	struct stat st;

	return !stat(path, &st);
}

/* Every test: a fresh daemon, or a skip. */
#define START()                                                                                    \
	do {                                                                                       \
		if (!have_root) {                                                                  \
			skip_note(__func__);                                                       \
			return;                                                                    \
		}                                                                                  \
		CU_ASSERT_FATAL(daemon_start());                                                   \
	} while (0)

/* ------------------------------------------------------------------------ */
/* Start, read-only commands                                                */

static void test_start_publishes(void)
{
	struct tables t;
	json_t *r, *data;

	START();
	t = now_tables();
	CU_ASSERT(t.generation > 0);
	/* eu is nearest and healthy: its two endpoints share every entry, us none. */
	CU_ASSERT(t.count[EU_11] > RING / 4 && t.count[EU_12] > RING / 4);
	CU_ASSERT_EQUAL(t.count[EU_11] + t.count[EU_12], RING);
	CU_ASSERT_EQUAL(t.count[US_11], 0);
	CU_ASSERT_EQUAL(t.state[EU_11], AG_BACKEND_UP);
	CU_ASSERT_EQUAL(t.state[US_11], AG_BACKEND_UP);

	r = ask("status", NULL);
	data = data_of(r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "fast_path")), "dpdk");
	CU_ASSERT_EQUAL(int_of(data, "backends"), N_ENDPOINTS);
	CU_ASSERT_EQUAL(int_of(data, "backends_up"), N_ENDPOINTS);
	CU_ASSERT_EQUAL(int_of(data, "overrides"), 0);
	json_decref(r);

	/* anygate-dp's flows live in its own memory: endpoints say null, flows refuses. */
	r = ask("endpoints", NULL);
	data = data_of(r);
	CU_ASSERT_EQUAL_FATAL(json_array_size(data), N_ENDPOINTS);
	CU_ASSERT(json_is_null(json_object_get(json_array_get(data, 0), "flows")));
	CU_ASSERT_STRING_EQUAL(
	    json_string_value(json_object_get(json_array_get(data, 0), "health")), "up");
	json_decref(r);
	r = ask("flows", NULL);
	CU_ASSERT_STRING_EQUAL(code_of(r), "internal");
	CU_ASSERT_PTR_NOT_NULL(strstr(error_of(r), strerror(EOPNOTSUPP)));
	json_decref(r);
	daemon_stop();
}

/* ------------------------------------------------------------------------ */
/* Changing commands                                                        */

static void test_set_weight(void)
{
	struct tables t0, t;
	json_t *r, *data;

	START();
	t0 = now_tables();
	r = ask("set", "weight", "10.1.1.11", "0", NULL);
	data = data_of(r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	CU_ASSERT_EQUAL(int_of(data, "matched"), 1);
	CU_ASSERT_EQUAL(int_of(data, "overrides"), 1);
	CU_ASSERT(int_of(data, "slots_changed") > 0);
	json_decref(r);
	t = now_tables();
	CU_ASSERT(t.generation > t0.generation);
	CU_ASSERT_EQUAL(t.count[EU_11], 0);
	CU_ASSERT_EQUAL(t.count[EU_12], RING);
	CU_ASSERT(file_exists(state_path));

	/* A weight above the other's takes the larger share. */
	CU_ASSERT(do_ok("set", "weight", "eu/10.1.1.11", "255", NULL));
	t = now_tables();
	CU_ASSERT(t.count[EU_11] > t.count[EU_12] && t.count[EU_12] > 0);

	r = ask("set", "weight", "10.1.1.11", "256", NULL);
	CU_ASSERT_STRING_EQUAL(code_of(r), "invalid");
	json_decref(r);
	r = ask("set", "weight", "10.9.9.9", "5", NULL);
	CU_ASSERT_STRING_EQUAL(code_of(r), "invalid");
	json_decref(r);
	daemon_stop();
}

static void test_set_dial(void)
{
	struct tables t;

	START();
	CU_ASSERT(do_ok("set", "dial", "eu", "50", NULL));
	t = now_tables();
	/* Half of eu's new flows spill to us. */
	CU_ASSERT(t.count[US_11] > RING / 4 && t.count[US_11] < 3 * RING / 4);
	CU_ASSERT_EQUAL(t.count[EU_11] + t.count[EU_12] + t.count[US_11], RING);
	CU_ASSERT(do_ok("set", "dial", "web/eu", "0", NULL));
	t = now_tables();
	CU_ASSERT_EQUAL(t.count[US_11], RING);
	daemon_stop();
}

static void test_drain_undrain(void)
{
	struct tables t0, t;
	json_t *r, *data;

	START();
	t0 = now_tables();
	CU_ASSERT(do_ok("drain", "10.1.1.12", NULL));
	t = now_tables();
	CU_ASSERT_EQUAL(t.state[EU_12], AG_BACKEND_DRAINING);
	CU_ASSERT_EQUAL(t.count[EU_12], 0);
	CU_ASSERT_EQUAL(t.count[EU_11], RING);
	r = ask("endpoints", "10.1.1.12", NULL);
	data = data_of(r);
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(json_string_value(json_object_get(json_array_get(data, 0), "override")) ?: "",
		   "drained"));
	json_decref(r);

	CU_ASSERT(do_ok("undrain", "10.1.1.12", NULL));
	t = now_tables();
	CU_ASSERT_EQUAL(t.state[EU_12], AG_BACKEND_UP);
	/* Maglev from the same view: the very table of the start. */
	CU_ASSERT(same_lookup(&t, &t0));
	daemon_stop();
}

static void test_region_fail_restore(void)
{
	struct tables t0, t;
	json_t *r, *data;

	START();
	t0 = now_tables();
	CU_ASSERT(do_ok("region", "fail", "eu", NULL));
	t = now_tables();
	CU_ASSERT_EQUAL(t.count[US_11], RING);
	r = ask("status", NULL);
	data = data_of(r);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "drill")) ?: "", "web/eu");
	json_decref(r);

	CU_ASSERT(do_ok("region", "restore", "eu", NULL));
	t = now_tables();
	CU_ASSERT(same_lookup(&t, &t0));
	r = ask("status", NULL);
	CU_ASSERT(json_is_null(json_object_get(data_of(r), "drill")));
	json_decref(r);
	daemon_stop();
}

static void test_overrides_clear(void)
{
	struct tables t0, t;
	json_t *r, *data;

	START();
	t0 = now_tables();
	CU_ASSERT(do_ok("set", "weight", "10.1.1.11", "0", NULL));
	CU_ASSERT(do_ok("set", "dial", "eu", "50", NULL));
	r = ask("overrides", NULL);
	CU_ASSERT_EQUAL(json_array_size(data_of(r)), 2);
	json_decref(r);

	/* A selector clears what touches it only. */
	r = ask("overrides", "clear", "10.1.1.11", NULL);
	data = data_of(r);
	CU_ASSERT_EQUAL(int_of(data, "matched"), 1);
	CU_ASSERT_EQUAL(int_of(data, "overrides"), 1);
	json_decref(r);
	t = now_tables();
	CU_ASSERT(t.count[EU_11] > 0 && t.count[US_11] > 0);

	CU_ASSERT(do_ok("overrides", "clear", NULL));
	t = now_tables();
	CU_ASSERT(same_lookup(&t, &t0));
	r = ask("overrides", "clear", NULL);
	CU_ASSERT_STRING_EQUAL(code_of(r), "invalid");
	json_decref(r);
	daemon_stop();
}

/* Every changing command with --dry-run: a preview, and nothing written anywhere. */
static void test_dry_run(void)
{
	static const char *const cmds[][5] = {
	    {"set", "weight", "10.1.1.11", "0"},
	    {"set", "dial", "eu", "10"},
	    {"drain", "10.1.1.12"},
	    {"region", "fail", "eu"},
	};
	struct tables t0, t;
	unsigned int i;
	json_t *r, *data;

	START();
	t0 = now_tables();
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *const *c = cmds[i];

		r = c[3]   ? ask(c[0], c[1], c[2], c[3], "--dry-run", NULL)
		    : c[2] ? ask(c[0], c[1], c[2], "--dry-run", NULL)
			   : ask(c[0], c[1], "--dry-run", NULL);
		data = data_of(r);
		CU_ASSERT_PTR_NOT_NULL(data);
		CU_ASSERT(json_is_true(json_object_get(data, "dry_run")));
		CU_ASSERT(int_of(data, "slots_changed") > 0);
		json_decref(r);
		t = now_tables();
		CU_ASSERT_EQUAL(t.generation, t0.generation);
		CU_ASSERT(same_lookup(&t, &t0));
		CU_ASSERT(!memcmp(t.state, t0.state, sizeof(t.state)));
	}
	CU_ASSERT(!file_exists(state_path)); /* no override was ever saved */
	/* overrides clear previews too: make one to clear, then preview its removal. */
	CU_ASSERT(do_ok("drain", "10.1.1.12", NULL));
	t0 = now_tables();
	r = ask("overrides", "clear", "--dry-run", NULL);
	CU_ASSERT(json_is_true(json_object_get(data_of(r), "dry_run")));
	json_decref(r);
	t = now_tables();
	CU_ASSERT_EQUAL(t.generation, t0.generation);
	r = ask("overrides", NULL);
	CU_ASSERT_EQUAL(json_array_size(data_of(r)), 1);
	json_decref(r);
	daemon_stop();
}

/* ------------------------------------------------------------------------ */
/* --confirm-within                                                         */

static bool tables_back(void *ctx)
{
	const struct tables *want = ctx;
	struct tables t;

	return read_tables(&t) && same_lookup(&t, want);
}

static void test_confirm_rollback(void)
{
	struct tables t1, t;
	json_t *r, *data;

	START();
	/* The state to come back to: one override in force, its tables. */
	CU_ASSERT(do_ok("set", "weight", "10.1.1.12", "40", NULL));
	t1 = now_tables();
	r = ask("set", "weight", "10.1.1.11", "0", "--confirm-within", "1", NULL);
	data = data_of(r);
	CU_ASSERT_PTR_NOT_NULL(json_string_value(json_object_get(data, "confirm_by")));
	json_decref(r);
	t = now_tables();
	CU_ASSERT_EQUAL(t.count[EU_11], 0);
	r = ask("status", NULL);
	CU_ASSERT(json_is_string(json_object_get(data_of(r), "confirm_pending")));
	json_decref(r);

	/* Nobody confirms: the timer puts the overrides and the tables back. */
	CU_ASSERT(run_until(tables_back, &t1, WAIT_S));
	r = ask("overrides", NULL);
	data = data_of(r);
	CU_ASSERT_EQUAL_FATAL(json_array_size(data), 1);
	CU_ASSERT_STRING_EQUAL(
	    json_string_value(json_object_get(json_array_get(data, 0), "selector")), "10.1.1.12");
	CU_ASSERT_EQUAL(int_of(json_array_get(data, 0), "value"), 40);
	json_decref(r);
	r = ask("status", NULL);
	CU_ASSERT(json_is_null(json_object_get(data_of(r), "confirm_pending")));
	json_decref(r);
	r = ask("confirm", NULL);
	CU_ASSERT_STRING_EQUAL(code_of(r), "invalid");
	json_decref(r);
	daemon_stop();
}

static void test_confirm_in_time(void)
{
	struct tables t2, t;
	json_t *r;

	START();
	CU_ASSERT(do_ok("set", "weight", "10.1.1.11", "0", "--confirm-within", "1", NULL));
	r = ask("confirm", NULL);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data_of(r), "confirmed")) ?: "",
			       "set weight 10.1.1.11 0");
	json_decref(r);
	t2 = now_tables();
	CU_ASSERT_EQUAL(t2.count[EU_11], 0);
	/* Past the deadline: nothing rolls back. */
	run_for(1.5);
	t = now_tables();
	CU_ASSERT(same_lookup(&t, &t2));
	CU_ASSERT_EQUAL(t.generation, t2.generation);
	r = ask("overrides", NULL);
	CU_ASSERT_EQUAL(json_array_size(data_of(r)), 1);
	json_decref(r);
	r = ask("status", NULL);
	CU_ASSERT(json_is_null(json_object_get(data_of(r), "confirm_pending")));
	json_decref(r);
	daemon_stop();
}

/* ------------------------------------------------------------------------ */
/* Reload                                                                   */

/* A reload of the file as it is now must be refused with want in its message. */
static void expect_refused(const char *want)
{
	const struct ag_config *cfg = d.cfg;
	struct tables t0 = now_tables(), t;
	json_t *r;

	r = ask("reload", NULL);
	CU_ASSERT_STRING_EQUAL(code_of(r), "invalid");
	if (!strstr(error_of(r), want))
		printf("\n    want \"%s\" in: %s ", want, error_of(r));
	CU_ASSERT_PTR_NOT_NULL(strstr(error_of(r), want));
	json_decref(r);
	/* The running config and the tables are what they were. */
	CU_ASSERT_PTR_EQUAL(d.cfg, cfg);
	CU_ASSERT_EQUAL(d.cfg->edge.ring_size, RING);
	t = now_tables();
	CU_ASSERT_EQUAL(t.generation, t0.generation);
	CU_ASSERT(same_lookup(&t, &t0));
}

static void test_reload_refused(void)
{
	char want[256];
	json_t *r, *data;

	START();
	/* A bad file: its problem as file:line: key: problem. */
	CU_ASSERT_FATAL(!write_conf(RING, "bogus_key = 1;", 128));
	snprintf(want, sizeof(want), "%s:%d: edge.bogus_key: ", conf_path, CONF_EXTRA_LINE);
	expect_refused(want);
	/* A valid file changing what only a restart can. */
	CU_ASSERT_FATAL(!write_conf(257, NULL, 128));
	snprintf(want, sizeof(want), "%s:%d: edge.ring_size: changes only with a restart",
		 conf_path, CONF_EDGE_LINE);
	expect_refused(want);

	r = ask("status", NULL);
	data = data_of(r);
	CU_ASSERT_EQUAL(int_of(data, "reloads"), 0);
	CU_ASSERT_EQUAL(int_of(data, "reload_failures"), 2);
	json_decref(r);
	daemon_stop();
}

/* Opens the FIFO for writing if the daemon blocks reading it (it must not): bounds the wait. */
struct unblocker {
	const char *path;
	volatile bool stop;
	bool unblocked;
};

static void *unblock_main(void *p)
{
	struct unblocker *u = p;
	uint64_t deadline = ag_now_ns() + WAIT_S * 1000000000ull;

	while (!u->stop && ag_now_ns() < deadline) {
		/* Succeeds only while someone has the FIFO open for reading. */
		int fd = open(u->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

		if (fd >= 0) {
			u->unblocked = true;
			close(fd);
			return NULL;
		}
		usleep(10000);
	}
	return NULL;
}

/*
 * check FILE: a FIFO, a directory, a device are refused before they are
 * opened (a FIFO would block the loop until a writer came); a link to the
 * config is followed.
 */
static void test_check_not_regular(void)
{
	char fifo[160], link[160];
	struct unblocker u = {.path = fifo};
	pthread_t th;
	json_t *r;

	START();
	snprintf(fifo, sizeof(fifo), "%s/fifo.conf", tmpdir);
	snprintf(link, sizeof(link), "%s/link.conf", tmpdir);
	CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);
	CU_ASSERT_FATAL(symlink(conf_path, link) == 0);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, unblock_main, &u) == 0);
	r = ask("check", fifo, NULL);
	u.stop = true;
	pthread_join(th, NULL);
	CU_ASSERT_FALSE(u.unblocked);
	CU_ASSERT_STRING_EQUAL(code_of(r), "invalid");
	CU_ASSERT_PTR_NOT_NULL(strstr(error_of(r), "a FIFO, not a regular file"));
	json_decref(r);
	r = ask("check", tmpdir, NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(error_of(r), "a directory, not a regular file"));
	json_decref(r);
	r = ask("check", "/dev/null", NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(error_of(r), "a character device, not a regular file"));
	json_decref(r);
	r = ask("check", link, NULL);
	CU_ASSERT_STRING_EQUAL(code_of(r), "ok");
	json_decref(r);
	unlink(fifo);
	unlink(link);
	daemon_stop();
}

static void test_reload_keeps_overrides(void)
{
	struct tables t;
	json_t *r, *data;

	START();
	CU_ASSERT(do_ok("set", "dial", "eu", "50", NULL));
	CU_ASSERT_FATAL(!write_conf(RING, NULL, 0));
	r = ask("reload", NULL);
	data = data_of(r);
	CU_ASSERT_EQUAL(int_of(data, "overrides"), 1);
	json_decref(r);
	t = now_tables();
	/* The new weight 0, and the dial still spilling half to us. */
	CU_ASSERT_EQUAL(t.count[EU_11], 0);
	CU_ASSERT(t.count[EU_12] > 0 && t.count[US_11] > 0);
	r = ask("status", NULL);
	CU_ASSERT_EQUAL(int_of(data_of(r), "reloads"), 1);
	json_decref(r);
	daemon_stop();
}

/* ------------------------------------------------------------------------ */
/* Health: a backend's listener goes away                                   */

struct backend_state {
	unsigned int id;
	uint8_t state;
};

static bool backend_is(void *ctx)
{
	const struct backend_state *want = ctx;
	struct tables t;

	return read_tables(&t) && t.state[want->id] == want->state &&
	       (want->state == AG_BACKEND_UP || t.count[want->id] == 0);
}

static void test_health_down_up(void)
{
	struct backend_state down = {EU_12, AG_BACKEND_DOWN}, up = {EU_12, AG_BACKEND_UP};
	struct tables t;
	json_t *r, *data;

	START();
	ag_loop__del(&d.loop, &accepts[EU_12]);
	close_listener(EU_12);
	CU_ASSERT(run_until(backend_is, &down, WAIT_S));
	/* Half of eu down: eu keeps what its survivor takes (x 1.4), the rest spills to us. */
	t = now_tables();
	CU_ASSERT(t.count[EU_11] > t.count[US_11] && t.count[US_11] > 0);
	CU_ASSERT_EQUAL(t.count[EU_11] + t.count[US_11], RING);
	r = ask("endpoints", "10.1.1.12", NULL);
	data = json_array_get(data_of(r), 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(data, "health")) ?: "", "down");
	json_decref(r);
	r = ask("status", NULL);
	CU_ASSERT(int_of(data_of(r), "failovers") >= 1);
	json_decref(r);

	CU_ASSERT_FATAL(!open_listener(EU_12));
	watch_listener(EU_12);
	CU_ASSERT(run_until(backend_is, &up, WAIT_S));
	daemon_stop();
}

/* ------------------------------------------------------------------------ */
/* Metrics: the segment's counters in the snapshot and on the endpoint      */

static void fake_fastpath_counts(struct ag_shm *dp, enum ag_reason reason)
{
	const struct ag_shm_view *v = ag_shm__view(dp);
	struct ag_shm_hdr *h = ag_shm__hdr(dp);

	ag_shm__lane(v, 0)->lstats[0].packets = 5;
	ag_shm__lane(v, 3)->lstats[0].packets = 2;
	ag_shm__lane(v, 1)->bstats[EU_12].new_flows = 9;
	ag_shm__lane(v, 2)->rstats[reason].packets = 4;
	h->dp.flows = 42;
	h->dp.pid = (uint32_t)getpid();
	__atomic_store_n(&h->dp.heartbeat_ns, ag_shm__now_ns(), __ATOMIC_RELEASE);
}

struct scrape {
	char buf[1 << 17];
	size_t len;
	struct ag_ev done;
};

static void *scrape_main(void *p)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(METRICS_PORT)};
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
	struct scrape *s = p;
	uint64_t one = 1;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (fd >= 0 && !connect(fd, (struct sockaddr *)&sin, sizeof(sin)) &&
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == sizeof(req) - 1)
		while (s->len < sizeof(s->buf) - 1 &&
		       (n = recv(fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len, 0)) > 0)
			s->len += n;
	s->buf[s->len] = '\0';
	if (fd >= 0)
		close(fd);
	if (write(s->done.fd, &one, sizeof(one)) != sizeof(one))
		s->len = 0;
	return NULL;
}

static void scrape(struct scrape *s)
{
	pthread_t thread;

	s->len = 0;
	s->done = (struct ag_ev){.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), .cb = request_done};
	if (s->done.fd < 0 || ag_loop__add(&d.loop, &s->done, EPOLLIN) ||
	    pthread_create(&thread, NULL, scrape_main, s)) {
		CU_FAIL("scrape setup");
		return;
	}
	d.loop.stop = false;
	ag_loop__run(&d.loop);
	pthread_join(thread, NULL);
	ag_loop__del(&d.loop, &s->done);
	close(s->done.fd);
}

static void test_metrics_collect(void)
{
	struct ag_metrics_snapshot snap;
	enum ag_reason reason = AG_R__MAX;
	struct scrape *s;
	struct ag_shm *dp;
	unsigned int r;

	START();
	for (r = 0; r < AG_R__MAX && reason == AG_R__MAX; r++)
		if (!strncmp(ag_reason__name(r), "drop_", 5))
			reason = r;
	CU_ASSERT_FATAL(reason < AG_R__MAX);
	/* What anygate-dp would count into the segment, written as it writes it. */
	dp = ag_shm__attach(shm_name, RING);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	fake_fastpath_counts(dp, reason);

	memset(&snap, 0, sizeof(snap));
	CU_ASSERT_PTR_NOT_NULL_FATAL(d.metrics);
	CU_ASSERT_EQUAL_FATAL(ag_metrics_src__collect(d.metrics, &snap), 0);
	CU_ASSERT_EQUAL_FATAL(snap.n_listeners, 1);
	CU_ASSERT_STRING_EQUAL(snap.listeners[0].fastpath, "dpdk");
	CU_ASSERT_STRING_EQUAL(snap.listeners[0].listener, "tcp:80");
	CU_ASSERT_EQUAL(snap.listeners[0].traffic.packets, 7);
	CU_ASSERT_EQUAL_FATAL(snap.n_backends, N_ENDPOINTS);
	CU_ASSERT_EQUAL(snap.backends[EU_12].traffic.new_flows, 9);
	CU_ASSERT_STRING_EQUAL(snap.backends[EU_12].address, "10.1.1.12");
	CU_ASSERT_STRING_EQUAL(snap.backends[US_11].region, "us");
	CU_ASSERT(snap.backends[EU_11].up);
	CU_ASSERT_EQUAL(snap.backends[EU_11].active_flows, 0); /* not walkable: 0 */
	CU_ASSERT_EQUAL(snap.backends[US_11].share, 0.0);
	CU_ASSERT_EQUAL(snap.reasons[reason].packets, 4);
	CU_ASSERT_EQUAL(snap.flow_entries, 42);
	CU_ASSERT(snap.publishes >= 1);
	ag_metrics_snapshot__free(&snap);

	/* The same through the endpoint a scraper reads. */
	s = calloc(1, sizeof(*s));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	scrape(s);
	CU_ASSERT_PTR_NOT_NULL(strstr(s->buf, "200 OK"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s->buf, "\nanygate_flow_table_entries 42\n"));
	free(s);
	ag_shm__close(dp);
	daemon_stop();
}

/* ------------------------------------------------------------------------ */
/* Settings: flow-state timeouts, budgets divided over anygate-dp's lcores   */

static struct ag_settings now_settings(void)
{
	struct ag_shm *obs = ag_shm__observe(shm_name);
	struct ag_settings st = {0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(obs);
	CU_ASSERT_EQUAL(ag_shm__settings_get(ag_shm__view(obs), &st), 1);
	ag_shm__close(obs);
	return st;
}

/* anygate-dp alive on `lanes` lanes (one per forwarding lcore, one for its main lcore). */
static void fake_fastpath_alive(struct ag_shm *dp, uint32_t lanes)
{
	struct ag_shm_hdr *h = ag_shm__hdr(dp);

	h->dp.lanes_used = lanes;
	h->dp.pid = (uint32_t)getpid();
	__atomic_store_n(&h->dp.heartbeat_ns, ag_shm__now_ns(), __ATOMIC_RELEASE);
}

static bool syn_rate_is(void *ctx)
{
	return now_settings().syn_cpu_rate == *(uint32_t *)ctx;
}

static void test_settings_budgets(void)
{
	uint32_t want = 2500;
	struct ag_settings st;
	struct ag_shm *dp;
	uint64_t secret;

	START();
	st = now_settings();
	CU_ASSERT_EQUAL(st.tcp_syn_idle_ns, AG_TCP_SYN_IDLE_DEFAULT * 1000000000ull);
	CU_ASSERT_EQUAL(st.tcp_closing_ns, AG_TCP_CLOSING_DEFAULT * 1000000000ull);
	CU_ASSERT_EQUAL(st.syn_auth_ttl_ns, AG_SYN_AUTH_TTL_DEFAULT * 1000000000ull);
	/* the probes' detection time: 100 ms x 2 + 100 ms */
	CU_ASSERT_EQUAL(st.backend_alive_ns, 300000000ull);
	/* no anygate-dp yet: the whole edge's rate on one lcore; UDP: 4096 / (2 x 30) */
	CU_ASSERT_EQUAL(st.syn_cpu_rate, AG_SYN_AUTH_RATE_DEFAULT);
	CU_ASSERT_EQUAL(st.udp_cpu_rate, 68);
	secret = st.syn_auth_secret;

	/* anygate-dp attaches with two forwarding lcores: the rates are divided (rounded up) */
	dp = ag_shm__attach(shm_name, RING);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	fake_fastpath_alive(dp, 3);
	CU_ASSERT(run_until(syn_rate_is, &want, WAIT_S));
	st = now_settings();
	CU_ASSERT_EQUAL(st.udp_cpu_rate, 34);
	CU_ASSERT_EQUAL(st.syn_auth_secret, secret);
	/* a reload keeps the division and the secret, and applies new rates */
	CU_ASSERT_EQUAL_FATAL(write_conf(RING, "syn_auth_rate = 7; udp_flow_rate = 0;", 128), 0);
	fake_fastpath_alive(dp, 3);
	CU_ASSERT(do_ok("reload", NULL));
	st = now_settings();
	CU_ASSERT_EQUAL(st.syn_cpu_rate, 4);
	CU_ASSERT_EQUAL(st.udp_cpu_rate, 0);
	CU_ASSERT_EQUAL(st.syn_auth_secret, secret);
	ag_shm__close(dp);
	daemon_stop();
}

/* stats: the flow table's fill, and every reason of abi.h with what the fast path did. */
static void test_stats_reasons(void)
{
	json_t *r, *data, *row, *ctl;
	bool seen[AG_R__MAX] = {0};
	const char *action;
	struct ag_shm *dp;
	size_t i;
	int n;

	START();
	dp = ag_shm__attach(shm_name, RING);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	fake_fastpath_counts(dp, AG_R_TX_SYN_CHALLENGE);
	r = ask("stats", NULL);
	data = data_of(r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	CU_ASSERT_EQUAL(int_of(data, "flow_entries"), 42);
	CU_ASSERT_EQUAL(int_of(data, "flow_max_entries"), 4096);
	CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(data, "flow_fill_pct")), 1.0, 0.01);
	/* anygate-dp sweeps its own tables: no sweeper counters from anygated */
	CU_ASSERT_PTR_NULL(json_object_get(data, "flows_removed"));
	/* The control socket's counters: this connection, accepted among others, none refused. */
	ctl = json_object_get(data, "control");
	CU_ASSERT(json_integer_value(json_object_get(ctl, "clients")) >= 1);
	CU_ASSERT(json_integer_value(json_object_get(ctl, "accepted")) >= 1);
	CU_ASSERT(json_is_integer(json_object_get(ctl, "refused_uid")));
	CU_ASSERT(json_is_integer(json_object_get(ctl, "refused_admin_slots")));
	CU_ASSERT(json_is_integer(json_object_get(ctl, "replies_no_room")));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(ctl, "refused_busy")), 0);
	json_array_foreach(json_object_get(data, "reasons"), i, row)
	{
		for (n = 0; n < AG_R__MAX; n++)
			if (!strcmp(json_string_value(json_object_get(row, "reason")),
				    ag_reason__name(n)))
				break;
		CU_ASSERT_FATAL(n < AG_R__MAX);
		seen[n] = true;
		action = json_string_value(json_object_get(row, "action"));
		CU_ASSERT_STRING_EQUAL(action, n < AG_R__DROP_FIRST  ? "pass"
					       : n < AG_R__ACT_FIRST ? "drop"
								     : "act");
		if (n == AG_R_TX_SYN_CHALLENGE)
			CU_ASSERT_EQUAL(int_of(row, "packets"), 4);
	}
	for (n = 0; n < AG_R__MAX; n++)
		CU_ASSERT(seen[n]);
	json_decref(r);
	ag_shm__close(dp);
	daemon_stop();
}

/* ------------------------------------------------------------------------ */

static void remove_everything(void)
{
	if (started) {
		ag_lifecycle__stop(&d, false);
		ag_daemon__fini(&d);
		started = false;
	}
	if (shm_name[0])
		ag_shm__unlink(shm_name);
	unlink(state_path);
	unlink(conf_path);
	unlink(sock_path);
	rmdir(tmpdir);
}

static int suite_init(void)
{
	unsigned int i;

	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/t.conf", tmpdir);
	snprintf(sock_path, sizeof(sock_path), "%s/ctl.sock", tmpdir);
	snprintf(state_path, sizeof(state_path), "%s/state.json", tmpdir);
	snprintf(shm_name, sizeof(shm_name), "ag-unit-daemon-%d", (int)getpid());
	atexit(remove_everything);
	ag_log__set_level(AG_LOG_ERR);
	have_root = geteuid() == 0;
	if (!have_root)
		return 0;
	if (private_netns()) {
		fprintf(stderr, "test_daemon: network namespace: %s\n", strerror(errno));
		return -1;
	}
	for (i = 0; i < N_ENDPOINTS; i++)
		if (open_listener(i))
			return -1;
	return 0;
}

static int suite_clean(void)
{
	unsigned int i;

	for (i = 0; i < N_ENDPOINTS; i++)
		close_listener(i);
	remove_everything();
	return 0;
}

int main(void)
{
	static const struct ag_cu_test tests[] = {
	    {"start publishes; read-only commands", test_start_publishes},
	    {"set weight", test_set_weight},
	    {"set dial", test_set_dial},
	    {"drain and undrain", test_drain_undrain},
	    {"region fail and restore", test_region_fail_restore},
	    {"overrides clear", test_overrides_clear},
	    {"--dry-run changes nothing", test_dry_run},
	    {"--confirm-within rolls back", test_confirm_rollback},
	    {"confirm in time keeps the change", test_confirm_in_time},
	    {"reload refused: bad file, restart-only key", test_reload_refused},
	    {"reload keeps the overrides", test_reload_keeps_overrides},
	    {"check refuses what is not a regular file", test_check_not_regular},
	    {"health: a backend down and up again", test_health_down_up},
	    {"metrics: collect from the segment", test_metrics_collect},
	    {"settings: flow timeouts, budgets per lcore", test_settings_budgets},
	    {"stats: flow table and every reason", test_stats_reasons},
	};

	return AG_CU_MAIN("daemon", suite_init, suite_clean, tests);
}
