/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One record of the hash cross-check: hash_probe.bpf.c reads key and seed
 * from the packet and writes the BPF build's hashes back in place; the test
 * compares them with the user-space build of the same dataplane/core header.
 */
#ifndef AG_TEST_HASH_PROBE_H
#define AG_TEST_HASH_PROBE_H

#include <linux/types.h>

#include "abi.h"

struct ag_hash_probe_rec {
	struct ag_flow_key key; /* in */
	__u32 seed;		/* in */
	__u32 flow;		/* out: ag_hash__flow */
	__u32 source;		/* out: ag_hash__source */
	__u32 select_none;	/* out: ag_hash__select(AG_AFFINITY_NONE) */
	__u32 select_source;	/* out: ag_hash__select(AG_AFFINITY_SOURCE_IP) */
	__u32 nat;		/* out: ag_hash__nat */
	__u32 mix;		/* out: ag_hash__mix32(seed) */
	__u32 pad;
};
_Static_assert(sizeof(struct ag_hash_probe_rec) == 72, "probe record layout");

#endif /* AG_TEST_HASH_PROBE_H */
