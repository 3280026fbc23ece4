/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the config loader (ag_config__load, controlplane/config).
 * The input is a config file, optionally followed by a NUL byte and the text
 * of a second file, inc.conf, beside it. Both are written to a private
 * directory (mkdtemp, removed after the input: libFuzzer ends without running
 * atexit handlers) and the first is loaded as anygated loads it. The loader must not crash or leak
 * (ASan's leak check runs after each input), must return a config exactly when it reports no
 * problem, and every problem must read "file:line: key: problem" (or "file: ..." for the whole
 * file), one line of printable text naming one of the two files.
 *
 * @include may name inc.conf and nothing else: anything else would read this
 * machine's files and make a run depend on them. Such inputs are skipped
 * (libconfig 1.5 has no hook to redirect its includes).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

#define INC_NAME "inc.conf"

static char dir[64], main_path[96], inc_path[96];

static void remove_dir(void)
{
	unlink(main_path);
	unlink(inc_path);
	rmdir(dir);
}

/*
 * libconfig 1.5's grammar frees no string token on a syntax error: "a = 3\"x\";"
 * loses the string's buffer (allocated by its scanner, in strbuf_append or
 * libconfig_yylex) on every such file. Not ours to fix (libconfig 1.7 declares
 * a %destructor). Only the scanner's allocations are left out of
 * LeakSanitizer's report: settings the parser allocates are not, so a missing
 * config_destroy() is still a leak.
 */
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

/* A fresh private directory for one input's files: nothing of another input is left. */
static void make_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/ag-fuzz-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	CHECK(mkdtemp(dir));
	snprintf(main_path, sizeof(main_path), "%s/main.conf", dir);
	snprintf(inc_path, sizeof(inc_path), "%s/%s", dir, INC_NAME);
}

/*
 * Every "@include" (libconfig's only directive; matched without regard to case,
 * to be safe) names "inc.conf" exactly: true when text may be loaded here.
 */
static bool includes_only_ours(const char *text)
{
	const char *p;

	for (p = strcasestr(text, "@include"); p; p = strcasestr(p + 1, "@include")) {
		const char *q = p + strlen("@include");

		while (*q == ' ' || *q == '\t')
			q++;
		if (strncmp(q, "\"" INC_NAME "\"", strlen(INC_NAME) + 2))
			return false;
	}
	return true;
}

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	CHECK(fd >= 0);
	CHECK(write(fd, text, len) == (ssize_t)len);
	CHECK(close(fd) == 0);
}

/* "FILE" then ":LINE" (a positive number) or nothing, then ": " and at least one character. */
static bool well_formed(const char *msg)
{
	const char *names[] = {main_path, inc_path, INC_NAME}, *p = NULL;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]) && !p; i++)
		if (!strncmp(msg, names[i], strlen(names[i])))
			p = msg + strlen(names[i]);
	if (!p)
		return false;
	if (p[0] == ':' && p[1] >= '1' && p[1] <= '9') {
		for (p += 2; isdigit((unsigned char)*p); p++)
			;
	}
	if (p[0] != ':' || p[1] != ' ' || !p[2])
		return false;
	for (; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static void load_and_check(void)
{
	struct ag_config *cfg;
	struct ag_errors errs;
	unsigned int i;

	ag_errors__init(&errs);
	errno = 0;
	cfg = ag_config__load(main_path, &errs);
	if (cfg) {
		CHECK(errs.count == 0);
		/* A config keeps every restart-only key of itself. */
		CHECK(ag_config__check_restart_only(cfg, cfg, &errs) == 0 && errs.count == 0);
		ag_config__free(cfg);
	} else {
		CHECK(errs.count > 0 && errno != 0);
		for (i = 0; i < errs.count; i++) {
			if (!well_formed(errs.msgs[i])) {
				fprintf(stderr, "fuzz_config: malformed problem: \"%s\"\n",
					errs.msgs[i]);
				abort();
			}
		}
	}
	ag_errors__free(&errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nul = memchr(data, '\0', size);
	size_t main_len = nul ? (size_t)(nul - (const char *)data) : size;
	char *text = malloc(size + 1);

	CHECK(text);
	memcpy(text, data, size);
	text[size] = '\0';
	/* text holds the main file up to its NUL, then inc.conf's text (with no NUL of its own). */
	if (!includes_only_ours(text) || (nul && (memchr(nul + 1, '\0', size - main_len - 1) ||
						  !includes_only_ours(text + main_len + 1)))) {
		free(text);
		return -1;
	}
	make_dir();
	write_file(main_path, text, main_len);
	if (nul)
		write_file(inc_path, text + main_len + 1, size - main_len - 1);
	free(text);
	load_and_check();
	remove_dir();
	return 0;
}
