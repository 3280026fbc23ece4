/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP segments the fast path answers itself: a RST (RFC 9293, 3.10.7.1) when
 * a flow's backend is down, so the client learns at once instead of
 * retransmitting into a dead end, and the SYN authentication challenge. Each
 * is built in place over the segment it answers, from the VIP back to the
 * client; both fast paths then trim the frame to the returned length (bpf_xdp_adjust_tail,
 * rte_pktmbuf_trim) and send it out of the interface it came in on.
 */
#ifndef AG_CORE_RST_H
#define AG_CORE_RST_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>

#include "compat.h"
#include "csum.h"
#include "parse.h"
#include "flow.h"

/* The RST leaves with a fresh TTL: it starts here, it is not forwarded. */
#define AG_RST_TTL    64
/* IPv4 + TCP header, no options, no payload. */
#define AG_RST_L3_LEN (sizeof(struct iphdr) + sizeof(struct tcphdr))

/*
 * Answer the TCP segment p (ag_parse() returned AG_PARSE_OK, p->proto TCP) in
 * place with a bare segment of flags rflags, seq and ack (network order): from
 * the segment's destination (the VIP and port) to its source, MACs swapped,
 * VLAN tags kept; a new 20-byte IPv4 header (TTL 64, DF, id 0, TOS 0: IP
 * options dropped) and a 20-byte TCP header (window wnd, no options), both
 * checksums computed in full. p is updated to describe the answer (data_end =
 * its end). Returns the new frame length from p->data (the caller trims the
 * buffer to it), or -1 when the headers are not where ag_parse() put them
 * (the checks are repeated for the BPF verifier).
 */
static __always_inline int ag_tcp__answer(struct ag_pkt *p, __u8 rflags, __be32 seq, __be32 ack,
					  __u16 wnd)
{
	struct ethhdr *eth = p->eth;
	struct iphdr *ip = p->ip;
	struct tcphdr *th = p->l4, *rth;
	__be32 saddr, daddr;
	__be16 sport, dport;
	__u8 mac[ETH_ALEN];
	__u32 sum;

	if ((void *)(eth + 1) > p->data_end || (void *)(ip + 1) > p->data_end ||
	    (void *)(th + 1) > p->data_end)
		return -1;
	/* Everything the answer needs is read before the new headers overwrite it. */
	saddr = ip->saddr;
	daddr = ip->daddr;
	sport = th->source;
	dport = th->dest;

	/* The TCP header follows a 20-byte IP header now, over options or the old header. */
	rth = (struct tcphdr *)((__u8 *)ip + sizeof(*ip));
	if ((void *)(rth + 1) > p->data_end)
		return -1;

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);

	((__u8 *)ip)[0] = 0x45; /* version 4, ihl 5 */
	ip->tos = 0;
	ip->tot_len = ag_htons(AG_RST_L3_LEN);
	ip->id = 0;
	ip->frag_off = ag_htons(0x4000); /* DF: 40 bytes never need fragmenting */
	ip->ttl = AG_RST_TTL;
	ip->protocol = IPPROTO_TCP;
	ip->check = 0;
	ip->saddr = daddr;
	ip->daddr = saddr;
	ip->check = (__sum16)(__u16)~ag_csum_fold(ag_csum_words((const __u16 *)ip, 10, 0));

	rth->source = dport;
	rth->dest = sport;
	rth->seq = seq;
	rth->ack_seq = ack;
	((__u8 *)rth)[12] = 5 << 4; /* data offset 5, reserved bits 0 */
	((__u8 *)rth)[13] = rflags;
	rth->window = ag_htons(wnd);
	rth->check = 0;
	rth->urg_ptr = 0;
	/* Pseudo header: addresses (raw halves), protocol and TCP length as network words. */
	sum = ag_csum_words((const __u16 *)&ip->saddr, 4, 0);
	sum += ag_htons(IPPROTO_TCP);
	sum += ag_htons(sizeof(*rth));
	sum = ag_csum_words((const __u16 *)rth, 10, sum);
	rth->check = (__sum16)(__u16)~ag_csum_fold(sum);

	p->l4 = rth;
	p->tot_len = AG_RST_L3_LEN;
	p->sport = dport;
	p->dport = sport;
	p->data_end = (void *)(rth + 1);
	/* ag_parse() layout: the IP header follows Ethernet and p->vlans tags. */
	return (int)(sizeof(struct ethhdr) + p->vlans * sizeof(struct ag_vlan_hdr) + AG_RST_L3_LEN);
}

/*
 * Turn the TCP segment p into the RST that answers it (RFC 9293 3.10.7.1):
 *   segment has ACK:    <SEQ=SEG.ACK><CTL=RST>
 *   otherwise:          <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
 * (SEG.LEN counts the payload, SYN and FIN), window 0. Returns the frame
 * length as ag_tcp__answer(), or -1 when the segment must not be answered: it
 * is a RST itself (never answer a reset with a reset).
 */
static __always_inline int ag_tcp__make_rst(struct ag_pkt *p)
{
	struct iphdr *ip = p->ip;
	struct tcphdr *th = p->l4;
	__u32 ihl_len, doff_len, seg_len;
	__u8 flags;

	if ((void *)(ip + 1) > p->data_end || (void *)(th + 1) > p->data_end)
		return -1;
	flags = ((__u8 *)th)[13];
	if (flags & AG_TCPF_RST)
		return -1;
	if (flags & AG_TCPF_ACK)
		return ag_tcp__answer(p, AG_TCPF_RST, th->ack_seq, 0, 0);
	ihl_len = (__u32)(*(__u8 *)ip & 0xf) * 4;
	doff_len = (__u32)(((__u8 *)th)[12] >> 4) * 4;
	/* ag_parse() checked ihl_len + doff_len <= tot_len. */
	seg_len = (__u32)p->tot_len - ihl_len - doff_len;
	if (flags & AG_TCPF_SYN)
		seg_len++;
	if (flags & AG_TCPF_FIN)
		seg_len++;
	return ag_tcp__answer(p, AG_TCPF_RST | AG_TCPF_ACK, 0,
			      ag_htonl(ag_ntohl(th->seq) + seg_len), 0);
}

/*
 * Turn the SYN p into the SYN authentication challenge (flow.h): a SYN-ACK
 * whose ACK number is the cookie (made never acceptable to the client), so
 * that a real client answers <SEQ=cookie><CTL=RST> (RFC 9293 3.10.7.3,
 * SYN-SENT: an unacceptable ACK is answered with a reset) and retransmits its
 * SYN; a spoofed source never answers. Returns the frame length as
 * ag_tcp__answer().
 */
static __always_inline int ag_tcp__make_syn_challenge(struct ag_pkt *p, __u32 cookie)
{
	struct tcphdr *th = p->l4;
	__u32 ack;

	if ((void *)(th + 1) > p->data_end)
		return -1;
	ack = ag_syn__challenge_ack(cookie, ag_ntohl(th->seq));
	return ag_tcp__answer(p, AG_TCPF_SYN | AG_TCPF_ACK, ag_htonl(cookie ^ 0x5ca1ab1eu),
			      ag_htonl(ack), 1024);
}

#endif /* AG_CORE_RST_H */
