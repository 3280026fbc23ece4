/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dataplane/core for a file that also includes DPDK's ethdev headers.
 * The core speaks <linux/ip.h>; rte_ethdev.h pulls in glibc's <netinet/ip.h>
 * (through rte_flow.h and rte_ip.h), which defines the same struct iphdr:
 * same layout, same field names, plain integer types. Both cannot be in one
 * translation unit, so the glibc one serves and the uapi one is marked seen.
 * Include this after the DPDK headers.
 */
#ifndef AG_DP_CORE_H
#define AG_DP_CORE_H

#include <netinet/ip.h>
#ifndef _LINUX_IP_H
#define _LINUX_IP_H
#endif

#include "csum.h"
#include "flow.h"
#include "nat.h"
#include "parse.h"
#include "rst.h"

#endif /* AG_DP_CORE_H */
