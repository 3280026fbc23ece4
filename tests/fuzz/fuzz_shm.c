/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the DPDK segment's header validation
 * (ag_shm__layout_check, controlplane/fastpath/shm_layout.c), the one
 * function both anygated and anygate-dp trust a segment through.
 *
 * Input: byte 0 picks the form, bytes 1-8 the mapped size.
 *   form even: a header this build makes (ring size from bytes 9-12), then
 *              the rest of the input as (offset, xor byte) pairs into it:
 *              one bad field at a time reaches every later check;
 *   form odd:  the rest of the input is the header as it is.
 * Whatever is accepted is checked against bounds computed here from the
 * layout alone: every region page-aligned, in order after the header, not
 * overlapping another, inside the mapping, with this build's entry sizes.
 * A header this build makes for a valid ring size must be accepted at its own
 * size and refused at any other.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "abi_shm.h"
#include "consts.h"
#include "fuzz.h"
#include "shm_layout.h"

#define PAGE 4096u

struct region {
	unsigned __int128 off, len;
};

static unsigned __int128 table_len(uint64_t cap, size_t entry)
{
	return (unsigned __int128)sizeof(struct ag_shm_table) + (unsigned __int128)cap * entry;
}

/* The regions an accepted layout promises, in the order they lie in the segment. */
static unsigned int regions(const struct ag_shm_layout *l, struct region *r)
{
	unsigned int n = 0, c;

	for (c = 0; c < 2; c++)
		r[n++] =
		    (struct region){l->off_settings[c], table_len(1, sizeof(struct ag_settings))};
	for (c = 0; c < 2; c++)
		r[n++] = (struct region){l->off_vips[c],
					 table_len(l->vip_cap, sizeof(struct ag_shm_vip))};
	for (c = 0; c < 2; c++)
		r[n++] = (struct region){l->off_lkeys[c],
					 table_len(l->lkey_cap, sizeof(struct ag_shm_lkey))};
	for (c = 0; c < 2; c++)
		r[n++] = (struct region){l->off_ovr[c],
					 table_len(l->ovr_cap, sizeof(struct ag_shm_ovr))};
	r[n++] = (struct region){l->off_lstate, (unsigned __int128)AG_MAX_LISTENERS *
						    sizeof(struct ag_listener_state)};
	r[n++] = (struct region){l->off_lookup, (unsigned __int128)l->lookup_buckets *
						    sizeof(struct ag_lookup_bucket)};
	r[n++] = (struct region){l->off_backends,
				 (unsigned __int128)AG_MAX_BACKENDS * sizeof(struct ag_backend)};
	r[n++] = (struct region){l->off_lanes, (unsigned __int128)l->lanes * l->lane_size};
	return n;
}

static int by_off(const void *a, const void *b)
{
	const struct region *x = a, *y = b;

	return (x->off > y->off) - (x->off < y->off);
}

static void check_accepted(const struct ag_shm_layout *l, size_t map_size)
{
	struct region r[16];
	unsigned __int128 end = sizeof(struct ag_shm_hdr);
	unsigned int i, n = regions(l, r);

	CHECK(l->map_size == map_size);
	CHECK(l->lanes == AG_SHM_LANES);
	CHECK(l->lane_size == sizeof(struct ag_shm_lane));
	CHECK(l->ring_size >= AG_RING_SIZE_MIN && l->ring_size <= AG_RING_SIZE_MAX);
	CHECK(l->lookup_buckets == AG_LOOKUP_BUCKETS(l->ring_size));
	qsort(r, n, sizeof(r[0]), by_off);
	for (i = 0; i < n; i++) {
		CHECK(r[i].off % PAGE == 0);
		CHECK(r[i].off >= end); /* after the header and the region before it */
		end = r[i].off + r[i].len;
		CHECK(end <= map_size);
	}
}

/* One call, on a private buffer of exactly the bytes the function may read. */
static int layout(const void *ident, size_t len, size_t map_size, struct ag_shm_layout *out)
{
	size_t have = len > sizeof(struct ag_shm_hdr) ? len : sizeof(struct ag_shm_hdr);
	unsigned char *buf = calloc(1, have);
	char why[128];
	int rc;

	CHECK(buf != NULL);
	memcpy(buf, ident, len);
	rc = ag_shm__layout_check(buf, map_size, out, why, sizeof(why));
	CHECK(rc == 0 || rc == -EPROTO);
	CHECK(rc == 0 || memchr(why, '\0', sizeof(why)));
	free(buf);
	return rc;
}

static uint64_t take_u64(const uint8_t *d, size_t n, size_t at)
{
	uint64_t v = 0;

	if (n >= at + sizeof(v))
		memcpy(&v, d + at, sizeof(v));
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ag_shm_layout out;
	struct ag_shm_ident id;
	size_t map_size, i;
	uint32_t ring = 0;

	if (size < 1)
		return 0;
	/* Mapped sizes from 0 to 64 GiB: larger ones only repeat the same arithmetic. */
	map_size = (size_t)(take_u64(data, size, 1) & ((1ull << 36) - 1));
	if (data[0] & 1) {
		if (size > 9 && !layout(data + 9, size - 9, map_size, &out))
			check_accepted(&out, map_size);
		return 0;
	}
	if (size >= 13)
		memcpy(&ring, data + 9, sizeof(ring));
	ring = AG_RING_SIZE_MIN + ring % (AG_RING_SIZE_MAX - AG_RING_SIZE_MIN + 1);
	ag_shm__layout_make(ring, &id);
	/* Untouched, it is accepted at its own size only. */
	CHECK(layout(&id, sizeof(id), id.total_size, &out) == 0);
	check_accepted(&out, id.total_size);
	if (map_size != id.total_size)
		CHECK(layout(&id, sizeof(id), map_size, &out) == -EPROTO);
	for (i = 13; i + 1 < size; i += 2)
		((unsigned char *)&id)[data[i] % sizeof(id)] ^= data[i + 1];
	if (!layout(&id, sizeof(id), id.total_size, &out))
		check_accepted(&out, id.total_size);
	return 0;
}
