/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: dataplane/core on any frame. ag_parse() must never read
 * outside [data, data_end) (the frame sits in a heap block of exactly its
 * length, so ASan sees the first byte past it) and must agree with the
 * reference parser below. On a frame it accepts, the rewrites the fast paths
 * make are applied in their order: the forward NAT (client -> backend), the
 * TTL decrement of the transmit, the reverse NAT (backend -> client). After
 * each, the IPv4 and TCP/UDP checksums are compared with sums computed from
 * scratch here, bytes outside the rewritten fields must be unchanged and the
 * frame must parse the same. A TCP frame is also answered with a RST and with
 * the SYN challenge, each checked as a fresh packet.
 *
 * Input: a HDR_LEN-byte header, then the frame.
 *   [0]      flags: F_FIX_CSUM makes both checksums valid before the rewrites
 *            (then each result must equal the recomputation exactly; otherwise
 *            the sums' residues must be kept, as an incremental update does),
 *            F_UDP_NO_CSUM zeroes a UDP checksum first ("no checksum": stays 0)
 *   [1..4]   SYN challenge cookie
 *   [5..16]  forward flow: NAT address, NAT port, backend address, backend port
 *   [17..28] reverse entry: VIP, VIP port, client address, client port
 * Addresses and ports are taken as they sit in the packet (network order).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "parse.h"
#include "csum.h"
#include "nat.h"
#include "flow.h"
#include "rst.h"
#include "fuzz.h"
#include "hygiene.h"

/* hygiene.h's table reads: no settings, and the frame's destination is the VIP. */
struct ag_tables {
	const struct ag_settings *s;
	__be32 vip;
};

static __always_inline int ag_tables__is_vip(struct ag_tables *t, __be32 addr)
{
	return addr == t->vip;
}

static __always_inline const struct ag_settings *ag_tables__settings(struct ag_tables *t)
{
	return t->s;
}

#define F_FIX_CSUM    0x01
#define F_UDP_NO_CSUM 0x02
#define HDR_LEN	      29

/* Frames start 2 bytes into their block, as NET_IP_ALIGN does: the IPv4 header is aligned. */
#define FRAME_OFF 2

static uint16_t rd16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static uint32_t rd32(const uint8_t *b)
{
	return (uint32_t)rd16(b) << 16 | rd16(b + 2);
}

static void wr16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

/* ---------- the reference: byte offsets, nothing of the core's structs ---------- */

struct ref {
	int reason;
	unsigned int vlans;
	size_t l3, l4;	  /* offsets of the IPv4 and L4 headers, 0 when not reached */
	size_t l4_len;	  /* bytes the L4 checksum covers: IP payload (TCP), UDP length */
	size_t csum_off;  /* offset of the L4 checksum */
	uint16_t tot_len; /* IPv4 total length */
	uint8_t proto;
};

/* ag_parse()'s contract (parse.h), read off the bytes. */
static int ref_parse(const uint8_t *f, size_t n, struct ref *r)
{
	size_t off = 14, ihl, l4_len;
	uint16_t type;

	memset(r, 0, sizeof(*r));
	if (n < 14)
		return r->reason = AG_R_DROP_TRUNC_ETH;
	type = rd16(f + 12);
	while ((type == 0x8100 || type == 0x88a8) && r->vlans < 2) {
		if (n < off + 4)
			return r->reason = AG_R_DROP_TRUNC_VLAN;
		type = rd16(f + off + 2);
		off += 4;
		r->vlans++;
	}
	if (r->vlans) /* a VLAN device's frame, not ours (hygiene.h) */
		return r->reason = AG_R_PASS_VLAN_TAGGED;
	if (type != 0x0800)
		return r->reason = AG_R_PASS_NOT_IPV4;
	if (n < off + 20)
		return r->reason = AG_R_DROP_TRUNC_IP;
	ihl = (size_t)(f[off] & 0xf) * 4;
	if (f[off] >> 4 != 4 || ihl < 20 || rd16(f + off + 2) < ihl)
		return r->reason = AG_R_DROP_BAD_IP;
	if (off + rd16(f + off + 2) > n)
		return r->reason = AG_R_DROP_TRUNC_IP;
	r->l3 = off;
	r->tot_len = rd16(f + off + 2);
	if (f[off + 9] != IPPROTO_TCP && f[off + 9] != IPPROTO_UDP)
		return r->reason = AG_R_PASS_NOT_L4;
	r->proto = f[off + 9];
	if (rd16(f + off + 6) & 0x3fff)
		return r->reason = AG_R_PASS_FRAGMENT;
	r->l4 = off + ihl;
	l4_len = r->tot_len - ihl;
	if (r->proto == IPPROTO_TCP) {
		if (l4_len < 20 || (size_t)(f[r->l4 + 12] >> 4) * 4 < 20 ||
		    (size_t)(f[r->l4 + 12] >> 4) * 4 > l4_len)
			return r->reason = AG_R_DROP_TRUNC_L4;
		r->l4_len = l4_len;
		r->csum_off = r->l4 + 16;
	} else {
		if (l4_len < 8 || rd16(f + r->l4 + 4) < 8 || rd16(f + r->l4 + 4) > l4_len)
			return r->reason = AG_R_DROP_TRUNC_L4;
		r->l4_len = rd16(f + r->l4 + 4);
		r->csum_off = r->l4 + 6;
	}
	return r->reason = AG_PARSE_OK;
}

/* Bytes as big-endian 16-bit words (an odd last byte is the high half), not folded. */
static uint64_t sum_bytes(const uint8_t *b, size_t n)
{
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		s += i & 1 ? b[i] : (uint64_t)b[i] << 8;
	return s;
}

/* End-around carry until 16 bits remain. */
static uint16_t fold(uint64_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* The IPv4 header's sum, its checksum field included: 0xffff when valid. */
static uint16_t ip_residue(const uint8_t *f, const struct ref *r)
{
	return fold(sum_bytes(f + r->l3, (size_t)(f[r->l3] & 0xf) * 4));
}

/* The L4 sum over pseudo header and segment, checksum field included. */
static uint16_t l4_residue(const uint8_t *f, const struct ref *r)
{
	uint64_t s = sum_bytes(f + r->l3 + 12, 8) + r->proto + r->l4_len;

	return fold(s + sum_bytes(f + r->l4, r->l4_len));
}

/* The checksum computed from scratch, as a sender would write it. */
static uint16_t ip_full(uint8_t *f, const struct ref *r)
{
	uint16_t keep = rd16(f + r->l3 + 10), c;

	wr16(f + r->l3 + 10, 0);
	c = (uint16_t)~ip_residue(f, r);
	wr16(f + r->l3 + 10, keep);
	return c;
}

static uint16_t l4_full(uint8_t *f, const struct ref *r)
{
	uint16_t keep = rd16(f + r->csum_off), c;

	wr16(f + r->csum_off, 0);
	c = (uint16_t)~l4_residue(f, r);
	wr16(f + r->csum_off, keep);
	/* RFC 768: a computed zero is sent as all ones, zero meaning "none". */
	if (r->proto == IPPROTO_UDP && !c)
		c = 0xffff;
	return c;
}

/* ---------- checks ---------- */

/*
 * Ingress hygiene (hygiene.h) on a header ag_parse() accepted, as a client's
 * first packet to a VIP: its reads are held to [data, data_end) as
 * ag_parse()'s are, its checksum verdict is the one the header's sum gives,
 * and nothing with a bad checksum is let through.
 */
static void check_hygiene(const struct ag_pkt *p, const uint8_t *f, const struct ref *r)
{
	struct ag_tables t = {.s = NULL, .vip = p->ip->daddr};
	const struct ag_iface ifc = {{0}, AG_ROLE_CLIENT | AG_ROLE_BACKEND, 0};
	int csum_ok = ag_hyg__csum_ok(p), v;

	CHECK(csum_ok == (ip_residue(f, r) == 0xffff));
	if ((f[r->l3] & 0xf) > 5)
		(void)ag_hyg__ip_options(p);
	v = ag_hyg__no_flow(&t, p, &ifc);
	CHECK(v == AG_HYG_OK || ag_reason__is_drop(v));
	CHECK(v != AG_HYG_OK || csum_ok);
}

/* ag_parse() agrees with the reference on the reason and on everything it promises. */
static void check_parse(const struct ag_pkt *p, int reason, const uint8_t *f, const struct ref *r)
{
	CHECK(reason == r->reason);
	CHECK(p->data == f);
	if (reason == AG_R_DROP_TRUNC_ETH)
		return;
	CHECK((const uint8_t *)p->eth == f);
	if (reason == AG_R_DROP_TRUNC_VLAN)
		return;
	CHECK(p->vlans == r->vlans);
	if (!r->l3)
		return;
	CHECK((const uint8_t *)p->ip == f + r->l3);
	CHECK(p->tot_len == r->tot_len);
	if (reason != AG_PARSE_OK)
		return;
	CHECK(p->proto == r->proto);
	CHECK((const uint8_t *)p->l4 == f + r->l4);
	CHECK(rd16((const uint8_t *)&p->sport) == rd16(f + r->l4));
	CHECK(rd16((const uint8_t *)&p->dport) == rd16(f + r->l4 + 2));
}

/* A frame being rewritten: the sums' residues before, and its bytes before each step. */
struct rewrite {
	uint8_t *f, *before;
	size_t n;
	const struct ref *r;
	uint16_t ip_res, l4_res;
	int fixed;    /* both checksums were made valid first */
	int udp_none; /* a UDP checksum of 0: "none" */
};

/*
 * Checksums after a rewrite: each sum keeps its residue (an incremental update
 * carries a wrong checksum along, it does not repair or spoil it), and a valid
 * one equals the recomputation to the bit. A UDP checksum of zero stays zero.
 */
static void check_csums(const struct rewrite *w)
{
	const struct ref *r = w->r;
	uint8_t *f = w->f;

	CHECK(ip_residue(f, r) == w->ip_res);
	if (w->fixed)
		CHECK(rd16(f + r->l3 + 10) == ip_full(f, r));
	if (w->udp_none) {
		CHECK(rd16(f + r->csum_off) == 0);
		return;
	}
	if (r->proto == IPPROTO_UDP)
		CHECK(rd16(f + r->csum_off) != 0);
	CHECK(l4_residue(f, r) == w->l4_res);
	if (w->fixed)
		CHECK(rd16(f + r->csum_off) == l4_full(f, r));
}

/* Bytes a rewrite may change: checksums, addresses, ports and (ttl) the TTL. */
static int rewritable(const struct ref *r, size_t i, int ttl)
{
	if (i >= r->l3 + 10 && i < r->l3 + 20)
		return 1;
	if (i >= r->l4 && i < r->l4 + 4)
		return 1;
	if (i == r->csum_off || i == r->csum_off + 1)
		return 1;
	return ttl && i == r->l3 + 8;
}

static void check_rest_unchanged(const uint8_t *before, const uint8_t *after, size_t n,
				 const struct ref *r, int ttl)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!rewritable(r, i, ttl))
			CHECK(before[i] == after[i]);
}

/* After a rewrite the frame parses as before: same layout, the new ports. */
static void check_reparse(uint8_t *f, size_t n, const struct ref *r)
{
	struct ag_pkt p;
	struct ref r2;
	int reason = ag_parse(&p, f, f + n);

	ref_parse(f, n, &r2);
	check_parse(&p, reason, f, &r2);
	CHECK(reason == AG_PARSE_OK && r2.l3 == r->l3 && r2.l4 == r->l4);
}

/* Set the IPv4 and L4 checksums right (F_FIX_CSUM), or the UDP one to "none". */
static void fix_csums(uint8_t *f, const struct ref *r, uint8_t flags)
{
	if (r->proto == IPPROTO_UDP && (flags & F_UDP_NO_CSUM))
		wr16(f + r->csum_off, 0);
	if (!(flags & F_FIX_CSUM))
		return;
	wr16(f + r->l3 + 10, ip_full(f, r));
	if (rd16(f + r->csum_off) || r->proto == IPPROTO_TCP)
		wr16(f + r->csum_off, l4_full(f, r));
}

/* A tuple of the input header (12 bytes: address, port, address, port) into a flow or entry. */
static void tuple_to(const uint8_t *t, __be32 *saddr, __be16 *sport, __be32 *daddr, __be16 *dport)
{
	memcpy(saddr, t, 4);
	memcpy(sport, t + 4, 2);
	memcpy(daddr, t + 6, 4);
	memcpy(dport, t + 10, 2);
}

/*
 * One NAT rewrite to tuple (forward: a flow from its source to its
 * destination; else a reverse entry from VIP to client), then its checks: the
 * new tuple, the checksums, nothing else changed, the same layout.
 */
static void nat_step(const struct rewrite *w, struct ag_pkt *p, const uint8_t *tuple, int forward)
{
	const struct ref *r = w->r;
	struct ag_nat_rev rev;
	struct ag_flow fl;

	memset(&fl, 0, sizeof(fl));
	memset(&rev, 0, sizeof(rev));
	memcpy(w->before, w->f, w->n);
	if (forward) {
		tuple_to(tuple, &fl.nat_addr.v4, &fl.nat_port, &fl.backend_addr.v4,
			 &fl.backend_port);
		CHECK(ag_nat__forward(p, &fl) == 0);
	} else {
		tuple_to(tuple, &rev.vip.v4, &rev.vip_port, &rev.client_addr.v4, &rev.client_port);
		CHECK(ag_nat__reverse(p, &rev) == 0);
	}
	CHECK(!memcmp(&p->sport, tuple + 4, 2) && !memcmp(&p->dport, tuple + 10, 2));
	CHECK(!memcmp(w->f + r->l3 + 12, tuple, 4) && !memcmp(w->f + r->l4, tuple + 4, 2));
	CHECK(!memcmp(w->f + r->l3 + 16, tuple + 6, 4) && !memcmp(w->f + r->l4 + 2, tuple + 10, 2));
	check_csums(w);
	check_rest_unchanged(w->before, w->f, w->n, r, 0);
	check_reparse(w->f, w->n, r);
}

/*
 * The fast paths' rewrites in their order: forward NAT, TTL decrement,
 * reverse NAT (on the same bytes: a reply is a packet like any other here).
 */
static void run_rewrites(uint8_t *f, size_t n, const struct ref *r, const uint8_t *hdr, int fixed)
{
	struct rewrite w = {
	    .f = f,
	    .n = n,
	    .r = r,
	    .ip_res = ip_residue(f, r),
	    .l4_res = l4_residue(f, r),
	    .fixed = fixed,
	    .udp_none = r->proto == IPPROTO_UDP && rd16(f + r->csum_off) == 0,
	};
	struct ag_pkt p;

	w.before = malloc(n);
	CHECK(w.before);
	CHECK(ag_parse(&p, f, f + n) == AG_PARSE_OK);

	nat_step(&w, &p, hdr + 5, 1);

	if (p.ip->ttl > 1) {
		memcpy(w.before, f, n);
		ag_ipv4__dec_ttl(p.ip);
		CHECK(f[r->l3 + 8] == w.before[r->l3 + 8] - 1);
		check_csums(&w);
		check_rest_unchanged(w.before, f, n, r, 1);
	}

	nat_step(&w, &p, hdr + 17, 0);
	free(w.before);
}

/*
 * A TCP answer built over the frame (ag_tcp__answer): a 40-byte IPv4 + TCP
 * packet from the segment's destination to its source, both checksums right.
 * Returns its TCP header offset, 0 when nothing was built.
 */
static size_t check_answer(uint8_t *f, size_t n, const struct ref *r, const uint8_t *orig, int len,
			   uint8_t want_flags)
{
	struct ag_pkt p;
	struct ref a;

	CHECK(len > 0 && (size_t)len <= n);
	CHECK(ag_parse(&p, f, f + len) == AG_PARSE_OK);
	ref_parse(f, (size_t)len, &a);
	CHECK(a.reason == AG_PARSE_OK && a.l3 == r->l3 && a.tot_len == 40 &&
	      a.proto == IPPROTO_TCP);
	CHECK((size_t)len == a.l3 + 40);
	CHECK(ip_residue(f, &a) == 0xffff && l4_residue(f, &a) == 0xffff);
	CHECK(!memcmp(f, orig + 6, 6) && !memcmp(f + 6, orig, 6));
	CHECK(!memcmp(f + a.l3 + 12, orig + r->l3 + 16, 4));
	CHECK(!memcmp(f + a.l3 + 16, orig + r->l3 + 12, 4));
	CHECK(rd16(f + a.l4) == rd16(orig + r->l4 + 2) && rd16(f + a.l4 + 2) == rd16(orig + r->l4));
	CHECK(f[a.l4 + 13] == want_flags);
	return a.l4;
}

/* The RST of RFC 9293 3.10.7.1 and the SYN challenge, each over a copy of the segment. */
static void run_answers(const uint8_t *orig, size_t n, const struct ref *r, const uint8_t *hdr)
{
	uint8_t *blk = malloc(n + FRAME_OFF), *f = blk + FRAME_OFF;
	uint8_t flags = orig[r->l4 + 13];
	struct ag_pkt p;
	size_t l4;
	int len;

	CHECK(blk);
	memcpy(f, orig, n);
	CHECK(ag_parse(&p, f, f + n) == AG_PARSE_OK);
	len = ag_tcp__make_rst(&p);
	if (flags & AG_TCPF_RST) {
		CHECK(len == -1);
	} else if (flags & AG_TCPF_ACK) {
		l4 = check_answer(f, n, r, orig, len, AG_TCPF_RST);
		CHECK(rd32(f + l4 + 4) == rd32(orig + r->l4 + 8) && rd32(f + l4 + 8) == 0);
	} else {
		uint32_t seg_len = r->tot_len - (uint32_t)(r->l4 - r->l3) -
				   (uint32_t)(orig[r->l4 + 12] >> 4) * 4 + !!(flags & AG_TCPF_SYN) +
				   !!(flags & AG_TCPF_FIN);

		l4 = check_answer(f, n, r, orig, len, AG_TCPF_RST | AG_TCPF_ACK);
		CHECK(rd32(f + l4 + 4) == 0);
		CHECK(rd32(f + l4 + 8) == rd32(orig + r->l4 + 4) + seg_len);
	}

	memcpy(f, orig, n);
	CHECK(ag_parse(&p, f, f + n) == AG_PARSE_OK);
	len = ag_tcp__make_syn_challenge(&p, rd32(hdr + 1));
	check_answer(f, n, r, orig, len, AG_TCPF_SYN | AG_TCPF_ACK);
	free(blk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *blk, *f, *orig = NULL;
	struct ag_pkt p;
	struct ref r;
	size_t n;
	int reason;

	if (size < HDR_LEN)
		return -1; /* not a useful input: keep it out of the corpus */
	n = size - HDR_LEN;
	blk = malloc(n + FRAME_OFF);
	CHECK(blk);
	f = blk + FRAME_OFF;
	memcpy(f, data + HDR_LEN, n);

	reason = ag_parse(&p, f, f + n);
	ref_parse(f, n, &r);
	check_parse(&p, reason, f, &r);
	if (reason != AG_PARSE_OK)
		goto out;
	/*
	 * Ingress hygiene (hygiene.h) on the header ag_parse() accepted: its
	 * reads are held to [data, data_end) as ag_parse()'s are, and its
	 * checksum verdict is the one the header's sum gives.
	 */
	check_hygiene(&p, f, &r);

	fix_csums(f, &r, data[0]);
	orig = malloc(n);
	CHECK(orig);
	memcpy(orig, f, n);
	run_rewrites(f, n, &r, data, !!(data[0] & F_FIX_CSUM));
	if (r.proto == IPPROTO_TCP)
		run_answers(orig, n, &r, data);
out:
	free(orig);
	free(blk);
	return 0;
}
