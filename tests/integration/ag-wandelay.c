// SPDX-License-Identifier: BSD-3-Clause
/*
 * ag-wandelay: the lab's WAN. A transparent layer-2 bridge between two
 * interfaces that holds every frame for a configured one-way delay before it
 * leaves by the other side, so regions of the lab sit at real, different
 * round-trip times from the edge. (The lab's kernel has neither netem nor fq.)
 *
 *   ag-wandelay -a IF -b IF [--delay MS | --delay-ab MS --delay-ba MS]
 *               [--queue-frames N] [--queue-bytes N] [--stats FILE] [--rt-prio N]
 *
 * One AF_PACKET socket per interface (all protocols, promiscuous, blind to its
 * own transmissions). Frames of each direction wait in a FIFO in arrival
 * order and leave when the head is due; one timerfd is armed for the earliest
 * head of the two directions. Frames longer than the output link's MTU, reads
 * cut short, a full queue and refused sends are dropped and counted by reason.
 * A frame whose checksum the sending stack left to "hardware"
 * (CHECKSUM_PARTIAL, seen through the virtio-net header) gets it completed, as
 * a NIC would before the wire, and is counted as such.
 *
 * --rt-prio N runs it SCHED_FIFO at priority N: on a busy machine, a bridge
 * that waits for the CPU behind ordinary tasks sends frames late (measured: a
 * 20 ms RTT grew to 24 ms median, 40 ms max, beside four busy loops on two
 * cores; at SCHED_FIFO 1, 20.3 and 21.2), and a WAN's delay must not depend on
 * the load of the hosts around it.
 *
 * Prints "ready" on stdout once both sockets are bound. SIGUSR1 writes the
 * counters to the --stats file (atomically, by rename); SIGTERM/SIGINT end it
 * cleanly, printing the counters on stderr (and to the stats file).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <math.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define WD_BATCH	64
/* Receive batches per wake-up of one socket; the other socket waits meanwhile. */
#define WD_RX_ROUNDS	8
#define WD_QUEUE_FRAMES 65536
#define WD_QUEUE_BYTES	(64u << 20)
/* Queues start small and double when full: resident memory follows the deepest
 * backlog seen, not the limit. */
#define WD_QUEUE_MIN	256
#define WD_MAX_DELAY_MS 60000.0
/* veth (and Ethernet) accept MTU + header + one VLAN tag. */
#define WD_L2_OVERHEAD	(ETH_HLEN + 4)
#define WD_RCVBUF	(16 << 20)

enum wd_drop {
	WD_DROP_QUEUE,	  /* queue full (frames or bytes) */
	WD_DROP_OVERSIZE, /* longer than the output link allows */
	WD_DROP_TRUNC,	  /* read cut short: longer than the receive buffer */
	WD_DROP_CSUM,	  /* checksum to complete, but its offsets lie outside the frame */
	WD_DROP_TX,	  /* the output socket refused it */
	WD_DROP_N,
};

/* clang-format off */
static const char *const wd_drop_names[WD_DROP_N] = {
	[WD_DROP_QUEUE] = "queue",
	[WD_DROP_OVERSIZE] = "oversize",
	[WD_DROP_TRUNC] = "trunc",
	[WD_DROP_CSUM] = "csum",
	[WD_DROP_TX] = "tx",
};
/* clang-format on */

/* One direction: frames read from in_fd wait here, then leave by out_fd. */
struct wd_dir {
	const char *name; /* "ab" or "ba" */
	const char *in_if, *out_if;
	int in_fd, out_fd;
	uint64_t delay_ns;
	uint32_t max_frame; /* longest frame the output link takes */
	uint32_t slot;	    /* bytes per queue slot */

	/* FIFO ring of cap slots (a power of two); head is the oldest frame. */
	unsigned char *data;
	uint64_t *due;
	uint32_t *len;
	uint32_t cap, head, count;
	uint64_t bytes;

	uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
	uint64_t drops[WD_DROP_N];
	uint64_t csum_completed;
	uint32_t max_depth;
	uint64_t late_sum_ns, late_max_ns;
	int last_tx_errno;
};

static uint32_t queue_frames = WD_QUEUE_FRAMES;
static uint64_t queue_bytes = WD_QUEUE_BYTES;
static uint64_t start_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* Complete a checksum the sender left partial: the field at csum_start +
 * csum_offset holds the pseudo-header sum; fold in everything from csum_start. */
static int csum_complete(unsigned char *frame, uint32_t len, const struct virtio_net_hdr *vh)
{
	uint32_t start = vh->csum_start, field = (uint32_t)vh->csum_start + vh->csum_offset;
	uint64_t sum = 0;
	uint16_t res;
	uint32_t i;

	if (start >= len || field + 2 > len)
		return -EINVAL;
	for (i = start; i + 1 < len; i += 2)
		sum += (uint32_t)frame[i] << 8 | frame[i + 1];
	if (i < len)
		sum += (uint32_t)frame[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	res = ~sum & 0xffff;
	/* As the kernel's skb_checksum_help: 0 goes out as 0xffff (same value in
	 * ones' complement, and "no checksum" for UDP). */
	if (!res)
		res = 0xffff;
	frame[field] = res >> 8;
	frame[field + 1] = res & 0xff;
	return 0;
}

static int dir_grow(struct wd_dir *d)
{
	uint32_t ncap = d->cap ? d->cap * 2 : WD_QUEUE_MIN, i, from;
	unsigned char *data;
	uint64_t *due;
	uint32_t *len;

	if (ncap > queue_frames)
		ncap = queue_frames;
	if (ncap <= d->cap)
		return -ENOSPC;
	data = malloc((size_t)ncap * d->slot);
	due = malloc((size_t)ncap * sizeof(*due));
	len = malloc((size_t)ncap * sizeof(*len));
	if (!data || !due || !len) {
		free(data);
		free(due);
		free(len);
		return -ENOMEM;
	}
	/* Re-linearise: the oldest frame moves to slot 0. */
	for (i = 0; i < d->count; i++) {
		from = (d->head + i) & (d->cap - 1);
		memcpy(data + (size_t)i * d->slot, d->data + (size_t)from * d->slot, d->len[from]);
		due[i] = d->due[from];
		len[i] = d->len[from];
	}
	free(d->data);
	free(d->due);
	free(d->len);
	d->data = data;
	d->due = due;
	d->len = len;
	d->cap = ncap;
	d->head = 0;
	return 0;
}

static void dir_drop(struct wd_dir *d, enum wd_drop why)
{
	d->drops[why]++;
}

/* Read up to one batch from d->in_fd into the free slots after the tail.
 * Returns 1 when the batch was filled (more may wait), 0 when the socket ran
 * dry, or -errno. */
static int dir_rx_batch(struct wd_dir *d)
{
	static unsigned char scratch[WD_BATCH][2048];
	struct virtio_net_hdr vh[WD_BATCH];
	struct mmsghdr msg[WD_BATCH];
	struct iovec iov[WD_BATCH][2];
	uint32_t tail, room, n, i, w, flen;
	uint64_t now;
	int got, full = 0;

	if (d->count == d->cap && dir_grow(d) < 0)
		full = 1;
	tail = (d->head + d->count) & (d->cap - 1);
	room = full ? WD_BATCH : d->cap - d->count;
	if (!full && room > d->cap - tail)
		room = d->cap - tail; /* contiguous slots up to the end of the ring */
	n = room < WD_BATCH ? room : WD_BATCH;

	memset(msg, 0, sizeof(msg[0]) * n);
	for (i = 0; i < n; i++) {
		iov[i][0].iov_base = &vh[i];
		iov[i][0].iov_len = sizeof(vh[i]);
		/* A full queue still drains the socket, so drops are counted here
		 * rather than lost silently in the kernel's receive buffer. */
		iov[i][1].iov_base = full ? scratch[i] : d->data + (size_t)(tail + i) * d->slot;
		iov[i][1].iov_len = full ? sizeof(scratch[i]) : d->slot;
		msg[i].msg_hdr.msg_iov = iov[i];
		msg[i].msg_hdr.msg_iovlen = 2;
	}
	do
		got = recvmmsg(d->in_fd, msg, n, MSG_DONTWAIT | MSG_TRUNC, NULL);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return errno == EAGAIN ? 0 : -errno;
	now = now_ns();

	w = tail;
	for (i = 0; i < (uint32_t)got; i++) {
		uint32_t len = msg[i].msg_len;
		unsigned char *src = iov[i][1].iov_base;

		if (len < sizeof(vh[i]))
			continue; /* cannot happen with a vnet header; nothing to count */
		flen = len - sizeof(vh[i]);
		d->rx_frames++;
		d->rx_bytes += flen;
		if (full) {
			dir_drop(d, WD_DROP_QUEUE);
			continue;
		}
		if ((msg[i].msg_hdr.msg_flags & MSG_TRUNC) || flen > d->slot) {
			dir_drop(d, WD_DROP_TRUNC);
			continue;
		}
		if (flen > d->max_frame) {
			dir_drop(d, WD_DROP_OVERSIZE);
			continue;
		}
		if (d->bytes + flen > queue_bytes) {
			dir_drop(d, WD_DROP_QUEUE);
			continue;
		}
		if (vh[i].flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
			if (csum_complete(src, flen, &vh[i]) < 0) {
				dir_drop(d, WD_DROP_CSUM);
				continue;
			}
			d->csum_completed++;
		}
		/* A dropped frame left a hole: close it (rare, so a copy is fine). */
		if (src != d->data + (size_t)w * d->slot)
			memcpy(d->data + (size_t)w * d->slot, src, flen);
		d->due[w] = now + d->delay_ns;
		d->len[w] = flen;
		d->bytes += flen;
		d->count++;
		w++;
	}
	if (d->count > d->max_depth)
		d->max_depth = d->count;
	return (uint32_t)got == n;
}

/* Send every frame whose time has come, oldest first. */
static void dir_tx_due(struct wd_dir *d, uint64_t now)
{
	static struct virtio_net_hdr plain; /* no offloads: a finished frame */
	struct mmsghdr msg[WD_BATCH];
	struct iovec iov[WD_BATCH][2];
	uint32_t n, i, idx;
	int sent;

	while (d->count && d->due[d->head] <= now) {
		for (n = 0; n < WD_BATCH && n < d->count; n++) {
			idx = d->head + n;
			/* Stop at the ring's end so the batch stays contiguous. */
			if (idx >= d->cap || d->due[idx] > now)
				break;
			iov[n][0].iov_base = &plain;
			iov[n][0].iov_len = sizeof(plain);
			iov[n][1].iov_base = d->data + (size_t)idx * d->slot;
			iov[n][1].iov_len = d->len[idx];
			memset(&msg[n], 0, sizeof(msg[n]));
			msg[n].msg_hdr.msg_iov = iov[n];
			msg[n].msg_hdr.msg_iovlen = 2;
		}
		sent = sendmmsg(d->out_fd, msg, n, MSG_DONTWAIT);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			/* The head frame is refused (full or failing link): drop it, as
			 * a link with a full transmit queue would, and go on. */
			d->last_tx_errno = errno;
			dir_drop(d, WD_DROP_TX);
			sent = 1;
		} else {
			for (i = 0; i < (uint32_t)sent; i++) {
				uint64_t late = now - d->due[d->head + i];

				d->tx_frames++;
				d->tx_bytes += d->len[d->head + i];
				d->late_sum_ns += late;
				if (late > d->late_max_ns)
					d->late_max_ns = late;
			}
		}
		for (i = 0; i < (uint32_t)sent; i++)
			d->bytes -= d->len[d->head + i];
		d->head = (d->head + sent) & (d->cap - 1);
		d->count -= sent;
		now = now_ns();
	}
}

static void dir_print(FILE *f, const struct wd_dir *d)
{
	int i;

	fprintf(f,
		"dir=%s in=%s out=%s delay_us=%.1f rx_frames=%llu rx_bytes=%llu "
		"tx_frames=%llu tx_bytes=%llu queued=%u max_depth=%u csum_completed=%llu",
		d->name, d->in_if, d->out_if, d->delay_ns / 1e3, (unsigned long long)d->rx_frames,
		(unsigned long long)d->rx_bytes, (unsigned long long)d->tx_frames,
		(unsigned long long)d->tx_bytes, d->count, d->max_depth,
		(unsigned long long)d->csum_completed);
	for (i = 0; i < WD_DROP_N; i++)
		fprintf(f, " drop_%s=%llu", wd_drop_names[i], (unsigned long long)d->drops[i]);
	fprintf(f, " late_avg_us=%.1f late_max_us=%.1f",
		d->tx_frames ? d->late_sum_ns / 1e3 / d->tx_frames : 0.0, d->late_max_ns / 1e3);
	if (d->last_tx_errno)
		fprintf(f, " last_tx_error=\"%s\"", strerror(d->last_tx_errno));
	fputc('\n', f);
}

static void stats_print(FILE *f, const struct wd_dir *dirs)
{
	fprintf(f, "ag-wandelay pid=%d uptime_s=%.1f\n", (int)getpid(),
		(now_ns() - start_ns) / 1e9);
	dir_print(f, &dirs[0]);
	dir_print(f, &dirs[1]);
}

static int stats_write(const char *path, const struct wd_dir *dirs)
{
	char tmp[4096];
	FILE *f;
	int err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	stats_print(f, dirs);
	if (fclose(f) != 0)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* An AF_PACKET socket on IF that sees every frame arriving there (not the
 * ones it sends), with virtio-net headers. Sets *mtu. */
static int packet_open(const char *ifname, unsigned int *mtu)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL)};
	struct packet_mreq mr = {.mr_type = PACKET_MR_PROMISC};
	struct ifreq ifr = {0};
	int one = 1, buf = WD_RCVBUF, fd, ifindex;

	ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		fprintf(stderr, "ag-wandelay: interface %s: %s\n", ifname, strerror(errno));
		return -1;
	}
	/* Protocol 0 at first: no frame of any other interface is queued before
	 * bind() narrows the socket to this one. */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("ag-wandelay: socket(AF_PACKET)");
		return -1;
	}
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0) {
		fprintf(stderr, "ag-wandelay: %s: packet options: %s\n", ifname, strerror(errno));
		goto err;
	}
	/* Room for bursts while the loop is busy with the other direction. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	sll.sll_ifindex = ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fprintf(stderr, "ag-wandelay: bind to %s: %s\n", ifname, strerror(errno));
		goto err;
	}
	mr.mr_ifindex = ifindex;
	if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
		fprintf(stderr, "ag-wandelay: %s: promiscuous mode: %s\n", ifname, strerror(errno));
		goto err;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFMTU, &ifr) < 0) {
		fprintf(stderr, "ag-wandelay: %s: MTU: %s\n", ifname, strerror(errno));
		goto err;
	}
	*mtu = ifr.ifr_mtu;
	return fd;
err:
	close(fd);
	return -1;
}

static int parse_ms(const char *s, uint64_t *ns)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > WD_MAX_DELAY_MS) {
		fprintf(stderr, "ag-wandelay: bad delay '%s': milliseconds, 0 to %.0f\n", s,
			WD_MAX_DELAY_MS);
		return -EINVAL;
	}
	*ns = llround(v * 1e6);
	return 0;
}

static int parse_count(const char *s, unsigned long long min, unsigned long long max,
		       unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *out < min || *out > max) {
		fprintf(stderr, "ag-wandelay: bad number '%s' (%llu to %llu)\n", s, min, max);
		return -EINVAL;
	}
	return 0;
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: ag-wandelay -a IF -b IF [--delay MS | --delay-ab MS --delay-ba MS]\n"
	    "                   [--queue-frames N] [--queue-bytes N] [--stats FILE] [--rt-prio N]\n"
	    "  Bridges IF a and IF b, holding each frame for the one-way delay of its\n"
	    "  direction (milliseconds, fractions allowed; 0 forwards at once).\n"
	    "  Queues: at most N frames (power of two, default %u) and N bytes\n"
	    "  (default %u) per direction. SIGUSR1 writes counters to FILE.\n"
	    "  --rt-prio N: run SCHED_FIFO at priority N (1-99), so load elsewhere\n"
	    "  does not delay frames further.\n",
	    WD_QUEUE_FRAMES, WD_QUEUE_BYTES);
	exit(2);
}

static void arm_timer(int tfd, const struct wd_dir *dirs, uint64_t *armed)
{
	struct itimerspec its = {0};
	uint64_t next = 0;
	int i;

	for (i = 0; i < 2; i++) {
		if (!dirs[i].count)
			continue;
		if (!next || dirs[i].due[dirs[i].head] < next)
			next = dirs[i].due[dirs[i].head];
	}
	/* A timer armed for an earlier head that has left fires early: harmless. */
	if (!next || next == *armed)
		return;
	its.it_value.tv_sec = next / 1000000000u;
	its.it_value.tv_nsec = next % 1000000000u;
	if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		*armed = next;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"iface-a", required_argument, NULL, 'a'},
	    {"iface-b", required_argument, NULL, 'b'},
	    {"delay", required_argument, NULL, 'd'},
	    {"delay-ab", required_argument, NULL, 'A'},
	    {"delay-ba", required_argument, NULL, 'B'},
	    {"queue-frames", required_argument, NULL, 'F'},
	    {"queue-bytes", required_argument, NULL, 'Q'},
	    {"stats", required_argument, NULL, 's'},
	    {"rt-prio", required_argument, NULL, 'R'},
	    {0},
	};
	struct wd_dir dirs[2] = {{.name = "ab"}, {.name = "ba"}};
	const char *if_a = NULL, *if_b = NULL, *stats = NULL;
	uint64_t delay_ab = 0, delay_ba = 0, armed = 0;
	int c, i, fd_a = -1, fd_b = -1, ep = -1, tfd = -1, sfd = -1, rc = 1;
	int have_both = 0, have_ab = 0, have_ba = 0, stop = 0, rt_prio = 0;
	unsigned int mtu_a, mtu_b;
	unsigned long long v;
	struct epoll_event ev;
	sigset_t sigs;

	while ((c = getopt_long(argc, argv, "a:b:", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if_a = optarg;
			break;
		case 'b':
			if_b = optarg;
			break;
		case 'd':
			if (parse_ms(optarg, &delay_ab) < 0)
				return 2;
			delay_ba = delay_ab;
			have_both = 1;
			break;
		case 'A':
			if (parse_ms(optarg, &delay_ab) < 0)
				return 2;
			have_ab = 1;
			break;
		case 'B':
			if (parse_ms(optarg, &delay_ba) < 0)
				return 2;
			have_ba = 1;
			break;
		case 'F':
			if (parse_count(optarg, WD_QUEUE_MIN, 1u << 24, &v) < 0)
				return 2;
			if (v & (v - 1)) {
				fprintf(stderr,
					"ag-wandelay: --queue-frames %llu: not a power of two\n",
					v);
				return 2;
			}
			queue_frames = v;
			break;
		case 'Q':
			if (parse_count(optarg, 65536, 1ull << 32, &v) < 0)
				return 2;
			queue_bytes = v;
			break;
		case 's':
			stats = optarg;
			break;
		case 'R':
			if (parse_count(optarg, 1, 99, &v) < 0)
				return 2;
			rt_prio = v;
			break;
		default:
			usage();
		}
	}
	if (!if_a || !if_b || optind != argc)
		usage();
	if (have_both && (have_ab || have_ba)) {
		fprintf(stderr, "ag-wandelay: --delay or --delay-ab/--delay-ba, not both\n");
		return 2;
	}
	if (have_ab != have_ba) {
		fprintf(stderr, "ag-wandelay: --delay-ab and --delay-ba go together\n");
		return 2;
	}
	if (!strcmp(if_a, if_b)) {
		fprintf(stderr, "ag-wandelay: -a and -b name the same interface %s\n", if_a);
		return 2;
	}

	/* Signals arrive as events of the loop, never as handlers. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	/* Timer wake-ups at the requested instant, not up to 50 us later. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if (rt_prio) {
		struct sched_param sp = {.sched_priority = rt_prio};

		/* Not fatal: the bridge still works, only less precisely. */
		if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
			fprintf(stderr,
				"ag-wandelay: warning: SCHED_FIFO %d refused (%s): "
				"normal scheduling, frames may leave late under load\n",
				rt_prio, strerror(errno));
	}

	fd_a = packet_open(if_a, &mtu_a);
	if (fd_a < 0)
		goto out;
	fd_b = packet_open(if_b, &mtu_b);
	if (fd_b < 0)
		goto out;
	dirs[0] = (struct wd_dir){.name = "ab",
				  .in_if = if_a,
				  .out_if = if_b,
				  .in_fd = fd_a,
				  .out_fd = fd_b,
				  .delay_ns = delay_ab,
				  .max_frame = mtu_b + WD_L2_OVERHEAD};
	dirs[1] = (struct wd_dir){.name = "ba",
				  .in_if = if_b,
				  .out_if = if_a,
				  .in_fd = fd_b,
				  .out_fd = fd_a,
				  .delay_ns = delay_ba,
				  .max_frame = mtu_a + WD_L2_OVERHEAD};
	for (i = 0; i < 2; i++) {
		/* Slots fit the longest frame either link takes, rounded to cache
		 * lines; anything longer arrives truncated and is dropped. */
		uint32_t m = mtu_a > mtu_b ? mtu_a : mtu_b;

		dirs[i].slot = (m + WD_L2_OVERHEAD + 63) & ~63u;
		if (dirs[i].slot > 2048) {
			fprintf(stderr, "ag-wandelay: MTU %u is too large (at most %d)\n", m,
				2048 - WD_L2_OVERHEAD);
			goto out;
		}
		if (dir_grow(&dirs[i]) < 0) {
			fprintf(stderr, "ag-wandelay: out of memory\n");
			goto out;
		}
	}

	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (ep < 0 || tfd < 0 || sfd < 0) {
		perror("ag-wandelay: epoll/timerfd/signalfd");
		goto out;
	}
	ev.events = EPOLLIN;
	ev.data.u32 = 0;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd_a, &ev) < 0)
		goto epoll_err;
	ev.data.u32 = 1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd_b, &ev) < 0)
		goto epoll_err;
	ev.data.u32 = 2;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0)
		goto epoll_err;
	ev.data.u32 = 3;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0)
		goto epoll_err;

	start_ns = now_ns();
	printf("ready %s<->%s delay_ab_us=%.1f delay_ba_us=%.1f mtu=%u/%u sched=%s\n", if_a, if_b,
	       delay_ab / 1e3, delay_ba / 1e3, mtu_a, mtu_b,
	       sched_getscheduler(0) == SCHED_FIFO ? "fifo" : "other");
	fflush(stdout);

	while (!stop) {
		struct epoll_event evs[4];
		int n, k, r;

		n = epoll_wait(ep, evs, 4, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("ag-wandelay: epoll_wait");
			goto out;
		}
		for (k = 0; k < n; k++) {
			uint32_t id = evs[k].data.u32;

			if (id < 2) {
				for (i = 0; i < WD_RX_ROUNDS; i++) {
					r = dir_rx_batch(&dirs[id]);
					if (r < 0) {
						fprintf(stderr, "ag-wandelay: receive on %s: %s\n",
							dirs[id].in_if, strerror(-r));
						goto out;
					}
					/* Due frames leave between batches: a flood in
					 * one direction must not make the other late. */
					dir_tx_due(&dirs[0], now_ns());
					dir_tx_due(&dirs[1], now_ns());
					if (r == 0)
						break;
				}
			} else if (id == 2) {
				uint64_t expirations;

				if (read(tfd, &expirations, sizeof(expirations)) > 0)
					armed = 0;
			} else {
				struct signalfd_siginfo si;

				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo != SIGUSR1) {
						stop = 1;
					} else if (stats) {
						r = stats_write(stats, dirs);
						if (r < 0)
							fprintf(stderr, "ag-wandelay: %s: %s\n",
								stats, strerror(-r));
					}
				}
			}
		}
		dir_tx_due(&dirs[0], now_ns());
		dir_tx_due(&dirs[1], now_ns());
		arm_timer(tfd, dirs, &armed);
	}
	rc = 0;
	stats_print(stderr, dirs);
	if (stats)
		stats_write(stats, dirs);
	goto out;
epoll_err:
	perror("ag-wandelay: epoll_ctl");
out:
	for (i = 0; i < 2; i++) {
		free(dirs[i].data);
		free(dirs[i].due);
		free(dirs[i].len);
	}
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	if (ep >= 0)
		close(ep);
	if (fd_b >= 0)
		close(fd_b);
	if (fd_a >= 0)
		close(fd_a);
	return rc;
}
