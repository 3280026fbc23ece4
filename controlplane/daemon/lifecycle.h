/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated's parts started and stopped in order around a prepared daemon
 * (ag_daemon__init + ag_daemon__prepare): the one sequence anygated and the
 * tests run.
 */
#ifndef AG_LIFECYCLE_H
#define AG_LIFECYCLE_H

#include <stdbool.h>

struct ag_daemon;

/*
 * The operator's overrides (edge.state_file), the fast path with the first
 * tables, health probes, metrics, the control socket. 0, or -errno after
 * logging why and stopping what had started (as ag_lifecycle__stop with
 * failed: an adopted fast path keeps forwarding).
 */
int ag_lifecycle__start(struct ag_daemon *d);
/*
 * After the loop has returned: every part stopped, the fast path released
 * (kept or removed, see ag_daemon__release_fastpath). Then ag_daemon__fini.
 */
void ag_lifecycle__stop(struct ag_daemon *d, bool failed);

#endif /* AG_LIFECYCLE_H */
