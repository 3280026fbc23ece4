/* SPDX-License-Identifier: BSD-3-Clause */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
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
#include "shm_layout.h"

/* Byte of the segment file each role locks (OFD locks: per open, not per process). */
#define LOCK_PUBLISHER 0
#define LOCK_FASTPATH  1

struct ag_shm {
	struct ag_shm_view v; /* the mapping and its validated layout */
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

static void init_table(struct ag_shm_hdr *h, uint64_t off, uint32_t cap, uint32_t entry)
{
	struct ag_shm_table *t = (struct ag_shm_table *)((char *)h + off);

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

/* Where segments live: AG_SHM_DIR, or a test's directory (ag_shm__set_dir). */
static char seg_dir[PATH_MAX] = AG_SHM_DIR;

int ag_shm__set_dir(const char *dir)
{
	if (!dir || dir[0] != '/' || strlen(dir) >= sizeof(seg_dir))
		return -EINVAL;
	snprintf(seg_dir, sizeof(seg_dir), "%s", dir);
	return 0;
}

const char *ag_shm__dir(void)
{
	return seg_dir;
}

/* A file type in words, for messages about what was found instead of a segment. */
static const char *file_type(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFLNK:
		return "a symbolic link";
	case S_IFCHR:
	case S_IFBLK:
		return "a device";
	default:
		return "of an unknown type";
	}
}

/*
 * Is fd (path) of type `type`, owned by the euid, with no group or other
 * access? Says what it found and what it wants when not: what = "segment"
 * or "segment directory".
 */
static int check_owner(int fd, const char *path, mode_t type, const char *what, unsigned int want)
{
	struct stat st;
	uid_t me = geteuid();

	if (fstat(fd, &st)) {
		int err = -errno;

		pr_err("%s: %s\n", path, strerror(-err));
		return err;
	}
	if ((st.st_mode & S_IFMT) != type) {
		pr_err("%s is %s, not the %s anygate made: remove it\n", path,
		       file_type(st.st_mode), what);
		return -EPERM;
	}
	if (st.st_uid != me || (st.st_mode & 077)) {
		pr_err("%s is owned by uid %u with mode %04o; a %s must belong to uid %u with no "
		       "group or other access (%04o): remove it\n",
		       path, (unsigned int)st.st_uid, (unsigned int)(st.st_mode & 07777), what,
		       (unsigned int)me, want);
		return -EPERM;
	}
	return 0;
}

/*
 * The segment directory, opened (O_NOFOLLOW: never a link someone planted)
 * and checked; created 0700 first when create is set. A descriptor or -errno.
 */
static int open_dir(bool create)
{
	int fd, err;

	if (create && mkdir(seg_dir, 0700) && errno != EEXIST) {
		err = -errno;
		pr_err("creating %s: %s\n", seg_dir, strerror(-err));
		return err;
	}
	fd = open(seg_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (err == -ELOOP || err == -ENOTDIR)
			pr_err("%s is not a directory (a symbolic link or a file?): remove it\n",
			       seg_dir);
		else if (err != -ENOENT)
			pr_err("%s: %s\n", seg_dir, strerror(-err));
		return err;
	}
	err = check_owner(fd, seg_dir, S_IFDIR, "segment directory", 0700);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static int check_name(const char *name)
{
	if (!name || !name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (strlen(seg_dir) + 1 + strlen(name) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* Create the segment under a temporary name and link it into place (never half-made). */
static int create_segment(int dfd, const char *name, uint32_t ring_size)
{
	struct ag_shm_ident id;
	char tmp[PATH_MAX];
	void *mem;
	int fd, err = 0;

	ag_shm__layout_make(ring_size, &id);
	if (snprintf(tmp, sizeof(tmp), ".%s.tmp.%d", name, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		pr_err("creating %s/%s: %s\n", seg_dir, tmp, strerror(errno));
		return err;
	}
	/* Whatever the umask: owner read/write, nobody else. */
	if (fchmod(fd, 0600) || ftruncate(fd, (off_t)id.total_size)) {
		err = -errno;
		pr_err("sizing %s/%s to %llu bytes: %s\n", seg_dir, tmp,
		       (unsigned long long)id.total_size, strerror(errno));
		goto out;
	}
	mem = mmap(NULL, id.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		err = -errno;
		pr_err("mapping %s/%s: %s\n", seg_dir, tmp, strerror(errno));
		goto out;
	}
	init_segment(mem, &id);
	munmap(mem, id.total_size);
	/* linkat() refuses to replace: a segment someone else just made wins. */
	if (linkat(dfd, tmp, dfd, name, 0) && errno != EEXIST) {
		err = -errno;
		pr_err("linking %s/%s to %s: %s\n", seg_dir, tmp, name, strerror(errno));
	}
out:
	unlinkat(dfd, tmp, 0);
	close(fd);
	return err;
}

/* Observers map read-only and take no lock. */
#define LOCK_NONE (-1)

/*
 * Open an existing segment (O_NOFOLLOW, O_NONBLOCK: a FIFO in its place never
 * blocks us), check who owns it, copy and validate its identity once.
 */
static int open_checked(struct ag_shm *m, int dfd, const char *name, int role)
{
	int rw = role == LOCK_NONE ? O_RDONLY : O_RDWR;
	struct ag_shm_hdr hdr;
	char why[256];
	struct stat st;
	ssize_t got;
	int err;

	m->fd = openat(dfd, name, rw | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (m->fd < 0) {
		err = -errno;
		if (err == -ELOOP)
			pr_err("%s is a symbolic link, not the segment anygate made: remove it\n",
			       m->path);
		else if (err == -EISDIR) /* as check_owner() says when it opens (read-only) */
			pr_err("%s is a directory, not the segment anygate made: remove it\n",
			       m->path);
		else if (err != -ENOENT)
			pr_err("opening %s: %s\n", m->path, strerror(-err));
		return err == -EISDIR ? -EPERM : err;
	}
	err = check_owner(m->fd, m->path, S_IFREG, "segment", 0600);
	if (err)
		return err;
	if (fstat(m->fd, &st))
		return -errno;
	memset(&hdr, 0, sizeof(hdr));
	got = pread(m->fd, &hdr, sizeof(hdr), 0);
	if (got < 0) {
		err = -errno;
		pr_err("reading %s: %s\n", m->path, strerror(-err));
		return err;
	}
	/* A short file fails the size check first. */
	err = ag_shm__layout_check(&hdr, (size_t)st.st_size, &m->v.lay, why, sizeof(why));
	if (err)
		pr_err("%s: %s: stop anygate-dp and anygated, remove it and start them again\n",
		       m->path, why);
	return err;
}

static int lock_and_map(struct ag_shm *m, int role)
{
	int err = role == LOCK_NONE ? 0 : lock_role(m->fd, role);
	void *mem;

	if (err) {
		if (err == -EAGAIN || err == -EACCES) {
			pr_err("%s: another %s holds it\n", m->path,
			       role == LOCK_PUBLISHER ? "anygated (publisher)" : "anygate-dp");
			err = -EBUSY;
		} else {
			pr_err("%s: lock: %s\n", m->path, strerror(-err));
		}
		return err;
	}
	mem = mmap(NULL, m->v.lay.map_size, role == LOCK_NONE ? PROT_READ : PROT_READ | PROT_WRITE,
		   MAP_SHARED, m->fd, 0);
	if (mem == MAP_FAILED) {
		err = -errno;
		pr_err("mapping %s (%llu bytes): %s\n", m->path,
		       (unsigned long long)m->v.lay.map_size, strerror(-err));
		return err;
	}
	m->v.hdr = mem;
	return 0;
}

/* Open and map an existing segment, checked; role: which lock to take. */
static struct ag_shm *map_segment(int dfd, const char *name, uint32_t ring_size, int role)
{
	struct ag_shm *m;
	int err;

	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->fd = -1;
	err = -ENAMETOOLONG;
	if (snprintf(m->path, sizeof(m->path), "%s/%s", seg_dir, name) >= (int)sizeof(m->path))
		goto err_free;
	err = open_checked(m, dfd, name, role);
	if (err)
		goto err_free;
	if (ring_size && m->v.lay.ring_size != ring_size) {
		pr_err(
		    "%s holds lookup tables of ring_size %u, the config says %u: stop anygate-dp "
		    "and remove %s to change it\n",
		    m->path, m->v.lay.ring_size, ring_size, m->path);
		err = -EINVAL;
		goto err_free;
	}
	err = lock_and_map(m, role);
	if (err)
		goto err_free;
	return m;

err_free:
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	errno = -err;
	return NULL;
}

struct ag_shm *ag_shm__open(const struct ag_cfg_edge *edge)
{
	const char *name = edge->dpdk.shm_name;
	struct ag_shm *m = NULL;
	int err, tries, dfd;

	err = check_name(name);
	if (err) {
		pr_err("edge.dpdk.shm_name '%s': %s\n", name ?: "", strerror(-err));
		errno = -err;
		return NULL;
	}
	dfd = open_dir(true);
	if (dfd < 0) {
		errno = -dfd;
		return NULL;
	}
	for (tries = 0; tries < 3; tries++) {
		m = map_segment(dfd, name, edge->ring_size, LOCK_PUBLISHER);
		if (m || errno != ENOENT)
			break;
		err = create_segment(dfd, name, edge->ring_size);
		if (err) {
			errno = -err;
			break;
		}
	}
	err = errno;
	close(dfd);
	if (!m) {
		if (tries == 3)
			pr_err("%s/%s keeps disappearing while it is opened\n", seg_dir, name);
		errno = tries == 3 ? EAGAIN : err;
		return NULL;
	}
	m->v.hdr->pub.publisher_pid = (uint32_t)getpid();
	pr_info("shared-memory segment %s: %llu MiB, lookup %u x %u\n", m->path,
		(unsigned long long)m->v.lay.map_size >> 20, AG_LOOKUP_SLOTS, m->v.lay.ring_size);
	return m;
}

/* Attach (role) or observe (LOCK_NONE) an existing segment. */
static struct ag_shm *open_existing(const char *name, uint32_t ring_size, int role)
{
	struct ag_shm *m;
	int err, dfd;

	err = check_name(name);
	if (err) {
		errno = -err;
		return NULL;
	}
	dfd = open_dir(false);
	if (dfd < 0) {
		errno = -dfd;
		return NULL;
	}
	m = map_segment(dfd, name, ring_size, role);
	err = errno;
	close(dfd);
	errno = err;
	return m;
}

struct ag_shm *ag_shm__attach(const char *name, uint32_t ring_size)
{
	struct ag_shm *m = open_existing(name, ring_size, LOCK_FASTPATH);

	if (!m && errno == ENOENT)
		pr_err("%s/%s does not exist: start anygated (edge.fastpath = \"dpdk\") to create "
		       "it\n",
		       seg_dir, name);
	return m;
}

struct ag_shm *ag_shm__observe(const char *name)
{
	return open_existing(name, 0, LOCK_NONE);
}

void ag_shm__close(struct ag_shm *m)
{
	if (!m)
		return;
	if (m->v.hdr)
		munmap(m->v.hdr, m->v.lay.map_size);
	/* Closing the descriptor drops its OFD lock. */
	close(m->fd);
	free(m);
}

int ag_shm__unlink(const char *name)
{
	int err = check_name(name), dfd;

	if (err)
		return err;
	dfd = open_dir(false);
	if (dfd < 0)
		return dfd;
	err = unlinkat(dfd, name, 0) ? -errno : 0;
	close(dfd);
	return err;
}

struct ag_shm_hdr *ag_shm__hdr(const struct ag_shm *m)
{
	return m->v.hdr;
}

const struct ag_shm_view *ag_shm__view(const struct ag_shm *m)
{
	return &m->v;
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
	const struct ag_shm_view *v = &((struct ag_shm *)ctx)->v;
	struct ag_shm_hdr *h = v->hdr;
	uint32_t spare = (h->pub.settings_live & 1) ^ 1;
	struct ag_shm_table *t = ag_shm__table(v, v->lay.off_settings[spare]);

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
 * into the copy of cap entries.
 */
typedef void (*insert_fn)(struct ag_shm_table *t, uint32_t cap, const void *keys, const void *vals,
			  unsigned int i);

/* One double-buffered table as the validated layout has it: where, how big, its entries' size. */
struct table_ref {
	const __u64 *off;
	uint32_t *live;
	uint32_t cap;
	size_t entry_size;
};

static int replace_table(const struct ag_shm_view *v, const struct table_ref *r, const void *keys,
			 const void *vals, unsigned int n, insert_fn insert)
{
	uint32_t spare = (__atomic_load_n(r->live, __ATOMIC_RELAXED) & 1) ^ 1;
	struct ag_shm_table *t = ag_shm__table(v, r->off[spare]);
	unsigned int i;

	/* Sizes from the layout only: the head's cap and entry_size are the file's word. */
	if (n > r->cap / 2)
		return -E2BIG;
	write_begin(t);
	memset(ag_shm__entries(t), 0, (size_t)r->cap * r->entry_size);
	for (i = 0; i < n; i++)
		insert(t, r->cap, keys, vals, i);
	t->count = n;
	write_end(t);
	switch_live(v->hdr, r->live, spare);
	return 0;
}

/* Linear probing as the readers of abi_shm.h; a key given twice keeps the last value. */
static void insert_vip(struct ag_shm_table *t, uint32_t cap, const void *keys, const void *vals,
		       unsigned int n)
{
	struct ag_shm_vip *e = ag_shm__entries(t);
	uint32_t mask = cap - 1, i;
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

static void insert_lkey(struct ag_shm_table *t, uint32_t cap, const void *keys, const void *vals,
			unsigned int n)
{
	struct ag_shm_lkey *e = ag_shm__entries(t);
	const struct ag_listener_key *k = &((const struct ag_listener_key *)keys)[n];
	uint32_t mask = cap - 1, i;

	for (i = ag_shm__lkey_hash(k);; i++) {
		struct ag_shm_lkey *c = &e[i & mask];

		if (!c->key.proto || !memcmp(&c->key, k, sizeof(*k))) {
			c->id = ((const uint32_t *)vals)[n];
			c->key = *k;
			return;
		}
	}
}

static void insert_ovr(struct ag_shm_table *t, uint32_t cap, const void *keys, const void *vals,
		       unsigned int n)
{
	struct ag_shm_ovr *e = ag_shm__entries(t);
	const struct ag_port_ovr_key *k = &((const struct ag_port_ovr_key *)keys)[n];
	uint32_t mask = cap - 1, i;

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
	const struct ag_shm_view *v = &((struct ag_shm *)ctx)->v;
	const struct table_ref r = {v->lay.off_vips, &v->hdr->pub.vips_live, v->lay.vip_cap,
				    sizeof(struct ag_shm_vip)};
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!vips[i])
			return -EINVAL; /* 0.0.0.0 marks an empty entry */
	return replace_table(v, &r, vips, NULL, n, insert_vip);
}

static int sink_listener_keys(void *ctx, const struct ag_listener_key *keys, const uint32_t *ids,
			      unsigned int n)
{
	const struct ag_shm_view *v = &((struct ag_shm *)ctx)->v;
	const struct table_ref r = {v->lay.off_lkeys, &v->hdr->pub.lkeys_live, v->lay.lkey_cap,
				    sizeof(struct ag_shm_lkey)};
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!keys[i].proto || keys[i].pad)
			return -EINVAL;
	return replace_table(v, &r, keys, ids, n, insert_lkey);
}

static int sink_port_overrides(void *ctx, const struct ag_port_ovr_key *keys,
			       const struct ag_port_ovr *vals, unsigned int n)
{
	const struct ag_shm_view *v = &((struct ag_shm *)ctx)->v;
	const struct table_ref r = {v->lay.off_ovr, &v->hdr->pub.ovr_live, v->lay.ovr_cap,
				    sizeof(struct ag_shm_ovr)};
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!keys[i].port || keys[i].pad)
			return -EINVAL;
	return replace_table(v, &r, keys, vals, n, insert_ovr);
}

/*
 * A backend entry is 16 bytes: written as two aligned 8-byte stores, state
 * half last. A reader racing a change may pair the old address with the new
 * state, exactly as with the BPF array map (its update is a memcpy too);
 * addresses change only on reload, states with health.
 */
static int sink_backend(void *ctx, uint32_t id, const struct ag_backend *b)
{
	const struct ag_shm_view *v = &((struct ag_shm *)ctx)->v;
	uint64_t *dst, w[2];

	if (id >= AG_MAX_BACKENDS)
		return -EINVAL;
	_Static_assert(sizeof(*b) == sizeof(w), "backend is two words");
	memcpy(w, b, sizeof(w));
	dst = (uint64_t *)&ag_shm__backends(v)[id];
	__atomic_store_n(&dst[0], w[0], __ATOMIC_RELAXED);
	__atomic_store_n(&dst[1], w[1], __ATOMIC_RELEASE);
	__atomic_fetch_add(&v->hdr->pub.generation, 1, __ATOMIC_RELEASE);
	return 0;
}

static uint32_t *sink_lookup_slot(void *ctx, uint32_t slot)
{
	const struct ag_shm_view *v = &((struct ag_shm *)ctx)->v;

	/*
	 * The region holds AG_LOOKUP_SLOTS rings (validated: lookup_buckets). The
	 * publisher also asks for the live slot it reads back from an adopted
	 * segment: never a pointer past the region for a value the file gave.
	 */
	if (slot >= AG_LOOKUP_SLOTS)
		slot = 0;
	return ag_shm__lookup(v) + (size_t)slot * v->lay.ring_size;
}

static struct ag_listener_state *sink_lstate(void *ctx, uint32_t lid)
{
	return &ag_shm__lstate(&((struct ag_shm *)ctx)->v)[lid];
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
	uint32_t lane;
	unsigned int i;

	memset(out, 0, n_u64 * sizeof(*out));
	for (lane = 0; lane < m->v.lay.lanes; lane++) {
		const uint64_t *c =
		    (const uint64_t *)((const char *)ag_shm__lane(&m->v, lane) + off_in_lane);

		for (i = 0; i < n_u64; i++)
			out[i] += __atomic_load_n(&c[i], __ATOMIC_RELAXED);
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
	const struct ag_shm_dp *dp = &m->v.hdr->dp;
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
