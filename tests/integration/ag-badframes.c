// SPDX-License-Identifier: BSD-3-Clause
/*
 * ag-badframes: a corpus of malformed frames (and a few valid ones) for the
 * edge's client link, a sender that replays it, and a watcher that says which
 * of them arrive where (tests/integration/19-malformed.sh).
 *
 *   ag-badframes list
 *   ag-badframes send --dev IF --dst-mac MAC --client ADDR --vip ADDR --nat ADDR
 *                     [--group G]... [--reply-timeout-ms N]
 *   ag-badframes watch --dev IF --name NAME
 *
 * Every frame has a group (the refusal it exercises, e.g. "ip-checksum") and
 * a label; "valid" frames (TCP SYNs and UDP datagrams from the client to the
 * VIP's listeners, some with well-formed IP options) must be forwarded, every
 * other one must not. Each frame carries one defect, the rest is right
 * (checksums computed here, not by the code under test).
 *
 * Markers: frame i has IP ID 0xB000|i; a TCP frame's sequence number is
 * 0xA6B00000|i; UDP, ICMP and other payloads start with "AGBF" and i. After
 * NAT (addresses and ports rewritten) the watcher still knows each frame.
 *
 * send: one frame at a time on an AF_PACKET socket, "sent I GROUP LABEL len=N"
 * each (or "refused ... errno" when the kernel will not send it). For valid
 * UDP frames it first binds their source ports, so the backends' replies find
 * a socket (no ICMP back to the VIP), and with --reply-timeout-ms waits for
 * each reply: "reply I TEXT", then "badframes sent=N refused=N replies=N/M".
 *
 * watch: an AF_PACKET socket on IF, incoming frames only, until SIGTERM or
 * SIGINT. Prints "ready", then "hit NAME I GROUP LABEL" for each corpus frame
 * and "odd NAME WHAT len=N" for a frame no healthy path carries (VLAN tag,
 * broken IPv4 header, bad IPv4 checksum, unknown ethertype), marked or not.
 *
 * Safety: send refuses to run in the host's initial network namespace.
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>

#include "cli.h"
#include "rawframe.h"

#define BF_FRAME_MAX  256
#define BF_ID_BASE    0xB000u /* IP ID of frame i: BF_ID_BASE | i */
#define BF_ID_MASK    0xF000u
#define BF_SEQ_BASE   0xA6B00000u /* TCP sequence number of frame i */
#define BF_MAX_FRAMES 4096	  /* i fits the ID's low 12 bits */
#define BF_TAG	      "AGBF"
#define BF_PAYLOAD    16 /* UDP/ICMP/other payload: tag, i, ~i, filler */
#define BF_SPORT_TCP  42000
#define BF_SPORT_UDP  41000
#define BF_TTL	      64
#define BF_MAX_GROUPS 32

/* Optional header fields: SET(v) in the table, 0 = the right value. */
#define SET(v)	    ((v) | 0x10000)
#define IS_SET(f)   ((f)&0x10000)
#define VAL(f)	    ((f)&0xffff)
#define OPTS(a)	    .opts = (a), .opts_len = sizeof(a)
#define TCPF_FIN    0x01
#define TCPF_SYN    0x02
#define TCPF_RST    0x04
#define TCPF_PSH    0x08
#define TCPF_ACK    0x10
#define TCPF_URG    0x20
#define IP_MF	    0x2000
#define PROTO_OTHER 253 /* RFC 3692 experimentation */

enum bf_mac { MAC_EDGE, MAC_OTHER, MAC_OTHER_NEAR, MAC_BCAST, MAC_MCAST4, MAC_MCAST6 };
enum bf_addr { A_CLIENT, A_VIP, A_NAT, A_FIXED };
/* Where a frame is cut short (a header boundary, or inside a header). */
enum bf_cut { CUT_NONE, CUT_ETH, CUT_IN_TAG, CUT_TAG, CUT_IN_IP, CUT_IN_OPTS, CUT_L3, CUT_IN_L4 };

struct bf_spec {
	const char *group, *label;
	bool valid;
	uint8_t proto;	   /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, other */
	uint8_t tcp_flags; /* 0: SYN */
	bool tcp_no_flags; /* the NULL scan: really no flag */
	enum bf_mac mac;
	uint16_t tpid[3]; /* VLAN tags, outermost first; 0 ends */
	bool prio_tag;	  /* VLAN 0 (priority only), else 10, 20, 30 */
	uint16_t dport;	  /* 0: the listener port (80 TCP, 5000 UDP) */
	bool sport_zero, dport_zero;
	enum bf_addr src, dst; /* dst: A_CLIENT means the VIP (the default) */
	const char *src_fixed;
	uint32_t ttl, version, ihl, tot_len, udp_len, doff; /* SET(v) or 0 */
	uint16_t frag;					    /* flags+offset field */
	const uint8_t *opts;
	uint8_t opts_len; /* a multiple of 4 */
	uint8_t bad_csum; /* 1: off by one bit, 2: zero */
	enum bf_cut cut;
	bool fix_len; /* after a cut, tot_len says what is left */
};

/* IP options, each padded to a multiple of 4 bytes. */
static const uint8_t opt_ra[] = {148, 4, 0, 0};		  /* Router Alert */
static const uint8_t opt_nops[] = {1, 1, 1, 0};		  /* NOP NOP NOP EOL */
static const uint8_t opt_rr[] = {7, 7, 4, 0, 0, 0, 0, 0}; /* Record Route, one slot, EOL */
static const uint8_t opt_ts[] = {68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0}; /* Timestamp, 2 slots */
static const uint8_t opt_len0[] = {148, 0, 0, 0};
static const uint8_t opt_len1[] = {148, 1, 0, 0};
static const uint8_t opt_past_end[] = {148, 8, 0, 0};
static const uint8_t opt_no_len[] = {1, 1, 1, 148}; /* a type, then the header ends */
static const uint8_t opt_overrun[] = {1, 148, 4, 0};
static const uint8_t opt_lsrr[] = {131, 7, 4, 10, 1, 1, 11, 0};
static const uint8_t opt_ssrr[] = {137, 7, 4, 10, 1, 1, 11, 0};
static const uint8_t opt_nop_lsrr[] = {1, 131, 7, 4, 10, 1, 1, 11};

/* One corpus entry: group, label, valid, protocol, then what differs from a clean frame. */
#define BF(g, l, v, p, ...)                                                                        \
	{                                                                                          \
		.group = g, .label = l, .valid = v, .proto = p, __VA_ARGS__                        \
	}
#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP

/* clang-format off */
static const struct bf_spec corpus[] = {
	/* Valid: must reach a backend. */
	BF("valid", "tcp-syn-80", true, TCP),
	BF("valid", "tcp-syn-8000", true, TCP, .dport = 8000),
	BF("valid", "tcp-syn-8009", true, TCP, .dport = 8009),
	BF("valid", "tcp-syn-urg", true, TCP, .tcp_flags = TCPF_SYN | TCPF_URG),
	BF("valid", "udp-5000-a", true, UDP),
	BF("valid", "udp-5000-b", true, UDP),
	BF("valid", "udp-5000-ttl3", true, UDP, .ttl = SET(3)),
	BF("valid", "tcp-syn-opt-router-alert", true, TCP, OPTS(opt_ra)),
	BF("valid", "tcp-syn-opt-nop-eol", true, TCP, OPTS(opt_nops)),
	BF("valid", "udp-opt-record-route", true, UDP, OPTS(opt_rr)),
	BF("valid", "udp-opt-timestamp", true, UDP, OPTS(opt_ts)),
	/* L2 */
	BF("l2-other-host", "mac-other-host", false, TCP, .mac = MAC_OTHER),
	BF("l2-other-host", "mac-edge-but-one-bit", false, UDP, .mac = MAC_OTHER_NEAR),
	BF("l2-group", "mac-broadcast", false, TCP, .mac = MAC_BCAST),
	BF("l2-group", "mac-ipv4-multicast", false, UDP, .mac = MAC_MCAST4),
	BF("l2-group", "mac-ipv6-multicast", false, TCP, .mac = MAC_MCAST6),
	BF("vlan", "vlan-8021q", false, TCP, .tpid = {0x8100}),
	BF("vlan", "vlan-priority-tag", false, UDP, .tpid = {0x8100}, .prio_tag = true),
	BF("vlan", "vlan-qinq-88a8-8100", false, TCP, .tpid = {0x88a8, 0x8100}),
	BF("vlan", "vlan-double-8100", false, UDP, .tpid = {0x8100, 0x8100}),
	BF("vlan-deep", "vlan-triple", false, TCP, .tpid = {0x88a8, 0x8100, 0x8100}),
	/* IPv4 header */
	BF("ip-checksum", "tcp-syn-bad-checksum", false, TCP, .bad_csum = 1),
	BF("ip-checksum", "udp-bad-checksum", false, UDP, .bad_csum = 1),
	BF("ip-checksum", "udp-zero-checksum", false, UDP, .bad_csum = 2),
	BF("ip-checksum", "tcp-syn-opt-bad-checksum", false, TCP, OPTS(opt_ra), .bad_csum = 1),
	BF("martian", "src-0.0.0.0", false, TCP, .src = A_FIXED, .src_fixed = "0.0.0.0"),
	BF("martian", "src-0.1.2.3", false, UDP, .src = A_FIXED, .src_fixed = "0.1.2.3"),
	BF("martian", "src-127.0.0.1", false, TCP, .src = A_FIXED, .src_fixed = "127.0.0.1"),
	BF("martian", "src-127.9.9.9", false, UDP, .src = A_FIXED, .src_fixed = "127.9.9.9"),
	BF("martian", "src-169.254.7.7", false, TCP, .src = A_FIXED, .src_fixed = "169.254.7.7"),
	BF("martian", "src-224.0.0.1", false, UDP, .src = A_FIXED, .src_fixed = "224.0.0.1"),
	BF("martian", "src-239.255.0.1", false, TCP, .src = A_FIXED, .src_fixed = "239.255.0.1"),
	BF("martian", "src-240.0.0.1", false, UDP, .src = A_FIXED, .src_fixed = "240.0.0.1"),
	BF("martian", "src-255.255.255.255", false, TCP, .src = A_FIXED,
	 .src_fixed = "255.255.255.255"),
	BF("source-ours", "src-vip-tcp", false, TCP, .src = A_VIP),
	BF("source-ours", "src-vip-udp", false, UDP, .src = A_VIP),
	BF("source-ours", "src-nat-tcp", false, TCP, .src = A_NAT),
	BF("source-ours", "src-nat-udp", false, UDP, .src = A_NAT),
	BF("ip-options", "opt-length-0", false, TCP, OPTS(opt_len0)),
	BF("ip-options", "opt-length-1", false, UDP, OPTS(opt_len1)),
	BF("ip-options", "opt-length-past-header", false, TCP, OPTS(opt_past_end)),
	BF("ip-options", "opt-type-without-length", false, UDP, OPTS(opt_no_len)),
	BF("ip-options", "opt-overruns-header", false, TCP, OPTS(opt_overrun)),
	BF("source-route", "opt-lsrr", false, TCP, OPTS(opt_lsrr)),
	BF("source-route", "opt-ssrr", false, UDP, OPTS(opt_ssrr)),
	BF("source-route", "opt-nop-lsrr", false, TCP, OPTS(opt_nop_lsrr)),
	/* TCP/UDP */
	BF("port-zero", "tcp-sport-0", false, TCP, .sport_zero = true),
	BF("port-zero", "tcp-dport-0", false, TCP, .dport_zero = true),
	BF("port-zero", "udp-sport-0", false, UDP, .sport_zero = true),
	BF("port-zero", "udp-dport-0", false, UDP, .dport_zero = true),
	BF("tcp-flags", "syn-fin", false, TCP, .tcp_flags = TCPF_SYN | TCPF_FIN),
	BF("tcp-flags", "syn-rst", false, TCP, .tcp_flags = TCPF_SYN | TCPF_RST),
	BF("tcp-flags", "syn-fin-ack", false, TCP, .tcp_flags = TCPF_SYN | TCPF_FIN | TCPF_ACK),
	BF("tcp-flags", "syn-rst-ack", false, TCP, .tcp_flags = TCPF_SYN | TCPF_RST | TCPF_ACK),
	BF("tcp-flags", "null", false, TCP, .tcp_no_flags = true),
	BF("tcp-flags", "psh-only", false, TCP, .tcp_flags = TCPF_PSH),
	BF("tcp-flags", "xmas-fin-psh-urg", false, TCP, .tcp_flags = TCPF_FIN | TCPF_PSH | TCPF_URG),
	BF("tcp-flags", "all-six", false, TCP, .tcp_flags = 0x3f),
	BF("tcp-flags", "fin-without-ack", false, TCP, .tcp_flags = TCPF_FIN),
	BF("tcp-flags", "rst-fin", false, TCP, .tcp_flags = TCPF_RST | TCPF_FIN),
	BF("tcp-flags", "urg-only", false, TCP, .tcp_flags = TCPF_URG),
	BF("ttl", "tcp-ttl-0", false, TCP, .ttl = SET(0)),
	BF("ttl", "tcp-ttl-1", false, TCP, .ttl = SET(1)),
	BF("ttl", "udp-ttl-0", false, UDP, .ttl = SET(0)),
	BF("ttl", "udp-ttl-1", false, UDP, .ttl = SET(1)),
	/* To the VIP, but nothing listens */
	BF("vip-not-tcp-udp", "icmp-echo", false, IPPROTO_ICMP),
	BF("vip-not-tcp-udp", "gre", false, IPPROTO_GRE),
	BF("vip-not-tcp-udp", "proto-253", false, PROTO_OTHER),
	BF("vip-no-listener", "tcp-81", false, TCP, .dport = 81),
	BF("vip-no-listener", "tcp-8010", false, TCP, .dport = 8010),
	BF("vip-no-listener", "tcp-443", false, TCP, .dport = 443),
	BF("vip-no-listener", "udp-5001", false, UDP, .dport = 5001),
	BF("vip-no-listener", "udp-53", false, UDP, .dport = 53),
	/* The reverse path's address, from the client side */
	BF("wrong-role", "udp-to-nat", false, UDP, .dst = A_NAT, .dport = 40000),
	BF("wrong-role", "tcp-syn-to-nat", false, TCP, .dst = A_NAT, .dport = 40001),
	BF("fragment", "udp-first", false, UDP, .frag = IP_MF),
	BF("fragment", "udp-middle", false, UDP, .frag = IP_MF | 3),
	BF("fragment", "udp-last", false, UDP, .frag = 6),
	BF("fragment", "tcp-first", false, TCP, .frag = IP_MF),
	BF("fragment", "tcp-last", false, TCP, .frag = 9),
	/* Cut short at (or inside) each header */
	BF("truncated", "eth-header-only", false, TCP, .cut = CUT_ETH),
	BF("truncated", "in-vlan-tag", false, TCP, .tpid = {0x8100}, .cut = CUT_IN_TAG),
	BF("truncated", "after-vlan-tag", false, TCP, .tpid = {0x8100}, .cut = CUT_TAG),
	BF("truncated", "in-second-vlan-tag", false, UDP, .tpid = {0x88a8, 0x8100},
	 .cut = CUT_IN_TAG),
	BF("truncated", "in-ipv4-header", false, TCP, .cut = CUT_IN_IP),
	BF("truncated", "ipv4-header-only", false, TCP, .cut = CUT_L3),
	BF("truncated", "in-ipv4-options", false, UDP, OPTS(opt_ts), .cut = CUT_IN_OPTS),
	BF("truncated", "after-ipv4-options", false, TCP, OPTS(opt_ra), .cut = CUT_L3),
	BF("truncated", "in-tcp-header", false, TCP, .cut = CUT_IN_L4),
	BF("truncated", "in-tcp-header-len-fixed", false, TCP, .cut = CUT_IN_L4, .fix_len = true),
	BF("truncated", "in-udp-header", false, UDP, .cut = CUT_IN_L4),
	BF("truncated", "in-udp-header-len-fixed", false, UDP, .cut = CUT_IN_L4, .fix_len = true),
	BF("truncated", "tcp-doff-past-end", false, TCP, .doff = SET(15)),
	BF("truncated", "tcp-doff-4", false, TCP, .doff = SET(4)),
	BF("truncated", "udp-length-4", false, UDP, .udp_len = SET(4)),
	BF("truncated", "udp-length-past-end", false, UDP, .udp_len = SET(200)),
	BF("bad-ipv4", "version-6", false, TCP, .version = SET(6)),
	BF("bad-ipv4", "version-0", false, UDP, .version = SET(0)),
	BF("bad-ipv4", "ihl-4", false, TCP, .ihl = SET(4)),
	BF("bad-ipv4", "ihl-0", false, UDP, .ihl = SET(0)),
	BF("bad-ipv4", "ihl-15-past-total-length", false, TCP, .ihl = SET(15)),
	BF("bad-ipv4", "total-length-0", false, UDP, .tot_len = SET(0)),
	BF("bad-ipv4", "total-length-19", false, TCP, .tot_len = SET(19)),
	BF("bad-ipv4", "total-length-past-frame", false, UDP, .tot_len = SET(200)),
};
/* clang-format on */

#define N_FRAMES (sizeof(corpus) / sizeof(corpus[0]))
_Static_assert(N_FRAMES <= BF_MAX_FRAMES, "the frame index fits the IP ID");

/* The addresses the corpus is built for (network order, but MACs). */
struct bf_ctx {
	uint8_t dst_mac[ETH_ALEN], src_mac[ETH_ALEN];
	uint32_t client, vip, nat;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: ag-badframes list\n"
			"       ag-badframes send --dev IF --dst-mac MAC --client ADDR --vip ADDR "
			"--nat ADDR\n"
			"                         [--group G]... [--reply-timeout-ms N]\n"
			"       ag-badframes watch --dev IF --name NAME\n");
	exit(2);
}

static void put32(uint8_t *p, uint32_t v)
{
	ag_raw__put16(p, (uint16_t)(v >> 16));
	ag_raw__put16(p + 2, (uint16_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)ag_raw__get16(p) << 16 | ag_raw__get16(p + 2);
}

static uint16_t bf_dport(const struct bf_spec *s)
{
	if (s->dport_zero)
		return 0;
	if (s->dport)
		return s->dport;
	return s->proto == IPPROTO_TCP ? 80 : 5000;
}

static uint16_t bf_sport(const struct bf_spec *s, unsigned int i)
{
	if (s->sport_zero)
		return 0;
	return (uint16_t)((s->proto == IPPROTO_TCP ? BF_SPORT_TCP : BF_SPORT_UDP) + i);
}

/* Ethernet header and VLAN tags; returns where the IPv4 header goes. */
static int bf_put_l2(const struct bf_spec *s, const struct bf_ctx *c, uint8_t *f)
{
	static const uint8_t other[ETH_ALEN] = {0x02, 0x00, 0x00, 0x00, 0xbe, 0xef};
	static const uint8_t bcast[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t mcast4[ETH_ALEN] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb};
	static const uint8_t mcast6[ETH_ALEN] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};
	const uint8_t *dst[] = {c->dst_mac, other, c->dst_mac, bcast, mcast4, mcast6};
	int off = 2 * ETH_ALEN, t;

	memcpy(f, dst[s->mac], ETH_ALEN);
	if (s->mac == MAC_OTHER_NEAR)
		f[ETH_ALEN - 1] ^= 0x01;
	memcpy(f + ETH_ALEN, c->src_mac, ETH_ALEN);
	for (t = 0; t < 3 && s->tpid[t]; t++) {
		ag_raw__put16(f + off, s->tpid[t]);
		/* VLAN 10, 20, 30; the priority tag is VLAN 0. */
		ag_raw__put16(f + off + 2, s->prio_tag ? 0 : (uint16_t)(10 * (t + 1)));
		off += 4;
	}
	ag_raw__put16(f + off, ETH_P_IP);
	return off + 2;
}

/* The payload every non-TCP frame carries: "AGBF", i, ~i, filler. */
static void bf_put_tag(uint8_t *p, unsigned int i)
{
	memcpy(p, BF_TAG, 4);
	ag_raw__put16(p + 4, (uint16_t)i);
	ag_raw__put16(p + 6, (uint16_t)~i);
	memcpy(p + 8, "badframe", BF_PAYLOAD - 8);
}

/* The L4 header and payload, without checksum; returns its length. */
static int bf_put_l4(const struct bf_spec *s, unsigned int i, uint8_t *l4)
{
	switch (s->proto) {
	case IPPROTO_TCP:
		ag_raw__put16(l4, bf_sport(s, i));
		ag_raw__put16(l4 + 2, bf_dport(s));
		put32(l4 + 4, BF_SEQ_BASE | i);
		put32(l4 + 8, (s->tcp_flags & TCPF_ACK) ? 1 : 0);
		l4[12] = (uint8_t)((IS_SET(s->doff) ? VAL(s->doff) : 6) << 4);
		l4[13] = s->tcp_no_flags ? 0 : s->tcp_flags ? s->tcp_flags : TCPF_SYN;
		ag_raw__put16(l4 + 14, 64240);
		l4[20] = 2; /* MSS 1460 */
		l4[21] = 4;
		ag_raw__put16(l4 + 22, 1460);
		return 24;
	case IPPROTO_UDP:
		ag_raw__put16(l4, bf_sport(s, i));
		ag_raw__put16(l4 + 2, bf_dport(s));
		ag_raw__put16(l4 + 4, IS_SET(s->udp_len) ? VAL(s->udp_len) : 8 + BF_PAYLOAD);
		bf_put_tag(l4 + 8, i);
		return 8 + BF_PAYLOAD;
	case IPPROTO_ICMP:
		l4[0] = 8; /* echo request */
		ag_raw__put16(l4 + 4, (uint16_t)i);
		bf_put_tag(l4 + 8, i);
		return 8 + BF_PAYLOAD;
	default:
		bf_put_tag(l4, i);
		return BF_PAYLOAD;
	}
}

static uint32_t bf_addr(const struct bf_ctx *c, enum bf_addr a, const char *fixed)
{
	struct in_addr x;

	switch (a) {
	case A_VIP:
		return c->vip;
	case A_NAT:
		return c->nat;
	case A_FIXED:
		if (inet_pton(AF_INET, fixed, &x) != 1)
			abort(); /* the table is wrong */
		return x.s_addr;
	default:
		return c->client;
	}
}

/* The L4 checksum (TCP, UDP over the pseudo-header; ICMP over itself). */
static void bf_l4_csum(uint8_t *ip, int ihl_len, int l4_len)
{
	uint8_t *l4 = ip + ihl_len;
	uint32_t pseudo = ag_raw__csum_partial(ip + 12, 8, 0) + ip[9] + (uint32_t)l4_len;

	if (ip[9] == IPPROTO_TCP)
		ag_raw__put16(l4 + 16, ag_raw__csum_fold(ag_raw__csum_partial(l4, l4_len, pseudo)));
	else if (ip[9] == IPPROTO_UDP)
		ag_raw__put16(l4 + 6, ag_raw__csum_fold(ag_raw__csum_partial(l4, l4_len, pseudo)));
	else if (ip[9] == IPPROTO_ICMP)
		ag_raw__put16(l4 + 2, ag_raw__csum_fold(ag_raw__csum_partial(l4, l4_len, 0)));
}

/* The IPv4 header (options included), then the spec's one defect in it. */
static void bf_put_ip(const struct bf_spec *s, unsigned int i, const struct bf_ctx *c, uint8_t *ip,
		      int ihl_len, int l4_len)
{
	uint32_t src = bf_addr(c, s->src, s->src_fixed);
	uint32_t dst = s->dst == A_NAT ? c->nat : c->vip;
	int hlen;

	ip[0] = (uint8_t)(0x40 | ihl_len / 4);
	ag_raw__put16(ip + 2, (uint16_t)(ihl_len + l4_len));
	ag_raw__put16(ip + 4, (uint16_t)(BF_ID_BASE | i));
	ag_raw__put16(ip + 6, s->frag);
	ip[8] = IS_SET(s->ttl) ? (uint8_t)VAL(s->ttl) : BF_TTL;
	ip[9] = s->proto;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	memcpy(ip + 20, s->opts, s->opts_len);
	bf_l4_csum(ip, ihl_len, l4_len);
	if (IS_SET(s->version))
		ip[0] = (uint8_t)(VAL(s->version) << 4 | (ip[0] & 0xf));
	if (IS_SET(s->ihl))
		ip[0] = (uint8_t)((ip[0] & 0xf0) | VAL(s->ihl));
	if (IS_SET(s->tot_len))
		ag_raw__put16(ip + 2, (uint16_t)VAL(s->tot_len));
	/* A header whose ihl lies is summed as far as the frame has it. */
	hlen = (ip[0] & 0xf) * 4;
	if (hlen < 20 || hlen > ihl_len + l4_len)
		hlen = 20;
	ag_raw__put16(ip + 10, 0);
	ag_raw__put16(ip + 10, ag_raw__csum_fold(ag_raw__csum_partial(ip, hlen, 0)));
	if (s->bad_csum == 1)
		ip[11] ^= 0x01;
	else if (s->bad_csum == 2)
		ag_raw__put16(ip + 10, 0);
}

/* The frame's length after the spec's cut (l3: where IPv4 starts). */
static int bf_cut_len(const struct bf_spec *s, int l3, int ihl_len, int full)
{
	switch (s->cut) {
	case CUT_ETH:
		return ETH_HLEN;
	case CUT_IN_TAG:
		return l3 - 2; /* the last tag's TCI, not its inner type */
	case CUT_TAG:
		return l3;
	case CUT_IN_IP:
		return l3 + 10;
	case CUT_IN_OPTS:
		return l3 + 20 + 2;
	case CUT_L3:
		return l3 + ihl_len;
	case CUT_IN_L4:
		return l3 + ihl_len + 6;
	default:
		return full;
	}
}

/* Frame i of the corpus into f; returns its length. */
static int bf_build(unsigned int i, const struct bf_ctx *c, uint8_t *f)
{
	const struct bf_spec *s = &corpus[i];
	int l3, ihl_len = 20 + s->opts_len, l4_len, len;
	uint8_t *ip;

	memset(f, 0, BF_FRAME_MAX);
	l3 = bf_put_l2(s, c, f);
	ip = f + l3;
	l4_len = bf_put_l4(s, i, ip + ihl_len);
	bf_put_ip(s, i, c, ip, ihl_len, l4_len);
	len = bf_cut_len(s, l3, ihl_len, l3 + ihl_len + l4_len);
	if (s->fix_len && len > l3) {
		ag_raw__put16(ip + 2, (uint16_t)(len - l3));
		ag_raw__put16(ip + 10, 0);
		ag_raw__put16(ip + 10, ag_raw__csum_fold(ag_raw__csum_partial(ip, ihl_len, 0)));
	}
	return len;
}

/* ------------------------------------------------------------ watch */

/* Frame i's marker beyond its IP ID (sequence number or payload tag), where the frame has it. */
static bool bf_confirm(const uint8_t *ip, int hlen, int tot, unsigned int i)
{
	const uint8_t *l4 = ip + hlen, *tag;
	int room = tot - hlen;

	switch (ip[9]) {
	case IPPROTO_TCP:
		return room < 8 || get32(l4 + 4) == (BF_SEQ_BASE | i);
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
		tag = l4 + 8;
		room -= 8;
		break;
	default:
		tag = l4;
	}
	if (room < 6)
		return true; /* cut short: the IP ID is all there is */
	return !memcmp(tag, BF_TAG, 4) && ag_raw__get16(tag + 4) == i;
}

/*
 * An IPv4 packet of avail bytes: the corpus frame it is, or -1 (the lab's own
 * traffic). *odd: what no healthy forwarder would pass on (kept if set).
 */
static int bf_identify_ip(const uint8_t *ip, int avail, const char **odd)
{
	int idx = -1, hlen = 0, tot = 0;

	if (avail >= 6 && (ag_raw__get16(ip + 4) & BF_ID_MASK) == BF_ID_BASE)
		idx = ag_raw__get16(ip + 4) & ~BF_ID_MASK;
	if (idx >= (int)N_FRAMES)
		idx = -1;
	if (avail >= 20) {
		hlen = (ip[0] & 0xf) * 4;
		tot = ag_raw__get16(ip + 2);
	}
	if (avail < 20 || ip[0] >> 4 != 4 || hlen < 20 || hlen > avail || tot < hlen ||
	    tot > avail) {
		*odd = *odd ? *odd : "broken-ipv4-header";
		return idx; /* nothing else to check a marker against */
	}
	if (ag_raw__csum_fold(ag_raw__csum_partial(ip, hlen, 0)) != 0)
		*odd = *odd ? *odd : "bad-ipv4-checksum";
	return idx >= 0 && bf_confirm(ip, hlen, tot, (unsigned int)idx) ? idx : -1;
}

/* A received frame (tagged: the kernel took a VLAN tag off it). */
static int bf_identify(const uint8_t *f, int len, bool tagged, const char **odd)
{
	uint16_t type;
	int off = ETH_HLEN;

	*odd = tagged ? "vlan-tagged" : NULL;
	if (len < ETH_HLEN) {
		*odd = "short-frame";
		return -1;
	}
	type = ag_raw__get16(f + 12);
	while ((type == ETH_P_8021Q || type == ETH_P_8021AD) && off + 4 <= len) {
		*odd = "vlan-tagged";
		type = ag_raw__get16(f + off + 2);
		off += 4;
	}
	if (type == ETH_P_ARP)
		return -1;
	if (type != ETH_P_IP) {
		*odd = *odd ? *odd : "not-ipv4-or-arp";
		return -1;
	}
	return bf_identify_ip(f + off, len - off, odd);
}

static int bf_watch_open(const char *dev)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL)};
	int fd, one = 1, rcvbuf = 4 << 20;

	sll.sll_ifindex = (int)if_nametoindex(dev);
	if (!sll.sll_ifindex)
		return -errno;
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		one = -errno;
		close(fd);
		return one;
	}
	return fd;
}

/* One received frame: its length, *tagged when the kernel took a VLAN tag off. */
static ssize_t bf_watch_recv(int fd, int ifindex, uint8_t *buf, size_t size, bool *tagged)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	} ctl;
	struct sockaddr_ll from;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr m = {.msg_name = &from,
			   .msg_namelen = sizeof(from),
			   .msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = &ctl,
			   .msg_controllen = sizeof(ctl)};
	struct cmsghdr *c;
	ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);

	*tagged = false;
	if (n < 0)
		return -errno;
	/* Before bind() the socket saw every interface: those frames are not ours. */
	if (from.sll_ifindex != ifindex || from.sll_pkttype == PACKET_OUTGOING)
		return 0;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		const struct tpacket_auxdata *a = (const void *)CMSG_DATA(c);

		if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA &&
		    (a->tp_status & TP_STATUS_VLAN_VALID))
			*tagged = true;
	}
	return n;
}

static int bf_watch(const char *dev, const char *name)
{
	uint8_t buf[65536];
	struct pollfd p;
	int fd = bf_watch_open(dev), ifindex = (int)if_nametoindex(dev), idx;
	const char *odd;
	bool tagged;
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "ag-badframes: watch %s: %s\n", dev, strerror(-fd));
		return 1;
	}
	printf("ready %s %s\n", name, dev);
	fflush(stdout);
	p = (struct pollfd){.fd = fd, .events = POLLIN};
	while (!stop) {
		if (poll(&p, 1, 200) <= 0)
			continue;
		while ((n = bf_watch_recv(fd, ifindex, buf, sizeof(buf), &tagged)) >= 0) {
			if (!n)
				continue;
			idx = bf_identify(buf, (int)n, tagged, &odd);
			if (idx >= 0)
				printf("hit %s %d %s %s\n", name, idx, corpus[idx].group,
				       corpus[idx].label);
			if (odd)
				printf("odd %s %s len=%zd\n", name, odd, n);
			if (idx >= 0 || odd)
				fflush(stdout);
		}
	}
	close(fd);
	return 0;
}

/* ------------------------------------------------------------ send */

struct bf_send_opts {
	const char *dev;
	struct bf_ctx ctx;
	bool have_mac, have_client, have_vip, have_nat;
	const char *groups[BF_MAX_GROUPS];
	int n_groups;
	long reply_timeout_ms;
};

static bool bf_selected(const struct bf_send_opts *o, unsigned int i)
{
	int g;

	if (!o->n_groups)
		return true;
	for (g = 0; g < o->n_groups; g++)
		if (!strcmp(o->groups[g], corpus[i].group))
			return true;
	return false;
}

/* A valid UDP frame's reply comes back to its source port: a socket there takes it. */
static bool bf_wants_reply(unsigned int i)
{
	return corpus[i].valid && corpus[i].proto == IPPROTO_UDP;
}

/* socks[i]: a UDP socket on frame i's source port (valid UDP frames sent), else -1. */
static int bf_reply_socks(const struct bf_send_opts *o, int *socks)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	unsigned int i;

	for (i = 0; i < N_FRAMES; i++) {
		socks[i] = -1;
		if (!bf_selected(o, i) || !bf_wants_reply(i))
			continue;
		a.sin_port = htons(bf_sport(&corpus[i], i));
		socks[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (socks[i] < 0 || bind(socks[i], (struct sockaddr *)&a, sizeof(a))) {
			fprintf(stderr, "ag-badframes: UDP port %u: %s\n", ntohs(a.sin_port),
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait (bounded) for one reply on each socket; returns how many came. */
static int bf_wait_replies(int *socks, long timeout_ms)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	int got = 0, want = 0;
	unsigned int i;
	char buf[256];
	ssize_t n;

	for (i = 0; i < N_FRAMES; i++)
		want += socks[i] >= 0;
	while (got < want && mono_ms() < end && !stop) {
		for (i = 0; i < N_FRAMES; i++) {
			if (socks[i] < 0 || (n = recv(socks[i], buf, sizeof(buf) - 1, 0)) < 0)
				continue;
			buf[n] = '\0';
			buf[strcspn(buf, "\r\n")] = '\0';
			printf("reply %u %s\n", i, buf);
			close(socks[i]);
			socks[i] = -1;
			got++;
		}
		poll(NULL, 0, 10);
	}
	return got;
}

static int bf_send_open(const char *dev, struct sockaddr_ll *to, uint8_t *mac)
{
	struct ifreq ifr;
	int fd;

	memset(to, 0, sizeof(*to));
	to->sll_family = AF_PACKET;
	to->sll_ifindex = (int)if_nametoindex(dev);
	if (!to->sll_ifindex || strlen(dev) >= IFNAMSIZ)
		return -ENODEV;
	/* Protocol 0: this socket receives nothing. */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, dev);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) || bind(fd, (struct sockaddr *)to, sizeof(*to))) {
		int err = -errno;

		close(fd);
		return err;
	}
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	return fd;
}

static int bf_send(struct bf_send_opts *o)
{
	static int socks[N_FRAMES];
	uint8_t f[BF_FRAME_MAX];
	struct sockaddr_ll to;
	unsigned int i, sent = 0, refused = 0, want = 0;
	int fd, len, got = 0;

	fd = bf_send_open(o->dev, &to, o->ctx.src_mac);
	if (fd < 0) {
		fprintf(stderr, "ag-badframes: %s: %s\n", o->dev, strerror(-fd));
		return 1;
	}
	if (bf_reply_socks(o, socks))
		return 1;
	for (i = 0; i < N_FRAMES; i++) {
		if (!bf_selected(o, i))
			continue;
		len = bf_build(i, &o->ctx, f);
		if (sendto(fd, f, (size_t)len, 0, (struct sockaddr *)&to, sizeof(to)) != len) {
			printf("refused %u %s %s %s\n", i, corpus[i].group, corpus[i].label,
			       strerror(errno));
			refused++;
			continue;
		}
		printf("sent %u %s %s len=%d\n", i, corpus[i].group, corpus[i].label, len);
		sent++;
		want += bf_wants_reply(i);
	}
	fflush(stdout);
	if (o->reply_timeout_ms && want)
		got = bf_wait_replies(socks, o->reply_timeout_ms);
	printf("badframes sent=%u refused=%u replies=%d/%u\n", sent, refused, got, want);
	close(fd);
	return 0;
}

/* ------------------------------------------------------------ main */

static void bf_parse_addr(const char *s, uint32_t *a, bool *have)
{
	if (inet_pton(AF_INET, s, a) != 1) {
		fprintf(stderr, "ag-badframes: bad IPv4 address '%s'\n", s);
		exit(2);
	}
	*have = true;
}

static void bf_parse_send(int argc, char **argv, struct bf_send_opts *o)
{
	static const struct option opts[] = {
	    {"dev", required_argument, NULL, 'd'},
	    {"dst-mac", required_argument, NULL, 'm'},
	    {"client", required_argument, NULL, 'c'},
	    {"vip", required_argument, NULL, 'v'},
	    {"nat", required_argument, NULL, 'n'},
	    {"group", required_argument, NULL, 'g'},
	    {"reply-timeout-ms", required_argument, NULL, 't'},
	    {0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'd')
			o->dev = optarg;
		else if (c == 'm' && (o->have_mac = true))
			ag_raw__parse_mac(optarg, o->ctx.dst_mac);
		else if (c == 'c')
			bf_parse_addr(optarg, &o->ctx.client, &o->have_client);
		else if (c == 'v')
			bf_parse_addr(optarg, &o->ctx.vip, &o->have_vip);
		else if (c == 'n')
			bf_parse_addr(optarg, &o->ctx.nat, &o->have_nat);
		else if (c == 'g' && o->n_groups < BF_MAX_GROUPS)
			o->groups[o->n_groups++] = optarg;
		else if (c == 't')
			o->reply_timeout_ms = ag_cli__num(optarg, 0, 600000);
		else
			usage();
	}
	if (optind != argc || !o->dev || !o->have_mac || !o->have_client || !o->have_vip ||
	    !o->have_nat)
		usage();
}

static int bf_list(void)
{
	unsigned int i;

	for (i = 0; i < N_FRAMES; i++)
		printf("%u %s %s %s\n", i, corpus[i].group, corpus[i].label,
		       corpus[i].valid ? "valid" : "malformed");
	return 0;
}

int main(int argc, char **argv)
{
	struct bf_send_opts o;
	int err;

	if (argc < 2)
		usage();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "list") && argc == 2)
		return bf_list();
	if (!strcmp(argv[1], "watch") && argc == 6 && !strcmp(argv[2], "--dev") &&
	    !strcmp(argv[4], "--name"))
		return bf_watch(argv[3], argv[5]);
	if (strcmp(argv[1], "send"))
		usage();
	memset(&o, 0, sizeof(o));
	bf_parse_send(argc - 1, argv + 1, &o);
	err = ag_raw__check_netns();
	if (err) {
		fprintf(stderr,
			"ag-badframes: refusing to run %s: crafted frames go only into namespaces "
			"a test created (run it with ip netns exec)\n",
			ag_raw__netns_refusal(err));
		return 1;
	}
	return bf_send(&o);
}
