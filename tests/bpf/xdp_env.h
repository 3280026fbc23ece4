/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The anygate XDP program loaded from its skeleton, its maps filled the way
 * anygated fills them (abi.h), inside the private namespace of testnet.h.
 * Shared by the fixture tests and the test_run benchmark.
 */
#ifndef AG_TEST_XDP_ENV_H
#define AG_TEST_XDP_ENV_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/types.h>

#include "abi.h"
#include "testnet.h"

/* Lookup table size for the tests: a small prime keeps ag_lookup at 128 KiB. */
#define AG_TE_RING	    251
#define AG_TE_SEED	    0x5eed1234u
#define AG_TE_NAT_PORT_MIN  1024
#define AG_TE_NAT_PORT_MAX  60999 /* below 65535: the range check means something */
#define AG_TE_TCP_IDLE_NS   (340ULL * 1000000000ULL)
#define AG_TE_UDP_IDLE_NS   (30ULL * 1000000000ULL)
#define AG_TE_SYN_IDLE_NS   (5ULL * 1000000000ULL)
#define AG_TE_CLOSING_NS    (10ULL * 1000000000ULL)
#define AG_TE_AUTH_TTL_NS   (600ULL * 1000000000ULL)
/*
 * Expiry fixtures: a limit short enough that "older than the limit" is a
 * CLOCK_MONOTONIC stamp on a machine booted seconds ago, and the age given.
 */
#define AG_TE_SHORT_IDLE_NS (5ULL * 1000000000ULL)
#define AG_TE_AGED_NS	    (10ULL * 1000000000ULL)

/* Backend ids: never 0, so a zeroed (unpublished) lookup entry cannot pass for one. */
enum {
	AG_TE_B1 = 1, /* 10.1.1.11, group 1 */
	AG_TE_B2 = 2, /* 10.1.1.12, group 1 */
	AG_TE_B3 = 3, /* 10.1.1.13, group 2 (port override 8000 -> 8080) */
	AG_TE_B4 = 4, /* 10.3.0.9, group 3: on-link, no neighbour */
	AG_TE_B5 = 5, /* 10.1.1.15, group 1: only in the spare slot (decoy) */
	AG_TE_B6 = 6, /* 10.1.1.16, group 1, DOWN */
};

/* Listeners: id, key, live slot, affinity, flags, table. */
struct ag_te_listener {
	uint32_t id;
	uint8_t proto;
	uint16_t port; /* host order */
	uint32_t slot;
	uint8_t affinity;
	uint8_t flags;
};

enum {
	AG_TE_L_TCP80 = 0,   /* B1/B2 by table, live slot 1 (the odd one), decoy B5 in slot 0 */
	AG_TE_L_UDP5000 = 1, /* B1/B2 by table, slot 2 */
	AG_TE_L_TCP8000 = 2, /* B3, port override to 8080 */
	AG_TE_L_TCP8001 = 3, /* every entry AG_BACKEND_NONE */
	AG_TE_L_TCP8002 = 4, /* B1/B2, source-IP affinity, slot 9 */
	AG_TE_L_UDP5001 = 5, /* B4: fib lookup says NO_NEIGH */
	AG_TE_L_TCP8003 = 6, /* not AG_LF_ACTIVE */
	AG_TE_L_TCP8004 = 7, /* B6, which is DOWN */
	AG_TE_NLISTENERS
};

extern const struct ag_te_listener ag_te_listeners[AG_TE_NLISTENERS];

struct ag_xdp_env {
	struct anygate_bpf *skel;
	struct ag_testnet tn;
	int prog_fd;
	int ncpus;
	uint32_t *lookup; /* mmap of ag_lookup (8-byte stride, see xdp_env.c) */
	size_t lookup_len;
	struct ag_settings settings;
};

/*
 * Open, size (flows: the ag_flows/ag_nat_rev max_entries), load, and fill the
 * maps. The namespace must already exist (tn). Returns 0 or -errno, with a
 * message on stderr.
 */
int ag_xdp_env__open(struct ag_xdp_env *env, uint32_t flows);
void ag_xdp_env__close(struct ag_xdp_env *env);

/* Backend id the lookup table holds at index i of the given listener's slot. */
uint32_t ag_xdp_env__table_entry(const struct ag_xdp_env *env, uint32_t listener, uint32_t i);

/* Address (host order) of a backend id. */
uint32_t ag_xdp_env__backend_addr(uint32_t bid);

/*
 * Run the program once on [in, in + len) arriving at ifindex. meta bytes in
 * front of the frame are XDP metadata (how a frame shorter than 14 bytes,
 * which test_run refuses, reaches the program). Returns 0 or -errno.
 */
int ag_xdp_env__run(const struct ag_xdp_env *env, int ifindex, const uint8_t *in, int len, int meta,
		    uint8_t *out, int *out_len, uint32_t *verdict);

/* Per-CPU statistics summed over CPUs. Return 0 or -errno. */
int ag_xdp_env__rstats(const struct ag_xdp_env *env, struct ag_reason_stats out[AG_R__MAX]);
int ag_xdp_env__tstats(const struct ag_xdp_env *env, bool backend, uint32_t id,
		       struct ag_traffic_stats *out);

/* Rewrite ag_settings from env->settings. Returns 0 or -errno. */
int ag_xdp_env__write_settings(const struct ag_xdp_env *env);

/* Add or replace a backend (addr host order). Returns 0 or -errno. */
int ag_xdp_env__set_backend(const struct ag_xdp_env *env, uint32_t id, uint32_t addr,
			    uint32_t group, uint8_t state);

/* Change only the state of backend id (as anygated publishes health). Returns 0 or -errno. */
int ag_xdp_env__set_backend_state(const struct ag_xdp_env *env, uint32_t id, uint8_t state);

/* Set entry i of a listener's live table (through the mmap, as anygated does). */
void ag_xdp_env__set_table_entry(const struct ag_xdp_env *env, uint32_t listener, uint32_t i,
				 uint32_t bid);

/*
 * Register interface ifindex in ag_ifaces with mac (NULL: zero) and roles
 * (AG_ROLE_*; 0 unregisters it), as anygated does at attach. 0 or -errno.
 */
int ag_xdp_env__set_iface(const struct ag_xdp_env *env, int ifindex, const uint8_t *mac,
			  uint8_t roles);

/* The registration anygated would make: agc0 client, agb0 backend. 0 or -errno. */
int ag_xdp_env__set_ifaces(const struct ag_xdp_env *env);

/* 0 when test_run works for this program here; -errno otherwise. */
int ag_xdp_env__probe(const struct ag_xdp_env *env);

#endif /* AG_TEST_XDP_ENV_H */
