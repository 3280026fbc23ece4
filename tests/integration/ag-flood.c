// SPDX-License-Identifier: BSD-3-Clause
/*
 * ag-flood: a new-flow flood for the lab: every frame a TCP SYN (with an MSS
 * option, 58 bytes) or a UDP datagram (60 bytes) from a random source address
 * in --src-cidr and a random source port (flood.h stamps them), to DST:PORT.
 *
 *   ag-flood (--ifindex N | --dev NAME) --dst-mac MAC [--src-mac MAC]
 *            --dst ADDR --port P --mode syn|udp --src-cidr CIDR --seconds S
 *            [--rate PPS] [--count N] [--batch N] [--engine auto|live|packet]
 *
 * Engines: "live" runs flood.bpf.c under BPF_PROG_TEST_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES (XDP_TX transmits on the interface); "packet"
 * stamps frames in user space and hands them to the driver with sendmmsg() on
 * an AF_PACKET socket that bypasses the qdisc. "auto" (the default) takes live
 * and falls back to packet where the kernel refuses live frames.
 * --rate paces on wall time (a token bucket: a run of frames waits for its
 * tokens); without it, as fast as it goes. --count stops after N frames;
 * --batch is frames per syscall. At the end it prints
 *   ag-flood: sent N packets in S s: R pps
 *   flood mode=M engine=E packets=N seconds=S pps=R errors=X
 * "sent" counts frames handed to the driver; what the receiver then drops is
 * for its own counters to say.
 *
 * Safety: floods go only into namespaces a test created. ag-flood refuses to
 * run in the host's initial network namespace (that of PID 1).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cli.h"
#include "flood.h"
#include "flood.skel.h" /* struct ag_flood_bpf */
#include "rawframe.h"

#define FLOOD_MAX_SECONDS 600
#define FLOOD_MAX_RATE	  100000000L
#define FLOOD_MAX_BATCH	  65536
#define FLOOD_MAX_MMSG	  1024 /* frames per sendmmsg() */
#define FLOOD_KERN_BATCH  256  /* the kernel's most frames per live-frames batch */
#define FLOOD_TCP_MSS	  1460

enum ag_flood_engine { ENGINE_AUTO, ENGINE_LIVE, ENGINE_PACKET };
static const char *const engine_names[] = {"auto", "live", "packet"};

struct ag_flood_opts {
	int ifindex;
	const char *dev;
	uint8_t src_mac[ETH_ALEN], dst_mac[ETH_ALEN];
	bool have_src_mac, have_dst_mac;
	struct in_addr dst;
	uint16_t port;
	int proto; /* IPPROTO_TCP (syn) or IPPROTO_UDP (udp) */
	uint32_t src_base, src_host;
	bool have_cidr;
	long seconds, rate, count, batch;
	enum ag_flood_engine engine;
};

/* Token bucket on wall time, shared by both engines. */
struct ag_flood_pace {
	uint64_t start, end; /* CLOCK_MONOTONIC ns */
	uint64_t base, base_sent;
	uint64_t sent;	 /* frames handed to the driver */
	uint64_t errors; /* frames the kernel refused */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: ag-flood (--ifindex N | --dev NAME) --dst-mac MAC [--src-mac MAC]\n"
	    "                --dst ADDR --port P --mode syn|udp --src-cidr CIDR --seconds S\n"
	    "                [--rate PPS] [--count N] [--batch N] [--engine auto|live|packet]\n");
	exit(2);
}

/* CIDR "a.b.c.d/len" -> first address and host bits (host order). */
static void parse_cidr(const char *s, struct ag_flood_opts *o)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	struct in_addr a;
	long len;

	if (!slash || (size_t)(slash - s) >= sizeof(addr)) {
		fprintf(stderr, "ag-flood: bad CIDR '%s' (want a.b.c.d/len)\n", s);
		exit(2);
	}
	memcpy(addr, s, slash - s);
	addr[slash - s] = '\0';
	len = ag_cli__num(slash + 1, 0, 32);
	if (inet_pton(AF_INET, addr, &a) != 1) {
		fprintf(stderr, "ag-flood: bad CIDR address '%s'\n", addr);
		exit(2);
	}
	o->src_host = len == 0 ? 0xffffffffu : (uint32_t)((1ULL << (32 - len)) - 1);
	o->src_base = ntohl(a.s_addr) & ~o->src_host;
	o->have_cidr = true;
}

static int parse_choice(const char *s, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	usage();
	return -1;
}

static void parse_opt(int c, struct ag_flood_opts *o)
{
	static const char *const modes[] = {"syn", "udp"};

	switch (c) {
	case 'i':
		o->ifindex = (int)ag_cli__num(optarg, 1, 0x7fffffff);
		break;
	case 'd':
		o->dev = optarg;
		break;
	case 'S':
		ag_raw__parse_mac(optarg, o->src_mac);
		o->have_src_mac = true;
		break;
	case 'D':
		ag_raw__parse_mac(optarg, o->dst_mac);
		o->have_dst_mac = true;
		break;
	case 'a':
		if (inet_pton(AF_INET, optarg, &o->dst) != 1) {
			fprintf(stderr, "ag-flood: bad IPv4 address '%s'\n", optarg);
			exit(2);
		}
		break;
	case 'p':
		o->port = (uint16_t)ag_cli__num(optarg, 1, 65535);
		break;
	case 'm':
		o->proto = parse_choice(optarg, modes, 2) ? IPPROTO_UDP : IPPROTO_TCP;
		break;
	case 'c':
		parse_cidr(optarg, o);
		break;
	case 's':
		o->seconds = ag_cli__num(optarg, 1, FLOOD_MAX_SECONDS);
		break;
	case 'r':
		o->rate = ag_cli__num(optarg, 1, FLOOD_MAX_RATE);
		break;
	case 'n':
		o->count = ag_cli__num(optarg, 1, 1000000000L);
		break;
	case 'b':
		o->batch = ag_cli__num(optarg, 1, FLOOD_MAX_BATCH);
		break;
	case 'e':
		o->engine = (enum ag_flood_engine)parse_choice(optarg, engine_names, 3);
		break;
	default:
		usage();
	}
}

static void parse_args(int argc, char **argv, struct ag_flood_opts *o)
{
	static const struct option opts[] = {
	    {"ifindex", required_argument, NULL, 'i'}, {"dev", required_argument, NULL, 'd'},
	    {"src-mac", required_argument, NULL, 'S'}, {"dst-mac", required_argument, NULL, 'D'},
	    {"dst", required_argument, NULL, 'a'},     {"port", required_argument, NULL, 'p'},
	    {"mode", required_argument, NULL, 'm'},    {"src-cidr", required_argument, NULL, 'c'},
	    {"seconds", required_argument, NULL, 's'}, {"rate", required_argument, NULL, 'r'},
	    {"count", required_argument, NULL, 'n'},   {"batch", required_argument, NULL, 'b'},
	    {"engine", required_argument, NULL, 'e'},  {0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->batch = 1024;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		parse_opt(c, o);
	if (optind != argc || !(o->ifindex || o->dev) || !o->have_dst_mac || !o->dst.s_addr ||
	    !o->port || !o->proto || !o->have_cidr || !o->seconds)
		usage();
}

/* The interface's index and, unless given, its MAC as the frames' source. */
static int ag_flood__resolve_dev(struct ag_flood_opts *o)
{
	struct ifreq ifr;
	int fd, err = 0;

	if (!o->ifindex) {
		o->ifindex = (int)if_nametoindex(o->dev);
		if (!o->ifindex)
			return -errno;
	}
	if (o->have_src_mac)
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	if (!if_indextoname((unsigned int)o->ifindex, ifr.ifr_name))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		err = -errno;
	else
		memcpy(o->src_mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	close(fd);
	return err;
}

/* The template (flood.h): stamped fields 0, checksums to match. Returns its length. */
static int ag_flood__build_frame(const struct ag_flood_opts *o, uint8_t *f)
{
	int l4_len = o->proto == IPPROTO_TCP ? AG_FLOOD_TCP_HLEN : 8 + AG_FLOOD_UDP_DATA;
	int ip_len = 20 + l4_len;
	uint8_t *ip = f + AG_FLOOD_L3, *l4 = f + AG_FLOOD_L4;

	memset(f, 0, AG_FLOOD_FRAME_MAX);
	memcpy(f, o->dst_mac, ETH_ALEN);
	memcpy(f + ETH_ALEN, o->src_mac, ETH_ALEN);
	ag_flood__put16(f + 12, ETH_P_IP);
	ip[0] = 0x45;
	ag_flood__put16(ip + 2, (uint16_t)ip_len);
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = (uint8_t)o->proto;
	memcpy(ip + 16, &o->dst, 4);
	ag_flood__put16(l4 + 2, o->port);
	if (o->proto == IPPROTO_TCP) {
		l4[12] = (AG_FLOOD_TCP_HLEN / 4) << 4;
		l4[13] = 0x02; /* SYN */
		ag_flood__put16(l4 + 14, 64240);
		l4[20] = 2; /* MSS */
		l4[21] = 4;
		ag_flood__put16(l4 + 22, FLOOD_TCP_MSS);
	} else {
		ag_flood__put16(l4 + 4, (uint16_t)l4_len);
		memcpy(l4 + 8, "ag-flood spoofed\r\n", AG_FLOOD_UDP_DATA);
	}
	ag_flood__put16(ip + 10, ag_raw__csum_fold(ag_raw__csum_partial(ip, 20, 0)));
	/* L4 over the pseudo-header: addresses (the source 0), protocol, length. */
	ag_flood__put16(
	    l4 + (o->proto == IPPROTO_TCP ? 16 : 6),
	    ag_raw__csum_fold(ag_raw__csum_partial(l4, (size_t)l4_len,
						   ag_raw__csum_partial(ip + 12, 8, 0) +
						       (uint32_t)o->proto + (uint32_t)l4_len)));
	return AG_FLOOD_L3 + ip_len;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ULL),
			      .tv_nsec = (long)(t % 1000000000ULL)};

	while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void ag_flood__pace_init(struct ag_flood_pace *p, const struct ag_flood_opts *o)
{
	memset(p, 0, sizeof(*p));
	p->start = p->base = mono_ns();
	p->end = p->start + (uint64_t)o->seconds * 1000000000ULL;
}

/*
 * Frames for the next syscall: 0 when done (--seconds, --count, a signal).
 * Paced, it first waits until the first of them is due at --rate since the
 * start (the run's others follow within a millisecond); a sender late by more than 100 ms restarts
 * the bucket rather than catching up in one burst.
 */
static uint64_t ag_flood__pace_next(struct ag_flood_pace *p, const struct ag_flood_opts *o,
				    uint64_t max)
{
	uint64_t n = (uint64_t)o->batch, now, due;

	if (o->rate && n > (uint64_t)o->rate / 1000) /* about one run a millisecond */
		n = o->rate >= 1000 ? (uint64_t)o->rate / 1000 : 1;
	if (n > max)
		n = max;
	for (;;) {
		now = mono_ns();
		if (stop || now >= p->end || (o->count && p->sent >= (uint64_t)o->count))
			return 0;
		if (o->count && n > (uint64_t)o->count - p->sent)
			n = (uint64_t)o->count - p->sent;
		if (!o->rate)
			return n;
		due = p->base + (p->sent - p->base_sent) * 1000000000ULL / (uint64_t)o->rate;
		if (now > due + 100000000ULL) {
			p->base = now;
			p->base_sent = p->sent;
		}
		if (due <= now || now > due + 100000000ULL)
			return n;
		sleep_until(due < p->end ? due : p->end);
	}
}

/* Live frames: flood.bpf.c stamps each frame and returns XDP_TX. */
static int ag_flood__run_live(const struct ag_flood_opts *o, struct ag_flood_bpf *skel,
			      const uint8_t *frame, int len, struct ag_flood_pace *p)
{
	struct xdp_md ctx = {.data_end = (__u32)len, .ingress_ifindex = (__u32)o->ifindex};
	int fd = bpf_program__fd(skel->progs.ag_flood), err;
	uint64_t n;

	while ((n = ag_flood__pace_next(p, o, UINT32_MAX))) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (__u32)len,
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = (__u32)n,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
			    .batch_size = n < FLOOD_KERN_BATCH ? (__u32)n : FLOOD_KERN_BATCH);

		err = bpf_prog_test_run_opts(fd, &opts);
		p->sent = skel->bss->stamped;
		p->errors = skel->bss->aborted;
		if (err && err != -EINTR)
			return err;
	}
	return 0;
}

/* The live engine's program, loaded with the template. NULL and errno on failure. */
static struct ag_flood_bpf *ag_flood__load(const struct ag_flood_opts *o, const uint8_t *frame,
					   int len)
{
	struct ag_flood_bpf *skel = ag_flood_bpf__open();
	int err;

	if (!skel)
		return NULL;
	memcpy(skel->bss->tmpl, frame, (size_t)len);
	skel->bss->tmpl_len = (__u32)len;
	skel->bss->src_base = o->src_base;
	skel->bss->src_host = o->src_host;
	skel->bss->proto = (__u32)o->proto;
	err = ag_flood_bpf__load(skel);
	if (err) {
		ag_flood_bpf__destroy(skel);
		errno = -err;
		return NULL;
	}
	return skel;
}

/* xorshift64*: random bits for the user-space stamp; no need for more. */
static uint32_t rand32(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint32_t)((*s * 0x2545F4914F6CDD1DULL) >> 32);
}

/* An AF_PACKET socket on the interface that hands frames straight to the driver. */
static int ag_flood__packet_open(const struct ag_flood_opts *o)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = o->ifindex};
	int fd, one = 1, sndbuf = 4 << 20;

	/* Protocol 0: this socket receives nothing. */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		one = -errno;
		close(fd);
		return one;
	}
	return fd;
}

/* AF_PACKET: stamp a batch in user space, sendmmsg() it; ENOBUFS counts as refused. */
static int ag_flood__run_packet(const struct ag_flood_opts *o, const uint8_t *frame, int len,
				struct ag_flood_pace *p)
{
	static uint8_t bufs[FLOOD_MAX_MMSG][AG_FLOOD_FRAME_MAX];
	static struct iovec iov[FLOOD_MAX_MMSG];
	static struct mmsghdr msg[FLOOD_MAX_MMSG];
	struct sockaddr_ll to = {.sll_family = AF_PACKET,
				 .sll_ifindex = o->ifindex,
				 .sll_protocol = htons(ETH_P_IP),
				 .sll_halen = ETH_ALEN};
	uint64_t seed = mono_ns() ^ ((uint64_t)getpid() << 32), n, i;
	int fd = ag_flood__packet_open(o), sent;

	if (fd < 0)
		return fd;
	memcpy(to.sll_addr, o->dst_mac, ETH_ALEN);
	for (i = 0; i < FLOOD_MAX_MMSG; i++) {
		iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = (size_t)len};
		msg[i].msg_hdr = (struct msghdr){.msg_name = &to,
						 .msg_namelen = sizeof(to),
						 .msg_iov = &iov[i],
						 .msg_iovlen = 1};
	}
	while ((n = ag_flood__pace_next(p, o, FLOOD_MAX_MMSG))) {
		for (i = 0; i < n; i++) {
			struct ag_flood_rand r = {rand32(&seed), rand32(&seed), rand32(&seed)};

			memcpy(bufs[i], frame, (size_t)len);
			ag_flood__stamp(bufs[i], o->proto == IPPROTO_TCP, o->src_base, o->src_host,
					&r);
		}
		sent = sendmmsg(fd, msg, (unsigned int)n, 0);
		if (sent < 0 && errno != ENOBUFS && errno != EINTR && errno != EAGAIN) {
			sent = -errno;
			close(fd);
			return sent;
		}
		p->sent += sent > 0 ? (uint64_t)sent : 0;
		p->errors += sent < (int)n ? 1 : 0; /* the frame that failed; the rest retried */
	}
	close(fd);
	return 0;
}

/* auto: live frames where the kernel allows them, else AF_PACKET (said on stderr). */
static int ag_flood__run(struct ag_flood_opts *o, const uint8_t *frame, int len,
			 struct ag_flood_pace *p)
{
	struct ag_flood_bpf *skel;
	int err;

	if (o->engine == ENGINE_PACKET)
		return ag_flood__run_packet(o, frame, len, p);
	skel = ag_flood__load(o, frame, len);
	if (skel) {
		err = ag_flood__run_live(o, skel, frame, len, p);
		ag_flood_bpf__destroy(skel);
	} else {
		err = errno ? -errno : -ENOMEM;
	}
	if (o->engine == ENGINE_LIVE || p->sent || (err != -EPERM && err != -EOPNOTSUPP)) {
		o->engine = ENGINE_LIVE;
		return err;
	}
	fprintf(stderr, "ag-flood: live frames refused (%s): using AF_PACKET\n", strerror(-err));
	o->engine = ENGINE_PACKET;
	ag_flood__pace_init(p, o);
	return ag_flood__run_packet(o, frame, len, p);
}

int main(int argc, char **argv)
{
	struct ag_flood_opts o;
	struct ag_flood_pace pace;
	uint8_t frame[AG_FLOOD_FRAME_MAX];
	double secs, pps;
	int len, err;

	parse_args(argc, argv, &o);
	err = ag_raw__check_netns();
	if (err) {
		fprintf(stderr,
			"ag-flood: refusing to run %s: floods go only into namespaces a "
			"test created (run it with ip netns exec)\n",
			ag_raw__netns_refusal(err));
		return 1;
	}
	err = ag_flood__resolve_dev(&o);
	if (err) {
		fprintf(stderr, "ag-flood: interface %s: %s\n", o.dev ? o.dev : "(by index)",
			strerror(-err));
		return 1;
	}
	len = ag_flood__build_frame(&o, frame);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	ag_flood__pace_init(&pace, &o);
	err = ag_flood__run(&o, frame, len, &pace);
	secs = (double)(mono_ns() - pace.start) / 1e9;
	pps = secs > 0 ? (double)pace.sent / secs : 0.0;
	printf("ag-flood: sent %llu packets in %.3f s: %.0f pps\n", (unsigned long long)pace.sent,
	       secs, pps);
	printf("flood mode=%s engine=%s packets=%llu seconds=%.3f pps=%.0f errors=%llu\n",
	       o.proto == IPPROTO_TCP ? "syn" : "udp", engine_names[o.engine],
	       (unsigned long long)pace.sent, secs, pps, (unsigned long long)pace.errors);
	if (err)
		fprintf(stderr, "ag-flood: %s engine: %s\n", engine_names[o.engine],
			strerror(-err));
	return err ? 1 : 0;
}
