/* SPDX-License-Identifier: BSD-3-Clause */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum ag_log_level log_level = AG_LOG_INFO;

static const char *const level_names[] = {
    [AG_LOG_ERR] = "error",
    [AG_LOG_WARN] = "warning",
    [AG_LOG_INFO] = "info",
    [AG_LOG_DEBUG] = "debug",
};

void ag_log__set_level(enum ag_log_level level)
{
	log_level = level;
}

enum ag_log_level ag_log__level(void)
{
	return log_level;
}

void ag_log__v(enum ag_log_level level, const char *prefix, const char *fmt, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s: %s", stamp, ts.tv_nsec / 1000000, level_names[level],
		prefix);
	vfprintf(stderr, fmt, ap);
}

void ag_log(enum ag_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ag_log__v(level, "", fmt, ap);
	va_end(ap);
}
