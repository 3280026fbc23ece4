/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control socket: the request syntax (split/join/UTF-8), the human renderer,
 * the server on real unix sockets in a private temporary directory (its loop
 * runs in a thread of this process; clients are this thread, helper threads,
 * and children that drop to the unprivileged user "nobody"), the client
 * library, and the anygatectl binary against that server.
 *
 * Every wait is bounded (socket timeouts, poll timeouts, bounded retry
 * loops); nothing asserts on elapsed time.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "abi.h"
#include "ctl.h"
#include "ctl_client.h"
#include "json_out.h"
#include "log.h"
#include "loop.h"

extern char **environ;

static char tmpdir[] = "/tmp/ag-test-ctl-XXXXXX";
static char ctl_bin[PATH_MAX]; /* anygatectl, copied where "nobody" may run it */

#define NOBODY	     65534
#define ADMIN_GID    4242 /* need not exist: only compared */
#define IO_TIMEOUT_S 10	  /* every blocking socket call gives up after this */

static bool is_root(void)
{
	return geteuid() == 0;
}

/* CU_ASSERT_STRING_EQUAL, but a NULL (no reply) fails instead of crashing. */
#define CHECK_STR(got, want) check_str(__LINE__, (got), (want))

static void check_str(int line, const char *got, const char *want)
{
	bool ok = got && !strcmp(got, want);

	if (!ok)
		printf("\n    line %d: got \"%s\", want \"%s\"", line, got ? got : "(null)", want);
	CU_assertImplementation(ok, line, "CHECK_STR", __FILE__, "", CU_FALSE);
}

static void skip_note(const char *what)
{
	printf("\n    skipped (needs root): %s ", what);
}

/* ------------------------------------------------------------------------ */
/* The test daemon's command table                                          */

struct tstate {
	long value;
	long value_reads; /* "value" requests answered (atomic: the server's thread writes) */
	long produced;	  /* numbers "count" streams produced, all together (atomic) */
	long pieces;	  /* pieces "count" streams produced (atomic) */
};

static int cmd_echo(struct ag_ctl_req *req, json_t **data, char **err)
{
	json_t *a = json_array();
	int i;

	for (i = 0; a && i < req->argc; i++)
		json_array_append_new(a, json_string(req->argv[i]));
	*data = a;
	return a ? 0 : -ENOMEM;
}

static int cmd_value(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct tstate *st = req->ctx;

	__atomic_add_fetch(&st->value_reads, 1, __ATOMIC_SEQ_CST);
	*data = json_pack("{s:I}", "value", (json_int_t)st->value);
	return 0;
}

static int cmd_set_value(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct tstate *st = req->ctx;
	char *end;
	long v;

	errno = 0;
	v = strtol(req->argv[0], &end, 10);
	if (errno || end == req->argv[0] || *end || v < 0 || v > 1000)
		return ag_ctl__fail(err, AG_CTL_EINVALID, "value %s: must be 0-1000", req->argv[0]);
	st->value = v;
	*data = json_pack("{s:I}", "value", (json_int_t)v);
	return 0;
}

static int cmd_big(struct ag_ctl_req *req, json_t **data, char **err)
{
	long n = atol(req->argv[0]);
	char *s;

	if (n < 0 || n > (32l << 20))
		return ag_ctl__fail(err, AG_CTL_EINVALID, "big: 0-32 MiB");
	s = malloc(n + 1);
	if (!s)
		return -ENOMEM;
	memset(s, 'x', n);
	s[n] = '\0';
	*data = json_stringn(s, n);
	free(s);
	return 0;
}

static int cmd_fail_busy(struct ag_ctl_req *req, json_t **data, char **err)
{
	return -EBUSY;
}

static int cmd_fail_code(struct ag_ctl_req *req, json_t **data, char **err)
{
	/* A handler that leaves data behind on failure: the server drops it. */
	*data = json_string("leaked?");
	return 77;
}

static int cmd_ctl_stats(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct ag_ctl_stats s;

	ag_ctl__stats(req->ctl, &s);
	*data = json_pack(
	    "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I}",
	    "clients", (json_int_t)s.clients, "admins", (json_int_t)s.admins, "streams",
	    (json_int_t)s.streams, "closed_idle", (json_int_t)s.closed_idle, "refused_busy",
	    (json_int_t)s.refused_busy, "refused_admin_slots", (json_int_t)s.refused_admin_slots,
	    "refused_uid", (json_int_t)s.refused_uid, "closed_long_line",
	    (json_int_t)s.closed_long_line, "denied", (json_int_t)s.denied, "replies_too_big",
	    (json_int_t)s.replies_too_big, "replies_no_room", (json_int_t)s.replies_no_room,
	    "streams_failed", (json_int_t)s.streams_failed, "stream_waits",
	    (json_int_t)s.stream_waits, "queued", (json_int_t)s.queued, "queued_peak",
	    (json_int_t)s.queued_peak, "queued_peak_client", (json_int_t)s.queued_peak_client,
	    "requests", (json_int_t)s.requests);
	return 0;
}

/* "count N [FAIL_AT]": the numbers 0..N-1 as an array, streamed; FAIL_AT: fails there. */
struct count_stream {
	struct ag_ctl_stream s;
	struct tstate *st;
	long next, n, fail_at;
};

#define COUNT_PIECE 4096 /* numbers of one piece: at most 8 bytes each */

static int count_next(struct ag_ctl_stream *s, char **err)
{
	struct count_stream *c = ag_container_of(s, struct count_stream, s);
	char buf[24];
	int i, len;

	__atomic_add_fetch(&c->st->pieces, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < COUNT_PIECE && c->next < c->n; i++, c->next++) {
		if (c->next == c->fail_at) {
			ag_ctl_stream__text(s, c->next ? "]" : "[]", c->next ? 1 : 2);
			return ag_ctl__fail(err, AG_CTL_EINTERNAL, "failed at %ld", c->next);
		}
		len = snprintf(buf, sizeof(buf), "%s%ld", c->next ? "," : "[", c->next);
		if (ag_ctl_stream__text(s, buf, len))
			return -ENOMEM;
		__atomic_add_fetch(&c->st->produced, 1, __ATOMIC_SEQ_CST);
	}
	if (c->next < c->n)
		return 1;
	return ag_ctl_stream__text(s, c->n ? "]" : "[]", c->n ? 1 : 2);
}

static void count_free(struct ag_ctl_stream *s)
{
	free(ag_container_of(s, struct count_stream, s));
}

static int cmd_count(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct count_stream *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->st = req->ctx;
	c->n = atol(req->argv[0]);
	c->fail_at = req->argc > 1 ? atol(req->argv[1]) : -1;
	c->s.next = count_next;
	c->s.free = count_free;
	req->stream = &c->s;
	return 0;
}

static int cmd_progress(struct ag_ctl_req *req, json_t **data, char **err)
{
	struct tstate *st = req->ctx;

	*data = json_pack("{s:I, s:I}", "produced",
			  (json_int_t)__atomic_load_n(&st->produced, __ATOMIC_SEQ_CST), "pieces",
			  (json_int_t)__atomic_load_n(&st->pieces, __ATOMIC_SEQ_CST));
	return 0;
}

#define ROWS_JSON                                                                                  \
	"[{\"name\":\"a\",\"weight\":5,\"up\":true},"                                              \
	"{\"name\":\"bbbb\",\"weight\":100,\"up\":false,\"extra\":\"x\"}]"
#define ROWS_TEXT                                                                                  \
	"NAME  WEIGHT  UP     EXTRA\n"                                                             \
	"a          5  true   -\n"                                                                 \
	"bbbb     100  false  x\n"

static int cmd_rows(struct ag_ctl_req *req, json_t **data, char **err)
{
	*data = json_loads(ROWS_JSON, 0, NULL);
	return *data ? 0 : -ENOMEM;
}

static const struct ag_ctl_cmd test_cmds[] = {
    {{"echo"}, "[WORD...]", 0, -1, AG_CTL_READ, cmd_echo, "answer the words"},
    {{"value"}, "", 0, 0, AG_CTL_READ, cmd_value, "the value"},
    {{"set", "value"}, "N", 1, 1, AG_CTL_ADMIN, cmd_set_value, "change the value"},
    {{"big"}, "BYTES", 1, 1, AG_CTL_READ, cmd_big, "a long string"},
    {{"fail", "busy"}, "", 0, 0, AG_CTL_READ, cmd_fail_busy, "fail with -EBUSY"},
    {{"fail", "code"}, "", 0, 0, AG_CTL_READ, cmd_fail_code, "fail with a bad code"},
    {{"ctl", "stats"}, "", 0, 0, AG_CTL_READ, cmd_ctl_stats, "server counters"},
    {{"rows"}, "", 0, 0, AG_CTL_READ, cmd_rows, "a table"},
    {{"count"}, "N [FAIL_AT]", 1, 2, AG_CTL_READ, cmd_count, "0..N-1, streamed"},
    {{"progress"}, "", 0, 0, AG_CTL_READ, cmd_progress, "what count streams produced"},
};

#define N_TEST_CMDS (sizeof(test_cmds) / sizeof(test_cmds[0]))

/* ------------------------------------------------------------------------ */
/* A server on its own loop in a thread                                     */

struct server {
	struct ag_loop loop;
	struct ag_ctl *ctl;
	struct ag_ev stop;
	pthread_t thread;
	bool running;
	char path[PATH_MAX];
	struct tstate st;
	struct ag_ctl_stats stats; /* at server_stop */
};

static void stop_cb(struct ag_ev *ev, uint32_t events)
{
	struct server *s = ev->data;
	uint64_t v;

	if (read(ev->fd, &v, sizeof(v)) == sizeof(v))
		ag_loop__stop(&s->loop);
}

static void *server_main(void *arg)
{
	struct server *s = arg;

	ag_loop__run(&s->loop);
	return NULL;
}

static void opts_default(struct ag_ctl_opts *o, struct server *s)
{
	memset(o, 0, sizeof(*o));
	o->path = s->path;
	o->version = "test-1.2";
	/* "nobody" reaches the socket through its group; members of ADMIN_GID are admins. */
	o->sock_gid = is_root() ? NOBODY : (gid_t)-1;
	o->admin_gid = ADMIN_GID;
	o->cmds = test_cmds;
	o->n_cmds = N_TEST_CMDS;
	o->ctx = &s->st;
}

/* Returns 0 or -errno (errno of ag_ctl__new). */
static int server_start(struct server *s, const char *name, const struct ag_ctl_opts *opts)
{
	struct ag_ctl_opts o;

	memset(s, 0, sizeof(*s));
	snprintf(s->path, sizeof(s->path), "%s/%s", tmpdir, name);
	if (ag_loop__init(&s->loop))
		return -errno;
	if (opts) {
		o = *opts;
		o.path = s->path;
		o.ctx = &s->st;
	} else {
		opts_default(&o, s);
	}
	s->ctl = ag_ctl__new(&s->loop, &o);
	if (!s->ctl) {
		int err = -errno;

		ag_loop__fini(&s->loop);
		return err;
	}
	s->stop.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->stop.cb = stop_cb;
	s->stop.data = s;
	if (s->stop.fd < 0 || ag_loop__add(&s->loop, &s->stop, EPOLLIN) ||
	    pthread_create(&s->thread, NULL, server_main, s))
		return -EIO;
	s->running = true;
	return 0;
}

static void server_stop(struct server *s)
{
	uint64_t one = 1;

	if (!s->running)
		return;
	if (write(s->stop.fd, &one, sizeof(one)) != sizeof(one))
		CU_FAIL("eventfd write");
	pthread_join(s->thread, NULL);
	ag_ctl__stats(s->ctl, &s->stats);
	ag_ctl__free(s->ctl);
	ag_loop__del(&s->loop, &s->stop);
	close(s->stop.fd);
	ag_loop__fini(&s->loop);
	s->running = false;
}

/* ------------------------------------------------------------------------ */
/* Raw clients (for what the client library would refuse to send)           */

struct tconn {
	int fd;
	char *buf;
	size_t len, cap;
};

static int set_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

static int raw_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (set_timeouts(fd) || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool tc_open(struct tconn *t, const char *path)
{
	memset(t, 0, sizeof(*t));
	t->fd = raw_connect(path);
	return t->fd >= 0;
}

static void tc_close(struct tconn *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	free(t->buf);
	t->buf = NULL;
}

static bool tc_send(struct tconn *t, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = send(t->fd, c, len, MSG_NOSIGNAL);

		if (n <= 0)
			return false;
		c += n;
		len -= n;
	}
	return true;
}

static bool tc_sends(struct tconn *t, const char *s)
{
	return tc_send(t, s, strlen(s));
}

/*
 * The next line, malloc'd without "\n"; NULL on EOF, error or timeout (then
 * *eof tells whether the server closed cleanly).
 */
static char *tc_line(struct tconn *t, bool *eof)
{
	for (;;) {
		char *nl = t->len ? memchr(t->buf, '\n', t->len) : NULL;
		ssize_t n;

		if (nl) {
			size_t l = nl - t->buf;
			char *line = strndup(t->buf, l);

			memmove(t->buf, nl + 1, t->len - l - 1);
			t->len -= l + 1;
			return line;
		}
		if (t->cap - t->len < 65536) {
			t->cap = t->cap ? t->cap * 2 : 65536;
			t->buf = realloc(t->buf, t->cap);
			if (!t->buf)
				return NULL;
		}
		n = recv(t->fd, t->buf + t->len, t->cap - t->len, 0);
		if (n <= 0) {
			if (eof)
				*eof = n == 0 || errno == ECONNRESET;
			return NULL;
		}
		t->len += n;
	}
}

/* The next line as JSON (NULL when none or not JSON). */
static json_t *tc_json(struct tconn *t)
{
	char *line = tc_line(t, NULL);
	json_t *j = line ? json_loads(line, 0, NULL) : NULL;

	free(line);
	return j;
}

static const char *code_of(const json_t *r)
{
	if (!r)
		return "(no reply)";
	if (json_is_true(json_object_get(r, "ok")))
		return "ok";
	return json_string_value(json_object_get(r, "code"));
}

static const char *error_of(const json_t *r)
{
	const char *e = json_string_value(json_object_get(r, "error"));

	return e ? e : "";
}

/* True when the server closes the connection within IO_TIMEOUT_S (after any lines). */
static bool tc_wait_eof(struct tconn *t)
{
	bool eof = false;
	char *line;
	int lines = 0;

	while ((line = tc_line(t, &eof)) && lines++ < 1000)
		free(line);
	free(line);
	return eof;
}

/* ------------------------------------------------------------------------ */
/* Library client helpers                                                   */

static uint64_t deadline_in(double s)
{
	return ag_now_ns() + (uint64_t)(s * 1e9);
}

/* One request on a fresh connection: the reply, or NULL (err in *errp). */
static json_t *askv(const char *path, int *errp, ...)
{
	char *argv[16];
	struct ag_ctlc c;
	json_t *reply = NULL;
	va_list ap;
	int argc = 0, err;

	va_start(ap, errp);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	err = ag_ctlc__connect(&c, path, deadline_in(IO_TIMEOUT_S));
	if (!err) {
		err = ag_ctlc__request(&c, argc, argv, &reply);
		ag_ctlc__close(&c);
	}
	if (errp)
		*errp = err;
	return reply;
}

#define ASK(path, ...) askv(path, NULL, __VA_ARGS__, NULL)

static long value_of(const char *path)
{
	json_t *r = ASK(path, "value");
	long v = -1;

	if (r && json_is_true(json_object_get(r, "ok")))
		v = json_integer_value(json_object_get(json_object_get(r, "data"), "value"));
	json_decref(r);
	return v;
}

static json_int_t stat_of(const char *path, const char *key)
{
	json_t *r = ASK(path, "ctl", "stats");
	json_int_t v = -1;

	if (r && json_is_true(json_object_get(r, "ok")))
		v = json_integer_value(json_object_get(json_object_get(r, "data"), key));
	json_decref(r);
	return v;
}

/* ------------------------------------------------------------------------ */
/* Request syntax                                                           */

struct split_case {
	const char *in;
	size_t len;	     /* 0: strlen */
	const char *words;   /* words joined by '|', or NULL when refused */
	const char *problem; /* substring of the problem when refused */
};

static void test_split(void)
{
	static const struct split_case cases[] = {
	    {"ping", 0, "ping", NULL},
	    {"  set   weight\tx 5 ", 0, "set|weight|x|5", NULL},
	    {"say \"hello world\"", 0, "say|hello world", NULL},
	    {"a\"b c\"d", 0, "ab cd", NULL},
	    {"x \"\" y", 0, "x||y", NULL},
	    {"\"x\\\"y\"", 0, "x\"y", NULL},
	    {"\"a\\\\b\"", 0, "a\\b", NULL},
	    {"a\\b", 0, "a\\b", NULL},
	    {"\"a\\b\"", 0, "a\\b", NULL},
	    {"\"tab\there\"", 0, "tab\there", NULL},
	    {"caf\xc3\xa9 \xf0\x9f\x98\x80", 0, "caf\xc3\xa9|\xf0\x9f\x98\x80", NULL},
	    {"", 0, "", NULL},
	    {" \t ", 0, "", NULL},
	    {"\"abc", 0, NULL, "unterminated quote"},
	    {"a \"b\\\"", 0, NULL, "unterminated quote"},
	    {"a\x01"
	     "b",
	     0, NULL, "control character"},
	    {"a\x7f", 0, NULL, "control character"},
	    {"a\rb", 0, NULL, "control character"},
	    {"a\0b", 3, NULL, "NUL byte"},
	    {"\xff", 0, NULL, "UTF-8"},
	    {"caf\xc3\x28", 0, NULL, "UTF-8"},
	};
	struct ag_ctl_words *w = malloc(sizeof(*w));
	const char *problem;
	unsigned int i;
	char joined[8192], *line;
	int k, rc;

	CU_ASSERT_FATAL(w != NULL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct split_case *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->in);

		problem = NULL;
		rc = ag_ctl__split(w, c->in, len, &problem);
		if (!c->words) {
			CU_ASSERT_EQUAL(rc, -EINVAL);
			CU_ASSERT(problem && strstr(problem, c->problem));
			continue;
		}
		CU_ASSERT_EQUAL(rc, 0);
		if (rc)
			continue;
		joined[0] = '\0';
		for (k = 0; k < w->argc; k++)
			snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s",
				 k ? "|" : "", w->argv[k]);
		if (strcmp(joined, c->words))
			printf("\n    case %u: got \"%s\", want \"%s\"", i, joined, c->words);
		CHECK_STR(joined, c->words);
		CU_ASSERT_PTR_NULL(w->argv[w->argc]);
		/* "" splits into one empty word; nothing at all into none. */
		if (!strcmp(c->in, "x \"\" y"))
			CU_ASSERT_EQUAL(w->argc, 3);
		if (!c->in[0])
			CU_ASSERT_EQUAL(w->argc, 0);
	}

	/* Limits: 64 words and 4096 bytes pass, one more of either does not. */
	line = malloc(AG_CTL_LINE_MAX + 2);
	CU_ASSERT_FATAL(line != NULL);
	for (k = 0; k < 64; k++)
		memcpy(line + 2 * k, "a ", 2);
	CU_ASSERT_EQUAL(ag_ctl__split(w, line, 127, &problem), 0);
	CU_ASSERT_EQUAL(w->argc, 64);
	memcpy(line + 128, "a", 1);
	CU_ASSERT_EQUAL(ag_ctl__split(w, line, 129, &problem), -EINVAL);
	CU_ASSERT(strstr(problem, "64 words") != NULL);
	/* 64 empty words: the most output per input byte. */
	for (k = 0; k < 64; k++)
		memcpy(line + 3 * k, "\"\" ", 3);
	CU_ASSERT_EQUAL(ag_ctl__split(w, line, 3 * 64, &problem), 0);
	CU_ASSERT_EQUAL(w->argc, 64);
	CHECK_STR(w->argv[63], "");
	memset(line, 'a', AG_CTL_LINE_MAX + 1);
	CU_ASSERT_EQUAL(ag_ctl__split(w, line, AG_CTL_LINE_MAX, &problem), 0);
	CU_ASSERT_EQUAL(strlen(w->argv[0]), AG_CTL_LINE_MAX);
	CU_ASSERT_EQUAL(ag_ctl__split(w, line, AG_CTL_LINE_MAX + 1, &problem), -EINVAL);
	CU_ASSERT(strstr(problem, "longer") != NULL);
	free(line);
	free(w);
}

static void test_utf8(void)
{
	static const struct {
		const char *s;
		bool ok;
	} v[] = {
	    {"plain ascii", true},
	    {"\xc3\xa9", true},		 /* U+00E9 */
	    {"\xe2\x82\xac", true},	 /* U+20AC */
	    {"\xed\x9f\xbf", true},	 /* U+D7FF, last before surrogates */
	    {"\xee\x80\x80", true},	 /* U+E000, first after */
	    {"\xf0\x9f\x98\x80", true},	 /* U+1F600 */
	    {"\xf4\x8f\xbf\xbf", true},	 /* U+10FFFF */
	    {"\x80", false},		 /* lone continuation */
	    {"\xc0\xaf", false},	 /* overlong '/' */
	    {"\xc1\xbf", false},	 /* overlong */
	    {"\xe0\x80\xaf", false},	 /* overlong, 3 bytes */
	    {"\xf0\x80\x80\xaf", false}, /* overlong, 4 bytes */
	    {"\xed\xa0\x80", false},	 /* U+D800 surrogate */
	    {"\xed\xbf\xbf", false},	 /* U+DFFF surrogate */
	    {"\xf4\x90\x80\x80", false}, /* U+110000 */
	    {"\xf5\x80\x80\x80", false},
	    {"\xe2\x82", false}, /* truncated */
	    {"\xc3", false},
	    {"\xc3\x28", false}, /* bad continuation */
	    {"\xf0\x9f\x98", false},
	    {"\xfe\xff", false},
	};
	unsigned int i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		bool got = ag_ctl__utf8_valid(v[i].s, strlen(v[i].s));

		if (got != v[i].ok)
			printf("\n    utf8 case %u: got %d", i, got);
		CU_ASSERT_EQUAL(got, v[i].ok);
	}
}

/* join then split gives back the words, for words made of the awkward characters. */
static void test_join_roundtrip(void)
{
	static const char *const atoms[] = {"a", " ", "\t", "\"", "\\", "\xc3\xa9", "z9", "-"};
	struct ag_ctl_words *w = malloc(sizeof(*w));
	char words[10][64], *argv[10], *line;
	const char *problem;
	uint32_t seed = 12345;
	int iter, i, n, k, mismatches = 0;

	CU_ASSERT_FATAL(w != NULL);
	for (iter = 0; iter < 3000; iter++) {
		n = 1 + (seed = seed * 1103515245 + 12345) % 10;
		for (i = 0; i < n; i++) {
			int atomsn = (seed = seed * 1103515245 + 12345) >> 16 & 7;

			words[i][0] = '\0';
			for (k = 0; k < atomsn; k++)
				strcat(words[i],
				       atoms[(seed = seed * 1103515245 + 12345) >> 16 & 7]);
			argv[i] = words[i];
		}
		line = ag_ctl__join(n, argv);
		CU_ASSERT_FATAL(line != NULL);
		if (ag_ctl__split(w, line, strlen(line), &problem) || w->argc != n) {
			mismatches++;
		} else {
			for (i = 0; i < n; i++)
				if (strcmp(w->argv[i], argv[i]))
					mismatches++;
		}
		free(line);
	}
	CU_ASSERT_EQUAL(mismatches, 0);

	/* Plain words go as they are. */
	argv[0] = "set";
	argv[1] = "weight";
	argv[2] = "a b";
	argv[3] = "";
	line = ag_ctl__join(4, argv);
	CHECK_STR(line, "set weight \"a b\" \"\"");
	free(line);
	/* A word that cannot travel in one line of text. */
	argv[0] = "a\nb";
	errno = 0;
	CU_ASSERT_PTR_NULL(ag_ctl__join(1, argv));
	CU_ASSERT_EQUAL(errno, EINVAL);
	argv[0] = "\xff";
	CU_ASSERT_PTR_NULL(ag_ctl__join(1, argv));
	free(w);
}

/* ------------------------------------------------------------------------ */
/* Human renderer                                                           */

static void expect_render(const char *json, const char *want)
{
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	char *got = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&got, &len);

	CU_ASSERT_FATAL(v != NULL && f != NULL);
	CU_ASSERT_EQUAL(ag_json_out__human(f, v), 0);
	fclose(f);
	if (strcmp(got, want))
		printf("\n    render %s:\n---got---\n%s---want---\n%s", json, got, want);
	CHECK_STR(got, want);
	free(got);
	json_decref(v);
}

static void test_render(void)
{
	expect_render(ROWS_JSON, ROWS_TEXT);
	expect_render("{\"state\":\"up\",\"listeners\":3,\"share\":0.25,\"nested\":{\"a\":1},"
		      "\"rows\":[{\"x\":1,\"y\":\"two\"}],\"none\":[],\"gone\":null}",
		      "state:     up\n"
		      "listeners: 3\n"
		      "share:     0.25\n"
		      "nested:    {\"a\":1}\n"
		      "rows:\n"
		      "  X  Y\n"
		      "  1  two\n"
		      "none:      []\n"
		      "gone:      -\n");
	expect_render("\"pong\"", "pong\n");
	expect_render("\"line 1\\nline 2\"", "line 1\nline 2\n");
	expect_render("42", "42\n");
	expect_render("2.0", "2\n");
	expect_render("0.123456789", "0.123457\n");
	expect_render("true", "true\n");
	expect_render("null", "");
	expect_render("[]", "(none)\n");
	expect_render("{}", "");
	expect_render("[\"a\",1,null,[1,2]]", "a\n1\n-\n[1,2]\n");
	/* Cells stay on one line; widths count characters, not bytes. */
	expect_render("[{\"k\":\"a\\nb\",\"v\":1},{\"k\":\"\xc3\xa9t\xc3\xa9\",\"v\":22}]",
		      "K      V\n"
		      "a\\nb   1\n"
		      "\xc3\xa9t\xc3\xa9   22\n");
	/* Rows lacking a column show "-"; a column of numbers and nulls is still numeric. */
	expect_render("[{\"id\":1,\"n\":null},{\"id\":10}]", "ID  N\n"
							     " 1  -\n"
							     "10  -\n");
}

/* ------------------------------------------------------------------------ */
/* The server                                                               */

static struct server main_srv;

static void test_greeting_and_builtins(void)
{
	struct tconn t;
	struct ag_ctlc c;
	json_t *r, *d, *row;
	char *line;
	size_t i;
	bool saw_set = false, saw_help = false;

	CU_ASSERT_FATAL(tc_open(&t, main_srv.path));
	line = tc_line(&t, NULL);
	CHECK_STR(line, "{\"anygate\":\"test-1.2\",\"protocol\":1}");
	free(line);
	/* Many requests on one connection, each with exactly one reply line. */
	CU_ASSERT(tc_sends(&t, "ping\nversion\nping\n"));
	line = tc_line(&t, NULL);
	CHECK_STR(line, "{\"ok\":true,\"data\":\"pong\"}");
	free(line);
	r = tc_json(&t);
	d = json_object_get(r, "data");
	CHECK_STR(json_string_value(json_object_get(d, "anygate")), "test-1.2");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(d, "protocol")), AG_CTL_PROTOCOL);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(d, "abi")), AG_ABI_VERSION);
	json_decref(r);
	line = tc_line(&t, NULL);
	CHECK_STR(line, "{\"ok\":true,\"data\":\"pong\"}");
	free(line);
	tc_close(&t);

	CU_ASSERT_EQUAL_FATAL(ag_ctlc__connect(&c, main_srv.path, deadline_in(IO_TIMEOUT_S)), 0);
	CHECK_STR(c.version, "test-1.2");
	ag_ctlc__close(&c);

	r = ASK(main_srv.path, "help");
	CHECK_STR(code_of(r), "ok");
	d = json_object_get(r, "data");
	CU_ASSERT_EQUAL(json_array_size(d), 4 + N_TEST_CMDS);
	json_array_foreach(d, i, row)
	{
		const char *cmd = json_string_value(json_object_get(row, "command"));

		if (!strcmp(cmd, "set value")) {
			saw_set = true;
			CHECK_STR(json_string_value(json_object_get(row, "args")), "N");
			CHECK_STR(json_string_value(json_object_get(row, "access")), "admin");
			CHECK_STR(json_string_value(json_object_get(row, "help")),
				  "change the value");
		}
		if (!strcmp(cmd, "help")) {
			saw_help = true;
			CHECK_STR(json_string_value(json_object_get(row, "access")), "read");
		}
	}
	CU_ASSERT(saw_set && saw_help);
	json_decref(r);

	/* help with words: the commands starting with them. */
	r = ASK(main_srv.path, "help", "fail");
	d = json_object_get(r, "data");
	CU_ASSERT_EQUAL(json_array_size(d), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(d, 0), "command")), "fail busy");
	json_decref(r);
	r = ASK(main_srv.path, "help", "nosuch");
	CHECK_STR(code_of(r), "unknown");
	json_decref(r);

	r = ASK(main_srv.path, "whoami");
	d = json_object_get(r, "data");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(d, "uid")), geteuid());
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(d, "pid")), getpid());
	CHECK_STR(json_string_value(json_object_get(d, "access")), is_root() ? "admin" : "read");
	json_decref(r);
}

static void expect_error(json_t *r, const char *code, const char *msg_part)
{
	CHECK_STR(code_of(r), code);
	if (!strstr(error_of(r), msg_part))
		printf("\n    error \"%s\" lacks \"%s\"", error_of(r), msg_part);
	CU_ASSERT(strstr(error_of(r), msg_part) != NULL);
	/* Nothing else in an error reply. */
	CU_ASSERT_EQUAL(json_object_size(r), 3);
	json_decref(r);
}

static void test_errors(void)
{
	const char *p = main_srv.path;
	struct tconn t;
	json_t *r;

	expect_error(ASK(p, "nosuch"), "unknown",
		     "unknown command \"nosuch\"; \"help\" lists the commands");
	expect_error(ASK(p, "set", "nosuch", "1"), "unknown",
		     "unknown command \"set nosuch\"; did you mean: set value?");
	expect_error(ASK(p, "set"), "unknown", "did you mean: set value?");
	expect_error(ASK(p, "fail"), "unknown", "did you mean: fail busy, fail code?");
	expect_error(ASK(p, "value", "1"), "usage", "usage: value");
	expect_error(ASK(p, "set", "value"), "usage", "usage: set value N");
	expect_error(ASK(p, "set", "value", "1", "2"), "usage", "usage: set value N");
	expect_error(ASK(p, "ping", "extra"), "usage", "usage: ping");
	/* -errno from a handler without a message: mapped code, strerror text. */
	expect_error(ASK(p, "fail", "busy"), "busy", "fail busy: Device or resource busy");
	/* A code outside the enum is an internal error; the data left behind is dropped. */
	expect_error(ASK(p, "fail", "code"), "internal", "fail code");
	if (is_root())
		expect_error(ASK(p, "set", "value", "abc"), "invalid", "value abc: must be 0-1000");

	/* Empty and blank requests get an answer too. */
	CU_ASSERT_FATAL(tc_open(&t, p));
	json_decref(tc_json(&t));
	CU_ASSERT(tc_sends(&t, "\n \t \n"));
	expect_error(tc_json(&t), "usage", "empty request");
	expect_error(tc_json(&t), "usage", "empty request");
	tc_close(&t);

	/* Exit codes anygatectl derives from replies. */
	r = json_pack("{s:b}", "ok", 1);
	CU_ASSERT_EQUAL(ag_ctlc__reply_exit(r), AG_EXIT_OK);
	json_decref(r);
	{
		static const struct {
			const char *code;
			int exit;
		} m[] = {
		    {"usage", AG_EXIT_USAGE},	{"unknown", AG_EXIT_USAGE},
		    {"denied", AG_EXIT_DENIED}, {"invalid", AG_EXIT_FAILED},
		    {"busy", AG_EXIT_FAILED},	{"internal", AG_EXIT_FAILED},
		};
		unsigned int i;

		for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
			r = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "x", "code", m[i].code);
			CU_ASSERT_EQUAL(ag_ctlc__reply_exit(r), m[i].exit);
			json_decref(r);
		}
	}
}

static void test_admin_root(void)
{
	json_t *r;

	if (!is_root()) {
		skip_note("a root peer is admin");
		return;
	}
	r = ASK(main_srv.path, "set", "value", "7");
	CHECK_STR(code_of(r), "ok");
	json_decref(r);
	CU_ASSERT_EQUAL(value_of(main_srv.path), 7);
}

/*
 * Runs in a forked child of this multi-threaded process: raw system calls and
 * stack buffers only (no malloc: another thread may have held its lock at fork).
 * Drops to uid "nobody" with the given groups, connects, sends `req` and
 * checks that the reply lines contain want[0..n). Exit status: 0 all as
 * expected; 10+i reply i differs; 2 privilege drop failed; 3 connect failed
 * with errno != want_connect_errno (or succeeded when a failure was wanted);
 * 4 no greeting; 0 too when the connect failed as wanted.
 */
static void child_client(const char *path, gid_t gid, const gid_t *groups, int ngroups,
			 int want_connect_errno, const char *req, const char *const *want, int n)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char buf[8192];
	size_t len = 0;
	int fd, i;

	if (setgroups(ngroups, groups) || setgid(gid) || setuid(NOBODY))
		_exit(2);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sun.sun_path, path);
	if (fd < 0 || set_timeouts(fd))
		_exit(3);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		_exit(errno == want_connect_errno ? 0 : 3);
	if (want_connect_errno)
		_exit(3);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		_exit(3);
	/* Greeting plus n replies. */
	for (i = -1; i < n; i++) {
		char *nl;

		while (!(nl = memchr(buf, '\n', len))) {
			ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);

			if (r <= 0)
				_exit(i < 0 ? 4 : 10 + i);
			len += r;
		}
		*nl = '\0';
		if (i >= 0 && !strstr(buf, want[i]))
			_exit(10 + i);
		if (i < 0 && !strstr(buf, "\"protocol\":1"))
			_exit(4);
		len -= nl + 1 - buf;
		memmove(buf, nl + 1, len);
	}
	_exit(0);
}

static int run_child(const char *path, gid_t gid, const gid_t *groups, int ngroups,
		     int want_connect_errno, const char *req, const char *const *want, int n)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		child_client(path, gid, groups, ngroups, want_connect_errno, req, want, n);
	/* The child's socket timeouts bound this wait. */
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void test_read_only_peer(void)
{
	static const char *const want[] = {
	    "\"uid\":65534", "\"access\":\"read\"", "\"code\":\"denied\"",
	    "\"value\":7",   "\"data\":\"pong\"",
	};
	const gid_t nogroup = NOBODY;
	json_t *r;

	if (!is_root()) {
		skip_note("read-only peer (needs setuid)");
		return;
	}
	r = ASK(main_srv.path, "set", "value", "7");
	json_decref(r);
	/* "nobody" in the socket's group: may read, may not change. */
	CU_ASSERT_EQUAL(run_child(main_srv.path, NOBODY, &nogroup, 1, 0,
				  "whoami\nwhoami\nset value 99\nvalue\nping\n", want, 5),
			0);
	CU_ASSERT_EQUAL(value_of(main_srv.path), 7);
	CU_ASSERT(stat_of(main_srv.path, "denied") >= 1);
	/* Outside the socket's group: mode 0660 keeps it out entirely. */
	CU_ASSERT_EQUAL(run_child(main_srv.path, 1234, NULL, 0, EACCES, "", NULL, 0), 0);
}

static void test_admin_group_peer(void)
{
	static const char *const want_admin[] = {
	    "\"access\":\"admin\"",
	    "\"ok\":true,\"data\":{\"value\":11}",
	    "\"ok\":true,\"data\":{\"value\":12}",
	};
	const gid_t supp_admin[] = {NOBODY, ADMIN_GID};
	const gid_t supp_sock[] = {NOBODY};

	if (!is_root()) {
		skip_note("admin group peer (needs setuid)");
		return;
	}
	/* Admin through a supplementary group (SO_PEERGROUPS) ... */
	CU_ASSERT_EQUAL(run_child(main_srv.path, NOBODY, supp_admin, 2, 0,
				  "whoami\nset value 11\nset value 12\n", want_admin, 3),
			0);
	CU_ASSERT_EQUAL(value_of(main_srv.path), 12);
	/* ... and through the primary group (socket reached via a supplementary one). */
	CU_ASSERT_EQUAL(run_child(main_srv.path, ADMIN_GID, supp_sock, 1, 0,
				  "whoami\nset value 11\n", want_admin, 2),
			0);
	CU_ASSERT_EQUAL(value_of(main_srv.path), 11);
}

/* 100 clients at once from 4 threads, each pipelining several requests. */
#define CONC_CLIENTS 100
#define CONC_THREADS 4
#define CONC_REQS    5

struct conc_arg {
	int first, n;
	int good, bad;
};

static void *conc_main(void *p)
{
	struct conc_arg *a = p;
	struct tconn t[CONC_CLIENTS];
	char req[256], want[256];
	int i, j;

	for (i = 0; i < a->n; i++) {
		if (!tc_open(&t[i], main_srv.path)) {
			a->bad += CONC_REQS;
			t[i].fd = -1;
			continue;
		}
		free(tc_line(&t[i], NULL));
	}
	/* Every connection is open before any request: all 100 are served together. */
	for (i = 0; i < a->n; i++) {
		size_t o = 0;

		for (j = 0; j < CONC_REQS; j++)
			o += snprintf(req + o, sizeof(req) - o, "echo c%d \"r %d\"\n", a->first + i,
				      j);
		if (t[i].fd >= 0 && !tc_send(&t[i], req, o))
			a->bad++;
	}
	for (i = 0; i < a->n; i++) {
		for (j = 0; j < CONC_REQS && t[i].fd >= 0; j++) {
			char *line = tc_line(&t[i], NULL);

			snprintf(want, sizeof(want), "{\"ok\":true,\"data\":[\"c%d\",\"r %d\"]}",
				 a->first + i, j);
			if (line && !strcmp(line, want))
				a->good++;
			else
				a->bad++;
			free(line);
		}
		tc_close(&t[i]);
	}
	return NULL;
}

static void test_concurrent_clients(void)
{
	struct conc_arg args[CONC_THREADS];
	pthread_t th[CONC_THREADS];
	int i, good = 0, bad = 0;

	for (i = 0; i < CONC_THREADS; i++) {
		args[i] = (struct conc_arg){.first = i * (CONC_CLIENTS / CONC_THREADS),
					    .n = CONC_CLIENTS / CONC_THREADS};
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, conc_main, &args[i]) == 0);
	}
	for (i = 0; i < CONC_THREADS; i++) {
		pthread_join(th[i], NULL);
		good += args[i].good;
		bad += args[i].bad;
	}
	CU_ASSERT_EQUAL(good, CONC_CLIENTS * CONC_REQS);
	CU_ASSERT_EQUAL(bad, 0);
}

static void test_garbage(void)
{
	const char *p = main_srv.path;
	char blob[2000], *big, *line;
	struct tconn t;
	uint32_t seed = 99;
	int i, nl = 0, replies = 0, lines_ok = 0;
	json_t *r;

	CU_ASSERT_FATAL(tc_open(&t, p));
	json_decref(tc_json(&t));
	CU_ASSERT(tc_send(&t, "\x00\x01\xff\xfe garbage\n", 13));
	expect_error(tc_json(&t), "invalid", "NUL byte");
	CU_ASSERT(tc_sends(&t, "caf\xc3\x28\n"));
	expect_error(tc_json(&t), "invalid", "not valid UTF-8");
	CU_ASSERT(tc_sends(&t, "\xc0\xaf\n"));
	expect_error(tc_json(&t), "invalid", "not valid UTF-8");
	CU_ASSERT(tc_sends(&t, "echo \"unterminated\n"));
	expect_error(tc_json(&t), "invalid", "unterminated quote");
	CU_ASSERT(tc_sends(&t, "ping\r\n"));
	r = tc_json(&t);
	CHECK_STR(code_of(r), "ok");
	json_decref(r);

	/* Random bytes: one error (or answer) per line, and the connection still serves. */
	for (i = 0; i < (int)sizeof(blob); i++) {
		seed = seed * 1103515245 + 12345;
		blob[i] = seed >> 16;
		nl += blob[i] == '\n';
	}
	CU_ASSERT(tc_send(&t, blob, sizeof(blob)));
	CU_ASSERT(tc_sends(&t, "\nping\n"));
	for (i = 0; i < nl + 2; i++) {
		line = tc_line(&t, NULL);
		r = line ? json_loads(line, 0, NULL) : NULL;
		replies += line != NULL;
		lines_ok += json_is_boolean(json_object_get(r, "ok"));
		if (i == nl + 1)
			CHECK_STR(line, "{\"ok\":true,\"data\":\"pong\"}");
		json_decref(r);
		free(line);
	}
	CU_ASSERT_EQUAL(replies, nl + 2);
	CU_ASSERT_EQUAL(lines_ok, nl + 2);
	tc_close(&t);

	/* Exactly 4096 bytes is a request; 4097 is not. */
	big = malloc(10241);
	CU_ASSERT_FATAL(big != NULL);
	memcpy(big, "echo ", 5);
	memset(big + 5, 'a', AG_CTL_LINE_MAX - 5);
	big[AG_CTL_LINE_MAX] = '\n';
	CU_ASSERT_FATAL(tc_open(&t, p));
	json_decref(tc_json(&t));
	CU_ASSERT(tc_send(&t, big, AG_CTL_LINE_MAX + 1));
	r = tc_json(&t);
	CHECK_STR(code_of(r), "ok");
	CU_ASSERT_EQUAL(json_string_length(json_array_get(json_object_get(r, "data"), 0)),
			AG_CTL_LINE_MAX - 5);
	json_decref(r);
	big[AG_CTL_LINE_MAX] = 'a';
	big[AG_CTL_LINE_MAX + 1] = '\n';
	CU_ASSERT(tc_send(&t, big, AG_CTL_LINE_MAX + 2));
	expect_error(tc_json(&t), "invalid", "line too long");
	CU_ASSERT(tc_wait_eof(&t));
	tc_close(&t);

	/* A 10 KiB line: error reply, then the server hangs up. */
	memset(big, 'z', 10240);
	big[10240] = '\n';
	CU_ASSERT_FATAL(tc_open(&t, p));
	json_decref(tc_json(&t));
	tc_send(&t, big, 10241); /* may fail half-way: the server closes early */
	expect_error(tc_json(&t), "invalid", "line too long");
	CU_ASSERT(tc_wait_eof(&t));
	tc_close(&t);
	free(big);

	/* The daemon still serves. */
	r = ASK(p, "ping");
	CHECK_STR(code_of(r), "ok");
	json_decref(r);
	CU_ASSERT(stat_of(p, "closed_long_line") >= 2);
}

static void test_half_close(void)
{
	struct tconn t;
	char *line;

	/* A request, then SHUT_WR: the reply still arrives, then EOF. */
	CU_ASSERT_FATAL(tc_open(&t, main_srv.path));
	CU_ASSERT(tc_sends(&t, "echo a\necho b\n"));
	CU_ASSERT(shutdown(t.fd, SHUT_WR) == 0);
	json_decref(tc_json(&t));
	line = tc_line(&t, NULL);
	CHECK_STR(line, "{\"ok\":true,\"data\":[\"a\"]}");
	free(line);
	line = tc_line(&t, NULL);
	CHECK_STR(line, "{\"ok\":true,\"data\":[\"b\"]}");
	free(line);
	CU_ASSERT(tc_wait_eof(&t));
	tc_close(&t);

	/* The last request may lack its "\n" when the writer half-closes. */
	CU_ASSERT_FATAL(tc_open(&t, main_srv.path));
	CU_ASSERT(tc_sends(&t, "ping"));
	CU_ASSERT(shutdown(t.fd, SHUT_WR) == 0);
	json_decref(tc_json(&t));
	line = tc_line(&t, NULL);
	CHECK_STR(line, "{\"ok\":true,\"data\":\"pong\"}");
	free(line);
	CU_ASSERT(tc_wait_eof(&t));
	tc_close(&t);

	/* Half-closed before the greeting was read: greeting and EOF. */
	CU_ASSERT_FATAL(tc_open(&t, main_srv.path));
	CU_ASSERT(shutdown(t.fd, SHUT_WR) == 0);
	line = tc_line(&t, NULL);
	CU_ASSERT(line && strstr(line, "\"protocol\":1"));
	free(line);
	CU_ASSERT(tc_wait_eof(&t));
	tc_close(&t);
}

static long tstate_load(const long *v)
{
	return __atomic_load_n(v, __ATOMIC_SEQ_CST);
}

/* Polls the server's counter until it reaches `min` (bounded); its last value. */
static json_int_t wait_stat(const char *path, const char *key, json_int_t min)
{
	json_int_t v = stat_of(path, key);
	int i;

	for (i = 0; i < 1000 && v < min; i++) {
		usleep(10000);
		v = stat_of(path, key);
	}
	return v;
}

/*
 * Backpressure: a client that does not read gets its next request read only
 * once the reply before it is sent; a reply larger than out_max is refused.
 */
static void test_slow_reader(void)
{
	const char *p = main_srv.path;
	long reads0 = tstate_load(&main_srv.st.value_reads);
	struct tconn slow;
	json_t *r;

	/* A reply far larger than the socket buffer and a request behind it, nothing read. */
	CU_ASSERT_FATAL(tc_open(&slow, p));
	CU_ASSERT(tc_sends(&slow, "big 3000000\nvalue\n"));
	CU_ASSERT(wait_stat(p, "queued", 1000000) >= 1000000);
	/* Others are served meanwhile, big replies included. */
	r = ASK(p, "big", "2000000");
	CU_ASSERT_EQUAL(json_string_length(json_object_get(r, "data")), 2000000);
	json_decref(r);
	/* "value" still waits in the socket: not one reply queued behind another. */
	CU_ASSERT_EQUAL(tstate_load(&main_srv.st.value_reads), reads0);
	json_decref(tc_json(&slow));
	r = tc_json(&slow);
	CU_ASSERT_EQUAL(json_string_length(json_object_get(r, "data")), 3000000);
	json_decref(r);
	r = tc_json(&slow);
	CHECK_STR(code_of(r), "ok");
	json_decref(r);
	CU_ASSERT_EQUAL(tstate_load(&main_srv.st.value_reads), reads0 + 1);

	/* Larger than the most queued for one client (4 MiB): refused, counted, goes on. */
	CU_ASSERT(tc_sends(&slow, "big 5000000\nping\n"));
	expect_error(tc_json(&slow), "internal", "reply larger than 4194304 bytes");
	r = tc_json(&slow);
	CHECK_STR(code_of(r), "ok");
	json_decref(r);
	tc_close(&slow);
	CU_ASSERT(stat_of(p, "replies_too_big") >= 1);
}

/* Streamed replies: exact text, many pieces, and a failure half-way. */
static void test_stream(void)
{
	const char *p = main_srv.path;
	long pieces0 = tstate_load(&main_srv.st.pieces);
	struct tconn t;
	json_t *r, *d;
	char *line;

	CU_ASSERT_FATAL(tc_open(&t, p));
	json_decref(tc_json(&t));
	CU_ASSERT(tc_sends(&t, "count 10\ncount 0\n"));
	line = tc_line(&t, NULL);
	CHECK_STR(line, "{\"data\":[0,1,2,3,4,5,6,7,8,9],\"ok\":true}");
	free(line);
	line = tc_line(&t, NULL);
	CHECK_STR(line, "{\"data\":[],\"ok\":true}");
	free(line);

	/* 300,000 numbers: many pieces, one line. */
	CU_ASSERT(tc_sends(&t, "count 300000\n"));
	r = tc_json(&t);
	CHECK_STR(code_of(r), "ok");
	d = json_object_get(r, "data");
	CU_ASSERT_EQUAL(json_array_size(d), 300000);
	CU_ASSERT_EQUAL(json_integer_value(json_array_get(d, 299999)), 299999);
	json_decref(r);
	CU_ASSERT(tstate_load(&main_srv.st.pieces) - pieces0 >= 300000 / 4096);

	/* Failing half-way: "ok" false after the data produced so far, and the error. */
	CU_ASSERT(tc_sends(&t, "count 10000 5000\nping\n"));
	r = tc_json(&t);
	CHECK_STR(code_of(r), "internal");
	CHECK_STR(error_of(r), "failed at 5000");
	CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "data")), 5000);
	json_decref(r);
	r = tc_json(&t);
	CHECK_STR(code_of(r), "ok");
	json_decref(r);
	tc_close(&t);
	CU_ASSERT(stat_of(p, "streams_failed") >= 1);
}

/*
 * A stream to a client that does not read: made a piece at a time, only as
 * the client drains it, so what waits for it stays under AG_CTL_STREAM_LOW +
 * AG_CTL_PIECE_MAX, and other clients are answered while it is half done.
 */
static void test_stream_slow_reader(void)
{
	const long n = 3000000;
	struct ag_ctl_opts o;
	struct server s;
	struct tconn slow;
	json_t *r;
	char *line;
	size_t commas = 0, i, len;
	long produced;

	opts_default(&o, &s);
	CU_ASSERT_EQUAL_FATAL(server_start(&s, "stream.sock", &o), 0);
	CU_ASSERT_FATAL(tc_open(&slow, s.path));
	CU_ASSERT(tc_sends(&slow, "count 3000000\n"));
	for (i = 0; i < 1000 && tstate_load(&s.st.produced) < 10000; i++)
		usleep(10000);
	CU_ASSERT(tstate_load(&s.st.produced) >= 10000);
	r = ASK(s.path, "rows");
	CHECK_STR(code_of(r), "ok");
	json_decref(r);
	produced = tstate_load(&s.st.produced);
	CU_ASSERT(produced > 0 && produced < n);
	CU_ASSERT(stat_of(s.path, "streams") == 1);
	CU_ASSERT(stat_of(s.path, "queued_peak_client") <= AG_CTL_STREAM_LOW + AG_CTL_PIECE_MAX);

	/* Read at last: the whole walk, one line. */
	json_decref(tc_json(&slow));
	line = tc_line(&slow, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(line);
	len = strlen(line);
	for (i = 0; i < len; i++)
		commas += line[i] == ',';
	CU_ASSERT_EQUAL(strncmp(line, "{\"data\":[0,1,2,", 15), 0);
	CU_ASSERT(len > 30 && !strcmp(line + len - 20, ",2999999],\"ok\":true}"));
	CU_ASSERT_EQUAL(commas, (size_t)n);
	free(line);
	tc_close(&slow);
	server_stop(&s);
	CU_ASSERT(s.stats.queued_peak_client <= AG_CTL_STREAM_LOW + AG_CTL_PIECE_MAX);
	CU_ASSERT_EQUAL(s.stats.queued, 0);
}

/* ------------------------------------------------------------------------ */
/* Children of other users (raw system calls only: see child_client)        */

/* Keeps only fds 0-2, a and b: the parent's sockets are not the child's. */
static void child_close_fds(int a, int b)
{
	int fd;

	for (fd = 3; fd < 1024; fd++)
		if (fd != a && fd != b)
			close(fd);
}

static int child_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sun.sun_path, path);
	if (fd < 0 || set_timeouts(fd) || connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		return -1;
	return fd;
}

/*
 * As `uid` (group nobody): n connections, one byte each to `report`: 'a'
 * greeted, 'u' refused for its uid, 'r' refused for the admins' slots, 'b'
 * refused, all taken, '?' otherwise; then holds them until `hold` is closed.
 */
static void child_hold(const char *path, uid_t uid, int n, int report, int hold)
{
	const gid_t g = NOBODY;
	char buf[512], c;
	int i;

	child_close_fds(report, hold);
	if (setgroups(1, &g) || setgid(NOBODY) || setuid(uid))
		_exit(2);
	for (i = 0; i < n; i++) {
		int fd = child_connect(path);
		ssize_t r = fd < 0 ? -1 : recv(fd, buf, sizeof(buf) - 1, 0);

		buf[r > 0 ? r : 0] = '\0';
		c = strstr(buf, "\"protocol\"")		      ? 'a'
		    : strstr(buf, "the most one user")	      ? 'u'
		    : strstr(buf, "kept for admins")	      ? 'r'
		    : strstr(buf, "too many control clients") ? 'b'
							      : '?';
		if (write(report, &c, 1) != 1)
			_exit(3);
	}
	if (read(hold, &c, 1) < 0)
		_exit(4);
	_exit(0);
}

struct held {
	pid_t pid;
	int hold; /* closing it lets the child go */
};

/* n connections of `uid` held by a child; got[] the child's bytes (NUL-ended). */
static bool hold_clients(struct held *h, const char *path, uid_t uid, int n, char *got)
{
	int rep[2], hold[2], i;
	struct pollfd pf;

	if (pipe(rep) || pipe(hold))
		return false;
	fflush(NULL);
	h->pid = fork();
	if (h->pid == 0)
		child_hold(path, uid, n, rep[1], hold[0]);
	close(rep[1]);
	close(hold[0]);
	h->hold = hold[1];
	pf = (struct pollfd){.fd = rep[0], .events = POLLIN};
	for (i = 0; i < n && h->pid > 0; i++)
		if (poll(&pf, 1, 2 * IO_TIMEOUT_S * 1000) != 1 || read(rep[0], &got[i], 1) != 1)
			break;
	got[i] = '\0';
	close(rep[0]);
	return h->pid > 0 && i == n;
}

static void release_clients(struct held *h)
{
	close(h->hold);
	if (h->pid > 0)
		waitpid(h->pid, NULL, 0);
}

/*
 * Slots: one uid past its limit is refused; read-only peers of several uids
 * fill what is theirs and are refused the slots kept for admins; root still
 * gets those, and past them everyone is refused.
 */
static void test_slots(void)
{
	struct held a, b, c;
	struct ag_ctl_opts o;
	struct tconn root[3];
	struct server s;
	char got[8];
	json_t *r;
	int i;

	if (!is_root()) {
		skip_note("per-uid limit and admin slots (needs setuid)");
		return;
	}
	opts_default(&o, &s);
	o.max_clients = 8;
	o.admin_slots = 2;
	o.max_per_uid = 3;
	CU_ASSERT_EQUAL_FATAL(server_start(&s, "slots.sock", &o), 0);
	CU_ASSERT(hold_clients(&a, s.path, NOBODY, 4, got));
	CHECK_STR(got, "aaau");
	CU_ASSERT(hold_clients(&b, s.path, NOBODY - 1, 3, got));
	CHECK_STR(got, "aaa");
	CU_ASSERT(hold_clients(&c, s.path, NOBODY - 2, 1, got));
	CHECK_STR(got, "r");
	for (i = 0; i < 2; i++) {
		CU_ASSERT_FATAL(tc_open(&root[i], s.path));
		r = tc_json(&root[i]);
		CU_ASSERT(json_is_integer(json_object_get(r, "protocol")));
		json_decref(r);
	}
	CU_ASSERT_FATAL(tc_open(&root[2], s.path));
	expect_error(tc_json(&root[2]), "busy", "too many control clients (8)");
	tc_close(&root[2]);
	/* An admin in a slot of its own is served as usual. */
	CU_ASSERT(tc_sends(&root[0], "ctl stats\n"));
	r = tc_json(&root[0]);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(r, "data"), "admins")),
			2);
	json_decref(r);
	release_clients(&a);
	release_clients(&b);
	release_clients(&c);
	tc_close(&root[0]);
	tc_close(&root[1]);
	server_stop(&s);
	CU_ASSERT_EQUAL(s.stats.refused_uid, 1);
	CU_ASSERT_EQUAL(s.stats.refused_admin_slots, 1);
	CU_ASSERT_EQUAL(s.stats.refused_busy, 1);
}

/*
 * As nobody: "big 200000" must be refused busy (the total is full), then
 * "count 100000" must arrive whole once there is room. Exit status 0, or
 * where it went wrong.
 */
static void child_total(const char *path)
{
	const gid_t g = NOBODY;
	char buf[65536], tail[32] = "";
	size_t got = 0, lines = 0;
	int fd;

	child_close_fds(-1, -1);
	if (setgroups(1, &g) || setgid(NOBODY) || setuid(NOBODY))
		_exit(2);
	fd = child_connect(path);
	if (fd < 0 || send(fd, "big 200000\ncount 100000\n", 24, MSG_NOSIGNAL) != 24)
		_exit(3);
	/* greeting, the refusal, then the stream: three lines */
	while (lines < 3) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		ssize_t i;

		if (r <= 0)
			_exit(4);
		for (i = 0; i < r; i++) {
			if (buf[i] == '\n') {
				lines++;
				if (lines == 2 && !strstr(tail, "\"code\":\"busy\""))
					_exit(5);
				continue;
			}
			memmove(tail, tail + 1, sizeof(tail) - 2);
			tail[sizeof(tail) - 2] = buf[i];
		}
		got += r;
	}
	_exit(strstr(tail, ",99999],\"ok\":true}") && got > 500000 ? 0 : 6);
}

/*
 * The bound on all clients' queued bytes: with an admin's unread reply taking
 * the read-only share, a read-only whole reply is refused and a read-only
 * stream waits (counted) until the admin reads; the admin's share still
 * serves the admin.
 */
static void test_total_bound(void)
{
	struct ag_ctl_opts o;
	struct server s;
	struct tconn admin;
	int status = -1;
	json_t *r;
	pid_t pid;

	if (!is_root()) {
		skip_note("bound on queued bytes of read-only clients (needs setuid)");
		return;
	}
	opts_default(&o, &s);
	o.out_total = 4u << 20;
	o.out_admin = (4u << 20) - (300u << 10);
	CU_ASSERT_EQUAL_FATAL(server_start(&s, "total.sock", &o), 0);
	CU_ASSERT_FATAL(tc_open(&admin, s.path));
	CU_ASSERT(tc_sends(&admin, "big 1000000\n"));
	CU_ASSERT(wait_stat(s.path, "queued", 500000) >= 500000);
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		child_total(s.path);
	CU_ASSERT(wait_stat(s.path, "stream_waits", 1) >= 1);
	CU_ASSERT(stat_of(s.path, "replies_no_room") >= 1);
	/* Admins have their share: a big reply on a fresh connection. */
	r = ASK(s.path, "big", "1500000");
	CU_ASSERT_EQUAL(json_string_length(json_object_get(r, "data")), 1500000);
	json_decref(r);
	/* Drained: the waiting stream goes on and arrives whole (checked by the child). */
	json_decref(tc_json(&admin));
	r = tc_json(&admin);
	CU_ASSERT_EQUAL(json_string_length(json_object_get(r, "data")), 1000000);
	json_decref(r);
	CU_ASSERT(pid > 0 && waitpid(pid, &status, 0) == pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	tc_close(&admin);
	server_stop(&s);
	CU_ASSERT(s.stats.queued_peak <= o.out_total);
	CU_ASSERT_EQUAL(s.stats.queued, 0);
}

static void test_idle_close(void)
{
	struct ag_ctl_opts o;
	struct server s;
	struct tconn idle;
	int i;

	opts_default(&o, &s);
	o.idle_ms = 200;
	CU_ASSERT_EQUAL_FATAL(server_start(&s, "idle.sock", &o), 0);
	CU_ASSERT_FATAL(tc_open(&idle, s.path));
	json_decref(tc_json(&idle));
	/* Silent: the sweep closes it (tc_line gives up after IO_TIMEOUT_S). */
	CU_ASSERT(tc_wait_eof(&idle));
	tc_close(&idle);
	/* Freed once its callback ran: only the asking connection remains (bounded retries). */
	for (i = 0; i < 500 && stat_of(s.path, "clients") != 1; i++)
		usleep(10000);
	CU_ASSERT_EQUAL(stat_of(s.path, "clients"), 1);
	server_stop(&s);
	CU_ASSERT_EQUAL(s.stats.closed_idle, 1);
}

static void test_max_clients(void)
{
	struct ag_ctl_opts o;
	struct server s;
	struct tconn t[3], extra;
	json_t *r = NULL;
	int i;

	opts_default(&o, &s);
	o.max_clients = 3;
	CU_ASSERT_EQUAL_FATAL(server_start(&s, "max.sock", &o), 0);
	for (i = 0; i < 3; i++) {
		CU_ASSERT_FATAL(tc_open(&t[i], s.path));
		r = tc_json(&t[i]);
		CU_ASSERT(json_is_integer(json_object_get(r, "protocol")));
		json_decref(r);
	}
	/* The fourth gets "busy" instead of the greeting, then EOF. */
	CU_ASSERT_FATAL(tc_open(&extra, s.path));
	r = tc_json(&extra);
	expect_error(r, "busy", "too many control clients (3)");
	CU_ASSERT(tc_wait_eof(&extra));
	tc_close(&extra);
	/* One leaves: a newcomer is served once the server noticed (bounded retries). */
	tc_close(&t[0]);
	for (i = 0; i < 500; i++) {
		CU_ASSERT_FATAL(tc_open(&extra, s.path));
		r = tc_json(&extra);
		tc_close(&extra);
		if (json_is_integer(json_object_get(r, "protocol")))
			break;
		json_decref(r);
		r = NULL;
		usleep(10000);
	}
	CU_ASSERT(json_is_integer(json_object_get(r, "protocol")));
	json_decref(r);
	tc_close(&t[1]);
	tc_close(&t[2]);
	server_stop(&s);
	CU_ASSERT(s.stats.refused_busy >= 1);
}

static void test_socket_file(void)
{
	static const mode_t masks[] = {0, 077, 0777};
	char dir[PATH_MAX];
	struct server s;
	struct stat st;
	unsigned int i;
	mode_t old_mask;
	json_t *r;
	int err;

	for (i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		mode_t old = umask(masks[i]);
		int err = server_start(&s, "mode.sock", NULL);

		umask(old);
		CU_ASSERT_EQUAL_FATAL(err, 0);
		CU_ASSERT_EQUAL_FATAL(lstat(s.path, &st), 0);
		CU_ASSERT(S_ISSOCK(st.st_mode));
		CU_ASSERT_EQUAL(st.st_mode & 07777, 0660);
		if (is_root())
			CU_ASSERT_EQUAL(st.st_gid, NOBODY);
		server_stop(&s);
		/* Freed: the socket file is gone. */
		CU_ASSERT(lstat(s.path, &st) < 0 && errno == ENOENT);
	}
	/* Missing directories on the way are created, searchable whatever the umask. */
	old_mask = umask(0777);
	err = server_start(&s, "run/anygate/lab/anygated.sock", NULL);
	umask(old_mask);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	r = ASK(s.path, "ping");
	CHECK_STR(code_of(r), "ok");
	json_decref(r);
	server_stop(&s);
	snprintf(dir, sizeof(dir), "%s/run/anygate/lab", tmpdir);
	CU_ASSERT(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755);
}

static void test_stale_and_live(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct ag_ctl_opts o;
	struct ag_loop loop2;
	struct server s, s2;
	char path[PATH_MAX], *long_path;
	struct stat st;
	json_t *r;
	int fd;

	/* A stale socket: bound once, nobody listening. */
	snprintf(path, sizeof(path), "%s/stale.sock", tmpdir);
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(fd >= 0 && bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(server_start(&s, "stale.sock", NULL), 0);
	r = ASK(s.path, "ping");
	CHECK_STR(code_of(r), "ok");
	json_decref(r);

	/* A live one: a second server on the same path is refused ... */
	CU_ASSERT_EQUAL(ag_loop__init(&loop2), 0);
	opts_default(&o, &s2);
	o.path = s.path;
	errno = 0;
	CU_ASSERT_PTR_NULL(ag_ctl__new(&loop2, &o));
	CU_ASSERT_EQUAL(errno, EADDRINUSE);
	ag_loop__fini(&loop2);
	/* ... and the first keeps its socket and serves on. */
	r = ASK(s.path, "ping");
	CHECK_STR(code_of(r), "ok");
	json_decref(r);
	server_stop(&s);

	/* Not a socket: left alone. */
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, "keep", 4) == 4);
	close(fd);
	CU_ASSERT_EQUAL(server_start(&s, "stale.sock", NULL), -EEXIST);
	CU_ASSERT(lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 4);
	unlink(path);

	/* A path too long for sun_path. */
	long_path = malloc(300);
	memset(long_path, 'p', 299);
	long_path[299] = '\0';
	CU_ASSERT_EQUAL(ag_loop__init(&loop2), 0);
	o.path = long_path;
	errno = 0;
	CU_ASSERT_PTR_NULL(ag_ctl__new(&loop2, &o));
	CU_ASSERT_EQUAL(errno, ENAMETOOLONG);
	ag_loop__fini(&loop2);
	free(long_path);
}

static void test_table_validation(void)
{
	static const struct ag_ctl_cmd dup[] = {
	    {{"a", "b"}, "", 0, 0, AG_CTL_READ, cmd_value, ""},
	    {{"a", "b"}, "", 0, 0, AG_CTL_READ, cmd_value, ""},
	};
	static const struct ag_ctl_cmd builtin[] = {
	    {{"ping"}, "", 0, 0, AG_CTL_READ, cmd_value, ""},
	};
	static const struct ag_ctl_cmd counts[] = {
	    {{"x"}, "", 2, 1, AG_CTL_READ, cmd_value, ""},
	};
	static const struct ag_ctl_cmd nofn[] = {
	    {{"x"}, "", 0, 0, AG_CTL_READ, NULL, ""},
	};
	static const struct ag_ctl_cmd spaced[] = {
	    {{"x y"}, "", 0, 0, AG_CTL_READ, cmd_value, ""},
	};
	static const struct ag_ctl_cmd nowords[] = {
	    {{NULL}, "", 0, 0, AG_CTL_READ, cmd_value, ""},
	};
	static const struct ag_ctl_cmd gap[] = {
	    {{"x", NULL, "y"}, "", 0, 0, AG_CTL_READ, cmd_value, ""},
	};
	static const struct {
		const struct ag_ctl_cmd *cmds;
		unsigned int n;
	} bad[] = {{dup, 2},	{builtin, 1}, {counts, 1}, {nofn, 1},
		   {spaced, 1}, {nowords, 1}, {gap, 1}};
	struct ag_ctl_opts o;
	struct server s;
	struct stat st;
	struct ag_loop loop;
	unsigned int i;

	CU_ASSERT_EQUAL_FATAL(ag_loop__init(&loop), 0);
	opts_default(&o, &s);
	snprintf(s.path, sizeof(s.path), "%s/table.sock", tmpdir);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.cmds = bad[i].cmds;
		o.n_cmds = bad[i].n;
		errno = 0;
		CU_ASSERT_PTR_NULL(ag_ctl__new(&loop, &o));
		CU_ASSERT_EQUAL(errno, EINVAL);
		CU_ASSERT(lstat(s.path, &st) < 0);
	}
	ag_loop__fini(&loop);
}

/* ------------------------------------------------------------------------ */
/* Client library against fake servers                                      */

struct fake {
	int lfd;
	char path[PATH_MAX];
	const char *greeting; /* sent after accept; NULL: nothing */
	const char *reply;    /* sent once a request line arrived; NULL: nothing */
	bool close_after;     /* hang up once the above is sent, else wait for the client to */
	pthread_t thread;
};

static void *fake_main(void *p)
{
	struct fake *f = p;
	int fd = accept(f->lfd, NULL, NULL);
	char buf[4096];
	ssize_t n;

	if (fd < 0)
		return NULL;
	set_timeouts(fd);
	if (f->greeting && send(fd, f->greeting, strlen(f->greeting), MSG_NOSIGNAL) < 0)
		goto out;
	if (f->reply) {
		/* Read the whole request first, so closing does not reset the client. */
		size_t len = 0;

		while (len < sizeof(buf) && (n = recv(fd, buf + len, sizeof(buf) - len, 0)) > 0) {
			len += n;
			if (memchr(buf, '\n', len))
				break;
		}
		if (send(fd, f->reply, strlen(f->reply), MSG_NOSIGNAL) < 0)
			goto out;
	}
	if (f->close_after)
		goto out;
	/* Wait for the client to hang up (bounded by the receive timeout). */
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
out:
	close(fd);
	return NULL;
}

static bool fake_start(struct fake *f, const char *greeting, const char *reply, bool close_after)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "%s/fake.sock", tmpdir);
	unlink(f->path);
	strcpy(sun.sun_path, f->path);
	f->greeting = greeting;
	f->reply = reply;
	f->close_after = close_after;
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)) || listen(f->lfd, 4))
		return false;
	return pthread_create(&f->thread, NULL, fake_main, f) == 0;
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
	unlink(f->path);
}

#define GREET "{\"anygate\":\"x\",\"protocol\":1}\n"

/* Connects to a fake server and sends "ping": the connect and request errors. */
static void fake_case(const char *greeting, const char *reply, bool close_after, double timeout,
		      int want_connect, int want_request, const char *msg_part)
{
	char *argv[] = {"ping"};
	struct ag_ctlc c;
	json_t *got = NULL;
	struct fake f;
	int err;

	CU_ASSERT_FATAL(fake_start(&f, greeting, reply, close_after));
	err = ag_ctlc__connect(&c, f.path, deadline_in(timeout));
	CU_ASSERT_EQUAL(err, want_connect);
	if (!err) {
		err = ag_ctlc__request(&c, 1, argv, &got);
		CU_ASSERT_EQUAL(err, want_request);
		json_decref(got);
		ag_ctlc__close(&c);
	}
	if (msg_part && !strstr(c.err, msg_part))
		printf("\n    client error \"%s\" lacks \"%s\"", c.err, msg_part);
	CU_ASSERT(!msg_part || strstr(c.err, msg_part));
	fake_stop(&f);
}

static void test_client_errors(void)
{
	char path[PATH_MAX], word[AG_CTL_LINE_MAX + 10];
	char *argv[2] = {"echo", word};
	struct ag_ctlc c;
	json_t *reply;
	int err;

	snprintf(path, sizeof(path), "%s/nothing-here.sock", tmpdir);
	err = ag_ctlc__connect(&c, path, deadline_in(IO_TIMEOUT_S));
	CU_ASSERT_EQUAL(err, -ENOENT);
	CU_ASSERT(strstr(c.err, path) && strstr(c.err, "is anygated running?"));
	CU_ASSERT_EQUAL(ag_ctlc__connect_exit(err), AG_EXIT_CONNECT);

	fake_case("{\"anygate\":\"9.9\",\"protocol\":2}\n", NULL, false, IO_TIMEOUT_S, -EPROTO, 0,
		  "speaks control protocol 2");
	fake_case("SSH-2.0-OpenSSH\n", NULL, false, IO_TIMEOUT_S, -EPROTO, 0,
		  "not an anygated control socket");
	fake_case("{\"ok\":false,\"error\":\"too many control clients (256); try again later\","
		  "\"code\":\"busy\"}\n",
		  NULL, true, IO_TIMEOUT_S, -EBUSY, 0, "too many");
	fake_case(NULL, NULL, false, 0.3, -ETIMEDOUT, 0, "no greeting");
	fake_case(NULL, NULL, true, IO_TIMEOUT_S, -ECONNRESET, 0, "closed without a greeting");
	fake_case(GREET, "garbage\n", false, IO_TIMEOUT_S, 0, -EPROTO, "garbled reply");
	fake_case(GREET, "{\"ok\":true}\n", false, IO_TIMEOUT_S, 0, -EPROTO, "garbled reply");
	fake_case(GREET, "{\"ok\":false,\"error\":\"x\"}\n", false, IO_TIMEOUT_S, 0, -EPROTO,
		  "garbled");
	fake_case(GREET, "", true, IO_TIMEOUT_S, 0, -ECONNRESET, "without a reply");
	fake_case(GREET, "{\"ok\":tr", true, IO_TIMEOUT_S, 0, -ECONNRESET, "middle of a reply");
	fake_case(GREET, NULL, false, 0.3, 0, -ETIMEDOUT, "in time");

	CU_ASSERT_EQUAL(ag_ctlc__connect_exit(-EPROTO), AG_EXIT_PROTOCOL);
	CU_ASSERT_EQUAL(ag_ctlc__connect_exit(-ETIMEDOUT), AG_EXIT_TIMEOUT);
	CU_ASSERT_EQUAL(ag_ctlc__connect_exit(-EBUSY), AG_EXIT_FAILED);
	CU_ASSERT_EQUAL(ag_ctlc__connect_exit(-EACCES), AG_EXIT_CONNECT);
	CU_ASSERT_EQUAL(ag_ctlc__request_exit(-EPROTO), AG_EXIT_PROTOCOL);
	CU_ASSERT_EQUAL(ag_ctlc__request_exit(-ECONNRESET), AG_EXIT_PROTOCOL);
	CU_ASSERT_EQUAL(ag_ctlc__request_exit(-ETIMEDOUT), AG_EXIT_TIMEOUT);
	CU_ASSERT_EQUAL(ag_ctlc__request_exit(-E2BIG), AG_EXIT_USAGE);

	/* Requests the client refuses to send. */
	CU_ASSERT_EQUAL_FATAL(ag_ctlc__connect(&c, main_srv.path, deadline_in(IO_TIMEOUT_S)), 0);
	memset(word, 'w', AG_CTL_LINE_MAX);
	word[AG_CTL_LINE_MAX] = '\0';
	CU_ASSERT_EQUAL(ag_ctlc__request(&c, 2, argv, &reply), -E2BIG);
	strcpy(word, "two\nlines");
	CU_ASSERT_EQUAL(ag_ctlc__request(&c, 2, argv, &reply), -EINVAL);
	/* The connection is still good for a proper one. */
	strcpy(word, "fine \"quoted\" word");
	CU_ASSERT_EQUAL(ag_ctlc__request(&c, 2, argv, &reply), 0);
	CHECK_STR(json_string_value(json_array_get(json_object_get(reply, "data"), 0)),
		  "fine \"quoted\" word");
	json_decref(reply);
	ag_ctlc__close(&c);
}

/* ------------------------------------------------------------------------ */
/* anygatectl itself                                                        */

struct run {
	int status; /* exit code, or -1 */
	char out[65536];
	char err[8192];
};

/* Reads both pipes until EOF; poll timeouts bound it. */
static void drain(int ofd, int efd, struct run *r)
{
	size_t olen = 0, elen = 0;
	struct pollfd p[2] = {{.fd = ofd, .events = POLLIN}, {.fd = efd, .events = POLLIN}};
	int open_fds = 2;

	while (open_fds && poll(p, 2, IO_TIMEOUT_S * 1000) > 0) {
		int i;

		for (i = 0; i < 2; i++) {
			char *buf = i ? r->err : r->out;
			size_t *len = i ? &elen : &olen;
			size_t cap = (i ? sizeof(r->err) : sizeof(r->out)) - 1;
			char tmp[4096];
			ssize_t n;

			if (!(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			n = read(p[i].fd, tmp, sizeof(tmp));
			if (n <= 0) {
				p[i].fd = -1;
				open_fds--;
				continue;
			}
			if (*len + n > cap)
				n = cap - *len;
			memcpy(buf + *len, tmp, n);
			*len += n;
		}
	}
	r->out[olen] = '\0';
	r->err[elen] = '\0';
}

/*
 * Runs anygatectl with args (NULL-terminated), as "nobody" in the socket's
 * group when as_nobody, with ANYGATE_SOCKET=env_sock when given.
 */
static void run_ctl(struct run *r, bool as_nobody, const char *env_sock, ...)
{
	char *argv[24], envbuf[PATH_MAX + 32], *envp[3] = {NULL};
	int out[2], err[2], status, argc = 1;
	va_list ap;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	argv[0] = ctl_bin;
	va_start(ap, env_sock);
	while (argc < 23 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	envp[0] = "PATH=/usr/bin:/bin";
	if (env_sock) {
		snprintf(envbuf, sizeof(envbuf), "ANYGATE_SOCKET=%s", env_sock);
		envp[1] = envbuf;
	}
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		return;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		const gid_t nogroup = NOBODY;

		/* Only system calls until exec: this process has other threads. */
		if (dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
			_exit(126);
		if (as_nobody && (setgroups(1, &nogroup) || setgid(NOBODY) || setuid(NOBODY)))
			_exit(126);
		execve(ctl_bin, argv, envp);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	if (pid > 0) {
		drain(out[0], err[0], r);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			r->status = WEXITSTATUS(status);
	}
	close(out[0]);
	close(err[0]);
}

static void expect_run(const struct run *r, int status, const char *out_part, const char *err_part)
{
	bool ok = r->status == status && (!out_part || strstr(r->out, out_part)) &&
		  (!err_part || strstr(r->err, err_part));

	if (!ok)
		printf("\n    anygatectl: exit %d (want %d)\n---stdout---\n%s---stderr---\n%s",
		       r->status, status, r->out, r->err);
	CU_ASSERT(ok);
}

static void test_anygatectl(void)
{
	const char *p = main_srv.path;
	char conf[PATH_MAX], bad[PATH_MAX];
	const char *src = getenv("AG_SRCDIR");
	struct run *r = malloc(sizeof(*r));
	struct fake f;
	json_t *j;
	FILE *fp;

	CU_ASSERT_FATAL(r != NULL);
	if (access(ctl_bin, X_OK)) {
		CU_FAIL("anygatectl binary not found (set AG_ANYGATECTL)");
		free(r);
		return;
	}
	run_ctl(r, false, NULL, "-s", p, "ping", NULL);
	expect_run(r, 0, NULL, NULL);
	CHECK_STR(r->out, "pong\n");
	run_ctl(r, false, p, "ping", NULL); /* ANYGATE_SOCKET */
	CHECK_STR(r->out, "pong\n");
	run_ctl(r, false, NULL, "-s", p, "rows", NULL);
	expect_run(r, 0, NULL, NULL);
	CHECK_STR(r->out, ROWS_TEXT);
	run_ctl(r, false, NULL, "--json", "-s", p, "rows", NULL);
	expect_run(r, 0, NULL, NULL);
	CHECK_STR(r->out, ROWS_JSON "\n");
	run_ctl(r, false, NULL, "-s", p, "--json", "version", NULL);
	j = json_loads(r->out, 0, NULL);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "protocol")), AG_CTL_PROTOCOL);
	json_decref(j);
	run_ctl(r, false, NULL, "-s", p, "help", NULL);
	expect_run(r, 0, "COMMAND    ARGS", NULL);
	CU_ASSERT(strstr(r->out, "set value  N") != NULL);
	/* Words with spaces and leading dashes travel as they are. */
	run_ctl(r, false, NULL, "-s", p, "--json", "echo", "-x", "a b", "", NULL);
	CHECK_STR(r->out, "[\"-x\",\"a b\",\"\"]\n");

	/* Errors and their exit codes. */
	run_ctl(r, false, NULL, "-s", p, "nosuch", NULL);
	expect_run(r, 2, NULL, "unknown command \"nosuch\"");
	CHECK_STR(r->out, "");
	run_ctl(r, false, NULL, "-s", p, "set", "value", NULL);
	expect_run(r, 2, NULL, "usage: set value N");
	run_ctl(r, false, NULL, "-s", p, "fail", "busy", NULL);
	expect_run(r, 1, NULL, "Device or resource busy");
	run_ctl(r, false, NULL, "-s", p, "--json", "fail", "busy", NULL);
	expect_run(r, 1, "\"code\":\"busy\"", NULL);
	j = json_loads(r->out, 0, NULL);
	CU_ASSERT(json_is_false(json_object_get(j, "ok")));
	json_decref(j);
	run_ctl(r, false, NULL, "-s", "/nonexistent/anygated.sock", "ping", NULL);
	expect_run(r, 3, NULL, "/nonexistent/anygated.sock");
	CU_ASSERT(strstr(r->err, "is anygated running?") != NULL);
	run_ctl(r, false, NULL, NULL);
	expect_run(r, 2, NULL, "usage:");
	run_ctl(r, false, NULL, "--timeout", "abc", "ping", NULL);
	expect_run(r, 2, NULL, "--timeout");
	run_ctl(r, false, NULL, "--help", NULL);
	expect_run(r, 0, "exit codes:", NULL);
	CU_ASSERT(strstr(r->out, "6  timeout") != NULL);

	CU_ASSERT_FATAL(fake_start(&f, "{\"anygate\":\"9\",\"protocol\":2}\n", NULL, false));
	run_ctl(r, false, NULL, "-s", f.path, "ping", NULL);
	expect_run(r, 5, NULL, "protocol 2");
	fake_stop(&f);
	CU_ASSERT_FATAL(fake_start(&f, NULL, NULL, false));
	run_ctl(r, false, NULL, "-s", f.path, "--timeout", "0.3", "ping", NULL);
	expect_run(r, 6, NULL, "in time");
	fake_stop(&f);

	if (is_root()) {
		r->status = -1;
		run_ctl(r, true, NULL, "-s", p, "set", "value", "5", NULL);
		expect_run(r, 4, NULL, "only root or members of group");
		run_ctl(r, true, NULL, "-s", p, "value", NULL);
		expect_run(r, 0, "value:", NULL);
		run_ctl(r, true, NULL, "-s", p, "whoami", NULL);
		expect_run(r, 0, "access: read", NULL);
	} else {
		skip_note("anygatectl as nobody");
	}

	/* check FILE: local, no daemon. */
	if (src) {
		snprintf(conf, sizeof(conf), "%s/config/lab.conf", src);
		run_ctl(r, false, NULL, "check", conf, NULL);
		expect_run(r, 0, ": ok", NULL);
	}
	snprintf(bad, sizeof(bad), "%s/bad.conf", tmpdir);
	fp = fopen(bad, "w");
	CU_ASSERT_FATAL(fp != NULL);
	fputs("edge = {\n  name = \"e\";\n  hash_seed = \"x\";\n};\n", fp);
	fclose(fp);
	run_ctl(r, false, NULL, "check", bad, NULL);
	expect_run(r, 1, NULL, "bad.conf:");
	CHECK_STR(r->out, "");
	run_ctl(r, false, NULL, "--json", "check", bad, NULL);
	j = json_loads(r->out, 0, NULL);
	CU_ASSERT(json_array_size(json_object_get(j, "errors")) >= 1);
	CHECK_STR(code_of(j), "invalid");
	json_decref(j);
	run_ctl(r, false, NULL, "check", "/nonexistent.conf", NULL);
	expect_run(r, 1, NULL, "/nonexistent.conf");
	run_ctl(r, false, NULL, "check", "a", "b", NULL);
	expect_run(r, 2, NULL, "usage: anygatectl check FILE");
	/* `check` alone or `check --daemon FILE` asks the daemon (this server has no "check"). */
	run_ctl(r, false, p, "check", NULL);
	expect_run(r, 2, NULL, "unknown command \"check\"");
	run_ctl(r, false, p, "check", "--daemon", "x.conf", NULL);
	expect_run(r, 2, NULL, "unknown command \"check\"");
	unlink(bad);
	free(r);
}

/* ------------------------------------------------------------------------ */

/* anygatectl beside this build: $AG_ANYGATECTL, else ../../controlplane/anygatectl. */
static void find_ctl_bin(void)
{
	const char *env = getenv("AG_ANYGATECTL");
	char self[PATH_MAX], src[PATH_MAX + 64], buf[65536];
	ssize_t n;
	int in, out;

	if (env) {
		snprintf(src, sizeof(src), "%s", env);
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
			return;
		self[n] = '\0';
		snprintf(src, sizeof(src), "%s/../../controlplane/anygatectl", dirname(self));
	}
	/* A copy in the (world-searchable) temp dir, so "nobody" can run it. */
	snprintf(ctl_bin, sizeof(ctl_bin), "%s/anygatectl", tmpdir);
	in = open(src, O_RDONLY | O_CLOEXEC);
	out = open(ctl_bin, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			break;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (in < 0)
		unlink(ctl_bin);
}

static int suite_init(void)
{
	if (!mkdtemp(tmpdir) || chmod(tmpdir, 0711))
		return -1;
	ag_log__set_level(AG_LOG_WARN);
	find_ctl_bin();
	return server_start(&main_srv, "anygated.sock", NULL) ? -1 : 0;
}

static int suite_clean(void)
{
	char cmd[PATH_MAX + 16];

	server_stop(&main_srv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"split", test_split},
	    {"utf8", test_utf8},
	    {"join round trip", test_join_roundtrip},
	    {"render", test_render},
	    {"greeting and built-ins", test_greeting_and_builtins},
	    {"errors", test_errors},
	    {"admin: root", test_admin_root},
	    {"read-only peer is denied", test_read_only_peer},
	    {"admin group peer", test_admin_group_peer},
	    {"100 concurrent clients", test_concurrent_clients},
	    {"garbage", test_garbage},
	    {"half-closed clients", test_half_close},
	    {"slow reader", test_slow_reader},
	    {"streamed replies", test_stream},
	    {"stream to a slow reader", test_stream_slow_reader},
	    {"per-uid limit and admin slots", test_slots},
	    {"bound on all queued bytes", test_total_bound},
	    {"idle clients closed", test_idle_close},
	    {"max clients", test_max_clients},
	    {"socket file mode and group", test_socket_file},
	    {"stale and live sockets", test_stale_and_live},
	    {"command table validation", test_table_validation},
	    {"client library errors", test_client_errors},
	    {"anygatectl", test_anygatectl},
	};
	unsigned int i, failed;
	CU_pSuite suite;

	/* Peers that hang up early must not kill the test process. */
	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return CU_get_error();
	suite = CU_add_suite("ctl", suite_init, suite_clean);
	if (!suite)
		goto out;
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			goto out;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
out:
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
