/* SPDX-License-Identifier: BSD-3-Clause */
#include "fastpath.h"

#include "flow.h"

_Static_assert(AG_FLOW_STATES == AG_FLOW_STATE__MAX, "one counter per flow state");

static const char *const reason_names[] = {
#define AG_REASON_NAME(name, label) [AG_R_##name] = label,
    AG_REASONS(AG_REASON_NAME)
#undef AG_REASON_NAME
};

const char *ag_reason__name(enum ag_reason r)
{
	return r < AG_R__MAX ? reason_names[r] : "unknown";
}

const char *ag_reason__action(enum ag_reason r)
{
	if ((int)r < AG_R__DROP_FIRST)
		return "pass";
	return (int)r < AG_R__ACT_FIRST ? "drop" : "act";
}

const char *ag_flow_state__name(int state)
{
	static const char *const names[] = {
	    [AG_FLOW_STATE_HALF_OPEN] = "half-open",
	    [AG_FLOW_STATE_ESTABLISHED] = "established",
	    [AG_FLOW_STATE_CLOSING] = "closing",
	    [AG_FLOW_STATE_UDP] = "udp",
	};

	return state >= 0 && state < AG_FLOW_STATE__MAX ? names[state] : "unknown";
}
