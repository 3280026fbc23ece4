/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packet fixtures for the BPF tests: a small builder for Ethernet / VLAN /
 * IPv4 / TCP|UDP frames whose checksums are computed here, from scratch, by a
 * plain RFC 1071 byte-pair sum. It deliberately shares no code with
 * dataplane/core: an expected packet is the same spec with the rewritten
 * fields, rebuilt and re-summed in full, so an incremental-update bug in the
 * core cannot cancel itself out in the comparison.
 */
#ifndef AG_TEST_PKT_H
#define AG_TEST_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "parse.h"
#include <stdio.h>

#define AG_PKT_MAX 1600

struct ag_pkt_spec {
	uint8_t dmac[6];
	uint8_t smac[6];
	int nvlan;	       /* 0..2 tags */
	uint16_t vlan_tpid[2]; /* 0: 0x8100 */
	uint16_t vlan_tci[2];
	uint16_t ethertype; /* after the tags; 0: IPv4 */

	/* IPv4; addresses in host order (1.2.3.4 = 0x01020304) */
	uint8_t version; /* 0: 4 */
	uint8_t ihl;	 /* 0: 5 + optlen / 4 */
	uint8_t tos;
	uint16_t id;
	uint16_t frag; /* flags and offset, host order */
	uint8_t ttl;
	uint8_t proto;
	uint32_t saddr;
	uint32_t daddr;
	const uint8_t *opts; /* IPv4 options, optlen a multiple of 4 */
	int optlen;
	uint16_t tot_len; /* 0: computed */

	/* TCP / UDP */
	uint16_t sport;
	uint16_t dport;
	uint32_t seq;
	uint32_t ack;
	uint8_t tcp_flags;
	bool window_set; /* TCP window: window when set, else 64240 */
	uint16_t window;
	const uint8_t *tcp_opts; /* TCP options, tcp_optlen a multiple of 4 */
	int tcp_optlen;
	bool udp_csum_zero; /* UDP: transmit checksum 0 (none) */
	bool l4_csum_bogus; /* store a wrong L4 checksum on purpose */
	bool ip_csum_bogus; /* store a wrong IPv4 header checksum on purpose */

	const uint8_t *payload;
	int paylen;

	int raw_l3_len; /* non-IPv4 ethertype: this many filler bytes */
	int truncate;	/* > 0: cut the frame to this many bytes */
};

#define AG_IP4(a, b, c, d)                                                                         \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* Build the frame into buf (AG_PKT_MAX bytes); returns its length. */
int ag_pkt__build(const struct ag_pkt_spec *spec, uint8_t *buf);

/* Offset of the IPv4 header in a frame built from spec. */
int ag_pkt__l3_off(const struct ag_pkt_spec *spec);

/* RFC 1071 checksum over len bytes, starting from a 32-bit partial sum. */
uint16_t ag_pkt__csum(const uint8_t *p, size_t len, uint32_t sum);

/*
 * True when the IPv4 header at frame + l3_off and its TCP or UDP segment
 * (the IPv4 total length) carry valid checksums: what a receiver checks of
 * a frame the program built itself (a RST, a SYN challenge).
 */
bool ag_pkt__csums_ok(const uint8_t *frame, int len, int l3_off);

/*
 * True when both buffers are equal; otherwise prints what (a label), a row
 * by row hex dump of both with differing bytes marked, and returns false.
 */
bool ag_pkt__compare(FILE *out, const char *what, const uint8_t *want, int want_len,
		     const uint8_t *got, int got_len);

void ag_pkt__hexdump(FILE *out, const uint8_t *p, int len);

#endif /* AG_TEST_PKT_H */
