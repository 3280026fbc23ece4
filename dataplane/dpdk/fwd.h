/* SPDX-License-Identifier: BSD-3-Clause */
/* The forwarding loop (fwd.c): above the flow tables, below the main lcore's loop. */
#ifndef AG_DP_FWD_H
#define AG_DP_FWD_H

#include "dp.h"

/* Set (to the signal) when anygate-dp is to stop: every loop polls it. */
extern volatile int ag_dp_quit;

/* A forwarding lcore's loop (rte_eal_remote_launch), until ag_dp_quit. */
int ag_dp__fwd_loop(void *arg);
/* One round of it: every port once, then flush. */
void ag_dp__fwd_poll(struct ag_dp_lcore *lc);

#endif /* AG_DP_FWD_H */
