/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client side of the control protocol (docs/control.md), used by
 * anygatectl and the tests: connect and check the greeting, send one request,
 * read its one-line JSON reply, all within a deadline.
 */
#ifndef AG_CTL_CLIENT_H
#define AG_CTL_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* anygatectl's exit codes: scripts rely on them (docs/control.md). */
enum ag_ctl_exit {
	AG_EXIT_OK = 0,
	AG_EXIT_FAILED = 1,   /* the daemon answered with an error */
	AG_EXIT_USAGE = 2,    /* bad command line, unknown command, wrong arguments */
	AG_EXIT_CONNECT = 3,  /* cannot connect to the socket */
	AG_EXIT_DENIED = 4,   /* the command needs admin rights */
	AG_EXIT_PROTOCOL = 5, /* protocol version mismatch, garbled or missing reply */
	AG_EXIT_TIMEOUT = 6,  /* no answer in time */
};

struct ag_ctlc {
	int fd;
	uint64_t deadline_ns; /* ag_now_ns() clock; 0: no deadline */
	char *buf;	      /* received, not yet consumed */
	size_t len, cap, consumed;
	char version[64]; /* the daemon's, from its greeting */
	char err[640];	  /* why the last call failed, for people */
};

/*
 * Connects to the socket at path and checks the greeting. Returns 0 or -errno:
 * a connect() error (ENOENT, ECONNREFUSED, EACCES...), -ETIMEDOUT, -EPROTO (not
 * an anygated greeting, or another protocol version), -EBUSY (the daemon has
 * too many clients). c->err says what went wrong either way; ag_ctlc__close
 * is needed after success only.
 */
int ag_ctlc__connect(struct ag_ctlc *c, const char *path, uint64_t deadline_ns);
/*
 * Sends argv as one request and reads its reply: 0 and *reply (an object with
 * "ok" true and "data", or "ok" false, "error" and "code"), or -errno: -EINVAL
 * (a word holds a control character or invalid UTF-8), -E2BIG (request too
 * long), -ETIMEDOUT, -EPROTO (garbled reply), -ECONNRESET/-EPIPE (connection
 * lost before the reply).
 */
int ag_ctlc__request(struct ag_ctlc *c, int argc, char *const *argv, json_t **reply);
void ag_ctlc__close(struct ag_ctlc *c);

/* Exit codes for the errors above and for a reply. */
int ag_ctlc__connect_exit(int err);
int ag_ctlc__request_exit(int err);
int ag_ctlc__reply_exit(const json_t *reply);

#endif /* AG_CTL_CLIENT_H */
