/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated's one event loop: epoll over file descriptors (signals, timers,
 * probe sockets, the control socket, metrics). Each registered fd carries an
 * ag_ev whose callback runs when the fd is ready. Nothing in a callback may
 * block: probes, clients and timers all share this thread.
 */
#ifndef AG_LOOP_H
#define AG_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct ag_ev;
typedef void (*ag_ev_cb)(struct ag_ev *ev, uint32_t events);

/* Embed in the owner's struct; container_of back from the callback. */
struct ag_ev {
	int fd;
	ag_ev_cb cb;
	void *data;
};

struct ag_loop {
	int epfd;
	bool stop;
};

int ag_loop__init(struct ag_loop *loop);
void ag_loop__fini(struct ag_loop *loop);
/* events: EPOLLIN/EPOLLOUT/... Returns 0 or -errno. */
int ag_loop__add(struct ag_loop *loop, struct ag_ev *ev, uint32_t events);
int ag_loop__mod(struct ag_loop *loop, struct ag_ev *ev, uint32_t events);
/* Removes ev->fd from the loop (does not close it). */
void ag_loop__del(struct ag_loop *loop, struct ag_ev *ev);
/* Run until ag_loop__stop(). Returns 0 or -errno of a failed epoll_wait. */
int ag_loop__run(struct ag_loop *loop);
void ag_loop__stop(struct ag_loop *loop);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t ag_now_ns(void);

/*
 * A timerfd in the loop: fires cb after `first_ns`, then every `period_ns`
 * (0 = once). Re-arm with ag_timer__arm.
 */
struct ag_timer {
	struct ag_ev ev;
	void (*cb)(struct ag_timer *t);
	void *data;
};

int ag_timer__init(struct ag_loop *loop, struct ag_timer *t, void (*cb)(struct ag_timer *t),
		   void *data);
int ag_timer__arm(struct ag_timer *t, uint64_t first_ns, uint64_t period_ns);
void ag_timer__fini(struct ag_loop *loop, struct ag_timer *t);

#define ag_container_of(ptr, type, member)                                                         \
	((type *)((char *)(ptr) - __builtin_offsetof(type, member)))

#endif /* AG_LOOP_H */
