// SPDX-License-Identifier: BSD-3-Clause
/*
 * Runs dataplane/core/hash.h as compiled for BPF on records carried in the
 * packet (struct ag_hash_probe_rec), for test_hash.c to compare with the
 * user-space build. Only the hash header is exercised; the key is copied out
 * of the packet first, as anygate.bpf.c hashes a key on its stack.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "hash.h"
#include "hash_probe.h"

SEC("xdp")
int hash_probe(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ag_hash_probe_rec *r = data;
	struct ag_flow_key k;
	__u32 seed;

	if ((void *)(r + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(&k, &r->key, sizeof(k));
	seed = r->seed;
	r->flow = ag_hash__flow(&k, seed);
	r->source = ag_hash__source(&k, seed);
	r->select_none = ag_hash__select(&k, AG_AFFINITY_NONE, seed);
	r->select_source = ag_hash__select(&k, AG_AFFINITY_SOURCE_IP, seed);
	r->nat = ag_hash__nat(&k, seed);
	r->mix = ag_hash__mix32(seed);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
