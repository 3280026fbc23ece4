/* SPDX-License-Identifier: BSD-3-Clause */
#include "lifecycle.h"

#include <string.h>

#include "commands.h"
#include "daemon.h"
#include "fastpath.h"
#include "health.h"
#include "log.h"
#include "metrics_src.h"

int ag_lifecycle__start(struct ag_daemon *d)
{
	int err;

	/* Overrides from edge.state_file are in the view before the first publish. */
	err = ag_cmds__init(d);
	if (err) {
		pr_err("operator commands: %s\n", strerror(-err));
		goto fail;
	}
	err = ag_daemon__open_fastpath(d);
	if (!err)
		err = ag_daemon__start_upkeep(d);
	if (err)
		goto fail;
	err = ag_health__start(d);
	if (err) {
		pr_err("health probes: %s\n", strerror(-err));
		goto fail;
	}
	err = ag_metrics_src__start(d);
	if (!err)
		err = ag_cmds__start(d);
	if (err)
		goto fail;
	pr_info("anygated ready: edge %s, fast path %s, %u interfaces, %u listeners, %u backends\n",
		d->cfg->edge.name, d->fp->ops->kind, d->cfg->edge.n_ifaces, d->plan->n_listeners,
		d->plan->n_backends);
	return 0;
fail:
	ag_lifecycle__stop(d, true);
	return err;
}

void ag_lifecycle__stop(struct ag_daemon *d, bool failed)
{
	ag_metrics_src__stop(d);
	ag_health__stop(d);
	ag_daemon__stop_upkeep(d);
	ag_daemon__release_fastpath(d, failed);
	ag_cmds__free(d);
}
