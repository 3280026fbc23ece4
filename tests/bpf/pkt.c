/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "pkt.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

/*
 * Textbook RFC 1071: big-endian 16-bit words, odd byte padded with zero,
 * carries folded at the end. Slow and obvious on purpose.
 */
uint16_t ag_pkt__csum(const uint8_t *p, size_t len, uint32_t sum)
{
	uint64_t s = sum;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

int ag_pkt__l3_off(const struct ag_pkt_spec *spec)
{
	return 14 + 4 * spec->nvlan;
}

int ag_pkt__build(const struct ag_pkt_spec *s, uint8_t *buf)
{
	uint8_t *ip, *l4;
	int off, i, ihl, l4len, len;
	uint16_t csum;

	memset(buf, 0, AG_PKT_MAX);
	memcpy(buf, s->dmac, 6);
	memcpy(buf + 6, s->smac, 6);
	off = 12;
	for (i = 0; i < s->nvlan && i < 2; i++) {
		put16(buf + off, s->vlan_tpid[i] ? s->vlan_tpid[i] : 0x8100);
		put16(buf + off + 2, s->vlan_tci[i]);
		off += 4;
	}
	put16(buf + off, s->ethertype ? s->ethertype : 0x0800);
	off += 2;

	if (s->ethertype && s->ethertype != 0x0800) {
		for (i = 0; i < s->raw_l3_len && off + i < AG_PKT_MAX; i++)
			buf[off + i] = (uint8_t)(0xa0 + i);
		len = off + s->raw_l3_len;
		goto out;
	}

	ip = buf + off;
	ihl = s->ihl ? s->ihl : 5 + s->optlen / 4;
	/* The header really occupies 20 + optlen bytes whatever ihl claims. */
	l4 = ip + 20 + s->optlen;
	if (s->proto == 6)
		l4len = 20 + s->tcp_optlen + s->paylen;
	else if (s->proto == 17)
		l4len = 8 + s->paylen;
	else
		l4len = s->paylen;

	ip[0] = (uint8_t)((s->version ? s->version : 4) << 4 | (ihl & 0xf));
	ip[1] = s->tos;
	put16(ip + 2, s->tot_len ? s->tot_len : (uint16_t)(20 + s->optlen + l4len));
	put16(ip + 4, s->id);
	put16(ip + 6, s->frag);
	ip[8] = s->ttl;
	ip[9] = s->proto;
	put32(ip + 12, s->saddr);
	put32(ip + 16, s->daddr);
	if (s->optlen)
		memcpy(ip + 20, s->opts, s->optlen);
	put16(ip + 10, ag_pkt__csum(ip, 20 + s->optlen, 0) ^ (s->ip_csum_bogus ? 0x0101 : 0));

	if (s->proto == 6) {
		put16(l4, s->sport);
		put16(l4 + 2, s->dport);
		put32(l4 + 4, s->seq);
		put32(l4 + 8, s->ack);
		l4[12] = (uint8_t)((5 + s->tcp_optlen / 4) << 4);
		l4[13] = s->tcp_flags;
		put16(l4 + 14, s->window_set ? s->window : 64240);
		if (s->tcp_optlen)
			memcpy(l4 + 20, s->tcp_opts, s->tcp_optlen);
	} else if (s->proto == 17) {
		put16(l4, s->sport);
		put16(l4 + 2, s->dport);
		put16(l4 + 4, (uint16_t)l4len);
	}
	if (s->paylen)
		memcpy(l4 + (s->proto == 6    ? 20 + s->tcp_optlen
			     : s->proto == 17 ? 8
					      : 0),
		       s->payload, s->paylen);

	if (s->proto == 6 || s->proto == 17) {
		uint8_t pseudo[12];

		put32(pseudo, s->saddr);
		put32(pseudo + 4, s->daddr);
		pseudo[8] = 0;
		pseudo[9] = s->proto;
		put16(pseudo + 10, (uint16_t)l4len);
		/* Sum the pseudo header as its own words, then the segment. */
		csum = ag_pkt__csum(pseudo, sizeof(pseudo), 0);
		csum = ag_pkt__csum(l4, l4len, (uint16_t)~csum);
		if (s->proto == 17 && csum == 0)
			csum = 0xffff; /* RFC 768: 0 means "no checksum" */
		if (s->proto == 17 && s->udp_csum_zero)
			csum = 0;
		if (s->l4_csum_bogus)
			csum ^= 0x5a5a;
		put16(l4 + (s->proto == 6 ? 16 : 6), csum);
	}
	len = (int)(l4 - buf) + l4len;
out:
	if (s->truncate > 0 && s->truncate < len)
		len = s->truncate;
	return len;
}

bool ag_pkt__csums_ok(const uint8_t *frame, int len, int l3_off)
{
	const uint8_t *ip = frame + l3_off;
	uint8_t pseudo[12];
	int ihl, tot_len, l4len;
	uint16_t sum;

	if (l3_off + 20 > len)
		return false;
	ihl = (ip[0] & 0xf) * 4;
	tot_len = ip[2] << 8 | ip[3];
	if (ihl < 20 || tot_len < ihl || l3_off + tot_len > len)
		return false;
	/* A valid header or segment sums, checksum included, to 0xffff: ~sum is 0. */
	if (ag_pkt__csum(ip, (size_t)ihl, 0) != 0)
		return false;
	if (ip[9] != 6 && ip[9] != 17)
		return true;
	l4len = tot_len - ihl;
	if (ip[9] == 17 && l4len >= 8 && ip[ihl + 6] == 0 && ip[ihl + 7] == 0)
		return true; /* RFC 768: no checksum */
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = ip[9];
	put16(pseudo + 10, (uint16_t)l4len);
	sum = ag_pkt__csum(pseudo, sizeof(pseudo), 0);
	return ag_pkt__csum(ip + ihl, (size_t)l4len, (uint16_t)~sum) == 0;
}

void ag_pkt__hexdump(FILE *out, const uint8_t *p, int len)
{
	int i;

	for (i = 0; i < len; i++)
		fprintf(out, "%s%02x%s", i % 16 ? "" : "    ", p[i],
			i % 16 == 15 || i == len - 1 ? "\n" : " ");
}

bool ag_pkt__compare(FILE *out, const char *what, const uint8_t *want, int want_len,
		     const uint8_t *got, int got_len)
{
	int i, row, max = want_len > got_len ? want_len : got_len;

	if (want_len == got_len && !memcmp(want, got, want_len))
		return true;
	fprintf(out, "\n  %s: output differs (want %d bytes, got %d); [xx] marks a difference\n",
		what, want_len, got_len);
	for (row = 0; row < max; row += 16) {
		fprintf(out, "  %04x want:", row);
		for (i = row; i < row + 16 && i < max; i++) {
			bool diff = i >= want_len || i >= got_len || want[i] != got[i];

			if (i < want_len)
				fprintf(out, diff ? "[%02x]" : " %02x ", want[i]);
			else
				fprintf(out, "    ");
		}
		fprintf(out, "\n  %04x got: ", row);
		for (i = row; i < row + 16 && i < max; i++) {
			bool diff = i >= want_len || i >= got_len || want[i] != got[i];

			if (i < got_len)
				fprintf(out, diff ? "[%02x]" : " %02x ", got[i]);
			else
				fprintf(out, "    ");
		}
		fprintf(out, "\n");
	}
	return false;
}
