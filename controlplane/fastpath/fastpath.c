/* SPDX-License-Identifier: BSD-3-Clause */
#include "fastpath.h"

static const char *const reason_names[] = {
#define AG_REASON_NAME(name, label) [AG_R_##name] = label,
    AG_REASONS(AG_REASON_NAME)
#undef AG_REASON_NAME
};

const char *ag_reason__name(enum ag_reason r)
{
	return r < AG_R__MAX ? reason_names[r] : "unknown";
}
