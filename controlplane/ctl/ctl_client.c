/* SPDX-License-Identifier: BSD-3-Clause */
#include "ctl_client.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "loop.h"

/* A reply line larger than this is not from anygated (its replies, streamed ones too, stop at 64
 * MiB). */
#define REPLY_LINE_MAX (AG_CTL_REPLY_MAX + 4096u)

/* Waits for fd to be ready for `events` until the deadline: 0, -ETIMEDOUT or -errno. */
static int wait_fd(const struct ag_ctlc *c, short events)
{
	struct pollfd p = {.fd = c->fd, .events = events};
	int timeout = -1, n;

	for (;;) {
		if (c->deadline_ns) {
			uint64_t now = ag_now_ns();

			if (now >= c->deadline_ns)
				return -ETIMEDOUT;
			timeout = (int)((c->deadline_ns - now + 999999) / 1000000);
		}
		n = poll(&p, 1, timeout);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* The next line (without "\n", NUL-terminated, valid until the next call). */
static int read_line(struct ag_ctlc *c, char **line, size_t *len)
{
	size_t scanned = 0;

	if (c->consumed) {
		memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
		c->len -= c->consumed;
		c->consumed = 0;
	}
	for (;;) {
		char *nl =
		    c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
		ssize_t n;
		int err;

		if (nl) {
			*nl = '\0';
			*line = c->buf;
			*len = nl - c->buf;
			c->consumed = *len + 1;
			return 0;
		}
		scanned = c->len;
		if (c->len >= REPLY_LINE_MAX) {
			snprintf(c->err, sizeof(c->err), "garbled reply: a line over %u bytes",
				 REPLY_LINE_MAX);
			return -EPROTO;
		}
		if (c->cap - c->len < 65536) {
			size_t cap = c->cap ? c->cap * 2 : 65536;
			char *p = realloc(c->buf, cap + 1);

			if (!p) {
				snprintf(c->err, sizeof(c->err), "out of memory");
				return -ENOMEM;
			}
			c->buf = p;
			c->cap = cap;
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
		if (n > 0) {
			c->len += n;
			continue;
		}
		/* A peer closing with our request unread resets instead of EOF: same thing here. */
		if (n == 0 || errno == ECONNRESET) {
			snprintf(c->err, sizeof(c->err), "anygated closed the connection%s",
				 c->len ? " in the middle of a reply" : " without a reply");
			return -ECONNRESET;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			err = -errno;
			snprintf(c->err, sizeof(c->err), "reading the reply: %s", strerror(errno));
			return err;
		}
		err = wait_fd(c, POLLIN);
		if (err) {
			snprintf(c->err, sizeof(c->err), "%s",
				 err == -ETIMEDOUT ? "no answer from anygated in time"
						   : strerror(-err));
			return err;
		}
	}
}

static int send_all(struct ag_ctlc *c, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int err;

		if (n >= 0) {
			p += n;
			len -= n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			err = -errno;
			snprintf(c->err, sizeof(c->err), "sending the request: %s",
				 strerror(errno));
			return err;
		}
		err = wait_fd(c, POLLOUT);
		if (err) {
			snprintf(c->err, sizeof(c->err), "%s",
				 err == -ETIMEDOUT ? "anygated does not take the request in time"
						   : strerror(-err));
			return err;
		}
	}
	return 0;
}

static int check_greeting(struct ag_ctlc *c, const char *path, const char *line, size_t len)
{
	json_t *g = json_loadb(line, len, 0, NULL), *proto, *ver;
	int err = -EPROTO;

	if (!json_is_object(g)) {
		snprintf(c->err, sizeof(c->err),
			 "%s: not an anygated control socket "
			 "(unexpected greeting)",
			 path);
		goto out;
	}
	if (json_is_false(json_object_get(g, "ok"))) {
		const char *msg = json_string_value(json_object_get(g, "error"));
		const char *code = json_string_value(json_object_get(g, "code"));

		snprintf(c->err, sizeof(c->err), "%s", msg ? msg : "refused by anygated");
		if (code && !strcmp(code, "busy"))
			err = -EBUSY;
		goto out;
	}
	proto = json_object_get(g, "protocol");
	ver = json_object_get(g, "anygate");
	if (!json_is_integer(proto) || !json_is_string(ver)) {
		snprintf(c->err, sizeof(c->err),
			 "%s: not an anygated control socket "
			 "(unexpected greeting)",
			 path);
		goto out;
	}
	if (json_integer_value(proto) != AG_CTL_PROTOCOL) {
		snprintf(c->err, sizeof(c->err),
			 "anygated %s speaks control protocol %lld; "
			 "this anygatectl speaks %d: use the anygatectl of the same release",
			 json_string_value(ver), (long long)json_integer_value(proto),
			 AG_CTL_PROTOCOL);
		goto out;
	}
	snprintf(c->version, sizeof(c->version), "%s", json_string_value(ver));
	err = 0;
out:
	json_decref(g);
	return err;
}

int ag_ctlc__connect(struct ag_ctlc *c, const char *path, uint64_t deadline_ns)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char *line = NULL;
	size_t len = 0;
	int err;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->deadline_ns = deadline_ns;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(c->err, sizeof(c->err), "%s: socket path longer than %zu bytes", path,
			 sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		err = -errno;
		snprintf(c->err, sizeof(c->err), "socket: %s", strerror(errno));
		return err;
	}
	/* A full backlog fails a non-blocking unix connect() with EAGAIN: retry until the deadline.
	 */
	while (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun))) {
		struct timespec ts = {0, 10 * 1000000};

		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			err = -errno;
			snprintf(c->err, sizeof(c->err), "cannot connect to %s: %s%s", path,
				 strerror(errno),
				 errno == EACCES ? " (the socket's group may read, root or the "
						   "admin group may change)"
						 : " (is anygated running?)");
			goto out_close;
		}
		if (deadline_ns && ag_now_ns() >= deadline_ns) {
			err = -ETIMEDOUT;
			snprintf(c->err, sizeof(c->err),
				 "cannot connect to %s: anygated does not "
				 "accept connections in time",
				 path);
			goto out_close;
		}
		nanosleep(&ts, NULL);
	}
	err = read_line(c, &line, &len);
	if (err) {
		if (err == -ECONNRESET)
			snprintf(c->err, sizeof(c->err), "%s: closed without a greeting", path);
		else if (err == -ETIMEDOUT)
			snprintf(c->err, sizeof(c->err), "%s: no greeting from anygated in time",
				 path);
		goto out_close;
	}
	err = check_greeting(c, path, line, len);
	if (err)
		goto out_close;
	return 0;

out_close:
	ag_ctlc__close(c);
	return err;
}

static int check_reply(struct ag_ctlc *c, json_t *r)
{
	json_t *ok = json_object_get(r, "ok");

	if (!json_is_boolean(ok))
		return -EPROTO;
	if (json_is_true(ok))
		return json_object_get(r, "data") ? 0 : -EPROTO;
	if (!json_is_string(json_object_get(r, "error")) ||
	    !json_is_string(json_object_get(r, "code")))
		return -EPROTO;
	return 0;
}

int ag_ctlc__request(struct ag_ctlc *c, int argc, char *const *argv, json_t **reply)
{
	json_error_t jerr;
	char *req, *line = NULL;
	size_t len;
	json_t *r;
	int err;

	*reply = NULL;
	req = ag_ctl__join(argc, argv);
	if (!req) {
		err = -errno;
		snprintf(c->err, sizeof(c->err), "%s",
			 err == -EINVAL
			     ? "a word of the command holds a control character or invalid "
			       "UTF-8"
			     : strerror(errno));
		return err;
	}
	len = strlen(req);
	if (len > AG_CTL_LINE_MAX) {
		free(req);
		snprintf(c->err, sizeof(c->err), "command longer than %d bytes", AG_CTL_LINE_MAX);
		return -E2BIG;
	}
	req[len] = '\n'; /* join's buffer has room: it sized for quotes it did not need */
	err = send_all(c, req, len + 1);
	free(req);
	if (err)
		return err;
	err = read_line(c, &line, &len);
	if (err)
		return err;
	r = json_loadb(line, len, 0, &jerr);
	if (!r || check_reply(c, r)) {
		snprintf(c->err, sizeof(c->err), "garbled reply from anygated: %s",
			 r ? "not a reply object" : jerr.text);
		json_decref(r);
		return -EPROTO;
	}
	*reply = r;
	return 0;
}

void ag_ctlc__close(struct ag_ctlc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = c->consumed = 0;
}

int ag_ctlc__connect_exit(int err)
{
	switch (err) {
	case 0:
		return AG_EXIT_OK;
	case -ETIMEDOUT:
		return AG_EXIT_TIMEOUT;
	case -EPROTO:
		return AG_EXIT_PROTOCOL;
	case -EBUSY:
		return AG_EXIT_FAILED;
	default:
		return AG_EXIT_CONNECT;
	}
}

int ag_ctlc__request_exit(int err)
{
	switch (err) {
	case 0:
		return AG_EXIT_OK;
	case -EINVAL:
	case -E2BIG:
		return AG_EXIT_USAGE;
	case -ETIMEDOUT:
		return AG_EXIT_TIMEOUT;
	case -ENOMEM:
		return AG_EXIT_FAILED;
	default:
		return AG_EXIT_PROTOCOL;
	}
}

int ag_ctlc__reply_exit(const json_t *reply)
{
	const char *code;

	if (json_is_true(json_object_get(reply, "ok")))
		return AG_EXIT_OK;
	code = json_string_value(json_object_get(reply, "code"));
	if (!code)
		return AG_EXIT_PROTOCOL;
	if (!strcmp(code, "usage") || !strcmp(code, "unknown"))
		return AG_EXIT_USAGE;
	if (!strcmp(code, "denied"))
		return AG_EXIT_DENIED;
	return AG_EXIT_FAILED;
}
