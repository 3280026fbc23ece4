/* SPDX-License-Identifier: BSD-3-Clause */
#include "loop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

uint64_t ag_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int ag_loop__init(struct ag_loop *loop)
{
	loop->stop = false;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	return loop->epfd < 0 ? -errno : 0;
}

void ag_loop__fini(struct ag_loop *loop)
{
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
}

int ag_loop__add(struct ag_loop *loop, struct ag_ev *ev, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};

	return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, ev->fd, &e) ? -errno : 0;
}

int ag_loop__mod(struct ag_loop *loop, struct ag_ev *ev, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};

	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, ev->fd, &e) ? -errno : 0;
}

void ag_loop__del(struct ag_loop *loop, struct ag_ev *ev)
{
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
}

void ag_loop__stop(struct ag_loop *loop)
{
	loop->stop = true;
}

int ag_loop__run(struct ag_loop *loop)
{
	struct epoll_event evs[64];

	while (!loop->stop) {
		int n = epoll_wait(loop->epfd, evs, 64, -1), i;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (i = 0; i < n && !loop->stop; i++) {
			struct ag_ev *ev = evs[i].data.ptr;

			ev->cb(ev, evs[i].events);
		}
	}
	return 0;
}

static void timer_ready(struct ag_ev *ev, uint32_t events)
{
	struct ag_timer *t = ag_container_of(ev, struct ag_timer, ev);
	uint64_t expirations;

	/* Drain the count; a late loop runs the callback once, not once per miss. */
	if (read(ev->fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return;
	t->cb(t);
}

int ag_timer__init(struct ag_loop *loop, struct ag_timer *t, void (*cb)(struct ag_timer *t),
		   void *data)
{
	int err;

	memset(t, 0, sizeof(*t));
	t->cb = cb;
	t->data = data;
	t->ev.cb = timer_ready;
	t->ev.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->ev.fd < 0)
		return -errno;
	err = ag_loop__add(loop, &t->ev, EPOLLIN);
	if (err) {
		close(t->ev.fd);
		t->ev.fd = -1;
	}
	return err;
}

int ag_timer__arm(struct ag_timer *t, uint64_t first_ns, uint64_t period_ns)
{
	struct itimerspec its = {
	    .it_value = {.tv_sec = first_ns / 1000000000ull, .tv_nsec = first_ns % 1000000000ull},
	    .it_interval = {.tv_sec = period_ns / 1000000000ull,
			    .tv_nsec = period_ns % 1000000000ull},
	};

	/* A zero it_value disarms: "now" means the next nanosecond. */
	if (!first_ns)
		its.it_value.tv_nsec = 1;
	return timerfd_settime(t->ev.fd, 0, &its, NULL) ? -errno : 0;
}

void ag_timer__fini(struct ag_loop *loop, struct ag_timer *t)
{
	if (t->ev.fd < 0)
		return;
	ag_loop__del(loop, &t->ev);
	close(t->ev.fd);
	t->ev.fd = -1;
}
