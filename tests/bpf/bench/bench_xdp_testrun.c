/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench-xdp-testrun: ns/packet of the anygate XDP program under
 * BPF_PROG_TEST_RUN, beside a MAC-swap + XDP_TX floor, in one run.
 *
 * test_run with repeat does not reset the packet between repeats, so every
 * case runs through bench_wrap.bpf.c: restore the input frame, then tail-call
 * the program under test. The floor and a wrapper-only case (tail call into
 * `return XDP_TX`) go through the same wrapper, so the differences compare
 * like with like. Every run is checked against the program's own counters:
 * each iteration must have taken the path being timed (forwarded, replied,
 * or created a flow), with no pass/drop reason counted.
 *
 * Cases, each `runs` times `packets` iterations, interleaved per round:
 *   (a) established TCP flow, client -> backend
 *   (b) return path, backend -> client
 *   (c) a new flow per packet (the wrapper stamps a fresh source addr:port)
 *   (d) floor: MAC swap + XDP_TX; wrapper only; MAC swap without wrapper
 *   (e) a packet not for us (what every kernel-bound packet pays)
 *
 * Runs in its own network namespace (testnet.h) so bpf_fib_lookup() succeeds.
 * usage: bench-xdp-testrun [--runs N] [--packets N]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "anygate.skel.h"
#include "bench_wrap.skel.h"
#include "pkt.h"
#include "testnet.h"
#include "xdp_env.h"

#define BENCH_FRAME	  64 /* bytes on the wire, without FCS */
#define BENCH_BACKENDS	  64 /* spread new flows: NAT ports are per (backend, NAT address) */
#define BENCH_BACKEND_ID0 100
#define BENCH_NAT_ADDRS	  16
#define MAX_RUNS	  1000

enum bench_case {
	C_ESTABLISHED,
	C_RETURN,
	C_NEW_FLOW,
	C_FLOOR,
	C_WRAPPER,
	C_DIRECT,
	C_PASS,
	C__MAX
};

static const char *const case_names[C__MAX] = {
    [C_ESTABLISHED] = "(a) established TCP flow, forward",
    [C_RETURN] = "(b) return path, backend -> client",
    [C_NEW_FLOW] = "(c) new flow per packet",
    [C_PASS] = "(e) not for us: non-VIP TCP, XDP_PASS",
    [C_FLOOR] = "(d) floor: MAC swap + XDP_TX",
    [C_WRAPPER] = "    wrapper only (restore + tail call)",
    [C_DIRECT] = "    MAC swap + XDP_TX, no wrapper",
};

struct bench {
	struct ag_xdp_env env;
	struct bench_wrap *wrap;
	unsigned int runs;
	__u32 packets;
	double cpu[C__MAX][MAX_RUNS]; /* ns per packet, thread CPU time of the syscall */
	__u32 kern[C__MAX][MAX_RUNS]; /* ns per packet, test_run's own (integer) figure */
	uint8_t fwd[AG_PKT_MAX], ret[AG_PKT_MAX], syn[AG_PKT_MAX], other[AG_PKT_MAX];
	int fwd_len, ret_len, syn_len, other_len;
	uint8_t fwd_want[AG_PKT_MAX], ret_want[AG_PKT_MAX];
	int fwd_want_len, ret_want_len;
};

/*
 * CPU time of this thread: the syscall's kernel time, without the time other
 * tasks ran on this CPU while we were preempted (the machine is shared).
 */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct ag_pkt_spec base_spec(const struct bench *b, uint8_t flags)
{
	static const uint8_t payload[10] = "0123456789";
	struct ag_pkt_spec s;

	memset(&s, 0, sizeof(s));
	memcpy(s.dmac, b->env.tn.mac_c, 6);
	memcpy(s.smac, b->env.tn.mac_peer, 6);
	s.ttl = 64;
	s.frag = 0x4000;
	s.proto = IPPROTO_TCP;
	s.saddr = AG_TN_CLIENT;
	s.sport = 40000;
	s.daddr = AG_TN_VIP;
	s.dport = 80;
	s.seq = 1;
	s.tcp_flags = flags;
	s.payload = payload;
	s.paylen = sizeof(payload); /* 14 + 20 + 20 + 10 = 64 bytes */
	return s;
}

/* Spread new flows over many backends and NAT addresses, as a real edge would. */
static int bench_config(struct bench *b)
{
	struct ag_settings *s = &b->env.settings;
	uint32_t i;
	int err;

	s->nat_addr_count = BENCH_NAT_ADDRS;
	for (i = 0; i < BENCH_NAT_ADDRS; i++)
		s->nat_addrs[i] = htonl(AG_TN_NAT + i);
	s->nat_port_min = AG_NAT_PORT_MIN_DEFAULT;
	s->nat_port_max = AG_NAT_PORT_MAX_DEFAULT;
	err = ag_xdp_env__write_settings(&b->env);
	for (i = 0; !err && i < BENCH_BACKENDS; i++)
		err = ag_xdp_env__set_backend(&b->env, BENCH_BACKEND_ID0 + i,
					      AG_IP4(10, 1, 1, 100) + i, 1, AG_BACKEND_UP);
	for (i = 0; !err && i < AG_TE_RING; i++)
		ag_xdp_env__set_table_entry(&b->env, AG_TE_L_TCP80, i,
					    BENCH_BACKEND_ID0 + i % BENCH_BACKENDS);
	return err;
}

/* Empty ag_flows and ag_nat_rev (untimed), so every round starts alike. */
_Static_assert(sizeof(struct ag_nat_rev) <= sizeof(struct ag_flow), "clear_map buffer");
static int clear_map(struct bpf_map *map)
{
	static struct ag_flow_key keys[4096];
	static uint8_t vals[4096 * sizeof(struct ag_flow)];
	int fd = bpf_map__fd(map);
	__u32 count;
	int err;

	for (;;) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 batch = 0;

		count = 4096;
		err = bpf_map_lookup_and_delete_batch(fd, NULL, &batch, keys, vals, &count, &opts);
		if (err == -ENOENT)
			return 0; /* done (count holds the last few) */
		if (err)
			return err;
	}
}

static int clear_flows(struct bench *b)
{
	int err = clear_map(b->env.skel->maps.ag_flows);

	return err ? err : clear_map(b->env.skel->maps.ag_nat_rev);
}

/* Create the flow (a) and (b) time, and the frames and expected outputs for it. */
static int establish(struct bench *b)
{
	struct ag_pkt_spec syn = base_spec(b, AG_TCPF_SYN), fwd = base_spec(b, AG_TCPF_ACK), ret, w;
	struct ag_flow_key k;
	struct ag_flow f;
	uint8_t out[AG_PKT_MAX];
	uint32_t verdict;
	int len, out_len, err;

	len = ag_pkt__build(&syn, b->syn);
	err =
	    ag_xdp_env__run(&b->env, b->env.tn.ifindex_c, b->syn, len, 0, out, &out_len, &verdict);
	if (err || verdict != XDP_REDIRECT) {
		fprintf(stderr, "bench: first SYN: err %d verdict %u\n", err, verdict);
		return err ? err : -EPROTO;
	}
	memset(&k, 0, sizeof(k));
	k.saddr.v4 = htonl(syn.saddr);
	k.daddr.v4 = htonl(syn.daddr);
	k.sport = htons(syn.sport);
	k.dport = htons(syn.dport);
	k.proto = IPPROTO_TCP;
	k.family = AG_FAMILY_IPV4;
	err = bpf_map_lookup_elem(bpf_map__fd(b->env.skel->maps.ag_flows), &k, &f);
	if (err) {
		fprintf(stderr, "bench: no flow after the first SYN\n");
		return err;
	}
	b->fwd_len = ag_pkt__build(&fwd, b->fwd);
	w = fwd;
	memcpy(w.dmac, b->env.tn.mac_router, 6);
	memcpy(w.smac, b->env.tn.mac_b, 6);
	w.ttl--;
	w.saddr = ntohl(f.nat_addr.v4);
	w.daddr = ntohl(f.backend_addr.v4);
	w.sport = ntohs(f.nat_port);
	w.dport = ntohs(f.backend_port);
	b->fwd_want_len = ag_pkt__build(&w, b->fwd_want);

	ret = base_spec(b, AG_TCPF_ACK);
	memcpy(ret.dmac, b->env.tn.mac_b, 6);
	memcpy(ret.smac, b->env.tn.mac_router, 6);
	ret.saddr = ntohl(f.backend_addr.v4);
	ret.sport = ntohs(f.backend_port);
	ret.daddr = ntohl(f.nat_addr.v4);
	ret.dport = ntohs(f.nat_port);
	b->ret_len = ag_pkt__build(&ret, b->ret);
	w = ret;
	memcpy(w.dmac, b->env.tn.mac_client, 6);
	memcpy(w.smac, b->env.tn.mac_c, 6);
	w.ttl--;
	w.saddr = AG_TN_VIP;
	w.sport = 80;
	w.daddr = AG_TN_CLIENT;
	w.dport = 40000;
	b->ret_want_len = ag_pkt__build(&w, b->ret_want);

	/* Kernel-bound traffic: the same segment to an address that is no VIP. */
	fwd.daddr = AG_TN_OTHER;
	b->other_len = ag_pkt__build(&fwd, b->other);

	/* The new-flow template: a SYN whose source the wrapper rewrites per iteration. */
	syn.saddr = AG_TN_CLIENTS_NET;
	syn.sport = 1;
	b->syn_len = ag_pkt__build(&syn, b->syn);
	return 0;
}

struct counters {
	struct ag_traffic_stats l;
	uint64_t reasons;     /* packets over every pass/drop reason */
	uint64_t no_listener; /* of which pass_no_listener */
	uint64_t tail_fail, floor_runs, tx_runs;
};

static int snapshot(const struct bench *b, struct counters *c)
{
	struct ag_reason_stats rs[AG_R__MAX];
	int i, err;

	err = ag_xdp_env__tstats(&b->env, false, AG_TE_L_TCP80, &c->l);
	if (!err)
		err = ag_xdp_env__rstats(&b->env, rs);
	if (err)
		return err;
	c->reasons = 0;
	for (i = 0; i < AG_R__MAX; i++)
		c->reasons += rs[i].packets;
	c->no_listener = rs[AG_R_PASS_NO_LISTENER].packets;
	c->tail_fail = b->wrap->bss->tail_fail;
	c->floor_runs = b->wrap->bss->floor_runs;
	c->tx_runs = b->wrap->bss->tx_runs;
	return 0;
}

/* Did every iteration of case c take the intended path? */
static int verify(const struct bench *b, enum bench_case c, const struct counters *x,
		  const struct counters *y, uint32_t verdict, const uint8_t *out, int out_len)
{
	uint64_t n = b->packets;
	uint64_t pk = y->l.packets - x->l.packets, nf = y->l.new_flows - x->l.new_flows;
	uint64_t rp = y->l.ret_packets - x->l.ret_packets, rs = y->reasons - x->reasons;
	uint64_t fl = y->floor_runs - x->floor_runs, tx = y->tx_runs - x->tx_runs;
	bool ok;

	switch (c) {
	case C_ESTABLISHED:
		ok = verdict == XDP_REDIRECT && pk == n && nf == 0 && rp == 0 && rs == 0 &&
		     out_len == b->fwd_want_len && !memcmp(out, b->fwd_want, (size_t)out_len);
		break;
	case C_RETURN:
		ok = verdict == XDP_REDIRECT && pk == 0 && rp == n && rs == 0 &&
		     out_len == b->ret_want_len && !memcmp(out, b->ret_want, (size_t)out_len);
		break;
	case C_NEW_FLOW:
		ok = verdict == XDP_REDIRECT && pk == n && nf == n && rs == 0;
		break;
	case C_PASS:
		ok = verdict == XDP_PASS && pk == 0 && rp == 0 && rs == n &&
		     y->no_listener - x->no_listener == n && out_len == b->other_len &&
		     !memcmp(out, b->other, (size_t)out_len);
		break;
	case C_FLOOR:
	case C_DIRECT:
		ok = verdict == XDP_TX && fl == n && tx == 0;
		break;
	case C_WRAPPER:
		ok = verdict == XDP_TX && tx == n && fl == 0;
		break;
	default:
		ok = false;
	}
	ok = ok && y->tail_fail == x->tail_fail;
	if (!ok)
		fprintf(
		    stderr,
		    "bench: %s took another path: verdict %u, forwarded %llu, new flows %llu, "
		    "returned %llu, pass/drop %llu, floor %llu, tx %llu, failed tail calls %llu "
		    "(want %llu iterations)\n",
		    case_names[c], verdict, (unsigned long long)pk, (unsigned long long)nf,
		    (unsigned long long)rp, (unsigned long long)rs, (unsigned long long)fl,
		    (unsigned long long)tx, (unsigned long long)(y->tail_fail - x->tail_fail),
		    (unsigned long long)n);
	return ok ? 0 : -EPROTO;
}

static int run_case(struct bench *b, enum bench_case c, unsigned int run)
{
	struct bench_wrap__bss *bss = b->wrap->bss;
	int target = -1, prog, ifindex = b->env.tn.ifindex_c, len, err;
	const uint8_t *pkt;
	uint8_t out[AG_PKT_MAX];
	struct counters x, y;
	struct xdp_md ctx;
	uint64_t t0, t1, cal;
	__u32 zero = 0;

	switch (c) {
	case C_ESTABLISHED:
		target = bpf_program__fd(b->env.skel->progs.anygate_xdp);
		pkt = b->fwd;
		len = b->fwd_len;
		break;
	case C_RETURN:
		target = bpf_program__fd(b->env.skel->progs.anygate_xdp);
		pkt = b->ret;
		len = b->ret_len;
		ifindex = b->env.tn.ifindex_b;
		break;
	case C_NEW_FLOW:
		target = bpf_program__fd(b->env.skel->progs.anygate_xdp);
		pkt = b->syn;
		len = b->syn_len;
		break;
	case C_PASS:
		target = bpf_program__fd(b->env.skel->progs.anygate_xdp);
		pkt = b->other;
		len = b->other_len;
		break;
	case C_FLOOR:
	case C_DIRECT:
		target = bpf_program__fd(b->wrap->progs.bench_macswap);
		pkt = b->fwd;
		len = b->fwd_len;
		break;
	case C_WRAPPER:
		target = bpf_program__fd(b->wrap->progs.bench_tx);
		pkt = b->fwd;
		len = b->fwd_len;
		break;
	default:
		return -EINVAL;
	}
	prog = c == C_DIRECT ? target : bpf_program__fd(b->wrap->progs.bench_wrap);

	memcpy(bss->pkt, pkt, (size_t)len);
	bss->pkt_len = (__u32)len;
	bss->vary_flow = c == C_NEW_FLOW;
	bss->saddr_off = 14 + 12;
	bss->sport_off = 14 + 20;
	bss->vary_base = AG_TN_CLIENTS_NET;
	err = bpf_map_update_elem(bpf_map__fd(b->wrap->maps.bench_target), &zero, &target, BPF_ANY);
	if (err) {
		fprintf(stderr, "bench: prog array: %s\n", strerror(-err));
		return err;
	}

	memset(&ctx, 0, sizeof(ctx));
	ctx.data_end = (__u32)len;
	ctx.ingress_ifindex = (__u32)ifindex;
	{
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = (__u32)len,
			    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = b->packets, );

		err = snapshot(b, &x);
		if (err)
			return err;
		/*
		 * test_run with repeat > 1 re-targets the XDP dispatcher on entry
		 * and exit, outside its timed loop: ~0.7 ms of CPU per call here.
		 * A 2-iteration call measures that; it is taken off the big run.
		 */
		opts.repeat = 2;
		t0 = cpu_ns();
		err = bpf_prog_test_run_opts(prog, &opts);
		t1 = cpu_ns();
		cal = t1 - t0;
		opts.repeat = b->packets - 2;
		opts.data_size_out = sizeof(out);
		if (!err) {
			t0 = cpu_ns();
			err = bpf_prog_test_run_opts(prog, &opts);
			t1 = cpu_ns();
		}
		if (err) {
			fprintf(stderr, "bench: %s: test_run: %s\n", case_names[c], strerror(-err));
			return err;
		}
		err = snapshot(b, &y);
		if (!err)
			err = verify(b, c, &x, &y, opts.retval, out, (int)opts.data_size_out);
		if (err)
			return err;
		/* Per packet: (CPU(n - 2 iterations) - CPU(2 iterations)) / (n - 4). */
		b->cpu[c][run] = (double)((int64_t)(t1 - t0) - (int64_t)cal) / (b->packets - 4);
		b->kern[c][run] = opts.duration;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static double median_d(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(struct bench *b)
{
	double med[C__MAX], min[C__MAX];
	struct utsname u;
	unsigned int c;

	for (c = 0; c < C__MAX; c++) {
		med[c] = median_d(b->cpu[c], b->runs);
		min[c] = b->cpu[c][0];
		qsort(b->kern[c], b->runs, sizeof(__u32), cmp_u32);
	}
	uname(&u);
	printf("anygate XDP under BPF_PROG_TEST_RUN (kernel %s, %ld CPUs): %u runs x %u packets, "
	       "%d-byte frames\n",
	       u.release, sysconf(_SC_NPROCESSORS_ONLN), b->runs, b->packets, BENCH_FRAME);
	printf("ns/packet from the thread CPU time of the test_run calls (their fixed cost "
	       "taken off);\ntest_run = the kernel's own integer figure (median); net = median "
	       "minus the wrapper-only median.\n\n");
	printf("%-40s %10s %10s %9s %8s %5s\n", "case", "min", "median", "test_run", "net", "runs");
	for (c = 0; c < C__MAX; c++) {
		char net[16] = "";

		if (c != C_WRAPPER && c != C_DIRECT)
			snprintf(net, sizeof(net), "%.2f", med[c] - med[C_WRAPPER]);
		printf("%-40s %10.2f %10.2f %9u %8s %5u\n", case_names[c], min[c], med[c],
		       b->runs % 2 ? b->kern[c][b->runs / 2]
				   : (b->kern[c][b->runs / 2 - 1] + b->kern[c][b->runs / 2]) / 2,
		       net, b->runs);
	}
	printf("\nevery run verified: (a) all forwarded on one flow, (b) all returned, (c) one "
	       "new flow per packet, no pass/drop reason counted; (e) all passed as "
	       "pass_no_listener;\nlast output frame exact for (a), (b) and (e).\n");
}

/* Fewer than 1e5 packets: the ~0.1 ms jitter of test_run's fixed cost shows per packet. */
static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench-xdp-testrun [--runs N] [--packets N]\n"
		"  --runs N      runs per case, 1..%d (default 5)\n"
		"  --packets N   iterations per run, 100000..50000000 (default 1000000)\n",
		MAX_RUNS);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"runs", required_argument, NULL, 'r'},
	    {"packets", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static struct bench b;
	unsigned long v;
	unsigned int run, c;
	char *end;
	int opt, err = 0;
	__u32 flows;

	b.runs = 5;
	b.packets = 1000000;
	while ((opt = getopt_long(argc, argv, "r:n:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
		case 'n':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg ||
			    (opt == 'r' ? v < 1 || v > MAX_RUNS : v < 100000 || v > 50000000)) {
				fprintf(stderr, "bench-xdp-testrun: bad --%s '%s'\n",
					opt == 'r' ? "runs" : "packets", optarg);
				usage(stderr);
				return 2;
			}
			if (opt == 'r')
				b.runs = (unsigned int)v;
			else
				b.packets = (__u32)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (ag_testnet__check_privileges()) {
		fprintf(stderr, "bench-xdp-testrun: needs root (network namespace, BPF)\n");
		return 77;
	}
	if (ag_testnet__setup(&b.env.tn))
		return 1;
	/* Room for one run of new flows without LRU eviction (maps are emptied per round). */
	flows = b.packets + b.packets / 2 + 4096;
	if (ag_xdp_env__open(&b.env, flows))
		return 1;
	b.wrap = bench_wrap__open_and_load();
	if (!b.wrap) {
		fprintf(stderr, "bench: load bench_wrap: %s\n", strerror(errno));
		err = -errno;
		goto out;
	}
	err = bench_config(&b);
	if (err)
		goto out;

	for (run = 0; run < b.runs; run++) {
		err = clear_flows(&b);
		if (!err)
			err = establish(&b);
		for (c = 0; !err && c < C__MAX; c++) {
			if (c == C_NEW_FLOW)
				continue;
			err = run_case(&b, c, run);
		}
		if (!err)
			err = clear_flows(&b);
		if (!err)
			err = run_case(&b, C_NEW_FLOW, run);
		if (err)
			goto out;
		fprintf(stderr, "bench: round %u/%u ns/packet:", run + 1, b.runs);
		for (c = 0; c < C__MAX; c++)
			fprintf(stderr, " %.1f", b.cpu[c][run]);
		fprintf(stderr, "\n");
	}
	report(&b);
out:
	bench_wrap__destroy(b.wrap);
	ag_xdp_env__close(&b.env);
	return err ? 1 : 0;
}
