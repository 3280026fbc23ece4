// SPDX-License-Identifier: BSD-3-Clause
/*
 * Benchmark harness for BPF_PROG_TEST_RUN with repeat > 1. test_run does not
 * reset the packet between repeats, so a rewriting program would see its own
 * output from the second repeat on. bench_wrap restores the input frame every
 * iteration (and, for the new-flow case, stamps a fresh source address/port
 * into it), then tail-calls the program under test. Every case, the floor
 * included, goes through the same wrapper, so differences are apples to
 * apples; bench_tx measures the wrapper itself.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#define BENCH_PKT_MAX 256

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target SEC(".maps");

/* Written by user space before each case (skeleton .bss). */
__u8 pkt[BENCH_PKT_MAX];
__u32 pkt_len;
__u32 vary_flow; /* 1: every iteration gets its own source address:port */
__u32 saddr_off; /* offset of the IPv4 source address in pkt */
__u32 sport_off; /* offset of the L4 source port in pkt */
__u32 vary_base; /* first source address, host order */

/* Read back by user space. */
__u64 iter;	  /* wrapper runs */
__u64 tail_fail;  /* tail calls that fell through */
__u64 floor_runs; /* bench_macswap runs */
__u64 tx_runs;	  /* bench_tx runs */

/*
 * The IPv4 header checksum of the template in pkt with source address a
 * (host order), summed in full: the header is at saddr_off - 12.
 */
static __always_inline __be16 ip_check(__u32 a)
{
	__u32 off = (saddr_off - 12) & 0x7f, sum = 0, i;

	for (i = 0; i < 20; i += 2) {
		if (i == 10) /* the checksum itself */
			continue;
		if (i == 12)
			sum += a >> 16;
		else if (i == 14)
			sum += a & 0xffff;
		else
			sum += (__u32)pkt[(off + i) & 0xff] << 8 | pkt[(off + i + 1) & 0xff];
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return __builtin_bswap16((__u16)~sum);
}

SEC("xdp")
int bench_wrap(struct xdp_md *ctx)
{
	__u32 len = pkt_len & (BENCH_PKT_MAX - 1);
	__u64 n = iter++;

	if (len < ETH_HLEN)
		return XDP_ABORTED;
	if (bpf_xdp_store_bytes(ctx, 0, pkt, len))
		return XDP_ABORTED;
	if (vary_flow) {
		/*
		 * 2^15 ports per address, so flows stay distinct across runs; never
		 * port 0, and the IPv4 header checksum kept right: the program
		 * drops both (ingress hygiene).
		 */
		__u32 a = vary_base + (__u32)(n >> 15);
		__be32 saddr = __builtin_bswap32(a);
		__be16 sport = __builtin_bswap16((__u16)(0x8000 | (n & 0x7fff)));
		__be16 check = ip_check(a);

		if (bpf_xdp_store_bytes(ctx, saddr_off & 0xff, &saddr, sizeof(saddr)) ||
		    bpf_xdp_store_bytes(ctx, sport_off & 0xff, &sport, sizeof(sport)) ||
		    bpf_xdp_store_bytes(ctx, (saddr_off - 2) & 0xff, &check, sizeof(check)))
			return XDP_ABORTED;
	}
	bpf_tail_call(ctx, &bench_target, 0);
	tail_fail++;
	return XDP_ABORTED;
}

/* The floor: what any XDP forwarder costs at least (touch the frame, TX). */
SEC("xdp")
int bench_macswap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	floor_runs++;
	return XDP_TX;
}

/* Wrapper cost alone: restore + tail call into a program that does nothing. */
SEC("xdp")
int bench_tx(struct xdp_md *ctx)
{
	tx_runs++;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
