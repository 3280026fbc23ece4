/* SPDX-License-Identifier: BSD-3-Clause */
/* Ports and their exception taps (port.c): the lowest layer of anygate-dp. */
#ifndef AG_DP_PORT_H
#define AG_DP_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include "dp.h"

bool ag_dp__is_pci(const char *spec);
int ag_dp_ports__setup(struct ag_dp *dp);
int ag_dp_ports__taps(struct ag_dp *dp);
void ag_dp_ports__close(struct ag_dp *dp);
/* Index of the port whose subnet holds addr (network order), or -1. */
int ag_dp_ports__of_addr(const struct ag_dp *dp, uint32_t addr);

#endif /* AG_DP_PORT_H */
