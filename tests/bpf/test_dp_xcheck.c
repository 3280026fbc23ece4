/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * XDP and DPDK make the same choice for the same flow. The XDP program is
 * loaded with the fixture tables of xdp_env.c; those maps are copied, through
 * the shared-memory publisher sink (controlplane/fastpath/shm.c), into a DPDK segment;
 * then thousands of first packets of random flows go through the XDP program
 * (BPF_PROG_TEST_RUN) and through anygate-dp's ag_dp__choose(): ag_choose()
 * (dataplane/core/choose.h) on anygate-dp's segment accessors
 * (dataplane/dpdk/select.h), built here in user space. For every flow:
 *   - both forward, and the XDP output carries exactly the backend address
 *     and port, NAT address and NAT port the DPDK choice names (the NAT port:
 *     the first of ag_nat__port_candidate()'s sequence not already taken, as
 *     both fast paths claim it on empty tables); or
 *   - both refuse it, for the same reason (the XDP one read from ag_rstats).
 * The flows cover every fixture listener (5-tuple and source affinity, port
 * override, empty table, inactive listener, DOWN backend, unresolved next
 * hop), a protocol and a port without listener, another VIP, and TTL 1.
 *
 * Needs root (namespace, BPF); exits 77 (skip) without it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <CUnit/Basic.h>
#include <linux/bpf.h>

#include "anygate.skel.h"
#include "config.h"
#include "log.h"
#include "pkt.h"
#include "select.h"
#include "shm.h"
#include "xdp_env.h"

#define NFLOWS 4000

static struct ag_xdp_env env;
static struct ag_shm *shm;
static char shm_name[64];

/* splitmix64: fixed seed, every run checks the same flows. */
static uint64_t prng_state = 0x5eedf00d12345678ULL;

static uint64_t prng(void)
{
	uint64_t z = (prng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Copy the XDP program's tables into the segment, as anygated's publisher writes them. */
static int mirror_maps(void)
{
	const struct ag_sink_ops *ops = ag_shm__sink_ops();
	struct anygate_bpf *skel = env.skel;
	struct ag_listener_key lkeys[1024], lk, *lp = NULL;
	struct ag_port_ovr_key okeys[64], ok, *op = NULL;
	struct ag_port_ovr ovals[64];
	uint32_t ids[1024], vips[64], v, *vp = NULL, id;
	unsigned int n = 0, no = 0, nv = 0, i;
	int err;

	err = ops->settings(shm, &env.settings);
	while (!err && !bpf_map_get_next_key(bpf_map__fd(skel->maps.ag_listeners), lp, &lk)) {
		lkeys[n] = lk;
		lp = &lkeys[n];
		err = bpf_map_lookup_elem(bpf_map__fd(skel->maps.ag_listeners), &lk, &ids[n]);
		if (++n == 1024)
			return -E2BIG;
	}
	if (!err)
		err = ops->listener_keys(shm, lkeys, ids, n);
	while (!err && !bpf_map_get_next_key(bpf_map__fd(skel->maps.ag_port_ovr), op, &ok)) {
		okeys[no] = ok;
		op = &okeys[no];
		err = bpf_map_lookup_elem(bpf_map__fd(skel->maps.ag_port_ovr), &ok, &ovals[no]);
		if (++no == 64)
			return -E2BIG;
	}
	if (!err)
		err = ops->port_overrides(shm, okeys, ovals, no);
	while (!err && !bpf_map_get_next_key(bpf_map__fd(skel->maps.ag_vips), vp, &v)) {
		vips[nv] = v;
		vp = &vips[nv];
		if (++nv == 64)
			return -E2BIG;
	}
	if (!err)
		err = ops->vips(shm, vips, nv);
	for (id = 0; !err && id < 64; id++) {
		struct ag_backend b;

		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.ag_backends), &id, &b))
			return -errno;
		err = ops->backend(shm, id, &b);
	}
	for (id = 0; !err && id < AG_TE_NLISTENERS; id++) {
		struct ag_listener_state st;

		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.ag_lstate), &id, &st))
			return -errno;
		*ops->lstate(shm, id) = st;
	}
	/* Every slot, live and spare: the spare ones hold decoys a wrong read would find. */
	for (i = 0; !err && i < AG_LOOKUP_SLOTS; i++)
		memcpy(ops->lookup_slot(shm, i), env.lookup + (size_t)i * AG_TE_RING,
		       AG_TE_RING * sizeof(uint32_t));
	return err;
}

/* NAT ports taken so far: (backend, NAT address, backend port, NAT port). */
struct claim {
	uint32_t baddr, naddr;
	uint16_t bport, port;
};
static struct claim claims[NFLOWS];
static unsigned int n_claims;

static bool claimed(uint32_t baddr, uint32_t naddr, uint16_t bport, uint16_t port)
{
	unsigned int i;

	for (i = 0; i < n_claims; i++)
		if (claims[i].baddr == baddr && claims[i].naddr == naddr &&
		    claims[i].bport == bport && claims[i].port == port)
			return true;
	return false;
}

/* Which reason counter moved between two snapshots (-1: none, -2: several). */
static int reason_delta(const struct ag_reason_stats *a, const struct ag_reason_stats *b)
{
	int r, found = -1;

	for (r = 0; r < AG_R__MAX; r++) {
		if (a[r].packets == b[r].packets)
			continue;
		found = found == -1 ? r : -2;
	}
	return found;
}

static const char *reason_label(int r)
{
	static const char *const names[] = {
#define AG_REASON_NAME(name, label) [AG_R_##name] = label,
	    AG_REASONS(AG_REASON_NAME)
#undef AG_REASON_NAME
	};

	if (r == AG_PARSE_OK)
		return "forward";
	return r >= 0 && r < AG_R__MAX ? names[r] : "none/several";
}

static void test_same_choice(void)
{
	static const struct {
		uint8_t proto;
		uint16_t port;
	} targets[] = {
	    {IPPROTO_TCP, 80},	 {IPPROTO_UDP, 5000}, {IPPROTO_TCP, 8000}, {IPPROTO_TCP, 8001},
	    {IPPROTO_TCP, 8002}, {IPPROTO_UDP, 5001}, {IPPROTO_TCP, 8003}, {IPPROTO_TCP, 8004},
	    {IPPROTO_UDP, 80},	 {IPPROTO_TCP, 9},
	};
	struct ag_reason_stats before[AG_R__MAX], after[AG_R__MAX];
	const struct ag_shm_hdr *h = ag_shm__hdr(shm);
	unsigned int i, mismatches = 0, forwarded = 0, refused = 0;
	unsigned int per_reason[AG_R__MAX + 1] = {0};
	struct ag_settings s;

	CU_ASSERT_EQUAL_FATAL(ag_shm__settings_get(h, &s), 1);
	for (i = 0; i < NFLOWS; i++) {
		uint64_t rnd = prng();
		unsigned int t = (unsigned int)(rnd % (sizeof(targets) / sizeof(targets[0])));
		struct ag_pkt_spec spec;
		uint8_t in[AG_PKT_MAX], out[AG_PKT_MAX];
		struct ag_flow_key k;
		struct ag_choice c = {0};
		uint32_t verdict;
		int in_len, out_len, r, xr, off;
		bool bad = false;

		memset(&spec, 0, sizeof(spec));
		memcpy(spec.dmac, env.tn.mac_c, 6);
		memcpy(spec.smac, env.tn.mac_peer, 6);
		spec.ttl = (rnd >> 8) % 50 == 0 ? 1 : 64;
		spec.proto = targets[t].proto;
		/* Distinct flows: the index is in the source address and port. */
		spec.saddr = AG_TN_CLIENTS_NET | (i & 0xffff);
		spec.sport = (uint16_t)(1024 + (rnd >> 16) % 60000);
		spec.daddr = (rnd >> 40) % 40 == 0 ? AG_TN_OTHER : AG_TN_VIP;
		spec.dport = targets[t].port;
		spec.tcp_flags = AG_TCPF_SYN;
		spec.seq = (uint32_t)rnd;
		in_len = ag_pkt__build(&spec, in);

		k.saddr = htonl(spec.saddr);
		k.daddr = htonl(spec.daddr);
		k.sport = htons(spec.sport);
		k.dport = htons(spec.dport);
		k.proto = spec.proto;
		memset(k.pad, 0, sizeof(k.pad));
		r = ag_dp__choose(h, &s, &k, spec.ttl, &c);

		CU_ASSERT_EQUAL_FATAL(ag_xdp_env__rstats(&env, before), 0);
		CU_ASSERT_EQUAL_FATAL(
		    ag_xdp_env__run(&env, env.tn.ifindex_c, in, in_len, 0, out, &out_len, &verdict),
		    0);
		CU_ASSERT_EQUAL_FATAL(ag_xdp_env__rstats(&env, after), 0);
		xr = reason_delta(before, after);
		off = ag_pkt__l3_off(&spec);

		if (r == AG_PARSE_OK) {
			/* The XDP output: saddr 12, daddr 16, then the L4 ports. */
			uint32_t saddr, daddr;
			uint16_t sport, dport, port;
			unsigned int attempt;

			memcpy(&saddr, out + off + 12, 4);
			memcpy(&daddr, out + off + 16, 4);
			memcpy(&sport, out + off + 20, 2);
			memcpy(&dport, out + off + 22, 2);
			for (attempt = 0; attempt < AG_NAT_PORT_RETRIES; attempt++) {
				port = ag_nat__port_candidate(c.h2, attempt, s.nat_port_min,
							      s.nat_port_max);
				if (!claimed(c.backend_addr, c.nat_addr, c.backend_port, port))
					break;
			}
			if ((xr != -1 && xr != AG_R_PASS_NO_NEIGH) || daddr != c.backend_addr ||
			    dport != c.backend_port || saddr != c.nat_addr ||
			    ntohs(sport) != port || verdict == XDP_DROP)
				bad = true;
			claims[n_claims++] =
			    (struct claim){c.backend_addr, c.nat_addr, c.backend_port, port};
			forwarded++;
		} else {
			if (xr != r)
				bad = true;
			refused++;
		}
		per_reason[r == AG_PARSE_OK ? AG_R__MAX : r]++;
		if (bad && mismatches++ < 5)
			printf("\n  flow %u (%s:%u -> port %u, proto %u, ttl %u): DPDK says %s "
			       "(backend %08x:%u nat %08x), XDP says %s (verdict %u)\n",
			       i, inet_ntoa((struct in_addr){k.saddr}), spec.sport, spec.dport,
			       spec.proto, spec.ttl, reason_label(r), ntohl(c.backend_addr),
			       ntohs(c.backend_port), ntohl(c.nat_addr), reason_label(xr), verdict);
	}
	printf("\n  %u flows: %u forwarded, %u refused (", NFLOWS, forwarded, refused);
	for (i = 0; i < AG_R__MAX; i++)
		if (per_reason[i])
			printf("%s %u, ", reason_label((int)i), per_reason[i]);
	printf("), %u mismatches\n", mismatches);
	CU_ASSERT_EQUAL(mismatches, 0);
	/* The sample reached every kind of decision the fixtures hold. */
	CU_ASSERT(forwarded > NFLOWS / 3);
	CU_ASSERT(per_reason[AG_R_PASS_NO_LISTENER] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_NO_BACKEND] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_BAD_STATE] > 0);
	CU_ASSERT(per_reason[AG_R_PASS_TTL] > 0);
}

/* Both sides' backend spread for one listener: the same counts, backend by backend. */
static void test_same_spread(void)
{
	const struct ag_shm_hdr *h = ag_shm__hdr(shm);
	unsigned int counts[8] = {0}, i;
	struct ag_settings s;

	CU_ASSERT_EQUAL_FATAL(ag_shm__settings_get(h, &s), 1);
	for (i = 0; i < 20000; i++) {
		struct ag_flow_key k = {
		    .saddr = htonl(AG_TN_CLIENTS_NET | (uint32_t)(prng() & 0xffff)),
		    .daddr = htonl(AG_TN_VIP),
		    .sport = htons((uint16_t)(1024 + prng() % 60000)),
		    .dport = htons(80),
		    .proto = IPPROTO_TCP,
		};
		struct ag_choice c = {0};
		uint32_t idx;

		CU_ASSERT_EQUAL_FATAL(ag_dp__choose(h, &s, &k, 64, &c), AG_PARSE_OK);
		/* The table entry the XDP program reads for this key, through its own mmap. */
		idx = ag_lookup__index(ag_te_listeners[AG_TE_L_TCP80].slot, AG_TE_RING,
				       ag_hash__select(&k, AG_AFFINITY_NONE, AG_TE_SEED));
		CU_ASSERT_EQUAL_FATAL(c.bid, env.lookup[idx]);
		counts[c.bid & 7]++;
	}
	/* The fixture table is 1/3 B2, 2/3 B1: both appear, nothing else does. */
	CU_ASSERT(counts[AG_TE_B1] > counts[AG_TE_B2] && counts[AG_TE_B2] > 5000);
	CU_ASSERT_EQUAL(counts[AG_TE_B1] + counts[AG_TE_B2], 20000);
}

int main(void)
{
	struct ag_cfg_edge edge;
	CU_pSuite suite;
	unsigned int failed;
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (ag_testnet__check_privileges()) {
		printf("SKIP: test_dp_xcheck needs root (network namespace, BPF_PROG_TEST_RUN)\n");
		return 77;
	}
	err = ag_testnet__setup(&env.tn);
	if (err == -EPERM) {
		printf("SKIP: cannot create a network namespace: %s\n", strerror(-err));
		return 77;
	}
	if (err)
		return 1;
	err = ag_xdp_env__open(&env, 2 * NFLOWS);
	if (err)
		return 1;
	err = ag_xdp_env__probe(&env);
	if (err == -ENOTSUP || err == -EOPNOTSUPP || err == -EPERM) {
		printf("SKIP: BPF_PROG_TEST_RUN for XDP unavailable: %s\n", strerror(-err));
		ag_xdp_env__close(&env);
		return 77;
	}
	if (err) {
		ag_xdp_env__close(&env);
		return 1;
	}
	ag_log__set_level(AG_LOG_WARN);
	memset(&edge, 0, sizeof(edge));
	snprintf(shm_name, sizeof(shm_name), "ag-xcheck-%d", (int)getpid());
	edge.ring_size = AG_TE_RING;
	edge.dpdk.shm_name = shm_name;
	ag_shm__unlink(shm_name);
	shm = ag_shm__open(&edge);
	if (!shm || mirror_maps()) {
		fprintf(stderr, "cannot copy the XDP tables into a segment\n");
		ag_shm__close(shm);
		ag_shm__unlink(shm_name);
		ag_xdp_env__close(&env);
		return 1;
	}

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("XDP / DPDK cross-check", NULL, NULL);
	CU_add_test(suite, "same choice, flow by flow", test_same_choice);
	CU_add_test(suite, "same table entry, key by key", test_same_spread);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	ag_shm__close(shm);
	ag_shm__unlink(shm_name);
	ag_xdp_env__close(&env);
	return failed ? 1 : 0;
}
