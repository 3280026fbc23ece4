// SPDX-License-Identifier: BSD-3-Clause
/*
 * ag-flood's live-frames engine, run by BPF_PROG_TEST_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES: each run rewrites the whole frame from the
 * template (the pages come back modified by whoever received them), stamps a
 * fresh random source (flood.h) and returns XDP_TX, which test_run turns into
 * a transmit on the interface it was given.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "flood.h"

/* Written by ag-flood before the first run (skeleton .bss). */
__u8 tmpl[AG_FLOOD_FRAME_MAX];
__u32 tmpl_len;
__u32 src_base; /* first address of the source prefix, host order */
__u32 src_host; /* host bits of the prefix */
__u32 proto;	/* IPPROTO_TCP or IPPROTO_UDP */

/* Read back by ag-flood. */
__u64 stamped; /* frames stamped and handed to XDP_TX */
__u64 aborted; /* frames that could not be rewritten */

SEC("xdp")
int ag_flood(struct xdp_md *ctx)
{
	__u32 len = tmpl_len & (AG_FLOOD_FRAME_MAX - 1);
	struct ag_flood_rand r;
	void *data, *data_end;

	if (len < AG_FLOOD_STAMP_END || bpf_xdp_store_bytes(ctx, 0, tmpl, len))
		goto abort;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + AG_FLOOD_STAMP_END > data_end)
		goto abort;
	r.addr = bpf_get_prandom_u32();
	r.port = bpf_get_prandom_u32();
	r.seq = bpf_get_prandom_u32();
	ag_flood__stamp(data, proto == IPPROTO_TCP, src_base, src_host, &r);
	stamped++;
	return XDP_TX;
abort:
	aborted++;
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
