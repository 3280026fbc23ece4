/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A private network namespace for BPF_PROG_TEST_RUN of the XDP program:
 * bpf_fib_lookup() needs real interfaces, routes and neighbours. The process
 * unshares its own anonymous namespace, so nothing outlives it on any exit
 * path and no packet can leave it (test_run never transmits anyway).
 *
 *   agc0 10.0.0.1/24 <-> agc1      client side: client 10.0.0.2 (neighbour),
 *                                  clients 10.20.0.0/16 via gateway 10.0.0.254
 *   agb0 10.1.0.1/24 <-> agb1      backend side: backends 10.1.1.0/24 via
 *                                  router 10.1.0.2; 10.3.0.0/24 on-link with no
 *                                  neighbour entry (fib returns NO_NEIGH)
 *   lo   10.255.0.1/32             the NAT source address
 *
 * Neighbours are PERMANENT with the MACs below, so the expected output frames
 * carry exact addresses. Forwarding is on (fib lookup refuses otherwise).
 */
#ifndef AG_TEST_TESTNET_H
#define AG_TEST_TESTNET_H

#include <stdint.h>

#include "pkt.h"

#define AG_TN_CLIENT	  AG_IP4(10, 0, 0, 2)
#define AG_TN_CLIENT_GW	  AG_IP4(10, 0, 0, 254)
#define AG_TN_CLIENTS_NET AG_IP4(10, 20, 0, 0) /* /16 behind the gateway */
#define AG_TN_ROUTER	  AG_IP4(10, 1, 0, 2)
#define AG_TN_BACKEND1	  AG_IP4(10, 1, 1, 11)
#define AG_TN_BACKEND2	  AG_IP4(10, 1, 1, 12)
#define AG_TN_NONEIGH	  AG_IP4(10, 3, 0, 9) /* on-link, never resolved */
#define AG_TN_NAT	  AG_IP4(10, 255, 0, 1)
#define AG_TN_VIP	  AG_IP4(198, 51, 100, 10)
#define AG_TN_OTHER	  AG_IP4(198, 51, 100, 99) /* not a VIP */

struct ag_testnet {
	int ifindex_c;	       /* agc0: client-facing */
	int ifindex_b;	       /* agb0: backend-facing */
	uint8_t mac_c[6];      /* agc0 */
	uint8_t mac_b[6];      /* agb0 */
	uint8_t mac_client[6]; /* neighbour 10.0.0.2 */
	uint8_t mac_client_gw[6];
	uint8_t mac_router[6]; /* neighbour 10.1.0.2 */
	uint8_t mac_peer[6];   /* source MAC of frames arriving at agc0/agb0 */
};

/*
 * Move the calling process into a fresh network namespace and build the
 * topology above. Returns 0 or -errno (message on stderr).
 */
int ag_testnet__setup(struct ag_testnet *tn);

/* 0 when the process can run BPF_PROG_TEST_RUN and unshare (root). */
int ag_testnet__check_privileges(void);

#endif /* AG_TEST_TESTNET_H */
