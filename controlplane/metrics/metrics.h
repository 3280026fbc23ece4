/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Prometheus metrics: a pure text builder (snapshot -> exposition format
 * 0.0.4) and an HTTP endpoint (libmicrohttpd) that runs inside anygated's one
 * event loop. MHD keeps its own epoll fd, which sits in our loop as one more
 * ag_ev; MHD_run is called on readiness and on MHD's own timeout (an
 * ag_timer). MHD starts no thread: a scrape reads daemon state on the loop's
 * thread, between probes and control-socket commands, never concurrently.
 */
#ifndef AG_METRICS_H
#define AG_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "loop.h"
#include "probe.h"

/* Listener label: "tcp:80" (protocol and first port). */
#define AG_METRICS_LISTENER_LEN 16
#define AG_METRICS_ADDR_LEN	46 /* INET6_ADDRSTRLEN */

struct ag_metrics_listener {
	const char *accelerator;
	char listener[AG_METRICS_LISTENER_LEN];
	const char *fastpath; /* "xdp" */
	struct ag_traffic_stats traffic;
	bool failing_open;	      /* every endpoint down, failure_policy fail_open */
	uint64_t fail_open_new_flows; /* new flows forwarded while failing open */
	uint64_t fail_open_episodes;  /* times it began failing open */
};

struct ag_metrics_backend {
	const char *accelerator;
	char listener[AG_METRICS_LISTENER_LEN];
	const char *region;
	char address[AG_METRICS_ADDR_LEN];
	struct ag_traffic_stats traffic;
	uint64_t active_flows;		/* flows not idle longer than their idle timeout */
	bool up;			/* health state */
	uint64_t srtt_ns;		/* smoothed probe RTT; 0 = no sample yet (no series) */
	unsigned int weight;		/* effective: configured or overridden; 0 when drained */
	double share;			/* of its listener's new flows, 0..1 (weight compiler) */
	uint64_t probes[AG_PROBE__MAX]; /* probe results, by enum ag_probe_result */
};

struct ag_metrics_reason {
	const char *name; /* ag_reason__name(): "pass_...", "drop_...", or what the fast path did */
	uint64_t packets;
	uint64_t bytes;
};

/* What the sweeper of the flow table removed in one flow state. */
struct ag_metrics_flow_state {
	const char *state; /* "half-open", "established", "closing", "udp" */
	uint64_t expired;  /* idle past the timeout of the state */
	uint64_t evicted;  /* before it, the table near full */
};

#define AG_METRICS_FLOW_STATES 4

/* The control socket: its clients, every refusal and close, and the reply bytes it holds. */
struct ag_metrics_control {
	bool present; /* false: no series (the socket is not up yet) */
	uint64_t clients;
	uint64_t accepted;
	uint64_t refused_busy;	      /* every slot taken */
	uint64_t refused_admin_slots; /* read-only peer, only the admins' slots left */
	uint64_t refused_uid;	      /* its uid at its limit */
	uint64_t denied;
	uint64_t replies_too_big; /* over the bound for one client */
	uint64_t replies_no_room; /* all clients' queued bytes at the bound */
	uint64_t streams_failed;
	uint64_t stream_waits;
	uint64_t closed_idle;
	uint64_t closed_long_line;
	uint64_t queued;      /* reply bytes queued now */
	uint64_t queued_peak; /* the most queued at once */
};

/* Everything one scrape shows, read at one moment. */
struct ag_metrics_snapshot {
	struct ag_metrics_listener *listeners; /* malloc'ed; freed by __free */
	unsigned int n_listeners;
	struct ag_metrics_backend *backends; /* malloc'ed; freed by __free */
	unsigned int n_backends;
	struct ag_metrics_reason reasons[AG_R__MAX];
	unsigned int n_reasons;
	uint64_t flow_entries;	   /* entries in the flow table, expired ones included */
	uint64_t flow_max_entries; /* its size (edge.max_flows); 0: unknown, no fill series */
	/*
	 * The sweeper (anygated's, for XDP): n_flow_states 0 when anygated does
	 * not sweep this fast path, then these families have no series.
	 */
	struct ag_metrics_flow_state flow_states[AG_METRICS_FLOW_STATES];
	unsigned int n_flow_states;
	uint64_t nat_rev_entries;     /* reverse entries after its last complete walk */
	uint64_t nat_orphans_removed; /* reverse entries no flow owned */
	uint64_t sweeps;
	uint64_t last_sweep_ns;
	uint64_t publishes;	  /* table publishes */
	uint64_t last_publish_ns; /* duration of the last one */
	uint64_t reloads;
	uint64_t reload_failures;
	uint64_t failovers;	   /* health changes published */
	uint64_t last_failover_ns; /* decision -> table switch of the last one */
	struct ag_metrics_control control;
	const char *version;
	unsigned int abi;
};

void ag_metrics_snapshot__free(struct ag_metrics_snapshot *s);

/*
 * The exposition text of s (HELP and TYPE for every family, label values
 * escaped). Returns a malloc'ed NUL-terminated string and its length in *len,
 * or NULL with errno = ENOMEM.
 */
char *ag_metrics__render(const struct ag_metrics_snapshot *s, size_t *len);

/* Fills a zeroed snapshot; 0 or -errno (the scrape then answers 500). */
typedef int (*ag_metrics_collect_fn)(void *ctx, struct ag_metrics_snapshot *s);

struct ag_metrics;

/*
 * Serve GET /metrics on ip:port (network-order ip, host-order port) from
 * `loop`. Every scrape calls collect(ctx, ...) then renders. NULL with errno
 * (EADDRINUSE, ...) when the endpoint cannot be opened.
 */
struct ag_metrics *ag_metrics__start(struct ag_loop *loop, uint32_t ip, uint16_t port,
				     ag_metrics_collect_fn collect, void *ctx);
void ag_metrics__stop(struct ag_metrics *m);
/* The bound port (useful when started on port 0). */
uint16_t ag_metrics__port(const struct ag_metrics *m);

#endif /* AG_METRICS_H */
