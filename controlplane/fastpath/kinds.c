/* SPDX-License-Identifier: BSD-3-Clause */
#include "kinds.h"

#include <stddef.h>

#include "dpdk.h"
#include "xdp.h"

const struct ag_fastpath_ops *ag_fastpath__ops(enum ag_fastpath_kind kind)
{
	switch (kind) {
	case AG_FASTPATH_XDP:
		return &ag_xdp__ops;
	case AG_FASTPATH_DPDK:
		return &ag_dpdk__ops;
	}
	return NULL;
}
