/* SPDX-License-Identifier: BSD-3-Clause */
#include "fastpath.h"

#include <errno.h>
#include <string.h>

#include "shm.h"
#include "xdp.h"

static int xdp_lstats(void *fp, uint32_t lid, struct ag_traffic_stats *out)
{
	return ag_xdp__listener_stats(fp, lid, out);
}

static int xdp_bstats(void *fp, uint32_t id, struct ag_traffic_stats *out)
{
	return ag_xdp__backend_stats(fp, id, out);
}

static int xdp_rstats(void *fp, enum ag_reason r, struct ag_reason_stats *out)
{
	return ag_xdp__reason_stats(fp, r, out);
}

static int xdp_flow_counts(void *fp, uint64_t now_ns, uint64_t tcp_idle_ns, uint64_t udp_idle_ns,
			   uint64_t *active, unsigned int n_backends, uint64_t *entries)
{
	return ag_xdp__flow_counts(fp, now_ns, tcp_idle_ns, udp_idle_ns, active, n_backends,
				   entries);
}

const struct ag_fastpath_ops ag_fastpath_xdp = {
    .kind = "xdp",
    .sink_ops = ag_xdp__sink_ops,
    .listener_stats = xdp_lstats,
    .backend_stats = xdp_bstats,
    .reason_stats = xdp_rstats,
    .flow_counts = xdp_flow_counts,
};

static int shm_lstats(void *fp, uint32_t lid, struct ag_traffic_stats *out)
{
	return ag_shm__listener_stats(fp, lid, out);
}

static int shm_bstats(void *fp, uint32_t id, struct ag_traffic_stats *out)
{
	return ag_shm__backend_stats(fp, id, out);
}

static int shm_rstats(void *fp, enum ag_reason r, struct ag_reason_stats *out)
{
	return ag_shm__reason_stats(fp, r, out);
}

/* anygate-dp reports only its flow-table size into the segment, not per backend. */
static int shm_flow_counts(void *fp, uint64_t now_ns, uint64_t tcp_idle_ns, uint64_t udp_idle_ns,
			   uint64_t *active, unsigned int n_backends, uint64_t *entries)
{
	long n = ag_shm__flow_count(fp);

	if (n < 0)
		return (int)n;
	memset(active, 0, n_backends * sizeof(*active));
	*entries = (uint64_t)n;
	return -EOPNOTSUPP;
}

const struct ag_fastpath_ops ag_fastpath_dpdk = {
    .kind = "dpdk",
    .sink_ops = ag_shm__sink_ops,
    .listener_stats = shm_lstats,
    .backend_stats = shm_bstats,
    .reason_stats = shm_rstats,
    .flow_counts = shm_flow_counts,
};
