/* SPDX-License-Identifier: BSD-3-Clause */
/* The main lcore's loop (slow.c): the top module below main.c. */
#ifndef AG_DP_SLOW_H
#define AG_DP_SLOW_H

#include "dp.h"

/* Until ag_dp_quit (fwd.h): drain the lcores' hand-overs and the taps, tick. */
int ag_dp__main_loop(struct ag_dp *dp);

#endif /* AG_DP_SLOW_H */
