/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygate-dp's neighbour rules (dataplane/dpdk/neigh_rules.h): which ARP
 * packets may change an entry. Only an answer to our own request does; an
 * entry in use is re-verified by the MAC it has; everything else changes
 * nothing, and a reply nobody asked for is counted.
 */
#include <CUnit/Basic.h>
#include <stdio.h>

#include "neigh_rules.h"

#define TAKE	    AG_DP_ARP_TAKE
#define CONFIRM	    AG_DP_ARP_CONFIRM
#define REVERIFY    AG_DP_ARP_REVERIFY
#define UNSOLICITED AG_DP_ARP_UNSOLICITED

/* An answer to a request of ours, as it should look, for an entry in state st. */
static struct ag_dp_arp_seen answer(uint8_t st, bool same_mac)
{
	return (struct ag_dp_arp_seen){.known = true,
				       .state = st,
				       .asked = true,
				       .on_port = true,
				       .reply = true,
				       .to_us = true,
				       .same_mac = same_mac};
}

static void test_answers(void)
{
	struct ag_dp_arp_seen a;

	/* Broadcast resolution: the first answer, whatever its MAC, is taken. */
	a = answer(AG_DP_NEIGH_INCOMPLETE, false);
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), TAKE);
	/* Re-verification: only the MAC we have confirms. */
	a = answer(AG_DP_NEIGH_PROBE, true);
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), CONFIRM);
	a = answer(AG_DP_NEIGH_PROBE, false);
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), UNSOLICITED);
}

/* A reply that is not an answer to an outstanding request of ours: nothing changes. */
static void test_unsolicited_replies(void)
{
	struct ag_dp_arp_seen a;

	/* Nobody asked (no request outstanding). */
	a = answer(AG_DP_NEIGH_INCOMPLETE, false);
	a.asked = false;
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), UNSOLICITED);
	/* On another port than the entry's. */
	a = answer(AG_DP_NEIGH_INCOMPLETE, false);
	a.on_port = false;
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), UNSOLICITED);
	/* Addressed to another address than the receiving port's. */
	a = answer(AG_DP_NEIGH_INCOMPLETE, false);
	a.to_us = false;
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), UNSOLICITED);
	/* No entry at all: nothing is created. */
	a = answer(AG_DP_NEIGH_INCOMPLETE, false);
	a.known = false;
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), UNSOLICITED);
	/* Failed and static entries never change. */
	a = answer(AG_DP_NEIGH_FAILED, false);
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), UNSOLICITED);
	a = answer(AG_DP_NEIGH_STATIC, false);
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), UNSOLICITED);
	/* A reachable entry, same MAC: a duplicate answer, nothing to do. */
	a = answer(AG_DP_NEIGH_REACHABLE, true);
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), UNSOLICITED);
	/*
	 * A reachable entry, another MAC (the poisoning attempt, or a host that
	 * moved): the MAC is not taken; the MAC we have is asked again.
	 */
	a = answer(AG_DP_NEIGH_REACHABLE, false);
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), UNSOLICITED | REVERIFY);
	a.asked = false;
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), UNSOLICITED | REVERIFY);
	/* Already re-verifying: a second contradiction starts nothing new. */
	a = answer(AG_DP_NEIGH_PROBE, false);
	a.asked = false;
	CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), UNSOLICITED);
}

/* Requests, gratuitous ARP included, never change an entry and are not counted as replies. */
static void test_requests(void)
{
	static const uint8_t states[] = {AG_DP_NEIGH_INCOMPLETE, AG_DP_NEIGH_REACHABLE,
					 AG_DP_NEIGH_PROBE, AG_DP_NEIGH_FAILED, AG_DP_NEIGH_STATIC};
	unsigned int i, same;

	for (i = 0; i < sizeof(states); i++) {
		for (same = 0; same < 2; same++) {
			struct ag_dp_arp_seen a = answer(states[i], same);
			unsigned int want = 0;

			a.reply = false;
			/* Only a contradiction of an entry in use does something: re-verify it. */
			if (states[i] == AG_DP_NEIGH_REACHABLE && !same)
				want = REVERIFY;
			CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), want);
			if (ag_dp_arp__rule(&a) != want)
				fprintf(stderr, "request, state %u, same mac %u\n", states[i],
					same);
		}
	}
	{
		struct ag_dp_arp_seen a = {.reply = false};

		CU_ASSERT_EQUAL(ag_dp_arp__rule(&a), 0);
	}
}

int main(void)
{
	CU_pSuite s;
	unsigned int failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("neigh-rules", NULL, NULL);
	CU_add_test(s, "answers to our requests", test_answers);
	CU_add_test(s, "unsolicited replies change nothing", test_unsolicited_replies);
	CU_add_test(s, "requests and gratuitous ARP", test_requests);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
