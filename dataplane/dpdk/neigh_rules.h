/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What an ARP packet may do to anygate-dp's neighbour table (neigh.c): a pure
 * function of the entry's state and of the packet, so its rules are unit
 * tested (tests/unit/test_neigh_rules.c) without DPDK.
 *
 * ARP has no authentication: whoever answers first is believed. anygate-dp
 * narrows who can be believed, and when:
 *
 *   - A MAC is learned only from a reply to a request anygate-dp sent by
 *     broadcast and still waits on (INCOMPLETE), that came in on the entry's
 *     port, addressed to that port's address. The first such reply wins.
 *   - An entry in use is re-verified (PROBE: every 30 s of age, or when an
 *     ARP packet contradicts its MAC) by unicast to the MAC it has, and only
 *     that MAC can confirm it. If it stays silent for AG_DP_NEIGH_PROBES
 *     probes, the entry asks by broadcast again (INCOMPLETE) and takes the
 *     first answer: a host that really moved (or a failover) is followed in
 *     about AG_DP_NEIGH_PROBES seconds, while the host we know is alive no
 *     forger can replace it.
 *   - Every other reply is unsolicited: it changes nothing and is counted
 *     (arp_unsolicited). Requests never change an entry (they are answered
 *     when they ask for one of our addresses, from the requester's own
 *     fields), nor create one.
 *   - Gratuitous ARP (sender == target address, request or reply) is treated
 *     as any other packet from its sender: it changes nothing; when it
 *     contradicts the MAC of an entry in use it starts the re-verification
 *     above (arp_reverify), which a live known host answers.
 *   - Static neighbours (edge.dpdk.neighbours) never change.
 *
 * Every ARP packet still reaches the kernel behind the tap (its own table).
 */
#ifndef AG_DP_NEIGH_RULES_H
#define AG_DP_NEIGH_RULES_H

#include <stdbool.h>
#include <stdint.h>

/* Neighbour states (packed into ag_dp_neigh.mac_state with the MAC, dp.h). */
enum ag_dp_neigh_state {
	AG_DP_NEIGH_FREE = 0,
	AG_DP_NEIGH_INCOMPLETE = 1, /* asked by broadcast, no answer yet: not usable */
	AG_DP_NEIGH_REACHABLE = 2,
	AG_DP_NEIGH_PROBE = 3,	/* being re-asked by unicast: still usable */
	AG_DP_NEIGH_FAILED = 4, /* did not answer: not usable */
	AG_DP_NEIGH_STATIC = 5,
};

/* What one ARP packet says about its sender, as neigh.c found it. */
struct ag_dp_arp_seen {
	bool known;    /* the sender's address has an entry */
	uint8_t state; /* its state (when known) */
	bool asked;    /* we sent it a request that is not answered yet */
	bool on_port;  /* arrived on the entry's port */
	bool reply;    /* ARP reply (else request) */
	bool to_us;    /* target address is the receiving port's own */
	bool same_mac; /* sender MAC is the entry's MAC */
};

/* What to do with the entry (flags). */
#define AG_DP_ARP_TAKE	      0x1u /* take the sender's MAC, entry reachable */
#define AG_DP_ARP_CONFIRM     0x2u /* the MAC we have answered: reachable again */
#define AG_DP_ARP_REVERIFY    0x4u /* contradicted: re-ask the MAC we have (PROBE) */
#define AG_DP_ARP_UNSOLICITED 0x8u /* a reply nobody asked for: count it */

static inline unsigned int ag_dp_arp__rule(const struct ag_dp_arp_seen *a)
{
	bool answer = a->reply && a->known && a->asked && a->on_port && a->to_us;

	if (answer && a->state == AG_DP_NEIGH_INCOMPLETE)
		return AG_DP_ARP_TAKE;
	if (answer && a->state == AG_DP_NEIGH_PROBE && a->same_mac)
		return AG_DP_ARP_CONFIRM;
	/* An entry in use, contradicted: re-verify (once: a PROBE is already doing it). */
	if (a->known && a->state == AG_DP_NEIGH_REACHABLE && !a->same_mac)
		return AG_DP_ARP_REVERIFY | (a->reply ? AG_DP_ARP_UNSOLICITED : 0);
	return a->reply ? AG_DP_ARP_UNSOLICITED : 0;
}

#endif /* AG_DP_NEIGH_RULES_H */
