/* SPDX-License-Identifier: BSD-3-Clause */
#include "fastpath.h"

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

static const char *const reason_names[] = {
#define AG_REASON_NAME(name, label) [AG_R_##name] = label,
    AG_REASONS(AG_REASON_NAME)
#undef AG_REASON_NAME
};

const char *ag_reason__name(enum ag_reason r)
{
	return r < AG_R__MAX ? reason_names[r] : "unknown";
}
