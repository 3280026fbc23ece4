/* SPDX-License-Identifier: BSD-3-Clause */
#include "log.h"

#include <bpf/libbpf.h>
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

static void log_v(enum ag_log_level level, const char *prefix, const char *fmt, va_list ap)
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
	log_v(level, "", fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum ag_log_level ours;

	switch (level) {
	case LIBBPF_WARN:
		ours = AG_LOG_INFO;
		break;
	case LIBBPF_INFO:
		ours = AG_LOG_DEBUG;
		break;
	default:
		return 0; /* libbpf debug output is too chatty even for -v */
	}
	log_v(ours, "libbpf: ", fmt, ap);
	return 0;
}

void ag_log__hook_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
