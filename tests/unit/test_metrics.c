/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Prometheus text builder (exact output of a small case, label escaping,
 * series left out when unknown) and the HTTP endpoint driven by the real
 * event loop over a loopback socket (200 with the text, 404, 405).
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "metrics.h"

/* The fake stats source: one listener, one backend, one drop and one pass reason. */
static void fake_fill(struct ag_metrics_snapshot *s, const char *accel)
{
	struct ag_metrics_listener *l = calloc(1, sizeof(*l));
	struct ag_metrics_backend *b = calloc(1, sizeof(*b));

	CU_ASSERT_FATAL(l && b);
	l->accelerator = accel;
	snprintf(l->listener, sizeof(l->listener), "tcp:80");
	l->fastpath = "xdp";
	l->traffic = (struct ag_traffic_stats){
	    .packets = 10, .bytes = 1500, .new_flows = 2, .ret_packets = 8, .ret_bytes = 4000};
	l->failing_open = true;
	l->fail_open_new_flows = 2;
	l->fail_open_episodes = 1;
	b->accelerator = accel;
	snprintf(b->listener, sizeof(b->listener), "tcp:80");
	b->region = "eu-west";
	snprintf(b->address, sizeof(b->address), "10.1.1.11");
	b->traffic = (struct ag_traffic_stats){
	    .packets = 10, .bytes = 1500, .new_flows = 2, .ret_packets = 8, .ret_bytes = 4000};
	b->active_flows = 1;
	b->up = true;
	b->srtt_ns = 1500000; /* 1.5 ms */
	b->weight = 128;
	b->share = 0.5;
	b->probes[AG_PROBE_OK] = 7;
	b->probes[AG_PROBE_TIMEOUT] = 1;
	s->listeners = l;
	s->n_listeners = 1;
	s->backends = b;
	s->n_backends = 1;
	s->reasons[0] = (struct ag_metrics_reason){"pass_no_listener", 3, 180};
	s->reasons[1] = (struct ag_metrics_reason){"drop_truncated_eth", 1, 10};
	s->reasons[2] = (struct ag_metrics_reason){"nat_port_takeover", 2, 120};
	s->n_reasons = 3;
	s->flow_entries = 5;
	s->flow_max_entries = 10;
	s->flow_states[0] = (struct ag_metrics_flow_state){"half-open", 3, 1};
	s->flow_states[1] = (struct ag_metrics_flow_state){"udp", 4, 0};
	s->n_flow_states = 2;
	s->nat_rev_entries = 6;
	s->nat_orphans_removed = 2;
	s->sweeps = 9;
	s->last_sweep_ns = 1500000; /* 1.5 ms */
	s->publishes = 4;
	s->last_publish_ns = 250000; /* 0.25 ms */
	s->reloads = 1;
	s->reload_failures = 2;
	s->failovers = 1;
	s->last_failover_ns = 3000000; /* 3 ms */
	s->control = (struct ag_metrics_control){.present = true,
						 .clients = 3,
						 .accepted = 40,
						 .refused_busy = 1,
						 .refused_admin_slots = 2,
						 .refused_uid = 5,
						 .denied = 6,
						 .replies_too_big = 7,
						 .replies_no_room = 8,
						 .streams_failed = 9,
						 .stream_waits = 10,
						 .closed_idle = 11,
						 .closed_long_line = 12,
						 .queued = 4096,
						 .queued_peak = 65536};
	s->version = "0.1.0";
	s->abi = 1;
}

#define LL "{accelerator=\"web\",listener=\"tcp:80\",fastpath=\"xdp\"}"
#define BL "{accelerator=\"web\",listener=\"tcp:80\",region=\"eu-west\",address=\"10.1.1.11\""

static const char expected[] =
    "# HELP anygate_listener_packets_total Client-to-backend packets forwarded by the fast path.\n"
    "# TYPE anygate_listener_packets_total counter\n"
    "anygate_listener_packets_total" LL " 10\n"
    "# HELP anygate_listener_bytes_total Client-to-backend bytes forwarded (IP packet length).\n"
    "# TYPE anygate_listener_bytes_total counter\n"
    "anygate_listener_bytes_total" LL " 1500\n"
    "# HELP anygate_listener_new_flows_total Flows created (first packet of a new flow).\n"
    "# TYPE anygate_listener_new_flows_total counter\n"
    "anygate_listener_new_flows_total" LL " 2\n"
    "# HELP anygate_listener_return_packets_total Backend-to-client packets forwarded by the "
    "fast path (reverse NAT).\n"
    "# TYPE anygate_listener_return_packets_total counter\n"
    "anygate_listener_return_packets_total" LL " 8\n"
    "# HELP anygate_listener_return_bytes_total Backend-to-client bytes forwarded (IP packet "
    "length).\n"
    "# TYPE anygate_listener_return_bytes_total counter\n"
    "anygate_listener_return_bytes_total" LL " 4000\n"
    "# HELP anygate_listener_failing_open 1 while every endpoint of the listener is down and "
    "failure_policy fail_open forwards its new flows to them anyway.\n"
    "# TYPE anygate_listener_failing_open gauge\n"
    "anygate_listener_failing_open" LL " 1\n"
    "# HELP anygate_listener_fail_open_new_flows_total New flows the listener forwarded while "
    "failing open.\n"
    "# TYPE anygate_listener_fail_open_new_flows_total counter\n"
    "anygate_listener_fail_open_new_flows_total" LL " 2\n"
    "# HELP anygate_listener_fail_open_episodes_total Times the listener began failing open.\n"
    "# TYPE anygate_listener_fail_open_episodes_total counter\n"
    "anygate_listener_fail_open_episodes_total" LL " 1\n"
    "# HELP anygate_backend_packets_total Client-to-backend packets forwarded by the fast path.\n"
    "# TYPE anygate_backend_packets_total counter\n"
    "anygate_backend_packets_total" BL "} 10\n"
    "# HELP anygate_backend_bytes_total Client-to-backend bytes forwarded (IP packet length).\n"
    "# TYPE anygate_backend_bytes_total counter\n"
    "anygate_backend_bytes_total" BL "} 1500\n"
    "# HELP anygate_backend_new_flows_total Flows created (first packet of a new flow).\n"
    "# TYPE anygate_backend_new_flows_total counter\n"
    "anygate_backend_new_flows_total" BL "} 2\n"
    "# HELP anygate_backend_return_packets_total Backend-to-client packets forwarded by the "
    "fast path (reverse NAT).\n"
    "# TYPE anygate_backend_return_packets_total counter\n"
    "anygate_backend_return_packets_total" BL "} 8\n"
    "# HELP anygate_backend_return_bytes_total Backend-to-client bytes forwarded (IP packet "
    "length).\n"
    "# TYPE anygate_backend_return_bytes_total counter\n"
    "anygate_backend_return_bytes_total" BL "} 4000\n"
    "# HELP anygate_backend_active_flows Flows pinned to the backend and not idle past their "
    "idle timeout (the flow table is walked at most once a second).\n"
    "# TYPE anygate_backend_active_flows gauge\n"
    "anygate_backend_active_flows" BL "} 1\n"
    "# HELP anygate_backend_up Health state from the probes: 1 up, 0 down.\n"
    "# TYPE anygate_backend_up gauge\n"
    "anygate_backend_up" BL "} 1\n"
    "# HELP anygate_backend_rtt_seconds Smoothed health-probe round-trip time (RFC 6298); no "
    "series before the first successful probe.\n"
    "# TYPE anygate_backend_rtt_seconds gauge\n"
    "anygate_backend_rtt_seconds" BL "} 0.0015\n"
    "# HELP anygate_backend_weight Effective weight (0-255): configured, or the operator's "
    "override; 0 when drained.\n"
    "# TYPE anygate_backend_weight gauge\n"
    "anygate_backend_weight" BL "} 128\n"
    "# HELP anygate_backend_new_flow_share_ratio Share (0-1) of its listener's new flows the "
    "published tables give the backend.\n"
    "# TYPE anygate_backend_new_flow_share_ratio gauge\n"
    "anygate_backend_new_flow_share_ratio" BL "} 0.5\n"
    "# HELP anygate_backend_probes_total Health probes of the backend, by result.\n"
    "# TYPE anygate_backend_probes_total counter\n"
    "anygate_backend_probes_total" BL ",result=\"ok\"} 7\n"
    "anygate_backend_probes_total" BL ",result=\"timeout\"} 1\n"
    "anygate_backend_probes_total" BL ",result=\"refused\"} 0\n"
    "anygate_backend_probes_total" BL ",result=\"unreachable\"} 0\n"
    "anygate_backend_probes_total" BL ",result=\"bad_status\"} 0\n"
    "anygate_backend_probes_total" BL ",result=\"bad_reply\"} 0\n"
    "anygate_backend_probes_total" BL ",result=\"error\"} 0\n"
    "# HELP anygate_dropped_packets_total Packets the fast path dropped, by reason.\n"
    "# TYPE anygate_dropped_packets_total counter\n"
    "anygate_dropped_packets_total{reason=\"drop_truncated_eth\"} 1\n"
    "# HELP anygate_dropped_bytes_total Bytes of packets the fast path dropped, by reason.\n"
    "# TYPE anygate_dropped_bytes_total counter\n"
    "anygate_dropped_bytes_total{reason=\"drop_truncated_eth\"} 10\n"
    "# HELP anygate_passed_packets_total Packets the fast path passed to the kernel instead of "
    "forwarding, by reason.\n"
    "# TYPE anygate_passed_packets_total counter\n"
    "anygate_passed_packets_total{reason=\"pass_no_listener\"} 3\n"
    "# HELP anygate_passed_bytes_total Bytes of packets passed to the kernel, by reason.\n"
    "# TYPE anygate_passed_bytes_total counter\n"
    "anygate_passed_bytes_total{reason=\"pass_no_listener\"} 180\n"
    "# HELP anygate_handled_packets_total Packets the fast path handled itself besides "
    "forwarding: answered (RST, SYN challenge), verified their source, moved or kept their "
    "flow, or took over a NAT port, by reason.\n"
    "# TYPE anygate_handled_packets_total counter\n"
    "anygate_handled_packets_total{reason=\"nat_port_takeover\"} 2\n"
    "# HELP anygate_handled_bytes_total Bytes of packets the fast path handled itself, by "
    "reason.\n"
    "# TYPE anygate_handled_bytes_total counter\n"
    "anygate_handled_bytes_total{reason=\"nat_port_takeover\"} 120\n"
    "# HELP anygate_flow_table_entries Entries in the fast path's flow table, expired ones not "
    "yet removed included.\n"
    "# TYPE anygate_flow_table_entries gauge\n"
    "anygate_flow_table_entries 5\n"
    "# HELP anygate_flow_table_max_entries Size of the flow table (edge.max_flows); the NAT "
    "reverse table has as many.\n"
    "# TYPE anygate_flow_table_max_entries gauge\n"
    "anygate_flow_table_max_entries 10\n"
    "# HELP anygate_flow_table_fill_ratio Flow table entries over its size (0-1): past 0.9 the "
    "sweeper removes half-open and closing flows before their timeout, when full new flows are "
    "refused.\n"
    "# TYPE anygate_flow_table_fill_ratio gauge\n"
    "anygate_flow_table_fill_ratio 0.5\n"
    "# HELP anygate_flows_expired_total Flows (with their NAT reverse entry) the sweeper "
    "removed idle past the timeout of their state.\n"
    "# TYPE anygate_flows_expired_total counter\n"
    "anygate_flows_expired_total{state=\"half-open\"} 3\n"
    "anygate_flows_expired_total{state=\"udp\"} 4\n"
    "# HELP anygate_flows_evicted_total Flows the sweeper removed before their timeout because "
    "the table was near full (half-open and closing flows only; an established flow never "
    "is).\n"
    "# TYPE anygate_flows_evicted_total counter\n"
    "anygate_flows_evicted_total{state=\"half-open\"} 1\n"
    "anygate_flows_evicted_total{state=\"udp\"} 0\n"
    "# HELP anygate_nat_reverse_entries Entries in the NAT reverse table at the sweeper's last "
    "complete walk.\n"
    "# TYPE anygate_nat_reverse_entries gauge\n"
    "anygate_nat_reverse_entries 6\n"
    "# HELP anygate_nat_orphans_removed_total NAT reverse entries no flow owned that the "
    "sweeper removed once quiet.\n"
    "# TYPE anygate_nat_orphans_removed_total counter\n"
    "anygate_nat_orphans_removed_total 2\n"
    "# HELP anygate_flow_sweeps_total Passes of the flow-table sweeper.\n"
    "# TYPE anygate_flow_sweeps_total counter\n"
    "anygate_flow_sweeps_total 9\n"
    "# HELP anygate_flow_sweep_last_duration_seconds How long the sweeper's last pass took.\n"
    "# TYPE anygate_flow_sweep_last_duration_seconds gauge\n"
    "anygate_flow_sweep_last_duration_seconds 0.0015\n"
    "# HELP anygate_table_publishes_total Lookup-table publishes (start, reload, health or "
    "operator change).\n"
    "# TYPE anygate_table_publishes_total counter\n"
    "anygate_table_publishes_total 4\n"
    "# HELP anygate_table_last_publish_duration_seconds How long the last publish took, build "
    "to switch.\n"
    "# TYPE anygate_table_last_publish_duration_seconds gauge\n"
    "anygate_table_last_publish_duration_seconds 0.00025\n"
    "# HELP anygate_config_reloads_total Configuration reloads applied (SIGHUP or control "
    "socket).\n"
    "# TYPE anygate_config_reloads_total counter\n"
    "anygate_config_reloads_total 1\n"
    "# HELP anygate_config_reload_failures_total Configuration reloads refused (bad config or "
    "failed publish; tables unchanged).\n"
    "# TYPE anygate_config_reload_failures_total counter\n"
    "anygate_config_reload_failures_total 2\n"
    "# HELP anygate_failovers_total Health state changes published to the fast path.\n"
    "# TYPE anygate_failovers_total counter\n"
    "anygate_failovers_total 1\n"
    "# HELP anygate_last_failover_switch_seconds Time from the probe result that decided the "
    "last health change to the table switch; no series before the first change.\n"
    "# TYPE anygate_last_failover_switch_seconds gauge\n"
    "anygate_last_failover_switch_seconds 0.003\n"
    "# HELP anygate_build_info Always 1; labels name the anygated version and the table ABI "
    "version.\n"
    "# TYPE anygate_build_info gauge\n"
    "anygate_build_info{version=\"0.1.0\",abi=\"1\"} 1\n"
    "# HELP anygate_control_clients Control socket connections now.\n"
    "# TYPE anygate_control_clients gauge\n"
    "anygate_control_clients 3\n"
    "# HELP anygate_control_connections_total Control socket connections accepted.\n"
    "# TYPE anygate_control_connections_total counter\n"
    "anygate_control_connections_total 40\n"
    "# HELP anygate_control_refused_total Control socket connections refused, by the limit they "
    "met.\n"
    "# TYPE anygate_control_refused_total counter\n"
    "anygate_control_refused_total{reason=\"all_slots_taken\"} 1\n"
    "anygate_control_refused_total{reason=\"admin_slots\"} 2\n"
    "anygate_control_refused_total{reason=\"per_uid\"} 5\n"
    "# HELP anygate_control_denied_total Admin commands refused to read-only peers.\n"
    "# TYPE anygate_control_denied_total counter\n"
    "anygate_control_denied_total 6\n"
    "# HELP anygate_control_replies_refused_total Replies refused with an error instead: larger "
    "than the bound for one client, or no room under the bound for all.\n"
    "# TYPE anygate_control_replies_refused_total counter\n"
    "anygate_control_replies_refused_total{reason=\"too_big\"} 7\n"
    "anygate_control_replies_refused_total{reason=\"no_room\"} 8\n"
    "# HELP anygate_control_streams_failed_total Streamed replies (flows, endpoints) that ended "
    "with an error.\n"
    "# TYPE anygate_control_streams_failed_total counter\n"
    "anygate_control_streams_failed_total 9\n"
    "# HELP anygate_control_stream_waits_total Times a streamed reply waited for room under the "
    "bound on all queued bytes.\n"
    "# TYPE anygate_control_stream_waits_total counter\n"
    "anygate_control_stream_waits_total 10\n"
    "# HELP anygate_control_closed_total Control socket connections the daemon closed, by "
    "reason.\n"
    "# TYPE anygate_control_closed_total counter\n"
    "anygate_control_closed_total{reason=\"idle\"} 11\n"
    "anygate_control_closed_total{reason=\"long_line\"} 12\n"
    "# HELP anygate_control_queued_bytes Reply bytes waiting for control clients to read them.\n"
    "# TYPE anygate_control_queued_bytes gauge\n"
    "anygate_control_queued_bytes 4096\n"
    "# HELP anygate_control_queued_peak_bytes The most reply bytes that ever waited for control "
    "clients at once.\n"
    "# TYPE anygate_control_queued_peak_bytes gauge\n"
    "anygate_control_queued_peak_bytes 65536\n";

static void test_exact_output(void)
{
	struct ag_metrics_snapshot s = {};
	size_t len = 0;
	char *text;

	fake_fill(&s, "web");
	text = ag_metrics__render(&s, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_EQUAL(len, strlen(text));
	CU_ASSERT_STRING_EQUAL(text, expected);
	if (strcmp(text, expected)) {
		size_t i = 0;

		while (text[i] && text[i] == expected[i])
			i++;
		fprintf(stderr, "\nfirst difference at %zu:\n got: %.80s\nwant: %.80s\n", i,
			text + i, expected + i);
	}
	free(text);
	ag_metrics_snapshot__free(&s);
	CU_ASSERT_PTR_NULL(s.listeners);
}

static void test_label_escaping(void)
{
	struct ag_metrics_snapshot s = {};
	size_t len;
	char *text;

	/* Accelerator names are validated, but the builder must not rely on it. */
	fake_fill(&s, "a\"b\\c\nd");
	text = ag_metrics__render(&s, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "anygate_listener_packets_total{accelerator="
					    "\"a\\\"b\\\\c\\nd\",listener=\"tcp:80\","
					    "fastpath=\"xdp\"} 10\n"));
	/* No raw newline inside any sample: every line starts with # or a name. */
	{
		const char *p = text;

		while (*p) {
			CU_ASSERT(*p == '#' || !strncmp(p, "anygate_", 8));
			p = strchr(p, '\n');
			CU_ASSERT_PTR_NOT_NULL_FATAL(p);
			p++;
		}
	}
	free(text);
	ag_metrics_snapshot__free(&s);
}

static void test_unknown_series_left_out(void)
{
	struct ag_metrics_snapshot s = {};
	size_t len;
	char *text;

	fake_fill(&s, "web");
	s.backends[0].srtt_ns = 0;
	s.backends[0].up = false;
	s.failovers = 0;
	text = ag_metrics__render(&s, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	/* Family announced, no sample. */
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE anygate_backend_rtt_seconds gauge\n# HELP"));
	CU_ASSERT_PTR_NULL(strstr(text, "\nanygate_backend_rtt_seconds{"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE anygate_last_failover_switch_seconds gauge\n"
					    "# HELP anygate_build_info"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nanygate_backend_up" BL "} 0\n"));
	free(text);
	ag_metrics_snapshot__free(&s);
}

/* A fast path anygated does not sweep (anygate-dp), and an unknown table size: no series. */
static void test_no_sweeper_series(void)
{
	struct ag_metrics_snapshot s = {};
	size_t len;
	char *text;

	fake_fill(&s, "web");
	s.n_flow_states = 0;
	s.flow_max_entries = 0;
	text = ag_metrics__render(&s, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nanygate_flow_table_entries 5\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE anygate_flows_expired_total counter\n# HELP"));
	CU_ASSERT_PTR_NULL(strstr(text, "\nanygate_flows_expired_total{"));
	CU_ASSERT_PTR_NULL(strstr(text, "\nanygate_flow_table_fill_ratio "));
	CU_ASSERT_PTR_NULL(strstr(text, "\nanygate_flow_sweeps_total "));
	free(text);
	ag_metrics_snapshot__free(&s);
}

static void test_empty_snapshot(void)
{
	struct ag_metrics_snapshot s = {.version = "x"};
	size_t len;
	char *text = ag_metrics__render(&s, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE anygate_listener_packets_total counter\n"
					    "# HELP anygate_listener_bytes_total"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "anygate_build_info{version=\"x\",abi=\"0\"} 1\n"));
	free(text);
}

/* ------------------------------------------------ the endpoint, on the loop */

static int fake_collect(void *ctx, struct ag_metrics_snapshot *s)
{
	unsigned int *calls = ctx;

	(*calls)++;
	fake_fill(s, "web");
	return 0;
}

struct client {
	struct ag_ev ev;
	struct ag_loop *loop;
	char buf[65536];
	size_t len;
};

static void client_ready(struct ag_ev *ev, uint32_t events)
{
	struct client *c = ag_container_of(ev, struct client, ev);
	ssize_t n;

	for (;;) {
		n = read(ev->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
		if (n > 0) {
			c->len += (size_t)n;
			c->buf[c->len] = '\0';
			if (c->len == sizeof(c->buf) - 1)
				break;
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			return;
		break; /* EOF or error: the reply is complete */
	}
	ag_loop__stop(c->loop);
}

static void give_up(struct ag_timer *t)
{
	ag_loop__stop(t->data);
}

/* One HTTP/1.0 exchange with the endpoint, the loop driving both sides. */
static void exchange(struct ag_loop *loop, uint16_t port, const char *request, struct client *c)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct ag_timer deadline = {.ev = {.fd = -1}};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(c, 0, sizeof(*c));
	CU_ASSERT_FATAL(fd >= 0);
	/* Blocking connect and send: the listen backlog takes them before MHD runs. */
	CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CU_ASSERT_FATAL(write(fd, request, strlen(request)) == (ssize_t)strlen(request));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->ev.fd = fd;
	c->ev.cb = client_ready;
	c->loop = loop;
	CU_ASSERT_FATAL(ag_loop__add(loop, &c->ev, EPOLLIN) == 0);
	CU_ASSERT_FATAL(ag_timer__init(loop, &deadline, give_up, loop) == 0);
	ag_timer__arm(&deadline, 5000000000ull, 0); /* a hang fails, not blocks */
	loop->stop = false;
	CU_ASSERT(ag_loop__run(loop) == 0);
	ag_timer__fini(loop, &deadline);
	ag_loop__del(loop, &c->ev);
	close(fd);
}

static void test_http_endpoint(void)
{
	struct ag_loop loop = {.epfd = -1};
	unsigned int calls = 0;
	struct ag_metrics *m;
	struct client *c = malloc(sizeof(*c));
	const char *body;

	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_FATAL(ag_loop__init(&loop) == 0);
	m = ag_metrics__start(&loop, htonl(INADDR_LOOPBACK), 0, fake_collect, &calls);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT(ag_metrics__port(m) != 0);

	exchange(&loop, ag_metrics__port(m), "GET /metrics HTTP/1.0\r\n\r\n", c);
	CU_ASSERT(!strncmp(c->buf, "HTTP/1.0 200", 12) || !strncmp(c->buf, "HTTP/1.1 200", 12));
	CU_ASSERT_PTR_NOT_NULL(strstr(c->buf, "Content-Type: text/plain; version=0.0.4"));
	body = strstr(c->buf, "\r\n\r\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	CU_ASSERT_STRING_EQUAL(body + 4, expected);
	CU_ASSERT_EQUAL(calls, 1);

	exchange(&loop, ag_metrics__port(m), "GET /other HTTP/1.0\r\n\r\n", c);
	CU_ASSERT(!strncmp(c->buf + 9, "404", 3));
	exchange(&loop, ag_metrics__port(m), "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
		 c);
	CU_ASSERT(!strncmp(c->buf + 9, "405", 3));
	CU_ASSERT_PTR_NOT_NULL(strstr(c->buf, "Allow: GET, HEAD"));
	CU_ASSERT_EQUAL(calls, 1); /* only GET /metrics collects */

	/* A second endpoint on the same address is refused, with a reason. */
	errno = 0;
	CU_ASSERT_PTR_NULL(ag_metrics__start(&loop, htonl(INADDR_LOOPBACK), ag_metrics__port(m),
					     fake_collect, &calls));
	CU_ASSERT_EQUAL(errno, EADDRINUSE);

	ag_metrics__stop(m);
	ag_loop__fini(&loop);
	free(c);
}

int main(void)
{
	CU_pSuite s;
	unsigned int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return CU_get_error();
	s = CU_add_suite("metrics", NULL, NULL);
	CU_add_test(s, "exact output of a small case", test_exact_output);
	CU_add_test(s, "label values escaped", test_label_escaping);
	CU_add_test(s, "unknown RTT and failover: no series", test_unknown_series_left_out);
	CU_add_test(s, "no sweeper, unknown size: no flow-table series", test_no_sweeper_series);
	CU_add_test(s, "empty snapshot: families still announced", test_empty_snapshot);
	CU_add_test(s, "HTTP endpoint on the event loop", test_http_endpoint);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
