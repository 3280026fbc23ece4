/* SPDX-License-Identifier: BSD-3-Clause */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"

/* ------------------------------------------------------------ text builder */

struct text {
	char *buf;
	size_t len;
	size_t cap;
	bool oom;
};

static bool text_reserve(struct text *t, size_t more)
{
	size_t cap;
	char *grown;

	if (t->oom)
		return false;
	if (t->len + more + 1 <= t->cap)
		return true;
	cap = t->cap ? t->cap : 4096;
	while (cap < t->len + more + 1)
		cap *= 2;
	grown = realloc(t->buf, cap);
	if (!grown) {
		t->oom = true;
		return false;
	}
	t->buf = grown;
	t->cap = cap;
	return true;
}

static void text_put(struct text *t, const char *s, size_t n)
{
	if (!text_reserve(t, n))
		return;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

static void text_str(struct text *t, const char *s)
{
	text_put(t, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !text_reserve(t, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/*
 * Exposition format 0.0.4: in label values \, " and newline are escaped; in
 * HELP text \ and newline. A NULL value is an empty label.
 */
static void text_escaped(struct text *t, const char *s, bool quote)
{
	if (!s)
		return;
	for (; *s; s++) {
		if (*s == '\\')
			text_put(t, "\\\\", 2);
		else if (*s == '\n')
			text_put(t, "\\n", 2);
		else if (*s == '"' && quote)
			text_put(t, "\\\"", 2);
		else
			text_put(t, s, 1);
	}
}

/* A float sample value as Prometheus parses it (Go ParseFloat, +Inf, NaN). */
static void text_double(struct text *t, double v)
{
	if (isnan(v))
		text_str(t, "NaN");
	else if (isinf(v))
		text_str(t, v > 0 ? "+Inf" : "-Inf");
	else
		text_printf(t, "%.9g", v);
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	text_printf(t, "# HELP %s ", name);
	text_escaped(t, help, false);
	text_printf(t, "\n# TYPE %s %s\n", name, type);
}

/* Labels as (name, value) pairs, NULL-terminated. */
static void labels(struct text *t, const char *const *kv)
{
	unsigned int i;

	if (!kv[0])
		return;
	text_put(t, "{", 1);
	for (i = 0; kv[i]; i += 2) {
		if (i)
			text_put(t, ",", 1);
		text_printf(t, "%s=\"", kv[i]);
		text_escaped(t, kv[i + 1], true);
		text_put(t, "\"", 1);
	}
	text_put(t, "}", 1);
}

static void sample_u64(struct text *t, const char *name, const char *const *kv, uint64_t v)
{
	text_str(t, name);
	labels(t, kv);
	text_printf(t, " %llu\n", (unsigned long long)v);
}

static void sample_double(struct text *t, const char *name, const char *const *kv, double v)
{
	text_str(t, name);
	labels(t, kv);
	text_put(t, " ", 1);
	text_double(t, v);
	text_put(t, "\n", 1);
}

/* Which traffic counter a family shows. */
enum traffic_field { TF_PACKETS, TF_BYTES, TF_NEW_FLOWS, TF_RET_PACKETS, TF_RET_BYTES };

static uint64_t traffic_value(const struct ag_traffic_stats *ts, enum traffic_field f)
{
	switch (f) {
	case TF_PACKETS:
		return ts->packets;
	case TF_BYTES:
		return ts->bytes;
	case TF_NEW_FLOWS:
		return ts->new_flows;
	case TF_RET_PACKETS:
		return ts->ret_packets;
	case TF_RET_BYTES:
		return ts->ret_bytes;
	}
	return 0;
}

static const struct {
	enum traffic_field field;
	const char *suffix;
	const char *help;
} traffic_families[] = {
    {TF_PACKETS, "packets_total", "Client-to-backend packets forwarded by the fast path."},
    {TF_BYTES, "bytes_total", "Client-to-backend bytes forwarded (IP packet length)."},
    {TF_NEW_FLOWS, "new_flows_total", "Flows created (first packet of a new flow)."},
    {TF_RET_PACKETS, "return_packets_total",
     "Backend-to-client packets forwarded by the fast path (reverse NAT)."},
    {TF_RET_BYTES, "return_bytes_total", "Backend-to-client bytes forwarded (IP packet length)."},
};

#define N_TRAFFIC (sizeof(traffic_families) / sizeof(traffic_families[0]))

static void listener_kv(const struct ag_metrics_listener *l, const char **kv)
{
	kv[0] = "accelerator";
	kv[1] = l->accelerator;
	kv[2] = "listener";
	kv[3] = l->listener;
	kv[4] = "fastpath";
	kv[5] = l->fastpath;
	kv[6] = NULL;
}

/* kv has room for 12: backend labels (8) plus one extra pair and the NULL. */
static void backend_kv(const struct ag_metrics_backend *b, const char **kv)
{
	kv[0] = "accelerator";
	kv[1] = b->accelerator;
	kv[2] = "listener";
	kv[3] = b->listener;
	kv[4] = "region";
	kv[5] = b->region;
	kv[6] = "address";
	kv[7] = b->address;
	kv[8] = NULL;
}

/* failure_policy fail_open at work: every endpoint down, new flows forwarded anyway. */
static const struct {
	const char *name, *type, *help;
} fail_open_families[] = {
    {"anygate_listener_failing_open", "gauge",
     "1 while every endpoint of the listener is down and failure_policy fail_open forwards "
     "its new flows to them anyway."},
    {"anygate_listener_fail_open_new_flows_total", "counter",
     "New flows the listener forwarded while failing open."},
    {"anygate_listener_fail_open_episodes_total", "counter",
     "Times the listener began failing open."},
};

static uint64_t fail_open_value(const struct ag_metrics_listener *l, unsigned int f)
{
	return f == 0 ? l->failing_open : f == 1 ? l->fail_open_new_flows : l->fail_open_episodes;
}

static void render_fail_open(struct text *t, const struct ag_metrics_snapshot *s)
{
	const char *kv[12];
	unsigned int f, i;

	for (f = 0; f < sizeof(fail_open_families) / sizeof(fail_open_families[0]); f++) {
		family(t, fail_open_families[f].name, fail_open_families[f].type,
		       fail_open_families[f].help);
		for (i = 0; i < s->n_listeners; i++) {
			listener_kv(&s->listeners[i], kv);
			sample_u64(t, fail_open_families[f].name, kv,
				   fail_open_value(&s->listeners[i], f));
		}
	}
}

static void render_listeners(struct text *t, const struct ag_metrics_snapshot *s)
{
	const char *kv[12];
	char name[96];
	unsigned int f, i;

	for (f = 0; f < N_TRAFFIC; f++) {
		snprintf(name, sizeof(name), "anygate_listener_%s", traffic_families[f].suffix);
		family(t, name, "counter", traffic_families[f].help);
		for (i = 0; i < s->n_listeners; i++) {
			listener_kv(&s->listeners[i], kv);
			sample_u64(
			    t, name, kv,
			    traffic_value(&s->listeners[i].traffic, traffic_families[f].field));
		}
	}
	render_fail_open(t, s);
}

static void render_backends(struct text *t, const struct ag_metrics_snapshot *s)
{
	const char *kv[12];
	char name[96];
	unsigned int f, i, r;

	for (f = 0; f < N_TRAFFIC; f++) {
		snprintf(name, sizeof(name), "anygate_backend_%s", traffic_families[f].suffix);
		family(t, name, "counter", traffic_families[f].help);
		for (i = 0; i < s->n_backends; i++) {
			backend_kv(&s->backends[i], kv);
			sample_u64(
			    t, name, kv,
			    traffic_value(&s->backends[i].traffic, traffic_families[f].field));
		}
	}

	family(t, "anygate_backend_active_flows", "gauge",
	       "Flows pinned to the backend and not idle past their idle timeout (the flow "
	       "table is walked at most once a second).");
	for (i = 0; i < s->n_backends; i++) {
		backend_kv(&s->backends[i], kv);
		sample_u64(t, "anygate_backend_active_flows", kv, s->backends[i].active_flows);
	}

	family(t, "anygate_backend_up", "gauge", "Health state from the probes: 1 up, 0 down.");
	for (i = 0; i < s->n_backends; i++) {
		backend_kv(&s->backends[i], kv);
		sample_u64(t, "anygate_backend_up", kv, s->backends[i].up ? 1 : 0);
	}

	family(t, "anygate_backend_rtt_seconds", "gauge",
	       "Smoothed health-probe round-trip time (RFC 6298); no series before the first "
	       "successful probe.");
	for (i = 0; i < s->n_backends; i++) {
		if (!s->backends[i].srtt_ns)
			continue;
		backend_kv(&s->backends[i], kv);
		sample_double(t, "anygate_backend_rtt_seconds", kv, s->backends[i].srtt_ns / 1e9);
	}

	family(t, "anygate_backend_weight", "gauge",
	       "Effective weight (0-255): configured, or the operator's override; 0 when "
	       "drained.");
	for (i = 0; i < s->n_backends; i++) {
		backend_kv(&s->backends[i], kv);
		sample_u64(t, "anygate_backend_weight", kv, s->backends[i].weight);
	}

	family(t, "anygate_backend_new_flow_share_ratio", "gauge",
	       "Share (0-1) of its listener's new flows the published tables give the backend.");
	for (i = 0; i < s->n_backends; i++) {
		backend_kv(&s->backends[i], kv);
		sample_double(t, "anygate_backend_new_flow_share_ratio", kv, s->backends[i].share);
	}

	family(t, "anygate_backend_probes_total", "counter",
	       "Health probes of the backend, by result.");
	for (i = 0; i < s->n_backends; i++) {
		for (r = 0; r < AG_PROBE__MAX; r++) {
			backend_kv(&s->backends[i], kv);
			kv[8] = "result";
			kv[9] = ag_probe_result__name(r);
			kv[10] = NULL;
			sample_u64(t, "anygate_backend_probes_total", kv, s->backends[i].probes[r]);
		}
	}
}

/* The reason's name says which family it is in (abi.h): "drop_...", "pass_...", or neither. */
static unsigned int reason_kind(const char *name)
{
	if (!strncmp(name, "drop_", 5))
		return 0;
	return !strncmp(name, "pass_", 5) ? 1 : 2;
}

static void render_reasons(struct text *t, const struct ag_metrics_snapshot *s)
{
	static const struct {
		const char *packets, *packets_help;
		const char *bytes, *bytes_help;
	} kinds[] = {
	    {"anygate_dropped_packets_total", "Packets the fast path dropped, by reason.",
	     "anygate_dropped_bytes_total", "Bytes of packets the fast path dropped, by reason."},
	    {"anygate_passed_packets_total",
	     "Packets the fast path passed to the kernel instead of forwarding, by reason.",
	     "anygate_passed_bytes_total", "Bytes of packets passed to the kernel, by reason."},
	    {"anygate_handled_packets_total",
	     "Packets the fast path handled itself besides forwarding: answered (RST, SYN "
	     "challenge), verified their source, moved or kept their flow, or took over a NAT "
	     "port, by reason.",
	     "anygate_handled_bytes_total",
	     "Bytes of packets the fast path handled itself, by "
	     "reason."},
	};
	const char *kv[4] = {"reason", NULL, NULL, NULL};
	unsigned int k, i;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		family(t, kinds[k].packets, "counter", kinds[k].packets_help);
		for (i = 0; i < s->n_reasons; i++) {
			if (!s->reasons[i].name || reason_kind(s->reasons[i].name) != k)
				continue;
			kv[1] = s->reasons[i].name;
			sample_u64(t, kinds[k].packets, kv, s->reasons[i].packets);
		}
		family(t, kinds[k].bytes, "counter", kinds[k].bytes_help);
		for (i = 0; i < s->n_reasons; i++) {
			if (!s->reasons[i].name || reason_kind(s->reasons[i].name) != k)
				continue;
			kv[1] = s->reasons[i].name;
			sample_u64(t, kinds[k].bytes, kv, s->reasons[i].bytes);
		}
	}
}

/* The flow table: fill, and what the sweeper removed (no series where anygated does not sweep). */
static void render_flow_table(struct text *t, const struct ag_metrics_snapshot *s)
{
	const char *none[1] = {NULL}, *kv[3] = {"state", NULL, NULL};
	bool swept = s->n_flow_states > 0;
	unsigned int i;

	family(t, "anygate_flow_table_entries", "gauge",
	       "Entries in the fast path's flow table, expired ones not yet removed included.");
	sample_u64(t, "anygate_flow_table_entries", none, s->flow_entries);
	family(t, "anygate_flow_table_max_entries", "gauge",
	       "Size of the flow table (edge.max_flows); the NAT reverse table has as many.");
	if (s->flow_max_entries)
		sample_u64(t, "anygate_flow_table_max_entries", none, s->flow_max_entries);
	family(t, "anygate_flow_table_fill_ratio", "gauge",
	       "Flow table entries over its size (0-1): past 0.9 the sweeper removes half-open and "
	       "closing flows before their timeout, when full new flows are refused.");
	if (s->flow_max_entries)
		sample_double(t, "anygate_flow_table_fill_ratio", none,
			      (double)s->flow_entries / s->flow_max_entries);
	family(t, "anygate_flows_expired_total", "counter",
	       "Flows (with their NAT reverse entry) the sweeper removed idle past the timeout of "
	       "their state.");
	for (i = 0; i < s->n_flow_states; i++) {
		kv[1] = s->flow_states[i].state;
		sample_u64(t, "anygate_flows_expired_total", kv, s->flow_states[i].expired);
	}
	family(t, "anygate_flows_evicted_total", "counter",
	       "Flows the sweeper removed before their timeout because the table was near full "
	       "(half-open and closing flows only; an established flow never is).");
	for (i = 0; i < s->n_flow_states; i++) {
		kv[1] = s->flow_states[i].state;
		sample_u64(t, "anygate_flows_evicted_total", kv, s->flow_states[i].evicted);
	}
	family(t, "anygate_nat_reverse_entries", "gauge",
	       "Entries in the NAT reverse table at the sweeper's last complete walk.");
	if (swept)
		sample_u64(t, "anygate_nat_reverse_entries", none, s->nat_rev_entries);
	family(t, "anygate_nat_orphans_removed_total", "counter",
	       "NAT reverse entries no flow owned that the sweeper removed once quiet.");
	if (swept)
		sample_u64(t, "anygate_nat_orphans_removed_total", none, s->nat_orphans_removed);
	family(t, "anygate_flow_sweeps_total", "counter", "Passes of the flow-table sweeper.");
	if (swept)
		sample_u64(t, "anygate_flow_sweeps_total", none, s->sweeps);
	family(t, "anygate_flow_sweep_last_duration_seconds", "gauge",
	       "How long the sweeper's last pass took.");
	if (swept)
		sample_double(t, "anygate_flow_sweep_last_duration_seconds", none,
			      s->last_sweep_ns / 1e9);
}

static void render_daemon(struct text *t, const struct ag_metrics_snapshot *s)
{
	const char *none[1] = {NULL};
	char abi[16];
	const char *info[5] = {"version", s->version, "abi", abi, NULL};

	family(t, "anygate_table_publishes_total", "counter",
	       "Lookup-table publishes (start, reload, health or operator change).");
	sample_u64(t, "anygate_table_publishes_total", none, s->publishes);
	family(t, "anygate_table_last_publish_duration_seconds", "gauge",
	       "How long the last publish took, build to switch.");
	sample_double(t, "anygate_table_last_publish_duration_seconds", none,
		      s->last_publish_ns / 1e9);

	family(t, "anygate_config_reloads_total", "counter",
	       "Configuration reloads applied (SIGHUP or control socket).");
	sample_u64(t, "anygate_config_reloads_total", none, s->reloads);
	family(t, "anygate_config_reload_failures_total", "counter",
	       "Configuration reloads refused (bad config or failed publish; tables unchanged).");
	sample_u64(t, "anygate_config_reload_failures_total", none, s->reload_failures);

	family(t, "anygate_failovers_total", "counter",
	       "Health state changes published to the fast path.");
	sample_u64(t, "anygate_failovers_total", none, s->failovers);
	family(t, "anygate_last_failover_switch_seconds", "gauge",
	       "Time from the probe result that decided the last health change to the table "
	       "switch; no series before the first change.");
	if (s->failovers)
		sample_double(t, "anygate_last_failover_switch_seconds", none,
			      s->last_failover_ns / 1e9);

	snprintf(abi, sizeof(abi), "%u", s->abi);
	family(t, "anygate_build_info", "gauge",
	       "Always 1; labels name the anygated version and the table ABI version.");
	sample_u64(t, "anygate_build_info", info, 1);
}

/* One counter family with one series per reason: names[i] labels values[i]. */
static void by_reason(struct text *t, const char *name, const char *help, const char *const *names,
		      const uint64_t *values, unsigned int n)
{
	const char *kv[3] = {"reason", NULL, NULL};
	unsigned int i;

	family(t, name, "counter", help);
	for (i = 0; i < n; i++) {
		kv[1] = names[i];
		sample_u64(t, name, kv, values[i]);
	}
}

/* A family of one series without labels. */
static void one_u64(struct text *t, const char *name, const char *type, const char *help,
		    uint64_t v)
{
	const char *none[1] = {NULL};

	family(t, name, type, help);
	sample_u64(t, name, none, v);
}

/* The control socket (docs/control.md): no series before it is up. */
static void render_control(struct text *t, const struct ag_metrics_snapshot *s)
{
	static const char *const refused[] = {"all_slots_taken", "admin_slots", "per_uid"};
	static const char *const replies[] = {"too_big", "no_room"};
	static const char *const closed[] = {"idle", "long_line"};
	const struct ag_metrics_control *c = &s->control;
	const uint64_t refused_v[] = {c->refused_busy, c->refused_admin_slots, c->refused_uid};
	const uint64_t replies_v[] = {c->replies_too_big, c->replies_no_room};
	const uint64_t closed_v[] = {c->closed_idle, c->closed_long_line};

	if (!c->present)
		return;
	one_u64(t, "anygate_control_clients", "gauge", "Control socket connections now.",
		c->clients);
	one_u64(t, "anygate_control_connections_total", "counter",
		"Control socket connections accepted.", c->accepted);
	by_reason(t, "anygate_control_refused_total",
		  "Control socket connections refused, by the limit they met.", refused, refused_v,
		  3);
	one_u64(t, "anygate_control_denied_total", "counter",
		"Admin commands refused to read-only peers.", c->denied);
	by_reason(t, "anygate_control_replies_refused_total",
		  "Replies refused with an error instead: larger than the bound for one client, "
		  "or no room under the bound for all.",
		  replies, replies_v, 2);
	one_u64(t, "anygate_control_streams_failed_total", "counter",
		"Streamed replies (flows, endpoints) that ended with an error.", c->streams_failed);
	one_u64(t, "anygate_control_stream_waits_total", "counter",
		"Times a streamed reply waited for room under the bound on all queued bytes.",
		c->stream_waits);
	by_reason(t, "anygate_control_closed_total",
		  "Control socket connections the daemon closed, by reason.", closed, closed_v, 2);
	one_u64(t, "anygate_control_queued_bytes", "gauge",
		"Reply bytes waiting for control clients to read them.", c->queued);
	one_u64(t, "anygate_control_queued_peak_bytes", "gauge",
		"The most reply bytes that ever waited for control clients at once.",
		c->queued_peak);
}

char *ag_metrics__render(const struct ag_metrics_snapshot *s, size_t *len)
{
	struct text t = {};

	render_listeners(&t, s);
	render_backends(&t, s);
	render_reasons(&t, s);
	render_flow_table(&t, s);
	render_daemon(&t, s);
	render_control(&t, s);
	if (t.oom || !t.buf) {
		free(t.buf);
		errno = ENOMEM;
		return NULL;
	}
	*len = t.len;
	return t.buf;
}

void ag_metrics_snapshot__free(struct ag_metrics_snapshot *s)
{
	free(s->listeners);
	free(s->backends);
	s->listeners = NULL;
	s->backends = NULL;
	s->n_listeners = 0;
	s->n_backends = 0;
}

/* ------------------------------------------------------------ HTTP endpoint */

/* A scrape is one small request: bound what a client can hold. */
#define AG_METRICS_CONN_LIMIT	  64
#define AG_METRICS_CONN_TIMEOUT_S 10
#define AG_METRICS_CONN_MEMORY	  (32 * 1024)

struct ag_metrics {
	struct MHD_Daemon *mhd;
	struct ag_loop *loop;
	struct ag_ev ev;       /* MHD's epoll fd */
	struct ag_timer timer; /* MHD's next timeout */
	ag_metrics_collect_fn collect;
	void *ctx;
	uint16_t port;
	uint64_t scrapes;
};

static const char content_type[] = "text/plain; version=0.0.4; charset=utf-8";

static enum MHD_Result reply_static(struct MHD_Connection *conn, unsigned int status,
				    const char *body, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct ag_metrics *m = cls;
	struct ag_metrics_snapshot s = {};
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len;
	char *body;
	int err;

	if (strcmp(url, "/metrics"))
		return reply_static(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", NULL);
	/* HEAD is GET without the body (MHD leaves the body out). */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				    "method not allowed: GET /metrics\n", "GET, HEAD");

	err = m->collect(m->ctx, &s);
	if (err) {
		ag_metrics_snapshot__free(&s);
		pr_warn("metrics: collecting: %s\n", strerror(-err));
		return reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "collecting metrics failed\n", NULL);
	}
	body = ag_metrics__render(&s, &len);
	ag_metrics_snapshot__free(&s);
	if (!body)
		return reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	m->scrapes++;
	return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	pr_warn("metrics: %s\n", msg);
}

/* After every MHD_run: wake up again when MHD wants to (timeouts, ready connections). */
static void rearm(struct ag_metrics *m)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(m->mhd, &ms) == MHD_YES)
		ag_timer__arm(&m->timer, ms * 1000000ull, 0);
	else
		ag_timer__arm(&m->timer, 3600ull * 1000000000ull, 0); /* nothing pending */
}

static void on_ready(struct ag_ev *ev, uint32_t events)
{
	struct ag_metrics *m = ev->data;

	MHD_run(m->mhd);
	rearm(m);
}

static void on_timer(struct ag_timer *t)
{
	struct ag_metrics *m = t->data;

	MHD_run(m->mhd);
	rearm(m);
}

struct ag_metrics *ag_metrics__start(struct ag_loop *loop, uint32_t ip, uint16_t port,
				     ag_metrics_collect_fn collect, void *ctx)
{
	struct sockaddr_in sa = {
	    .sin_family = AF_INET, .sin_addr.s_addr = ip, .sin_port = htons(port)};
	const union MHD_DaemonInfo *info;
	char addr[INET_ADDRSTRLEN];
	struct ag_metrics *m;
	int err;

	inet_ntop(AF_INET, &ip, addr, sizeof(addr));
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->loop = loop;
	m->collect = collect;
	m->ctx = ctx;
	m->ev.fd = -1;
	m->timer.ev.fd = -1;
	/*
	 * No MHD_USE_INTERNAL_POLLING_THREAD: MHD runs only when we call MHD_run.
	 * MHD sets SO_REUSEADDR itself (a restarted anygated binds again while
	 * the old one's connections sit in TIME_WAIT); no SO_REUSEPORT, so a
	 * second anygated on the same address fails instead of sharing scrapes.
	 */
	m->mhd = MHD_start_daemon(
	    MHD_USE_EPOLL | MHD_USE_ERROR_LOG, port, NULL, NULL, handle_request, m,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)AG_METRICS_CONN_LIMIT,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)AG_METRICS_CONN_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)AG_METRICS_CONN_MEMORY, MHD_OPTION_END);
	if (!m->mhd) {
		/* MHD does not say why; a bind failure is by far the likeliest. */
		err = errno ? -errno : -EADDRINUSE;
		pr_err("metrics: cannot serve on %s:%u: %s\n", addr, port, strerror(-err));
		goto err_free;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		err = -EINVAL;
		pr_err("metrics: libmicrohttpd gave no epoll fd\n");
		goto err_stop;
	}
	m->ev.fd = info->epoll_fd;
	m->ev.cb = on_ready;
	m->ev.data = m;
	err = ag_loop__add(loop, &m->ev, EPOLLIN);
	if (err) {
		m->ev.fd = -1;
		goto err_stop;
	}
	err = ag_timer__init(loop, &m->timer, on_timer, m);
	if (err)
		goto err_stop;
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
	m->port = info ? info->port : port;
	rearm(m);
	pr_info("metrics: serving http://%s:%u/metrics\n", addr, m->port);
	return m;

err_stop:
	ag_metrics__stop(m);
	errno = -err;
	return NULL;
err_free:
	free(m);
	errno = -err;
	return NULL;
}

uint16_t ag_metrics__port(const struct ag_metrics *m)
{
	return m->port;
}

void ag_metrics__stop(struct ag_metrics *m)
{
	if (!m)
		return;
	ag_timer__fini(m->loop, &m->timer);
	if (m->ev.fd >= 0)
		ag_loop__del(m->loop, &m->ev); /* MHD owns and closes the fd */
	MHD_stop_daemon(m->mhd);
	free(m);
}
