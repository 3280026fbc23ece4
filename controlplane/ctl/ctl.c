/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket server. One listening unix socket and up to max_clients
 * connections, all non-blocking in the daemon's loop. A client's struct is
 * freed only from its own event callback (or by ag_ctl__free after the loop),
 * so an event already fetched by epoll_wait never points at freed memory: the
 * idle sweep shuts an idle client's socket down and lets its callback free it.
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
	size_t in_len;
	char *out;
	size_t out_off, out_len, out_cap;
	size_t reply_mark; /* out_len where the reply being dumped started */
	bool reply_too_big;
	uint64_t last_active_ns;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool admin;
	bool rd_closed; /* no more requests: EOF, or a line too long */
	bool dead;	/* close now, without flushing */
	bool expired;	/* idle: shut down by the sweep, freed by its callback */
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
	unsigned int max_clients;
	uint64_t idle_ns;
	size_t out_max;
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
/* Clients                                                                  */

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
	pr_debug("control: client pid %d uid %u closed\n", (int)cl->pid, (unsigned int)cl->uid);
	free(cl->out);
	free(cl);
}

static size_t client_pending(const struct ag_ctl_client *cl)
{
	return cl->out_len - cl->out_off;
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
	return 0;
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
	}
	cl->out_off = cl->out_len = 0;
	if (cl->out_cap > OUT_KEEP) {
		free(cl->out);
		cl->out = NULL;
		cl->out_cap = 0;
	}
	return 0;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
	struct ag_ctl_client *cl = data;

	if (cl->out_len - cl->reply_mark + size > AG_CTL_REPLY_MAX) {
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
 * Queues one reply line (stealing `reply`) and sends what the socket takes. A
 * client that leaves more than out_max unread behind an earlier reply is
 * dropped: it does not read, and the daemon will not hold its output forever.
 */
static void client_reply(struct ag_ctl_client *cl, json_t *reply)
{
	size_t pending_before;
	int err = 0;

	if (cl->out_off) {
		memmove(cl->out, cl->out + cl->out_off, client_pending(cl));
		cl->out_len -= cl->out_off;
		cl->out_off = 0;
	}
	pending_before = cl->out_len;
	cl->reply_mark = cl->out_len;
	cl->reply_too_big = false;
	if (!reply || json_dump_callback(reply, dump_cb, cl, JSON_COMPACT)) {
		cl->out_len = cl->reply_mark;
		json_decref(reply);
		reply = error_reply(AG_CTL_EINTERNAL, cl->reply_too_big
							  ? "reply larger than 64 MiB"
							  : "out of memory building the reply");
		if (!reply || json_dump_callback(reply, dump_cb, cl, JSON_COMPACT))
			err = -ENOMEM;
	}
	json_decref(reply);
	if (!err)
		err = out_append(cl, "\n", 1);
	if (err) {
		pr_warn("control: client pid %d: out of memory, dropping it\n", (int)cl->pid);
		cl->dead = true;
		return;
	}
	err = client_flush(cl);
	if (err) {
		pr_debug("control: client pid %d: %s\n", (int)cl->pid, strerror(-err));
		cl->dead = true;
		return;
	}
	if (pending_before && client_pending(cl) > cl->ctl->out_max) {
		pr_info("control: client pid %d uid %u leaves %zu bytes unread: dropping it\n",
			(int)cl->pid, (unsigned int)cl->uid, client_pending(cl));
		cl->ctl->stats.dropped_slow++;
		cl->dead = true;
	}
}

static void client_error(struct ag_ctl_client *cl, int code, const char *msg)
{
	cl->ctl->stats.errors++;
	if (code == AG_CTL_EDENIED)
		cl->ctl->stats.denied++;
	client_reply(cl, error_reply(code, msg));
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
	json_t *data = NULL, *reply;
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
		if (ctl->admin_gid == (gid_t)-1)
			ag_ctl__fail(&err, AG_CTL_EDENIED,
				     "\"%s\" changes state: only root may run it", name);
		else
			ag_ctl__fail(&err, AG_CTL_EDENIED,
				     "\"%s\" changes state: only root or members of group %s "
				     "may run it",
				     name, ctl->admin_group);
		pr_info("control: denied \"%s\" to uid %u pid %d\n", name, (unsigned int)cl->uid,
			(int)cl->pid);
		client_error(cl, AG_CTL_EDENIED, err ? err : "denied");
		free(err);
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
	if (rc == AG_CTL_OK) {
		reply = json_pack("{s:b, s:o}", "ok", 1, "data", data ? data : json_null());
		free(err);
		client_reply(cl, reply);
		return;
	}
	json_decref(data);
	code = rc < 0 ? errno_code(rc) : rc;
	if (!ag_ctl__code_name(code))
		code = AG_CTL_EINTERNAL;
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

static void client_read(struct ag_ctl_client *cl)
{
	int budget;

	for (budget = READ_BUDGET; budget > 0 && !cl->rd_closed && !cl->dead; budget--) {
		size_t start = 0;
		ssize_t n;
		char *nl;

		n = recv(cl->ev.fd, cl->in + cl->in_len, sizeof(cl->in) - cl->in_len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				pr_debug("control: client pid %d: %s\n", (int)cl->pid,
					 strerror(errno));
				cl->dead = true;
			}
			return;
		}
		if (n == 0) {
			/* Half-closed: answer a last line without "\n", then finish. */
			cl->rd_closed = true;
			if (cl->in_len)
				handle_line(cl, cl->in, cl->in_len);
			cl->in_len = 0;
			return;
		}
		cl->last_active_ns = ag_now_ns();
		cl->in_len += n;
		while (!cl->dead && (nl = memchr(cl->in + start, '\n', cl->in_len - start))) {
			handle_line(cl, cl->in + start, nl - (cl->in + start));
			start = nl + 1 - cl->in;
		}
		if (cl->dead)
			return;
		memmove(cl->in, cl->in + start, cl->in_len - start);
		cl->in_len -= start;
		if (cl->in_len == sizeof(cl->in)) {
			/* No "\n" in a full buffer: the stream cannot be resynchronised. */
			cl->ctl->stats.closed_long_line++;
			client_error(cl, AG_CTL_EINVALID, "line too long (max 4096 bytes)");
			cl->rd_closed = true;
			cl->in_len = 0;
			shutdown(cl->ev.fd, SHUT_RD);
		}
	}
}

static void client_event(struct ag_ev *ev, uint32_t events)
{
	struct ag_ctl_client *cl = ag_container_of(ev, struct ag_ctl_client, ev);
	uint32_t want;

	if (cl->expired) {
		client_free(cl);
		return;
	}
	if (!cl->rd_closed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
		client_read(cl);
	if (!cl->dead && client_flush(cl))
		cl->dead = true;
	/* Done: told to go, or nothing more to read and everything sent. */
	if (cl->dead || (cl->rd_closed && !client_pending(cl)) ||
	    (cl->rd_closed && (events & EPOLLERR))) {
		client_free(cl);
		return;
	}
	want = (cl->rd_closed ? 0 : EPOLLIN) | (client_pending(cl) ? EPOLLOUT : 0);
	if (ag_loop__mod(cl->ctl->loop, &cl->ev, want))
		client_free(cl);
}

static void refuse_busy(struct ag_ctl *ctl, int fd)
{
	char msg[160];
	int n;

	n = snprintf(msg, sizeof(msg),
		     "{\"ok\":false,\"error\":\"too many control clients (%u); try again "
		     "later\",\"code\":\"busy\"}\n",
		     ctl->max_clients);
	/* Best effort: a fresh socket's buffer takes this whole. */
	if (send(fd, msg, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		pr_debug("control: busy reply: %s\n", strerror(errno));
	close(fd);
	ctl->stats.refused_busy++;
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

static void client_new(struct ag_ctl *ctl, int fd)
{
	struct ag_ctl_client *cl;
	socklen_t len = sizeof(struct ucred);
	struct ucred cr;
	json_t *hello;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		pr_warn("control: SO_PEERCRED: %s\n", strerror(errno));
		close(fd);
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
	cl->admin = peer_is_admin(ctl, fd, &cr);
	cl->last_active_ns = ag_now_ns();
	if (ag_loop__add(ctl->loop, &cl->ev, EPOLLIN)) {
		close(fd);
		free(cl);
		return;
	}
	cl->next = ctl->clients;
	if (ctl->clients)
		ctl->clients->prev = cl;
	ctl->clients = cl;
	ctl->stats.clients++;
	ctl->stats.accepted++;
	pr_debug("control: client pid %d uid %u (%s)\n", (int)cl->pid, (unsigned int)cl->uid,
		 cl->admin ? "admin" : "read-only");

	hello = json_pack("{s:s, s:i}", "anygate", ctl->version, "protocol", AG_CTL_PROTOCOL);
	client_reply(cl, hello);
	if (cl->dead)
		client_free(cl);
	else if (client_pending(cl))
		ag_loop__mod(ctl->loop, &cl->ev, EPOLLIN | EPOLLOUT);
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
		if (ctl->stats.clients >= ctl->max_clients)
			refuse_busy(ctl, fd);
		else
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
	ctl->idle_ns = (uint64_t)(opts->idle_ms ? opts->idle_ms : AG_CTL_IDLE_MS) * 1000000ull;
	ctl->out_max = opts->out_max ? opts->out_max : AG_CTL_OUT_MAX;
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
