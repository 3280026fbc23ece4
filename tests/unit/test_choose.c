/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The backend choice, the NAT port builders, the ownership test, liveness
 * and the NAT port take-over decision of dataplane/core (choose.h,
 * flowlife.h, natclaim.h), on small tables that this file defines and fills:
 * every refusal reason and the order of the checks that decide between
 * them, slot switching, port overrides, source affinity; a flow idle on the
 * client's side but live on the reply side; a reverse entry taken over by
 * another flow; each TCP state's timeout; when a closed or expired flow lets
 * its NAT port go; a down backend's flow kept while it still replies. The
 * accessors count their reads, so the tests also see what the core reads and
 * what it leaves alone. Times are relative to T_NOW, never small stamps.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "cu_main.h"
#include "abi.h"
#include "choose.h"
#include "flowlife.h"
#include "natclaim.h"

#define T_RING	 13 /* AG_RING_SIZE_MIN: a prime */
#define T_SLOTS	 6  /* slots 0-5 exist; a listener may point past them */
#define T_SEED	 0x5eed1234u
#define T_NS	 1000000000ull
#define T_NOW	 (1000 * T_NS)
#define T_TCP_NS (340 * T_NS)
#define T_UDP_NS (30 * T_NS)
#define T_SYN_NS (5 * T_NS)
#define T_CLO_NS (10 * T_NS)
#define T_ALIVE	 (3 * T_NS) /* backend_alive_ns */
#define T_MAX	 8

/* Backends: B0 and B1 in group 1, B2 in group 2, B3 a spare to play with. */
enum { B0, B1, B2, B3, T_NBACKENDS };
/* Listeners: L0 TCP 80 (5-tuple), L1 UDP 53 (source affinity), L2 TCP 443. */
enum { L0, L1, L2, T_NLISTENERS };

struct ag_tables {
	struct {
		struct ag_listener_key k;
		__u32 id;
	} lkeys[T_MAX];
	unsigned int n_lkeys;
	int lkeys_torn; /* the listener table cannot be read consistently */
	struct ag_listener_state lstate[T_MAX];
	unsigned int n_lstate;
	struct ag_settings settings;
	int no_settings;
	__u32 lookup[T_SLOTS * T_RING];
	struct ag_backend backends[T_NBACKENDS];
	struct {
		struct ag_port_ovr_key k;
		__be16 port;
	} ovr[T_MAX];
	unsigned int n_ovr;
	int ovr_torn;
	struct {
		struct ag_flow_key k;
		struct ag_flow f;
	} flows[T_MAX];
	unsigned int n_flows;
	struct {
		struct ag_flow_key k;
		struct ag_nat_rev r;
	} revs[T_MAX];
	unsigned int n_revs;
	unsigned int lstate_reads, flow_reads, rev_reads;
};

/* Index of the entry with key *key in arr, n entries {k, value} (k first), or -1. */
static int find(const void *arr, unsigned int n, size_t stride, const void *key, size_t len)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!memcmp((const char *)arr + (size_t)i * stride, key, len))
			return (int)i;
	return -1;
}
#define FIND(arr, n, key) find((arr), (n), sizeof((arr)[0]), (key), sizeof((arr)[0].k))

/* Keys are looked up as bytes, as above: zeroed padding and address words included. */
static int key_bytes_equal(const struct ag_flow_key *a, const struct ag_flow_key *b)
{
	return memcmp((const void *)a, (const void *)b, sizeof(*a)) == 0;
}

static __always_inline int ag_tables__listener(struct ag_tables *t,
					       const struct ag_listener_key *lk, __u32 *lid)
{
	int i = FIND(t->lkeys, t->n_lkeys, lk);

	if (t->lkeys_torn)
		return -1;
	if (i < 0)
		return 0;
	*lid = t->lkeys[i].id;
	return 1;
}

static __always_inline int ag_tables__lstate(struct ag_tables *t, __u32 lid,
					     struct ag_listener_state *out)
{
	t->lstate_reads++;
	if (lid >= t->n_lstate)
		return 0;
	*out = t->lstate[lid];
	return 1;
}

static __always_inline const struct ag_settings *ag_tables__settings(struct ag_tables *t)
{
	return t->no_settings ? NULL : &t->settings;
}

static __always_inline int ag_tables__lookup(struct ag_tables *t, __u32 idx, __u32 *bid)
{
	if (idx >= T_SLOTS * T_RING)
		return 0;
	*bid = t->lookup[idx];
	return 1;
}

static __always_inline int ag_tables__backend(struct ag_tables *t, __u32 bid,
					      struct ag_backend *out)
{
	if (bid >= T_NBACKENDS)
		return 0;
	*out = t->backends[bid];
	return 1;
}

static __always_inline int ag_tables__port_ovr(struct ag_tables *t, const struct ag_port_ovr_key *k,
					       __be16 *port)
{
	int i = FIND(t->ovr, t->n_ovr, k);

	if (t->ovr_torn)
		return -1;
	if (i < 0)
		return 0;
	*port = t->ovr[i].port;
	return 1;
}

static __always_inline int ag_tables__flow(struct ag_tables *t, const struct ag_flow_key *k,
					   struct ag_flow *out)
{
	int i = FIND(t->flows, t->n_flows, k);

	t->flow_reads++;
	if (i < 0)
		return 0;
	*out = t->flows[i].f;
	return 1;
}

static __always_inline int ag_tables__nat_rev(struct ag_tables *t, const struct ag_flow_key *rk,
					      struct ag_nat_rev *out)
{
	int i = FIND(t->revs, t->n_revs, rk);

	t->rev_reads++;
	if (i < 0)
		return 0;
	*out = t->revs[i].r;
	return 1;
}

static struct ag_tables tb;

static __be32 ip4(unsigned int a, unsigned int b, unsigned int c, unsigned int d)
{
	return htonl(a << 24 | b << 16 | c << 8 | d);
}

static struct ag_flow_key key(__be32 saddr, __u16 sport, __u16 dport, __u8 proto)
{
	struct ag_flow_key k;

	memset(&k, 0, sizeof(k));
	ag_addr__set4(&k.saddr, saddr);
	ag_addr__set4(&k.daddr, ip4(192, 0, 2, 1)); /* the VIP */
	ag_flow_key__ports(&k, htons(sport), htons(dport), proto);
	return k;
}

static void add_listener(unsigned int id, __u16 port, __u8 proto, __u32 slot, __u8 affinity)
{
	struct ag_listener_key lk = {.vip = ip4(192, 0, 2, 1), .port = htons(port), .proto = proto};

	tb.lkeys[tb.n_lkeys].k = lk;
	tb.lkeys[tb.n_lkeys++].id = id;
	tb.lstate[id].slot = slot;
	tb.lstate[id].affinity = affinity;
	tb.lstate[id].flags = AG_LF_ACTIVE;
	if (id >= tb.n_lstate)
		tb.n_lstate = id + 1;
}

static void fill_slot(__u32 slot, __u32 bid)
{
	unsigned int i;

	for (i = 0; i < T_RING; i++)
		tb.lookup[slot * T_RING + i] = bid;
}

/*
 * L0 -> slot 0 (all B0), slot 1 (all B1); L1 -> slot 2 (B0..B2 by entry);
 * L2 -> slot 4 (all B2). Group 1 serves port 80 on 8080.
 */
static int setup(void)
{
	unsigned int i;

	memset(&tb, 0, sizeof(tb));
	tb.settings.abi_version = AG_ABI_VERSION;
	tb.settings.hash_seed = T_SEED;
	tb.settings.ring_size = T_RING;
	tb.settings.nat_addr_count = 2;
	tb.settings.nat_addrs[0] = ip4(198, 51, 100, 1);
	tb.settings.nat_addrs[1] = ip4(198, 51, 100, 2);
	tb.settings.tcp_idle_ns = T_TCP_NS;
	tb.settings.udp_idle_ns = T_UDP_NS;
	tb.settings.nat_port_min = 20000;
	tb.settings.nat_port_max = 20999;
	tb.settings.tcp_syn_idle_ns = T_SYN_NS;
	tb.settings.tcp_closing_ns = T_CLO_NS;
	tb.settings.backend_alive_ns = T_ALIVE;
	for (i = 0; i < T_SLOTS * T_RING; i++)
		tb.lookup[i] = AG_BACKEND_NONE;
	fill_slot(0, B0);
	fill_slot(1, B1);
	for (i = 0; i < T_RING; i++)
		tb.lookup[2 * T_RING + i] = i % 3;
	fill_slot(4, B2);
	for (i = 0; i < T_NBACKENDS; i++) {
		tb.backends[i].addr = ip4(10, 1, 0, 10 + i);
		tb.backends[i].group_id = i < B2 ? 1 : 2;
		tb.backends[i].state = AG_BACKEND_UP;
		tb.backends[i].mode = AG_MODE_NAT;
	}
	add_listener(L0, 80, IPPROTO_TCP, 0, AG_AFFINITY_NONE);
	add_listener(L1, 53, IPPROTO_UDP, 2, AG_AFFINITY_SOURCE_IP);
	add_listener(L2, 443, IPPROTO_TCP, 4, AG_AFFINITY_NONE);
	tb.ovr[0].k = (struct ag_port_ovr_key){.group_id = 1, .port = htons(80)};
	tb.ovr[0].port = htons(8080);
	tb.n_ovr = 1;
	return 0;
}

static int choose(const struct ag_flow_key *k, __u8 ttl, struct ag_choice *c)
{
	memset(c, 0xa5, sizeof(*c));
	return ag_choose(&tb, k, ttl, c);
}

static void test_choose_forward(void)
{
	struct ag_flow_key k = key(ip4(203, 0, 113, 7), 40000, 80, IPPROTO_TCP);
	struct ag_choice c;
	__u32 h2 = ag_hash__nat(&k, T_SEED);

	setup();
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_CHOICE_OK);
	CU_ASSERT_PTR_EQUAL(c.s, &tb.settings);
	CU_ASSERT_EQUAL(c.lid, L0);
	CU_ASSERT_EQUAL(c.bid, B0);
	CU_ASSERT_EQUAL(c.backend_addr, tb.backends[B0].addr);
	CU_ASSERT_EQUAL(c.h2, h2);
	CU_ASSERT_EQUAL(c.nat_addr, tb.settings.nat_addrs[h2 % 2]);
	CU_ASSERT_EQUAL(c.nat_index, h2 % 2);
	CU_ASSERT_EQUAL(c.pad, 0);
	/* The listener state (and its slot in it) is read once per choice. */
	CU_ASSERT_EQUAL(tb.lstate_reads, 1);
	/* TTL 2 still forwards: the fast path decrements it to 1. */
	CU_ASSERT_EQUAL(choose(&k, 2, &c), AG_CHOICE_OK);
}

/* Each refusal, and the one that wins when two apply: the order both fast paths check in. */
static void test_choose_refusals(void)
{
	struct ag_flow_key k = key(ip4(203, 0, 113, 7), 40000, 80, IPPROTO_TCP);
	struct ag_flow_key other_port = key(ip4(203, 0, 113, 7), 40000, 81, IPPROTO_TCP);
	struct ag_flow_key other_proto = key(ip4(203, 0, 113, 7), 40000, 80, IPPROTO_UDP);
	struct ag_choice c;

	setup();
	CU_ASSERT_EQUAL(choose(&other_port, 64, &c), AG_R_DROP_VIP_NO_LISTENER);
	CU_ASSERT_EQUAL(choose(&other_proto, 1, &c), AG_R_DROP_VIP_NO_LISTENER);
	tb.lkeys_torn = 1;
	CU_ASSERT_EQUAL(choose(&k, 1, &c), AG_R_DROP_BAD_STATE);
	setup();
	tb.n_lstate = L0; /* no state for the listener */
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_BAD_STATE);
	setup();
	tb.lstate[L0].flags = 0;
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_BAD_STATE);
	CU_ASSERT_EQUAL(choose(&k, 1, &c), AG_R_DROP_BAD_STATE); /* inactive before TTL */

	setup();
	CU_ASSERT_EQUAL(choose(&k, 1, &c), AG_R_DROP_TTL);
	CU_ASSERT_EQUAL(choose(&k, 0, &c), AG_R_DROP_TTL);
	tb.no_settings = 1;
	CU_ASSERT_EQUAL(choose(&k, 1, &c), AG_R_DROP_TTL); /* TTL before settings */
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_BAD_STATE);
	setup();
	tb.settings.abi_version = AG_ABI_VERSION + 1;
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_BAD_STATE);
	setup();
	tb.settings.nat_addr_count = 0;
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_BAD_STATE);
	setup();
	tb.settings.tcp_syn_idle_ns = 0;
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_BAD_STATE);
	setup();
	tb.settings.tcp_closing_ns = 0;
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_BAD_STATE);

	setup();
	tb.lstate[L0].slot = AG_LOOKUP_SLOTS;
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_BAD_STATE);
	tb.lstate[L0].slot = T_SLOTS; /* a slot past the table's end */
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_BAD_STATE);
	tb.lstate[L0].slot = 3; /* an empty slot: a policy drop */
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_NO_BACKEND);

	setup();
	fill_slot(0, T_NBACKENDS); /* an id with no backend entry */
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_NO_BACKEND);
	setup();
	tb.backends[B0].state = AG_BACKEND_DOWN;
	tb.backends[B0].mode = AG_MODE_NAT + 1;
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_NO_BACKEND); /* state before mode */
	tb.backends[B0].state = AG_BACKEND_DRAINING;
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_NO_BACKEND);
	tb.backends[B0].state = AG_BACKEND_UNUSED;
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_NO_BACKEND);
	tb.backends[B0].state = AG_BACKEND_UP;
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_BAD_STATE);

	setup();
	tb.ovr_torn = 1;
	CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_R_DROP_BAD_STATE);
	CU_ASSERT_EQUAL(choose(&k, 1, &c), AG_R_DROP_TTL);
}

/* The publisher switches a listener to its other slot: new flows follow at once. */
static void test_choose_slot_switch(void)
{
	struct ag_choice c;
	unsigned int i;

	setup();
	for (i = 0; i < 50; i++) {
		struct ag_flow_key k =
		    key(ip4(203, 0, 113, i), (__u16)(1024 + 7 * i), 80, IPPROTO_TCP);

		tb.lstate[L0].slot = 0;
		CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_CHOICE_OK);
		CU_ASSERT_EQUAL(c.bid, B0);
		tb.lstate[L0].slot = 1;
		CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_CHOICE_OK);
		CU_ASSERT_EQUAL(c.bid, B1);
	}
	/* Within a slot, the entry the flow hash names. */
	tb.lstate[L0].slot = 2;
	for (i = 0; i < 200; i++) {
		struct ag_flow_key k =
		    key(ip4(203, 0, 113, i & 0xff), (__u16)(1024 + i), 80, IPPROTO_TCP);
		__u32 idx = ag_lookup__index(2, T_RING, ag_hash__flow(&k, T_SEED));

		CU_ASSERT_EQUAL(choose(&k, 64, &c), AG_CHOICE_OK);
		CU_ASSERT_EQUAL(c.bid, tb.lookup[idx]);
	}
}

static void test_choose_port_override(void)
{
	struct ag_flow_key k80 = key(ip4(203, 0, 113, 7), 40000, 80, IPPROTO_TCP);
	struct ag_flow_key k443 = key(ip4(203, 0, 113, 7), 40000, 443, IPPROTO_TCP);
	struct ag_choice c;

	setup();
	CU_ASSERT_EQUAL(choose(&k80, 64, &c), AG_CHOICE_OK);
	CU_ASSERT_EQUAL(c.backend_port, htons(8080)); /* group 1 on port 80 */
	tb.lstate[L0].slot = 4;			      /* B2: group 2, no override */
	CU_ASSERT_EQUAL(choose(&k80, 64, &c), AG_CHOICE_OK);
	CU_ASSERT_EQUAL(c.bid, B2);
	CU_ASSERT_EQUAL(c.backend_port, htons(80));
	fill_slot(4, B1); /* group 1, but its override is for port 80 only */
	CU_ASSERT_EQUAL(choose(&k443, 64, &c), AG_CHOICE_OK);
	CU_ASSERT_EQUAL(c.bid, B1);
	CU_ASSERT_EQUAL(c.backend_port, htons(443));
}

/* Source affinity: every port of a client on one backend; the 5-tuple hash spreads them. */
static void test_choose_affinity(void)
{
	unsigned int client, port, seen_5tuple = 0;
	struct ag_choice c;

	setup();
	for (client = 1; client <= 20; client++) {
		__u32 first = AG_BACKEND_NONE, nat_first = 0;
		int nat_varies = 0;

		for (port = 0; port < 30; port++) {
			struct ag_flow_key k = key(ip4(203, 0, 113, client),
						   (__u16)(2000 + 2 * port), 53, IPPROTO_UDP);

			CU_ASSERT_EQUAL_FATAL(choose(&k, 64, &c), AG_CHOICE_OK);
			if (first == AG_BACKEND_NONE) {
				first = c.bid;
				nat_first = c.h2;
			}
			CU_ASSERT_EQUAL(c.bid, first);
			nat_varies |= c.h2 != nat_first;
		}
		/* The NAT hash stays per flow: a client's flows spread over NAT addresses. */
		CU_ASSERT(nat_varies);
	}
	/* The same table with a 5-tuple listener: one client's ports land on several backends. */
	tb.lstate[L1].affinity = AG_AFFINITY_NONE;
	for (port = 0; port < 30; port++) {
		struct ag_flow_key k =
		    key(ip4(203, 0, 113, 1), (__u16)(2000 + 2 * port), 53, IPPROTO_UDP);

		CU_ASSERT_EQUAL_FATAL(choose(&k, 64, &c), AG_CHOICE_OK);
		seen_5tuple |= 1u << c.bid;
	}
	CU_ASSERT(__builtin_popcount(seen_5tuple) >= 2);
}

static void test_choice_builders(void)
{
	struct ag_flow_key k = key(ip4(203, 0, 113, 7), 40000, 80, IPPROTO_TCP), rk;
	const __u32 cursors[] = {0, 999, 1000, ag_nat__cursor_start(3)};
	struct ag_flow_key uk = key(ip4(203, 0, 113, 7), 40000, 53, IPPROTO_UDP);
	struct ag_choice c;
	struct ag_nat_rev r;
	struct ag_flow f;
	__u32 n, i;

	setup();
	CU_ASSERT_EQUAL_FATAL(choose(&k, 64, &c), AG_CHOICE_OK);
	for (i = 0; i < sizeof(cursors) / sizeof(cursors[0]); i++)
		for (n = 0; n < AG_NAT_PORT_RETRIES; n++) {
			__be16 p = ag_choice__nat_port(&c, cursors[i], n, 0, htons(1));

			/* attempt n: n ports on from the CPU's cursor, in the range */
			CU_ASSERT_EQUAL(p, htons(20000 + (cursors[i] + n) % 1000));
			CU_ASSERT(ntohs(p) >= 20000 && ntohs(p) <= 20999);
			/* A moved flow tries its own port first, then the walk a new flow does. */
			CU_ASSERT_EQUAL(ag_choice__nat_port(&c, cursors[i], n, 1, htons(1)),
					n ? p : htons(1));
		}

	memset(&rk, 0xa5, sizeof(rk));
	ag_choice__rev_key(&rk, &c, &k, htons(20123));
	CU_ASSERT_EQUAL(rk.saddr.v4, tb.backends[B0].addr);
	CU_ASSERT_EQUAL(rk.daddr.v4, c.nat_addr);
	CU_ASSERT(!rk.saddr.w[1] && !rk.saddr.w[2] && !rk.saddr.w[3]);
	CU_ASSERT(!rk.daddr.w[1] && !rk.daddr.w[2] && !rk.daddr.w[3]);
	CU_ASSERT_EQUAL(rk.sport, htons(8080));
	CU_ASSERT_EQUAL(rk.dport, htons(20123));
	CU_ASSERT_EQUAL(rk.proto, IPPROTO_TCP);
	CU_ASSERT_EQUAL(rk.family, AG_FAMILY_IPV4);
	CU_ASSERT(!rk.pad[0] && !rk.pad[1]);

	memset(&r, 0xa5, sizeof(r));
	ag_choice__rev(&r, &c, &k, T_NOW);
	CU_ASSERT_EQUAL(r.last_seen_ns, T_NOW);
	CU_ASSERT(ag_nat_rev__owned_by(&r, &k));
	CU_ASSERT_EQUAL(r.backend_id, B0);
	CU_ASSERT_EQUAL(r.listener_id, L0);
	CU_ASSERT_EQUAL(r.family, AG_FAMILY_IPV4);
	CU_ASSERT_EQUAL(r.flags, 0);	  /* no reply yet */
	CU_ASSERT_EQUAL(r.nh.ifindex, 0); /* no next hop yet */

	memset(&f, 0xa5, sizeof(f));
	ag_choice__flow(&f, &c, &rk, T_NOW);
	CU_ASSERT_EQUAL(f.last_seen_ns, T_NOW);
	CU_ASSERT_EQUAL(f.backend_id, B0);
	CU_ASSERT_EQUAL(f.listener_id, L0);
	CU_ASSERT_EQUAL(f.nh.ifindex, 0);
	CU_ASSERT(ag_addr__equal(&f.backend_addr, &rk.saddr));
	CU_ASSERT(ag_addr__equal(&f.nat_addr, &rk.daddr));
	CU_ASSERT_EQUAL(f.nat_port, htons(20123));
	/* A TCP flow starts half-open, at the client's SYN: the only segment that creates one. */
	CU_ASSERT_EQUAL(f.tcp, AG_TCP_SYN_C);
	CU_ASSERT(ag_tcp__half_open(f.tcp));
	/* The flow's replies arrive with exactly the claimed key: the pair belongs together. */
	CU_ASSERT(ag_nat_rev__belongs(&rk, &r, &k, &f));

	/* A UDP flow has no TCP state. */
	CU_ASSERT_EQUAL_FATAL(choose(&uk, 64, &c), AG_CHOICE_OK);
	ag_choice__rev_key(&rk, &c, &uk, htons(20124));
	memset(&f, 0xa5, sizeof(f));
	ag_choice__flow(&f, &c, &rk, T_NOW);
	CU_ASSERT_EQUAL(f.tcp, 0);
}

/*
 * Flow k on backend B0 with NAT port `port`, *rk its reverse key; and (unless
 * rev_client is NULL) the reverse entry there, naming rev_client. Built with
 * the choice builders that test_choice_builders() checks field by field. A
 * TCP flow is established (handshake done): tests of other states set it.
 */
static void put_flow(const struct ag_flow_key *k, __u16 port, __u64 seen,
		     const struct ag_flow_key *rev_client, __u64 rev_seen, struct ag_flow_key *rk)
{
	struct ag_choice c = {
	    .s = &tb.settings,
	    .bid = B0,
	    .backend_addr = tb.backends[B0].addr,
	    .backend_port = htons(8080),
	    .nat_addr = tb.settings.nat_addrs[0],
	};

	ag_choice__rev_key(rk, &c, k, htons(port));
	ag_choice__flow(&tb.flows[tb.n_flows].f, &c, rk, seen);
	if (k->proto == IPPROTO_TCP)
		tb.flows[tb.n_flows].f.tcp = AG_TCP_SYN_C | AG_TCP_SYNACK_B | AG_TCP_EST;
	tb.flows[tb.n_flows++].k = *k;
	if (rev_client) {
		ag_choice__rev(&tb.revs[tb.n_revs].r, &c, rev_client, rev_seen);
		tb.revs[tb.n_revs++].k = *rk;
	}
}

static void test_belongs(void)
{
	struct ag_flow_key k = key(ip4(203, 0, 113, 7), 40000, 80, IPPROTO_TCP);
	struct ag_flow_key other = key(ip4(203, 0, 113, 8), 40000, 80, IPPROTO_TCP);
	struct ag_flow_key rk;
	struct ag_flow f;

	setup();
	put_flow(&k, 20001, T_NOW, &k, T_NOW, &rk);
	f = tb.flows[0].f;
	CU_ASSERT(ag_nat_rev__belongs(&rk, &tb.revs[0].r, &k, &f));
	/* The entry names another client: the port was taken over. */
	CU_ASSERT_FALSE(ag_nat_rev__belongs(&rk, &tb.revs[0].r, &other, &f));
	/* The flow moved to another port, or another backend, or NAT address. */
	f.nat_port = htons(20002);
	CU_ASSERT_FALSE(ag_nat_rev__belongs(&rk, &tb.revs[0].r, &k, &f));
	f = tb.flows[0].f;
	ag_addr__set4(&f.backend_addr, tb.backends[B1].addr);
	CU_ASSERT_FALSE(ag_nat_rev__belongs(&rk, &tb.revs[0].r, &k, &f));
	f = tb.flows[0].f;
	f.backend_port = htons(80);
	CU_ASSERT_FALSE(ag_nat_rev__belongs(&rk, &tb.revs[0].r, &k, &f));
	f = tb.flows[0].f;
	ag_addr__set4(&f.nat_addr, tb.settings.nat_addrs[1]);
	CU_ASSERT_FALSE(ag_nat_rev__belongs(&rk, &tb.revs[0].r, &k, &f));
}

static int live(unsigned int i)
{
	return ag_flow__live(&tb, &tb.flows[i].k, &tb.flows[i].f, &tb.settings, T_NOW);
}

static void test_live(void)
{
	struct ag_flow_key a = key(ip4(203, 0, 113, 1), 40001, 80, IPPROTO_TCP);
	struct ag_flow_key b = key(ip4(203, 0, 113, 2), 40002, 80, IPPROTO_TCP);
	struct ag_flow_key c = key(ip4(203, 0, 113, 3), 40003, 80, IPPROTO_TCP);
	struct ag_flow_key d = key(ip4(203, 0, 113, 4), 40004, 80, IPPROTO_TCP);
	struct ag_flow_key e = key(ip4(203, 0, 113, 5), 40005, 53, IPPROTO_UDP);
	struct ag_flow_key thief = key(ip4(203, 0, 113, 9), 40009, 80, IPPROTO_TCP);
	__u64 idle_tcp = T_NOW - T_TCP_NS - 1, idle_udp = T_NOW - T_UDP_NS - 1;
	struct ag_flow_key rk;

	setup();
	put_flow(&a, 20001, T_NOW - T_NS, &a, idle_tcp, &rk);	      /* 0: active here */
	put_flow(&b, 20002, idle_tcp, &b, T_NOW - T_TCP_NS, &rk);     /* 1: replies flow */
	put_flow(&c, 20003, idle_tcp, &c, idle_tcp, &rk);	      /* 2: idle both ways */
	put_flow(&d, 20004, idle_tcp, &thief, T_NOW, &rk);	      /* 3: port taken over */
	put_flow(&e, 20005, T_NOW - T_TCP_NS / 2, &e, idle_udp, &rk); /* 4: UDP times */

	CU_ASSERT(live(0));
	/* Active on the client's side: the reverse table is not read. */
	CU_ASSERT_EQUAL(tb.rev_reads, 0);
	CU_ASSERT(live(1));
	CU_ASSERT_EQUAL(tb.rev_reads, 1);
	CU_ASSERT_FALSE(live(2));
	/* Another flow's busy reverse entry at the same key keeps nothing alive. */
	CU_ASSERT_FALSE(live(3));
	CU_ASSERT_FALSE(live(4));
	/* Without a reverse entry, idle is idle; the same flow idle within UDP's timeout lives. */
	tb.n_revs = 0;
	CU_ASSERT_FALSE(live(1));
	tb.flows[4].f.last_seen_ns = T_NOW - T_UDP_NS;
	CU_ASSERT(live(4));
}

static int hold(unsigned int rev, struct ag_flow_key *owner)
{
	return ag_nat_rev__hold(&tb, &tb.revs[rev].k, &tb.revs[rev].r, &tb.settings, T_NOW, owner);
}

static void test_nat_hold(void)
{
	struct ag_flow_key a = key(ip4(203, 0, 113, 1), 40001, 80, IPPROTO_TCP);
	struct ag_flow_key b = key(ip4(203, 0, 113, 2), 40002, 80, IPPROTO_TCP);
	struct ag_flow_key c = key(ip4(203, 0, 113, 3), 40003, 80, IPPROTO_TCP);
	struct ag_flow_key gone = key(ip4(203, 0, 113, 4), 40004, 80, IPPROTO_TCP);
	__u64 idle = T_NOW - T_TCP_NS - 1;
	struct ag_flow_key rk, owner;

	setup();
	put_flow(&a, 20001, T_NOW, &a, T_NOW, &rk); /* 0: busy entry */
	put_flow(&b, 20002, idle, &b, idle, &rk);   /* 1: idle both ways */
	put_flow(&c, 20003, T_NOW, &c, idle, &rk);  /* 2: idle entry, busy flow */
	/* 3: an idle entry whose client has no flow at all */
	tb.revs[tb.n_revs] = tb.revs[1];
	tb.revs[tb.n_revs].k.dport = htons(20009);
	tb.revs[tb.n_revs].r.client_addr = gone.saddr;
	tb.revs[tb.n_revs++].r.client_port = gone.sport;
	/* 4: an idle entry naming b at another port: b moved on */
	tb.revs[tb.n_revs] = tb.revs[1];
	tb.revs[tb.n_revs++].k.dport = htons(20010);

	CU_ASSERT_EQUAL(hold(0, &owner), AG_NAT_HOLD_BUSY);
	/* The holder's state sets its timeout: one flow lookup per entry, busy or not. */
	CU_ASSERT_EQUAL(tb.flow_reads, 1);
	CU_ASSERT_EQUAL(hold(1, &owner), AG_NAT_HOLD_IDLE);
	CU_ASSERT(key_bytes_equal(&owner, &b));
	CU_ASSERT_EQUAL(hold(2, &owner), AG_NAT_HOLD_BUSY);
	CU_ASSERT_EQUAL(hold(3, &owner), AG_NAT_HOLD_ORPHAN);
	CU_ASSERT(key_bytes_equal(&owner, &gone));
	CU_ASSERT_EQUAL(hold(4, &owner), AG_NAT_HOLD_ORPHAN);
}

/* A moved flow leaves its old reverse entry behind only when it is still its own. */
static void test_stale_rev(void)
{
	struct ag_flow_key a = key(ip4(203, 0, 113, 1), 40001, 53, IPPROTO_UDP);
	struct ag_flow_key thief = key(ip4(203, 0, 113, 9), 40009, 53, IPPROTO_UDP);
	struct ag_flow_key rk, nk, ork;
	struct ag_flow old;

	setup();
	put_flow(&a, 20001, T_NOW, &a, T_NOW, &rk);
	old = tb.flows[0].f;
	nk = rk;
	ag_addr__set4(&nk.saddr, tb.backends[B1].addr); /* moved to B1, same NAT port */
	CU_ASSERT(ag_flow__stale_rev(&tb, &a, &old, &nk, &ork));
	CU_ASSERT(key_bytes_equal(&ork, &rk));
	/* Back onto the very same key: nothing to delete. */
	CU_ASSERT_FALSE(ag_flow__stale_rev(&tb, &a, &old, &rk, &ork));
	/* Taken over by another flow meanwhile: not ours to delete. */
	tb.revs[0].r.client_addr = thief.saddr;
	tb.revs[0].r.client_port = thief.sport;
	CU_ASSERT_FALSE(ag_flow__stale_rev(&tb, &a, &old, &nk, &ork));
	tb.n_revs = 0;
	CU_ASSERT_FALSE(ag_flow__stale_rev(&tb, &a, &old, &nk, &ork));
}

#define S_HALF	 AG_TCP_SYN_C
#define S_SYNACK (AG_TCP_SYN_C | AG_TCP_SYNACK_B)
#define S_EST	 (AG_TCP_SYN_C | AG_TCP_SYNACK_B | AG_TCP_EST)
#define S_FIN_C	 (S_EST | AG_TCP_FIN_C)
#define S_FINS	 (S_EST | AG_TCP_FIN_C | AG_TCP_FIN_B)
#define S_RST	 (S_EST | AG_TCP_RST)
#define S_RST_H	 (AG_TCP_SYN_C | AG_TCP_RST) /* refused by the backend */
#define NO_REV	 (~0ull)

/*
 * One flow (entry 0) of protocol proto in TCP state tcp, seen `ago` ns before
 * T_NOW on the client's side and, unless rev_ago is NO_REV, with its own
 * reverse entry seen rev_ago ns before T_NOW.
 */
static void put_one(__u8 proto, __u32 tcp, __u64 ago, __u64 rev_ago, struct ag_flow_key *k)
{
	struct ag_flow_key rk;

	*k = key(ip4(203, 0, 113, 1), 40001, proto == IPPROTO_TCP ? 80 : 53, proto);
	setup();
	put_flow(k, 20001, T_NOW - ago, rev_ago == NO_REV ? NULL : k, T_NOW - rev_ago, &rk);
	tb.flows[0].f.tcp = tcp;
	/* A reverse entry stamped here stands for the backend's replies. */
	if (rev_ago != NO_REV)
		tb.revs[0].r.flags = AG_REV_REPLIED;
}

static int live_one(__u8 proto, __u32 tcp, __u64 ago, __u64 rev_ago)
{
	struct ag_flow_key k;

	put_one(proto, tcp, ago, rev_ago, &k);
	return live(0);
}

/*
 * Liveness under the timeout of each state: a flow lives while it or its own
 * reverse entry was seen within it (the boundary itself included).
 */
static void test_live_states(void)
{
	static const struct {
		__u32 tcp;
		__u64 timeout;
	} st[] = {
	    {S_HALF, T_SYN_NS}, {S_SYNACK, T_SYN_NS}, {S_EST, T_TCP_NS},   {S_FIN_C, T_TCP_NS},
	    {S_FINS, T_CLO_NS}, {S_RST, T_CLO_NS},    {S_RST_H, T_CLO_NS},
	};
	unsigned int i;

	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		__u64 t = st[i].timeout;

		CU_ASSERT(live_one(IPPROTO_TCP, st[i].tcp, t, NO_REV));
		CU_ASSERT_FALSE(live_one(IPPROTO_TCP, st[i].tcp, t + 1, NO_REV));
		CU_ASSERT(live_one(IPPROTO_TCP, st[i].tcp, t + 1, t));
		CU_ASSERT(live_one(IPPROTO_TCP, st[i].tcp, t + 1, 0));
		CU_ASSERT_FALSE(live_one(IPPROTO_TCP, st[i].tcp, t + 1, t + 1));
		CU_ASSERT(live_one(IPPROTO_TCP, st[i].tcp, 0, t + 1));
	}
	/* UDP keeps udp_idle whatever its (unused) state word says */
	CU_ASSERT(live_one(IPPROTO_UDP, 0, T_UDP_NS, NO_REV));
	CU_ASSERT_FALSE(live_one(IPPROTO_UDP, 0, T_UDP_NS + 1, NO_REV));
	CU_ASSERT(live_one(IPPROTO_UDP, 0, T_UDP_NS + 1, T_UDP_NS));
	CU_ASSERT_FALSE(live_one(IPPROTO_UDP, S_RST, T_UDP_NS + 1, NO_REV));
	/* what a spoofed SYN leaves: gone after seconds, where an established flow lives on */
	CU_ASSERT_FALSE(live_one(IPPROTO_TCP, S_HALF, 6 * T_NS, NO_REV));
	CU_ASSERT(live_one(IPPROTO_TCP, S_EST, 6 * T_NS, NO_REV));
	/* stamped by another CPU just after our clock read: seen now */
	CU_ASSERT(live_one(IPPROTO_TCP, S_HALF, 0, NO_REV));
	tb.flows[0].f.last_seen_ns = T_NOW + 5;
	CU_ASSERT(live(0));
}

static int hold_one(__u8 proto, __u32 tcp, __u64 ago, __u64 rev_ago)
{
	struct ag_flow_key k, owner;
	int r;

	put_one(proto, tcp, ago, rev_ago, &k);
	memset(&owner, 0xa5, sizeof(owner));
	r = hold(0, &owner);
	CU_ASSERT(key_bytes_equal(&owner, &k));
	return r;
}

/*
 * The NAT port of a flow is free when the flow is over (ag_flow__live says
 * no, under its state's timeout), or closed and quiet both ways for
 * AG_NAT_CLOSED_REUSE_NS; one with no flow (orphan) when it is quiet that long.
 */
static void test_nat_hold_rules(void)
{
	const __u64 q = AG_NAT_CLOSED_REUSE_NS;
	struct ag_flow_key k, thief = key(ip4(203, 0, 113, 9), 40009, 80, IPPROTO_TCP);

	/* established: busy while either side was seen within tcp_idle */
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_EST, 0, 0), AG_NAT_HOLD_BUSY);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_EST, T_TCP_NS, T_TCP_NS), AG_NAT_HOLD_BUSY);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_EST, T_TCP_NS + 1, T_TCP_NS), AG_NAT_HOLD_BUSY);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_EST, T_TCP_NS, T_TCP_NS + 1), AG_NAT_HOLD_BUSY);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_EST, T_TCP_NS + 1, T_TCP_NS + 1), AG_NAT_HOLD_IDLE);
	/* half-closed is not closed: one FIN keeps tcp_idle */
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_FIN_C, q + 1, q + 1), AG_NAT_HOLD_BUSY);
	/* half-open: expired after tcp_syn_idle, not tcp_idle */
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_HALF, T_SYN_NS, T_SYN_NS), AG_NAT_HOLD_BUSY);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_HALF, T_SYN_NS + 1, T_SYN_NS + 1),
			AG_NAT_HOLD_IDLE);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_SYNACK, T_SYN_NS + 1, T_SYN_NS + 1),
			AG_NAT_HOLD_IDLE);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_SYNACK, T_SYN_NS + 1, 0), AG_NAT_HOLD_BUSY);

	/* closed and quiet both ways for 2 s: free, though the flow still lives (closing) */
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_FINS, q + 1, q + 1), AG_NAT_HOLD_IDLE);
	CU_ASSERT(live(0));
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_RST, q + 1, q + 1), AG_NAT_HOLD_IDLE);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_RST_H, q + 1, q + 1), AG_NAT_HOLD_IDLE);
	/* closed but recent on either side (late segments still pass): busy */
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_FINS, q, q), AG_NAT_HOLD_BUSY);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_FINS, T_NS, q + 1), AG_NAT_HOLD_BUSY);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_RST, q + 1, T_NS), AG_NAT_HOLD_BUSY);
	/* a closing time shorter than 2 s is the one that counts */
	put_one(IPPROTO_TCP, S_FINS, T_NS + 1, T_NS + 1, &k);
	tb.settings.tcp_closing_ns = T_NS;
	CU_ASSERT_EQUAL(hold(0, &k), AG_NAT_HOLD_IDLE);
	put_one(IPPROTO_TCP, S_FINS, T_NS, T_NS, &k);
	tb.settings.tcp_closing_ns = T_NS;
	CU_ASSERT_EQUAL(hold(0, &k), AG_NAT_HOLD_BUSY);

	/* UDP: udp_idle; its state word, whatever it holds, closes nothing */
	CU_ASSERT_EQUAL(hold_one(IPPROTO_UDP, 0, T_UDP_NS, T_UDP_NS), AG_NAT_HOLD_BUSY);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_UDP, 0, T_UDP_NS + 1, T_UDP_NS + 1), AG_NAT_HOLD_IDLE);
	CU_ASSERT_EQUAL(hold_one(IPPROTO_UDP, S_RST, q + 1, q + 1), AG_NAT_HOLD_BUSY);

	/* orphans: no flow at all, or another client's flow holds the key */
	CU_ASSERT_EQUAL(hold_one(IPPROTO_TCP, S_EST, 0, q + 1), AG_NAT_HOLD_BUSY);
	tb.n_flows = 0;
	CU_ASSERT_EQUAL(hold(0, &k), AG_NAT_HOLD_ORPHAN);
	put_one(IPPROTO_TCP, S_EST, 0, q, &k);
	tb.n_flows = 0;
	CU_ASSERT_EQUAL(hold(0, &k), AG_NAT_HOLD_BUSY); /* quiet for less than 2 s */
	put_one(IPPROTO_TCP, S_EST, 0, 0, &k);
	tb.flows[0].k = thief; /* the entry's client has no flow; another one does */
	CU_ASSERT_EQUAL(hold(0, &k), AG_NAT_HOLD_BUSY);
	tb.revs[0].r.last_seen_ns = T_NOW - q - 1;
	CU_ASSERT_EQUAL(hold(0, &k), AG_NAT_HOLD_ORPHAN);
	/* the flow moved to another NAT port: its old entry is an orphan too */
	put_one(IPPROTO_UDP, 0, 0, q + 1, &k);
	tb.flows[0].f.nat_port = htons(20002);
	CU_ASSERT_EQUAL(hold(0, &k), AG_NAT_HOLD_ORPHAN);
	tb.revs[0].r.last_seen_ns = T_NOW - T_NS;
	CU_ASSERT_EQUAL(hold(0, &k), AG_NAT_HOLD_BUSY);
}

static int on_backend(const struct ag_flow_key *k, const struct ag_backend *b)
{
	return ag_flow__on_backend(&tb, k, &tb.flows[0].f, b, &tb.settings, T_NOW);
}

/* A pinned flow's packet when its backend is down: TCP resets, UDP moves, else forward. */
static void test_on_backend(void)
{
	struct ag_flow_key kt, ku;
	struct ag_backend b;

	put_one(IPPROTO_TCP, S_EST, 0, NO_REV, &kt);
	b = tb.backends[B0];
	CU_ASSERT_EQUAL(on_backend(&kt, &b), AG_HIT_FORWARD);
	CU_ASSERT_EQUAL(on_backend(&kt, NULL), AG_HIT_FORWARD);
	put_one(IPPROTO_UDP, 0, 0, NO_REV, &ku);
	b.state = AG_BACKEND_DRAINING;
	CU_ASSERT_EQUAL(on_backend(&ku, &b), AG_HIT_FORWARD);
	/* a backend that is not down costs no reverse lookup */
	CU_ASSERT_EQUAL(tb.rev_reads, 0);
	b.state = AG_BACKEND_DOWN;
	CU_ASSERT_EQUAL(on_backend(&ku, &b), AG_HIT_RESTEER);
	put_one(IPPROTO_TCP, S_EST, 0, NO_REV, &kt);
	CU_ASSERT_EQUAL(on_backend(&kt, &b), AG_HIT_RESET);
	/* The id now names another endpoint (a reload): its health says nothing of f's. */
	b.addr = ip4(10, 1, 0, 99);
	CU_ASSERT_EQUAL(on_backend(&kt, &b), AG_HIT_FORWARD);
}

/*
 * Down but still replying (overloaded, probes time out) or down and silent
 * (gone): the flow's own replies within backend_alive_ns tell them apart.
 */
static void test_on_backend_alive(void)
{
	struct ag_backend b;
	struct ag_flow_key k;
	unsigned int i;

	for (i = 0; i < 2; i++) {
		__u8 proto = i ? IPPROTO_UDP : IPPROTO_TCP;
		int gone = i ? AG_HIT_RESTEER : AG_HIT_RESET;

		put_one(proto, S_EST, 0, T_NS, &k);
		b = tb.backends[B0];
		b.state = AG_BACKEND_DOWN;
		CU_ASSERT_EQUAL(on_backend(&k, &b), AG_HIT_KEPT);
		CU_ASSERT_EQUAL(tb.rev_reads, 1);
		tb.revs[0].r.last_seen_ns = T_NOW - T_ALIVE;
		CU_ASSERT_EQUAL(on_backend(&k, &b), AG_HIT_KEPT);
		tb.revs[0].r.last_seen_ns = T_NOW + 5; /* another CPU's clock, just ahead */
		CU_ASSERT_EQUAL(on_backend(&k, &b), AG_HIT_KEPT);
		/* replies too old: gone, however recent the client's own packets */
		tb.revs[0].r.last_seen_ns = T_NOW - T_ALIVE - 1;
		CU_ASSERT_EQUAL(on_backend(&k, &b), gone);
		/* fresh stamp, but the backend never replied: the stamp is the flow's creation */
		tb.revs[0].r.last_seen_ns = T_NOW;
		tb.revs[0].r.flags = 0;
		CU_ASSERT_EQUAL(on_backend(&k, &b), gone);
		/* no reverse entry at all */
		tb.n_revs = 0;
		CU_ASSERT_EQUAL(on_backend(&k, &b), gone);
		/* fresh replies, but to another client that took the port over */
		put_one(proto, S_EST, 0, 0, &k);
		tb.revs[0].r.client_port = htons(40009);
		CU_ASSERT_EQUAL(on_backend(&k, &b), gone);
		/* backend_alive_ns 0: a down backend is never kept */
		put_one(proto, S_EST, 0, 0, &k);
		tb.settings.backend_alive_ns = 0;
		CU_ASSERT_EQUAL(on_backend(&k, &b), gone);
		/* no settings: nothing to keep it by */
		tb.settings.backend_alive_ns = T_ALIVE;
		CU_ASSERT_EQUAL(ag_flow__on_backend(&tb, &k, &tb.flows[0].f, &b, NULL, T_NOW),
				gone);
		/* an up backend is forwarded to, replies or not */
		b.state = AG_BACKEND_UP;
		CU_ASSERT_EQUAL(on_backend(&k, &b), AG_HIT_FORWARD);
	}
}

int main(void)
{
	static const struct ag_cu_test tests[] = {
	    {"choose: a forwarded choice", test_choose_forward},
	    {"choose: every refusal, in order", test_choose_refusals},
	    {"choose: slot switch", test_choose_slot_switch},
	    {"choose: port override", test_choose_port_override},
	    {"choose: source affinity", test_choose_affinity},
	    {"choice: NAT port, reverse key and entries", test_choice_builders},
	    {"flowlife: ownership", test_belongs},
	    {"flowlife: liveness", test_live},
	    {"flowlife: liveness by TCP state", test_live_states},
	    {"natclaim: who holds a NAT port", test_nat_hold},
	    {"natclaim: expired, closed and orphan ports", test_nat_hold_rules},
	    {"flowlife: a moved flow's old entry", test_stale_rev},
	    {"flow: what a packet does when its backend is down", test_on_backend},
	    {"flow: a down backend that still replies", test_on_backend_alive},
	};

	return AG_CU_MAIN("choose", NULL, NULL, tests);
}
