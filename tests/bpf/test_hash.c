/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hash cross-check: dataplane/core/hash.h compiled for BPF (hash_probe.bpf.c,
 * run with BPF_PROG_TEST_RUN) and for user space (this file) must give the
 * same value for every key and seed, or an XDP edge and a DPDK edge (and
 * anygated's own flow views) would disagree on a flow's backend. Also checks
 * both builds against a from-the-paper lookup3 hashword() and murmur3 fmix32
 * written here, and that the key's pad bytes take no part.
 *
 * Needs root (BPF); exits 77 (skip) without it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <CUnit/Basic.h>

#include "hash.h"
#include "hash_probe.h"
#include "hash_probe.skel.h"

#define NKEYS 20000

static struct hash_probe *skel;
static int prog_fd;

/* splitmix64: fixed seed, so every run checks the same keys. */
static uint64_t prng_state = 0x0123456789abcdefULL;

static uint64_t prng(void)
{
	uint64_t z = (prng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Bob Jenkins' lookup3.c hashword(), transcribed from the published source. */
/* clang-format off */
#define rot(x, k) (((x) << (k)) | ((x) >> (32 - (k))))
static uint32_t ref_hashword(const uint32_t *k, size_t length, uint32_t initval)
{
	uint32_t a, b, c;

	a = b = c = 0xdeadbeef + (((uint32_t)length) << 2) + initval;
	while (length > 3) {
		a += k[0];
		b += k[1];
		c += k[2];
		a -= c; a ^= rot(c, 4);  c += b;
		b -= a; b ^= rot(a, 6);  a += c;
		c -= b; c ^= rot(b, 8);  b += a;
		a -= c; a ^= rot(c, 16); c += b;
		b -= a; b ^= rot(a, 19); a += c;
		c -= b; c ^= rot(b, 4);  b += a;
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
		c ^= b; c -= rot(b, 14);
		a ^= c; a -= rot(c, 11);
		b ^= a; b -= rot(a, 25);
		c ^= b; c -= rot(b, 16);
		a ^= c; a -= rot(c, 4);
		b ^= a; b -= rot(a, 14);
		c ^= b; c -= rot(b, 24);
		break;
	case 0:
		break;
	}
	return c;
}
/* clang-format on */

static uint32_t ref_fmix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* The words hash.h documents: fields in host order, ports packed sport:dport. */
static uint32_t ref_flow(const struct ag_flow_key *k, uint32_t seed)
{
	uint32_t w[4] = {ntohl(k->saddr.v4), ntohl(k->daddr.v4),
			 (uint32_t)ntohs(k->sport) << 16 | ntohs(k->dport), k->proto};

	return ref_hashword(w, 4, seed);
}

static uint32_t ref_source(const struct ag_flow_key *k, uint32_t seed)
{
	uint32_t w[3] = {ntohl(k->saddr.v4), ntohl(k->daddr.v4), k->proto};

	return ref_hashword(w, 3, seed);
}

static void random_key(struct ag_flow_key *k, unsigned int i)
{
	uint64_t a = prng(), b = prng();

	memset(k, 0, sizeof(*k));
	k->saddr.v4 = (__be32)a;
	k->daddr.v4 = (__be32)(a >> 32);
	k->sport = (__be16)b;
	k->dport = (__be16)(b >> 16);
	/* Mostly TCP/UDP, sometimes any byte. */
	k->proto = (__u8)(i % 3 == 0 ? 6 : i % 3 == 1 ? 17 : (b >> 32) & 0xff);
	/* Every fourth key carries garbage pad bytes: the hash must ignore them. */
	if (i % 4 == 3) {
		k->pad[0] = (__u8)(b >> 40);
		k->pad[1] = (__u8)(b >> 48);
		k->family = (__u8)(b >> 56) | 1;
	}
}

static uint32_t random_seed(unsigned int i)
{
	static const uint32_t fixed[] = {0, 0xffffffffu, 0x5eed1234u, 0xdeadbeefu};

	return i < 4 ? fixed[i] : (uint32_t)prng();
}

static int probe(struct ag_hash_probe_rec *rec)
{
	struct ag_hash_probe_rec out;
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = rec, .data_size_in = sizeof(*rec),
		    .data_out = &out, .data_size_out = sizeof(out), .repeat = 1, );
	int err;

	err = bpf_prog_test_run_opts(prog_fd, &opts);
	if (err)
		return err;
	if (opts.retval != XDP_TX || opts.data_size_out != sizeof(out))
		return -EPROTO;
	*rec = out;
	return 0;
}

static void test_bpf_vs_user(void)
{
	unsigned int i, bad = 0, bad_ref = 0, bad_pad = 0, failed_runs = 0;

	for (i = 0; i < NKEYS; i++) {
		struct ag_hash_probe_rec rec, want;
		struct ag_flow_key zk;

		memset(&rec, 0, sizeof(rec));
		random_key(&rec.key, i);
		rec.seed = random_seed(i);

		want = rec;
		want.flow = ag_hash__flow(&rec.key, rec.seed);
		want.source = ag_hash__source(&rec.key, rec.seed);
		want.select_none = ag_hash__select(&rec.key, AG_AFFINITY_NONE, rec.seed);
		want.select_source = ag_hash__select(&rec.key, AG_AFFINITY_SOURCE_IP, rec.seed);
		want.nat = ag_hash__nat(&rec.key, rec.seed);
		want.mix = ag_hash__mix32(rec.seed);

		if (probe(&rec)) {
			failed_runs++;
			continue;
		}
		/* The BPF build wrote its hashes over the outputs: compare those, field by field.
		 */
		if (rec.flow != want.flow || rec.source != want.source ||
		    rec.select_none != want.select_none ||
		    rec.select_source != want.select_source || rec.nat != want.nat ||
		    rec.mix != want.mix) {
			if (bad++ < 5)
				printf(
				    "\n  key %u seed %08x: bpf flow %08x source %08x sel %08x/%08x "
				    "nat %08x mix %08x; user %08x %08x %08x/%08x %08x %08x",
				    i, want.seed, rec.flow, rec.source, rec.select_none,
				    rec.select_source, rec.nat, rec.mix, want.flow, want.source,
				    want.select_none, want.select_source, want.nat, want.mix);
		}
		/* Both builds against the published algorithms. */
		if (want.flow != ref_flow(&want.key, want.seed) ||
		    want.source != ref_source(&want.key, want.seed) ||
		    want.select_none != want.flow || want.select_source != want.source ||
		    want.nat != ref_flow(&want.key, want.seed ^ AG_HASH_NAT_SALT) ||
		    want.mix != ref_fmix32(want.seed))
			bad_ref++;
		zk = want.key;
		memset(zk.pad, 0, sizeof(zk.pad));
		if (ag_hash__flow(&zk, want.seed) != want.flow ||
		    ag_hash__source(&zk, want.seed) != want.source)
			bad_pad++;
	}
	printf("\n  %u keys: %u BPF/user mismatches, %u reference mismatches, %u pad-sensitive, "
	       "%u failed runs\n",
	       NKEYS, bad, bad_ref, bad_pad, failed_runs);
	CU_ASSERT_EQUAL(failed_runs, 0);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(bad_ref, 0);
	CU_ASSERT_EQUAL(bad_pad, 0);
}

/* Source affinity: every port pair of one (client, vip, proto) hashes alike; the 5-tuple hash does
 * not. */
static void test_source_affinity(void)
{
	unsigned int i, same_src = 0, distinct_flow = 0;
	struct ag_hash_probe_rec base, rec;

	memset(&base, 0, sizeof(base));
	random_key(&base.key, 0);
	base.seed = 0x5eed1234u;
	rec = base;
	CU_ASSERT_EQUAL_FATAL(probe(&rec), 0);
	base = rec;
	for (i = 1; i <= 1000; i++) {
		rec = base;
		rec.key.sport = (__be16)prng();
		rec.key.dport = (__be16)prng();
		if (probe(&rec))
			break;
		same_src += rec.source == base.source && rec.select_source == base.source;
		distinct_flow += rec.flow != base.flow;
	}
	printf("\n  1000 port pairs: %u share the source hash, %u differ in the flow hash\n",
	       same_src, distinct_flow);
	CU_ASSERT_EQUAL(same_src, 1000);
	/* A 32-bit hash collides on a handful of 1000 at most; allow none to be lazy. */
	CU_ASSERT(distinct_flow >= 995);
}

int main(void)
{
	CU_pSuite suite;
	unsigned int failed;
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		printf("SKIP: test_hash needs root (BPF_PROG_TEST_RUN)\n");
		return 77;
	}
	skel = hash_probe__open_and_load();
	if (!skel) {
		fprintf(stderr, "hash_probe: load: %s\n", strerror(errno));
		return 1;
	}
	prog_fd = bpf_program__fd(skel->progs.hash_probe);
	{
		struct ag_hash_probe_rec rec;

		memset(&rec, 0, sizeof(rec));
		err = probe(&rec);
		if (err == -ENOTSUP || err == -EOPNOTSUPP || err == -EPERM) {
			printf("SKIP: BPF_PROG_TEST_RUN for XDP unavailable: %s\n", strerror(-err));
			hash_probe__destroy(skel);
			return 77;
		}
		if (err) {
			fprintf(stderr, "hash_probe: test_run: %s\n", strerror(-err));
			hash_probe__destroy(skel);
			return 1;
		}
	}

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("hash cross-check", NULL, NULL);
	if (!suite ||
	    !CU_add_test(suite, "BPF build == user-space build == reference", test_bpf_vs_user) ||
	    !CU_add_test(suite, "source affinity ignores ports", test_source_affinity)) {
		CU_cleanup_registry();
		hash_probe__destroy(skel);
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	hash_probe__destroy(skel);
	return failed ? 1 : 0;
}
