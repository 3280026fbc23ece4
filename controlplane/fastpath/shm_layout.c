/* SPDX-License-Identifier: BSD-3-Clause */
#include "shm_layout.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t align_up(uint64_t v)
{
	return (v + AG_SHM_ALIGN - 1) / AG_SHM_ALIGN * AG_SHM_ALIGN;
}

static uint64_t table_bytes(uint32_t cap, size_t entry)
{
	return sizeof(struct ag_shm_table) + (uint64_t)cap * entry;
}

void ag_shm__layout_make(unsigned int ring_size, struct ag_shm_ident *id)
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
	id->settings_size = sizeof(struct ag_settings);
	id->vip_size = sizeof(struct ag_shm_vip);
	id->lkey_size = sizeof(struct ag_shm_lkey);
	id->ovr_size = sizeof(struct ag_shm_ovr);
	id->lstate_size = sizeof(struct ag_listener_state);
	id->bucket_size = sizeof(struct ag_lookup_bucket);
	id->backend_size = sizeof(struct ag_backend);
	id->table_size = sizeof(struct ag_shm_table);
	for (i = 0; i < 2; i++) {
		id->off_settings[i] = off;
		off = align_up(off + table_bytes(1, id->settings_size));
		id->off_vips[i] = off;
		off = align_up(off + table_bytes(id->vip_cap, id->vip_size));
		id->off_lkeys[i] = off;
		off = align_up(off + table_bytes(id->lkey_cap, id->lkey_size));
		id->off_ovr[i] = off;
		off = align_up(off + table_bytes(id->ovr_cap, id->ovr_size));
	}
	id->off_lstate = off;
	off = align_up(off + (uint64_t)AG_MAX_LISTENERS * id->lstate_size);
	id->off_lookup = off;
	off = align_up(off + (uint64_t)id->lookup_buckets * id->bucket_size);
	id->off_backends = off;
	off = align_up(off + (uint64_t)AG_MAX_BACKENDS * id->backend_size);
	id->off_lanes = off;
	off = align_up(off + (uint64_t)id->lanes * id->lane_size);
	id->total_size = off;
	id->magic = AG_SHM_MAGIC;
}

/* The check's state: the mapping's size, where the previous region ended, the reason. */
struct check {
	uint64_t size;
	uint64_t end;
	char *why;
	size_t why_len;
};

__attribute__((format(printf, 2, 3))) static int refuse(struct check *c, const char *fmt, ...)
{
	va_list ap;

	if (c->why_len) {
		va_start(ap, fmt);
		vsnprintf(c->why, c->why_len, fmt, ap);
		va_end(ap);
	}
	return -EPROTO;
}

/*
 * Region `name` at off: head bytes, then n entries of size bytes. It must
 * start on a page, after the previous region, and end within the mapping.
 */
static int region(struct check *c, const char *name, uint64_t off, uint64_t head, uint64_t n,
		  uint64_t size)
{
	uint64_t bytes, end;

	if (__builtin_mul_overflow(n, size, &bytes) || __builtin_add_overflow(bytes, head, &bytes))
		return refuse(c, "%s: %llu entries of %llu bytes overflow 64 bits", name,
			      (unsigned long long)n, (unsigned long long)size);
	if (off % AG_SHM_ALIGN)
		return refuse(c, "%s: offset %#llx is not on a %u-byte boundary", name,
			      (unsigned long long)off, AG_SHM_ALIGN);
	if (off < c->end)
		return refuse(c, "%s: offset %#llx overlaps what comes before it (up to %#llx)",
			      name, (unsigned long long)off, (unsigned long long)c->end);
	if (__builtin_add_overflow(off, bytes, &end) || end > c->size)
		return refuse(c, "%s: %llu bytes at offset %#llx end past the segment's %llu bytes",
			      name, (unsigned long long)bytes, (unsigned long long)off,
			      (unsigned long long)c->size);
	c->end = end;
	return 0;
}

/* A table's capacity: a power of two, at least this build's. */
static int capacity(struct check *c, const char *name, uint32_t cap, uint32_t min)
{
	if (cap < min || (cap & (cap - 1)))
		return refuse(c, "%s %u: must be a power of two, at least %u", name, cap, min);
	return 0;
}

#define ENTRY(c, id, field, type)                                                                  \
	((id)->field == sizeof(type)                                                               \
	     ? 0                                                                                   \
	     : refuse(c, #field " %u: this build's " #type " is %zu bytes", (id)->field,           \
		      sizeof(type)))

/* What the file is: an anygate segment of this layout and ABI, as big as it says. */
static int check_identity(struct check *c, const struct ag_shm_ident *id)
{
	if (id->magic != AG_SHM_MAGIC)
		return refuse(c, "not an anygate segment (magic %#x)", id->magic);
	if (id->layout_version != AG_SHM_LAYOUT_VERSION || id->abi_version != AG_ABI_VERSION)
		return refuse(c,
			      "written by segment layout %u, ABI %u; this build speaks layout %u, "
			      "ABI %u",
			      id->layout_version, id->abi_version, AG_SHM_LAYOUT_VERSION,
			      AG_ABI_VERSION);
	if (id->hdr_size != sizeof(struct ag_shm_hdr))
		return refuse(c, "hdr_size %u: this build's header is %zu bytes", id->hdr_size,
			      sizeof(struct ag_shm_hdr));
	if (id->total_size != c->size)
		return refuse(c, "total_size %llu: the segment is %llu bytes (truncated?)",
			      (unsigned long long)id->total_size, (unsigned long long)c->size);
	return 0;
}

/*
 * What this build reads in it: its entry sizes, lanes, capacities (after the
 * regions: a region's bounds hold whatever these say, this is compatibility).
 */
static int check_build(struct check *c, const struct ag_shm_ident *id)
{
	if (id->ring_size < AG_RING_SIZE_MIN || id->ring_size > AG_RING_SIZE_MAX)
		return refuse(c, "ring_size %u: outside %u-%u", id->ring_size, AG_RING_SIZE_MIN,
			      AG_RING_SIZE_MAX);
	if (id->lookup_buckets != AG_LOOKUP_BUCKETS(id->ring_size))
		return refuse(c, "lookup_buckets %u: ring_size %u needs %u", id->lookup_buckets,
			      id->ring_size, AG_LOOKUP_BUCKETS(id->ring_size));
	if (id->lanes != AG_SHM_LANES)
		return refuse(c, "lanes %u: this build counts into %u", id->lanes, AG_SHM_LANES);
	if (id->lane_size != sizeof(struct ag_shm_lane))
		return refuse(c, "lane_size %llu: this build's lane is %zu bytes",
			      (unsigned long long)id->lane_size, sizeof(struct ag_shm_lane));
	return ENTRY(c, id, settings_size, struct ag_settings) ?:
	       ENTRY(c, id, vip_size, struct ag_shm_vip) ?:
	       ENTRY(c, id, lkey_size, struct ag_shm_lkey) ?:
	       ENTRY(c, id, ovr_size, struct ag_shm_ovr) ?:
	       ENTRY(c, id, lstate_size, struct ag_listener_state) ?:
	       ENTRY(c, id, bucket_size, struct ag_lookup_bucket) ?:
	       ENTRY(c, id, backend_size, struct ag_backend) ?:
	       ENTRY(c, id, table_size, struct ag_shm_table) ?:
	       capacity(c, "vip_cap", id->vip_cap, AG_SHM_VIP_CAP) ?:
	       capacity(c, "lkey_cap", id->lkey_cap, AG_SHM_LKEY_CAP) ?:
	       capacity(c, "ovr_cap", id->ovr_cap, AG_SHM_OVR_CAP);
}

/* Every region, in the order the creator lays them out (ag_shm__layout_make). */
static int check_regions(struct check *c, const struct ag_shm_ident *id)
{
	static const char *const names[2][4] = {
	    {"off_settings[0]", "off_vips[0]", "off_lkeys[0]", "off_ovr[0]"},
	    {"off_settings[1]", "off_vips[1]", "off_lkeys[1]", "off_ovr[1]"},
	};
	const uint64_t head = id->table_size;
	int i, err;

	c->end = sizeof(struct ag_shm_hdr);
	for (i = 0; i < 2; i++) {
		err = region(c, names[i][0], id->off_settings[i], head, 1, id->settings_size) ?:
		      region(c, names[i][1], id->off_vips[i], head, id->vip_cap, id->vip_size) ?:
		      region(c, names[i][2], id->off_lkeys[i], head, id->lkey_cap, id->lkey_size) ?:
		      region(c, names[i][3], id->off_ovr[i], head, id->ovr_cap, id->ovr_size);
		if (err)
			return err;
	}
	return region(c, "off_lstate", id->off_lstate, 0, AG_MAX_LISTENERS, id->lstate_size) ?:
	       region(c, "off_lookup", id->off_lookup, 0, id->lookup_buckets, id->bucket_size) ?:
	       region(c, "off_backends", id->off_backends, 0, AG_MAX_BACKENDS, id->backend_size) ?:
	       region(c, "off_lanes", id->off_lanes, 0, id->lanes, id->lane_size);
}

static void fill(struct ag_shm_layout *out, const struct ag_shm_ident *id)
{
	memset(out, 0, sizeof(*out));
	out->map_size = id->total_size;
	out->ring_size = id->ring_size;
	out->lanes = id->lanes;
	out->lkey_cap = id->lkey_cap;
	out->vip_cap = id->vip_cap;
	out->ovr_cap = id->ovr_cap;
	out->lookup_buckets = id->lookup_buckets;
	out->lane_size = id->lane_size;
	memcpy(out->off_settings, id->off_settings, sizeof(out->off_settings));
	memcpy(out->off_vips, id->off_vips, sizeof(out->off_vips));
	memcpy(out->off_lkeys, id->off_lkeys, sizeof(out->off_lkeys));
	memcpy(out->off_ovr, id->off_ovr, sizeof(out->off_ovr));
	out->off_lstate = id->off_lstate;
	out->off_lookup = id->off_lookup;
	out->off_backends = id->off_backends;
	out->off_lanes = id->off_lanes;
}

int ag_shm__layout_check(const void *hdr, size_t map_size, struct ag_shm_layout *out, char *why,
			 size_t why_len)
{
	struct check c = {.size = map_size, .why = why, .why_len = why_len};
	struct ag_shm_ident id;
	int err;

	if (why_len)
		why[0] = 0;
	if (map_size < sizeof(struct ag_shm_hdr))
		return refuse(&c, "%zu bytes, too small for an anygate segment's %zu-byte header",
			      map_size, sizeof(struct ag_shm_hdr));
	/* The one read of the identity: everything below looks at this copy. */
	memcpy(&id, hdr, sizeof(id));
	err = check_identity(&c, &id) ?: check_regions(&c, &id) ?: check_build(&c, &id);
	if (err)
		return err;
	fill(out, &id);
	return 0;
}
