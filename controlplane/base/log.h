/* SPDX-License-Identifier: BSD-3-Clause */
/* One logging layer for anygated and anygatectl: printf-checked, levelled. */
#ifndef AG_LOG_H
#define AG_LOG_H

#include <stdarg.h>

enum ag_log_level {
	AG_LOG_ERR = 0,
	AG_LOG_WARN = 1,
	AG_LOG_INFO = 2,
	AG_LOG_DEBUG = 3,
};

void ag_log__set_level(enum ag_log_level level);
enum ag_log_level ag_log__level(void);
void ag_log(enum ag_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * One message with a prefix ("libbpf: "), from a va_list: how another
 * library's log callback joins ours (the XDP fast path routes libbpf here).
 */
void ag_log__v(enum ag_log_level level, const char *prefix, const char *fmt, va_list ap);

#define pr_err(...)   ag_log(AG_LOG_ERR, __VA_ARGS__)
#define pr_warn(...)  ag_log(AG_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  ag_log(AG_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) ag_log(AG_LOG_DEBUG, __VA_ARGS__)

#endif /* AG_LOG_H */
