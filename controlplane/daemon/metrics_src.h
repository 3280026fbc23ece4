/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated's metrics source: the Prometheus endpoint on edge.metrics (a
 * metrics.h server in the daemon's loop) and what fills each scrape's
 * snapshot from the daemon's state and the fast path's counters.
 */
#ifndef AG_METRICS_SRC_H
#define AG_METRICS_SRC_H

#include "metrics.h"

struct ag_daemon;
struct ag_metrics_src;

/* Serve edge.metrics from d->loop; "" disables it (d->metrics stays NULL). 0 or -errno. */
int ag_metrics_src__start(struct ag_daemon *d);
void ag_metrics_src__stop(struct ag_daemon *d);

/*
 * Fill a zeroed snapshot (ctx: d->metrics), as every scrape does: on the
 * loop's thread. 0 or -errno.
 */
int ag_metrics_src__collect(void *ctx, struct ag_metrics_snapshot *s);

#endif /* AG_METRICS_SRC_H */
