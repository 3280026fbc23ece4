/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ag-flood's frame: the template's layout and the per-frame stamp, one copy
 * for both engines (flood.bpf.c under BPF_PROG_TEST_RUN live frames, and
 * ag-flood.c's AF_PACKET sender). Byte-wise on purpose: the same code is
 * right in BPF and in user space, whatever the host's byte order.
 *
 * The template carries every stamped field as 0 (source address, source port,
 * TCP sequence number), with both checksums computed that way; the stamp adds
 * the new values to them (RFC 1624, the old values being 0) instead of summing
 * the headers again.
 */
#ifndef AG_FLOOD_H
#define AG_FLOOD_H

#include <linux/types.h>

#define AG_FLOOD_FRAME_MAX 128 /* room for the template (a power of two: BPF masks with it) */
#define AG_FLOOD_L3	   14  /* Ethernet II, no VLAN */
#define AG_FLOOD_L4	   34  /* IPv4 without options */
#define AG_FLOOD_TCP_HLEN  24  /* with an MSS option */
#define AG_FLOOD_UDP_DATA  18  /* a 60-byte UDP frame, Ethernet's minimum without FCS */
#define AG_FLOOD_STAMP_END (AG_FLOOD_L4 + 20) /* the stamp touches bytes below this */

/* Random bits for one frame. */
struct ag_flood_rand {
	__u32 addr;
	__u32 port;
	__u32 seq;
};

/* ~(~csum + add), folded: the checksum once fields that were 0 sum to `add`. */
static inline __u16 ag_flood__csum_add(__u16 csum, __u32 add)
{
	__u32 sum = (__u16)~csum + add;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static inline __u16 ag_flood__get16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

static inline void ag_flood__put16(__u8 *p, __u16 v)
{
	p[0] = (__u8)(v >> 8);
	p[1] = (__u8)v;
}

/*
 * Stamp frame f (a copy of the template, at least AG_FLOOD_STAMP_END bytes):
 * source address base | (r->addr & host), a source port in 1024-65535 and, for
 * TCP, a random sequence number; both checksums follow.
 */
static inline void ag_flood__stamp(__u8 *f, int tcp, __u32 base, __u32 host,
				   const struct ag_flood_rand *r)
{
	__u8 *ip = f + AG_FLOOD_L3, *l4 = f + AG_FLOOD_L4;
	__u32 saddr = base | (r->addr & host);
	__u16 sport = (__u16)(1024 + r->port % (65536 - 1024));
	__u32 add = (saddr >> 16) + (saddr & 0xffff); /* the address, in the pseudo-header too */
	__u16 check;

	ag_flood__put16(ip + 12, (__u16)(saddr >> 16));
	ag_flood__put16(ip + 14, (__u16)saddr);
	ag_flood__put16(ip + 10, ag_flood__csum_add(ag_flood__get16(ip + 10), add));
	ag_flood__put16(l4, sport);
	add += sport;
	if (tcp) {
		ag_flood__put16(l4 + 4, (__u16)(r->seq >> 16));
		ag_flood__put16(l4 + 6, (__u16)r->seq);
		add += (r->seq >> 16) + (r->seq & 0xffff);
		ag_flood__put16(l4 + 16, ag_flood__csum_add(ag_flood__get16(l4 + 16), add));
	} else {
		check = ag_flood__csum_add(ag_flood__get16(l4 + 6), add);
		ag_flood__put16(l4 + 6, check ? check : 0xffff); /* 0 would mean "none" */
	}
}

#endif /* AG_FLOOD_H */
