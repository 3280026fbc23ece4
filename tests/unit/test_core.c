/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dataplane/core compiled for user space: parsing of good and bad frames,
 * incremental checksums and NAT rewrites against checksums recomputed from
 * scratch by the routines in this file, the flow hash against a reference
 * lookup3 written here (and IPv4 vectors of the 16-byte-key core), its
 * spread on even source ports, and the small flow helpers; the TCP rules
 * (valid flags as conntrack's table, state bits, timeouts), the new-flow
 * budget, and the SYN challenge (cookie, ACK, the SYN-ACK's every field).
 * Inputs come from a fixed xorshift PRNG: every run checks the same cases
 * and a failure reproduces.
 *
 * Frames are built byte by byte here (not with the core's structs) and copied
 * into heap buffers of exactly their length, so ASan reports any read past
 * data_end. The frame starts 2 bytes into a malloc'd block, as NET_IP_ALIGN
 * does, so the IPv4 header is 4-byte aligned (UBSan checks alignment).
 */
#include <CUnit/Basic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "parse.h"
#include "hash.h"
#include "csum.h"
#include "nat.h"
#include "flow.h"
#include "rst.h"
#include "hygiene.h"

#include "cu_main.h"

static uint32_t rng_state;

static void rng_seed(uint32_t s)
{
	rng_state = s ? s : 1;
}

static uint32_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* ---------- frame builder, independent of the core ---------- */

static void put16(uint8_t *b, size_t off, uint16_t v)
{
	b[off] = v >> 8;
	b[off + 1] = v & 0xff;
}

static void put32(uint8_t *b, size_t off, uint32_t v)
{
	put16(b, off, v >> 16);
	put16(b, off + 2, v & 0xffff);
}

static uint16_t get16(const uint8_t *b, size_t off)
{
	return (uint16_t)(b[off] << 8 | b[off + 1]);
}

/* RFC 1071, the plain way: big-endian 16-bit words, odd byte padded, end-around carry. */
static uint32_t ref_sum(const uint8_t *b, size_t n, uint32_t acc)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		acc += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		acc += (uint32_t)b[n - 1] << 8;
	return acc;
}

static uint16_t ref_fold(uint32_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)acc;
}

struct spec {
	unsigned int vlans; /* tags, outer first */
	uint16_t tpid[3];
	uint8_t ihl; /* 5..15; option bytes are NOPs */
	uint8_t proto;
	uint32_t saddr, daddr; /* host order */
	uint16_t sport, dport;
	uint16_t frag_off; /* flags + offset, host order */
	uint8_t ttl;
	uint8_t doff; /* TCP */
	size_t payload;
	uint32_t payload_seed;
	int udp_no_csum;       /* UDP checksum 0 ("none") */
	uint16_t payload_word; /* when payload >= 2: first two payload bytes (big-endian) */
	int set_payload_word;
};

struct frame {
	uint8_t *block; /* malloc'd: 2 alignment bytes + len */
	uint8_t *b;
	size_t len;
	size_t l3, l4; /* offsets */
};

static void spec_default(struct spec *s, uint8_t proto)
{
	memset(s, 0, sizeof(*s));
	s->ihl = 5;
	s->proto = proto;
	s->saddr = 0x0a000002; /* 10.0.0.2 */
	s->daddr = 0xc633640a; /* 198.51.100.10 */
	s->sport = 40000;
	s->dport = 80;
	s->ttl = 64;
	s->doff = 5;
	s->payload = 10;
	s->payload_seed = 7;
}

static size_t l4_hdr_len(const struct spec *s)
{
	if (s->proto == IPPROTO_TCP)
		return (size_t)s->doff * 4;
	if (s->proto == IPPROTO_UDP)
		return 8;
	return 8; /* ICMP echo header, unchecked */
}

/* Correct IPv4 and L4 checksums of the frame at b (layout from s). */
static void fix_checksums(uint8_t *b, size_t l3, const struct spec *s)
{
	size_t ip_len = (size_t)s->ihl * 4;
	size_t l4 = l3 + ip_len;
	size_t l4_len = get16(b, l3 + 2) - ip_len;
	uint32_t acc;
	uint16_t c;

	put16(b, l3 + 10, 0);
	put16(b, l3 + 10, (uint16_t)~ref_fold(ref_sum(b + l3, ip_len, 0)));
	if ((s->frag_off & 0x1fff) || (s->proto != IPPROTO_TCP && s->proto != IPPROTO_UDP))
		return;
	if (s->proto == IPPROTO_UDP && s->udp_no_csum) {
		put16(b, l4 + 6, 0);
		return;
	}
	put16(b, l4 + (s->proto == IPPROTO_TCP ? 16 : 6), 0);
	acc = ref_sum(b + l3 + 12, 8, 0); /* saddr, daddr */
	acc += s->proto;
	acc += (uint32_t)l4_len;
	acc = ref_sum(b + l4, l4_len, acc);
	c = (uint16_t)~ref_fold(acc);
	if (s->proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	put16(b, l4 + (s->proto == IPPROTO_TCP ? 16 : 6), c);
}

static void frame_build(struct frame *f, const struct spec *s)
{
	size_t ip_len = (size_t)s->ihl * 4, l4h = l4_hdr_len(s), off, i;
	uint32_t pr = s->payload_seed;
	uint8_t *b;

	f->len = 14 + 4 * s->vlans + ip_len + l4h + s->payload;
	f->block = malloc(f->len + 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->block);
	b = f->b = f->block + 2;
	memset(b, 0, f->len);

	for (i = 0; i < 6; i++) {
		b[i] = 0x02;	 /* dst MAC 02:..:01 */
		b[6 + i] = 0x02; /* src MAC 02:..:02 */
	}
	b[5] = 1;
	b[11] = 2;
	off = 12;
	for (i = 0; i < s->vlans; i++) {
		put16(b, off, s->tpid[i]);
		put16(b, off + 2, (uint16_t)(100 + i));
		off += 4;
	}
	put16(b, off, 0x0800);
	off += 2;

	f->l3 = off;
	b[off] = (uint8_t)(0x40 | s->ihl);
	b[off + 1] = 0;
	put16(b, off + 2, (uint16_t)(ip_len + l4h + s->payload));
	put16(b, off + 4, 0x1234);
	put16(b, off + 6, s->frag_off);
	b[off + 8] = s->ttl;
	b[off + 9] = s->proto;
	put32(b, off + 12, s->saddr);
	put32(b, off + 16, s->daddr);
	for (i = 20; i < ip_len; i++)
		b[off + i] = 1; /* NOP options */

	f->l4 = off + ip_len;
	off = f->l4;
	if (s->proto == IPPROTO_TCP) {
		put16(b, off, s->sport);
		put16(b, off + 2, s->dport);
		put32(b, off + 4, 0x01020304);
		put32(b, off + 8, 0x0a0b0c0d);
		b[off + 12] = (uint8_t)(s->doff << 4);
		b[off + 13] = 0x18; /* PSH ACK */
		put16(b, off + 14, 64240);
		for (i = 20; i < l4h; i++)
			b[off + i] = 1;
	} else if (s->proto == IPPROTO_UDP) {
		put16(b, off, s->sport);
		put16(b, off + 2, s->dport);
		put16(b, off + 4, (uint16_t)(8 + s->payload));
	} else {
		b[off] = 8; /* ICMP echo request */
	}
	off += l4h;
	for (i = 0; i < s->payload; i++) {
		pr = pr * 1103515245u + 12345u;
		b[off + i] = (uint8_t)(pr >> 16);
	}
	if (s->set_payload_word && s->payload >= 2)
		put16(b, off, s->payload_word);
	fix_checksums(b, f->l3, s);
}

static void frame_free(struct frame *f)
{
	free(f->block);
	f->block = NULL;
	f->b = NULL;
}

/* Keep only the first len bytes, in a buffer of exactly that size (ASan sees overreads). */
static void frame_truncate(struct frame *f, size_t len)
{
	uint8_t *nb = malloc(len + 2);

	CU_ASSERT_PTR_NOT_NULL_FATAL(nb);
	memcpy(nb + 2, f->b, len);
	free(f->block);
	f->block = nb;
	f->b = nb + 2;
	f->len = len;
}

static int parse_frame(struct frame *f, struct ag_pkt *p)
{
	return ag_parse(p, f->b, f->b + f->len);
}

/* ---------- parsing ---------- */

static void check_good(const struct spec *s)
{
	struct ag_pkt p;
	struct frame f;

	frame_build(&f, s);
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	CU_ASSERT_PTR_EQUAL(p.eth, f.b);
	CU_ASSERT_PTR_EQUAL(p.ip, f.b + f.l3);
	CU_ASSERT_PTR_EQUAL(p.l4, f.b + f.l4);
	CU_ASSERT_EQUAL(p.vlans, s->vlans);
	CU_ASSERT_EQUAL(p.proto, s->proto);
	CU_ASSERT_EQUAL(ag_ntohs(p.sport), s->sport);
	CU_ASSERT_EQUAL(ag_ntohs(p.dport), s->dport);
	CU_ASSERT_EQUAL(p.tot_len, f.len - f.l3);
	frame_free(&f);
}

static void test_parse_good(void)
{
	struct spec s;
	struct ag_pkt p;
	struct frame f;

	spec_default(&s, IPPROTO_TCP);
	check_good(&s);
	spec_default(&s, IPPROTO_UDP);
	check_good(&s);

	/* 802.1Q, and 802.1ad outer + 802.1Q inner: never forwarded (issue 10), tags counted */
	spec_default(&s, IPPROTO_TCP);
	s.vlans = 1;
	s.tpid[0] = 0x8100;
	frame_build(&f, &s);
	CU_ASSERT_EQUAL(parse_frame(&f, &p), AG_R_PASS_VLAN_TAGGED);
	CU_ASSERT_EQUAL(p.vlans, 1);
	frame_free(&f);
	s.vlans = 2;
	s.tpid[0] = 0x88a8;
	s.tpid[1] = 0x8100;
	frame_build(&f, &s);
	CU_ASSERT_EQUAL(parse_frame(&f, &p), AG_R_PASS_VLAN_TAGGED);
	CU_ASSERT_EQUAL(p.vlans, 2);
	frame_free(&f);

	/* IP options skipped by ihl; TCP options by doff */
	spec_default(&s, IPPROTO_UDP);
	s.ihl = 15;
	check_good(&s);
	spec_default(&s, IPPROTO_TCP);
	s.ihl = 6;
	s.doff = 15;
	s.payload = 0;
	check_good(&s);

	/* DF alone is not a fragment */
	spec_default(&s, IPPROTO_TCP);
	s.frag_off = 0x4000;
	check_good(&s);

	/* Ethernet padding after tot_len: a 60-byte minimum frame with a short UDP packet */
	spec_default(&s, IPPROTO_UDP);
	s.payload = 0;
	frame_build(&f, &s);
	{
		uint8_t *nb = calloc(1, 60 + 2);

		CU_ASSERT_PTR_NOT_NULL_FATAL(nb);
		memcpy(nb + 2, f.b, f.len);
		free(f.block);
		f.block = nb;
		f.b = nb + 2;
		f.len = 60;
	}
	CU_ASSERT_EQUAL(parse_frame(&f, &p), AG_PARSE_OK);
	CU_ASSERT_EQUAL(p.tot_len, 28);
	frame_free(&f);
}

enum mutation {
	MUT_NONE,
	MUT_TRUNCATE,	   /* keep arg bytes */
	MUT_BYTE,	   /* byte at l3 + arg2 := arg */
	MUT_TOT_LEN,	   /* tot_len := arg, frame cut to it */
	MUT_TOT_LEN_FIELD, /* tot_len := arg, frame unchanged */
	MUT_L4_BYTE,	   /* byte at l4 + arg2 := arg */
	MUT_L4_WORD,	   /* word at l4 + arg2 := arg */
	MUT_ETHERTYPE,	   /* last ethertype := arg */
};

struct bad_case {
	const char *what;
	uint8_t proto;
	unsigned int vlans;
	uint16_t frag_off;
	enum mutation mut;
	size_t arg;
	size_t arg2;
	int reason;
};

static const struct bad_case bad_cases[] = {
    {"13-byte frame", IPPROTO_TCP, 0, 0, MUT_TRUNCATE, 13, 0, AG_R_DROP_TRUNC_ETH},
    {"empty frame", IPPROTO_TCP, 0, 0, MUT_TRUNCATE, 0, 0, AG_R_DROP_TRUNC_ETH},
    {"802.1Q tag cut", IPPROTO_TCP, 1, 0, MUT_TRUNCATE, 16, 0, AG_R_DROP_TRUNC_VLAN},
    {"inner tag cut", IPPROTO_TCP, 2, 0, MUT_TRUNCATE, 20, 0, AG_R_DROP_TRUNC_VLAN},
    {"three tags", IPPROTO_TCP, 3, 0, MUT_NONE, 0, 0, AG_R_PASS_VLAN_TAGGED},
    {"802.1Q tagged TCP", IPPROTO_TCP, 1, 0, MUT_NONE, 0, 0, AG_R_PASS_VLAN_TAGGED},
    {"QinQ tagged UDP", IPPROTO_UDP, 2, 0, MUT_NONE, 0, 0, AG_R_PASS_VLAN_TAGGED},
    {"ARP", IPPROTO_TCP, 0, 0, MUT_ETHERTYPE, 0x0806, 0, AG_R_PASS_NOT_IPV4},
    {"IPv6 ethertype", IPPROTO_TCP, 0, 0, MUT_ETHERTYPE, 0x86dd, 0, AG_R_PASS_NOT_IPV4},
    {"IPv6 in a tag", IPPROTO_TCP, 1, 0, MUT_ETHERTYPE, 0x86dd, 0, AG_R_PASS_VLAN_TAGGED},
    {"IPv4 header cut", IPPROTO_TCP, 0, 0, MUT_TRUNCATE, 14 + 19, 0, AG_R_DROP_TRUNC_IP},
    {"version 6", IPPROTO_TCP, 0, 0, MUT_BYTE, 0x65, 0, AG_R_DROP_BAD_IP},
    {"ihl 4", IPPROTO_TCP, 0, 0, MUT_BYTE, 0x44, 0, AG_R_DROP_BAD_IP},
    {"tot_len 19", IPPROTO_TCP, 0, 0, MUT_TOT_LEN_FIELD, 19, 0, AG_R_DROP_BAD_IP},
    {"tot_len < ihl*4", IPPROTO_UDP, 0, 0, MUT_BYTE, 0x4f, 0, AG_R_DROP_BAD_IP},
    {"tot_len past frame", IPPROTO_TCP, 0, 0, MUT_TOT_LEN, 1500, 0, AG_R_DROP_TRUNC_IP},
    {"frame cut in payload", IPPROTO_UDP, 0, 0, MUT_TRUNCATE, 14 + 20 + 8 + 5, 0,
     AG_R_DROP_TRUNC_IP},
    {"ICMP", IPPROTO_ICMP, 0, 0, MUT_NONE, 0, 0, AG_R_PASS_NOT_L4},
    {"ICMP fragment", IPPROTO_ICMP, 0, 0x2000, MUT_NONE, 0, 0, AG_R_PASS_NOT_L4},
    {"TCP first fragment (MF)", IPPROTO_TCP, 0, 0x2000, MUT_NONE, 0, 0, AG_R_PASS_FRAGMENT},
    {"UDP later fragment", IPPROTO_UDP, 0, 0x00b9, MUT_NONE, 0, 0, AG_R_PASS_FRAGMENT},
    {"TCP header cut", IPPROTO_TCP, 0, 0, MUT_TOT_LEN, 20 + 19, 0, AG_R_DROP_TRUNC_L4},
    {"TCP doff 4", IPPROTO_TCP, 0, 0, MUT_L4_BYTE, 0x40, 12, AG_R_DROP_TRUNC_L4},
    {"TCP doff past packet", IPPROTO_TCP, 0, 0, MUT_L4_BYTE, 0xf0, 12, AG_R_DROP_TRUNC_L4},
    {"UDP header cut", IPPROTO_UDP, 0, 0, MUT_TOT_LEN, 20 + 7, 0, AG_R_DROP_TRUNC_L4},
    {"UDP length 7", IPPROTO_UDP, 0, 0, MUT_L4_WORD, 7, 4, AG_R_DROP_TRUNC_L4},
    {"UDP length past packet", IPPROTO_UDP, 0, 0, MUT_L4_WORD, 8 + 11, 4, AG_R_DROP_TRUNC_L4},
};

static void test_parse_bad(void)
{
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct ag_pkt p;
		struct frame f;
		struct spec s;
		int r;

		spec_default(&s, c->proto);
		s.vlans = c->vlans;
		s.tpid[0] = c->vlans > 1 ? 0x88a8 : 0x8100;
		s.tpid[1] = 0x8100;
		s.tpid[2] = 0x8100;
		s.frag_off = c->frag_off;
		frame_build(&f, &s);
		switch (c->mut) {
		case MUT_NONE:
			break;
		case MUT_TRUNCATE:
			frame_truncate(&f, c->arg);
			break;
		case MUT_BYTE:
			f.b[f.l3 + c->arg2] = (uint8_t)c->arg;
			break;
		case MUT_TOT_LEN:
			put16(f.b, f.l3 + 2, (uint16_t)c->arg);
			if (c->arg < f.len - f.l3)
				frame_truncate(&f, f.l3 + c->arg);
			break;
		case MUT_TOT_LEN_FIELD:
			put16(f.b, f.l3 + 2, (uint16_t)c->arg);
			break;
		case MUT_L4_BYTE:
			f.b[f.l4 + c->arg2] = (uint8_t)c->arg;
			break;
		case MUT_L4_WORD:
			put16(f.b, f.l4 + c->arg2, (uint16_t)c->arg);
			break;
		case MUT_ETHERTYPE:
			put16(f.b, f.l3 - 2, (uint16_t)c->arg);
			break;
		}
		r = parse_frame(&f, &p);
		if (r != c->reason)
			fprintf(stderr, "\n  parse case '%s': got %d, want %d\n", c->what, r,
				c->reason);
		CU_ASSERT_EQUAL(r, c->reason);
		/* Fragments and non-L4 packets still show their IP header (VIP check, counters). */
		if (c->reason == AG_R_PASS_FRAGMENT || c->reason == AG_R_PASS_NOT_L4) {
			CU_ASSERT_PTR_EQUAL(p.ip, f.b + f.l3);
		}
		CU_ASSERT_EQUAL(ag_reason__is_drop(r), c->reason >= AG_R_DROP_TRUNC_ETH);
		frame_free(&f);
	}
}

/* Random frames cut at every length: no read past the end (ASan), never OK before the end. */
static void test_parse_every_length(void)
{
	unsigned int n;

	rng_seed(0x5eed);
	for (n = 0; n < 200; n++) {
		struct spec s;
		struct frame f;
		size_t full, len;

		spec_default(&s, (rng_next() & 1) ? IPPROTO_TCP : IPPROTO_UDP);
		s.vlans = rng_next() % 3;
		s.tpid[0] = 0x8100;
		s.tpid[1] = 0x8100;
		s.ihl = (uint8_t)(5 + rng_next() % 3);
		s.payload = rng_next() % 40;
		frame_build(&f, &s);
		full = f.len;
		frame_free(&f);
		for (len = 0; len <= full; len++) {
			struct ag_pkt p;
			int r;

			frame_build(&f, &s);
			frame_truncate(&f, len);
			r = parse_frame(&f, &p);
			/* A whole tag makes the frame a tagged one, however short the rest. */
			if (s.vlans && len >= 14 + 4 * (size_t)s.vlans) {
				CU_ASSERT_EQUAL(r, AG_R_PASS_VLAN_TAGGED);
				frame_free(&f);
				continue;
			}
			CU_ASSERT_EQUAL(r == AG_PARSE_OK, len == full);
			CU_ASSERT(r == AG_PARSE_OK || ag_reason__is_drop(r));
			frame_free(&f);
		}
	}
}

static void test_flow_key(void)
{
	struct ag_flow_key k;
	struct ag_pkt p;
	struct frame f;
	struct spec s;

	spec_default(&s, IPPROTO_UDP);
	s.sport = 51234;
	s.dport = 5000;
	frame_build(&f, &s);
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	memset(&k, 0xa5, sizeof(k));
	ag_flow_key__from_pkt(&k, &p);
	CU_ASSERT_EQUAL(ag_ntohl(k.saddr.v4), s.saddr);
	CU_ASSERT_EQUAL(ag_ntohl(k.daddr.v4), s.daddr);
	/* IPv4 in the first word, the other three zero (keys are compared as bytes) */
	CU_ASSERT(!k.saddr.w[1] && !k.saddr.w[2] && !k.saddr.w[3]);
	CU_ASSERT(!k.daddr.w[1] && !k.daddr.w[2] && !k.daddr.w[3]);
	CU_ASSERT_EQUAL(ag_ntohs(k.sport), 51234);
	CU_ASSERT_EQUAL(ag_ntohs(k.dport), 5000);
	CU_ASSERT_EQUAL(k.proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(k.family, AG_FAMILY_IPV4);
	CU_ASSERT(k.pad[0] == 0 && k.pad[1] == 0);
	frame_free(&f);
}

/* ---------- checksums ---------- */

/* Replace random 16/32-bit fields of a random buffer; compare with a full recomputation. */
static void test_csum_replace(void)
{
	uint8_t buf[40];
	unsigned int n, i;

	rng_seed(0xc5c5);
	for (n = 0; n < 20000; n++) {
		size_t off = 2 * (rng_next() % 16); /* 16-bit aligned word, field fits in buf */
		uint16_t c_before, c_after;
		__sum16 check;
		uint16_t old16, new16;
		uint32_t old32, new32;

		for (i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)rng_next();
		/* Sometimes all-zero or all-ones fields: the edges of one's complement. */
		if (n % 7 == 0)
			memset(buf + off, (n % 14) ? 0xff : 0, 4);
		c_before = (uint16_t)~ref_fold(ref_sum(buf, sizeof(buf), 0));
		check = ag_htons(c_before);
		if (n & 1) {
			memcpy(&old16, buf + off, 2);
			new16 = (uint16_t)rng_next();
			if (n % 5 == 0)
				new16 = (n % 10) ? 0xffff : 0;
			memcpy(buf + off, &new16, 2);
			ag_csum_replace16(&check, old16, new16);
		} else {
			memcpy(&old32, buf + off, 4);
			new32 = rng_next();
			memcpy(buf + off, &new32, 4);
			ag_csum_replace32(&check, old32, new32);
		}
		c_after = (uint16_t)~ref_fold(ref_sum(buf, sizeof(buf), 0));
		/* 0x0000 and 0xffff are the same one's complement number (+0 / -0). */
		if (c_after == 0xffff || c_after == 0) {
			CU_ASSERT(ag_ntohs(check) == 0 || ag_ntohs(check) == 0xffff);
		} else {
			CU_ASSERT_EQUAL(ag_ntohs(check), c_after);
		}
	}
}

static void test_csum_ttl(void)
{
	unsigned int ttl;

	for (ttl = 2; ttl <= 255; ttl++) {
		struct frame f, want;
		struct ag_pkt p;
		struct spec s;

		spec_default(&s, IPPROTO_TCP);
		s.ttl = (uint8_t)ttl;
		s.saddr = 0x0a000002 + ttl * 7919;
		frame_build(&f, &s);
		s.ttl = (uint8_t)(ttl - 1);
		frame_build(&want, &s);
		CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
		ag_ipv4__dec_ttl(p.ip);
		CU_ASSERT(memcmp(f.b, want.b, f.len) == 0);
		frame_free(&f);
		frame_free(&want);
	}
}

/* ---------- NAT rewrites: the result must equal a frame built with the new tuple ---------- */

static void test_nat_forward_reverse(void)
{
	unsigned int n;

	rng_seed(0xa7a7);
	for (n = 0; n < 5000; n++) {
		uint8_t proto = (n & 1) ? IPPROTO_TCP : IPPROTO_UDP;
		struct frame f, want;
		struct ag_nat_rev rv;
		struct ag_flow fl;
		struct ag_pkt p;
		struct spec s;

		spec_default(&s, proto);
		s.tpid[0] = 0x88a8;
		s.tpid[1] = 0x8100;
		s.ihl = (uint8_t)(5 + n % 4);
		s.saddr = rng_next();
		s.daddr = rng_next();
		s.sport = (uint16_t)rng_next();
		s.dport = (uint16_t)rng_next();
		s.payload = rng_next() % 64; /* odd lengths too */
		s.payload_seed = rng_next();
		s.udp_no_csum = proto == IPPROTO_UDP && n % 10 == 0;

		memset(&fl, 0, sizeof(fl));
		ag_addr__set4(&fl.nat_addr, ag_htonl(rng_next()));
		fl.nat_port = ag_htons((uint16_t)rng_next());
		ag_addr__set4(&fl.backend_addr, ag_htonl(rng_next()));
		fl.backend_port = ag_htons((uint16_t)rng_next());

		/* client -> vip becomes nat -> backend */
		frame_build(&f, &s);
		CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
		CU_ASSERT_EQUAL_FATAL(ag_nat__forward(&p, &fl), 0);
		s.saddr = ag_ntohl(fl.nat_addr.v4);
		s.sport = ag_ntohs(fl.nat_port);
		s.daddr = ag_ntohl(fl.backend_addr.v4);
		s.dport = ag_ntohs(fl.backend_port);
		frame_build(&want, &s);
		CU_ASSERT(memcmp(f.b, want.b, f.len) == 0);
		CU_ASSERT_EQUAL(ag_ntohs(p.sport), s.sport);
		frame_free(&f);
		frame_free(&want);

		/* backend -> nat (a reply) becomes vip -> client */
		memset(&rv, 0, sizeof(rv));
		ag_addr__set4(&rv.client_addr, ag_htonl(rng_next()));
		rv.client_port = ag_htons((uint16_t)rng_next());
		ag_addr__set4(&rv.vip, ag_htonl(rng_next()));
		rv.vip_port = ag_htons((uint16_t)rng_next());
		s.saddr = ag_ntohl(fl.backend_addr.v4);
		s.sport = ag_ntohs(fl.backend_port);
		s.daddr = ag_ntohl(fl.nat_addr.v4);
		s.dport = ag_ntohs(fl.nat_port);
		frame_build(&f, &s);
		CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
		CU_ASSERT_EQUAL_FATAL(ag_nat__reverse(&p, &rv), 0);
		s.saddr = ag_ntohl(rv.vip.v4);
		s.sport = ag_ntohs(rv.vip_port);
		s.daddr = ag_ntohl(rv.client_addr.v4);
		s.dport = ag_ntohs(rv.client_port);
		frame_build(&want, &s);
		CU_ASSERT(memcmp(f.b, want.b, f.len) == 0);
		frame_free(&f);
		frame_free(&want);
	}
}

/*
 * UDP: a packet whose rewritten checksum computes to zero must carry 0xffff
 * (zero means "no checksum"). The payload word is chosen so the rewritten
 * packet sums to 0xffff; the raw RFC 1624 result is then 0, which the test
 * also asserts, so the special case is really exercised.
 */
static void test_nat_udp_zero(void)
{
	struct frame f, want;
	struct ag_flow fl;
	struct ag_pkt p;
	struct spec s;
	uint32_t acc;
	uint16_t old_check, word;

	memset(&fl, 0, sizeof(fl));
	ag_addr__set4(&fl.nat_addr, ag_htonl(0x0aff0001));
	fl.nat_port = ag_htons(31337);
	ag_addr__set4(&fl.backend_addr, ag_htonl(0x0a01010b));
	fl.backend_port = ag_htons(5000);

	/* The rewritten packet with payload word 0: its sum, without the checksum field. */
	spec_default(&s, IPPROTO_UDP);
	s.payload = 2;
	s.set_payload_word = 1;
	s.payload_word = 0;
	s.saddr = 0x0aff0001;
	s.sport = 31337;
	s.daddr = 0x0a01010b;
	s.dport = 5000;
	frame_build(&want, &s);
	acc = ref_sum(want.b + want.l3 + 12, 8, 0) + IPPROTO_UDP + 10;
	put16(want.b, want.l4 + 6, 0);
	acc = ref_sum(want.b + want.l4, 10, acc);
	word = (uint16_t)~ref_fold(acc); /* makes the folded sum 0xffff */
	frame_free(&want);

	spec_default(&s, IPPROTO_UDP);
	s.payload = 2;
	s.set_payload_word = 1;
	s.payload_word = word;
	frame_build(&f, &s);
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	old_check = get16(f.b, f.l4 + 6);
	CU_ASSERT_NOT_EQUAL(old_check, 0);
	{
		/* the same diff ag_nat__rewrite builds: addresses then ports */
		__u32 d = ag_csum_diff32(0, p.ip->saddr, fl.nat_addr.v4);

		d = ag_csum_diff32(d, p.ip->daddr, fl.backend_addr.v4);
		d = ag_csum_diff16(d, p.sport, fl.nat_port);
		d = ag_csum_diff16(d, p.dport, fl.backend_port);
		CU_ASSERT_EQUAL(ag_csum_apply(ag_htons(old_check), d), 0);
	}
	CU_ASSERT_EQUAL_FATAL(ag_nat__forward(&p, &fl), 0);
	CU_ASSERT_EQUAL(get16(f.b, f.l4 + 6), 0xffff);

	s.saddr = 0x0aff0001;
	s.sport = 31337;
	s.daddr = 0x0a01010b;
	s.dport = 5000;
	frame_build(&want, &s);
	CU_ASSERT_EQUAL(get16(want.b, want.l4 + 6), 0xffff);
	CU_ASSERT(memcmp(f.b, want.b, f.len) == 0);
	frame_free(&f);
	frame_free(&want);
}

static void test_nat_udp_no_csum(void)
{
	struct ag_flow fl = {
	    .nat_addr = {.v4 = ag_htonl(0x0aff0001)},
	    .nat_port = ag_htons(2000),
	    .backend_addr = {.v4 = ag_htonl(0x0a02010b)},
	    .backend_port = ag_htons(5000),
	};
	struct ag_pkt p;
	struct frame f;
	struct spec s;

	spec_default(&s, IPPROTO_UDP);
	s.udp_no_csum = 1;
	frame_build(&f, &s);
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	CU_ASSERT_EQUAL_FATAL(ag_nat__forward(&p, &fl), 0);
	CU_ASSERT_EQUAL(get16(f.b, f.l4 + 6), 0);
	/* the IP header checksum is still right */
	CU_ASSERT_EQUAL(ref_fold(ref_sum(f.b + f.l3, 20, 0)), 0xffff);
	frame_free(&f);
}

/* ---------- hash ---------- */

#define REF_ROT(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

/* lookup3.c hashword(), as Bob Jenkins published it (loop form), for comparison. */
static uint32_t ref_hashword(const uint32_t *k, size_t length, uint32_t initval)
{
	uint32_t a, b, c;

	a = b = c = 0xdeadbeef + ((uint32_t)length << 2) + initval;
	while (length > 3) {
		a += k[0];
		b += k[1];
		c += k[2];
		a -= c;
		a ^= REF_ROT(c, 4);
		c += b;
		b -= a;
		b ^= REF_ROT(a, 6);
		a += c;
		c -= b;
		c ^= REF_ROT(b, 8);
		b += a;
		a -= c;
		a ^= REF_ROT(c, 16);
		c += b;
		b -= a;
		b ^= REF_ROT(a, 19);
		a += c;
		c -= b;
		c ^= REF_ROT(b, 4);
		b += a;
		length -= 3;
		k += 3;
	}
	switch (length) {
	case 3:
		c += k[2];
		/* fall through */
	case 2:
		b += k[1];
		/* fall through */
	case 1:
		a += k[0];
		c ^= b;
		c -= REF_ROT(b, 14);
		a ^= c;
		a -= REF_ROT(c, 11);
		b ^= a;
		b -= REF_ROT(a, 25);
		c ^= b;
		c -= REF_ROT(b, 16);
		a ^= c;
		a -= REF_ROT(c, 4);
		b ^= a;
		b -= REF_ROT(a, 14);
		c ^= b;
		c -= REF_ROT(b, 24);
		break;
	case 0:
		break;
	}
	return c;
}

static void random_key(struct ag_flow_key *k)
{
	memset(k, 0, sizeof(*k));
	ag_addr__set4(&k->saddr, rng_next());
	ag_addr__set4(&k->daddr, rng_next());
	ag_flow_key__ports(k, (__be16)rng_next(), (__be16)rng_next(),
			   (rng_next() & 1) ? IPPROTO_TCP : IPPROTO_UDP);
}

static void test_hash_reference(void)
{
	unsigned int n;

	rng_seed(0x1234);
	for (n = 0; n < 100000; n++) {
		struct ag_flow_key k;
		uint32_t seed = rng_next(), w[4];

		random_key(&k);
		w[0] = ag_ntohl(k.saddr.v4);
		w[1] = ag_ntohl(k.daddr.v4);
		w[2] = (uint32_t)ag_ntohs(k.sport) << 16 | ag_ntohs(k.dport);
		w[3] = k.proto;
		CU_ASSERT_EQUAL(ag_hash__flow(&k, seed), ref_hashword(w, 4, seed));
		CU_ASSERT_EQUAL(ag_hash__select(&k, AG_AFFINITY_NONE, seed),
				ref_hashword(w, 4, seed));
		CU_ASSERT_EQUAL(ag_hash__nat(&k, seed),
				ref_hashword(w, 4, seed ^ AG_HASH_NAT_SALT));
		w[2] = k.proto;
		CU_ASSERT_EQUAL(ag_hash__source(&k, seed), ref_hashword(w, 3, seed));
		CU_ASSERT_EQUAL(ag_hash__select(&k, AG_AFFINITY_SOURCE_IP, seed),
				ref_hashword(w, 3, seed));
	}
}

/*
 * Fixed vectors computed with the core of main at 3f11857 (16-byte keys,
 * before ABI v3): an IPv4 flow keeps its hashes bit for bit, so every edge
 * still running the old version picks the same backend and NAT address.
 * Fields: saddr, daddr (host order), sport, dport, proto, seed, then
 * ag_hash__flow, ag_hash__source, ag_hash__nat.
 */
static const struct {
	uint32_t saddr, daddr;
	uint16_t sport, dport;
	uint8_t proto;
	uint32_t seed, flow, source, nat;
} hash_vectors[] = {
    {0x00000000, 0x00000000, 0, 0, 6, 0x00000000, 0x4e80b279, 0xc2224323, 0xe00d31ce},
    {0xffffffff, 0xffffffff, 65535, 65535, 17, 0xffffffff, 0x011462af, 0x0ce3265e, 0x7805069e},
    {0x4d36599b, 0x46aa29b9, 28732, 1687, 17, 0xed3d42e0, 0xd0dd2fbb, 0x888b8723, 0xb86609d3},
    {0xc4ee4233, 0x99aca887, 39733, 38393, 17, 0x18de86bc, 0x6c6285b7, 0x0b6be929, 0x1b702f0d},
    {0x9dd24c51, 0x5f58c9dd, 35338, 5996, 17, 0xd41990ff, 0x6251d256, 0x6298a6c3, 0x4794ce15},
    {0xc07893d8, 0x927ca1f9, 52787, 55768, 6, 0x1418e8dc, 0xb1380dc7, 0x7bae5f92, 0x3c63a454},
    {0x47b69b95, 0x0c4a4f17, 61625, 13731, 17, 0x17aaea05, 0x35478678, 0x46748f27, 0x226c9a36},
    {0x16b7a434, 0xa41bf0ac, 39885, 43211, 17, 0xf44f2b81, 0xe2b43de1, 0xb3b9b64b, 0x8fd4990b},
    {0x825d7a3c, 0x8e477a91, 17336, 10619, 17, 0x947a2c30, 0xf323d602, 0x60766be6, 0xf5abee8f},
    {0xcf71db64, 0x77b90c2a, 37296, 33204, 6, 0xb14e6f97, 0x15ac46b9, 0x38d4773b, 0xbfe618d3},
    {0xfcc94bb2, 0x62534ccd, 29335, 52264, 17, 0xe943bd81, 0xecaf38f8, 0x26351bf5, 0xfeee5b0a},
    {0x57e01903, 0xccca3f03, 61033, 18518, 17, 0x2b1e9707, 0x34e518f8, 0x8617bd92, 0x36d0bdaf},
};

static void test_hash_vectors(void)
{
	size_t i;

	for (i = 0; i < sizeof(hash_vectors) / sizeof(hash_vectors[0]); i++) {
		struct ag_flow_key k;

		memset(&k, 0, sizeof(k));
		ag_addr__set4(&k.saddr, ag_htonl(hash_vectors[i].saddr));
		ag_addr__set4(&k.daddr, ag_htonl(hash_vectors[i].daddr));
		ag_flow_key__ports(&k, ag_htons(hash_vectors[i].sport),
				   ag_htons(hash_vectors[i].dport), hash_vectors[i].proto);
		CU_ASSERT_EQUAL(ag_hash__flow(&k, hash_vectors[i].seed), hash_vectors[i].flow);
		CU_ASSERT_EQUAL(ag_hash__source(&k, hash_vectors[i].seed), hash_vectors[i].source);
		CU_ASSERT_EQUAL(ag_hash__nat(&k, hash_vectors[i].seed), hash_vectors[i].nat);
		CU_ASSERT_EQUAL(ag_hash__select(&k, AG_AFFINITY_NONE, hash_vectors[i].seed),
				hash_vectors[i].flow);
		CU_ASSERT_EQUAL(ag_hash__select(&k, AG_AFFINITY_SOURCE_IP, hash_vectors[i].seed),
				hash_vectors[i].source);
	}
}

static void test_hash_determinism(void)
{
	struct ag_flow_key a, b;
	unsigned int n, seed_differs = 0;

	rng_seed(0x4321);
	for (n = 0; n < 10000; n++) {
		uint32_t seed = rng_next();

		random_key(&a);
		b = a;
		/* pad bytes are not part of the flow */
		b.pad[0] = 0x55;
		b.pad[1] = 0xaa;
		CU_ASSERT_EQUAL(ag_hash__flow(&a, seed), ag_hash__flow(&b, seed));
		CU_ASSERT_EQUAL(ag_hash__source(&a, seed), ag_hash__source(&b, seed));
		/* source affinity ignores ports */
		b.sport ^= 0x0100;
		b.dport ^= 0x0001;
		CU_ASSERT_EQUAL(ag_hash__source(&a, seed), ag_hash__source(&b, seed));
		seed_differs += ag_hash__flow(&a, seed) != ag_hash__flow(&a, seed + 1);
	}
	/* A seed that did not matter would make every edge's tables line up the same way. */
	CU_ASSERT(seed_differs > 9990);
}

/*
 * Pearson chi-square of n values over k buckets, in units of its standard
 * deviation away from the mean (k - 1 degrees of freedom: mean k - 1,
 * sd sqrt(2(k - 1))). Returned squared, so no libm: z^2.
 */
static double chi2_z2(const uint32_t *cnt, uint32_t k, uint32_t n)
{
	double e = (double)n / k, chi2 = 0, df = k - 1.0, d;
	uint32_t i;

	for (i = 0; i < k; i++) {
		d = cnt[i] - e;
		chi2 += d * d / e;
	}
	return (chi2 - df) * (chi2 - df) / (2 * df);
}

/*
 * Real-looking keys: 100 clients of one /24 talking to one VIP:port, each with
 * 1000 consecutive even source ports, as Linux hands them out.
 */
static void even_port_key(struct ag_flow_key *k, uint32_t i)
{
	memset(k, 0, sizeof(*k));
	ag_addr__set4(&k->saddr, ag_htonl(0x0a000a00 + 1 + i / 1000));
	ag_addr__set4(&k->daddr, ag_htonl(0xc633640a));
	ag_flow_key__ports(k, ag_htons((uint16_t)(32768 + 2 * (i % 1000))), ag_htons(443),
			   IPPROTO_TCP);
}

/* A weak hash (a plain sum of the words), the negative control of the spread test. */
static uint32_t weak_hash(const struct ag_flow_key *k, uint32_t seed)
{
	return ag_ntohl(k->saddr.v4) * 31 + ag_ntohl(k->daddr.v4) + ag_ntohs(k->sport) +
	       ag_ntohs(k->dport) + seed;
}

#define SPREAD_N     100000u
#define SPREAD_Z_MAX 5.0

static double spread_z2(uint32_t (*h)(const struct ag_flow_key *, uint32_t), uint32_t buckets,
			uint32_t seed)
{
	uint32_t *cnt = calloc(buckets, sizeof(*cnt)), i;
	struct ag_flow_key k;
	double z2;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cnt);
	for (i = 0; i < SPREAD_N; i++) {
		even_port_key(&k, i);
		cnt[h(&k, seed) % buckets]++;
	}
	z2 = chi2_z2(cnt, buckets, SPREAD_N);
	free(cnt);
	return z2;
}

static uint32_t flow_hash(const struct ag_flow_key *k, uint32_t seed)
{
	return ag_hash__flow(k, seed);
}

static void test_hash_spread(void)
{
	static const uint32_t buckets[] = {AG_RING_SIZE_DEFAULT, 13, 2, 1024};
	static const uint32_t seeds[] = {0, 1, 0x9e3779b9};
	size_t b, s;
	double z2;

	for (b = 0; b < sizeof(buckets) / sizeof(buckets[0]); b++) {
		for (s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
			z2 = spread_z2(flow_hash, buckets[b], seeds[s]);
			if (z2 >= SPREAD_Z_MAX * SPREAD_Z_MAX)
				fprintf(stderr, "\n  spread %% %u seed %#x: z^2 = %.1f\n",
					buckets[b], seeds[s], z2);
			CU_ASSERT(z2 < SPREAD_Z_MAX * SPREAD_Z_MAX);
		}
	}
	/* The bound must be able to fail: a sum of the fields is far outside it. */
	z2 = spread_z2(weak_hash, AG_RING_SIZE_DEFAULT, 0);
	CU_ASSERT(z2 > 100 * SPREAD_Z_MAX * SPREAD_Z_MAX);
}

/*
 * The 13 bytes of an IPv4 key that make the flow (addresses, ports, protocol),
 * as offsets into struct ag_flow_key: the 104 input bits of the avalanche test.
 */
static const size_t flow_bytes[13] = {
    offsetof(struct ag_flow_key, saddr) + 0, offsetof(struct ag_flow_key, saddr) + 1,
    offsetof(struct ag_flow_key, saddr) + 2, offsetof(struct ag_flow_key, saddr) + 3,
    offsetof(struct ag_flow_key, daddr) + 0, offsetof(struct ag_flow_key, daddr) + 1,
    offsetof(struct ag_flow_key, daddr) + 2, offsetof(struct ag_flow_key, daddr) + 3,
    offsetof(struct ag_flow_key, sport) + 0, offsetof(struct ag_flow_key, sport) + 1,
    offsetof(struct ag_flow_key, dport) + 0, offsetof(struct ag_flow_key, dport) + 1,
    offsetof(struct ag_flow_key, proto),
};

/*
 * Avalanche: flipping any one input bit flips each output bit with
 * probability near 1/2. 2000 random keys; per (input bit, output bit) pair the
 * flip rate must lie in [0.40, 0.60] (about 9 sd of a fair coin over 2000).
 */
static void test_hash_avalanche(void)
{
	static uint32_t flips[104][32];
	unsigned int n, bit, o;
	const unsigned int keys = 2000;

	memset(flips, 0, sizeof(flips));
	rng_seed(0xfeed);
	for (n = 0; n < keys; n++) {
		struct ag_flow_key k, k2;
		uint32_t seed = rng_next(), h, d;

		random_key(&k);
		h = ag_hash__flow(&k, seed);
		for (bit = 0; bit < 104; bit++) {
			k2 = k;
			/* bits of the 13 flow bytes: every field */
			((uint8_t *)&k2)[flow_bytes[bit / 8]] ^= (uint8_t)(1u << (bit % 8));
			d = h ^ ag_hash__flow(&k2, seed);
			for (o = 0; o < 32; o++)
				flips[bit][o] += (d >> o) & 1;
		}
	}
	for (bit = 0; bit < 104; bit++)
		for (o = 0; o < 32; o++) {
			unsigned int dev = flips[bit][o] > keys / 2 ? flips[bit][o] - keys / 2
								    : keys / 2 - flips[bit][o];
			CU_ASSERT(dev <= keys / 10);
		}
}

/* ---------- flow helpers ---------- */

static void test_lookup_index(void)
{
	uint32_t slot, h;

	CU_ASSERT_EQUAL(ag_lookup__index(0, 13, 0), 0);
	CU_ASSERT_EQUAL(ag_lookup__index(3, 13, 27), 3 * 13 + 1);
	CU_ASSERT_EQUAL(ag_lookup__index(AG_LOOKUP_SLOTS - 1, AG_RING_SIZE_MAX, 0xffffffffu),
			(AG_LOOKUP_SLOTS - 1) * AG_RING_SIZE_MAX + 0xffffffffu % AG_RING_SIZE_MAX);
	rng_seed(99);
	for (slot = 0; slot < AG_LOOKUP_SLOTS; slot++) {
		uint32_t idx;

		h = rng_next();
		idx = ag_lookup__index(slot, AG_RING_SIZE_DEFAULT, h);
		CU_ASSERT(idx >= slot * AG_RING_SIZE_DEFAULT);
		CU_ASSERT(idx < (slot + 1) * AG_RING_SIZE_DEFAULT);
	}
}

/* Bucket and lane of the dense table layout (abi.h): a bijection with the flat index. */
static void test_lookup_buckets(void)
{
	uint32_t idx, last = AG_LOOKUP_SLOTS * AG_RING_SIZE_DEFAULT - 1;

	for (idx = 0; idx <= last; idx++) {
		uint32_t b = ag_lookup__bucket(idx), l = ag_lookup__lane(idx);

		CU_ASSERT_FATAL(l < AG_LOOKUP_LANES);
		CU_ASSERT_FATAL(b * AG_LOOKUP_LANES + l == idx);
	}
	/* the last entry's bucket exists in a map of AG_LOOKUP_BUCKETS(ring_size) */
	CU_ASSERT(ag_lookup__bucket(last) == AG_LOOKUP_BUCKETS(AG_RING_SIZE_DEFAULT) - 1);
	CU_ASSERT(ag_lookup__bucket(AG_LOOKUP_SLOTS * AG_RING_SIZE_MAX - 1) <
		  AG_LOOKUP_BUCKETS(AG_RING_SIZE_MAX));
	CU_ASSERT_EQUAL(ag_lookup__bucket(17), 1);
	CU_ASSERT_EQUAL(ag_lookup__lane(17), 1);
}

/*
 * One walk of the NAT port cursor from cursor over [min, max]: every port once,
 * in order, from max back to min; the attempt after the last is the first
 * again, and a cursor moved on by n stands where attempt n did.
 */
static void check_port_walk(uint32_t cursor, uint16_t min, uint16_t max)
{
	static uint8_t seen[65536];
	uint32_t range = (uint32_t)max - min + 1, a, bad = 0;
	uint16_t prev = 0, c;

	memset(seen, 0, sizeof(seen));
	for (a = 0; a < range; a++) {
		c = ag_nat__port_at(cursor, a, min, max);
		bad += c < min || c > max || seen[c];
		seen[c] = 1;
		if (a)
			bad += c != (prev == max ? min : prev + 1);
		prev = c;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(ag_nat__port_at(cursor, range, min, max),
			ag_nat__port_at(cursor, 0, min, max));
	CU_ASSERT_EQUAL(ag_nat__port_at(cursor + 5, 0, min, max),
			ag_nat__port_at(cursor, 5, min, max));
}

/*
 * A claim walks AG_NAT_PORT_RUN ports from the cursor, then the rest from a
 * random offset: attempt n >= RUN lands on rnd % range + (n - RUN), for any
 * rnd (0 and 2^32 - 1 included) and ranges from one port to the full one.
 */
static void test_nat_claim_base(void)
{
	static const __u16 ranges[][2] = {{1024, 65535}, {20000, 20999}, {3000, 3000}, {1, 65535}};
	static const __u32 rnds[] = {0, 1, 7, 8, 0x7fffffffu, 0xffffffffu, 123456789u};
	unsigned int i, j;
	__u32 n;

	for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		__u16 min = ranges[i][0], max = ranges[i][1];
		__u32 range = (__u32)max - min + 1;

		for (j = 0; j < sizeof(rnds) / sizeof(rnds[0]); j++) {
			for (n = 0; n < AG_NAT_PORT_RETRIES; n++) {
				__u32 base = ag_nat__claim_base(77, rnds[j], n, min, max);
				__u16 want =
				    n < AG_NAT_PORT_RUN
					? (__u16)(min + (77 + n) % range)
					: (__u16)(min +
						  (rnds[j] % range + n - AG_NAT_PORT_RUN) % range);

				CU_ASSERT_EQUAL(ag_nat__port_at(base, n, min, max), want);
			}
			/* the cursor after an exhausted claim: just past the last port tried */
			n = AG_NAT_PORT_RETRIES;
			CU_ASSERT_EQUAL(
			    ag_nat__port_at(
				ag_nat__cursor_next(
				    ag_nat__claim_base(77, rnds[j], n - 1, min, max), n, min, max),
				0, min, max),
			    (__u16)(min + (rnds[j] % range + n - AG_NAT_PORT_RUN) % range));
		}
	}
}

static void test_nat_port_at(void)
{
	static const uint16_t ranges[][2] = {
	    {AG_NAT_PORT_MIN_DEFAULT, AG_NAT_PORT_MAX_DEFAULT},
	    {1, 65535},
	    {20000, 20999},
	    {7000, 7000},
	    {65535, 65535},
	};
	uint32_t cpu, other, r;

	for (r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
		uint16_t min = ranges[r][0], max = ranges[r][1];
		uint32_t range = (uint32_t)max - min + 1;

		check_port_walk(0, min, max);
		check_port_walk(range - 1, min, max); /* the first attempt is max */
		check_port_walk(range, min, max);
		for (cpu = 0; cpu < 4; cpu++)
			check_port_walk(ag_nat__cursor_start(cpu), min, max);
		/* the offset is (cursor + attempt) % range, from min */
		CU_ASSERT_EQUAL(ag_nat__port_at(0, 0, min, max), min);
		CU_ASSERT_EQUAL(ag_nat__port_at(range - 1, 0, min, max), max);
		CU_ASSERT_EQUAL(ag_nat__port_at(range - 1, 1, min, max), min);
	}
	CU_ASSERT_EQUAL(ag_nat__port_at(0x12345, 7, 1024, 65535), 1024 + (0x12345 + 7) % 64512);

	/*
	 * Cursor starts: never 0 (the fast paths' "not started yet"), and each
	 * CPU its own, so that CPUs do not walk the same ports in step.
	 */
	for (cpu = 0; cpu < 1024; cpu++) {
		CU_ASSERT_NOT_EQUAL(ag_nat__cursor_start(cpu), 0);
		for (other = 0; other < cpu && cpu < 64; other++)
			CU_ASSERT_NOT_EQUAL(ag_nat__cursor_start(cpu) % 64512,
					    ag_nat__cursor_start(other) % 64512);
	}
}

/* The NAT address of a new flow: nat_addrs[h2 % count], evenly over the addresses. */
static void test_nat_addr_index(void)
{
	uint32_t addr_cnt[2] = {0};
	unsigned int n;

	rng_seed(0xbeef);
	for (n = 0; n < 10000; n++) {
		uint32_t h2 = rng_next();

		CU_ASSERT(ag_nat__addr_index(h2, 3) < 3);
		CU_ASSERT_EQUAL(ag_nat__addr_index(h2, AG_MAX_NAT_ADDRS), h2 % AG_MAX_NAT_ADDRS);
		CU_ASSERT_EQUAL(ag_nat__addr_index(h2, 1), 0);
		addr_cnt[ag_nat__addr_index(h2, 2)]++;
	}
	CU_ASSERT(addr_cnt[0] > 4700 && addr_cnt[1] > 4700);
}

static void good_settings(struct ag_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->abi_version = AG_ABI_VERSION;
	s->hash_seed = 1;
	s->ring_size = AG_RING_SIZE_DEFAULT;
	s->nat_addr_count = 1;
	s->nat_addrs[0] = ag_htonl(0x0aff0001);
	s->tcp_idle_ns = AG_TCP_IDLE_DEFAULT * 1000000000ULL;
	s->udp_idle_ns = AG_UDP_IDLE_DEFAULT * 1000000000ULL;
	s->nat_port_min = AG_NAT_PORT_MIN_DEFAULT;
	s->nat_port_max = AG_NAT_PORT_MAX_DEFAULT;
	s->tcp_syn_idle_ns = AG_TCP_SYN_IDLE_DEFAULT * 1000000000ULL;
	s->tcp_closing_ns = AG_TCP_CLOSING_DEFAULT * 1000000000ULL;
}

static void test_settings(void)
{
	struct ag_settings s;

	good_settings(&s);
	CU_ASSERT(ag_settings__usable(&s));
	CU_ASSERT_EQUAL(
	    ag_flow__timeout_ns(&s, IPPROTO_TCP, AG_TCP_SYN_C | AG_TCP_SYNACK_B | AG_TCP_EST),
	    340000000000ULL);
	CU_ASSERT_EQUAL(ag_flow__timeout_ns(&s, IPPROTO_UDP, 0), 30000000000ULL);
	s.abi_version = 0; /* never written */
	CU_ASSERT(!ag_settings__usable(&s));
	good_settings(&s);
	s.ring_size = 0;
	CU_ASSERT(!ag_settings__usable(&s));
	s.ring_size = AG_RING_SIZE_MAX + 1;
	CU_ASSERT(!ag_settings__usable(&s));
	good_settings(&s);
	s.nat_addr_count = 0;
	CU_ASSERT(!ag_settings__usable(&s));
	s.nat_addr_count = AG_MAX_NAT_ADDRS + 1;
	CU_ASSERT(!ag_settings__usable(&s));
	good_settings(&s);
	s.nat_port_min = 0;
	CU_ASSERT(!ag_settings__usable(&s));
	good_settings(&s);
	s.nat_port_min = 2000;
	s.nat_port_max = 1999;
	CU_ASSERT(!ag_settings__usable(&s));
	/* a half-open or closed flow with no timeout would live for ever */
	good_settings(&s);
	s.tcp_syn_idle_ns = 0;
	CU_ASSERT(!ag_settings__usable(&s));
	good_settings(&s);
	s.tcp_closing_ns = 0;
	CU_ASSERT(!ag_settings__usable(&s));
	good_settings(&s);
	s.nat_port_min = s.nat_port_max = 65535; /* one port is a range */
	CU_ASSERT(ag_settings__usable(&s));
}

/*
 * Keys are looked up as bytes (BPF hash maps, rte_hash), so tests compare them
 * as bytes too: zeroed padding and address words included.
 */
static int key_bytes_equal(const struct ag_flow_key *a, const struct ag_flow_key *b)
{
	return memcmp((const void *)a, (const void *)b, sizeof(*a)) == 0;
}

static void test_flow_life(void)
{
	const __u64 g = AG_LAST_SEEN_GRANULARITY_NS, idle = 30 * g;
	struct ag_flow_key fk, k2;
	struct ag_nat_rev rv;
	struct ag_flow fl;

	CU_ASSERT(!ag_flow__is_idle(100 * g, 100 * g - idle, idle));
	CU_ASSERT(ag_flow__is_idle(100 * g, 100 * g - idle - 1, idle));
	/* stamped by another CPU a little after our clock read: fresh, not 2^64 ns old */
	CU_ASSERT(!ag_flow__is_idle(100 * g, 100 * g + 5, idle));
	CU_ASSERT(!ag_flow__needs_refresh(100 * g, 100 * g + 5));
	CU_ASSERT(!ag_flow__needs_refresh(100 * g, 99 * g + 1));
	CU_ASSERT(ag_flow__needs_refresh(100 * g, 99 * g));

	/* the reply key of a flow, and back from its reverse entry */
	memset(&fk, 0, sizeof(fk));
	ag_addr__set4(&fk.saddr, ag_htonl(0x0a000002));
	ag_addr__set4(&fk.daddr, ag_htonl(0xc633640a));
	ag_flow_key__ports(&fk, ag_htons(40000), ag_htons(80), IPPROTO_TCP);
	memset(&fl, 0, sizeof(fl));
	ag_addr__set4(&fl.nat_addr, ag_htonl(0x0aff0001));
	fl.nat_port = ag_htons(2222);
	ag_addr__set4(&fl.backend_addr, ag_htonl(0x0a01010b));
	fl.backend_port = ag_htons(8080);
	memset(&k2, 0xff, sizeof(k2));
	ag_flow_key__reply_of(&k2, &fl, IPPROTO_TCP);
	CU_ASSERT(ag_addr__equal(&k2.saddr, &fl.backend_addr) &&
		  ag_addr__equal(&k2.daddr, &fl.nat_addr));
	CU_ASSERT(k2.sport == fl.backend_port && k2.dport == fl.nat_port);
	CU_ASSERT(k2.proto == IPPROTO_TCP && !k2.pad[0] && !k2.pad[1]);
	CU_ASSERT_EQUAL(k2.family, AG_FAMILY_IPV4);

	memset(&rv, 0, sizeof(rv));
	rv.client_addr = fk.saddr;
	rv.client_port = fk.sport;
	rv.vip = fk.daddr;
	rv.vip_port = fk.dport;
	CU_ASSERT(ag_nat_rev__owned_by(&rv, &fk));
	memset(&k2, 0xff, sizeof(k2));
	ag_flow_key__client_of(&k2, &rv, IPPROTO_TCP);
	CU_ASSERT(key_bytes_equal(&k2, &fk));
	rv.client_port = ag_htons(40002);
	CU_ASSERT(!ag_nat_rev__owned_by(&rv, &fk));
	/* every word of an address counts: an IPv6 client is not the IPv4 one */
	rv.client_port = fk.sport;
	rv.client_addr.w[3] = 1;
	CU_ASSERT(!ag_nat_rev__owned_by(&rv, &fk));
}

static void test_addr(void)
{
	union ag_addr a, b;
	unsigned int i;

	memset(&a, 0xa5, sizeof(a));
	ag_addr__set4(&a, ag_htonl(0xc0000201));
	CU_ASSERT_EQUAL(a.v4, ag_htonl(0xc0000201));
	CU_ASSERT_EQUAL(a.w[0], a.v4);
	CU_ASSERT(!a.w[1] && !a.w[2] && !a.w[3]);
	CU_ASSERT(a.b[0] == 192 && a.b[3] == 1);
	b = a;
	CU_ASSERT(ag_addr__equal(&a, &b));
	for (i = 0; i < 128; i++) {
		b = a;
		b.b[i / 8] ^= (uint8_t)(1u << (i % 8));
		CU_ASSERT(!ag_addr__equal(&a, &b));
	}
}

/* ---------- TCP RST (rst.h): every byte against an RST built here from the RFC ---------- */

/*
 * The RST that answers the segment of frame f (RFC 9293 3.10.7.1), written
 * byte by byte into w: MACs swapped, tags kept, a 20-byte IPv4 header from
 * the segment's destination to its source (TTL 64, DF, id 0, TOS 0) and a
 * 20-byte TCP header (window 0). Returns its length.
 */
static size_t rst_expect(uint8_t *w, const struct frame *f, const struct spec *s, uint8_t flags,
			 uint32_t seq, uint32_t ack)
{
	const uint8_t *in = f->b;
	size_t l3 = f->l3, l4 = l3 + 20;
	uint32_t seg_len = (uint32_t)s->payload + !!(flags & 0x02) + !!(flags & 0x01);
	uint32_t acc;

	memcpy(w, in + 6, 6);
	memcpy(w + 6, in, 6);
	memcpy(w + 12, in + 12, l3 - 12); /* tags and the ethertype */
	memset(w + l3, 0, 40);
	w[l3] = 0x45;
	put16(w, l3 + 2, 40);
	put16(w, l3 + 6, 0x4000);
	w[l3 + 8] = 64;
	w[l3 + 9] = IPPROTO_TCP;
	put32(w, l3 + 12, s->daddr);
	put32(w, l3 + 16, s->saddr);
	put16(w, l3 + 10, (uint16_t)~ref_fold(ref_sum(w + l3, 20, 0)));
	put16(w, l4, s->dport);
	put16(w, l4 + 2, s->sport);
	if (flags & 0x10) {
		put32(w, l4 + 4, ack);
		w[l4 + 13] = 0x04;
	} else {
		put32(w, l4 + 8, seq + seg_len);
		w[l4 + 13] = 0x14;
	}
	w[l4 + 12] = 5 << 4;
	acc = ref_sum(w + l3 + 12, 8, 0) + IPPROTO_TCP + 20;
	put16(w, l4 + 16, (uint16_t)~ref_fold(ref_sum(w + l4, 20, acc)));
	return l4 + 20;
}

/* A TCP segment with n % 3 tags, IP and TCP options and a random tuple. */
static void random_tcp_spec(struct spec *s, unsigned int n)
{
	spec_default(s, IPPROTO_TCP);
	s->tpid[0] = 0x88a8;
	s->tpid[1] = 0x8100;
	s->ihl = (uint8_t)(5 + rng_next() % 11);
	s->doff = (uint8_t)(5 + rng_next() % 11);
	s->saddr = rng_next();
	s->daddr = rng_next();
	s->sport = (uint16_t)rng_next();
	s->dport = (uint16_t)rng_next();
}

static void test_tcp_rst(void)
{
	static const uint8_t flag_set[] = {
	    0x10, 0x18, 0x11, 0x19, /* ACK, PSH|ACK, FIN|ACK, FIN|PSH|ACK */
	    0x02, 0x01, 0x03, 0x00, /* SYN, FIN, SYN|FIN, none */
	    0x12, 0x08, 0x20, 0x30, /* SYN|ACK, PSH, URG, URG|ACK */
	};
	unsigned int n, answered = 0;

	rng_seed(0x5157);
	for (n = 0; n < 3000; n++) {
		uint8_t flags = flag_set[n % sizeof(flag_set)];
		uint8_t want[14 + 8 + 40];
		struct frame f;
		struct ag_pkt p;
		struct spec s;
		uint32_t seq = rng_next(), ack = rng_next();
		size_t want_len;
		int len;

		random_tcp_spec(&s, n);
		s.payload = rng_next() % 80;
		if (n % 7 == 0)
			seq = 0xffffffffu - (uint32_t)(rng_next() % 8); /* ack wraps */
		frame_build(&f, &s);
		put32(f.b, f.l4 + 4, seq);
		put32(f.b, f.l4 + 8, ack);
		f.b[f.l4 + 13] = flags;
		fix_checksums(f.b, f.l3, &s);
		CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);

		want_len = rst_expect(want, &f, &s, flags, seq, ack);
		len = ag_tcp__make_rst(&p);
		CU_ASSERT_EQUAL(len, (int)want_len);
		CU_ASSERT(len > 0 && (size_t)len <= f.len && memcmp(f.b, want, want_len) == 0);
		/* p describes the RST, and the RST parses as a TCP segment to the client. */
		CU_ASSERT_PTR_EQUAL(p.data_end, f.b + want_len);
		CU_ASSERT_PTR_EQUAL(p.l4, f.b + f.l3 + 20);
		CU_ASSERT_EQUAL(p.tot_len, 40);
		CU_ASSERT_EQUAL(ag_ntohs(p.sport), s.dport);
		CU_ASSERT_EQUAL(ag_ntohs(p.dport), s.sport);
		CU_ASSERT_EQUAL(ag_parse(&p, f.b, f.b + want_len), AG_PARSE_OK);
		CU_ASSERT_EQUAL(ref_fold(ref_sum(f.b + f.l3, 20, 0)), 0xffff);
		answered++;
		frame_free(&f);
	}
	CU_ASSERT_EQUAL(answered, 3000);

	/* A RST is never answered; the frame stays as it was. */
	for (n = 0; n < 2; n++) {
		struct frame f;
		struct ag_pkt p;
		struct spec s;
		uint8_t *copy;

		spec_default(&s, IPPROTO_TCP);
		frame_build(&f, &s);
		f.b[f.l4 + 13] = n ? 0x14 : 0x04;
		fix_checksums(f.b, f.l3, &s);
		copy = malloc(f.len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
		memcpy(copy, f.b, f.len);
		CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
		CU_ASSERT_EQUAL(ag_tcp__make_rst(&p), -1);
		CU_ASSERT(memcmp(copy, f.b, f.len) == 0);
		free(copy);
		frame_free(&f);
	}
}

/* Reason groups: pass, then drop, then the reasons the fast path acts on. */
static void test_reason_groups(void)
{
	int r;

	CU_ASSERT_EQUAL(AG_R__DROP_FIRST, AG_R_DROP_TRUNC_ETH);
	CU_ASSERT_EQUAL(AG_R__ACT_FIRST, AG_R_TX_RST_BACKEND_DOWN);
	CU_ASSERT_EQUAL(AG_R__MAX, AG_R_NAT_TAKEOVER + 1);
	for (r = 0; r < AG_R__MAX; r++)
		CU_ASSERT_EQUAL(ag_reason__is_drop(r),
				r >= AG_R_DROP_TRUNC_ETH && r <= AG_R_DROP_VIP_NOT_L4);
	CU_ASSERT(!ag_reason__is_drop(AG_R__MAX));
	/* issue 9's refusals drop; its answers and take-overs are acts, not drops */
	CU_ASSERT(ag_reason__is_drop(AG_R_DROP_TCP_FLAGS) &&
		  ag_reason__is_drop(AG_R_DROP_TCP_NO_FLOW));
	CU_ASSERT(ag_reason__is_drop(AG_R_DROP_FLOW_FULL) &&
		  ag_reason__is_drop(AG_R_DROP_UDP_BUDGET));
	for (r = AG_R_TX_SYN_CHALLENGE; r <= AG_R_NAT_TAKEOVER; r++)
		CU_ASSERT(r >= (int)AG_R__ACT_FIRST && !ag_reason__is_drop(r));
}

/* Which state of a flow's backend makes the fast path act on the flow. */
static void test_backend_down(void)
{
	struct ag_flow f;
	struct ag_backend b;

	memset(&f, 0, sizeof(f));
	memset(&b, 0, sizeof(b));
	ag_addr__set4(&f.backend_addr, ag_htonl(0x0a01010b));
	b.addr = f.backend_addr.v4;
	b.state = AG_BACKEND_DOWN;
	CU_ASSERT(ag_flow__backend_down(&f, &b));
	b.state = AG_BACKEND_UP;
	CU_ASSERT(!ag_flow__backend_down(&f, &b));
	b.state = AG_BACKEND_DRAINING;
	CU_ASSERT(!ag_flow__backend_down(&f, &b));
	b.state = AG_BACKEND_UNUSED;
	CU_ASSERT(!ag_flow__backend_down(&f, &b));
	/* The id now names another endpoint: its health is not the flow's. */
	b.state = AG_BACKEND_DOWN;
	b.addr = ag_htonl(0x0a01010c);
	CU_ASSERT(!ag_flow__backend_down(&f, &b));
}

/* ---------- TCP flags and state (flow.h) ---------- */

/* TCP header flag bits, written out here rather than taken from the core. */
#define T_FIN 0x01
#define T_SYN 0x02
#define T_RST 0x04
#define T_PSH 0x08
#define T_ACK 0x10
#define T_URG 0x20
#define T_ECE 0x40
#define T_CWR 0x80

/*
 * netfilter conntrack's tcp_valid_flags[] (nf_conntrack_proto_tcp.c), indexed
 * as conntrack does by the flags without PSH, ECE and CWR.
 */
static int nf_flags_valid(uint8_t flags)
{
	static const uint8_t valid[(T_FIN | T_SYN | T_RST | T_ACK | T_URG) + 1] = {
	    [T_SYN] = 1,	 [T_SYN | T_URG] = 1, [T_SYN | T_ACK] = 1,	   [T_RST] = 1,
	    [T_RST | T_ACK] = 1, [T_FIN | T_ACK] = 1, [T_FIN | T_ACK | T_URG] = 1, [T_ACK] = 1,
	    [T_ACK | T_URG] = 1,
	};

	return valid[flags & ~(T_PSH | T_ECE | T_CWR)];
}

static void test_tcp_flags_valid(void)
{
	unsigned int f, valid = 0;

	for (f = 0; f < 256; f++) {
		int got = ag_tcp__flags_valid((uint8_t)f);

		if (!!got != nf_flags_valid((uint8_t)f))
			fprintf(stderr, "\n  flags %#04x: got %d, conntrack %d\n", f, got,
				nf_flags_valid((uint8_t)f));
		CU_ASSERT_EQUAL(!!got, nf_flags_valid((uint8_t)f));
		valid += !!got;
	}
	/* nine sets, each with any of PSH, ECE, CWR */
	CU_ASSERT_EQUAL(valid, 9 * 8);
	/* the combinations the issue names */
	CU_ASSERT(!ag_tcp__flags_valid(T_SYN | T_FIN));
	CU_ASSERT(!ag_tcp__flags_valid(T_SYN | T_RST));
	CU_ASSERT(!ag_tcp__flags_valid(0));
	CU_ASSERT(!ag_tcp__flags_valid(T_FIN));
	CU_ASSERT(!ag_tcp__flags_valid(T_FIN | T_PSH | T_URG)); /* Xmas */
	CU_ASSERT(!ag_tcp__flags_valid(T_PSH));
	CU_ASSERT(ag_tcp__flags_valid(T_PSH | T_ACK));
	CU_ASSERT(ag_tcp__flags_valid(T_SYN | T_ECE | T_CWR)); /* an ECN-setup SYN */
	CU_ASSERT(ag_tcp__flags_valid(T_FIN | T_PSH | T_ACK));
}

static void test_tcp_is_syn(void)
{
	unsigned int f, n = 0;

	for (f = 0; f < 256; f++) {
		int want = (f & T_SYN) && !(f & (T_ACK | T_RST | T_FIN));

		CU_ASSERT_EQUAL(!!ag_tcp__is_syn((uint8_t)f), want);
		/* a SYN that creates a flow is also a valid segment: SYN or SYN|URG */
		if (ag_tcp__is_syn((uint8_t)f) && ag_tcp__flags_valid((uint8_t)f)) {
			CU_ASSERT((f & (T_FIN | T_SYN | T_RST | T_ACK | T_URG)) == T_SYN ||
				  (f & (T_FIN | T_SYN | T_RST | T_ACK | T_URG)) == (T_SYN | T_URG));
			n++;
		}
	}
	CU_ASSERT_EQUAL(n, 2 * 8);
	CU_ASSERT(ag_tcp__is_syn(T_SYN));
	CU_ASSERT(ag_tcp__is_syn(T_SYN | T_ECE | T_CWR));
	CU_ASSERT(!ag_tcp__is_syn(T_SYN | T_ACK));
	CU_ASSERT(!ag_tcp__is_syn(T_SYN | T_RST));
	CU_ASSERT(!ag_tcp__is_syn(T_SYN | T_FIN));
	CU_ASSERT(!ag_tcp__is_syn(T_ACK));
}

/* The flags byte of a parsed segment, and 0 (invalid) when the header is not all there. */
static void test_tcp_flags_read(void)
{
	struct ag_pkt p;
	struct frame f;
	struct spec s;

	spec_default(&s, IPPROTO_TCP);
	frame_build(&f, &s);
	f.b[f.l4 + 13] = T_FIN | T_ACK | T_ECE;
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	CU_ASSERT_EQUAL(ag_tcp__flags(&p), T_FIN | T_ACK | T_ECE);
	p.data_end = f.b + f.l4 + 19;
	CU_ASSERT_EQUAL(ag_tcp__flags(&p), 0);
	frame_free(&f);
}

/* A segment of a flow, from the client (C) or the backend (B). */
enum { C, B };
struct seg {
	int from;
	uint8_t flags;
};

/*
 * The TCP state of a flow after segs, from its creation by the client's SYN
 * (ag_choice__flow: AG_TCP_SYN_C). Every step only adds bits it did not have.
 */
static uint32_t tcp_run(const struct seg *segs, size_t n)
{
	uint32_t tcp = AG_TCP_SYN_C, add;
	size_t i;

	for (i = 0; i < n; i++) {
		add = segs[i].from == C ? ag_tcp__client_bits(tcp, segs[i].flags)
					: ag_tcp__backend_bits(tcp, segs[i].flags);
		CU_ASSERT_EQUAL(add & tcp, 0);
		tcp |= add;
	}
	return tcp;
}

#define TCP_RUN(...)                                                                               \
	tcp_run((const struct seg[]){__VA_ARGS__},                                                 \
		sizeof((const struct seg[]){__VA_ARGS__}) / sizeof(struct seg))

#define S_EST	 (AG_TCP_SYN_C | AG_TCP_SYNACK_B | AG_TCP_EST)
#define S_CLOSED (S_EST | AG_TCP_FIN_C | AG_TCP_FIN_B)

static void test_tcp_transitions(void)
{
	/* the handshake: SYN, SYN-ACK, ACK */
	CU_ASSERT_EQUAL(TCP_RUN({C, T_SYN}), AG_TCP_SYN_C); /* a retransmitted SYN adds nothing */
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK}), AG_TCP_SYN_C | AG_TCP_SYNACK_B);
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK}, {C, T_ACK}), S_EST);
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK | T_ECE}, {C, T_ACK | T_PSH}), S_EST);
	/* a client ACK before the SYN-ACK establishes nothing, nor does a backend ACK */
	CU_ASSERT_EQUAL(TCP_RUN({C, T_ACK}), AG_TCP_SYN_C);
	CU_ASSERT_EQUAL(TCP_RUN({C, T_ACK}, {B, T_SYN | T_ACK}), AG_TCP_SYN_C | AG_TCP_SYNACK_B);
	CU_ASSERT_EQUAL(TCP_RUN({C, T_ACK}, {B, T_SYN | T_ACK}, {C, T_ACK}), S_EST);
	CU_ASSERT_EQUAL(TCP_RUN({B, T_ACK}, {C, T_ACK}), AG_TCP_SYN_C);
	/* the client's SYN|ACK (simultaneous open) is not the third step */
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK}, {C, T_SYN | T_ACK}),
			AG_TCP_SYN_C | AG_TCP_SYNACK_B);
	/* data both ways changes nothing */
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK}, {C, T_ACK}, {C, T_PSH | T_ACK},
				{B, T_PSH | T_ACK}, {B, T_ACK | T_URG}),
			S_EST);

	/* FIN both ways, in either order, closes; one FIN does not */
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK}, {C, T_ACK}, {C, T_FIN | T_ACK}),
			S_EST | AG_TCP_FIN_C);
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK}, {C, T_ACK}, {B, T_FIN | T_ACK}),
			S_EST | AG_TCP_FIN_B);
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK}, {C, T_ACK}, {C, T_FIN | T_ACK},
				{B, T_FIN | T_ACK}, {C, T_ACK}),
			S_CLOSED);
	CU_ASSERT_EQUAL(
	    TCP_RUN({B, T_SYN | T_ACK}, {C, T_ACK}, {B, T_FIN | T_PSH | T_ACK}, {C, T_FIN | T_ACK}),
	    S_CLOSED);
	/* the client's FIN|ACK right after the SYN-ACK is also its third step */
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK}, {C, T_FIN | T_ACK}), S_EST | AG_TCP_FIN_C);

	/* a RST from either side, at any stage */
	CU_ASSERT_EQUAL(TCP_RUN({C, T_RST}), AG_TCP_SYN_C | AG_TCP_RST);
	CU_ASSERT_EQUAL(TCP_RUN({B, T_RST | T_ACK}), AG_TCP_SYN_C | AG_TCP_RST); /* port closed */
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK}, {C, T_ACK}, {C, T_RST | T_ACK}),
			S_EST | AG_TCP_RST);
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK}, {C, T_ACK}, {B, T_RST}), S_EST | AG_TCP_RST);
	/* and nothing after it takes anything away */
	CU_ASSERT_EQUAL(TCP_RUN({B, T_SYN | T_ACK}, {C, T_ACK}, {B, T_RST}, {C, T_ACK},
				{B, T_SYN | T_ACK}, {C, T_SYN}),
			S_EST | AG_TCP_RST);
}

/* Every state and every flags byte: only new bits, each side only its own, as specified. */
static void test_tcp_bits_exhaustive(void)
{
	const uint32_t all =
	    AG_TCP_SYN_C | AG_TCP_SYNACK_B | AG_TCP_EST | AG_TCP_FIN_C | AG_TCP_FIN_B | AG_TCP_RST;
	uint32_t cur, want, bad = 0;
	unsigned int f;

	for (cur = 0; cur <= all; cur++) {
		for (f = 0; f < 256; f++) {
			uint32_t cb = ag_tcp__client_bits(cur, (uint8_t)f);
			uint32_t bb = ag_tcp__backend_bits(cur, (uint8_t)f);

			want = ((f & T_RST) ? AG_TCP_RST : 0) | ((f & T_FIN) ? AG_TCP_FIN_C : 0) |
			       ((f & T_ACK) && !(f & T_SYN) && (cur & AG_TCP_SYNACK_B) ? AG_TCP_EST
										       : 0);
			bad += cb != (want & ~cur);
			want = ((f & T_RST) ? AG_TCP_RST : 0) | ((f & T_FIN) ? AG_TCP_FIN_B : 0) |
			       ((f & T_SYN) && (f & T_ACK) ? AG_TCP_SYNACK_B : 0);
			bad += bb != (want & ~cur);
			bad += (cb & cur) != 0 || (bb & cur) != 0;
			bad += (cb & ~(AG_TCP_RST | AG_TCP_FIN_C | AG_TCP_EST)) != 0;
			bad += (bb & ~(AG_TCP_RST | AG_TCP_FIN_B | AG_TCP_SYNACK_B)) != 0;
		}
		/* closed: a RST, or a FIN both ways; half-open: neither closed nor established */
		want = (cur & AG_TCP_RST) || ((cur & AG_TCP_FIN_C) && (cur & AG_TCP_FIN_B));
		CU_ASSERT_EQUAL(!!ag_tcp__closed(cur), want);
		CU_ASSERT_EQUAL(!!ag_tcp__half_open(cur), !want && !(cur & AG_TCP_EST));
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(ag_tcp__half_open(AG_TCP_SYN_C));
	CU_ASSERT(ag_tcp__half_open(AG_TCP_SYN_C | AG_TCP_SYNACK_B));
	CU_ASSERT(!ag_tcp__half_open(S_EST));
	CU_ASSERT(!ag_tcp__closed(S_EST | AG_TCP_FIN_C));
	CU_ASSERT(ag_tcp__closed(AG_TCP_SYN_C | AG_TCP_RST));
	CU_ASSERT(!ag_tcp__half_open(AG_TCP_SYN_C | AG_TCP_RST));
}

#define NS 1000000000ULL

static void test_flow_timeout(void)
{
	const uint32_t all =
	    AG_TCP_SYN_C | AG_TCP_SYNACK_B | AG_TCP_EST | AG_TCP_FIN_C | AG_TCP_FIN_B | AG_TCP_RST;
	struct ag_settings s;
	uint32_t tcp;

	good_settings(&s);
	CU_ASSERT_EQUAL(ag_flow__timeout_ns(&s, IPPROTO_TCP, AG_TCP_SYN_C), 5 * NS);
	CU_ASSERT_EQUAL(ag_flow__timeout_ns(&s, IPPROTO_TCP, AG_TCP_SYN_C | AG_TCP_SYNACK_B),
			5 * NS);
	CU_ASSERT_EQUAL(ag_flow__timeout_ns(&s, IPPROTO_TCP, S_EST), 340 * NS);
	CU_ASSERT_EQUAL(ag_flow__timeout_ns(&s, IPPROTO_TCP, S_EST | AG_TCP_FIN_C), 340 * NS);
	CU_ASSERT_EQUAL(ag_flow__timeout_ns(&s, IPPROTO_TCP, S_CLOSED), 10 * NS);
	CU_ASSERT_EQUAL(ag_flow__timeout_ns(&s, IPPROTO_TCP, S_EST | AG_TCP_RST), 10 * NS);
	CU_ASSERT_EQUAL(ag_flow__timeout_ns(&s, IPPROTO_TCP, AG_TCP_SYN_C | AG_TCP_RST), 10 * NS);
	CU_ASSERT_EQUAL(ag_flow__timeout_ns(&s, IPPROTO_UDP, 0), 30 * NS);
	/* distinct values, so that every state shows which timeout it got */
	s.tcp_idle_ns = 1;
	s.udp_idle_ns = 2;
	s.tcp_syn_idle_ns = 3;
	s.tcp_closing_ns = 4;
	for (tcp = 0; tcp <= all; tcp++) {
		uint64_t want = ag_tcp__closed(tcp) ? 4 : (tcp & AG_TCP_EST) ? 1 : 3;

		CU_ASSERT_EQUAL(ag_flow__timeout_ns(&s, IPPROTO_TCP, tcp), want);
		CU_ASSERT_EQUAL(ag_flow__timeout_ns(&s, IPPROTO_UDP, tcp), 2);
	}
}

/* ---------- new-flow budget (ag_bucket__take) ---------- */

/* Flows admitted from b at rate, all at time now, until the first refusal (at most limit). */
static uint64_t bucket_drain(struct ag_bucket *b, uint32_t rate, uint64_t now, uint64_t limit)
{
	uint64_t n = 0;

	while (n < limit && ag_bucket__take(b, rate, now))
		n++;
	return n;
}

static void test_bucket(void)
{
	static const uint32_t rates[] = {1, 7, 1000, 100000};
	const uint64_t t0 = 5000 * NS;
	struct ag_bucket b;
	unsigned __int128 want;
	unsigned int i;

	/* rate 0: no limit, and the bucket is not even written */
	memset(&b, 0, sizeof(b));
	CU_ASSERT_EQUAL(bucket_drain(&b, 0, t0, 1000000), 1000000);
	CU_ASSERT(b.stamp_ns == 0 && b.tokens_milli == 0);

	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		uint32_t r = rates[i];

		/* a new bucket holds one second's worth, and no more after a long pause */
		memset(&b, 0, sizeof(b));
		CU_ASSERT_EQUAL(bucket_drain(&b, r, t0, 4ULL * r), r);
		CU_ASSERT_EQUAL(bucket_drain(&b, r, t0 + 5 * NS, 4ULL * r), r);
		CU_ASSERT_EQUAL(bucket_drain(&b, r, t0 + 6 * NS, 4ULL * r), r);
		/* half a second gives half a second's worth */
		CU_ASSERT_EQUAL(bucket_drain(&b, r, t0 + 6 * NS + NS / 2, 4ULL * r), r / 2);
	}
	/* refill in proportion to the time gone by: 1000/s is one flow per ms */
	memset(&b, 0, sizeof(b));
	CU_ASSERT_EQUAL(bucket_drain(&b, 1000, t0, 5000), 1000);
	CU_ASSERT_EQUAL(bucket_drain(&b, 1000, t0 + 10 * NS / 1000, 5000), 10);
	CU_ASSERT_EQUAL(bucket_drain(&b, 1000, t0 + 10 * NS / 1000 + 2500000, 5000), 2);
	CU_ASSERT_EQUAL(b.tokens_milli, 500); /* the half flow left waits for the next one */
	CU_ASSERT_EQUAL(bucket_drain(&b, 1000, t0 + 10 * NS / 1000 + 3000000, 5000), 1);
	/* rate 1: one a second */
	memset(&b, 0, sizeof(b));
	CU_ASSERT_EQUAL(bucket_drain(&b, 1, t0, 10), 1);
	CU_ASSERT_EQUAL(bucket_drain(&b, 1, t0 + NS / 2, 10), 0);
	CU_ASSERT_EQUAL(bucket_drain(&b, 1, t0 + NS, 10), 1);

	/* no overflow at the largest rate, just under a second after an empty bucket */
	b.stamp_ns = t0;
	b.tokens_milli = 0;
	CU_ASSERT_EQUAL(ag_bucket__take(&b, 0xffffffffu, t0 + NS - 1), 1);
	want = (unsigned __int128)(NS - 1) * 0xffffffffu / 1000000 - 1000;
	CU_ASSERT(b.tokens_milli == (uint64_t)want);
	CU_ASSERT(b.tokens_milli < 0xffffffffULL * 1000);
	/* nor from a full one: capped at one second's worth */
	b.stamp_ns = t0;
	b.tokens_milli = 0xffffffffULL * 1000;
	CU_ASSERT_EQUAL(ag_bucket__take(&b, 0xffffffffu, t0 + NS - 1), 1);
	CU_ASSERT_EQUAL(b.tokens_milli, 0xffffffffULL * 1000 - 1000);

	/* the clock going backwards refills nothing (no 2^64 ns pause) */
	b.stamp_ns = t0;
	b.tokens_milli = 500;
	CU_ASSERT_EQUAL(ag_bucket__take(&b, 1000, t0 - NS / 2), 0);
	CU_ASSERT_EQUAL(b.tokens_milli, 500);
	CU_ASSERT_EQUAL(ag_bucket__take(&b, 1000, t0 - 3 * NS), 0);
	CU_ASSERT_EQUAL(b.tokens_milli, 500);
	CU_ASSERT_EQUAL(ag_bucket__take(&b, 0xffffffffu, t0 - 3 * NS - 1), 0);
	CU_ASSERT_EQUAL(b.tokens_milli, 500);
}

/*
 * The budget holds its rate however often it is asked: a CPU under a new-flow
 * flood calls it for every packet, far more often than one thousandth of a
 * flow's refill time. Each case: an empty bucket, a call every dt ns for 2 s.
 */
static void test_bucket_frequent(void)
{
	static const struct {
		uint32_t rate;
		uint64_t dt;
	} cases[] = {
	    {1000, 500},   /* 2 Mpps on one CPU */
	    {100, 5952},   /* 168,000 pps (issue 9's SYN flood) on one CPU */
	    {10000, 150},  /* 6.7 Mpps */
	    {1000, 1000},  /* exactly one thousandth of a flow per call */
	    {50000, 1000}, /* 1 Mpps, 50 thousandths per call */
	};
	const uint64_t t0 = 5000 * NS;
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ag_bucket b = {.stamp_ns = t0, .tokens_milli = 0};
		uint64_t t, admitted = 0, want = 2ULL * cases[i].rate;

		for (t = t0 + cases[i].dt; t <= t0 + 2 * NS; t += cases[i].dt)
			admitted += ag_bucket__take(&b, cases[i].rate, t);
		if (admitted < want * 99 / 100 || admitted > want)
			fprintf(
			    stderr,
			    "\n  rate %u, a call every %llu ns: %llu admitted in 2 s, want %llu\n",
			    cases[i].rate, (unsigned long long)cases[i].dt,
			    (unsigned long long)admitted, (unsigned long long)want);
		CU_ASSERT(admitted >= want * 99 / 100 && admitted <= want);
	}
}

/* ---------- SYN authentication: cookie, challenge ACK, challenge segment ---------- */

static void test_syn_challenge_ack(void)
{
	static const uint32_t edge[] = {0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff};
	unsigned int i, j, n, bad = 0;

	for (i = 0; i < 7; i++)
		for (j = 0; j < 7; j++) {
			uint32_t ack = ag_syn__challenge_ack(edge[j], edge[i]);

			bad += ack == edge[i] + 1;
			bad += (ack & ~1u) != (edge[j] & ~1u);
		}
	rng_seed(0xacc);
	for (n = 0; n < 1000000; n++) {
		uint32_t seq = rng_next(), cookie = rng_next();
		uint32_t ack = ag_syn__challenge_ack(cookie, seq);

		bad += ack == seq + 1;
		bad += (ack & ~1u) != (cookie & ~1u);
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* the one ACK a SYN-SENT client accepts for ISS 0xffffffff is 0: never sent */
	CU_ASSERT_EQUAL(ag_syn__challenge_ack(0, 0xffffffffu), 1);
	CU_ASSERT_EQUAL(ag_syn__challenge_ack(0xffffffffu, 0xffffffffu), 0xffffffffu);
	CU_ASSERT_EQUAL(ag_syn__challenge_ack(0x100, 0xff), 0x101);
}

static void test_syn_cookie(void)
{
	const uint64_t w = 1ULL << AG_SYN_COOKIE_SHIFT, secret = 0x0123456789abcdefULL;
	const uint64_t win = 1000 * w, now0 = win + w / 3; /* a third into window 1000 */
	unsigned int n, bad = 0, moves = 0;

	rng_seed(0xc00c1e);
	for (n = 0; n < 10000; n++) {
		uint64_t other = ((uint64_t)rng_next() << 32 | rng_next()) | 1;
		struct ag_flow_key k, k2;
		uint32_t c;

		random_key(&k);
		k.proto = IPPROTO_TCP;
		c = ag_syn__cookie(&k, secret, now0);
		/* the same all through its window */
		bad += c != ag_syn__cookie(&k, secret, win);
		bad += c != ag_syn__cookie(&k, secret, win + w - 1);
		moves += c != ag_syn__cookie(&k, secret, win + w);
		/* valid in its window and the next, the low bit aside */
		bad += !ag_syn__cookie_ok(&k, secret, now0, c);
		bad += !ag_syn__cookie_ok(&k, secret, now0, c ^ 1);
		bad += !ag_syn__cookie_ok(&k, secret, win, c);
		bad += !ag_syn__cookie_ok(&k, secret, win + w, c);
		bad += !ag_syn__cookie_ok(&k, secret, win + 2 * w - 1, c ^ 1);
		/* not two windows later, nor before it was made, nor any other bit */
		bad += ag_syn__cookie_ok(&k, secret, win + 2 * w, c);
		bad += ag_syn__cookie_ok(&k, secret, win - 1, c);
		bad += ag_syn__cookie_ok(&k, secret, now0, c ^ 2);
		bad += ag_syn__cookie_ok(&k, secret, now0, c ^ 0x80000000u);
		/* not for another tuple */
		k2 = k;
		k2.sport ^= ag_htons(1);
		bad += ag_syn__cookie_ok(&k2, secret, now0, c);
		k2 = k;
		k2.dport ^= ag_htons(0x100);
		bad += ag_syn__cookie_ok(&k2, secret, now0, c);
		k2 = k;
		k2.saddr.v4 ^= ag_htonl(1);
		bad += ag_syn__cookie_ok(&k2, secret, now0, c);
		k2 = k;
		k2.daddr.v4 ^= ag_htonl(0x80);
		bad += ag_syn__cookie_ok(&k2, secret, now0, c);
		/* nor under another secret: a random one, or one that differs in its low half */
		bad += ag_syn__cookie_ok(&k, other, now0, c);
		bad += ag_syn__cookie_ok(&k, secret ^ 0x10, now0, c);
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* the window is part of the cookie (a 2^-32 chance each that it is not) */
	CU_ASSERT(moves >= 9999);
}

static uint32_t get32(const uint8_t *b, size_t off)
{
	return (uint32_t)get16(b, off) << 16 | get16(b, off + 2);
}

/*
 * The challenge answering a SYN, checked field by field and both checksums
 * summed in full here: a SYN-ACK from the VIP back to the client whose ACK is
 * the challenge ACK, and whose RST answer (SEQ = that ACK) passes the cookie.
 */
static void check_syn_challenge(unsigned int n, uint32_t seq)
{
	const uint64_t secret = 0xfeedface0badf00dULL, now = 777 * NS;
	uint8_t mac[12], tags[8];
	struct ag_flow_key k;
	struct ag_pkt p;
	struct frame f;
	struct spec s;
	uint32_t cookie, ack, acc;
	size_t l3, l4;
	int len;

	random_tcp_spec(&s, n);			 /* TCP options too: a SYN's MSS, SACK, TS, WS */
	s.payload = n % 5 ? 0 : rng_next() % 40; /* TCP Fast Open data */
	frame_build(&f, &s);
	put32(f.b, f.l4 + 4, seq);
	f.b[f.l4 + 13] = n % 4 ? T_SYN : T_SYN | T_ECE | T_CWR;
	fix_checksums(f.b, f.l3, &s);
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	memcpy(mac, f.b, 12);
	memcpy(tags, f.b + 12, f.l3 - 14);
	ag_flow_key__from_pkt(&k, &p);
	cookie = ag_syn__cookie(&k, secret, now);

	len = ag_tcp__make_syn_challenge(&p, cookie);
	l3 = f.l3;
	l4 = l3 + 20;
	CU_ASSERT_EQUAL_FATAL(len, (int)(l4 + 20));
	/* Ethernet: MACs swapped, tags and ethertype kept */
	CU_ASSERT(memcmp(f.b, mac + 6, 6) == 0 && memcmp(f.b + 6, mac, 6) == 0);
	CU_ASSERT(memcmp(f.b + 12, tags, l3 - 14) == 0 && get16(f.b, l3 - 2) == 0x0800);
	/* IPv4: 20 bytes, VIP -> client, DF, TTL 64, header checksum right */
	CU_ASSERT(f.b[l3] == 0x45 && get16(f.b, l3 + 2) == 40 && get16(f.b, l3 + 6) == 0x4000);
	CU_ASSERT(f.b[l3 + 8] == 64 && f.b[l3 + 9] == IPPROTO_TCP);
	CU_ASSERT(get32(f.b, l3 + 12) == s.daddr && get32(f.b, l3 + 16) == s.saddr);
	CU_ASSERT_EQUAL(ref_fold(ref_sum(f.b + l3, 20, 0)), 0xffff);
	/* TCP: ports swapped, SYN|ACK, no options, an open window, checksum right */
	CU_ASSERT(get16(f.b, l4) == s.dport && get16(f.b, l4 + 2) == s.sport);
	CU_ASSERT(f.b[l4 + 12] == 0x50 && f.b[l4 + 13] == (T_SYN | T_ACK));
	CU_ASSERT(get16(f.b, l4 + 14) != 0 && get16(f.b, l4 + 18) == 0);
	acc = ref_sum(f.b + l3 + 12, 8, 0) + IPPROTO_TCP + 20;
	CU_ASSERT_EQUAL(ref_fold(ref_sum(f.b + l4, 20, acc)), 0xffff);
	/* the ACK: the challenge ACK, never the one the client would accept */
	ack = get32(f.b, l4 + 8);
	CU_ASSERT_EQUAL(ack, ag_syn__challenge_ack(cookie, seq));
	CU_ASSERT(ack != seq + 1);
	/* the client's RST <SEQ=SEG.ACK> proves its address */
	CU_ASSERT(ag_syn__cookie_ok(&k, secret, now, ack));
	/* p describes the answer, and the answer parses */
	CU_ASSERT_PTR_EQUAL(p.data_end, f.b + len);
	CU_ASSERT_PTR_EQUAL(p.l4, f.b + l4);
	CU_ASSERT(p.tot_len == 40 && ag_ntohs(p.sport) == s.dport && ag_ntohs(p.dport) == s.sport);
	CU_ASSERT_EQUAL_FATAL(ag_parse(&p, f.b, f.b + len), AG_PARSE_OK);
	CU_ASSERT(ag_tcp__flags_valid(ag_tcp__flags(&p)) && !ag_tcp__is_syn(ag_tcp__flags(&p)));
	frame_free(&f);
}

static void test_syn_challenge(void)
{
	unsigned int n;

	rng_seed(0x5a5a);
	check_syn_challenge(0, 0xffffffffu);
	check_syn_challenge(1, 0xfffffffeu);
	check_syn_challenge(2, 0);
	for (n = 3; n < 3000; n++)
		check_syn_challenge(n, rng_next());
}

/* ---------- ingress hygiene (hygiene.h) ---------- */

/* The tables ag_hyg__new_flow() and ag_hyg__ingress() read: settings and one VIP. */
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

/* The interface frame_build()'s frames are sent to: dst MAC 02:02:02:02:02:01. */
static const struct ag_iface own_iface = {{2, 2, 2, 2, 2, 1}, AG_ROLE_CLIENT, 0};

/* A TCP frame with ihl 5 + len(opts)/4 whose option bytes are opts (checksums right). */
static void frame_with_opts(struct frame *f, const uint8_t *opts, size_t n)
{
	struct spec s;

	spec_default(&s, IPPROTO_TCP);
	s.ihl = (uint8_t)(5 + (n + 3) / 4);
	frame_build(f, &s);
	memset(f->b + f->l3 + 20, 0, (size_t)(s.ihl - 5) * 4);
	memcpy(f->b + f->l3 + 20, opts, n);
	fix_checksums(f->b, f->l3, &s);
}

static void test_hyg_csum(void)
{
	unsigned int n, bit;

	rng_seed(0xc5c5);
	for (n = 0; n < 300; n++) {
		struct ag_pkt p;
		struct frame f;
		struct spec s;

		spec_default(&s, n & 1 ? IPPROTO_TCP : IPPROTO_UDP);
		s.ihl = (uint8_t)(5 + n % 11);
		s.saddr = rng_next();
		s.ttl = (uint8_t)rng_next();
		frame_build(&f, &s);
		CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
		CU_ASSERT(ag_hyg__csum_ok(&p));
		/* Any one bit flipped in the header, options included, is caught. */
		bit = rng_next() % ((unsigned int)s.ihl * 32);
		f.b[f.l3 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (parse_frame(&f, &p) == AG_PARSE_OK)
			CU_ASSERT(!ag_hyg__csum_ok(&p));
		frame_free(&f);
	}
}

/* Option lists and what the walk says of them (RFC 7126 policy, docs/hygiene.md). */
static const struct {
	const char *what;
	uint8_t opts[40];
	size_t n; /* bytes of opts; the header has ceil(n / 4) words of them, zero padded */
	int want;
} opt_cases[] = {
    {"NOPs", {1, 1, 1, 1}, 4, AG_HYG_OK},
    {"40 NOPs (ihl 15)",
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
      1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
     40,
     AG_HYG_OK},
    {"EOL, then junk", {0, 131, 0, 7}, 4, AG_HYG_OK},
    {"router alert", {148, 4, 0, 0}, 4, AG_HYG_OK},
    {"timestamp", {68, 8, 5, 0, 0, 0, 0, 0}, 8, AG_HYG_OK},
    {"record route, 3 slots", {7, 15, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 16, AG_HYG_OK},
    {"unknown type, length 2", {0x99, 2, 1, 1}, 4, AG_HYG_OK},
    {"option ending at the header's end", {1, 1, 148, 6, 0, 0, 0, 0}, 8, AG_HYG_OK},
    {"LSRR", {131, 7, 4, 10, 0, 0, 1, 0}, 8, AG_R_DROP_SOURCE_ROUTE},
    {"SSRR", {137, 7, 4, 10, 0, 0, 1, 0}, 8, AG_R_DROP_SOURCE_ROUTE},
    {"LSRR after a router alert", {148, 4, 0, 0, 131, 3, 4, 0}, 8, AG_R_DROP_SOURCE_ROUTE},
    {"LSRR after NOPs, malformed", {1, 1, 1, 131, 0, 0, 0, 0}, 8, AG_R_DROP_IP_OPTIONS},
    {"length 0", {148, 0, 0, 0}, 4, AG_R_DROP_IP_OPTIONS},
    {"length 1", {148, 1, 0, 0}, 4, AG_R_DROP_IP_OPTIONS},
    {"EOL where the length is", {7, 0, 1, 1}, 4, AG_R_DROP_IP_OPTIONS},
    {"length past the header", {148, 5, 0, 0}, 4, AG_R_DROP_IP_OPTIONS},
    {"length past the header, later", {1, 1, 68, 40, 0, 0, 0, 0}, 8, AG_R_DROP_IP_OPTIONS},
    {"type in the last byte, no length", {1, 1, 1, 148}, 4, AG_R_DROP_IP_OPTIONS},
};

static void test_hyg_options(void)
{
	size_t i;

	for (i = 0; i < sizeof(opt_cases) / sizeof(opt_cases[0]); i++) {
		struct ag_pkt p;
		struct frame f;
		int r;

		frame_with_opts(&f, opt_cases[i].opts, opt_cases[i].n);
		CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
		r = ag_hyg__options(&p);
		if (r != opt_cases[i].want)
			fprintf(stderr, "\n  options '%s': got %d, want %d\n", opt_cases[i].what, r,
				opt_cases[i].want);
		CU_ASSERT_EQUAL(r, opt_cases[i].want);
		/* Through the whole check of a packet to a VIP: the same answer. */
		CU_ASSERT_EQUAL(ag_hyg__ours(&p, &own_iface, AG_ROLE_CLIENT), opt_cases[i].want);
		frame_free(&f);
	}
}

/* Random option bytes: the walk ends, reads nothing past the header (ASan), is consistent. */
static void test_hyg_options_random(void)
{
	unsigned int n, k, counts[3] = {0, 0, 0};

	rng_seed(0x0b70);
	for (n = 0; n < 20000; n++) {
		uint8_t opts[40];
		size_t len = 4 * (1 + rng_next() % 10);
		struct ag_pkt p;
		struct frame f;
		int r;

		for (k = 0; k < len; k++) {
			uint32_t v = rng_next();

			/* Mostly plausible bytes: NOP, small lengths (EOL), source routes. */
			switch (v % 8) {
			case 0:
			case 1:
				opts[k] = 1;
				break;
			case 2:
			case 3:
				opts[k] = (uint8_t)((v >> 8) % 12);
				break;
			case 4:
				opts[k] = (v >> 8) & 1 ? 131 : 137;
				break;
			default:
				opts[k] = (uint8_t)(v >> 8);
			}
		}
		frame_with_opts(&f, opts, len);
		frame_truncate(&f, f.len); /* exactly the frame: ASan sees an overread */
		CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
		r = ag_hyg__options(&p);
		CU_ASSERT(r == AG_HYG_OK || r == AG_R_DROP_IP_OPTIONS ||
			  r == AG_R_DROP_SOURCE_ROUTE);
		counts[r == AG_HYG_OK ? 0 : r == AG_R_DROP_IP_OPTIONS ? 1 : 2]++;
		frame_free(&f);
	}
	/* The sample reached every answer. */
	printf("\n  options walked: %u forwarded, %u malformed, %u source routes\n", counts[0],
	       counts[1], counts[2]);
	CU_ASSERT(counts[0] > 100 && counts[1] > 100 && counts[2] > 100);
}

static void test_hyg_martians(void)
{
	static const struct {
		uint32_t a;
		int martian;
	} cases[] = {
	    {0x00000000, 1}, {0x00ffffff, 1}, {0x01000000, 0}, {0x7f000001, 1}, {0x7fffffff, 1},
	    {0x80000000, 0}, {0xa9fe0001, 1}, {0xa9feffff, 1}, {0xa9ff0000, 0}, {0xa9fd0000, 0},
	    {0xdfffffff, 0}, {0xe0000001, 1}, {0xefffffff, 1}, {0xf0000000, 1}, {0xffffffff, 1},
	    {0x0a000002, 0}, {0xc633640a, 0}, {0xc0000201, 0}, {0x64400001, 0}, {0xac100001, 0},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CU_ASSERT_EQUAL(ag_hyg__martian(ag_htonl(cases[i].a)), cases[i].martian);
}

static void test_hyg_l2(void)
{
	struct ag_iface none, ifc = own_iface;
	struct ag_pkt p;
	struct frame f;
	struct spec s;

	memset(&none, 0, sizeof(none));
	spec_default(&s, IPPROTO_TCP);
	frame_build(&f, &s);
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	CU_ASSERT_EQUAL(ag_hyg__l2(&p, &ifc), AG_HYG_OK);
	ifc.mac[5] ^= 0x10;
	CU_ASSERT_EQUAL(ag_hyg__l2(&p, &ifc), AG_R_DROP_L2_OTHER_HOST);
	ifc = own_iface;
	ifc.mac[0] ^= 0x04;
	CU_ASSERT_EQUAL(ag_hyg__l2(&p, &ifc), AG_R_DROP_L2_OTHER_HOST);
	CU_ASSERT_EQUAL(ag_hyg__l2(&p, &none), AG_HYG_OK); /* not registered: not checked */
	memset(f.b, 0xff, 6);
	CU_ASSERT_EQUAL(ag_hyg__l2(&p, &own_iface), AG_R_PASS_L2_MULTICAST);
	f.b[0] = 0x01, f.b[1] = 0x00, f.b[2] = 0x5e, f.b[3] = 0x00, f.b[4] = 0x00, f.b[5] = 0x05;
	CU_ASSERT_EQUAL(ag_hyg__l2(&p, &own_iface), AG_R_PASS_L2_MULTICAST);
	CU_ASSERT_EQUAL(ag_hyg__l2(&p, &none), AG_R_PASS_L2_MULTICAST);
	CU_ASSERT_EQUAL(ag_hyg__no_kernel(AG_R_PASS_L2_MULTICAST), AG_R_DROP_L2_MULTICAST);
	CU_ASSERT_EQUAL(ag_hyg__no_kernel(AG_R_PASS_VLAN_TAGGED), AG_R_DROP_VLAN_TAGGED);
	CU_ASSERT_EQUAL(ag_hyg__no_kernel(AG_R_PASS_NOT_IPV4), AG_R_PASS_NOT_IPV4);
	frame_free(&f);
}

/* The checks of a packet to our addresses, one refusal at a time, in their order. */
static void test_hyg_ours(void)
{
	struct ag_iface both = own_iface;
	struct ag_pkt p;
	struct frame f;
	struct spec s;

	both.roles = AG_ROLE_CLIENT | AG_ROLE_BACKEND;
	spec_default(&s, IPPROTO_TCP);
	frame_build(&f, &s);
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	CU_ASSERT_EQUAL(ag_hyg__ours(&p, &own_iface, AG_ROLE_CLIENT), AG_HYG_OK);
	CU_ASSERT_EQUAL(ag_hyg__ours(&p, &own_iface, AG_ROLE_BACKEND), AG_R_DROP_WRONG_ROLE);
	CU_ASSERT_EQUAL(ag_hyg__ours(&p, &both, AG_ROLE_BACKEND), AG_HYG_OK);
	CU_ASSERT_EQUAL(ag_hyg__ours(&p, &both, AG_ROLE_CLIENT), AG_HYG_OK);
	/* Bad TCP flags (the L4 checksum is not ours to check); then a bad IPv4 checksum
	 * besides: that one is found first. */
	f.b[f.l4 + 13] = AG_TCPF_SYN | AG_TCPF_FIN;
	CU_ASSERT_EQUAL(ag_hyg__ours(&p, &own_iface, AG_ROLE_CLIENT), AG_R_DROP_TCP_FLAGS);
	f.b[f.l3 + 8]--; /* TTL, checksum not updated */
	CU_ASSERT_EQUAL(ag_hyg__ours(&p, &own_iface, AG_ROLE_CLIENT), AG_R_DROP_IP_CSUM);
	CU_ASSERT_EQUAL(ag_hyg__ours(&p, &own_iface, AG_ROLE_BACKEND), AG_R_DROP_WRONG_ROLE);
	frame_free(&f);

	/* Port 0: where no entry matched (no flow or reverse entry ever has one). */
	{
		struct ag_tables t = {NULL, 0};

		spec_default(&s, IPPROTO_UDP);
		s.sport = 0;
		t.vip = ag_htonl(s.daddr);
		frame_build(&f, &s);
		CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
		CU_ASSERT_EQUAL(ag_hyg__ours(&p, &own_iface, AG_ROLE_CLIENT), AG_HYG_OK);
		CU_ASSERT_EQUAL(ag_hyg__no_flow(&t, &p, &own_iface), AG_R_DROP_PORT_ZERO);
		CU_ASSERT_EQUAL(ag_hyg__nat_miss(&p), AG_R_DROP_PORT_ZERO);
		frame_free(&f);
		spec_default(&s, IPPROTO_TCP);
		s.dport = 0;
		frame_build(&f, &s);
		CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
		CU_ASSERT_EQUAL(ag_hyg__no_flow(&t, &p, &own_iface), AG_R_DROP_PORT_ZERO);
		CU_ASSERT_EQUAL(ag_hyg__nat_miss(&p), AG_R_DROP_PORT_ZERO);
		frame_free(&f);
		spec_default(&s, IPPROTO_TCP);
		frame_build(&f, &s);
		CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
		CU_ASSERT_EQUAL(ag_hyg__nat_miss(&p), AG_R_PASS_NO_LISTENER);
		frame_free(&f);
	}
}

/* The first packet of a flow: its source, and what is the kernel's. */
static void test_hyg_new_flow(void)
{
	struct ag_settings st;
	struct ag_tables t = {&st, 0};
	struct ag_pkt p;
	struct frame f;
	struct spec s;

	memset(&st, 0, sizeof(st));
	st.nat_addr_count = 2;
	st.nat_addrs[1] = ag_htonl(0x0aff0002);
	spec_default(&s, IPPROTO_TCP);
	t.vip = ag_htonl(s.daddr);
	frame_build(&f, &s);
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	CU_ASSERT_EQUAL(ag_hyg__new_flow(&t, &p), AG_HYG_OK);
	CU_ASSERT_EQUAL(ag_hyg__no_flow(&t, &p, &own_iface), AG_HYG_OK);
	t.s = NULL; /* no settings: no NAT address to compare */
	CU_ASSERT_EQUAL(ag_hyg__new_flow(&t, &p), AG_HYG_OK);
	t.s = &st;
	frame_free(&f);

	s.saddr = 0x7f000001;
	frame_build(&f, &s);
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	CU_ASSERT_EQUAL(ag_hyg__new_flow(&t, &p), AG_R_DROP_MARTIAN);
	CU_ASSERT_EQUAL(ag_hyg__no_flow(&t, &p, &own_iface), AG_R_DROP_MARTIAN);
	frame_free(&f);
	s.saddr = s.daddr; /* the VIP as source */
	frame_build(&f, &s);
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	CU_ASSERT_EQUAL(ag_hyg__new_flow(&t, &p), AG_R_DROP_SOURCE_OURS);
	frame_free(&f);
	s.saddr = 0x0aff0002; /* the second NAT address as source */
	frame_build(&f, &s);
	CU_ASSERT_EQUAL_FATAL(parse_frame(&f, &p), AG_PARSE_OK);
	CU_ASSERT_EQUAL(ag_hyg__new_flow(&t, &p), AG_R_DROP_SOURCE_OURS);
	/* On a backend-only interface: refused before the source is looked at. */
	{
		struct ag_iface b = own_iface;

		b.roles = AG_ROLE_BACKEND;
		CU_ASSERT_EQUAL(ag_hyg__no_flow(&t, &p, &b), AG_R_DROP_WRONG_ROLE);
	}
	/* Not to a VIP: the kernel's, whatever its source. */
	t.vip = 0;
	CU_ASSERT_EQUAL(ag_hyg__no_flow(&t, &p, &own_iface), AG_R_PASS_NO_LISTENER);
	frame_free(&f);
}

/* What parsing stops at is the kernel's, except to a VIP. */
static void test_hyg_ingress(void)
{
	struct ag_tables t = {NULL, 0};
	struct ag_pkt p;
	struct frame f;
	struct spec s;

	spec_default(&s, IPPROTO_ICMP);
	frame_build(&f, &s);
	CU_ASSERT_EQUAL(ag_hyg__ingress(&t, &p, &own_iface, f.b, f.b + f.len), AG_R_PASS_NOT_L4);
	t.vip = ag_htonl(s.daddr);
	CU_ASSERT_EQUAL(ag_hyg__ingress(&t, &p, &own_iface, f.b, f.b + f.len),
			AG_R_DROP_VIP_NOT_L4);
	f.b[3] ^= 1; /* to another host: refused before anything else */
	CU_ASSERT_EQUAL(ag_hyg__ingress(&t, &p, &own_iface, f.b, f.b + f.len),
			AG_R_DROP_L2_OTHER_HOST);
	frame_free(&f);
	spec_default(&s, IPPROTO_UDP);
	s.frag_off = 0x2000;
	frame_build(&f, &s);
	CU_ASSERT_EQUAL(ag_hyg__ingress(&t, &p, &own_iface, f.b, f.b + f.len), AG_R_DROP_FRAGMENT);
	t.vip = 0;
	CU_ASSERT_EQUAL(ag_hyg__ingress(&t, &p, &own_iface, f.b, f.b + f.len), AG_R_PASS_FRAGMENT);
	frame_free(&f);
	spec_default(&s, IPPROTO_TCP);
	s.vlans = 1;
	s.tpid[0] = 0x8100;
	frame_build(&f, &s);
	f.b[0] = 0x08; /* another host's MAC: the tag decides first */
	CU_ASSERT_EQUAL(ag_hyg__ingress(&t, &p, &own_iface, f.b, f.b + f.len),
			AG_R_PASS_VLAN_TAGGED);
	frame_free(&f);
}

int main(void)
{
	static const struct ag_cu_test tests[] = {
	    {"parse: good frames", test_parse_good},
	    {"parse: bad frames and their reasons", test_parse_bad},
	    {"parse: every truncation", test_parse_every_length},
	    {"flow key from packet", test_flow_key},
	    {"addr: IPv4 in the family-neutral form", test_addr},
	    {"csum: RFC 1624 replace vs recompute", test_csum_replace},
	    {"csum: TTL decrement", test_csum_ttl},
	    {"nat: forward and reverse rewrites", test_nat_forward_reverse},
	    {"nat: UDP computed zero is 0xffff", test_nat_udp_zero},
	    {"nat: UDP without checksum", test_nat_udp_no_csum},
	    {"hash: matches reference lookup3", test_hash_reference},
	    {"hash: IPv4 vectors of 3f11857", test_hash_vectors},
	    {"hash: determinism, seed, pad", test_hash_determinism},
	    {"hash: spread on even source ports", test_hash_spread},
	    {"hash: avalanche", test_hash_avalanche},
	    {"lookup index", test_lookup_index},
	    {"lookup buckets and lanes", test_lookup_buckets},
	    {"nat: port cursor walks the range", test_nat_port_at},
	    {"nat: a claim jumps after AG_NAT_PORT_RUN ports", test_nat_claim_base},
	    {"nat: address choice", test_nat_addr_index},
	    {"settings sanity", test_settings},
	    {"flow life: idle, refresh, keys", test_flow_life},
	    {"tcp: valid flags as conntrack", test_tcp_flags_valid},
	    {"tcp: which segment opens a flow", test_tcp_is_syn},
	    {"tcp: flags of a parsed segment", test_tcp_flags_read},
	    {"tcp: state transitions", test_tcp_transitions},
	    {"tcp: state bits, every state and flags", test_tcp_bits_exhaustive},
	    {"flow: timeout by state", test_flow_timeout},
	    {"bucket: budget, burst, refill, limits", test_bucket},
	    {"bucket: rate held under frequent calls", test_bucket_frequent},
	    {"syn auth: challenge ACK never acceptable", test_syn_challenge_ack},
	    {"syn auth: cookie windows, tuple, secret", test_syn_cookie},
	    {"syn auth: challenge SYN-ACK, every field", test_syn_challenge},
	    {"tcp rst: RFC 9293 reset, every byte", test_tcp_rst},
	    {"reasons: pass, drop, act groups", test_reason_groups},
	    {"flow: backend down", test_backend_down},
	    {"hygiene: IPv4 header checksum", test_hyg_csum},
	    {"hygiene: IPv4 options, edge cases", test_hyg_options},
	    {"hygiene: IPv4 options, random bytes", test_hyg_options_random},
	    {"hygiene: martian sources", test_hyg_martians},
	    {"hygiene: L2 destination", test_hyg_l2},
	    {"hygiene: packets to our addresses", test_hyg_ours},
	    {"hygiene: first packet of a flow", test_hyg_new_flow},
	    {"hygiene: what parsing stops at", test_hyg_ingress},
	};

	return AG_CU_MAIN("core", NULL, NULL, tests);
}
