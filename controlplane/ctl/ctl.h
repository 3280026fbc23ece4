/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated's control socket (docs/control.md): a unix stream socket served from
 * the daemon's one event loop. Every command is declared once in a table
 * (words, argument usage, access level, handler, help); each request is one
 * line of words and each reply one line of compact JSON, so the end of a reply
 * is explicit. Peer credentials (SO_PEERCRED, SO_PEERGROUPS) decide whether a
 * client may run commands that change state.
 *
 * Nothing here blocks and nobody can take it all: sockets are non-blocking;
 * connections are limited per uid, with slots kept for admins; a client's next
 * request is read only once the reply before it is sent whole, and reply
 * bytes queued are bounded per client and in total; replies that walk large
 * tables are produced piece by piece as the client drains them (a stream);
 * idle clients are closed by one sweeping timer.
 */
#ifndef AG_CTL_H
#define AG_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"

#define AG_CTL_PROTOCOL	      1	    /* greeting's "protocol"; bump on an incompatible change */
#define AG_CTL_LINE_MAX	      4096  /* request bytes before "\n": a command line, not a payload */
#define AG_CTL_MAX_WORDS      64    /* words of one request: no command needs more */
#define AG_CTL_CMD_WORDS      4	    /* words naming a command ("region fail", "set weight") */
#define AG_CTL_MAX_CLIENTS    256   /* connections at once; more get a "busy" error */
#define AG_CTL_ADMIN_SLOTS    16    /* of those, kept for admins: read-only peers get 240 */
#define AG_CTL_MAX_PER_UID    32    /* connections of one uid (uid 0: no limit) */
#define AG_CTL_IDLE_MS	      60000 /* a client that neither sends nor reads this long is closed */
#define AG_CTL_OUT_MAX	      (4u << 20)  /* reply bytes queued for one client: one reply at most */
#define AG_CTL_OUT_TOTAL      (64u << 20) /* reply bytes queued for all clients together */
#define AG_CTL_OUT_ADMIN      (16u << 20) /* of those, only admins' replies may use the last */
#define AG_CTL_STREAM_LOW     (64u << 10) /* a stream's next piece: once less than this waits */
#define AG_CTL_PIECE_MAX      (128u << 10) /* bytes of one piece of a stream */
#define AG_CTL_REPLY_MAX      (64u << 20)  /* a reply line clients must take (streams stay under) */
#define AG_CTL_DEFAULT_SOCKET "/run/anygate/anygated.sock"

enum ag_ctl_access {
	AG_CTL_READ = 0,  /* anyone who can connect */
	AG_CTL_ADMIN = 1, /* root, or a member of the admin group */
};

/* Reply status: 0, or the error "code" the client sees. */
enum ag_ctl_status {
	AG_CTL_OK = 0,
	AG_CTL_EUSAGE,	  /* "usage": wrong number of arguments, empty request */
	AG_CTL_EUNKNOWN,  /* "unknown": no such command */
	AG_CTL_EDENIED,	  /* "denied": an admin command from a read-only peer */
	AG_CTL_EINVALID,  /* "invalid": a bad value or a malformed request */
	AG_CTL_EBUSY,	  /* "busy": try again later (too many clients, no room for replies) */
	AG_CTL_EINTERNAL, /* "internal": the daemon failed */
	AG_CTL__NR_STATUS,
};

struct ag_ctl_cmd;
struct ag_ctl_client;

/*
 * A reply produced piece by piece, as the client drains it: for replies that
 * walk large tables. The server calls next() once per event-loop turn, when
 * less than AG_CTL_STREAM_LOW of the reply waits to be sent and the bound on
 * all clients' queued bytes leaves room for a piece, so a slow reader holds
 * at most about AG_CTL_STREAM_LOW + AG_CTL_PIECE_MAX and other clients are
 * served between pieces. The reply line is {"data":<pieces>,"ok":true}: "ok"
 * comes last, once the walk is over.
 */
struct ag_ctl_stream {
	/*
	 * Appends the next piece of the reply's data (JSON text, at most
	 * AG_CTL_PIECE_MAX bytes) with ag_ctl_stream__text/__json. Returns 1 when
	 * more is to come, 0 when the data is complete, or fails like a handler
	 * (a status or -errno, *err may say why) after closing what it wrote
	 * into one JSON value: the reply then ends "ok":false with the error.
	 */
	int (*next)(struct ag_ctl_stream *s, char **err);
	/* Frees s: after the last piece, or early when the client goes away. */
	void (*free)(struct ag_ctl_stream *s);
	struct ag_ctl_client *cl; /* set by the server */
	size_t piece;		  /* bytes of the piece under way (server's) */
};

/* Append to the piece under way. 0, -ENOBUFS past AG_CTL_PIECE_MAX, -ENOMEM. */
int ag_ctl_stream__text(struct ag_ctl_stream *s, const char *text, size_t len);
/* v as compact JSON (stolen, also on failure). 0 or -errno as above. */
int ag_ctl_stream__json(struct ag_ctl_stream *s, json_t *v);

/* One request as a handler sees it. */
struct ag_ctl_req {
	int argc;    /* arguments after the command words */
	char **argv; /* NUL-terminated UTF-8 words, valid during the call */
	const struct ag_ctl_cmd *cmd;
	struct ag_ctl *ctl; /* the server (ag_ctl__stats for a status command) */
	pid_t pid;	    /* peer credentials at connect time */
	uid_t uid;
	gid_t gid;
	bool admin;
	void *ctx; /* ag_ctl_opts.ctx */
	/*
	 * A handler may answer with a stream instead of *data: it sets this and
	 * returns AG_CTL_OK; the server owns the stream from then on (and frees
	 * it if the handler fails after all).
	 */
	struct ag_ctl_stream *stream;
};

/*
 * A handler returns AG_CTL_OK and sets *data to a new reference (object,
 * array or scalar; left NULL the reply's data is null), or fails: it returns an
 * enum ag_ctl_status (or a -errno: -EINVAL/-ERANGE/-ENOENT/-EEXIST -> invalid,
 * -EPERM/-EACCES -> denied, -EBUSY/-EAGAIN -> busy, others -> internal) and
 * may set *err to a
 * malloc'd message (ag_ctl__fail does both). Handlers run on the loop thread
 * and must not block.
 */
typedef int (*ag_ctl_handler)(struct ag_ctl_req *req, json_t **data, char **err);

struct ag_ctl_cmd {
	const char *words[AG_CTL_CMD_WORDS]; /* {"set", "weight"}: the rest NULL */
	const char *args; /* argument usage, e.g. "ENDPOINT WEIGHT"; NULL or "" for none */
	int min_args;
	int max_args; /* -1: no upper limit */
	enum ag_ctl_access access;
	ag_ctl_handler fn;
	const char *help; /* one line */
};

struct ag_ctl_opts {
	const char *path;	       /* socket path (< 108 bytes) */
	const char *version;	       /* the greeting's "anygate" version */
	gid_t sock_gid;		       /* group of the socket file; (gid_t)-1 keeps the creator's */
	gid_t admin_gid;	       /* group whose members are admin; (gid_t)-1: root only */
	const struct ag_ctl_cmd *cmds; /* the daemon's commands, besides the built-ins */
	unsigned int n_cmds;
	void *ctx; /* handed to every handler */
	/*
	 * Tunables, 0 = the AG_CTL_* default (tests shrink them). admin_slots
	 * is at most max_clients - 1; out_admin less than out_total.
	 */
	unsigned int max_clients;
	unsigned int admin_slots;
	unsigned int max_per_uid;
	uint32_t idle_ms;
	size_t out_max;
	size_t out_total;
	size_t out_admin;
};

struct ag_ctl_stats {
	unsigned int clients;	      /* connected now */
	unsigned int admins;	      /* of which admins */
	unsigned int streams;	      /* replies being streamed now */
	uint64_t accepted;	      /* connections served */
	uint64_t refused_busy;	      /* refused: max_clients reached */
	uint64_t refused_admin_slots; /* refused: read-only, only the admins' slots were left */
	uint64_t refused_uid;	      /* refused: its uid had max_per_uid connections */
	uint64_t requests;	      /* request lines answered */
	uint64_t errors;	      /* of which answered with an error */
	uint64_t denied;	      /* of which "denied" */
	uint64_t replies_too_big;     /* of which refused: the reply exceeded out_max */
	uint64_t replies_no_room;     /* of which refused: all clients' queued bytes at the bound */
	uint64_t streams_failed;      /* streams that ended with an error */
	uint64_t stream_waits;	      /* times a stream waited for room under out_total */
	uint64_t closed_idle;	      /* clients closed after idle_ms without progress */
	uint64_t closed_long_line;    /* clients closed for a line over AG_CTL_LINE_MAX */
	uint64_t queued;	      /* reply bytes queued now, all clients */
	uint64_t queued_peak;	      /* the most queued at once, all clients */
	uint64_t queued_peak_client;  /* the most queued at once for one client */
};

/*
 * Creates the socket at opts->path (mode 0660, group sock_gid) and serves it
 * from `loop`. A stale socket file (nobody listening) is replaced; a live one
 * (another daemon) or a non-socket file at the path is refused with errno
 * EADDRINUSE / EEXIST. A bad command table (no words, no handler, min > max,
 * a name declared twice, including a built-in's) is EINVAL. Returns NULL and
 * sets errno on failure, after logging why.
 */
struct ag_ctl *ag_ctl__new(struct ag_loop *loop, const struct ag_ctl_opts *opts);
/*
 * Closes every client and the socket and unlinks the socket file (unless it is
 * no longer ours). Call it outside ag_loop__run's dispatch of this loop (after
 * the loop returns): a pending event of a freed client would be stale.
 */
void ag_ctl__free(struct ag_ctl *ctl);
void ag_ctl__stats(const struct ag_ctl *ctl, struct ag_ctl_stats *st);

/* Sets *err to the formatted message and returns code: `return ag_ctl__fail(...)`. */
int ag_ctl__fail(char **err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "usage", "unknown", ... for a status; NULL for AG_CTL_OK or out of range. */
const char *ag_ctl__code_name(int code);

/* ---- The request syntax, shared by the server, anygatectl and the tests ---- */

/*
 * A request split into words. Words are separated by spaces or tabs; a double
 * quoted segment may hold spaces, tabs, \" and \\ (backslash is literal outside
 * quotes); segments next to each other join into one word; "" is an empty word.
 */
struct ag_ctl_words {
	int argc;
	char *argv[AG_CTL_MAX_WORDS + 1]; /* NULL-terminated, pointing into buf */
	char buf[AG_CTL_LINE_MAX + 1];
};

/*
 * Splits line[0..len) (no "\n") into w. Returns 0, or -EINVAL with *problem set
 * to a static description (NUL byte, invalid UTF-8, control character,
 * unterminated quote, too many words, longer than AG_CTL_LINE_MAX).
 */
int ag_ctl__split(struct ag_ctl_words *w, const char *line, size_t len, const char **problem);
/*
 * The request line for argv (no "\n"), quoting words as ag_ctl__split reads
 * them back. NULL with errno EINVAL when a word holds a control character or
 * invalid UTF-8 (a request is one line of text), ENOMEM.
 */
char *ag_ctl__join(int argc, char *const *argv);
bool ag_ctl__utf8_valid(const char *s, size_t len);

#endif /* AG_CTL_H */
