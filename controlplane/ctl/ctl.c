/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket server. One listening unix socket and up to max_clients
 * connections, all non-blocking in the daemon's loop. A client's struct is
 * freed only from its own event callback (or by ag_ctl__free after the loop),
 * so an event already fetched by epoll_wait never points at freed memory: the
 * idle sweep shuts an idle client's socket down and lets its callback free it.
 *
 * A client's requests are answered one at a time: the next line is read only
 * once the reply before it is queued whole and sent (backpressure: a client
 * that does not read gets nothing more done for it). A reply is a JSON line
 * dumped whole (at most out_max bytes), or a stream whose pieces are made only
 * while the client drains them; every queued byte counts against the total
 * bound (out_total, the last out_admin of it for admins only).
 */
#include "ctl.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "abi.h"
#include "log.h"

/* Reads (of up to a line each) per event before yielding to other fds; level-triggered epoll calls
 * again. */
#define READ_BUDGET 4
/* A drained output buffer larger than this is given back. */
#define OUT_KEEP    (64u << 10)

struct ag_ctl_client {
	struct ag_ev ev;
	struct ag_ctl *ctl;
	struct ag_ctl_client *prev, *next;
	char in[AG_CTL_LINE_MAX + 1]; /* one full line and its "\n" */
	size_t in_off, in_len;	      /* requests not answered yet: in[in_off..in_len) */
	char *out;
	size_t out_off, out_len, out_cap;
	size_t reply_mark; /* out_len where the reply being dumped started */
	bool reply_too_big;
	struct ag_ctl_stream *stream; /* the reply being produced piece by piece */
	bool stalled;		      /* the stream waits for room under out_total */
	uint64_t last_active_ns;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool admin;
	bool eof;     /* no more requests: EOF, or a line too long */
	bool dead;    /* close now, without flushing */
	bool expired; /* idle: shut down by the sweep, freed by its callback */
};

struct ag_ctl {
	struct ag_loop *loop;
	struct ag_ev lev;
	struct ag_timer sweep;
	bool accept_paused;
	char *path;
	char *version;
	dev_t sock_dev;
	ino_t sock_ino;
	gid_t admin_gid;
	char admin_group[64]; /* name of admin_gid, for "denied" messages */
	const struct ag_ctl_cmd *cmds;
	unsigned int n_cmds;
	void *ctx;
	unsigned int max_clients, admin_slots, max_per_uid;
	uint64_t idle_ns;
	size_t out_max, out_total, out_admin;
	unsigned int n_stalled; /* clients whose stream waits for room */
	struct ag_ctl_client *clients;
	struct ag_ctl_stats stats;
};

static const char *const code_names[AG_CTL__NR_STATUS] = {
    [AG_CTL_EUSAGE] = "usage",	   [AG_CTL_EUNKNOWN] = "unknown", [AG_CTL_EDENIED] = "denied",
    [AG_CTL_EINVALID] = "invalid", [AG_CTL_EBUSY] = "busy",	  [AG_CTL_EINTERNAL] = "internal",
};

const char *ag_ctl__code_name(int code)
{
	if (code <= AG_CTL_OK || code >= AG_CTL__NR_STATUS)
		return NULL;
	return code_names[code];
}

int ag_ctl__fail(char **err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	free(*err);
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
	return code;
}

/* ------------------------------------------------------------------------ */
/* Request syntax                                                           */

bool ag_ctl__utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned char c = *p;
		uint32_t cp;
		int n, i;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false; /* continuation byte, overlong 0xc0/0xc1, or > U+10FFFF */
		}
		if (end - p <= n)
			return false;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		/* Overlong forms, UTF-16 surrogates and beyond U+10FFFF are not UTF-8. */
		if (n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
			return false;
		if (n == 3 && (cp < 0x10000 || cp > 0x10ffff))
			return false;
		p += n + 1;
	}
	return true;
}

static bool is_control(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

int ag_ctl__split(struct ag_ctl_words *w, const char *line, size_t len, const char **problem)
{
	size_t i = 0, o = 0;

	w->argc = 0;
	w->argv[0] = NULL;
	if (len > AG_CTL_LINE_MAX) {
		*problem = "request longer than 4096 bytes";
		return -EINVAL;
	}
	if (memchr(line, '\0', len)) {
		*problem = "request contains a NUL byte";
		return -EINVAL;
	}
	if (!ag_ctl__utf8_valid(line, len)) {
		*problem = "request is not valid UTF-8";
		return -EINVAL;
	}
	/*
	 * Output never outgrows buf: each word adds one NUL, and every word but
	 * the first consumed a separator byte, so at most len + 1 bytes.
	 */
	for (;;) {
		bool quoted = false;

		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len)
			break;
		if (w->argc == AG_CTL_MAX_WORDS) {
			*problem = "request has more than 64 words";
			return -EINVAL;
		}
		w->argv[w->argc++] = &w->buf[o];
		for (; i < len; i++) {
			unsigned char c = line[i];

			if (!quoted && (c == ' ' || c == '\t'))
				break;
			if (is_control(c)) {
				*problem = "request contains a control character";
				return -EINVAL;
			}
			if (c == '"') {
				quoted = !quoted;
				continue;
			}
			if (quoted && c == '\\' && i + 1 < len &&
			    (line[i + 1] == '"' || line[i + 1] == '\\'))
				c = line[++i];
			w->buf[o++] = c;
		}
		if (quoted) {
			*problem = "request has an unterminated quote";
			return -EINVAL;
		}
		w->buf[o++] = '\0';
	}
	w->argv[w->argc] = NULL;
	return 0;
}

char *ag_ctl__join(int argc, char *const *argv)
{
	size_t cap = 1, o = 0;
	char *line;
	int i;

	for (i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]), j;

		for (j = 0; j < n; j++) {
			if (is_control(argv[i][j])) {
				errno = EINVAL;
				return NULL;
			}
		}
		if (!ag_ctl__utf8_valid(argv[i], n)) {
			errno = EINVAL;
			return NULL;
		}
		cap += 2 * n + 3; /* every byte escaped, two quotes, a space */
	}
	line = malloc(cap);
	if (!line)
		return NULL;
	for (i = 0; i < argc; i++) {
		const char *s = argv[i];
		bool quote = !*s || strpbrk(s, " \t\"");

		if (i)
			line[o++] = ' ';
		if (quote)
			line[o++] = '"';
		for (; *s; s++) {
			if (quote && (*s == '"' || *s == '\\'))
				line[o++] = '\\';
			line[o++] = *s;
		}
		if (quote)
			line[o++] = '"';
	}
	line[o] = '\0';
	return line;
}

/* ------------------------------------------------------------------------ */
/* Command table                                                            */

static int cmd_nwords(const struct ag_ctl_cmd *cmd)
{
	int k = 0;

	while (k < AG_CTL_CMD_WORDS && cmd->words[k])
		k++;
	return k;
}

/* "set weight" */
static void cmd_name(const struct ag_ctl_cmd *cmd, char *buf, size_t size)
{
	size_t o = 0;
	int k, n = cmd_nwords(cmd);

	buf[0] = '\0';
	for (k = 0; k < n && o < size; k++)
		o += snprintf(buf + o, size - o, "%s%s", k ? " " : "", cmd->words[k]);
}

static bool cmd_same_words(const struct ag_ctl_cmd *a, const struct ag_ctl_cmd *b)
{
	int k, n = cmd_nwords(a);

	if (n != cmd_nwords(b))
		return false;
	for (k = 0; k < n; k++)
		if (strcmp(a->words[k], b->words[k]))
			return false;
	return true;
}

static int builtin_help(struct ag_ctl_req *req, json_t **data, char **err);
static int builtin_version(struct ag_ctl_req *req, json_t **data, char **err);
static int builtin_ping(struct ag_ctl_req *req, json_t **data, char **err);
static int builtin_whoami(struct ag_ctl_req *req, json_t **data, char **err);

static const struct ag_ctl_cmd builtins[] = {
    {{"help"},
     "[COMMAND...]",
     0,
     AG_CTL_CMD_WORDS,
     AG_CTL_READ,
     builtin_help,
     "list the commands (those starting with COMMAND)"},
    {{"version"},
     "",
     0,
     0,
     AG_CTL_READ,
     builtin_version,
     "anygated version, control protocol and table ABI"},
    {{"ping"}, "", 0, 0, AG_CTL_READ, builtin_ping, "answer \"pong\""},
    {{"whoami"},
     "",
     0,
     0,
     AG_CTL_READ,
     builtin_whoami,
     "your credentials as the daemon sees them, and your access level"},
};

#define N_BUILTINS (sizeof(builtins) / sizeof(builtins[0]))

static const struct ag_ctl_cmd *cmd_at(const struct ag_ctl *ctl, unsigned int i)
{
	return i < N_BUILTINS ? &builtins[i] : &ctl->cmds[i - N_BUILTINS];
}

static unsigned int cmd_count(const struct ag_ctl *ctl)
{
	return N_BUILTINS + ctl->n_cmds;
}

static int check_table(const struct ag_ctl_cmd *cmds, unsigned int n)
{
	unsigned int i, j;
	char name[128];
	int k;

	for (i = 0; i < n; i++) {
		const struct ag_ctl_cmd *cmd = &cmds[i];
		int nw = cmd_nwords(cmd);

		cmd_name(cmd, name, sizeof(name));
		if (!nw) {
			pr_err("control socket: command %u has no words\n", i);
			return -EINVAL;
		}
		for (k = 0; k < AG_CTL_CMD_WORDS; k++) {
			if (k >= nw && cmd->words[k]) {
				pr_err("control socket: command \"%s\": words after a NULL\n",
				       name);
				return -EINVAL;
			}
			if (k < nw && (!cmd->words[k][0] || strpbrk(cmd->words[k], " \t\""))) {
				pr_err("control socket: command \"%s\": a word is empty or has "
				       "spaces or quotes\n",
				       name);
				return -EINVAL;
			}
		}
		if (!cmd->fn || cmd->min_args < 0 ||
		    (cmd->max_args != -1 && cmd->max_args < cmd->min_args) ||
		    (cmd->access != AG_CTL_READ && cmd->access != AG_CTL_ADMIN)) {
			pr_err("control socket: command \"%s\": no handler, bad argument counts "
			       "or bad access level\n",
			       name);
			return -EINVAL;
		}
		for (j = 0; j < N_BUILTINS; j++) {
			if (cmd_same_words(cmd, &builtins[j])) {
				pr_err("control socket: command \"%s\" is built in\n", name);
				return -EINVAL;
			}
		}
		for (j = 0; j < i; j++) {
			if (cmd_same_words(cmd, &cmds[j])) {
				pr_err("control socket: command \"%s\" declared twice\n", name);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The command whose words are the longest prefix of argv, or NULL. */
static const struct ag_ctl_cmd *cmd_match(const struct ag_ctl *ctl, int argc, char **argv)
{
	const struct ag_ctl_cmd *best = NULL;
	int best_n = 0, k;
	unsigned int i;

	for (i = 0; i < cmd_count(ctl); i++) {
		const struct ag_ctl_cmd *cmd = cmd_at(ctl, i);
		int n = cmd_nwords(cmd);

		if (n > argc || n <= best_n)
			continue;
		for (k = 0; k < n; k++)
			if (strcmp(cmd->words[k], argv[k]))
				break;
		if (k == n) {
			best = cmd;
			best_n = n;
		}
	}
	return best;
}

/* How many leading words of argv cmd shares. */
static int cmd_common(const struct ag_ctl_cmd *cmd, int argc, char **argv)
{
	int k, n = cmd_nwords(cmd);

	for (k = 0; k < n && k < argc; k++)
		if (strcmp(cmd->words[k], argv[k]))
			break;
	return k;
}

/* "unknown command "set foo"; did you mean: set weight, set dial?" */
static int unknown_command(const struct ag_ctl *ctl, int argc, char **argv, char **err)
{
	char name[128], *hint = NULL, *s;
	unsigned int i;
	int best = 0, k, shown;
	size_t len = 0;
	FILE *f;

	for (i = 0; i < cmd_count(ctl); i++) {
		int c = cmd_common(cmd_at(ctl, i), argc, argv);

		if (c > best)
			best = c;
	}
	f = open_memstream(&hint, &len);
	if (!f)
		return ag_ctl__fail(err, AG_CTL_EUNKNOWN, "unknown command");
	fputs("unknown command \"", f);
	shown = best < argc ? best + 1 : argc;
	for (k = 0; k < shown; k++)
		fprintf(f, "%s%s", k ? " " : "", argv[k]);
	fputc('"', f);
	if (best) {
		const char *sep = "; did you mean: ";

		for (i = 0; i < cmd_count(ctl); i++) {
			const struct ag_ctl_cmd *cmd = cmd_at(ctl, i);

			if (cmd_common(cmd, argc, argv) != best)
				continue;
			cmd_name(cmd, name, sizeof(name));
			fprintf(f, "%s%s", sep, name);
			sep = ", ";
		}
		fputc('?', f);
	} else {
		fputs("; \"help\" lists the commands", f);
	}
	if (fclose(f))
		return ag_ctl__fail(err, AG_CTL_EUNKNOWN, "unknown command");
	s = hint;
	free(*err);
	*err = s;
	return AG_CTL_EUNKNOWN;
}

/* ------------------------------------------------------------------------ */
/* Built-in commands                                                        */

static int builtin_help(struct ag_ctl_req *req, json_t **data, char **err)
{
	const struct ag_ctl *ctl = req->ctl;
	json_t *list = json_array();
	char name[128];
	unsigned int i;

	if (!list)
		return -ENOMEM;
	for (i = 0; i < cmd_count(ctl); i++) {
		const struct ag_ctl_cmd *cmd = cmd_at(ctl, i);
		json_t *row;

		if (cmd_common(cmd, req->argc, req->argv) < req->argc)
			continue;
		cmd_name(cmd, name, sizeof(name));
		row = json_pack("{s:s, s:s, s:s, s:s}", "command", name, "args",
				cmd->args ? cmd->args : "", "access",
				cmd->access == AG_CTL_ADMIN ? "admin" : "read", "help",
				cmd->help ? cmd->help : "");
		if (!row || json_array_append_new(list, row)) {
			json_decref(list);
			return -ENOMEM;
		}
	}
	if (!json_array_size(list)) {
		json_decref(list);
		return unknown_command(ctl, req->argc, req->argv, err);
	}
	*data = list;
	return 0;
}

static int builtin_version(struct ag_ctl_req *req, json_t **data, char **err)
{
	*data = json_pack("{s:s, s:i, s:i}", "anygate", req->ctl->version, "protocol",
			  AG_CTL_PROTOCOL, "abi", AG_ABI_VERSION);
	return *data ? 0 : -ENOMEM;
}

static int builtin_ping(struct ag_ctl_req *req, json_t **data, char **err)
{
	*data = json_string("pong");
	return *data ? 0 : -ENOMEM;
}

static int builtin_whoami(struct ag_ctl_req *req, json_t **data, char **err)
{
	*data = json_pack("{s:I, s:I, s:I, s:s}", "uid", (json_int_t)req->uid, "gid",
			  (json_int_t)req->gid, "pid", (json_int_t)req->pid, "access",
			  req->admin ? "admin" : "read");
	return *data ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------------------ */
/* Clients: output queue and its bounds                                     */

static void stream_free(struct ag_ctl_client *cl);

static size_t client_pending(const struct ag_ctl_client *cl)
{
	return cl->out_len - cl->out_off;
}

/* A reply still being queued or sent: no further request is read meanwhile. */
static bool client_busy(const struct ag_ctl_client *cl)
{
	return cl->stream || client_pending(cl);
}

/* The most all clients' queued bytes may reach for cl's replies. */
static size_t total_limit(const struct ag_ctl_client *cl)
{
	return cl->admin ? cl->ctl->out_total : cl->ctl->out_total - cl->ctl->out_admin;
}

/* Room under the total for one more piece of cl's stream. */
static bool stream_room(const struct ag_ctl_client *cl)
{
	return cl->ctl->stats.queued + AG_CTL_PIECE_MAX <= total_limit(cl);
}

static uint32_t client_events(const struct ag_ctl_client *cl)
{
	uint32_t ev = cl->eof || client_busy(cl) ? 0 : EPOLLIN;

	if (client_pending(cl) || (cl->stream && !cl->stalled))
		ev |= EPOLLOUT;
	return ev;
}

/* Streams that waited for room under the total try again. */
static void wake_stalled(struct ag_ctl *ctl)
{
	struct ag_ctl_client *cl;

	for (cl = ctl->clients; cl && ctl->n_stalled; cl = cl->next) {
		if (!cl->stalled || !stream_room(cl))
			continue;
		cl->stalled = false;
		ctl->n_stalled--;
		if (ag_loop__mod(ctl->loop, &cl->ev, client_events(cl)))
			cl->dead = true;
	}
}

static void queued_grow(struct ag_ctl_client *cl, size_t n)
{
	struct ag_ctl_stats *st = &cl->ctl->stats;

	st->queued += n;
	if (st->queued > st->queued_peak)
		st->queued_peak = st->queued;
	if (client_pending(cl) > st->queued_peak_client)
		st->queued_peak_client = client_pending(cl);
}

static void queued_shrink(struct ag_ctl *ctl, size_t n)
{
	ctl->stats.queued -= n;
	if (ctl->n_stalled && n)
		wake_stalled(ctl);
}

static void client_free(struct ag_ctl_client *cl)
{
	struct ag_ctl *ctl = cl->ctl;

	ag_loop__del(ctl->loop, &cl->ev);
	close(cl->ev.fd);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		ctl->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	ctl->stats.clients--;
	ctl->stats.admins -= cl->admin;
	stream_free(cl);
	pr_debug("control: client pid %d uid %u closed\n", (int)cl->pid, (unsigned int)cl->uid);
	queued_shrink(ctl, client_pending(cl));
	free(cl->out);
	free(cl);
}

static int out_reserve(struct ag_ctl_client *cl, size_t n)
{
	size_t cap;
	char *p;

	if (cl->out_cap - cl->out_len >= n)
		return 0;
	cap = cl->out_cap ? cl->out_cap : 4096;
	while (cap - cl->out_len < n) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	p = realloc(cl->out, cap);
	if (!p)
		return -ENOMEM;
	cl->out = p;
	cl->out_cap = cap;
	return 0;
}

static int out_append(struct ag_ctl_client *cl, const char *p, size_t n)
{
	if (out_reserve(cl, n))
		return -ENOMEM;
	memcpy(cl->out + cl->out_len, p, n);
	cl->out_len += n;
	queued_grow(cl, n);
	return 0;
}

/* Takes back what was queued after out_len `len` (a reply refused half-way). */
static void out_truncate(struct ag_ctl_client *cl, size_t len)
{
	size_t n = cl->out_len - len;

	cl->out_len = len;
	queued_shrink(cl->ctl, n);
}

/* Moves what is left to send to the front, before a new reply starts. */
static void out_compact(struct ag_ctl_client *cl)
{
	if (!cl->out_off)
		return;
	memmove(cl->out, cl->out + cl->out_off, client_pending(cl));
	cl->out_len -= cl->out_off;
	cl->out_off = 0;
}

/* Sends what the socket takes now. Returns 0 (maybe with output left) or -errno. */
static int client_flush(struct ag_ctl_client *cl)
{
	while (cl->out_off < cl->out_len) {
		ssize_t n = send(cl->ev.fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		cl->out_off += n;
		cl->last_active_ns = ag_now_ns();
		queued_shrink(cl->ctl, n);
	}
	cl->out_off = cl->out_len = 0;
	if (cl->out_cap > OUT_KEEP) {
		free(cl->out);
		cl->out = NULL;
		cl->out_cap = 0;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Clients: replies                                                         */

static int dump_cb(const char *buf, size_t size, void *data)
{
	struct ag_ctl_client *cl = data;

	if (client_pending(cl) + size > cl->ctl->out_max) {
		cl->reply_too_big = true;
		return -1;
	}
	return out_append(cl, buf, size) ? -1 : 0;
}

static json_t *error_reply(int code, const char *msg)
{
	json_t *s = json_string(msg);

	/* Messages quote requests, which are checked UTF-8; this is a last resort. */
	if (!s)
		s = json_string("(error message is not valid UTF-8)");
	return json_pack("{s:b, s:o, s:s}", "ok", 0, "error", s, "code", ag_ctl__code_name(code));
}

/*
 * Queues `reply` (stolen) without its "\n". 0, or the status to answer
 * instead, with why[] saying why, when it was larger than out_max, or would
 * take all clients' queued bytes past the bound (error lines, a few hundred
 * bytes, always go); nothing of it stays queued then.
 */
static int reply_queue(struct ag_ctl_client *cl, json_t *reply, bool is_error, char *why,
		       size_t len)
{
	struct ag_ctl *ctl = cl->ctl;
	int rc;

	out_compact(cl);
	cl->reply_mark = cl->out_len;
	cl->reply_too_big = false;
	rc = reply ? json_dump_callback(reply, dump_cb, cl, JSON_COMPACT) : -1;
	json_decref(reply);
	if (!rc && (is_error || ctl->stats.queued <= total_limit(cl)))
		return 0;
	out_truncate(cl, cl->reply_mark);
	if (!rc) {
		ctl->stats.replies_no_room++;
		snprintf(why, len,
			 "replies waiting for control clients to read them fill the daemon's "
			 "bound (%zu bytes); try again later",
			 total_limit(cl));
		return AG_CTL_EBUSY;
	}
	if (cl->reply_too_big) {
		ctl->stats.replies_too_big++;
		snprintf(why, len, "reply larger than %zu bytes, the most queued for one client",
			 ctl->out_max);
	} else {
		snprintf(why, len, "out of memory building the reply");
	}
	return AG_CTL_EINTERNAL;
}

/* "\n" after a queued reply, then what the socket takes; a failure drops the client. */
static void reply_finish(struct ag_ctl_client *cl, int err)
{
	if (!err)
		err = out_append(cl, "\n", 1);
	if (!err)
		err = client_flush(cl);
	if (err) {
		pr_debug("control: client pid %d: %s; dropping it\n", (int)cl->pid, strerror(-err));
		cl->dead = true;
	}
}

static void client_error(struct ag_ctl_client *cl, int code, const char *msg)
{
	char why[8];

	cl->ctl->stats.errors++;
	if (code == AG_CTL_EDENIED)
		cl->ctl->stats.denied++;
	reply_finish(cl,
		     reply_queue(cl, error_reply(code, msg), true, why, sizeof(why)) ? -ENOMEM : 0);
}

/* Queues one reply line (stealing `reply`), or the error that refuses it, and sends. */
static void client_reply(struct ag_ctl_client *cl, json_t *reply)
{
	char why[192];
	int code = reply_queue(cl, reply, false, why, sizeof(why));

	if (code) {
		pr_info("control: client pid %d uid %u: %s\n", (int)cl->pid, (unsigned int)cl->uid,
			why);
		client_error(cl, code, why);
		return;
	}
	reply_finish(cl, 0);
}

static int errno_code(int err)
{
	switch (err) {
	case -EINVAL:
	case -ERANGE:
	case -ENOENT:
	case -EEXIST:
		return AG_CTL_EINVALID;
	case -EPERM:
	case -EACCES:
		return AG_CTL_EDENIED;
	case -EBUSY:
	case -EAGAIN:
		return AG_CTL_EBUSY;
	default:
		return AG_CTL_EINTERNAL;
	}
}

/* A handler's or a stream's failure as the status the client sees. */
static int status_of(int rc)
{
	int code = rc < 0 ? errno_code(rc) : rc;

	return ag_ctl__code_name(code) ? code : AG_CTL_EINTERNAL;
}

/* ------------------------------------------------------------------------ */
/* Clients: streamed replies                                                */

int ag_ctl_stream__text(struct ag_ctl_stream *s, const char *text, size_t len)
{
	if (s->piece + len > AG_CTL_PIECE_MAX)
		return -ENOBUFS;
	if (out_append(s->cl, text, len))
		return -ENOMEM;
	s->piece += len;
	return 0;
}

static int piece_cb(const char *buf, size_t size, void *data)
{
	return ag_ctl_stream__text(data, buf, size) ? -1 : 0;
}

int ag_ctl_stream__json(struct ag_ctl_stream *s, json_t *v)
{
	size_t mark = s->cl->out_len, piece = s->piece;
	int rc;

	if (!v)
		return -ENOMEM;
	rc = json_dump_callback(v, piece_cb, s, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	if (!rc)
		return 0;
	/* Nothing of a value half written: the stream closes its JSON on what came before. */
	out_truncate(s->cl, mark);
	rc = s->piece + 1 > AG_CTL_PIECE_MAX ? -ENOBUFS : -ENOMEM;
	s->piece = piece;
	return rc;
}

static void stream_free(struct ag_ctl_client *cl)
{
	if (!cl->stream)
		return;
	cl->stream->free(cl->stream);
	cl->stream = NULL;
	cl->ctl->stats.streams--;
	if (cl->stalled) {
		cl->stalled = false;
		cl->ctl->n_stalled--;
	}
}

static void stream_start(struct ag_ctl_client *cl, struct ag_ctl_stream *s)
{
	s->cl = cl;
	s->piece = 0;
	out_compact(cl);
	cl->stream = s;
	cl->ctl->stats.streams++;
	if (out_append(cl, "{\"data\":", 8)) {
		stream_free(cl);
		cl->dead = true;
	}
}

/* The reply's tail after the data: "ok", and the error if the stream failed. */
static void stream_end(struct ag_ctl_client *cl, int rc, char *err)
{
	char *tail;
	json_t *e;
	int code;

	stream_free(cl);
	if (!rc) {
		free(err);
		reply_finish(cl, out_append(cl, ",\"ok\":true}", 11));
		return;
	}
	code = status_of(rc);
	cl->ctl->stats.errors++;
	cl->ctl->stats.streams_failed++;
	pr_info("control: client pid %d: streamed reply failed: %s\n", (int)cl->pid,
		err ? err : ag_ctl__code_name(code));
	/* {"ok":false,"error":...,"code":...} with its "{" made the "," after "data" */
	e = error_reply(code, err ? err : "reading the table failed");
	tail = e ? json_dumps(e, JSON_COMPACT) : NULL;
	json_decref(e);
	if (tail)
		tail[0] = ',';
	reply_finish(cl, tail ? out_append(cl, tail, strlen(tail)) : -ENOMEM);
	free(tail);
	free(err);
}

/* One piece of cl's stream when it has room, or its end. */
static void stream_step(struct ag_ctl_client *cl)
{
	struct ag_ctl_stream *s = cl->stream;
	char *err = NULL;
	int rc;

	if (client_pending(cl) >= AG_CTL_STREAM_LOW)
		return;
	if (!stream_room(cl)) {
		/* Woken by wake_stalled once others' replies drain. */
		if (!cl->stalled) {
			cl->stalled = true;
			cl->ctl->n_stalled++;
			cl->ctl->stats.stream_waits++;
		}
		return;
	}
	if (cl->stalled) {
		cl->stalled = false;
		cl->ctl->n_stalled--;
	}
	s->piece = 0;
	rc = s->next(s, &err);
	cl->last_active_ns = ag_now_ns();
	if (rc == 1) {
		free(err);
		return;
	}
	stream_end(cl, rc, err);
}

/* ------------------------------------------------------------------------ */
/* Clients: requests                                                        */

/* "denied": cmd changes state and cl is not admin. */
static void deny(struct ag_ctl_client *cl, const char *name)
{
	struct ag_ctl *ctl = cl->ctl;
	char *err = NULL;

	if (ctl->admin_gid == (gid_t)-1)
		ag_ctl__fail(&err, AG_CTL_EDENIED, "\"%s\" changes state: only root may run it",
			     name);
	else
		ag_ctl__fail(&err, AG_CTL_EDENIED,
			     "\"%s\" changes state: only root or members of group %s may run it",
			     name, ctl->admin_group);
	pr_info("control: denied \"%s\" to uid %u pid %d\n", name, (unsigned int)cl->uid,
		(int)cl->pid);
	client_error(cl, AG_CTL_EDENIED, err ? err : "denied");
	free(err);
}

static void run_command(struct ag_ctl_client *cl, const struct ag_ctl_cmd *cmd,
			struct ag_ctl_words *w)
{
	struct ag_ctl *ctl = cl->ctl;
	int nw = cmd_nwords(cmd), rc, code;
	struct ag_ctl_req req = {
	    .argc = w->argc - nw,
	    .argv = w->argv + nw,
	    .cmd = cmd,
	    .ctl = ctl,
	    .pid = cl->pid,
	    .uid = cl->uid,
	    .gid = cl->gid,
	    .admin = cl->admin,
	    .ctx = ctl->ctx,
	};
	json_t *data = NULL;
	char name[128], *err = NULL;

	cmd_name(cmd, name, sizeof(name));
	if (req.argc < cmd->min_args || (cmd->max_args >= 0 && req.argc > cmd->max_args)) {
		ag_ctl__fail(&err, AG_CTL_EUSAGE, "usage: %s%s%s", name,
			     cmd->args && cmd->args[0] ? " " : "", cmd->args ? cmd->args : "");
		client_error(cl, AG_CTL_EUSAGE, err ? err : "usage");
		free(err);
		return;
	}
	if (cmd->access == AG_CTL_ADMIN && !cl->admin) {
		deny(cl, name);
		return;
	}
	rc = cmd->fn(&req, &data, &err);
	if (cmd->access == AG_CTL_ADMIN) {
		/* The audit trail of changes: who, what exactly, and whether it took. */
		char *words = ag_ctl__join(w->argc, w->argv);

		pr_info("control: uid %u pid %d: %s%s%s\n", (unsigned int)cl->uid, (int)cl->pid,
			words ? words : name, rc ? ": failed: " : "", rc ? (err ? err : "") : "");
		free(words);
	}
	if (rc == AG_CTL_OK && req.stream) {
		json_decref(data);
		free(err);
		stream_start(cl, req.stream);
		return;
	}
	if (req.stream)
		req.stream->free(req.stream);
	if (rc == AG_CTL_OK) {
		free(err);
		client_reply(cl,
			     json_pack("{s:b, s:o}", "ok", 1, "data", data ? data : json_null()));
		return;
	}
	json_decref(data);
	code = status_of(rc);
	if (!err) {
		if (rc < 0)
			ag_ctl__fail(&err, code, "%s: %s", name, strerror(-rc));
		else
			ag_ctl__fail(&err, code, "%s: failed (%s)", name, ag_ctl__code_name(code));
	}
	client_error(cl, code, err ? err : "failed");
	free(err);
}

static void handle_line(struct ag_ctl_client *cl, const char *line, size_t len)
{
	struct ag_ctl *ctl = cl->ctl;
	const struct ag_ctl_cmd *cmd;
	const char *problem = NULL;
	struct ag_ctl_words *w;
	char *err = NULL;

	ctl->stats.requests++;
	/* Tolerate "\r\n" from interactive tools (socat, nc -C). */
	if (len && line[len - 1] == '\r')
		len--;
	w = malloc(sizeof(*w));
	if (!w) {
		client_error(cl, AG_CTL_EINTERNAL, "out of memory");
		return;
	}
	if (ag_ctl__split(w, line, len, &problem)) {
		client_error(cl, AG_CTL_EINVALID, problem);
		goto out;
	}
	if (!w->argc) {
		client_error(cl, AG_CTL_EUSAGE, "empty request; \"help\" lists the commands");
		goto out;
	}
	cmd = cmd_match(ctl, w->argc, w->argv);
	if (!cmd) {
		unknown_command(ctl, w->argc, w->argv, &err);
		client_error(cl, AG_CTL_EUNKNOWN, err ? err : "unknown command");
		free(err);
		goto out;
	}
	run_command(cl, cmd, w);
out:
	free(w);
}

/*
 * Answers the next request buffered in cl->in: a complete line, or after EOF
 * a last one without "\n". false when there is none.
 */
static bool answer_next(struct ag_ctl_client *cl)
{
	char *line = cl->in + cl->in_off, *nl;
	size_t avail = cl->in_len - cl->in_off;

	nl = memchr(line, '\n', avail);
	if (nl) {
		cl->in_off += nl + 1 - line;
		handle_line(cl, line, nl - line);
		return true;
	}
	if (!cl->eof || !avail)
		return false;
	/* Half-closed: answer a last line without "\n", then finish. */
	cl->in_off = cl->in_len;
	handle_line(cl, line, avail);
	return true;
}

/* A full buffer without "\n": the stream cannot be resynchronised. */
static void long_line(struct ag_ctl_client *cl)
{
	cl->ctl->stats.closed_long_line++;
	cl->eof = true;
	cl->in_off = cl->in_len = 0;
	shutdown(cl->ev.fd, SHUT_RD);
	client_error(cl, AG_CTL_EINVALID, "line too long (max 4096 bytes)");
}

/* More request bytes into cl->in: true when some came (or EOF), false for none now. */
static bool client_recv(struct ag_ctl_client *cl)
{
	ssize_t n;

	memmove(cl->in, cl->in + cl->in_off, cl->in_len - cl->in_off);
	cl->in_len -= cl->in_off;
	cl->in_off = 0;
	if (cl->in_len == sizeof(cl->in)) {
		long_line(cl);
		return false;
	}
	do
		n = recv(cl->ev.fd, cl->in + cl->in_len, sizeof(cl->in) - cl->in_len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			pr_debug("control: client pid %d: %s\n", (int)cl->pid, strerror(errno));
			cl->dead = true;
		}
		return false;
	}
	if (n == 0) {
		cl->eof = true;
		return true;
	}
	cl->last_active_ns = ag_now_ns();
	cl->in_len += n;
	return true;
}

/* What the client's readiness allows: send, a piece of its stream, then its next requests. */
static void client_serve(struct ag_ctl_client *cl)
{
	int reads = READ_BUDGET;

	if (client_flush(cl)) {
		cl->dead = true;
		return;
	}
	if (cl->stream) {
		stream_step(cl);
		if (!cl->dead && client_flush(cl))
			cl->dead = true;
	}
	while (!cl->dead && !client_busy(cl)) {
		if (answer_next(cl))
			continue;
		if (cl->eof || reads-- <= 0 || !client_recv(cl))
			break;
	}
}

static void client_event(struct ag_ev *ev, uint32_t events)
{
	struct ag_ctl_client *cl = ag_container_of(ev, struct ag_ctl_client, ev);

	if (cl->expired) {
		client_free(cl);
		return;
	}
	/* Gone while its reply is under way: nobody to send it to (a waiting stream spins else). */
	if ((events & (EPOLLHUP | EPOLLERR)) && client_busy(cl))
		cl->dead = true;
	if (!cl->dead)
		client_serve(cl);
	/* Done: told to go, or nothing more to read and everything sent. */
	if (cl->dead || (cl->eof && !client_busy(cl)) ||
	    ag_loop__mod(cl->ctl->loop, &cl->ev, client_events(cl)))
		client_free(cl);
}

/* ------------------------------------------------------------------------ */
/* Clients: who gets a slot                                                 */

static void refuse(struct ag_ctl *ctl, int fd, const char *why)
{
	json_t *r = error_reply(AG_CTL_EBUSY, why);
	char *line = r ? json_dumps(r, JSON_COMPACT) : NULL;

	json_decref(r);
	/* Best effort: a fresh socket's buffer takes this whole. */
	if (line && (send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ||
		     send(fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0))
		pr_debug("control: busy reply: %s\n", strerror(errno));
	free(line);
	close(fd);
}

static bool peer_is_admin(const struct ag_ctl *ctl, int fd, const struct ucred *cr)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool admin = false;
	unsigned int i;

	if (cr->uid == 0)
		return true;
	if (ctl->admin_gid == (gid_t)-1)
		return false;
	if (cr->gid == ctl->admin_gid)
		return true;
	/* Supplementary groups as the peer had them at connect(): no NSS lookup, no race. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE) {
			pr_warn("control: SO_PEERGROUPS: %s; uid %u gets read-only access\n",
				strerror(errno), (unsigned int)cr->uid);
			return false;
		}
		groups = malloc(len);
		if (!groups || getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
			free(groups);
			return false;
		}
	}
	for (i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == ctl->admin_gid)
			admin = true;
	if (groups != small)
		free(groups);
	return admin;
}

static unsigned int uid_clients(const struct ag_ctl *ctl, uid_t uid)
{
	const struct ag_ctl_client *cl;
	unsigned int n = 0;

	for (cl = ctl->clients; cl; cl = cl->next)
		n += cl->uid == uid;
	return n;
}

/*
 * Whether a peer gets a slot: false (counted, why[] set) when every slot is
 * taken, when a read-only peer would take one kept for admins, or when its
 * uid (other than 0) has max_per_uid connections already.
 */
static bool admit(struct ag_ctl *ctl, const struct ucred *cr, bool admin, char *why, size_t len)
{
	unsigned int readonly = ctl->stats.clients - ctl->stats.admins;

	if (ctl->stats.clients >= ctl->max_clients) {
		ctl->stats.refused_busy++;
		snprintf(why, len, "too many control clients (%u); try again later",
			 ctl->max_clients);
		return false;
	}
	if (!admin && readonly >= ctl->max_clients - ctl->admin_slots) {
		ctl->stats.refused_admin_slots++;
		snprintf(why, len,
			 "all %u control slots for read-only clients are taken (%u more are kept "
			 "for admins); try again later",
			 ctl->max_clients - ctl->admin_slots, ctl->admin_slots);
		return false;
	}
	if (cr->uid != 0 && uid_clients(ctl, cr->uid) >= ctl->max_per_uid) {
		ctl->stats.refused_uid++;
		snprintf(why, len,
			 "uid %u has %u control connections already, the most one user may have; "
			 "close one and try again",
			 (unsigned int)cr->uid, ctl->max_per_uid);
		return false;
	}
	return true;
}

static void client_new(struct ag_ctl *ctl, int fd)
{
	struct ag_ctl_client *cl;
	socklen_t len = sizeof(struct ucred);
	struct ucred cr;
	char why[192];
	json_t *hello;
	bool admin;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		pr_warn("control: SO_PEERCRED: %s\n", strerror(errno));
		close(fd);
		return;
	}
	admin = peer_is_admin(ctl, fd, &cr);
	if (!admit(ctl, &cr, admin, why, sizeof(why))) {
		pr_info("control: refused uid %u pid %d: %s\n", (unsigned int)cr.uid, (int)cr.pid,
			why);
		refuse(ctl, fd, why);
		return;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return;
	}
	cl->ctl = ctl;
	cl->ev.fd = fd;
	cl->ev.cb = client_event;
	cl->ev.data = cl;
	cl->pid = cr.pid;
	cl->uid = cr.uid;
	cl->gid = cr.gid;
	cl->admin = admin;
	cl->last_active_ns = ag_now_ns();
	/* Greeted before it joins the list and the loop: a failure frees it right here. */
	hello = json_pack("{s:s, s:i}", "anygate", ctl->version, "protocol", AG_CTL_PROTOCOL);
	client_reply(cl, hello);
	if (cl->dead || ag_loop__add(ctl->loop, &cl->ev, client_events(cl))) {
		queued_shrink(ctl, client_pending(cl));
		close(fd);
		free(cl->out);
		free(cl);
		return;
	}
	cl->next = ctl->clients;
	if (ctl->clients)
		ctl->clients->prev = cl;
	ctl->clients = cl;
	ctl->stats.clients++;
	ctl->stats.admins += admin;
	ctl->stats.accepted++;
	pr_debug("control: client pid %d uid %u (%s)\n", (int)cl->pid, (unsigned int)cl->uid,
		 cl->admin ? "admin" : "read-only");
}

static void listen_event(struct ag_ev *ev, uint32_t events)
{
	struct ag_ctl *ctl = ev->data;
	int i;

	for (i = 0; i < 64; i++) {
		int fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* Out of fds or memory: stop polling the socket until the next sweep. */
			pr_warn("control: accept: %s; pausing new connections\n", strerror(errno));
			if (!ag_loop__mod(ctl->loop, &ctl->lev, 0))
				ctl->accept_paused = true;
			return;
		}
		client_new(ctl, fd);
	}
}

static void sweep(struct ag_timer *t)
{
	struct ag_ctl *ctl = t->data;
	struct ag_ctl_client *cl;
	uint64_t now = ag_now_ns();

	if (ctl->accept_paused && !ag_loop__mod(ctl->loop, &ctl->lev, EPOLLIN))
		ctl->accept_paused = false;
	for (cl = ctl->clients; cl; cl = cl->next) {
		if (cl->expired || now - cl->last_active_ns < ctl->idle_ns)
			continue;
		/*
		 * Not freed here: its event may be pending in this very epoll batch.
		 * A shut-down socket reads EOF, and re-arming makes epoll report it.
		 */
		pr_debug("control: client pid %d idle: closing\n", (int)cl->pid);
		cl->expired = true;
		ctl->stats.closed_idle++;
		shutdown(cl->ev.fd, SHUT_RDWR);
		ag_loop__mod(ctl->loop, &cl->ev, EPOLLIN);
	}
}

/* ------------------------------------------------------------------------ */
/* The socket                                                               */

/*
 * Makes `path` free for bind: a socket nobody listens on (a dead daemon's) is
 * removed; a live one, or any other file, is left alone and refused.
 */
static int clear_stale(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, err;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		err = -errno;
		pr_err("control socket %s: %s\n", path, strerror(errno));
		return err;
	}
	if (!S_ISSOCK(st.st_mode)) {
		pr_err("control socket %s: exists and is not a socket; not replacing it\n", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (!connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) || errno == EAGAIN ||
	    errno == EINPROGRESS) {
		close(fd);
		pr_err("control socket %s: another process (anygated?) is listening there; "
		       "refusing to start\n",
		       path);
		return -EADDRINUSE;
	}
	err = errno;
	close(fd);
	if (err != ECONNREFUSED) {
		pr_err("control socket %s: cannot tell whether it is in use: %s\n", path,
		       strerror(err));
		return -err;
	}
	pr_info("control socket %s: removing a stale socket (nobody listening)\n", path);
	if (unlink(path) && errno != ENOENT) {
		err = -errno;
		pr_err("control socket %s: unlink: %s\n", path, strerror(errno));
		return err;
	}
	return 0;
}

/* mkdir -p of the socket's directory (e.g. /run/anygate/lab when no service manager made it). */
static int make_parents(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;
	int err;

	snprintf(dir, sizeof(dir), "%s", path);
	for (p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		/* chmod: the group must reach the socket whatever the umask. */
		if (!mkdir(dir, 0755))
			err = chmod(dir, 0755) ? -errno : 0;
		else
			err = errno == EEXIST ? 0 : -errno;
		if (err) {
			pr_err("control socket %s: creating %s: %s\n", path, dir, strerror(-err));
			return err;
		}
		*p = '/';
	}
	return 0;
}

static int open_socket(struct ag_ctl *ctl, const struct ag_ctl_opts *opts)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, err;

	if (!opts->path || !opts->path[0] || strlen(opts->path) >= sizeof(sun.sun_path)) {
		pr_err("control socket \"%s\": path must be 1-%zu bytes\n",
		       opts->path ? opts->path : "", sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, opts->path);
	err = clear_stale(opts->path, &sun);
	if (!err)
		err = make_parents(opts->path);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		pr_err("control socket %s: bind: %s\n", opts->path, strerror(errno));
		goto out_close;
	}
	/*
	 * Group and mode before listen(): until then a connect() is refused, so
	 * the umask's mode is never usable by anyone.
	 */
	if ((opts->sock_gid != (gid_t)-1 && chown(opts->path, (uid_t)-1, opts->sock_gid)) ||
	    chmod(opts->path, 0660) || stat(opts->path, &st)) {
		err = -errno;
		pr_err("control socket %s: setting group/mode: %s\n", opts->path, strerror(errno));
		goto out_unlink;
	}
	if (listen(fd, 128)) {
		err = -errno;
		pr_err("control socket %s: listen: %s\n", opts->path, strerror(errno));
		goto out_unlink;
	}
	ctl->sock_dev = st.st_dev;
	ctl->sock_ino = st.st_ino;
	ctl->lev.fd = fd;
	return 0;

out_unlink:
	unlink(opts->path);
out_close:
	close(fd);
	return err;
}

/* Removes the socket file if it is still the one we created. */
static void unlink_ours(const struct ag_ctl *ctl)
{
	struct stat st;

	if (!lstat(ctl->path, &st) && st.st_dev == ctl->sock_dev && st.st_ino == ctl->sock_ino)
		unlink(ctl->path);
}

struct ag_ctl *ag_ctl__new(struct ag_loop *loop, const struct ag_ctl_opts *opts)
{
	struct ag_ctl *ctl;
	int err;

	if (!opts->version || (opts->n_cmds && !opts->cmds)) {
		errno = EINVAL;
		return NULL;
	}
	err = check_table(opts->cmds, opts->n_cmds);
	if (err) {
		errno = -err;
		return NULL;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return NULL;
	ctl->loop = loop;
	ctl->lev.fd = -1;
	ctl->sweep.ev.fd = -1;
	ctl->admin_gid = opts->admin_gid;
	ctl->cmds = opts->cmds;
	ctl->n_cmds = opts->n_cmds;
	ctl->ctx = opts->ctx;
	ctl->max_clients = opts->max_clients ? opts->max_clients : AG_CTL_MAX_CLIENTS;
	ctl->admin_slots = opts->admin_slots ? opts->admin_slots : AG_CTL_ADMIN_SLOTS;
	if (ctl->admin_slots >= ctl->max_clients)
		ctl->admin_slots = ctl->max_clients - 1;
	ctl->max_per_uid = opts->max_per_uid ? opts->max_per_uid : AG_CTL_MAX_PER_UID;
	ctl->idle_ns = (uint64_t)(opts->idle_ms ? opts->idle_ms : AG_CTL_IDLE_MS) * 1000000ull;
	ctl->out_max = opts->out_max ? opts->out_max : AG_CTL_OUT_MAX;
	ctl->out_total = opts->out_total ? opts->out_total : AG_CTL_OUT_TOTAL;
	ctl->out_admin = opts->out_admin ? opts->out_admin : AG_CTL_OUT_ADMIN;
	if (ctl->out_admin >= ctl->out_total)
		ctl->out_admin = ctl->out_total / 4;
	ctl->path = strdup(opts->path ? opts->path : "");
	ctl->version = strdup(opts->version);
	if (!ctl->path || !ctl->version) {
		err = -ENOMEM;
		goto out_free;
	}
	if (ctl->admin_gid != (gid_t)-1) {
		/* Once, at start-up: a group lookup may block (NSS), a request may not. */
		struct group gr, *res = NULL;
		char buf[4096];

		if (!getgrgid_r(ctl->admin_gid, &gr, buf, sizeof(buf), &res) && res)
			snprintf(ctl->admin_group, sizeof(ctl->admin_group), "%s", gr.gr_name);
		else
			snprintf(ctl->admin_group, sizeof(ctl->admin_group), "%u",
				 (unsigned int)ctl->admin_gid);
	}

	err = open_socket(ctl, opts);
	if (err)
		goto out_free;
	ctl->lev.cb = listen_event;
	ctl->lev.data = ctl;
	err = ag_loop__add(loop, &ctl->lev, EPOLLIN);
	if (err)
		goto out_socket;
	err = ag_timer__init(loop, &ctl->sweep, sweep, ctl);
	if (!err) {
		/* Sweep often enough that a client is closed within 1.5x idle (or +1 s). */
		uint64_t period =
		    ctl->idle_ns / 2 < 1000000000ull ? ctl->idle_ns / 2 : 1000000000ull;

		err = ag_timer__arm(&ctl->sweep, period, period);
	}
	if (err)
		goto out_del;
	pr_info("control socket %s: ready (mode 0660%s%s)\n", ctl->path,
		ctl->admin_gid != (gid_t)-1 ? ", admin group " : ", admin: root only",
		ctl->admin_gid != (gid_t)-1 ? ctl->admin_group : "");
	return ctl;

out_del:
	ag_timer__fini(loop, &ctl->sweep);
	ag_loop__del(loop, &ctl->lev);
out_socket:
	close(ctl->lev.fd);
	unlink_ours(ctl);
out_free:
	free(ctl->path);
	free(ctl->version);
	free(ctl);
	errno = -err;
	return NULL;
}

void ag_ctl__free(struct ag_ctl *ctl)
{
	struct ag_ctl_client *cl, *next;

	if (!ctl)
		return;
	for (cl = ctl->clients; cl; cl = next) {
		next = cl->next;
		client_free(cl);
	}
	ag_timer__fini(ctl->loop, &ctl->sweep);
	ag_loop__del(ctl->loop, &ctl->lev);
	close(ctl->lev.fd);
	unlink_ours(ctl);
	free(ctl->path);
	free(ctl->version);
	free(ctl);
}

void ag_ctl__stats(const struct ag_ctl *ctl, struct ag_ctl_stats *st)
{
	*st = ctl->stats;
}
