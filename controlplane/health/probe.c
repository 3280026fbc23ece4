/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The probe engine. Targets live in an array sorted by id (queries are a
 * binary search); each is in a min-heap keyed by the next thing it waits for:
 * its next start when idle, its deadline while a probe is in flight. One
 * timerfd is armed at the heap's top. A probe holds a slot: a socket, its
 * ag_ev and the HTTP parser. Slots are allocated once and never freed before
 * the engine, because epoll may still hold an event for a slot whose probe
 * just ended in the same batch: every handler therefore acts on what its
 * syscalls say (EAGAIN, ENOTCONN) and treats the event itself only as a hint.
 */
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

#define NS_PER_MS	1000000ull
/* File descriptors left to the rest of the daemon before probe sockets get theirs. */
#define FD_RESERVE	256
/* Reads per readiness event, so one chatty server cannot starve the loop. */
#define READS_PER_EVENT 16
#define REASON_MAX	96
#define NOT_IN_HEAP	UINT32_MAX
/*
 * Starts due within this much of now are taken in the same timer wake-up:
 * with thousands of targets starts are tens of microseconds apart, and one
 * wake-up each would cost more than the probes.
 */
#define START_SLACK_NS	(250 * 1000ull)
/*
 * Starts per timer wake-up, at most. When the loop falls behind, a wake-up
 * must not start every overdue probe before the results of earlier ones are
 * read (the loop hands out 64 events per round): probes would then pile up in
 * flight and time out on our own delay.
 */
#define STARTS_PER_WAKE 32

/* What a target's check needs, copied out of the config (which a reload frees). */
struct check {
	enum ag_hc_proto proto;
	uint16_t status_min;
	uint16_t status_max;
	uint32_t interval_ms;
	uint32_t timeout_ms;
	uint8_t rise;
	uint8_t fall;
	char *path;    /* HTTP, "/" by default */
	char *host;    /* HTTP Host as configured, NULL = the address */
	char *send;    /* UDP payload, NULL = empty datagram */
	char *expect;  /* UDP reply prefix, NULL = any reply */
	char *request; /* HTTP request bytes */
	size_t request_len;
	size_t send_len;
	size_t expect_len;
};

enum phase { PH_CONNECTING, PH_SENDING, PH_READING };

struct target;

struct slot {
	struct ag_ev ev;
	struct ag_prober *p;
	struct target *t; /* NULL: free */
	struct slot *next_free;
	enum phase phase;
	uint64_t due_ns;
	uint64_t start_ns;
	uint64_t rtt_ns;
	uint64_t sent_rt_ns; /* UDP: CLOCK_REALTIME of the send, to match the kernel's stamp */
	size_t sent;
	struct ag_http_resp http;
};

struct target {
	uint32_t id;
	uint32_t addr;
	uint16_t port;
	bool up;
	uint8_t n_ok;	/* consecutive successes */
	uint8_t n_fail; /* consecutive failures */
	bool queued;	/* waiting for a slot (not in the heap) */
	struct check chk;
	char *label;
	uint64_t counts[AG_PROBE__MAX];
	uint64_t srtt_ns;
	uint64_t rtt[AG_PROBE_RTT_SAMPLES]; /* ring, rtt_next is the oldest once full */
	unsigned int n_rtt;
	unsigned int rtt_next;
	uint64_t next_ns; /* next scheduled start */
	uint64_t key_ns;  /* heap key */
	uint32_t heap_idx;
	uint64_t queued_due_ns;
	struct target *qnext;
	struct slot *slot; /* probe in flight */
	char reason[REASON_MAX];
};

struct ag_prober {
	struct ag_loop *loop;
	struct ag_timer timer;
	uint64_t armed_ns; /* 0: disarmed */
	ag_probe_change_cb change_cb;
	void *change_ctx;
	ag_probe_result_cb result_cb;
	void *result_ctx;

	struct target **targets; /* sorted by id */
	unsigned int n_targets;
	struct target **heap;
	unsigned int n_heap;
	struct target *qhead, *qtail;

	struct slot **slots; /* every slot ever allocated */
	unsigned int n_slots;
	unsigned int cap_slots;
	struct slot *free_slots;
	unsigned int max_inflight;
	uint64_t last_warn_ns;
	struct ag_prober_stats st;
};

static const char *const result_names[AG_PROBE__MAX] = {
    [AG_PROBE_OK] = "ok",
    [AG_PROBE_TIMEOUT] = "timeout",
    [AG_PROBE_REFUSED] = "refused",
    [AG_PROBE_UNREACHABLE] = "unreachable",
    [AG_PROBE_BAD_STATUS] = "bad_status",
    [AG_PROBE_BAD_REPLY] = "bad_reply",
    [AG_PROBE_ERROR] = "error",
};

const char *ag_probe_result__name(enum ag_probe_result r)
{
	return (unsigned int)r < AG_PROBE__MAX ? result_names[r] : "unknown";
}

/* ------------------------------------------------------------------------ */
/* heap of targets by key_ns                                                 */

static void heap_set(struct ag_prober *p, uint32_t i, struct target *t)
{
	p->heap[i] = t;
	t->heap_idx = i;
}

static void heap_up(struct ag_prober *p, uint32_t i)
{
	struct target *t = p->heap[i];

	while (i) {
		uint32_t parent = (i - 1) / 2;

		if (p->heap[parent]->key_ns <= t->key_ns)
			break;
		heap_set(p, i, p->heap[parent]);
		i = parent;
	}
	heap_set(p, i, t);
}

static void heap_down(struct ag_prober *p, uint32_t i)
{
	struct target *t = p->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= p->n_heap)
			break;
		if (c + 1 < p->n_heap && p->heap[c + 1]->key_ns < p->heap[c]->key_ns)
			c++;
		if (t->key_ns <= p->heap[c]->key_ns)
			break;
		heap_set(p, i, p->heap[c]);
		i = c;
	}
	heap_set(p, i, t);
}

/* The heap has room for every target (sized in set_targets). */
static void heap_push(struct ag_prober *p, struct target *t)
{
	heap_set(p, p->n_heap++, t);
	heap_up(p, t->heap_idx);
}

static void heap_remove(struct ag_prober *p, struct target *t)
{
	uint32_t i = t->heap_idx;
	struct target *last;

	if (i == NOT_IN_HEAP)
		return;
	t->heap_idx = NOT_IN_HEAP;
	last = p->heap[--p->n_heap];
	if (last == t)
		return;
	heap_set(p, i, last);
	heap_up(p, i);
	heap_down(p, last->heap_idx);
}

static void heap_rekey(struct ag_prober *p, struct target *t, uint64_t key_ns)
{
	t->key_ns = key_ns;
	if (t->heap_idx == NOT_IN_HEAP) {
		heap_push(p, t);
		return;
	}
	heap_up(p, t->heap_idx);
	heap_down(p, t->heap_idx);
}

/*
 * Arm the one timerfd at the heap's top (absolute: no drift from our own
 * delays). A timer already set to fire earlier is left alone: it wakes us a
 * little early at worst, which costs less than a timerfd_settime for every
 * probe that ends.
 */
static void rearm(struct ag_prober *p)
{
	struct itimerspec its = {0};
	uint64_t at = p->n_heap ? p->heap[0]->key_ns : 0;

	if (at == p->armed_ns || (at && p->armed_ns && p->armed_ns < at))
		return;
	its.it_value.tv_sec = at / 1000000000ull;
	its.it_value.tv_nsec = at % 1000000000ull;
	if (timerfd_settime(p->timer.ev.fd, TFD_TIMER_ABSTIME, &its, NULL)) {
		pr_err("probe: cannot arm the probe timer: %s\n", strerror(errno));
		return;
	}
	p->armed_ns = at;
}

/* ------------------------------------------------------------------------ */
/* results and state                                                         */

static void record_rtt(struct target *t, uint64_t rtt_ns)
{
	if (!rtt_ns)
		rtt_ns = 1; /* 0 means "no sample" to callers; a loopback can be that fast */
	/* RFC 6298 section 2: the first sample sets SRTT, later ones move it by 1/8. */
	t->srtt_ns = t->n_rtt ? (7 * t->srtt_ns + rtt_ns) / 8 : rtt_ns;
	t->rtt[t->rtt_next] = rtt_ns;
	t->rtt_next = (t->rtt_next + 1) % AG_PROBE_RTT_SAMPLES;
	if (t->n_rtt < AG_PROBE_RTT_SAMPLES)
		t->n_rtt++;
}

/* Rise/fall. Returns true when the state changed. */
static bool apply_verdict(struct target *t, bool ok)
{
	if (ok) {
		t->n_fail = 0;
		if (t->n_ok < UINT8_MAX)
			t->n_ok++;
		if (!t->up && t->n_ok >= t->chk.rise) {
			t->up = true;
			return true;
		}
	} else {
		t->n_ok = 0;
		if (t->n_fail < UINT8_MAX)
			t->n_fail++;
		if (t->up && t->n_fail >= t->chk.fall) {
			t->up = false;
			return true;
		}
	}
	return false;
}

static void release_slot(struct ag_prober *p, struct slot *s)
{
	if (s->ev.fd >= 0) {
		ag_loop__del(p->loop, &s->ev);
		close(s->ev.fd);
		s->ev.fd = -1;
	}
	s->t->slot = NULL;
	s->t = NULL;
	s->next_free = p->free_slots;
	p->free_slots = s;
	p->st.inflight--;
}

/* Move past every scheduled start that is not in the future, keeping the phase. */
static void advance_schedule(struct target *t, uint64_t now)
{
	uint64_t iv = (uint64_t)t->chk.interval_ms * NS_PER_MS;

	if (t->next_ns <= now)
		t->next_ns += ((now - t->next_ns) / iv + 1) * iv;
}

/*
 * A probe of t ended (or could not start). verdict false: a local failure that
 * says nothing about the target. Reschedules t, then tells the callbacks.
 */
static void finish(struct ag_prober *p, struct target *t, enum ag_probe_result res, bool verdict,
		   uint64_t now)
{
	struct slot *s = t->slot;
	struct ag_probe_report rep = {
	    .id = t->id,
	    .result = res,
	    .verdict = verdict,
	    .due_ns = s ? s->due_ns : now,
	    .start_ns = s ? s->start_ns : now,
	    .done_ns = now,
	    .reason = t->reason,
	};
	bool changed = false;

	if (s) {
		if (res == AG_PROBE_OK)
			rep.rtt_ns = s->rtt_ns ? s->rtt_ns : 1;
		release_slot(p, s);
	}
	t->counts[res]++;
	if (verdict) {
		if (res == AG_PROBE_OK)
			record_rtt(t, rep.rtt_ns);
		changed = apply_verdict(t, res == AG_PROBE_OK);
	} else if (now - p->last_warn_ns >= 1000 * NS_PER_MS || !p->last_warn_ns) {
		/* Rate-limited: when this happens it tends to happen to every probe at once. */
		p->last_warn_ns = now;
		pr_warn("probe: endpoint %s:%u not probed: %s (not counted toward its health)\n",
			t->label, t->port, t->reason);
	}
	/* Due already (a timeout as long as the interval): the timer starts it at once. */
	heap_rekey(p, t, t->next_ns);

	if (changed) {
		if (t->up) {
			char rtt[32] = "";

			if (res == AG_PROBE_OK)
				snprintf(rtt, sizeof(rtt), ", rtt %.2f ms",
					 (double)rep.rtt_ns / NS_PER_MS);
			pr_info("endpoint %s:%u up: %s (%u of %u succeeded%s)\n", t->label, t->port,
				t->reason, t->n_ok, t->chk.rise, rtt);
		} else {
			pr_info("endpoint %s:%u down: %s (%u of %u failed)\n", t->label, t->port,
				t->reason, t->n_fail, t->chk.fall);
		}
		if (p->change_cb)
			p->change_cb(p->change_ctx, t->id, t->up, t->reason, now);
	}
	if (p->result_cb)
		p->result_cb(p->result_ctx, &rep);
}

/* errno of a failed connect/send/recv -> result and reason. */
static enum ag_probe_result classify_errno(int err, char *reason, bool *verdict)
{
	*verdict = true;
	switch (err) {
	case ECONNREFUSED:
		snprintf(reason, REASON_MAX, "connection refused");
		return AG_PROBE_REFUSED;
	case EHOSTUNREACH:
	case EHOSTDOWN:
		snprintf(reason, REASON_MAX, "no route to host");
		return AG_PROBE_UNREACHABLE;
	case ENETUNREACH:
	case ENETDOWN:
		snprintf(reason, REASON_MAX, "no route: network unreachable");
		return AG_PROBE_UNREACHABLE;
	case ETIMEDOUT:
		snprintf(reason, REASON_MAX, "connection timed out");
		return AG_PROBE_TIMEOUT;
	case ECONNRESET:
	case EPIPE:
		snprintf(reason, REASON_MAX, "connection reset");
		return AG_PROBE_ERROR;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
	case EADDRNOTAVAIL: /* no free local port */
	case EAGAIN:
		*verdict = false;
		snprintf(reason, REASON_MAX, "local error: %s", strerror(err));
		return AG_PROBE_ERROR;
	}
	snprintf(reason, REASON_MAX, "error: %s", strerror(err));
	return AG_PROBE_ERROR;
}

static void fail_errno(struct ag_prober *p, struct target *t, int err, uint64_t now)
{
	bool verdict;
	enum ag_probe_result res = classify_errno(err, t->reason, &verdict);

	finish(p, t, res, verdict, now);
}

/* ------------------------------------------------------------------------ */
/* the checks                                                                */

static void http_read(struct ag_prober *p, struct slot *s, uint64_t now)
{
	struct target *t = s->t;
	char buf[4096];
	int i;

	for (i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = recv(s->ev.fd, buf, sizeof(buf), 0);
		enum ag_http_state st;

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			fail_errno(p, t, errno, now);
			return;
		}
		/* On EOF the parser completes a close-delimited body or reports the cut. */
		st = n ? ag_http__feed(&s->http, buf, (size_t)n, NULL) : ag_http__eof(&s->http);
		if (st == AG_HTTP_MORE)
			continue;
		if (st == AG_HTTP_ERROR) {
			snprintf(t->reason, REASON_MAX, "bad reply: %s",
				 s->http.error ? s->http.error : "unparsable");
			finish(p, t, AG_PROBE_BAD_REPLY, true, now);
			return;
		}
		snprintf(t->reason, REASON_MAX, "status %d", s->http.status);
		finish(p, t,
		       s->http.status >= t->chk.status_min && s->http.status <= t->chk.status_max
			   ? AG_PROBE_OK
			   : AG_PROBE_BAD_STATUS,
		       true, now);
		return;
	}
}

static void http_send(struct ag_prober *p, struct slot *s, uint64_t now)
{
	struct target *t = s->t;
	int err;

	while (s->sent < t->chk.request_len) {
		ssize_t n = send(s->ev.fd, t->chk.request + s->sent, t->chk.request_len - s->sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return; /* EPOLLOUT still armed */
			fail_errno(p, t, errno, now);
			return;
		}
		s->sent += (size_t)n;
	}
	s->phase = PH_READING;
	err = ag_loop__mod(p->loop, &s->ev, EPOLLIN);
	if (err) {
		fail_errno(p, t, -err, now);
		return;
	}
	/* The answer may be there already (level-triggered epoll would also say so). */
	http_read(p, s, now);
}

/* TCP and HTTP: the connect finished, or did it? */
static void tcp_connected(struct ag_prober *p, struct slot *s, uint64_t now)
{
	struct target *t = s->t;
	struct tcp_info ti;
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(s->ev.fd, SOL_SOCKET, SO_ERROR, &err, &len))
		err = errno;
	if (err) {
		fail_errno(p, t, err, now);
		return;
	}
	len = sizeof(ti);
	if (getsockopt(s->ev.fd, IPPROTO_TCP, TCP_INFO, &ti, &len)) {
		fail_errno(p, t, errno, now);
		return;
	}
	/* Still in SYN_SENT (an event meant for an earlier socket in this slot): wait. */
	if (ti.tcpi_state == TCP_SYN_SENT)
		return;
	/*
	 * The kernel's own SYN -> SYN-ACK sample (first RTT sample of the
	 * connection, in us) does not include how late this loop noticed;
	 * without one (SYN retransmitted, no timestamps) use our clock.
	 */
	s->rtt_ns = ti.tcpi_rtt ? (uint64_t)ti.tcpi_rtt * 1000 : now - s->start_ns;
	if (t->chk.proto == AG_HC_TCP) {
		snprintf(t->reason, REASON_MAX, "connected");
		finish(p, t, AG_PROBE_OK, true, now);
		return;
	}
	s->phase = PH_SENDING;
	http_send(p, s, now);
}

static uint64_t timespec_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static void udp_read(struct ag_prober *p, struct slot *s, uint64_t now)
{
	struct target *t = s->t;
	char buf[512], cbuf[CMSG_SPACE(sizeof(struct timespec))];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr msg = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cbuf,
	    .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	uint64_t arrived_rt = 0;
	ssize_t n = recvmsg(s->ev.fd, &msg, MSG_DONTWAIT);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			fail_errno(p, t, errno, now); /* ICMP port unreachable: ECONNREFUSED */
		return;
	}
	if ((size_t)n < t->chk.expect_len ||
	    (t->chk.expect_len && memcmp(buf, t->chk.expect, t->chk.expect_len))) {
		snprintf(t->reason, REASON_MAX, "reply mismatch");
		finish(p, t, AG_PROBE_BAD_REPLY, true, now);
		return;
	}
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;

			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			arrived_rt = timespec_ns(&ts);
		}
	/* The kernel's arrival stamp (realtime, like sent_rt) keeps our lateness out. */
	if (arrived_rt > s->sent_rt_ns && s->sent_rt_ns)
		s->rtt_ns = arrived_rt - s->sent_rt_ns;
	else
		s->rtt_ns = now - s->start_ns;
	snprintf(t->reason, REASON_MAX, "reply ok");
	finish(p, t, AG_PROBE_OK, true, now);
}

static void slot_ready(struct ag_ev *ev, uint32_t events);

static void run_pending(struct ag_prober *p);

static void slot_event(struct ag_prober *p, struct slot *s, uint64_t now)
{
	if (s->t->chk.proto == AG_HC_UDP) {
		udp_read(p, s, now);
		return;
	}
	switch (s->phase) {
	case PH_CONNECTING:
		tcp_connected(p, s, now);
		break;
	case PH_SENDING:
		http_send(p, s, now);
		break;
	case PH_READING:
		http_read(p, s, now);
		break;
	}
}

static void slot_ready(struct ag_ev *ev, uint32_t events)
{
	struct slot *s = ev->data;
	struct ag_prober *p = s->p;
	uint64_t now = ag_now_ns();

	if (!s->t)
		return; /* the probe ended earlier in this batch of events */
	slot_event(p, s, now);
	run_pending(p);
}

static struct slot *get_slot(struct ag_prober *p)
{
	struct slot *s = p->free_slots;

	if (s) {
		p->free_slots = s->next_free;
		return s;
	}
	if (p->n_slots >= p->max_inflight)
		return NULL;
	if (p->n_slots == p->cap_slots) {
		unsigned int cap = p->cap_slots ? 2 * p->cap_slots : 64;
		struct slot **slots = realloc(p->slots, cap * sizeof(struct slot *));

		if (!slots)
			return NULL;
		p->slots = slots;
		p->cap_slots = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	p->slots[p->n_slots++] = s;
	s->p = p;
	s->ev.fd = -1;
	s->ev.cb = slot_ready;
	s->ev.data = s;
	return s;
}

/* Start t's probe in slot s. Ends in finish() at once if it cannot start. */
static void start_probe(struct ag_prober *p, struct target *t, struct slot *s, uint64_t due_ns)
{
	struct sockaddr_in sa = {
	    .sin_family = AF_INET,
	    .sin_port = htons(t->port),
	    .sin_addr.s_addr = t->addr,
	};
	bool udp = t->chk.proto == AG_HC_UDP;
	int fd, err;

	s->t = t;
	t->slot = s;
	s->due_ns = due_ns;
	s->phase = PH_CONNECTING;
	s->sent = 0;
	s->rtt_ns = 0;
	s->sent_rt_ns = 0;
	if (t->chk.proto == AG_HC_HTTP)
		ag_http__init(&s->http, false);
	p->st.inflight++;
	if (p->st.inflight > p->st.peak_inflight)
		p->st.peak_inflight = p->st.inflight;
	p->st.started++;
	s->start_ns = ag_now_ns();
	heap_rekey(p, t, s->start_ns + (uint64_t)t->chk.timeout_ms * NS_PER_MS);

	fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fail_errno(p, t, errno, s->start_ns);
		return;
	}
	s->ev.fd = fd;
	if (!udp) {
		/*
		 * Close with a RST rather than a FIN: at thousands of probes a second
		 * TIME_WAIT sockets would pile up here and use up the local ports
		 * toward each backend (HAProxy closes its checks the same way).
		 */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		fail_errno(p, t, errno, ag_now_ns());
		return;
	}
	if (udp) {
		int one = 1;
		struct timespec rt;
		ssize_t n;

		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
		clock_gettime(CLOCK_REALTIME, &rt);
		s->sent_rt_ns = timespec_ns(&rt);
		n = send(fd, t->chk.send ? t->chk.send : "", t->chk.send_len,
			 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			fail_errno(p, t, errno, ag_now_ns());
			return;
		}
		s->phase = PH_READING;
	}
	err = ag_loop__add(p->loop, &s->ev, udp ? EPOLLIN : EPOLLOUT);
	if (err)
		fail_errno(p, t, -err, ag_now_ns());
	/* Level-triggered: a connect that completed at once is reported by the loop. */
}

/* A due target: start it, or queue it for a slot. */
static void due(struct ag_prober *p, struct target *t, uint64_t now)
{
	uint64_t due_ns = t->next_ns;
	struct slot *s;

	/* At least one interval on (the start may be a little early: START_SLACK_NS). */
	t->next_ns += (uint64_t)t->chk.interval_ms * NS_PER_MS;
	advance_schedule(t, now);
	s = get_slot(p);
	if (s) {
		start_probe(p, t, s, due_ns);
		return;
	}
	if (!p->st.deferred || now - p->last_warn_ns >= 1000 * NS_PER_MS) {
		p->last_warn_ns = now;
		pr_warn("probe: %u probe sockets in flight (the cap): probes wait for a slot\n",
			p->st.inflight);
	}
	p->st.deferred++;
	heap_remove(p, t);
	t->queued = true;
	t->queued_due_ns = due_ns;
	t->qnext = NULL;
	if (p->qtail)
		p->qtail->qnext = t;
	else
		p->qhead = t;
	p->qtail = t;
}

/* Queued probes take freed slots, oldest first; then the timer follows the heap. */
static void run_pending(struct ag_prober *p)
{
	while (p->qhead) {
		struct target *t = p->qhead;
		struct slot *s = get_slot(p);

		if (!s)
			break;
		p->qhead = t->qnext;
		if (!p->qhead)
			p->qtail = NULL;
		t->queued = false;
		t->qnext = NULL;
		start_probe(p, t, s, t->queued_due_ns);
	}
	rearm(p);
}

static void timer_fired(struct ag_timer *tm)
{
	struct ag_prober *p = tm->data;
	uint64_t now = ag_now_ns();
	unsigned int started = 0;

	p->armed_ns = 0; /* fired: a re-arm at the same time must not be skipped */
	while (p->n_heap) {
		struct target *t = p->heap[0];

		if (t->slot) {
			struct slot *s = t->slot;

			if (t->key_ns > now)
				break; /* deadlines are never taken early */
			/*
			 * Collect what already arrived first: when this loop runs late,
			 * its own delay must not fail a probe whose answer is waiting.
			 */
			slot_event(p, s, now);
			if (!t->slot)
				continue;
			/* An HTTP server that accepted but never answered in full says so. */
			snprintf(t->reason, REASON_MAX, "timeout after %u ms%s", t->chk.timeout_ms,
				 t->chk.proto == AG_HC_HTTP && s->phase != PH_CONNECTING
				     ? " waiting for the response"
				     : "");
			finish(p, t, AG_PROBE_TIMEOUT, true, now);
		} else {
			if (t->key_ns > now + START_SLACK_NS)
				break;
			if (started++ == STARTS_PER_WAKE) {
				/* Let the loop deliver what ended meanwhile, then come back. */
				p->armed_ns = 0;
				rearm(p);
				break;
			}
			due(p, t, now);
		}
	}
	run_pending(p);
}

/* ------------------------------------------------------------------------ */
/* targets                                                                   */

static void check_free(struct check *c)
{
	free(c->path);
	free(c->host);
	free(c->send);
	free(c->expect);
	free(c->request);
	memset(c, 0, sizeof(*c));
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool check_eq(const struct check *a, const struct check *b)
{
	return a->proto == b->proto && a->status_min == b->status_min &&
	       a->status_max == b->status_max && a->interval_ms == b->interval_ms &&
	       a->timeout_ms == b->timeout_ms && a->rise == b->rise && a->fall == b->fall &&
	       str_eq(a->path, b->path) && str_eq(a->host, b->host) && str_eq(a->send, b->send) &&
	       str_eq(a->expect, b->expect);
}

/* Printable, no spaces: what may go into a request line or a Host field. */
static bool is_token_text(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static char *dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

/* Copy and check one target's settings. Returns 0, -EINVAL (logged) or -ENOMEM. */
static int check_init(struct check *c, const struct ag_probe_target *in, const char *name)
{
	const struct ag_cfg_health *hc = in->hc;
	bool oom = false;

	memset(c, 0, sizeof(*c));
	if (!hc) {
		pr_warn("probe: endpoint %s: no health check settings\n", name);
		return -EINVAL;
	}
	if (hc->proto != AG_HC_TCP && hc->proto != AG_HC_HTTP && hc->proto != AG_HC_UDP) {
		pr_warn("probe: endpoint %s: unknown check protocol %d\n", name, (int)hc->proto);
		return -EINVAL;
	}
	if (!in->port || !hc->interval_ms || !hc->timeout_ms || !hc->healthy_threshold ||
	    !hc->unhealthy_threshold) {
		pr_warn("probe: endpoint %s: port, interval, timeout and thresholds must be > 0\n",
			name);
		return -EINVAL;
	}
	if (hc->proto == AG_HC_HTTP) {
		const char *problem = NULL;

		if (hc->path && (hc->path[0] != '/' || !is_token_text(hc->path)))
			problem = "path must start with '/' and be printable without spaces";
		else if (hc->host && (!hc->host[0] || !is_token_text(hc->host)))
			problem = "host must be printable without spaces";
		else if (hc->status_min > hc->status_max)
			problem = "status range is reversed";
		if (problem) {
			pr_warn("probe: endpoint %s: HTTP check: %s\n", name, problem);
			return -EINVAL;
		}
	}
	c->proto = hc->proto;
	c->status_min = hc->status_min;
	c->status_max = hc->status_max;
	c->interval_ms = hc->interval_ms;
	c->timeout_ms = hc->timeout_ms;
	c->rise = hc->healthy_threshold;
	c->fall = hc->unhealthy_threshold;
	if (c->proto == AG_HC_HTTP) {
		char addr[INET_ADDRSTRLEN], host[INET_ADDRSTRLEN + 8];
		const char *path = hc->path ? hc->path : "/";
		int len;

		c->path = dup_or_null(path, &oom);
		c->host = dup_or_null(hc->host, &oom);
		if (!hc->host) {
			/* Host is uri-host [":" port], the port left out when it is http's 80. */
			inet_ntop(AF_INET, &in->addr, addr, sizeof(addr));
			if (in->port == 80)
				snprintf(host, sizeof(host), "%s", addr);
			else
				snprintf(host, sizeof(host), "%s:%u", addr, in->port);
		}
		len = asprintf(&c->request,
			       "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: anygate-probe/1\r\n"
			       "Accept: */*\r\nConnection: close\r\n\r\n",
			       path, hc->host ? hc->host : host);
		if (len < 0) {
			c->request = NULL;
			oom = true;
		} else {
			c->request_len = (size_t)len;
		}
	} else if (c->proto == AG_HC_UDP) {
		c->send = dup_or_null(hc->send, &oom);
		c->expect = dup_or_null(hc->expect, &oom);
		c->send_len = hc->send ? strlen(hc->send) : 0;
		c->expect_len = hc->expect ? strlen(hc->expect) : 0;
	}
	if (oom) {
		check_free(c);
		return -ENOMEM;
	}
	return 0;
}

static void target_free(struct target *t)
{
	if (!t)
		return;
	check_free(&t->chk);
	free(t->label);
	free(t);
}

static struct target *find(const struct ag_prober *p, uint32_t id)
{
	unsigned int lo = 0, hi = p->n_targets;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (p->targets[mid]->id == id)
			return p->targets[mid];
		if (p->targets[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int cmp_input_id(const void *a, const void *b)
{
	const struct ag_probe_target *x = *(const struct ag_probe_target *const *)a;
	const struct ag_probe_target *y = *(const struct ag_probe_target *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* First probe at a fixed phase of the interval: Fibonacci hashing of the id spreads
 * consecutive ids (backend ids are dense) almost evenly, and any ids well. */
static uint64_t first_offset(uint32_t id, uint32_t interval_ms)
{
	uint32_t h = id * 2654435769u; /* 2^32 / golden ratio */

	return ((uint64_t)h * ((uint64_t)interval_ms * NS_PER_MS)) >> 32;
}

/* Drop t's probe in flight or its place in the queue (it is leaving the set). */
static void abandon(struct ag_prober *p, struct target *t)
{
	if (t->slot)
		release_slot(p, t->slot);
	if (t->queued) {
		struct target **pp = &p->qhead;

		p->qtail = NULL;
		while (*pp) {
			if (*pp == t)
				*pp = t->qnext;
			else {
				p->qtail = *pp;
				pp = &(*pp)->qnext;
			}
		}
		t->queued = false;
	}
}

/* order: in sorted by id; -EINVAL when two targets share an id. */
static int sort_inputs(const struct ag_probe_target *in, unsigned int n,
		       const struct ag_probe_target **order)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		order[i] = &in[i];
	qsort(order, n, sizeof(const struct ag_probe_target *), cmp_input_id);
	for (i = 1; i < n; i++) {
		if (order[i]->id == order[i - 1]->id) {
			pr_warn("probe: two targets with id %u\n", order[i]->id);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The target that probes x in the new set, touching nothing of the running one. A running
 * target whose address and check stay the same is kept (its state, RTTs and probe in flight
 * with it): *out is that target and *label its new label, which it takes at the commit.
 * Otherwise *out is a new target that holds its own label, and *label is left alone.
 */
static int prepare_target(const struct ag_prober *p, const struct ag_probe_target *x, uint64_t now,
			  struct target **out, char **label)
{
	struct target *o = find(p, x->id), *t;
	char fallback[INET_ADDRSTRLEN] = "", *l;
	struct check c;
	int err;

	if (!x->label)
		inet_ntop(AF_INET, &x->addr, fallback, sizeof(fallback));
	err = check_init(&c, x, x->label ? x->label : fallback);
	if (err)
		return err;
	l = strdup(x->label ? x->label : fallback);
	if (!l) {
		check_free(&c);
		return -ENOMEM;
	}
	if (o && o->addr == x->addr && o->port == x->port && check_eq(&o->chk, &c)) {
		check_free(&c);
		*out = o;
		*label = l;
		return 0;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		check_free(&c);
		free(l);
		return -ENOMEM;
	}
	t->id = x->id;
	t->addr = x->addr;
	t->port = x->port;
	t->up = true;
	t->chk = c;
	t->label = l;
	t->heap_idx = NOT_IN_HEAP;
	t->next_ns = now + first_offset(x->id, c.interval_ms);
	*out = t;
	return 0;
}

/*
 * Swap the prepared set nt (n targets, sorted by id) in; nothing fails here. Kept targets
 * take their new labels (labels[i] becomes NULL), running targets not kept are dropped with
 * their probe in flight or place in the queue, and heap replaces the (empty) heap.
 * kept: room for one flag per running target.
 */
static void commit_targets(struct ag_prober *p, struct target **nt, char **labels, unsigned int n,
			   struct target **heap, bool *kept)
{
	struct target **old = p->targets;
	unsigned int i, j;

	for (i = 0; i < n; i++) {
		if (!labels[i])
			continue;
		free(nt[i]->label);
		nt[i]->label = labels[i];
		labels[i] = NULL;
	}
	for (i = 0, j = 0; i < p->n_targets; i++) {
		while (j < n && nt[j]->id < old[i]->id)
			j++;
		kept[i] = j < n && nt[j] == old[i];
	}
	for (i = 0; i < p->n_targets; i++) {
		if (kept[i])
			continue;
		abandon(p, old[i]);
		target_free(old[i]);
	}
	free(old);
	free(p->heap);
	p->targets = nt;
	p->n_targets = n;
	p->heap = heap;
	p->n_heap = 0;
}

/* Every target not waiting in the queue goes on the heap: at its next start, or at its
 * timeout while a probe is in flight. */
static void rebuild_heap(struct ag_prober *p)
{
	unsigned int i;

	for (i = 0; i < p->n_targets; i++) {
		struct target *t = p->targets[i];

		t->heap_idx = NOT_IN_HEAP;
		if (t->queued)
			continue;
		t->key_ns = t->slot ? t->slot->start_ns + (uint64_t)t->chk.timeout_ms * NS_PER_MS
				    : t->next_ns;
		heap_push(p, t);
	}
}

int ag_prober__set_targets(struct ag_prober *p, const struct ag_probe_target *in, unsigned int n)
{
	const struct ag_probe_target **order = NULL;
	struct target **nt = NULL, **heap = NULL;
	char **labels = NULL; /* new label strings for kept targets */
	bool *kept = NULL;
	unsigned int i;
	uint64_t now = ag_now_ns();
	int err = -ENOMEM;

	if (n && !in)
		return -EINVAL;
	order = calloc(n ? n : 1, sizeof(const struct ag_probe_target *));
	nt = calloc(n ? n : 1, sizeof(struct target *));
	heap = calloc(n ? n : 1, sizeof(struct target *));
	labels = calloc(n ? n : 1, sizeof(*labels));
	kept = calloc(p->n_targets ? p->n_targets : 1, sizeof(*kept));
	if (!order || !nt || !heap || !labels || !kept)
		goto cleanup;
	err = sort_inputs(in, n, order);
	if (err)
		goto cleanup;
	/* Everything that can fail happens before the running set is touched. */
	for (i = 0; i < n; i++) {
		err = prepare_target(p, order[i], now, &nt[i], &labels[i]);
		if (err)
			goto cleanup;
	}
	commit_targets(p, nt, labels, n, heap, kept);
	rebuild_heap(p);
	nt = NULL;
	heap = NULL;
	run_pending(p);
cleanup:
	/* Before the commit, labels[i] is set exactly for the kept (old) targets. */
	if (nt)
		for (i = 0; i < n; i++)
			if (nt[i] && !labels[i])
				target_free(nt[i]);
	if (labels)
		for (i = 0; i < n; i++)
			free(labels[i]);
	free(labels);
	free(kept);
	free(heap);
	free(nt);
	free(order);
	return err;
}

/* ------------------------------------------------------------------------ */
/* engine                                                                    */

static unsigned int default_max_inflight(void)
{
	struct rlimit rl;
	rlim_t avail;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return AG_PROBE_INFLIGHT_MAX;
	avail = rl.rlim_cur > 2 * FD_RESERVE ? rl.rlim_cur - FD_RESERVE : rl.rlim_cur / 2;
	avail /= 2;
	if (avail < 1)
		avail = 1;
	return avail > AG_PROBE_INFLIGHT_MAX ? AG_PROBE_INFLIGHT_MAX : (unsigned int)avail;
}

struct ag_prober *ag_prober__new(struct ag_loop *loop, ag_probe_change_cb cb, void *ctx)
{
	struct ag_prober *p = calloc(1, sizeof(*p));
	int err;

	if (!p)
		return NULL;
	p->loop = loop;
	p->change_cb = cb;
	p->change_ctx = ctx;
	p->max_inflight = default_max_inflight();
	err = ag_timer__init(loop, &p->timer, timer_fired, p);
	if (err) {
		free(p);
		errno = -err;
		return NULL;
	}
	return p;
}

void ag_prober__set_result_cb(struct ag_prober *p, ag_probe_result_cb cb, void *ctx)
{
	p->result_cb = cb;
	p->result_ctx = ctx;
}

int ag_prober__set_max_inflight(struct ag_prober *p, unsigned int n)
{
	if (n < 1 || n > AG_PROBE_INFLIGHT_MAX)
		return -EINVAL;
	/* Slots beyond a lowered cap are not freed, just no longer handed out past it. */
	p->max_inflight = n;
	return 0;
}

void ag_prober__stats(const struct ag_prober *p, struct ag_prober_stats *st)
{
	*st = p->st;
	st->max_inflight = p->max_inflight;
}

bool ag_prober__is_up(const struct ag_prober *p, uint32_t id)
{
	const struct target *t = find(p, id);

	return t && t->up;
}

uint64_t ag_prober__srtt_ns(const struct ag_prober *p, uint32_t id)
{
	const struct target *t = find(p, id);

	return t ? t->srtt_ns : 0;
}

unsigned int ag_prober__rtt_samples(const struct ag_prober *p, uint32_t id,
				    uint64_t out[AG_PROBE_RTT_SAMPLES])
{
	const struct target *t = find(p, id);
	unsigned int i;

	if (!t)
		return 0;
	for (i = 0; i < t->n_rtt; i++)
		out[i] =
		    t->rtt[(t->rtt_next + AG_PROBE_RTT_SAMPLES - 1 - i) % AG_PROBE_RTT_SAMPLES];
	return t->n_rtt;
}

uint64_t ag_prober__rtt_median_ns(const struct ag_prober *p, uint32_t id)
{
	uint64_t s[AG_PROBE_RTT_SAMPLES], v;
	unsigned int n = ag_prober__rtt_samples(p, id, s), i, j;

	if (!n)
		return 0;
	for (i = 1; i < n; i++) { /* insertion sort of at most 8 */
		v = s[i];
		for (j = i; j && s[j - 1] > v; j--)
			s[j] = s[j - 1];
		s[j] = v;
	}
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

uint64_t ag_prober__count(const struct ag_prober *p, uint32_t id, enum ag_probe_result r)
{
	const struct target *t = find(p, id);

	return t && (unsigned int)r < AG_PROBE__MAX ? t->counts[r] : 0;
}

const char *ag_prober__last_reason(const struct ag_prober *p, uint32_t id)
{
	const struct target *t = find(p, id);

	return t ? t->reason : "";
}

void ag_prober__free(struct ag_prober *p)
{
	unsigned int i;

	if (!p)
		return;
	for (i = 0; i < p->n_targets; i++) {
		abandon(p, p->targets[i]);
		target_free(p->targets[i]);
	}
	for (i = 0; i < p->n_slots; i++)
		free(p->slots[i]);
	ag_timer__fini(p->loop, &p->timer);
	free(p->slots);
	free(p->targets);
	free(p->heap);
	free(p);
}
