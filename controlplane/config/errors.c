// SPDX-License-Identifier: BSD-3-Clause
/*
 * Collected config problems: each message complete ("file:line: key:
 * problem"), in the order they were found. Running out of memory is never
 * silent: it is the last message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "parse.h"

/*
 * Recorded in place of a message that could not be allocated. One slot of the
 * array is always kept free for it.
 */
static char errors_oom_msg[] = "out of memory: further problems were not recorded";

void ag_errors__init(struct ag_errors *errs)
{
	errs->msgs = NULL;
	errs->count = 0;
	errs->cap = 0;
}

void ag_errors__free(struct ag_errors *errs)
{
	unsigned int i;

	for (i = 0; i < errs->count; i++)
		if (errs->msgs[i] != errors_oom_msg)
			free(errs->msgs[i]);
	free(errs->msgs);
	ag_errors__init(errs);
}

bool ag_errors__oom(const struct ag_errors *errs)
{
	return errs->count && errs->msgs[errs->count - 1] == errors_oom_msg;
}

void ag_errors__vadd(struct ag_errors *errs, const char *file, int line, const char *key,
		     const char *fmt, va_list ap)
{
	char *problem = NULL, *msg = NULL;
	char where[32] = "";
	int ret;

	if (ag_errors__oom(errs))
		return;
	if (errs->count + 2 > errs->cap) {
		unsigned int cap = errs->cap ? errs->cap * 2 : 16;
		char **msgs = realloc(errs->msgs, cap * sizeof(*msgs));

		if (!msgs)
			goto oom;
		errs->msgs = msgs;
		errs->cap = cap;
	}
	if (vasprintf(&problem, fmt, ap) < 0) {
		problem = NULL;
		goto oom;
	}
	if (line > 0)
		snprintf(where, sizeof(where), ":%d", line);
	if (key)
		ret = asprintf(&msg, "%s%s: %s: %s", file, where, key, problem);
	else
		ret = asprintf(&msg, "%s%s: %s", file, where, problem);
	free(problem);
	if (ret < 0)
		goto oom;
	errs->msgs[errs->count++] = msg;
	return;
oom:
	if (errs->count < errs->cap)
		errs->msgs[errs->count++] = errors_oom_msg;
}

void ag_errors__add(struct ag_errors *errs, const char *file, int line, const char *key,
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ag_errors__vadd(errs, file, line, key, fmt, ap);
	va_end(ap);
}
