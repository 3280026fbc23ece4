/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Health and proximity, on top of the daemon (daemon.h): probe targets from
 * the plan, a state change republishes at once (recording decision -> switch
 * time), and a periodic pass orders each listener's groups by measured RTT
 * with hysteresis. A reload reaches it through d->on_replan.
 */
#ifndef AG_HEALTH_H
#define AG_HEALTH_H

struct ag_daemon;

/* Probe every backend of d->plan from d->loop. 0 or -errno (ag_health__stop undoes). */
int ag_health__start(struct ag_daemon *d);
void ag_health__stop(struct ag_daemon *d);

#endif /* AG_HEALTH_H */
