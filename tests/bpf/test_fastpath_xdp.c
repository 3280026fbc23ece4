/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The XDP fast path as anygated drives it (controlplane/fastpath/xdp.c,
 * xdp_flows.c) on the real thing: the program opened by ag_xdp__ops, its
 * maps pinned in a bpffs of our own. The sweeper: flow and reverse entries
 * written as the program writes them, sweeps, and what is left in the maps
 * read back. Pins: kept and adopted across a restart (every map of the
 * program), pins of another ABI refused, `--detach` removing them.
 *
 * Time: entries are stamped relative to a clock of the test's choosing,
 * passed to the sweeper, a day ahead of CLOCK_MONOTONIC: nothing depends on
 * how long the machine has been up. Needs root; exits 77 (skip) without it.
 */
#include <arpa/inet.h>
#include <CUnit/Basic.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "../unit/cu_main.h"
#include "fastpath.h"
#include "flow.h"
#include "loop.h"
#include "dpdk.h"
#include "xdp.h"
#include "xdp_flows.h"

#define SEC_NS 1000000000ull
#define MS_NS  1000000ull

static char dir[] = "/tmp/ag-test-fastpath-xdp-XXXXXX";
static bool mounted;

struct fixture {
	struct ag_cfg_edge edge;
	struct ag_fastpath *fp;
	int flows_fd, revs_fd;
	struct ag_settings s;
	uint64_t now; /* the sweeper's clock: a day ahead of CLOCK_MONOTONIC */
};

/* Settings as anygated publishes them, with the timeouts of the defaults. */
static void settings(struct ag_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->abi_version = AG_ABI_VERSION;
	s->ring_size = 13;
	s->nat_addr_count = 1;
	s->nat_addrs[0] = htonl(0x0aff0001);
	s->nat_port_min = 1024;
	s->nat_port_max = 65535;
	s->tcp_idle_ns = 340 * SEC_NS;
	s->udp_idle_ns = 30 * SEC_NS;
	s->tcp_syn_idle_ns = 5 * SEC_NS;
	s->tcp_closing_ns = 10 * SEC_NS;
}

static int pinned(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return bpf_obj_get(path);
}

static void open_fastpath(struct fixture *fx, uint32_t max_flows)
{
	const struct ag_sink_ops *sink;
	void *ctx;

	memset(fx, 0, sizeof(*fx));
	fx->edge.ring_size = 13;
	fx->edge.max_flows = max_flows;
	fx->edge.bpffs_dir = dir;
	fx->fp = ag_xdp__ops.open(&fx->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx->fp);
	settings(&fx->s);
	fx->fp->ops->sink(fx->fp, &sink, &ctx);
	CU_ASSERT_EQUAL_FATAL(sink->settings(ctx, &fx->s), 0);
	fx->flows_fd = pinned(AG_MAP_FLOWS);
	fx->revs_fd = pinned(AG_MAP_NAT_REV);
	CU_ASSERT_FATAL(fx->flows_fd >= 0 && fx->revs_fd >= 0);
	fx->now = ag_now_ns() + 86400 * SEC_NS;
}

static void close_fastpath(struct fixture *fx)
{
	close(fx->flows_fd);
	close(fx->revs_fd);
	fx->fp->ops->release(fx->fp, false);
	fx->fp->ops->close(fx->fp);
}

/* Client i: 192.0.2.0 + i, port 10000, to the VIP 198.51.100.10:80. */
static struct ag_flow_key client(unsigned int i, uint8_t proto)
{
	struct ag_flow_key k;

	memset(&k, 0, sizeof(k));
	ag_addr__set4(&k.saddr, htonl(0xc0000200 + i));
	ag_addr__set4(&k.daddr, htonl(0xc633640a));
	ag_flow_key__ports(&k, htons(10000), htons(80), proto);
	return k;
}

/* Flow of client k on backend 10.1.1.11:80 through NAT port nat_port, seen flow_age ago. */
static void put_flow(struct fixture *fx, const struct ag_flow_key *k, uint16_t nat_port,
		     uint32_t tcp, uint64_t flow_age)
{
	struct ag_flow f;

	memset(&f, 0, sizeof(f));
	f.last_seen_ns = fx->now - flow_age;
	ag_addr__set4(&f.backend_addr, htonl(0x0a01010b));
	ag_addr__set4(&f.nat_addr, htonl(0x0aff0001));
	f.nat_port = htons(nat_port);
	f.backend_port = htons(80);
	f.tcp = tcp;
	CU_ASSERT_EQUAL_FATAL(bpf_map_update_elem(fx->flows_fd, k, &f, BPF_NOEXIST), 0);
}

/* The key of the backend's replies to NAT port nat_port (proto): 10.1.1.11:80 -> 10.255.0.1. */
static struct ag_flow_key rev_key(uint16_t nat_port, uint8_t proto)
{
	struct ag_flow_key rk;
	struct ag_flow f;

	memset(&f, 0, sizeof(f));
	ag_addr__set4(&f.backend_addr, htonl(0x0a01010b));
	ag_addr__set4(&f.nat_addr, htonl(0x0aff0001));
	f.nat_port = htons(nat_port);
	f.backend_port = htons(80);
	ag_flow_key__reply_of(&rk, &f, proto);
	return rk;
}

/* The reverse entry of NAT port nat_port naming client k, replies seen rev_age ago. */
static void put_rev(struct fixture *fx, const struct ag_flow_key *k, uint16_t nat_port,
		    uint64_t rev_age)
{
	struct ag_flow_key rk = rev_key(nat_port, k->proto);
	struct ag_nat_rev r;

	memset(&r, 0, sizeof(r));
	r.last_seen_ns = fx->now - rev_age;
	r.client_addr = k->saddr;
	r.vip = k->daddr;
	r.client_port = k->sport;
	r.vip_port = k->dport;
	r.family = AG_FAMILY_IPV4;
	CU_ASSERT_EQUAL_FATAL(bpf_map_update_elem(fx->revs_fd, &rk, &r, BPF_ANY), 0);
}

/* A pair: client i's flow and its own reverse entry (rev_age 0: none), NAT port 2000 + i. */
static struct ag_flow_key put_pair(struct fixture *fx, unsigned int i, uint8_t proto, uint32_t tcp,
				   uint64_t flow_age, uint64_t rev_age)
{
	struct ag_flow_key k = client(i, proto);

	put_flow(fx, &k, (uint16_t)(2000 + i), tcp, flow_age);
	if (rev_age)
		put_rev(fx, &k, (uint16_t)(2000 + i), rev_age);
	return k;
}

static bool has_flow(struct fixture *fx, const struct ag_flow_key *k)
{
	struct ag_flow f;

	return !bpf_map_lookup_elem(fx->flows_fd, k, &f);
}

/* Is the reverse entry of NAT port nat_port (proto) there, naming client k? */
static bool has_rev(struct fixture *fx, const struct ag_flow_key *k, uint16_t nat_port)
{
	struct ag_flow_key rk = rev_key(nat_port, k->proto);
	struct ag_nat_rev r;

	return !bpf_map_lookup_elem(fx->revs_fd, &rk, &r) && ag_nat_rev__owned_by(&r, k);
}

static uint64_t count(int fd)
{
	struct ag_flow_key key, next;
	void *probe = NULL;
	uint64_t n = 0;

	while (!bpf_map_get_next_key(fd, probe, &next)) {
		key = next;
		probe = &key;
		n++;
	}
	return n;
}

#define TCP_EST	    (AG_TCP_SYN_C | AG_TCP_SYNACK_B | AG_TCP_EST)
#define TCP_SYN	    AG_TCP_SYN_C
#define TCP_SYNACK  (AG_TCP_SYN_C | AG_TCP_SYNACK_B)
#define TCP_RST	    (TCP_EST | AG_TCP_RST)
#define TCP_FINBOTH (TCP_EST | AG_TCP_FIN_C | AG_TCP_FIN_B)

/* Each state past its own timeout goes with its reverse entry; live ones stay. */
static void test_expiry_by_state(void)
{
	struct ag_flow_key a, b, c, d, e, f, g, h, i, j, k, l, m;
	struct ag_xdp_sweep sw;
	struct fixture fx;

	open_fastpath(&fx, 1024);
	a = put_pair(&fx, 1, IPPROTO_TCP, TCP_EST, 10 * SEC_NS, 10 * SEC_NS);	/* live */
	b = put_pair(&fx, 2, IPPROTO_TCP, TCP_EST, 400 * SEC_NS, 400 * SEC_NS); /* expired */
	/* idle on the client's side, the backend still sends: one-way traffic keeps it */
	c = put_pair(&fx, 3, IPPROTO_TCP, TCP_EST, 400 * SEC_NS, 1 * SEC_NS);
	d = put_pair(&fx, 4, IPPROTO_TCP, TCP_SYN, 6 * SEC_NS, 0);		/* half-open */
	e = put_pair(&fx, 5, IPPROTO_TCP, TCP_SYNACK, 2 * SEC_NS, 2 * SEC_NS);	/* live */
	f = put_pair(&fx, 6, IPPROTO_TCP, TCP_RST, 11 * SEC_NS, 11 * SEC_NS);	/* closing */
	g = put_pair(&fx, 7, IPPROTO_TCP, TCP_FINBOTH, 5 * SEC_NS, 5 * SEC_NS); /* live */
	h = put_pair(&fx, 8, IPPROTO_UDP, 0, 31 * SEC_NS, 31 * SEC_NS);		/* udp */
	i = put_pair(&fx, 9, IPPROTO_UDP, 0, 5 * SEC_NS, 5 * SEC_NS);		/* live */
	/* reverse entries of no flow: quiet for 3 s (an orphan), and for 1 s (not yet) */
	j = client(10, IPPROTO_TCP);
	put_rev(&fx, &j, 2010, 3 * SEC_NS);
	k = client(11, IPPROTO_TCP);
	put_rev(&fx, &k, 2011, 1 * SEC_NS);
	/* l expired; its NAT port was taken over by m, whose reverse entry must stay */
	l = client(12, IPPROTO_UDP);
	put_flow(&fx, &l, 2013, 0, 40 * SEC_NS);
	m = put_pair(&fx, 13, IPPROTO_UDP, 0, 1 * SEC_NS, 1 * SEC_NS);

	CU_ASSERT_EQUAL_FATAL(ag_xdp_sweep__init(&sw, fx.flows_fd, fx.revs_fd, 1024), 0);
	CU_ASSERT_EQUAL(ag_xdp_sweep__pass(&sw, &fx.s, false, fx.now), 0);

	CU_ASSERT(has_flow(&fx, &a) && has_rev(&fx, &a, 2001));
	CU_ASSERT(!has_flow(&fx, &b) && !has_rev(&fx, &b, 2002));
	CU_ASSERT(has_flow(&fx, &c) && has_rev(&fx, &c, 2003));
	CU_ASSERT(!has_flow(&fx, &d));
	CU_ASSERT(has_flow(&fx, &e) && has_rev(&fx, &e, 2005));
	CU_ASSERT(!has_flow(&fx, &f) && !has_rev(&fx, &f, 2006));
	CU_ASSERT(has_flow(&fx, &g) && has_rev(&fx, &g, 2007));
	CU_ASSERT(!has_flow(&fx, &h) && !has_rev(&fx, &h, 2008));
	CU_ASSERT(has_flow(&fx, &i) && has_rev(&fx, &i, 2009));
	CU_ASSERT(!has_rev(&fx, &j, 2010));
	CU_ASSERT(has_rev(&fx, &k, 2011));
	CU_ASSERT(!has_flow(&fx, &l));
	CU_ASSERT(has_flow(&fx, &m) && has_rev(&fx, &m, 2013));

	CU_ASSERT_EQUAL(sw.st.expired[AG_FLOW_STATE_ESTABLISHED], 1);
	CU_ASSERT_EQUAL(sw.st.expired[AG_FLOW_STATE_HALF_OPEN], 1);
	CU_ASSERT_EQUAL(sw.st.expired[AG_FLOW_STATE_CLOSING], 1);
	CU_ASSERT_EQUAL(sw.st.expired[AG_FLOW_STATE_UDP], 2);
	CU_ASSERT_EQUAL(sw.st.orphans, 1);
	CU_ASSERT_EQUAL(
	    sw.st.evicted[AG_FLOW_STATE_HALF_OPEN] + sw.st.evicted[AG_FLOW_STATE_CLOSING], 0);
	/* what is left, as counted by the walk and by the maps */
	CU_ASSERT_EQUAL(sw.st.flows, 6);
	CU_ASSERT_EQUAL(sw.st.nat_revs, 7);
	CU_ASSERT_EQUAL(count(fx.flows_fd), 6);
	CU_ASSERT_EQUAL(count(fx.revs_fd), 7);
	CU_ASSERT_EQUAL(sw.st.passes, 1);
	CU_ASSERT(!sw.st.pressure);

	/* nothing else is over: a second pass removes nothing */
	CU_ASSERT_EQUAL(ag_xdp_sweep__pass(&sw, &fx.s, false, fx.now), 0);
	CU_ASSERT_EQUAL(count(fx.flows_fd), 6);
	CU_ASSERT_EQUAL(sw.st.expired[AG_FLOW_STATE_UDP], 2);
	ag_xdp_sweep__fini(&sw);
	close_fastpath(&fx);
}

/*
 * Past 90% full, half-open and closing flows quiet for a second on both
 * sides go before their timeout; a fresh handshake, a closing flow with
 * recent replies and every established or UDP flow stay. A refusal for a
 * full table (drop_flow_table_full) is pressure at once.
 */
static void test_pressure(void)
{
	struct ag_flow_key p1, p2, p3, p4, p5;
	struct ag_xdp_sweep sw;
	struct fixture fx;
	unsigned int n;

	open_fastpath(&fx, 1024);
	for (n = 0; n < 930; n++)
		put_pair(&fx, 100 + n, IPPROTO_TCP, TCP_EST, 300 * SEC_NS, 0);
	p1 = put_pair(&fx, 1, IPPROTO_TCP, TCP_SYN, 2 * SEC_NS, 0);
	p2 = put_pair(&fx, 2, IPPROTO_TCP, TCP_SYN, 500 * MS_NS, 0);
	p3 = put_pair(&fx, 3, IPPROTO_TCP, TCP_RST, 2 * SEC_NS, 2 * SEC_NS);
	p4 = put_pair(&fx, 4, IPPROTO_TCP, TCP_FINBOTH, 2 * SEC_NS, 200 * MS_NS);
	p5 = put_pair(&fx, 5, IPPROTO_UDP, 0, 20 * SEC_NS, 20 * SEC_NS);

	CU_ASSERT_EQUAL_FATAL(ag_xdp_sweep__init(&sw, fx.flows_fd, fx.revs_fd, 1024), 0);
	/* the first walk counts 935 of 1024 entries: the next pass is under pressure */
	CU_ASSERT_EQUAL(ag_xdp_sweep__pass(&sw, &fx.s, false, fx.now), 0);
	CU_ASSERT(!sw.st.pressure);
	CU_ASSERT_EQUAL(sw.st.flows, 935);
	CU_ASSERT_EQUAL(ag_xdp_sweep__pass(&sw, &fx.s, false, fx.now), 0);
	CU_ASSERT(sw.st.pressure);
	CU_ASSERT(!has_flow(&fx, &p1));
	CU_ASSERT(has_flow(&fx, &p2));
	CU_ASSERT(!has_flow(&fx, &p3) && !has_rev(&fx, &p3, 2003));
	CU_ASSERT(has_flow(&fx, &p4) && has_rev(&fx, &p4, 2004));
	CU_ASSERT(has_flow(&fx, &p5));
	CU_ASSERT_EQUAL(sw.st.evicted[AG_FLOW_STATE_HALF_OPEN], 1);
	CU_ASSERT_EQUAL(sw.st.evicted[AG_FLOW_STATE_CLOSING], 1);
	CU_ASSERT_EQUAL(sw.st.evicted[AG_FLOW_STATE_ESTABLISHED], 0);
	CU_ASSERT_EQUAL(sw.st.evicted[AG_FLOW_STATE_UDP], 0);
	CU_ASSERT_EQUAL(sw.st.flows, 933);
	CU_ASSERT_EQUAL(count(fx.flows_fd), 933);

	/* below 90% again (counted by the next walk): p2, quiet for 1.5 s later, stays ... */
	for (n = 0; n < 500; n++) {
		struct ag_flow_key k = client(100 + n, IPPROTO_TCP);

		CU_ASSERT_EQUAL(bpf_map_delete_elem(fx.flows_fd, &k), 0);
	}
	CU_ASSERT_EQUAL(ag_xdp_sweep__pass(&sw, &fx.s, false, fx.now), 0);
	CU_ASSERT_EQUAL(sw.st.flows, 433);
	fx.now += SEC_NS;
	CU_ASSERT_EQUAL(ag_xdp_sweep__pass(&sw, &fx.s, false, fx.now), 0);
	CU_ASSERT(!sw.st.pressure);
	CU_ASSERT(has_flow(&fx, &p2));
	/* ... until the program refuses a flow for a full table */
	CU_ASSERT_EQUAL(ag_xdp_sweep__pass(&sw, &fx.s, true, fx.now), 0);
	CU_ASSERT(sw.st.pressure);
	CU_ASSERT(!has_flow(&fx, &p2));
	CU_ASSERT_EQUAL(sw.st.evicted[AG_FLOW_STATE_HALF_OPEN], 2);
	ag_xdp_sweep__fini(&sw);
	close_fastpath(&fx);
}

/*
 * A table larger than one batch, swept a batch per pass: the walk goes on
 * where the last pass stopped and comes round; every expired pair goes,
 * every live one stays.
 */
static void test_bounded_passes(void)
{
	const unsigned int total = 10000;
	struct ag_xdp_sweep sw;
	struct fixture fx;
	unsigned int n, live = 0, passes;

	open_fastpath(&fx, 16384);
	for (n = 0; n < total; n++) {
		bool expired = n % 3 == 0;

		put_pair(&fx, n, IPPROTO_UDP, 0, (expired ? 60 : 10) * SEC_NS,
			 (expired ? 60 : 10) * SEC_NS);
		live += !expired;
	}
	CU_ASSERT_EQUAL_FATAL(ag_xdp_sweep__init(&sw, fx.flows_fd, fx.revs_fd, 16384), 0);
	/* one batch a pass, whatever the clock says */
	sw.pass_flows = 1;
	sw.pass_revs = 1;
	/* the first pass sees one batch and leaves most of the table for later */
	CU_ASSERT_EQUAL(ag_xdp_sweep__pass(&sw, &fx.s, false, fx.now), 0);
	CU_ASSERT(count(fx.flows_fd) > live);
	for (passes = 1; passes < 10 && count(fx.flows_fd) > live; passes++)
		CU_ASSERT_EQUAL(ag_xdp_sweep__pass(&sw, &fx.s, false, fx.now), 0);
	/* 10,000 entries in batches of 4096: three passes */
	CU_ASSERT_EQUAL(passes, 3);
	CU_ASSERT_EQUAL(count(fx.flows_fd), live);
	CU_ASSERT_EQUAL(count(fx.revs_fd), live);
	CU_ASSERT_EQUAL(sw.st.expired[AG_FLOW_STATE_UDP], total - live);
	CU_ASSERT_EQUAL(sw.st.flows, live);
	ag_xdp_sweep__fini(&sw);
	close_fastpath(&fx);
}

/*
 * Through the fast path's operations, as anygated's upkeep timer calls
 * them, on CLOCK_MONOTONIC: a UDP flow stamped at 0 (older than the 1 s
 * timeout on any machine that can run this) goes, a fresh one stays.
 */
static void test_through_ops(void)
{
	struct ag_reclaim_stats st;
	struct ag_flow_key old, fresh;
	const struct ag_sink_ops *sink;
	struct fixture fx;
	void *ctx;

	open_fastpath(&fx, 1024);
	fx.s.udp_idle_ns = SEC_NS;
	fx.fp->ops->sink(fx.fp, &sink, &ctx);
	CU_ASSERT_EQUAL_FATAL(sink->settings(ctx, &fx.s), 0);
	fx.now = ag_now_ns();
	old = put_pair(&fx, 1, IPPROTO_UDP, 0, fx.now, fx.now);
	fresh = put_pair(&fx, 2, IPPROTO_UDP, 0, 0, 0);
	CU_ASSERT_EQUAL(fx.fp->ops->reclaim_stats(fx.fp, &st), 0);
	CU_ASSERT_EQUAL(st.passes, 0);
	CU_ASSERT_EQUAL(fx.fp->ops->sweep(fx.fp), 0);
	CU_ASSERT(!has_flow(&fx, &old) && !has_rev(&fx, &old, 2001));
	CU_ASSERT(has_flow(&fx, &fresh));
	CU_ASSERT_EQUAL(fx.fp->ops->reclaim_stats(fx.fp, &st), 0);
	CU_ASSERT_EQUAL(st.passes, 1);
	CU_ASSERT_EQUAL(st.expired[AG_FLOW_STATE_UDP], 1);
	CU_ASSERT_EQUAL(st.flows, 1);
	close_fastpath(&fx);
}

/* What a walk saw: entries by client index, live ones, the largest step. */
struct seen {
	uint8_t *times; /* per client index */
	unsigned int entries, live, in_step, max_step;
};

static void see(void *ctx, const struct ag_flow_key *k, const struct ag_flow *f, bool live,
		uint64_t idle_ns)
{
	struct seen *s = ctx;
	uint32_t i = ntohl(k->saddr.v4) - 0xc0000200;

	if (i < 100000)
		s->times[i]++;
	s->entries++;
	s->live += live;
	s->in_step++;
}

/*
 * The cursor the control socket walks with: a slice per step, never more,
 * every entry once, the same liveness as the whole walk; the DPDK fast path
 * has none (its flows live in anygate-dp).
 */
static void test_cursor_slices(void)
{
	const unsigned int total = 10000, slice = 256;
	struct seen walk = {0}, cur = {0};
	const struct ag_sink_ops *sink;
	struct ag_flow_cursor *c;
	struct fixture fx;
	unsigned int n, steps = 0, once = 0;
	void *ctx;
	int rc;

	open_fastpath(&fx, 16384);
	fx.s.udp_idle_ns = SEC_NS;
	fx.fp->ops->sink(fx.fp, &sink, &ctx);
	CU_ASSERT_EQUAL_FATAL(sink->settings(ctx, &fx.s), 0);
	fx.now = ag_now_ns();
	/* Half established TCP seen now (live), half UDP stamped at 0 (expired). */
	for (n = 0; n < total; n++) {
		if (n % 2)
			put_pair(&fx, n, IPPROTO_UDP, 0, fx.now, fx.now);
		else
			put_pair(&fx, n, IPPROTO_TCP, TCP_EST, 0, 0);
	}
	walk.times = calloc(total, 1);
	cur.times = calloc(total, 1);
	CU_ASSERT_FATAL(walk.times && cur.times);
	CU_ASSERT_EQUAL(fx.fp->ops->walk_flows(fx.fp, see, &walk), 0);
	c = fx.fp->ops->flow_cursor_open(fx.fp, slice);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	do {
		cur.in_step = 0;
		rc = fx.fp->ops->flow_cursor_step(c, see, &cur);
		steps++;
		if (cur.in_step > cur.max_step)
			cur.max_step = cur.in_step;
	} while (rc == 1 && steps < 10 * total);
	fx.fp->ops->flow_cursor_close(c);
	CU_ASSERT_EQUAL(rc, 0);
	for (n = 0; n < total; n++)
		once += cur.times[n] == 1;
	CU_ASSERT_EQUAL(once, total);
	CU_ASSERT_EQUAL(cur.entries, total);
	CU_ASSERT_EQUAL(cur.live, total / 2);
	CU_ASSERT_EQUAL(walk.entries, total);
	CU_ASSERT_EQUAL(walk.live, total / 2);
	CU_ASSERT(cur.max_step <= slice);
	CU_ASSERT(steps >= total / slice);
	free(walk.times);
	free(cur.times);
	close_fastpath(&fx);

	errno = 0;
	CU_ASSERT_PTR_NULL(ag_dpdk__ops.flow_cursor_open(NULL, slice));
	CU_ASSERT_EQUAL(errno, EOPNOTSUPP);
}

static bool pin_exists(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return !access(path, F_OK);
}

/*
 * A restart: the fast path kept (its pins stay), then adopted by the next
 * open with its flows; every map is pinned, the new ones of ABI 3 too. A
 * clean exit unpins everything.
 */
static void test_keep_and_adopt(void)
{
	static const char *const maps[] = {AG_MAP_SETTINGS, AG_MAP_FLOWS,    AG_MAP_NAT_REV,
					   AG_MAP_CPU,	    AG_MAP_SYN_AUTH, AG_MAP_RSTATS};
	struct ag_flow_key k;
	struct fixture fx;
	unsigned int i;

	open_fastpath(&fx, 1024);
	CU_ASSERT(!fx.fp->ops->adopted(fx.fp));
	k = put_pair(&fx, 1, IPPROTO_TCP, TCP_EST, 0, 0);
	close(fx.flows_fd);
	close(fx.revs_fd);
	fx.fp->ops->release(fx.fp, true);
	fx.fp->ops->close(fx.fp);
	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		CU_ASSERT(pin_exists(maps[i]));

	open_fastpath(&fx, 1024);
	CU_ASSERT(fx.fp->ops->adopted(fx.fp));
	CU_ASSERT(has_flow(&fx, &k));
	close_fastpath(&fx);
	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		CU_ASSERT(!pin_exists(maps[i]));
}

/* A map pinned under dir/name: type, key and value sizes, entries; value 0 written. */
static void pin_map(const char *name, enum bpf_map_type type, __u32 ks, __u32 vs, __u32 n,
		    const void *val0)
{
	char path[PATH_MAX];
	__u32 zero = 0;
	int fd = bpf_map_create(type, name, ks, vs, n, NULL);

	CU_ASSERT_FATAL(fd >= 0);
	if (val0)
		CU_ASSERT_EQUAL(bpf_map_update_elem(fd, &zero, val0, BPF_ANY), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CU_ASSERT_EQUAL_FATAL(bpf_obj_pin(fd, path), 0);
	close(fd);
}

/*
 * Pins an anygated of ABI 2 left (LRU flow tables of other layouts, 104-byte
 * settings): refused whole, left as they are; `anygated --detach` removes
 * them, and then the fast path opens afresh.
 */
static void test_old_abi_refused(void)
{
	struct ag_cfg_edge edge = {.ring_size = 13, .max_flows = 1024, .bpffs_dir = dir};
	unsigned char old_settings[104] = {2}; /* abi_version 2, little endian */
	struct ag_fastpath *fp;

	pin_map(AG_MAP_SETTINGS, BPF_MAP_TYPE_ARRAY, 4, sizeof(old_settings), 1, old_settings);
	pin_map(AG_MAP_FLOWS, BPF_MAP_TYPE_LRU_HASH, 16, 48, 1024, NULL);
	errno = 0;
	fp = ag_xdp__ops.open(&edge);
	CU_ASSERT_PTR_NULL(fp);
	CU_ASSERT_EQUAL(errno, EPROTO);
	CU_ASSERT(pin_exists(AG_MAP_SETTINGS) && pin_exists(AG_MAP_FLOWS));

	CU_ASSERT_EQUAL(ag_xdp__ops.remove_kept(&edge), 0);
	CU_ASSERT(!pin_exists(AG_MAP_SETTINGS) && !pin_exists(AG_MAP_FLOWS));
	fp = ag_xdp__ops.open(&edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	CU_ASSERT(!fp->ops->adopted(fp));
	fp->ops->release(fp, false);
	fp->ops->close(fp);
}

static int suite_init(void)
{
	if (!mkdtemp(dir))
		return -1;
	if (mount("bpf", dir, "bpf", 0, NULL))
		return -1;
	mounted = true;
	return 0;
}

static int suite_clean(void)
{
	if (mounted && umount(dir))
		return -1;
	return rmdir(dir);
}

int main(void)
{
	static const struct ag_cu_test tests[] = {
	    {"expiry by state, orphans, taken-over ports", test_expiry_by_state},
	    {"pressure: half-open and closing go first", test_pressure},
	    {"bounded passes over a large table", test_bounded_passes},
	    {"through the fast path's operations", test_through_ops},
	    {"a cursor walks in slices", test_cursor_slices},
	    {"kept on exit, adopted with the flows", test_keep_and_adopt},
	    {"pins of ABI 2 refused, --detach removes them", test_old_abi_refused},
	};

	if (geteuid() != 0) {
		printf("SKIP: test_fastpath_xdp needs root (BPF maps, a bpffs mount)\n");
		return 77;
	}
	return AG_CU_MAIN("fastpath-xdp", suite_init, suite_clean, tests);
}
