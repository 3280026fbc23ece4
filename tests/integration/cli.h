/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Command-line helpers of the lab's small tools (ag-flood, ag-newconn,
 * ag-testcli, ag-longconn): one copy instead of one per tool.
 */
#ifndef AG_CLI_H
#define AG_CLI_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * S as a number in [min, max]. Anything else is a usage error: a message
 * naming the tool and the range, exit status 2.
 */
static inline long ag_cli__num(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "%s: bad number '%s' (%ld-%ld)\n", program_invocation_short_name, s,
			min, max);
		exit(2);
	}
	return v;
}

#endif /* AG_CLI_H */
