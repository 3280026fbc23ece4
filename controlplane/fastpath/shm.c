/* SPDX-License-Identifier: BSD-3-Clause */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Byte of the segment file each role locks (OFD locks: per open, not per process). */
#define LOCK_PUBLISHER 0
#define LOCK_FASTPATH  1

struct ag_shm {
	struct ag_shm_hdr *hdr;
	size_t size;
	int fd;
	char path[PATH_MAX];
};

static const char *const dp_counter_names[] = {
#define AG_DP_COUNTER_NAME(name, label) [AG_DPC_##name] = label,
    AG_DP_COUNTERS(AG_DP_COUNTER_NAME)
#undef AG_DP_COUNTER_NAME
};

const char *ag_dp_counter__name(enum ag_dp_counter c)
{
	return c < AG_DPC__MAX ? dp_counter_names[c] : "unknown";
}

uint64_t ag_shm__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t align_up(uint64_t v)
{
	return (v + AG_SHM_ALIGN - 1) / AG_SHM_ALIGN * AG_SHM_ALIGN;
}

static uint64_t table_bytes(uint32_t cap, size_t entry)
{
	return sizeof(struct ag_shm_table) + (uint64_t)cap * entry;
}

/* The identity (sizes and offsets) of a segment for ring_size: both sides compute it. */
static void layout(uint32_t ring_size, struct ag_shm_ident *id)
{
	uint64_t off = sizeof(struct ag_shm_hdr);
	int i;

	memset(id, 0, sizeof(*id));
	id->layout_version = AG_SHM_LAYOUT_VERSION;
	id->abi_version = AG_ABI_VERSION;
	id->hdr_size = sizeof(struct ag_shm_hdr);
	id->ring_size = ring_size;
	id->lanes = AG_SHM_LANES;
	id->lkey_cap = AG_SHM_LKEY_CAP;
	id->vip_cap = AG_SHM_VIP_CAP;
	id->ovr_cap = AG_SHM_OVR_CAP;
	id->lookup_buckets = AG_LOOKUP_BUCKETS(ring_size);
	id->lane_size = sizeof(struct ag_shm_lane);
	for (i = 0; i < 2; i++) {
		id->off_settings[i] = off;
		off = align_up(off + table_bytes(1, sizeof(struct ag_settings)));
		id->off_vips[i] = off;
		off = align_up(off + table_bytes(id->vip_cap, sizeof(struct ag_shm_vip)));
		id->off_lkeys[i] = off;
		off = align_up(off + table_bytes(id->lkey_cap, sizeof(struct ag_shm_lkey)));
		id->off_ovr[i] = off;
		off = align_up(off + table_bytes(id->ovr_cap, sizeof(struct ag_shm_ovr)));
	}
	id->off_lstate = off;
	off = align_up(off + AG_MAX_LISTENERS * sizeof(struct ag_listener_state));
	id->off_lookup = off;
	off = align_up(off + (uint64_t)id->lookup_buckets * sizeof(struct ag_lookup_bucket));
	id->off_backends = off;
	off = align_up(off + AG_MAX_BACKENDS * sizeof(struct ag_backend));
	id->off_lanes = off;
	off = align_up(off + (uint64_t)id->lanes * id->lane_size);
	id->total_size = off;
	id->magic = AG_SHM_MAGIC;
}

static void init_table(struct ag_shm_hdr *h, uint64_t off, uint32_t cap, uint32_t entry)
{
	struct ag_shm_table *t = ag_shm__table(h, off);

	t->cap = cap;
	t->entry_size = entry;
}

/* A fresh segment's content; the file is still private (temporary name). */
static void init_segment(struct ag_shm_hdr *h, const struct ag_shm_ident *id)
{
	int i;

	/* tmpfs hands out zeroed pages: empty tables, inactive listeners, zero counters. */
	h->ident = *id;
	h->ident.magic = 0;
	for (i = 0; i < 2; i++) {
		init_table(h, id->off_settings[i], 1, sizeof(struct ag_settings));
		init_table(h, id->off_vips[i], id->vip_cap, sizeof(struct ag_shm_vip));
		init_table(h, id->off_lkeys[i], id->lkey_cap, sizeof(struct ag_shm_lkey));
		init_table(h, id->off_ovr[i], id->ovr_cap, sizeof(struct ag_shm_ovr));
	}
	__atomic_store_n(&h->ident.magic, AG_SHM_MAGIC, __ATOMIC_RELEASE);
}

/* Compare a segment's identity with what this build computes; say what differs. */
static int check_ident(const char *path, const struct ag_shm_ident *got, uint32_t ring_size,
		       uint64_t file_size)
{
	struct ag_shm_ident want;

	if (got->magic != AG_SHM_MAGIC) {
		pr_err("%s is not an anygate segment (magic %#x): remove it or choose another "
		       "edge.dpdk.shm_name\n",
		       path, got->magic);
		return -EPROTO;
	}
	if (got->layout_version != AG_SHM_LAYOUT_VERSION || got->abi_version != AG_ABI_VERSION) {
		pr_err("%s was written by segment layout %u, ABI %u; this build speaks layout %u, "
		       "ABI %u: stop anygate-dp and anygated, remove %s and start them again\n",
		       path, got->layout_version, got->abi_version, AG_SHM_LAYOUT_VERSION,
		       AG_ABI_VERSION, path);
		return -EPROTO;
	}
	if (ring_size && got->ring_size != ring_size) {
		pr_err(
		    "%s holds lookup tables of ring_size %u, the config says %u: stop anygate-dp "
		    "and remove %s to change it\n",
		    path, got->ring_size, ring_size, path);
		return -EINVAL;
	}
	layout(got->ring_size, &want);
	if (memcmp(got, &want, sizeof(want))) {
		pr_err("%s: sizes or offsets differ from this build's (same layout version, "
		       "another build?): remove it and start again\n",
		       path);
		return -EPROTO;
	}
	if (file_size != got->total_size) {
		pr_err("%s is %llu bytes, its header says %llu: truncated? remove it\n", path,
		       (unsigned long long)file_size, (unsigned long long)got->total_size);
		return -EPROTO;
	}
	return 0;
}

static int lock_role(int fd, int role)
{
	struct flock fl = {
	    .l_type = F_WRLCK,
	    .l_whence = SEEK_SET,
	    .l_start = role,
	    .l_len = 1,
	};

	return fcntl(fd, F_OFD_SETLK, &fl) ? -errno : 0;
}

static int seg_path(char *buf, size_t len, const char *name)
{
	if (!name || !name[0] || strchr(name, '/'))
		return -EINVAL;
	if (snprintf(buf, len, "%s/%s", AG_SHM_DIR, name) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* Create the segment under a temporary name and link it into place (never half-made). */
static int create_segment(const char *path, uint32_t ring_size)
{
	struct ag_shm_ident id;
	char tmp[PATH_MAX];
	void *mem;
	int fd, err = 0;

	layout(ring_size, &id);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		pr_err("creating %s: %s\n", tmp, strerror(errno));
		return err;
	}
	if (ftruncate(fd, (off_t)id.total_size)) {
		err = -errno;
		pr_err("sizing %s to %llu bytes: %s\n", tmp, (unsigned long long)id.total_size,
		       strerror(errno));
		goto out;
	}
	mem = mmap(NULL, id.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		err = -errno;
		pr_err("mapping %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	init_segment(mem, &id);
	munmap(mem, id.total_size);
	/* link() refuses to replace: a segment someone else just made wins. */
	if (link(tmp, path) && errno != EEXIST) {
		err = -errno;
		pr_err("linking %s to %s: %s\n", tmp, path, strerror(errno));
	}
out:
	unlink(tmp);
	close(fd);
	return err;
}

/* Observers map read-only and take no lock. */
#define LOCK_NONE (-1)

/* Open and map an existing segment, checked; role: which lock to take. */
static struct ag_shm *map_segment(const char *path, uint32_t ring_size, int role)
{
	int rw = role == LOCK_NONE ? O_RDONLY : O_RDWR;
	struct ag_shm_ident id;
	struct ag_shm *m;
	struct stat st;
	int err;

	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	snprintf(m->path, sizeof(m->path), "%s", path);
	m->fd = open(path, rw | O_CLOEXEC);
	if (m->fd < 0) {
		err = -errno;
		goto err_free;
	}
	if (fstat(m->fd, &st)) {
		err = -errno;
		pr_err("%s: %s\n", path, strerror(errno));
		goto err_close;
	}
	if ((uint64_t)st.st_size < sizeof(struct ag_shm_hdr)) {
		pr_err("%s is %lld bytes, too small for an anygate segment: remove it\n", path,
		       (long long)st.st_size);
		err = -EPROTO;
		goto err_close;
	}
	if (pread(m->fd, &id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
		err = errno ? -errno : -EIO;
		pr_err("reading %s: %s\n", path, strerror(-err));
		goto err_close;
	}
	err = check_ident(path, &id, ring_size, (uint64_t)st.st_size);
	if (err)
		goto err_close;
	err = role == LOCK_NONE ? 0 : lock_role(m->fd, role);
	if (err) {
		if (err == -EAGAIN || err == -EACCES) {
			pr_err("%s: another %s holds it\n", path,
			       role == LOCK_PUBLISHER ? "anygated (publisher)" : "anygate-dp");
			err = -EBUSY;
		} else {
			pr_err("%s: lock: %s\n", path, strerror(-err));
		}
		goto err_close;
	}
	m->size = id.total_size;
	m->hdr = mmap(NULL, m->size, role == LOCK_NONE ? PROT_READ : PROT_READ | PROT_WRITE,
		      MAP_SHARED, m->fd, 0);
	if (m->hdr == MAP_FAILED) {
		err = -errno;
		m->hdr = NULL;
		pr_err("mapping %s (%zu bytes): %s\n", path, m->size, strerror(errno));
		goto err_close;
	}
	return m;

err_close:
	close(m->fd);
err_free:
	free(m);
	errno = -err;
	return NULL;
}

struct ag_shm *ag_shm__open(const struct ag_cfg_edge *edge)
{
	char path[PATH_MAX];
	struct ag_shm *m;
	int err, tries;

	err = seg_path(path, sizeof(path), edge->dpdk.shm_name);
	if (err) {
		pr_err("edge.dpdk.shm_name '%s': %s\n", edge->dpdk.shm_name ?: "", strerror(-err));
		errno = -err;
		return NULL;
	}
	for (tries = 0; tries < 3; tries++) {
		m = map_segment(path, edge->ring_size, LOCK_PUBLISHER);
		if (m)
			break;
		if (errno != ENOENT) {
			if (errno != EPROTO && errno != EINVAL && errno != EBUSY)
				pr_err("opening %s: %s\n", path, strerror(errno));
			return NULL;
		}
		err = create_segment(path, edge->ring_size);
		if (err) {
			errno = -err;
			return NULL;
		}
	}
	if (!m) {
		pr_err("%s keeps disappearing while it is opened\n", path);
		errno = EAGAIN;
		return NULL;
	}
	m->hdr->pub.publisher_pid = (uint32_t)getpid();
	pr_info("shared-memory segment %s: %zu MiB, lookup %u x %u\n", path, m->size >> 20,
		AG_LOOKUP_SLOTS, m->hdr->ident.ring_size);
	return m;
}

struct ag_shm *ag_shm__attach(const char *name, uint32_t ring_size)
{
	char path[PATH_MAX];
	struct ag_shm *m;
	int err;

	err = seg_path(path, sizeof(path), name);
	if (err) {
		errno = -err;
		return NULL;
	}
	m = map_segment(path, ring_size, LOCK_FASTPATH);
	if (!m && errno == ENOENT)
		pr_err("%s does not exist: start anygated (edge.fastpath = \"dpdk\") to create "
		       "it\n",
		       path);
	else if (!m && errno != EPROTO && errno != EINVAL && errno != EBUSY)
		pr_err("opening %s: %s\n", path, strerror(errno));
	return m;
}

struct ag_shm *ag_shm__observe(const char *name)
{
	char path[PATH_MAX];
	int err;

	err = seg_path(path, sizeof(path), name);
	if (err) {
		errno = -err;
		return NULL;
	}
	return map_segment(path, 0, LOCK_NONE);
}

void ag_shm__close(struct ag_shm *m)
{
	if (!m)
		return;
	if (m->hdr)
		munmap(m->hdr, m->size);
	/* Closing the descriptor drops its OFD lock. */
	close(m->fd);
	free(m);
}

int ag_shm__unlink(const char *name)
{
	char path[PATH_MAX];
	int err = seg_path(path, sizeof(path), name);

	if (err)
		return err;
	return unlink(path) ? -errno : 0;
}

struct ag_shm_hdr *ag_shm__hdr(const struct ag_shm *m)
{
	return m->hdr;
}

const char *ag_shm__path(const struct ag_shm *m)
{
	return m->path;
}

/* --- sink: how the publisher writes into the segment --- */

/*
 * Sequence lock, writer side (one writer: the publisher lock). The odd seq is
 * visible before any entry changes; the even seq after all of them.
 */
static void write_begin(struct ag_shm_table *t)
{
	__atomic_store_n(&t->seq, t->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void write_end(struct ag_shm_table *t)
{
	__atomic_store_n(&t->seq, t->seq + 1, __ATOMIC_RELEASE);
}

/* Make copy `idx` live and tell observers something changed. */
static void switch_live(struct ag_shm_hdr *h, uint32_t *live, uint32_t idx)
{
	__atomic_store_n(live, idx, __ATOMIC_RELEASE);
	__atomic_fetch_add(&h->pub.generation, 1, __ATOMIC_RELEASE);
}

static int sink_settings(void *ctx, const struct ag_settings *s)
{
	struct ag_shm_hdr *h = ((struct ag_shm *)ctx)->hdr;
	uint32_t spare = h->pub.settings_live ^ 1;
	struct ag_shm_table *t = ag_shm__table(h, h->ident.off_settings[spare]);

	write_begin(t);
	memcpy(ag_shm__entries(t), s, sizeof(*s));
	t->count = 1;
	write_end(t);
	switch_live(h, &h->pub.settings_live, spare);
	return 0;
}

/*
 * Rewrite the spare copy of a table whole, then switch to it. insert puts
 * entry i of the caller's arrays (keys, and vals where the table has values)
 * into the copy.
 */
typedef void (*insert_fn)(struct ag_shm_table *t, const void *keys, const void *vals,
			  unsigned int i);

static int replace_table(struct ag_shm_hdr *h, const __u64 *off, uint32_t *live, const void *keys,
			 const void *vals, unsigned int n, insert_fn insert)
{
	uint32_t spare = __atomic_load_n(live, __ATOMIC_RELAXED) ^ 1;
	struct ag_shm_table *t = ag_shm__table(h, off[spare]);
	unsigned int i;

	if (n > t->cap / 2)
		return -E2BIG;
	write_begin(t);
	memset(ag_shm__entries(t), 0, (size_t)t->cap * t->entry_size);
	for (i = 0; i < n; i++)
		insert(t, keys, vals, i);
	t->count = n;
	write_end(t);
	switch_live(h, live, spare);
	return 0;
}

/* Linear probing as the readers of abi_shm.h; a key given twice keeps the last value. */
static void insert_vip(struct ag_shm_table *t, const void *keys, const void *vals, unsigned int n)
{
	struct ag_shm_vip *e = ag_shm__entries(t);
	uint32_t mask = t->cap - 1, i;
	__be32 vip = ((const __be32 *)keys)[n];

	for (i = ag_shm__vip_hash(vip);; i++) {
		struct ag_shm_vip *c = &e[i & mask];

		if (!c->vip || c->vip == vip) {
			c->flags = 0;
			c->vip = vip;
			return;
		}
	}
}

static void insert_lkey(struct ag_shm_table *t, const void *keys, const void *vals, unsigned int n)
{
	struct ag_shm_lkey *e = ag_shm__entries(t);
	const struct ag_listener_key *k = &((const struct ag_listener_key *)keys)[n];
	uint32_t mask = t->cap - 1, i;

	for (i = ag_shm__lkey_hash(k);; i++) {
		struct ag_shm_lkey *c = &e[i & mask];

		if (!c->key.proto || !memcmp(&c->key, k, sizeof(*k))) {
			c->id = ((const uint32_t *)vals)[n];
			c->key = *k;
			return;
		}
	}
}

static void insert_ovr(struct ag_shm_table *t, const void *keys, const void *vals, unsigned int n)
{
	struct ag_shm_ovr *e = ag_shm__entries(t);
	const struct ag_port_ovr_key *k = &((const struct ag_port_ovr_key *)keys)[n];
	uint32_t mask = t->cap - 1, i;

	for (i = ag_shm__ovr_hash(k);; i++) {
		struct ag_shm_ovr *c = &e[i & mask];

		if (!c->key.port || !memcmp(&c->key, k, sizeof(*k))) {
			c->val = ((const struct ag_port_ovr *)vals)[n];
			c->key = *k;
			return;
		}
	}
}

static int sink_vips(void *ctx, const uint32_t *vips, unsigned int n)
{
	struct ag_shm_hdr *h = ((struct ag_shm *)ctx)->hdr;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!vips[i])
			return -EINVAL; /* 0.0.0.0 marks an empty entry */
	return replace_table(h, h->ident.off_vips, &h->pub.vips_live, vips, NULL, n, insert_vip);
}

static int sink_listener_keys(void *ctx, const struct ag_listener_key *keys, const uint32_t *ids,
			      unsigned int n)
{
	struct ag_shm_hdr *h = ((struct ag_shm *)ctx)->hdr;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!keys[i].proto || keys[i].pad)
			return -EINVAL;
	return replace_table(h, h->ident.off_lkeys, &h->pub.lkeys_live, keys, ids, n, insert_lkey);
}

static int sink_port_overrides(void *ctx, const struct ag_port_ovr_key *keys,
			       const struct ag_port_ovr *vals, unsigned int n)
{
	struct ag_shm_hdr *h = ((struct ag_shm *)ctx)->hdr;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!keys[i].port || keys[i].pad)
			return -EINVAL;
	return replace_table(h, h->ident.off_ovr, &h->pub.ovr_live, keys, vals, n, insert_ovr);
}

/*
 * A backend entry is 16 bytes: written as two aligned 8-byte stores, state
 * half last. A reader racing a change may pair the old address with the new
 * state, exactly as with the BPF array map (its update is a memcpy too);
 * addresses change only on reload, states with health.
 */
static int sink_backend(void *ctx, uint32_t id, const struct ag_backend *b)
{
	struct ag_shm_hdr *h = ((struct ag_shm *)ctx)->hdr;
	uint64_t *dst, w[2];

	if (id >= AG_MAX_BACKENDS)
		return -EINVAL;
	_Static_assert(sizeof(*b) == sizeof(w), "backend is two words");
	memcpy(w, b, sizeof(w));
	dst = (uint64_t *)&ag_shm__backends(h)[id];
	__atomic_store_n(&dst[0], w[0], __ATOMIC_RELAXED);
	__atomic_store_n(&dst[1], w[1], __ATOMIC_RELEASE);
	__atomic_fetch_add(&h->pub.generation, 1, __ATOMIC_RELEASE);
	return 0;
}

static uint32_t *sink_lookup_slot(void *ctx, uint32_t slot)
{
	struct ag_shm_hdr *h = ((struct ag_shm *)ctx)->hdr;

	return ag_shm__lookup(h) + (size_t)slot * h->ident.ring_size;
}

static struct ag_listener_state *sink_lstate(void *ctx, uint32_t lid)
{
	return &ag_shm__lstate(((struct ag_shm *)ctx)->hdr)[lid];
}

static const struct ag_sink_ops shm_sink_ops = {
    .settings = sink_settings,
    .vips = sink_vips,
    .listener_keys = sink_listener_keys,
    .port_overrides = sink_port_overrides,
    .backend = sink_backend,
    .lookup_slot = sink_lookup_slot,
    .lstate = sink_lstate,
};

const struct ag_sink_ops *ag_shm__sink_ops(void)
{
	return &shm_sink_ops;
}

/* --- counters --- */

static void sum_lanes(struct ag_shm *m, size_t off_in_lane, uint64_t *out, unsigned int n_u64)
{
	const struct ag_shm_hdr *h = m->hdr;
	uint32_t lane;
	unsigned int i;

	memset(out, 0, n_u64 * sizeof(*out));
	for (lane = 0; lane < h->ident.lanes; lane++) {
		const uint64_t *v =
		    (const uint64_t *)((const char *)ag_shm__lane(h, lane) + off_in_lane);

		for (i = 0; i < n_u64; i++)
			out[i] += __atomic_load_n(&v[i], __ATOMIC_RELAXED);
	}
}

int ag_shm__listener_stats(struct ag_shm *m, uint32_t lid, struct ag_traffic_stats *out)
{
	if (lid >= AG_MAX_LISTENERS)
		return -EINVAL;
	sum_lanes(m, offsetof(struct ag_shm_lane, lstats) + lid * sizeof(*out), (uint64_t *)out,
		  sizeof(*out) / 8);
	return 0;
}

int ag_shm__backend_stats(struct ag_shm *m, uint32_t id, struct ag_traffic_stats *out)
{
	if (id >= AG_MAX_BACKENDS)
		return -EINVAL;
	sum_lanes(m, offsetof(struct ag_shm_lane, bstats) + id * sizeof(*out), (uint64_t *)out,
		  sizeof(*out) / 8);
	return 0;
}

int ag_shm__reason_stats(struct ag_shm *m, enum ag_reason r, struct ag_reason_stats *out)
{
	if ((unsigned int)r >= AG_R__MAX)
		return -EINVAL;
	sum_lanes(m, offsetof(struct ag_shm_lane, rstats) + r * sizeof(*out), (uint64_t *)out,
		  sizeof(*out) / 8);
	return 0;
}

int ag_shm__dp_counter(struct ag_shm *m, enum ag_dp_counter c, uint64_t *out)
{
	if ((unsigned int)c >= AG_DPC__MAX)
		return -EINVAL;
	sum_lanes(m, offsetof(struct ag_shm_lane, dp) + c * sizeof(*out), out, 1);
	return 0;
}

int ag_shm__fastpath(struct ag_shm *m, uint64_t max_age_ns, struct ag_shm_dp *st)
{
	const struct ag_shm_dp *dp = &m->hdr->dp;
	uint64_t now = ag_shm__now_ns();

	st->pid = __atomic_load_n(&dp->pid, __ATOMIC_ACQUIRE);
	st->lanes_used = dp->lanes_used;
	st->started_ns = dp->started_ns;
	st->heartbeat_ns = __atomic_load_n(&dp->heartbeat_ns, __ATOMIC_ACQUIRE);
	st->flows = dp->flows;
	st->nat_rev = dp->nat_rev;
	st->neighbours = dp->neighbours;
	/* Its stamp may be a hair later than our clock read: that is "now". */
	if (!st->pid || (now > st->heartbeat_ns && now - st->heartbeat_ns > max_age_ns))
		return -ESRCH;
	return 0;
}

long ag_shm__flow_count(struct ag_shm *m)
{
	struct ag_shm_dp st;

	if (ag_shm__fastpath(m, AG_SHM_ALIVE_NS, &st))
		return -ESRCH;
	return (long)st.flows;
}

unsigned int ag_shm__fwd_lcores(struct ag_shm *m)
{
	struct ag_shm_dp st;

	if (ag_shm__fastpath(m, AG_SHM_ALIVE_NS, &st) || !st.lanes_used)
		return 0;
	/* one lane per forwarding lcore and one for the main lcore, unless it forwards alone */
	return st.lanes_used > 1 ? st.lanes_used - 1 : 1;
}
