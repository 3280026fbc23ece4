// SPDX-License-Identifier: BSD-3-Clause
/*
 * Loading a config file: read it, let libconfig parse its syntax, refuse
 * literals libconfig would truncate (scan.c), then check and fill a fresh
 * struct ag_config by the key declarations (keys.c). A file with any problem
 * yields NULL and nothing partial, so a reload can refuse a bad file whole and
 * keep running on the old one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "parse.h"

/* A config larger than this is a mistake (a wrong file), not a fleet. */
#define CONFIG_FILE_MAX (64u << 20)

const char *ag_cfg__read_problem(int err)
{
	if (err == EINVAL)
		return "not a regular file";
	if (err == EFBIG)
		return "larger than 64 MiB: not a config file";
	return strerror(err);
}

const char *ag_config__file_kind(mode_t m)
{
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISSOCK(m))
		return "a socket";
	return S_ISDIR(m) ? "a directory" : "not a regular file";
}

char *ag_cfg__read_text(const char *path, size_t *len, int *err)
{
	struct stat st;
	char *buf = NULL;
	size_t got;
	FILE *f;
	int fd;

	/*
	 * O_NONBLOCK: a FIFO at path would block open() until a writer comes,
	 * and anygated reads configs on its event loop (reload, check).
	 */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		*err = errno;
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		*err = errno;
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		*err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		close(fd);
		return NULL;
	}
	f = fdopen(fd, "r");
	if (!f) {
		*err = errno;
		close(fd);
		return NULL;
	}
	if ((unsigned long long)st.st_size > CONFIG_FILE_MAX) {
		*err = EFBIG;
		goto close_file;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		*err = ENOMEM;
		goto close_file;
	}
	got = fread(buf, 1, st.st_size, f);
	if (ferror(f)) {
		*err = EIO;
		free(buf);
		buf = NULL;
		goto close_file;
	}
	buf[got] = '\0';
	*len = got;
close_file:
	fclose(f);
	return buf;
}

static void free_health(struct ag_cfg_health *hc)
{
	free(hc->path);
	free(hc->host);
	free(hc->send);
	free(hc->expect);
}

static void free_strv(char **v, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void free_accel(struct ag_cfg_accelerator *acc)
{
	unsigned int l, g;

	for (l = 0; l < acc->n_listeners; l++) {
		struct ag_cfg_listener *lis = &acc->listeners[l];

		for (g = 0; g < lis->n_groups; g++) {
			free_health(&lis->groups[g].health);
			free(lis->groups[g].overrides);
			free(lis->groups[g].endpoints);
		}
		free(lis->groups);
		free(lis->ranges);
		free_strv(lis->region_order, lis->n_region_order);
	}
	free(acc->listeners);
	free(acc->addrs);
}

void ag_config__free(struct ag_config *cfg)
{
	unsigned int a;

	if (!cfg)
		return;
	for (a = 0; a < cfg->n_accels; a++)
		free_accel(&cfg->accels[a]);
	free(cfg->accels);
	free(cfg->edge.ifaces);
	free(cfg->edge.nat_addrs);
	free(cfg->edge.bpffs_dir);
	free(cfg->edge.control_socket);
	free(cfg->edge.admin_group);
	free(cfg->edge.control_group);
	free(cfg->edge.state_file);
	free(cfg->edge.metrics_addr);
	free_strv(cfg->edge.dpdk.eal_args, cfg->edge.dpdk.n_eal_args);
	free_strv(cfg->edge.dpdk.ports, cfg->edge.dpdk.n_ports);
	free(cfg->edge.dpdk.shm_name);
	free(cfg->edge.dpdk.port_addrs);
	free(cfg->edge.dpdk.port_roles);
	free(cfg->edge.dpdk.routes);
	free(cfg->edge.dpdk.neighbours);
	free(cfg->path);
	free(cfg);
}

/*
 * libconfig's pass over text: syntax, then the literals it would truncate, in
 * the file and in every file it includes. Values are judged only after both
 * passed: a truncated one would mislead.
 */
static bool read_syntax(struct ag_cfg_ctx *ctx, config_t *c, const char *text, size_t len,
			char *dir)
{
	char *slash = strrchr(dir, '/');
	const char *inc = NULL;

	/* @include names are relative to the including file, not to our cwd */
	if (slash) {
		*slash = '\0';
		inc = dir[0] ? dir : "/";
		config_set_include_dir(c, inc);
	}
	if (!ag_cfg__check_includes(ctx, text, len, inc))
		return false;
	if (!config_read_string(c, text)) {
		const char *file = config_error_file(c), *what = config_error_text(c);
		/* libconfig's words do not say how to write a mixed port list */
		const char *hint =
		    strstr(what, "mismatched element type")
			? " (an array [ ] holds values of one type: use a list ( ) to mix them)"
			: "";

		ag_errors__add(ctx->errs, file ? file : ctx->path, config_error_line(c),
			       "syntax error", "%s%s", what, hint);
		ctx->n_errs++;
		return false;
	}
	ag_cfg__scan_text(ctx, ctx->path, text, text + len);
	ag_cfg__scan_includes(ctx, c, inc);
	return !ctx->n_errs;
}

/* The text of path, refused whole when unreadable or binary (NULL, errno set). */
static char *read_config(const char *path, size_t *len, struct ag_errors *errs)
{
	int err = 0;
	char *text = ag_cfg__read_text(path, len, &err);

	if (!text) {
		ag_errors__add(errs, path, 0, NULL, "cannot read: %s", ag_cfg__read_problem(err));
		errno = err;
		return NULL;
	}
	if (memchr(text, '\0', *len)) {
		ag_errors__add(errs, path, 0, NULL, "contains a NUL byte: not a config file");
		free(text);
		errno = EINVAL;
		return NULL;
	}
	return text;
}

struct ag_config *ag_config__load(const char *path, struct ag_errors *errs)
{
	struct ag_cfg_ctx *ctx = NULL;
	struct ag_config *cfg = NULL;
	struct ag_cfg_scope root;
	char *text, *dir = NULL;
	size_t len = 0;
	int err = 0;
	config_t c;

	text = read_config(path, &len, errs);
	if (!text)
		return NULL;
	ctx = calloc(1, sizeof(*ctx));
	cfg = calloc(1, sizeof(*cfg));
	dir = strdup(path);
	if (!ctx || !cfg || !dir || !(cfg->path = strdup(path))) {
		ag_errors__add(errs, path, 0, NULL, "out of memory");
		free(ctx);
		free(cfg);
		free(dir);
		free(text);
		errno = ENOMEM;
		return NULL;
	}
	*ctx = (struct ag_cfg_ctx){.path = path, .errs = errs, .edge = &cfg->edge};
	config_init(&c);
	if (read_syntax(ctx, &c, text, len, dir)) {
		ag_cfg__scope(&root, ctx, NULL, &ag_cfg_root, config_root_setting(&c), "", cfg);
		ag_cfg__parse_block(&root);
	}
	config_destroy(&c);
	free(text);
	free(dir);
	if (ctx->n_errs) {
		err = ctx->oom || ag_errors__oom(errs) ? ENOMEM : EINVAL;
		ag_config__free(cfg);
		cfg = NULL;
	}
	free(ctx);
	if (!cfg)
		errno = err;
	return cfg;
}

struct ag_config *ag_config__load_or_report(const char *path)
{
	struct ag_errors errs;
	struct ag_config *cfg;
	unsigned int i;

	ag_errors__init(&errs);
	cfg = ag_config__load(path, &errs);
	for (i = 0; i < errs.count; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	if (!cfg && !errs.count)
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
	ag_errors__free(&errs);
	return cfg;
}
