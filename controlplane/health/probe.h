/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The health-probe engine: runs every endpoint's check (TCP connect, HTTP GET,
 * UDP request/reply) from anygated's one event loop, never blocking. One
 * timerfd drives all targets through a min-heap of due times; each target's
 * probes start at a fixed phase of its interval derived from its id, so
 * thousands of endpoints are probed evenly over time rather than in bursts.
 *
 * State follows HAProxy's rise/fall: a target starts up (traffic flows at
 * start), goes down after unhealthy_threshold consecutive failures and up
 * again after healthy_threshold consecutive successes. Every change is logged
 * at info with the target's label and the deciding reason, and reported to the
 * change callback with the CLOCK_MONOTONIC time of the deciding result.
 *
 * Every successful probe records a round-trip time (TCP and HTTP: connect
 * time, SYN to established; UDP: request to reply); each target keeps the
 * RFC 6298 smoothed RTT and its last AG_PROBE_RTT_SAMPLES samples.
 */
#ifndef AG_PROBE_H
#define AG_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"

/* RTT samples kept per target (a caller may take their median). */
#define AG_PROBE_RTT_SAMPLES  8
/* Probe sockets open at once, at most; see ag_prober__set_max_inflight(). */
#define AG_PROBE_INFLIGHT_MAX 16384

struct ag_probe_target {
	uint32_t id;			/* key of the target (backend id) */
	uint32_t addr;			/* network order */
	uint16_t port;			/* host order: the port to probe */
	const struct ag_cfg_health *hc; /* copied: need not outlive the call */
	const char *label;		/* for logs, e.g. "web/tcp:80 eu-west 10.1.1.11"; copied */
};

enum ag_probe_result {
	AG_PROBE_OK = 0,
	AG_PROBE_TIMEOUT,     /* no (complete) answer within timeout_ms */
	AG_PROBE_REFUSED,     /* TCP RST, or ICMP port unreachable for UDP */
	AG_PROBE_UNREACHABLE, /* no route, host or network unreachable */
	AG_PROBE_BAD_STATUS,  /* HTTP status outside [status_min, status_max] */
	AG_PROBE_BAD_REPLY,   /* HTTP framing error, UDP reply not starting with `expect` */
	AG_PROBE_ERROR,	      /* anything else (reset, local failure) */
	AG_PROBE__MAX,
};

/* One finished probe, for observers (metrics, RTT-driven region ordering). */
struct ag_probe_report {
	uint32_t id;
	enum ag_probe_result result;
	bool verdict;	    /* false: a local failure (no fd, no memory) that says nothing
			     * about the target and did not count toward rise/fall */
	uint64_t due_ns;    /* when the probe was scheduled to start (CLOCK_MONOTONIC) */
	uint64_t start_ns;  /* when it started (up to 250 us before due_ns: starts
			     * due close together share a timer wake-up) */
	uint64_t done_ns;   /* when its result was known */
	uint64_t rtt_ns;    /* the RTT sample (OK only, else 0) */
	const char *reason; /* "status 200", "connection refused", "timeout after 80 ms", ... */
};

/*
 * up: the new state; reason: what decided it; decided_ns: CLOCK_MONOTONIC of
 * that result. Callbacks run inside the engine's event handling: they may
 * query it, but must not call ag_prober__set_targets() or ag_prober__free().
 */
typedef void (*ag_probe_change_cb)(void *ctx, uint32_t id, bool up, const char *reason,
				   uint64_t decided_ns);
typedef void (*ag_probe_result_cb)(void *ctx, const struct ag_probe_report *rep);

struct ag_prober;

struct ag_prober_stats {
	uint64_t started;      /* probes started */
	uint64_t deferred;     /* probes that waited for a free socket slot */
	unsigned int inflight; /* probe sockets open now */
	unsigned int peak_inflight;
	unsigned int max_inflight;
};

/*
 * An engine on `loop` (one timerfd is added to it). cb (may be NULL) hears
 * every state change. The socket cap starts from RLIMIT_NOFILE (half of what
 * is left after a reserve for the rest of the daemon). NULL with errno.
 */
struct ag_prober *ag_prober__new(struct ag_loop *loop, ag_probe_change_cb cb, void *ctx);

/*
 * Replace the whole set of targets (start, config reload). A target whose id,
 * addr, port and check settings are all unchanged keeps its state, counters,
 * RTT, schedule and any probe in flight; anything else starts afresh (up, no
 * counts: no change callback for that reset, so read ag_prober__is_up() of
 * every target after a reload), its first probe at its id's phase within its
 * interval. Returns 0,
 * or -EINVAL (duplicate id, missing or invalid check settings: logged, and
 * the old set stays) or -ENOMEM.
 */
int ag_prober__set_targets(struct ag_prober *p, const struct ag_probe_target *t, unsigned int n);

/* Queries for a target id; an unknown id answers false / 0. */
bool ag_prober__is_up(const struct ag_prober *p, uint32_t id);
uint64_t ag_prober__srtt_ns(const struct ag_prober *p, uint32_t id); /* 0 = no sample yet */
/* Copies up to AG_PROBE_RTT_SAMPLES samples, newest first; returns how many. */
unsigned int ag_prober__rtt_samples(const struct ag_prober *p, uint32_t id,
				    uint64_t out[AG_PROBE_RTT_SAMPLES]);
/* Median of the kept samples (mean of the middle two for an even count); 0 = none. */
uint64_t ag_prober__rtt_median_ns(const struct ag_prober *p, uint32_t id);
/* Probes of the target that ended with r (local failures count as AG_PROBE_ERROR). */
uint64_t ag_prober__count(const struct ag_prober *p, uint32_t id, enum ag_probe_result r);
/* Reason of the target's last result ("" before any). Valid until the next loop event. */
const char *ag_prober__last_reason(const struct ag_prober *p, uint32_t id);

/* "ok", "timeout", "refused", "unreachable", "bad_status", "bad_reply", "error". */
const char *ag_probe_result__name(enum ag_probe_result r);

/* Every finished probe, after the state update (and change callback) it caused. */
void ag_prober__set_result_cb(struct ag_prober *p, ag_probe_result_cb cb, void *ctx);
/* Cap on probe sockets open at once (1..AG_PROBE_INFLIGHT_MAX); due probes queue for a slot. */
int ag_prober__set_max_inflight(struct ag_prober *p, unsigned int n);
void ag_prober__stats(const struct ag_prober *p, struct ag_prober_stats *st);

/* Closes every probe socket and the timer. Not from inside one of its callbacks. */
void ag_prober__free(struct ag_prober *p);

#endif /* AG_PROBE_H */
