/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * XDP and DPDK decide the same for the same packet. The XDP program is
 * loaded with the fixture tables of xdp_env.c; those maps are copied, through
 * the shared-memory publisher sink (controlplane/fastpath/shm.c), into a DPDK
 * segment; then packets go through the XDP program (BPF_PROG_TEST_RUN) and
 * through anygate-dp's own decision functions on that segment
 * (dataplane/dpdk/select.h: ag_choose(), ag_tcp__not_syn() and ag_admit() of
 * dataplane/core on anygate-dp's accessors, and its SYN allowlist,
 * synauth.h), built here in user space.
 *
 * First packets of thousands of random flows, TCP with random flags (mostly
 * SYNs): either both forward, and the XDP output carries exactly the backend
 * address and port and the NAT address the DPDK choice names, with a NAT port
 * in range that no earlier flow to that backend holds; or both refuse, for
 * the same reason (the XDP one read from ag_rstats): no listener, TTL, bad
 * state, no backend, bad TCP flags, a non-SYN segment of no flow. The NAT
 * port itself is not compared: since ABI v3 each CPU (lcore) claims ports
 * from its own cursor, so the port depends on which CPU a flow arrives on.
 * The flows cover every fixture listener (5-tuple and source affinity, port
 * override, empty table, inactive listener, DOWN backend, unresolved next
 * hop), a protocol and a port without listener, another VIP, and TTL 1.
 *
 * SYN authentication, with a budget of one new TCP flow per second: past it
 * both challenge an unverified SYN (the XDP challenge's cookie is one the
 * DPDK side accepts), both verify a source by the RST that answers it and
 * admit its next SYN, and both refuse a RST with a wrong cookie and keep
 * challenging a source that never answered.
 *
 * Needs root (namespace, BPF); exits 77 (skip) without it.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

	if (r == AG_CHOICE_OK)
		return "forward";
	return r >= 0 && r < AG_R__MAX ? names[r] : "none/several";
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	/* bpf_ktime_get_ns()'s clock: cookies of both sides fall in the same windows. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* TCP flags of a first packet: mostly a SYN, else a valid or invalid other set. */
static uint8_t random_flags(uint64_t rnd)
{
	static const uint8_t other[] = {
	    AG_TCPF_ACK,
	    AG_TCPF_ACK | AG_TCPF_PSH,
	    AG_TCPF_RST,
	    AG_TCPF_RST | AG_TCPF_ACK,
	    AG_TCPF_FIN | AG_TCPF_ACK,
	    AG_TCPF_SYN | AG_TCPF_ACK,
	    AG_TCPF_SYN | AG_TCPF_FIN,
	    AG_TCPF_SYN | AG_TCPF_RST,
	    0,
	    AG_TCPF_FIN,
	    AG_TCPF_FIN | AG_TCPF_PSH | AG_TCPF_URG,
	    AG_TCPF_SYN | AG_TCPF_PSH, /* a SYN: PSH is ignored */
	};

	if (rnd % 8 < 5)
		return AG_TCPF_SYN;
	return other[(rnd >> 3) % (sizeof(other) / sizeof(other[0]))];
}

/* What the XDP program did with one packet. */
struct xdp_result {
	uint32_t verdict;
	int reason; /* the one ag_rstats reason it counted; -1 none, -2 several */
	int out_len;
	uint8_t out[AG_PKT_MAX];
};

static void xdp_run(const uint8_t *in, int in_len, struct xdp_result *x)
{
	struct ag_reason_stats before[AG_R__MAX], after[AG_R__MAX];

	CU_ASSERT_EQUAL_FATAL(ag_xdp_env__rstats(&env, before), 0);
	CU_ASSERT_EQUAL_FATAL(ag_xdp_env__run(&env, env.tn.ifindex_c, in, in_len, 0, x->out,
					      &x->out_len, &x->verdict),
			      0);
	CU_ASSERT_EQUAL_FATAL(ag_xdp_env__rstats(&env, after), 0);
	x->reason = reason_delta(before, after);
}

/*
 * anygate-dp's decision for the first packet of flow *k (frame in), arriving
 * on a client port: its ingress checks and those of a packet of no flow
 * (fwd.c's process_burst() and from_client(), hygiene.h); then a TCP segment
 * that is not a SYN goes to ag_tcp__not_syn() (fwd.c's no_flow()), anything
 * else to ag_choose() (flows.c's ag_dp_flows__create()).
 */
static int dp_first(const struct ag_shm_view *h, const struct ag_settings *s, const uint8_t *in,
		    int in_len, struct ag_flow_key *k, struct ag_choice *c, uint64_t now)
{
	uint8_t buf[AG_PKT_MAX];
	struct ag_pkt p;
	struct ag_iface ifc;
	uint8_t flags;
	int r;

	/* The port agc0 is to anygate-dp: its MAC, role client (xdp_env.c registers it so). */
	memset(&ifc, 0, sizeof(ifc));
	memcpy(ifc.mac, env.tn.mac_c, 6);
	ifc.roles = AG_ROLE_CLIENT;
	memset(k, 0, sizeof(*k));
	memcpy(buf, in, (size_t)in_len);
	r = ag_dp__ingress(h, &p, &ifc, buf, buf + in_len);
	if (r != AG_PARSE_OK)
		return r;
	ag_flow_key__from_pkt(k, &p);
	r = ag_dp__no_flow(h, s, &p, &ifc);
	if (r != AG_HYG_OK)
		return r;
	flags = p.proto == IPPROTO_TCP ? ag_tcp__flags(&p) : 0;
	if (p.proto == IPPROTO_TCP && !ag_tcp__is_syn(flags))
		return ag_dp__not_syn(h, s, &p, k, flags, now);
	return ag_dp__choose(h, s, k, p.ip->ttl, c);
}

/*
 * A forwarded first packet: the XDP output goes to the backend and from the
 * NAT address the DPDK choice names, from a NAT port in range that no flow
 * to the same backend endpoint holds yet (then it is claimed).
 */
static bool same_forward(const struct xdp_result *x, int off, const struct ag_choice *c,
			 const struct ag_settings *s)
{
	uint32_t saddr, daddr;
	uint16_t sport, dport, port;

	memcpy(&saddr, x->out + off + 12, 4);
	memcpy(&daddr, x->out + off + 16, 4);
	/* Ports after the IPv4 options, if any. */
	memcpy(&sport, x->out + off + (x->out[off] & 0xf) * 4, 2);
	memcpy(&dport, x->out + off + (x->out[off] & 0xf) * 4 + 2, 2);
	port = ntohs(sport);
	if ((x->reason != -1 && x->reason != AG_R_PASS_NO_NEIGH) || x->verdict == XDP_DROP ||
	    daddr != c->backend_addr || dport != c->backend_port || saddr != c->nat_addr ||
	    port < s->nat_port_min || port > s->nat_port_max ||
	    claimed(c->backend_addr, c->nat_addr, c->backend_port, port))
		return false;
	claims[n_claims++] = (struct claim){c->backend_addr, c->nat_addr, c->backend_port, port};
	return true;
}

/* IPv4 options: a loose source route (dropped) and a router alert (forwarded). */
static const uint8_t opt_lsrr[] = {131, 7, 4, 10, 9, 9, 9, 0};
static const uint8_t opt_ra[] = {148, 4, 0, 0};

/* One time in 64 or so, one thing ingress hygiene refuses (or an option it lets through). */
static void dirty(struct ag_pkt_spec *spec, uint64_t rnd)
{
	switch (rnd % 64) {
	case 0:
		spec->saddr = AG_IP4(127, 0, 0, 1 + (rnd >> 8) % 200);
		break;
	case 1:
		spec->saddr = AG_TN_VIP;
		break;
	case 2:
		spec->ip_csum_bogus = true;
		break;
	case 3:
		spec->sport = 0;
		break;
	case 4:
		spec->opts = opt_lsrr;
		spec->optlen = sizeof(opt_lsrr);
		break;
	case 5:
		spec->opts = opt_ra;
		spec->optlen = sizeof(opt_ra);
		break;
	case 6:
		memcpy(spec->dmac, env.tn.mac_peer, 6);
		break;
	case 7:
		spec->nvlan = 1;
		spec->vlan_tci[0] = 12;
		break;
	case 8:
		spec->proto = IPPROTO_ICMP;
		break;
	}
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
	const struct ag_shm_view *h = ag_shm__view(shm);
	unsigned int i, mismatches = 0, forwarded = 0, refused = 0;
	unsigned int per_reason[AG_R__MAX + 1] = {0};
	static struct xdp_result x;
	struct ag_settings s;

	CU_ASSERT_EQUAL_FATAL(ag_shm__settings_get(h, &s), 1);
	for (i = 0; i < NFLOWS; i++) {
		uint64_t rnd = prng();
		unsigned int t = (unsigned int)(rnd % (sizeof(targets) / sizeof(targets[0])));
		struct ag_pkt_spec spec;
		uint8_t in[AG_PKT_MAX];
		struct ag_flow_key k;
		struct ag_choice c = {0};
		int in_len, r;
		bool bad;

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
		spec.tcp_flags = random_flags(rnd >> 48);
		spec.seq = (uint32_t)rnd;
		dirty(&spec, prng());
		in_len = ag_pkt__build(&spec, in);

		r = dp_first(h, &s, in, in_len, &k, &c, now_ns());
		xdp_run(in, in_len, &x);
		if (r == AG_CHOICE_OK) {
			bad = !same_forward(&x, ag_pkt__l3_off(&spec), &c, &s);
			forwarded++;
		} else {
			/* The one difference by design: XDP hands a tagged frame to the kernel. */
			bad = x.reason != (r == AG_R_DROP_VLAN_TAGGED ? AG_R_PASS_VLAN_TAGGED : r);
			refused++;
		}
		per_reason[r == AG_CHOICE_OK ? AG_R__MAX : r]++;
		if (bad && mismatches++ < 5)
			printf("\n  flow %u (%s:%u -> port %u, proto %u, flags %#x, ttl %u): DPDK "
			       "says %s (backend %08x:%u nat %08x), XDP says %s (verdict %u)\n",
			       i, inet_ntoa((struct in_addr){k.saddr.v4}), spec.sport, spec.dport,
			       spec.proto, spec.tcp_flags, spec.ttl, reason_label(r),
			       ntohl(c.backend_addr), ntohs(c.backend_port), ntohl(c.nat_addr),
			       reason_label(x.reason), x.verdict);
	}
	printf("\n  %u flows: %u forwarded, %u refused (", NFLOWS, forwarded, refused);
	for (i = 0; i < AG_R__MAX; i++)
		if (per_reason[i])
			printf("%s %u, ", reason_label((int)i), per_reason[i]);
	printf("), %u mismatches\n", mismatches);
	CU_ASSERT_EQUAL(mismatches, 0);
	/* The sample reached every kind of decision the fixtures hold. */
	CU_ASSERT(forwarded > NFLOWS / 4);
	CU_ASSERT(per_reason[AG_R_PASS_NO_LISTENER] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_VIP_NO_LISTENER] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_NO_BACKEND] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_BAD_STATE] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_TTL] > 0);
	/* Ingress hygiene: anygate-dp drops the tagged frame XDP hands to the kernel. */
	CU_ASSERT(per_reason[AG_R_DROP_MARTIAN] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_SOURCE_OURS] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_IP_CSUM] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_PORT_ZERO] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_SOURCE_ROUTE] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_L2_OTHER_HOST] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_VLAN_TAGGED] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_VIP_NOT_L4] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_TCP_FLAGS] > 0);
	CU_ASSERT(per_reason[AG_R_DROP_TCP_NO_FLOW] > 0);
}

/* Both sides' settings: env.settings written into the XDP map and the segment. */
static void settings_both(void)
{
	CU_ASSERT_EQUAL_FATAL(ag_xdp_env__write_settings(&env), 0);
	CU_ASSERT_EQUAL_FATAL(ag_shm__sink_ops()->settings(shm, &env.settings), 0);
}

/* A segment from client source j to the VIP's TCP port 80. */
static int auth_segment(unsigned int j, uint8_t flags, uint32_t seq, uint8_t *out)
{
	struct ag_pkt_spec spec;

	memset(&spec, 0, sizeof(spec));
	memcpy(spec.dmac, env.tn.mac_c, 6);
	memcpy(spec.smac, env.tn.mac_peer, 6);
	spec.ttl = 64;
	spec.proto = IPPROTO_TCP;
	/* Sources the first test did not use (it takes 10.20.0.0 - 10.20.15.159). */
	spec.saddr = AG_TN_CLIENTS_NET | 0x8000 | j;
	spec.sport = 40000;
	spec.daddr = AG_TN_VIP;
	spec.dport = 80;
	spec.tcp_flags = flags;
	spec.seq = seq;
	return ag_pkt__build(&spec, out);
}

/* The DPDK side: its tables as fwd.c and flows.c read them, this test's lcore state. */
struct dp_side {
	const struct ag_shm_view *h;
	struct ag_settings s;
	struct ag_dp_synauth *syn;
	struct ag_cpu_state cpu;
};

/*
 * Source j's segment (flags, seq) through both sides: anygate-dp's decision
 * for it as a first packet (dp_first(), returned, with *k its key) and what
 * the XDP program did (*x).
 */
static int auth_both(struct dp_side *d, unsigned int j, uint8_t flags, uint32_t seq, uint64_t now,
		     struct ag_flow_key *k, struct xdp_result *x)
{
	uint8_t in[AG_PKT_MAX];
	struct ag_choice c;
	int len = auth_segment(j, flags, seq, in), r;

	r = dp_first(d->h, &d->s, in, len, k, &c, now);
	xdp_run(in, len, x);
	return r;
}

/*
 * A SYN from source j through both: anygate-dp's choice, then its admission
 * (ag_admit() on this lcore's buckets and the allowlist). Returns the XDP
 * outcome when both agree (AG_FLOW_CREATED: forwarded; AG_FLOW_CHALLENGE,
 * with *ack the challenge's ACK number, host order), -1 when they differ.
 */
static int auth_syn(struct dp_side *d, unsigned int j, uint32_t seq, uint32_t *ack)
{
	struct ag_tables t = {.seg = d->h, .settings = &d->s, .syn = d->syn};
	static struct xdp_result x;
	uint64_t now = now_ns();
	struct ag_flow_key k;
	int r;

	r = auth_both(d, j, AG_TCPF_SYN, seq, now, &k, &x);
	if (r == AG_CHOICE_OK)
		r = ag_admit(&t, &k, &d->s, &d->cpu, now);
	if (r == AG_CHOICE_OK && x.verdict != XDP_DROP &&
	    (x.reason == -1 || x.reason == AG_R_PASS_NO_NEIGH))
		return AG_FLOW_CREATED;
	if (r != AG_FLOW_CHALLENGE || x.reason != AG_R_TX_SYN_CHALLENGE || x.verdict != XDP_TX)
		return -1;
	/* The challenge's ACK number: IPv4 (20 bytes, options dropped) + TCP offset 8. */
	memcpy(ack, x.out + 14 + 20 + 8, 4);
	*ack = ntohl(*ack);
	return AG_FLOW_CHALLENGE;
}

/*
 * The client's RST with sequence number seq, from source j, through both:
 * the reason each gives (-1 when they differ). A source the DPDK side
 * verifies goes into its allowlist, as fwd.c records it.
 */
static int auth_rst(struct dp_side *d, unsigned int j, uint32_t seq)
{
	static struct xdp_result x;
	uint64_t now = now_ns();
	struct ag_flow_key k;
	int r;

	r = auth_both(d, j, AG_TCPF_RST, seq, now, &k, &x);
	if (r == AG_R_SYN_AUTH_PASSED)
		ag_dp_synauth__record(d->syn, &k.saddr, now);
	return x.reason == r && x.verdict == XDP_DROP ? r : -1;
}

/* How often each outcome was seen, and how often the two sides differed. */
struct auth_tally {
	unsigned int created, challenged, passed, refused, mismatches;
};

/*
 * Source j's conversation past the budget: its SYN is challenged; an even j
 * answers with the RST the challenge asks for (verified), an odd one with a
 * RST of a wrong cookie (refused, still unverified); the retransmitted SYN
 * is then admitted (even) or challenged again (odd).
 */
static void auth_source(struct dp_side *d, unsigned int j, struct auth_tally *n)
{
	uint32_t seq = (uint32_t)prng(), ack = 0, ack2 = 0;
	bool verify = j % 2 == 0;
	int r;

	r = auth_syn(d, j, seq, &ack);
	n->challenged += r == AG_FLOW_CHALLENGE;
	if (r != AG_FLOW_CHALLENGE) {
		n->mismatches++;
		return;
	}
	r = auth_rst(d, j, verify ? ack : ack + 2);
	n->passed += r == AG_R_SYN_AUTH_PASSED;
	n->refused += r == AG_R_DROP_TCP_NO_FLOW;
	if (r != (verify ? AG_R_SYN_AUTH_PASSED : AG_R_DROP_TCP_NO_FLOW))
		n->mismatches++;
	r = auth_syn(d, j, seq, &ack2);
	n->created += r == AG_FLOW_CREATED;
	n->challenged += r == AG_FLOW_CHALLENGE;
	if (r != (verify ? AG_FLOW_CREATED : AG_FLOW_CHALLENGE))
		n->mismatches++;
}

static void test_syn_auth(void)
{
	struct dp_side d = {.h = ag_shm__view(shm)};
	struct auth_tally n = {0};
	uint32_t ack;
	cpu_set_t one;
	unsigned int j;

	/* XDP's budgets are per CPU: stay on one, as the DPDK side is one lcore. */
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	CU_ASSERT_EQUAL_FATAL(sched_setaffinity(0, sizeof(one), &one), 0);
	d.syn = calloc(1, sizeof(*d.syn));
	CU_ASSERT_PTR_NOT_NULL_FATAL(d.syn);
	/* One new TCP flow a second per CPU; the test runs well within that second. */
	env.settings.syn_cpu_rate = 1;
	settings_both();
	CU_ASSERT_EQUAL_FATAL(ag_shm__settings_get(d.h, &d.s), 1);

	/* The budget's one flow, then only challenges for sources not yet verified. */
	n.created += auth_syn(&d, 999, (uint32_t)prng(), &ack) == AG_FLOW_CREATED;
	for (j = 0; j < 40; j++)
		auth_source(&d, j, &n);
	printf("\n  SYN authentication: %u created, %u challenged, %u verified, %u wrong "
	       "cookies refused, %u mismatches\n",
	       n.created, n.challenged, n.passed, n.refused, n.mismatches);
	CU_ASSERT_EQUAL(n.mismatches, 0);
	CU_ASSERT_EQUAL(n.created, 1 + 20);
	CU_ASSERT_EQUAL(n.passed, 20);
	CU_ASSERT_EQUAL(n.refused, 20);
	CU_ASSERT_EQUAL(n.challenged, 40 + 20);

	env.settings.syn_cpu_rate = 0;
	settings_both();
	free(d.syn);
}

/* Both sides' backend spread for one listener: the same counts, backend by backend. */
static void test_same_spread(void)
{
	const struct ag_shm_view *h = ag_shm__view(shm);
	unsigned int counts[8] = {0}, i;
	struct ag_settings s;

	CU_ASSERT_EQUAL_FATAL(ag_shm__settings_get(h, &s), 1);
	for (i = 0; i < 20000; i++) {
		struct ag_choice c = {0};
		struct ag_flow_key k;
		uint32_t idx;

		ag_addr__set4(&k.saddr, htonl(AG_TN_CLIENTS_NET | (uint32_t)(prng() & 0xffff)));
		ag_addr__set4(&k.daddr, htonl(AG_TN_VIP));
		ag_flow_key__ports(&k, htons((uint16_t)(1024 + prng() % 60000)), htons(80),
				   IPPROTO_TCP);

		CU_ASSERT_EQUAL_FATAL(ag_dp__choose(h, &s, &k, 64, &c), AG_CHOICE_OK);
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
	CU_add_test(suite, "same SYN authentication, source by source", test_syn_auth);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	ag_shm__close(shm);
	ag_shm__unlink(shm_name);
	ag_xdp_env__close(&env);
	return failed ? 1 : 0;
}
