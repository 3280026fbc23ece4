/* SPDX-License-Identifier: BSD-3-Clause */
#include "dpdk.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "abi_shm.h"
#include "log.h"
#include "loop.h"
#include "shm.h"

struct ag_dpdk {
	struct ag_fastpath fp;
	struct ag_shm *shm;
	bool adopted; /* the segment was there before us */
};

static struct ag_dpdk *dpdk_of(const struct ag_fastpath *fp)
{
	return ag_container_of(fp, struct ag_dpdk, fp);
}

static struct ag_shm *shm_of(struct ag_fastpath *fp)
{
	return dpdk_of(fp)->shm;
}

static struct ag_fastpath *dpdk_open(const struct ag_cfg_edge *edge)
{
	struct ag_dpdk *p = calloc(1, sizeof(*p));
	char path[PATH_MAX];
	struct stat st;
	int err;

	if (!p)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", AG_SHM_DIR, edge->dpdk.shm_name ?: "");
	p->adopted = !stat(path, &st);
	p->shm = ag_shm__open(edge);
	if (!p->shm) {
		err = errno;
		pr_err("table segment %s: %s\n", edge->dpdk.shm_name, strerror(err));
		free(p);
		errno = err;
		return NULL;
	}
	p->fp.ops = &ag_dpdk__ops;
	return &p->fp;
}

/* anygate-dp attaches on its own: the tables it finds are already published. */
static int dpdk_attach(struct ag_fastpath *fp, const struct ag_cfg_edge *edge)
{
	pr_info("tables published into %s: anygate-dp attaches to it and forwards\n",
		ag_shm__path(shm_of(fp)));
	return 0;
}

static bool dpdk_adopted(const struct ag_fastpath *fp)
{
	return dpdk_of(fp)->adopted;
}

/* Kept or not, anygate-dp forwards on the last tables: anygated never removes the segment. */
static void dpdk_release(struct ag_fastpath *fp, bool keep)
{
	pr_info("table segment %s stays for anygate-dp (anygated --detach removes it)\n",
		ag_shm__path(shm_of(fp)));
}

static void dpdk_close(struct ag_fastpath *fp)
{
	ag_shm__close(shm_of(fp));
	free(dpdk_of(fp));
}

static int dpdk_remove_kept(const struct ag_cfg_edge *edge)
{
	return ag_shm__unlink(edge->dpdk.shm_name);
}

static void dpdk_sink(struct ag_fastpath *fp, const struct ag_sink_ops **ops, void **ctx)
{
	*ops = ag_shm__sink_ops();
	*ctx = shm_of(fp);
}

/* What the live anygate-dp forwards on; it may start after anygated, or restart with others. */
static unsigned int dpdk_cpus(struct ag_fastpath *fp)
{
	return ag_shm__fwd_lcores(shm_of(fp));
}

static int dpdk_listener_stats(struct ag_fastpath *fp, uint32_t lid, struct ag_traffic_stats *out)
{
	return ag_shm__listener_stats(shm_of(fp), lid, out);
}

static int dpdk_backend_stats(struct ag_fastpath *fp, uint32_t id, struct ag_traffic_stats *out)
{
	return ag_shm__backend_stats(shm_of(fp), id, out);
}

static int dpdk_reason_stats(struct ag_fastpath *fp, enum ag_reason r, struct ag_reason_stats *out)
{
	return ag_shm__reason_stats(shm_of(fp), r, out);
}

/* What a live anygate-dp last reported into the segment (-ESRCH: none alive). */
static long dpdk_flow_entries(struct ag_fastpath *fp)
{
	return ag_shm__flow_count(shm_of(fp));
}

/* anygate-dp keeps its flows in its own memory: they cannot be walked from here. */
static int dpdk_walk_flows(struct ag_fastpath *fp, ag_flow_fn fn, void *ctx)
{
	return -EOPNOTSUPP;
}

static struct ag_flow_cursor *dpdk_flow_cursor_open(struct ag_fastpath *fp, unsigned int slice)
{
	errno = EOPNOTSUPP;
	return NULL;
}

/* Never called: no cursor is ever opened. */
static int dpdk_flow_cursor_step(struct ag_flow_cursor *c, ag_flow_fn fn, void *ctx)
{
	return -EOPNOTSUPP;
}

static void dpdk_flow_cursor_close(struct ag_flow_cursor *c)
{
}

/* anygate-dp sweeps its own tables (counted as flows_expired among its counters). */
static int dpdk_reclaim_stats(struct ag_fastpath *fp, struct ag_reclaim_stats *out)
{
	return -EOPNOTSUPP;
}

const struct ag_fastpath_ops ag_dpdk__ops = {
    .kind = "dpdk",
    .open = dpdk_open,
    .attach = dpdk_attach,
    .adopted = dpdk_adopted,
    .release = dpdk_release,
    .close = dpdk_close,
    .remove_kept = dpdk_remove_kept,
    .sink = dpdk_sink,
    .cpus = dpdk_cpus,
    .listener_stats = dpdk_listener_stats,
    .backend_stats = dpdk_backend_stats,
    .reason_stats = dpdk_reason_stats,
    .flow_entries = dpdk_flow_entries,
    .walk_flows = dpdk_walk_flows,
    .flow_cursor_open = dpdk_flow_cursor_open,
    .flow_cursor_step = dpdk_flow_cursor_step,
    .flow_cursor_close = dpdk_flow_cursor_close,
    .reclaim_stats = dpdk_reclaim_stats,
};
