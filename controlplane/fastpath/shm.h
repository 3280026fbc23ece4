/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK fast path's shared-memory segment (layout: dataplane/core/abi_shm.h)
 * as both sides open it: anygated creates or adopts it and publishes into it
 * through the same ag_publisher as for XDP (ag_shm__sink_ops); anygate-dp
 * attaches to it, reads the tables lock-free and counts into its lanes.
 *
 * The segment outlives both processes (a file under /dev/shm/anygate.d): anygated can
 * restart while anygate-dp keeps forwarding with the last tables. One
 * publisher and one fast path at a time (open file description locks).
 *
 * Who may write it: only the euid (root). Segments live in AG_SHM_DIR, a
 * directory of the euid's with no group or other access (created 0700 when
 * missing); a segment is created 0600 under a temporary name (O_CREAT |
 * O_EXCL | O_NOFOLLOW) and linked into place. An existing directory or
 * segment is used only if it is a real directory / regular file (opened
 * O_NOFOLLOW, a FIFO never blocks), owned by the euid, with (mode & 077) ==
 * 0; anything else is refused with a message naming the path, the owner and
 * the mode found. The identity is then copied once and validated
 * (shm_layout.h); only that private copy is used after.
 */
#ifndef AG_SHM_H
#define AG_SHM_H

#include <stdint.h>

#include "abi.h"
#include "abi_shm.h"
#include "config.h"
#include "publish.h"

struct ag_shm;

/*
 * anygated: open AG_SHM_DIR/<edge->dpdk.shm_name>, creating it (sized for
 * edge->ring_size) when missing. Refuses, with a message saying what to do, a
 * file that is not a segment, one of another layout, ABI version or ring
 * size, and a segment another publisher holds (EPROTO, EINVAL, EBUSY), and
 * a directory or file of another owner or with group/other access, a link,
 * anything not a regular file (EPERM, ELOOP). NULL + errno on failure.
 */
struct ag_shm *ag_shm__open(const struct ag_cfg_edge *edge);

/*
 * anygate-dp: attach to an existing segment as its fast path (only one may).
 * ring_size 0 accepts any. NULL + errno (ENOENT: no segment yet; EPROTO:
 * other layout or ABI, or a field out of bounds; EINVAL: other ring size;
 * EBUSY: another fast path; EPERM, ELOOP: owner, mode or type refused).
 */
struct ag_shm *ag_shm__attach(const char *name, uint32_t ring_size);

/*
 * Read-only view for observers (counters, status) beside a running publisher
 * and fast path: no lock, nothing written. Sink ops must not be used on it.
 */
struct ag_shm *ag_shm__observe(const char *name);

/* Unmap and unlock; the segment stays (anygate-dp keeps its tables). */
void ag_shm__close(struct ag_shm *m);

/* Remove the segment file (nothing attached keeps it alive). 0 or -errno. */
int ag_shm__unlink(const char *name);

/* The publisher sink: pass the struct ag_shm * as ctx to ag_publisher__init. */
const struct ag_sink_ops *ag_shm__sink_ops(void);

/* The mapping (its pub and dp parts; never trust its ident: use the view's layout). */
struct ag_shm_hdr *ag_shm__hdr(const struct ag_shm *m);
/* The mapping with its validated layout: what the readers of abi_shm.h take. */
const struct ag_shm_view *ag_shm__view(const struct ag_shm *m);
const char *ag_shm__path(const struct ag_shm *m);

/* Counters summed over lanes (as ag_xdp__*_stats sum CPUs). 0 or -EINVAL. */
int ag_shm__listener_stats(struct ag_shm *m, uint32_t lid, struct ag_traffic_stats *out);
int ag_shm__backend_stats(struct ag_shm *m, uint32_t id, struct ag_traffic_stats *out);
int ag_shm__reason_stats(struct ag_shm *m, enum ag_reason r, struct ag_reason_stats *out);
int ag_shm__dp_counter(struct ag_shm *m, enum ag_dp_counter c, uint64_t *out);

/*
 * Is a fast path attached and alive (heartbeat younger than max_age_ns)?
 * Fills *st with its status either way. 0 alive, -ESRCH none or stale.
 */
int ag_shm__fastpath(struct ag_shm *m, uint64_t max_age_ns, struct ag_shm_dp *st);
/* A fast path whose heartbeat is older than this is not alive. */
#define AG_SHM_ALIVE_NS 2000000000ull

/* Flow-table entries reported by a live fast path, or -ESRCH. */
long ag_shm__flow_count(struct ag_shm *m);
/* Forwarding lcores of a live anygate-dp (each with its own budgets), 0 when none is alive. */
unsigned int ag_shm__fwd_lcores(struct ag_shm *m);

/* Metric label of an anygate-dp counter ("tx_dropped"). */
const char *ag_dp_counter__name(enum ag_dp_counter c);

/*
 * The directory segments live in: AG_SHM_DIR unless a test set another
 * (an absolute path; the same owner and mode rules apply). 0 or -EINVAL.
 */
int ag_shm__set_dir(const char *dir);
const char *ag_shm__dir(void);

/* CLOCK_MONOTONIC in ns: the clock of the heartbeat. */
uint64_t ag_shm__now_ns(void);

#endif /* AG_SHM_H */
