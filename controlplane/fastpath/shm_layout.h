/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The segment's identity, validated (abi_shm.h, "Trust"): one pure function
 * that both processes call before they believe a segment, and that the fuzz
 * target (tests/fuzz) calls on arbitrary bytes. No I/O, no allocation, no
 * state: libc only for memcpy and snprintf (the reason it gives).
 */
#ifndef AG_SHM_LAYOUT_H
#define AG_SHM_LAYOUT_H

#include <stddef.h>

#include "abi_shm.h"

/*
 * hdr: the segment's first bytes (map_size >= sizeof(struct ag_shm_hdr), or
 * refused before anything is read); only its sizeof(struct ag_shm_ident)
 * bytes are read, once, into a private copy. map_size: the bytes the caller
 * has mapped or will map (the file's size). On success fills *out (the only
 * thing to use afterwards) and returns 0. Otherwise -EPROTO (not a segment,
 * other layout or ABI version, a field out of bounds) with why (why_len
 * bytes, may be 0) naming the field and its value.
 *
 * Checked, in order. The file: magic, versions, header size, total_size ==
 * map_size. Its regions (the bounds everything later relies on): each table
 * copy, lstate, lookup, backends, lanes page-aligned, after the previous one
 * (the header first: no overlap) and ending within map_size, sizes (count x
 * entry size + head) computed with overflow checks. This build's reading of
 * it: ring_size within the config's bounds and lookup_buckets its
 * AG_LOOKUP_BUCKETS, lanes == AG_SHM_LANES, every entry size == this build's
 * sizeof, every capacity a power of two no smaller than this build's (so the
 * load the writer keeps <= 1/2 holds for every table the config allows).
 */
int ag_shm__layout_check(const void *hdr, size_t map_size, struct ag_shm_layout *out, char *why,
			 size_t why_len);

/* The identity this build creates for ring_size (ring_size within the config's bounds). */
void ag_shm__layout_make(unsigned int ring_size, struct ag_shm_ident *id);

#endif /* AG_SHM_LAYOUT_H */
