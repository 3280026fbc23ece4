/* SPDX-License-Identifier: BSD-3-Clause */
#include "xdp.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "anygate.skel.h"
#include "log.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

struct ag_xdp_link {
	int fd;
	int ifindex;
	char name[IFNAMSIZ];
};

struct ag_xdp {
	struct anygate_bpf *skel;
	char dir[PATH_MAX];
	uint32_t ring_size;
	uint32_t *lookup;		/* mmap of ag_lookup */
	size_t lookup_len;
	struct ag_listener_state *lstate; /* mmap of ag_lstate */
	size_t lstate_len;
	struct ag_xdp_link links[AG_MAX_IFACES];
	unsigned int n_links;
	int ncpus;
};

static const char *const reason_names[] = {
#define AG_REASON_NAME(name, label) [AG_R_##name] = label,
	AG_REASONS(AG_REASON_NAME)
#undef AG_REASON_NAME
};

const char *ag_reason__name(enum ag_reason r)
{
	return r < AG_R__MAX ? reason_names[r] : "unknown";
}

static struct bpf_map *all_maps(struct ag_xdp *x, unsigned int i)
{
	struct bpf_map *maps[] = {
		x->skel->maps.ag_settings, x->skel->maps.ag_listeners, x->skel->maps.ag_lstate,
		x->skel->maps.ag_lookup,   x->skel->maps.ag_backends,  x->skel->maps.ag_port_ovr,
		x->skel->maps.ag_vips,	   x->skel->maps.ag_flows,     x->skel->maps.ag_nat_rev,
		x->skel->maps.ag_lstats,   x->skel->maps.ag_bstats,    x->skel->maps.ag_rstats,
	};

	return i < sizeof(maps) / sizeof(maps[0]) ? maps[i] : NULL;
}

static void *map_mmap(struct bpf_map *map, size_t *len)
{
	long page = sysconf(_SC_PAGESIZE);
	/* The kernel lays elements out round_up(value_size, 8) apart. */
	size_t elem = ((size_t)bpf_map__value_size(map) + 7) / 8 * 8;
	size_t size = elem * bpf_map__max_entries(map);
	void *mem;

	size = (size + page - 1) / page * page;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
	if (mem == MAP_FAILED)
		return NULL;
	*len = size;
	return mem;
}

static int check_bpffs(const char *dir)
{
	struct statfs st;

	if (statfs(dir, &st)) {
		pr_err("bpffs_dir %s: %s (mount a bpffs there: mount -t bpf bpf %s)\n", dir,
		       strerror(errno), dir);
		return -errno;
	}
	if ((unsigned long)st.f_type != BPF_FS_MAGIC) {
		pr_err("bpffs_dir %s is not on a bpf filesystem (mount -t bpf bpf %s)\n", dir, dir);
		return -EINVAL;
	}
	return 0;
}

struct ag_xdp *ag_xdp__open(const struct ag_cfg_edge *edge)
{
	struct ag_settings cur;
	struct ag_xdp *x;
	struct bpf_map *map;
	unsigned int i;
	uint32_t zero = 0;
	int err;

	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->ring_size = edge->ring_size;
	x->ncpus = libbpf_num_possible_cpus();
	snprintf(x->dir, sizeof(x->dir), "%s", edge->bpffs_dir);

	err = check_bpffs(x->dir);
	if (err)
		goto err_free;

	x->skel = anygate_bpf__open();
	if (!x->skel) {
		err = -errno;
		pr_err("opening the embedded XDP object: %s\n", strerror(errno));
		goto err_free;
	}
	bpf_map__set_max_entries(x->skel->maps.ag_lookup, AG_LOOKUP_BUCKETS(edge->ring_size));
	bpf_map__set_max_entries(x->skel->maps.ag_flows, edge->max_flows);
	bpf_map__set_max_entries(x->skel->maps.ag_nat_rev, edge->max_flows);
	for (i = 0; (map = all_maps(x, i)); i++) {
		char path[PATH_MAX];

		if (snprintf(path, sizeof(path), "%s/%s", x->dir, bpf_map__name(map)) >=
		    (int)sizeof(path)) {
			err = -ENAMETOOLONG;
			pr_err("bpffs_dir %s: path too long\n", x->dir);
			goto err_destroy;
		}
		/* libbpf reuses a compatible pinned map, or pins the new one here. */
		err = bpf_map__set_pin_path(map, path);
		if (err) {
			pr_err("%s: set pin path: %s\n", path, strerror(-err));
			goto err_destroy;
		}
	}
	err = anygate_bpf__load(x->skel);
	if (err) {
		pr_err("loading the XDP program: %s (pinned maps under %s from an incompatible "
		       "build or size? remove them to start afresh)\n", strerror(-err), x->dir);
		goto err_destroy;
	}

	if (!bpf_map_lookup_elem(bpf_map__fd(x->skel->maps.ag_settings), &zero, &cur) &&
	    cur.abi_version && cur.abi_version != AG_ABI_VERSION) {
		pr_err("pinned maps under %s were written by ABI version %u, this anygated speaks "
		       "%u: remove them to start afresh\n", x->dir, cur.abi_version, AG_ABI_VERSION);
		err = -EPROTO;
		goto err_destroy;
	}
	if (cur.abi_version && cur.ring_size != edge->ring_size) {
		pr_err("pinned tables under %s use ring_size %u, config says %u\n", x->dir,
		       cur.ring_size, edge->ring_size);
		err = -EINVAL;
		goto err_destroy;
	}

	x->lookup = map_mmap(x->skel->maps.ag_lookup, &x->lookup_len);
	x->lstate = map_mmap(x->skel->maps.ag_lstate, &x->lstate_len);
	if (!x->lookup || !x->lstate) {
		err = -errno;
		pr_err("mmap of lookup tables: %s\n", strerror(errno));
		goto err_destroy;
	}
	pr_info("XDP program loaded, maps pinned under %s (lookup %u x %u, flows %u)\n", x->dir,
		AG_LOOKUP_SLOTS, edge->ring_size, edge->max_flows);
	return x;

err_destroy:
	ag_xdp__close(x);
	errno = -err;
	return NULL;
err_free:
	free(x);
	errno = -err;
	return NULL;
}

int ag_xdp__attach(struct ag_xdp *x, const struct ag_cfg_edge *edge)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
	int prog_fd = bpf_program__fd(x->skel->progs.anygate_xdp);
	unsigned int i;

	for (i = 0; i < edge->n_ifaces; i++) {
		const char *name = edge->ifaces[i].name;
		struct ag_xdp_link *l = &x->links[x->n_links];
		int ifindex = if_nametoindex(name);

		if (!ifindex) {
			pr_err("interface %s: %s\n", name, strerror(errno));
			goto err;
		}
		l->fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
		if (l->fd < 0) {
			int err = -errno;

			pr_err("attaching XDP in native mode to %s (ifindex %d): %s%s\n", name, ifindex,
			       strerror(-err),
			       err == -EBUSY || err == -EEXIST ? " (another XDP program is attached)"
			       : err == -EOPNOTSUPP ? " (driver has no native XDP)" : "");
			errno = -err;
			goto err;
		}
		l->ifindex = ifindex;
		snprintf(l->name, sizeof(l->name), "%s", name);
		x->n_links++;
		pr_info("XDP attached to %s (ifindex %d, native mode)\n", name, ifindex);
	}
	return 0;
err:
	{
		int err = -errno;

		ag_xdp__detach(x);
		return err ? err : -EINVAL;
	}
}

void ag_xdp__detach(struct ag_xdp *x)
{
	while (x->n_links) {
		struct ag_xdp_link *l = &x->links[--x->n_links];

		close(l->fd);
		pr_info("XDP detached from %s\n", l->name);
	}
}

void ag_xdp__unpin(struct ag_xdp *x)
{
	struct bpf_map *map;
	unsigned int i;

	if (!x || !x->skel)
		return;
	for (i = 0; (map = all_maps(x, i)); i++) {
		int err = bpf_map__unpin(map, NULL);

		if (err && err != -ENOENT)
			pr_warn("unpin %s: %s\n", bpf_map__name(map), strerror(-err));
	}
	pr_info("maps unpinned from %s\n", x->dir);
}

void ag_xdp__close(struct ag_xdp *x)
{
	if (!x)
		return;
	ag_xdp__detach(x);
	if (x->lookup)
		munmap(x->lookup, x->lookup_len);
	if (x->lstate)
		munmap(x->lstate, x->lstate_len);
	anygate_bpf__destroy(x->skel);
	free(x);
}

/* --- sink: how the publisher writes into the maps --- */

static int sink_settings(void *ctx, const struct ag_settings *s)
{
	struct ag_xdp *x = ctx;
	uint32_t zero = 0;

	return bpf_map_update_elem(bpf_map__fd(x->skel->maps.ag_settings), &zero, s, BPF_ANY)
		       ? -errno : 0;
}

/*
 * Replace a hash map's content: upsert every wanted entry, then delete the
 * keys that are no longer wanted. Readers see every key either old or new.
 */
static int replace_hash(int fd, size_t key_size, const void *keys, const void *vals,
			size_t val_size, unsigned int n, int (*cmp)(const void *, const void *))
{
	unsigned char cur[64], next[64], *stale = NULL;
	unsigned int i, n_stale = 0, cap = 0;
	void *probe = cur;
	int err = 0;

	for (i = 0; i < n; i++) {
		if (bpf_map_update_elem(fd, (const char *)keys + i * key_size,
					(const char *)vals + i * val_size, BPF_ANY))
			return -errno;
	}
	/* Collect keys not in the wanted set (keys are sorted for bsearch). */
	probe = NULL;
	while (!bpf_map_get_next_key(fd, probe, next)) {
		memcpy(cur, next, key_size);
		probe = cur;
		if (bsearch(cur, keys, n, key_size, cmp))
			continue;
		if (n_stale == cap) {
			unsigned char *grown;

			cap = cap ? cap * 2 : 64;
			grown = realloc(stale, (size_t)cap * key_size);
			if (!grown) {
				err = -ENOMEM;
				goto out;
			}
			stale = grown;
		}
		memcpy(stale + (size_t)n_stale++ * key_size, cur, key_size);
	}
	for (i = 0; i < n_stale; i++)
		bpf_map_delete_elem(fd, stale + (size_t)i * key_size);
out:
	free(stale);
	return err;
}

static int cmp_u32(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(uint32_t));
}

static int cmp_lkey(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ag_listener_key));
}

static int cmp_okey(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ag_port_ovr_key));
}

/* Sort keys (with their values) so stale keys can be found by bsearch. */
static int sorted_copy(const void *keys, const void *vals, size_t ks, size_t vs, unsigned int n,
		       int (*cmp)(const void *, const void *), void **okeys, void **ovals)
{
	size_t rec = ks + vs;
	unsigned char *tmp = malloc(rec * (n ? n : 1));
	unsigned char *k = malloc(ks * (n ? n : 1)), *v = malloc(vs * (n ? n : 1));
	unsigned int i;

	if (!tmp || !k || !v) {
		free(tmp);
		free(k);
		free(v);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		memcpy(tmp + i * rec, (const char *)keys + i * ks, ks);
		memcpy(tmp + i * rec + ks, (const char *)vals + i * vs, vs);
	}
	/* Key first in each record: comparing records by key is comparing keys. */
	qsort(tmp, n, rec, cmp);
	for (i = 0; i < n; i++) {
		memcpy(k + i * ks, tmp + i * rec, ks);
		memcpy(v + i * vs, tmp + i * rec + ks, vs);
	}
	free(tmp);
	*okeys = k;
	*ovals = v;
	return 0;
}

static int sink_vips(void *ctx, const uint32_t *vips, unsigned int n)
{
	struct ag_xdp *x = ctx;
	uint32_t *flags = calloc(n ? n : 1, sizeof(*flags));
	void *k, *v;
	int err;

	if (!flags)
		return -ENOMEM;
	err = sorted_copy(vips, flags, 4, 4, n, cmp_u32, &k, &v);
	free(flags);
	if (err)
		return err;
	err = replace_hash(bpf_map__fd(x->skel->maps.ag_vips), 4, k, v, 4, n, cmp_u32);
	free(k);
	free(v);
	return err;
}

static int sink_listener_keys(void *ctx, const struct ag_listener_key *keys, const uint32_t *ids,
			      unsigned int n)
{
	struct ag_xdp *x = ctx;
	void *k, *v;
	int err;

	err = sorted_copy(keys, ids, sizeof(*keys), 4, n, cmp_lkey, &k, &v);
	if (err)
		return err;
	err = replace_hash(bpf_map__fd(x->skel->maps.ag_listeners), sizeof(*keys), k, v, 4, n,
			   cmp_lkey);
	free(k);
	free(v);
	return err;
}

static int sink_port_overrides(void *ctx, const struct ag_port_ovr_key *keys,
			       const struct ag_port_ovr *vals, unsigned int n)
{
	struct ag_xdp *x = ctx;
	void *k, *v;
	int err;

	err = sorted_copy(keys, vals, sizeof(*keys), sizeof(*vals), n, cmp_okey, &k, &v);
	if (err)
		return err;
	err = replace_hash(bpf_map__fd(x->skel->maps.ag_port_ovr), sizeof(*keys), k, v,
			   sizeof(*vals), n, cmp_okey);
	free(k);
	free(v);
	return err;
}

static int sink_backend(void *ctx, uint32_t id, const struct ag_backend *b)
{
	struct ag_xdp *x = ctx;

	return bpf_map_update_elem(bpf_map__fd(x->skel->maps.ag_backends), &id, b, BPF_ANY)
		       ? -errno : 0;
}

static uint32_t *sink_lookup_slot(void *ctx, uint32_t slot)
{
	struct ag_xdp *x = ctx;

	return x->lookup + (size_t)slot * x->ring_size;
}

static struct ag_listener_state *sink_lstate(void *ctx, uint32_t lid)
{
	struct ag_xdp *x = ctx;

	return &x->lstate[lid];
}

static const struct ag_sink_ops xdp_sink_ops = {
	.settings = sink_settings,
	.vips = sink_vips,
	.listener_keys = sink_listener_keys,
	.port_overrides = sink_port_overrides,
	.backend = sink_backend,
	.lookup_slot = sink_lookup_slot,
	.lstate = sink_lstate,
};

const struct ag_sink_ops *ag_xdp__sink_ops(void)
{
	return &xdp_sink_ops;
}

/* --- counters --- */

static int sum_percpu(struct ag_xdp *x, struct bpf_map *map, uint32_t idx, uint64_t *out,
		      unsigned int n_u64)
{
	size_t vs = bpf_map__value_size(map);
	unsigned char *buf = calloc(x->ncpus, vs);
	int cpu, err = 0;
	unsigned int i;

	if (!buf)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(map), &idx, buf)) {
		err = -errno;
		goto out;
	}
	memset(out, 0, n_u64 * sizeof(*out));
	for (cpu = 0; cpu < x->ncpus; cpu++) {
		const uint64_t *v = (const uint64_t *)(buf + (size_t)cpu * vs);

		for (i = 0; i < n_u64; i++)
			out[i] += v[i];
	}
out:
	free(buf);
	return err;
}

int ag_xdp__listener_stats(struct ag_xdp *x, uint32_t lid, struct ag_traffic_stats *out)
{
	return sum_percpu(x, x->skel->maps.ag_lstats, lid, (uint64_t *)out, sizeof(*out) / 8);
}

int ag_xdp__backend_stats(struct ag_xdp *x, uint32_t id, struct ag_traffic_stats *out)
{
	return sum_percpu(x, x->skel->maps.ag_bstats, id, (uint64_t *)out, sizeof(*out) / 8);
}

int ag_xdp__reason_stats(struct ag_xdp *x, enum ag_reason r, struct ag_reason_stats *out)
{
	return sum_percpu(x, x->skel->maps.ag_rstats, r, (uint64_t *)out, sizeof(*out) / 8);
}

long ag_xdp__flow_count(struct ag_xdp *x)
{
	int fd = bpf_map__fd(x->skel->maps.ag_flows);
	struct ag_flow_key key, next;
	void *probe = NULL;
	long n = 0;

	while (!bpf_map_get_next_key(fd, probe, &next)) {
		key = next;
		probe = &key;
		n++;
	}
	return n;
}
