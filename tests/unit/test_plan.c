/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Plan layout, weight compiler and table publisher: pure functions, tested
 * with configs built in memory and a publisher sink backed by plain arrays.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "maglev.h"
#include "plan.h"
#include "publish.h"

#define EPS 1e-9

/* --- building configs in memory --- */

static struct ag_cfg_endpoint *endpoints(unsigned int n, const uint8_t *weights, int net)
{
	struct ag_cfg_endpoint *e = calloc(n, sizeof(*e));
	unsigned int i;
	char buf[32];

	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "10.%d.1.%u", net, 11 + i);
		inet_pton(AF_INET, buf, &e[i].addr);
		e[i].weight = weights[i];
	}
	return e;
}

static void add_group(struct ag_cfg_listener *l, const char *region, uint8_t dial, unsigned int n,
		      const uint8_t *weights)
{
	struct ag_cfg_group *g;

	l->groups = realloc(l->groups, (l->n_groups + 1) * sizeof(*l->groups));
	g = &l->groups[l->n_groups];
	memset(g, 0, sizeof(*g));
	snprintf(g->region, sizeof(g->region), "%s", region);
	g->traffic_dial = dial;
	g->endpoints = endpoints(n, weights, (int)l->n_groups + 1);
	g->n_endpoints = n;
	l->n_groups++;
}

static struct ag_config *new_config(void)
{
	struct ag_config *cfg = calloc(1, sizeof(*cfg));
	struct ag_cfg_accelerator *a;
	struct ag_cfg_listener *l;

	cfg->edge.ring_size = 65537;
	cfg->edge.hash_seed = 0x5eed;
	cfg->edge.n_nat_addrs = 1;
	cfg->edge.nat_addrs = calloc(1, sizeof(uint32_t));
	cfg->edge.nat_addrs[0] = htonl(0x0aff0001);
	cfg->edge.nat_port_min = 1024;
	cfg->edge.nat_port_max = 65535;
	cfg->edge.tcp_idle_s = 340;
	cfg->edge.udp_idle_s = 30;
	cfg->accels = calloc(1, sizeof(*cfg->accels));
	cfg->n_accels = 1;
	a = &cfg->accels[0];
	snprintf(a->name, sizeof(a->name), "web");
	a->addrs = calloc(1, sizeof(uint32_t));
	a->addrs[0] = htonl(0xc633640a);
	a->n_addrs = 1;
	a->listeners = calloc(1, sizeof(*a->listeners));
	a->n_listeners = 1;
	l = &a->listeners[0];
	l->proto = IPPROTO_TCP;
	l->ranges = calloc(1, sizeof(*l->ranges));
	l->ranges[0].first = 80;
	l->ranges[0].last = 80;
	l->n_ranges = 1;
	l->overprovisioning = 1.4;
	return cfg;
}

static void free_config(struct ag_config *cfg)
{
	struct ag_cfg_listener *l = &cfg->accels[0].listeners[0];
	unsigned int g;

	for (g = 0; g < l->n_groups; g++)
		free(l->groups[g].endpoints);
	free(l->groups);
	free(l->ranges);
	free(cfg->accels[0].listeners);
	free(cfg->accels[0].addrs);
	free(cfg->accels);
	free(cfg->edge.nat_addrs);
	free(cfg);
}

static struct ag_cfg_listener *listener0(struct ag_config *cfg)
{
	return &cfg->accels[0].listeners[0];
}

/* --- layout --- */

static void test_layout_ids(void)
{
	static const uint8_t w2[] = {1, 1}, w3[] = {1, 1, 2};
	struct ag_config *cfg = new_config();
	struct ag_plan *plan;

	add_group(listener0(cfg), "eu-west", 100, 2, w2);
	add_group(listener0(cfg), "us-east", 100, 3, w3);
	plan = ag_plan__new(cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(plan);
	CU_ASSERT_EQUAL(plan->n_listeners, 1);
	CU_ASSERT_EQUAL(plan->n_groups, 2);
	CU_ASSERT_EQUAL(plan->n_backends, 5);
	CU_ASSERT_EQUAL(plan->groups[1].first_backend, 2);
	CU_ASSERT_EQUAL(plan->groups[1].n_backends, 3);
	CU_ASSERT_EQUAL(plan->backends[4].group_id, 1);
	CU_ASSERT_EQUAL(plan->backends[4].weight, 2);
	CU_ASSERT_EQUAL(plan->backends[4].addr, listener0(cfg)->groups[1].endpoints[2].addr);
	ag_plan__free(plan);
	free_config(cfg);
}

/* --- compiler --- */

static void compile(struct ag_config *cfg, const bool *up, double *share, double *gshare)
{
	struct ag_plan *plan = ag_plan__new(cfg);
	struct ag_view view = {.up = up};

	CU_ASSERT_PTR_NOT_NULL_FATAL(plan);
	CU_ASSERT_EQUAL(ag_plan__compile(plan, 0, &view, share, gshare), 0);
	CU_ASSERT_EQUAL(ag_plan__compile(plan, 1, &view, share, gshare), -EINVAL);
	ag_plan__free(plan);
}

static void test_weights_within_group(void)
{
	static const uint8_t w[] = {1, 1, 2};
	struct ag_config *cfg = new_config();
	double share[3], gshare[1];

	add_group(listener0(cfg), "eu-west", 100, 3, w);
	compile(cfg, NULL, share, gshare);
	CU_ASSERT_DOUBLE_EQUAL(share[0], 0.25, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[1], 0.25, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[2], 0.50, EPS);
	CU_ASSERT_DOUBLE_EQUAL(gshare[0], 1.0, EPS);
	free_config(cfg);
}

static void test_nearest_takes_all_at_dial_100(void)
{
	static const uint8_t w[] = {100, 100};
	struct ag_config *cfg = new_config();
	double share[6], gshare[3];

	add_group(listener0(cfg), "eu-west", 100, 2, w);
	add_group(listener0(cfg), "us-east", 100, 2, w);
	add_group(listener0(cfg), "ap-south", 100, 2, w);
	compile(cfg, NULL, share, gshare);
	CU_ASSERT_DOUBLE_EQUAL(gshare[0], 1.0, EPS);
	CU_ASSERT_DOUBLE_EQUAL(gshare[1], 0.0, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[0], 0.5, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[1], 0.5, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[2], 0.0, EPS);
	free_config(cfg);
}

static void test_dial_spills_to_next(void)
{
	static const uint8_t w[] = {100, 100};
	struct ag_config *cfg = new_config();
	double share[6], gshare[3];

	add_group(listener0(cfg), "eu-west", 30, 2, w);
	add_group(listener0(cfg), "us-east", 100, 2, w);
	add_group(listener0(cfg), "ap-south", 100, 2, w);
	compile(cfg, NULL, share, gshare);
	CU_ASSERT_DOUBLE_EQUAL(gshare[0], 0.30, EPS);
	CU_ASSERT_DOUBLE_EQUAL(gshare[1], 0.70, EPS);
	CU_ASSERT_DOUBLE_EQUAL(gshare[2], 0.0, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[2] + share[3], 0.70, EPS);
	free_config(cfg);
}

static void test_leftover_goes_back_proportionally(void)
{
	static const uint8_t w[] = {10};
	struct ag_config *cfg = new_config();
	double share[2], gshare[2];

	/* 0.4 taken by eu, 0.6 * 0.5 = 0.3 by us, 0.3 left: back 4:3. */
	add_group(listener0(cfg), "eu-west", 40, 1, w);
	add_group(listener0(cfg), "us-east", 50, 1, w);
	compile(cfg, NULL, share, gshare);
	CU_ASSERT_DOUBLE_EQUAL(gshare[0], 4.0 / 7.0, EPS);
	CU_ASSERT_DOUBLE_EQUAL(gshare[1], 3.0 / 7.0, EPS);
	free_config(cfg);
}

static void test_region_order_pins_nearest(void)
{
	static const uint8_t w[] = {1};
	struct ag_config *cfg = new_config();
	char *order[] = {"us-east"};
	double share[2], gshare[2];

	add_group(listener0(cfg), "eu-west", 100, 1, w);
	add_group(listener0(cfg), "us-east", 100, 1, w);
	listener0(cfg)->region_order = order;
	listener0(cfg)->n_region_order = 1;
	compile(cfg, NULL, share, gshare);
	CU_ASSERT_DOUBLE_EQUAL(gshare[0], 0.0, EPS);
	CU_ASSERT_DOUBLE_EQUAL(gshare[1], 1.0, EPS);
	listener0(cfg)->region_order = NULL;
	listener0(cfg)->n_region_order = 0;
	free_config(cfg);
}

static void test_zero_weight_and_unhealthy(void)
{
	static const uint8_t w[] = {0, 50, 50}, w2[] = {10};
	struct ag_config *cfg = new_config();
	bool up[4] = {true, true, false, true};
	double share[4], gshare[2];

	add_group(listener0(cfg), "eu-west", 100, 3, w);
	add_group(listener0(cfg), "us-east", 100, 1, w2);
	/* Half the weight healthy x 1.4 = 0.7 stays, 0.3 spills. */
	compile(cfg, up, share, gshare);
	CU_ASSERT_DOUBLE_EQUAL(share[0], 0.0, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[1], 0.7, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[2], 0.0, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[3], 0.3, EPS);
	free_config(cfg);
}

static void test_nothing_healthy_policies(void)
{
	static const uint8_t w[] = {1, 3};
	struct ag_config *cfg = new_config();
	bool up[4] = {false, false, false, false};
	double share[4], gshare[2];

	add_group(listener0(cfg), "eu-west", 100, 2, w);
	add_group(listener0(cfg), "us-east", 100, 2, w);
	listener0(cfg)->failure_policy = AG_FAIL_OPEN;
	compile(cfg, up, share, gshare);
	CU_ASSERT_DOUBLE_EQUAL(share[0], 0.25, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[1], 0.75, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[2] + share[3], 0.0, EPS);

	listener0(cfg)->failure_policy = AG_FAIL_DROP;
	compile(cfg, up, share, gshare);
	CU_ASSERT_DOUBLE_EQUAL(share[0] + share[1] + share[2] + share[3], 0.0, EPS);
	free_config(cfg);
}

/* When a listener fails open, and when not: it applies only with nothing healthy anywhere. */
static void test_fail_open_applies(void)
{
	static const uint8_t w[] = {1, 3};
	struct ag_config *cfg = new_config();
	bool up[4] = {false, false, false, false}, drilled[2] = {true, false};
	int16_t dial[2] = {-1, -1};
	struct ag_view view = {.up = up};
	double share[4], gshare[2];
	struct ag_plan *plan;

	add_group(listener0(cfg), "eu-west", 100, 2, w);
	add_group(listener0(cfg), "us-east", 100, 2, w);
	plan = ag_plan__new(cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(plan);
	CU_ASSERT_EQUAL(cfg->accels[0].listeners[0].failure_policy, AG_FAIL_OPEN);
	CU_ASSERT_TRUE(ag_plan__fail_open(plan, 0, &view));
	CU_ASSERT_FALSE(ag_plan__fail_open(plan, 1, &view)); /* no such listener */

	/* One endpoint healthy anywhere: the normal rules, not fail_open. */
	up[3] = true;
	CU_ASSERT_FALSE(ag_plan__fail_open(plan, 0, &view));
	/* Healthy but every dial 0: the operator turned it off, not a failure. */
	dial[1] = 0;
	view.dial = dial;
	CU_ASSERT_FALSE(ag_plan__fail_open(plan, 0, &view));
	CU_ASSERT_EQUAL(ag_plan__compile(plan, 0, &view, share, gshare), 0);
	CU_ASSERT_DOUBLE_EQUAL(share[0] + share[1] + share[2] + share[3], 0.0, EPS);
	view.dial = NULL;
	up[3] = false;

	/* A drilled group is skipped: fail_open spreads over the next one. */
	view.drilled = drilled;
	CU_ASSERT_TRUE(ag_plan__fail_open(plan, 0, &view));
	CU_ASSERT_EQUAL(ag_plan__compile(plan, 0, &view, share, gshare), 0);
	CU_ASSERT_DOUBLE_EQUAL(share[0] + share[1], 0.0, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[2], 0.25, EPS);
	CU_ASSERT_DOUBLE_EQUAL(share[3], 0.75, EPS);
	CU_ASSERT_DOUBLE_EQUAL(gshare[1], 1.0, EPS);
	/* Every group drilled: nothing to fail open to. */
	drilled[1] = true;
	CU_ASSERT_FALSE(ag_plan__fail_open(plan, 0, &view));
	view.drilled = NULL;

	listener0(cfg)->failure_policy = AG_FAIL_DROP;
	CU_ASSERT_FALSE(ag_plan__fail_open(plan, 0, &view));
	ag_plan__free(plan);
	free_config(cfg);
}

/* --- publisher over an in-memory sink --- */

struct mem_sink {
	uint32_t ring;
	uint32_t *lookup;
	struct ag_listener_state lstate[AG_MAX_LISTENERS];
	struct ag_backend backends[AG_MAX_BACKENDS];
	struct ag_settings settings;
	unsigned int n_keys, n_vips, n_ovr;
	uint32_t first_key_id;
};

static int m_settings(void *ctx, const struct ag_settings *s)
{
	((struct mem_sink *)ctx)->settings = *s;
	return 0;
}

static int m_vips(void *ctx, const uint32_t *v, unsigned int n)
{
	((struct mem_sink *)ctx)->n_vips = n;
	return 0;
}

static int m_keys(void *ctx, const struct ag_listener_key *k, const uint32_t *ids, unsigned int n)
{
	struct mem_sink *m = ctx;

	m->n_keys = n;
	m->first_key_id = n ? ids[0] : ~0u;
	return 0;
}

static int m_ovr(void *ctx, const struct ag_port_ovr_key *k, const struct ag_port_ovr *v,
		 unsigned int n)
{
	((struct mem_sink *)ctx)->n_ovr = n;
	return 0;
}

static int m_backend(void *ctx, uint32_t id, const struct ag_backend *b)
{
	((struct mem_sink *)ctx)->backends[id] = *b;
	return 0;
}

static uint32_t *m_slot(void *ctx, uint32_t slot)
{
	struct mem_sink *m = ctx;

	return m->lookup + (size_t)slot * m->ring;
}

static struct ag_listener_state *m_lstate(void *ctx, uint32_t lid)
{
	return &((struct mem_sink *)ctx)->lstate[lid];
}

static const struct ag_sink_ops mem_ops = {
    .settings = m_settings,
    .vips = m_vips,
    .listener_keys = m_keys,
    .port_overrides = m_ovr,
    .backend = m_backend,
    .lookup_slot = m_slot,
    .lstate = m_lstate,
};

static void test_publish_double_buffer(void)
{
	static const uint8_t w[] = {1, 1, 2};
	struct ag_config *cfg = new_config();
	struct mem_sink *m = calloc(1, sizeof(*m));
	struct ag_publisher p;
	struct ag_plan *plan;
	unsigned int counts[3] = {0}, i;
	bool up[3] = {true, true, true};
	struct ag_view view = {.up = up};
	uint32_t first_slot;
	uint64_t full;

	m->ring = cfg->edge.ring_size;
	m->lookup = calloc((size_t)AG_LOOKUP_SLOTS * m->ring, sizeof(uint32_t));
	add_group(listener0(cfg), "eu-west", 100, 3, w);
	listener0(cfg)->ranges[0].last = 89; /* ports 80-89: 10 keys */
	plan = ag_plan__new(cfg);
	CU_ASSERT_EQUAL_FATAL(ag_publisher__init(&p, &mem_ops, m, m->ring, 7), 0);
	CU_ASSERT_EQUAL_FATAL(ag_publisher__publish(&p, plan, &view), 0);

	CU_ASSERT_EQUAL(m->settings.abi_version, AG_ABI_VERSION);
	CU_ASSERT_EQUAL(m->settings.ring_size, 65537);
	CU_ASSERT_EQUAL(m->settings.tcp_idle_ns, 340ull * 1000000000ull);
	CU_ASSERT_EQUAL(m->n_keys, 10);
	CU_ASSERT_EQUAL(m->first_key_id, 0);
	CU_ASSERT_EQUAL(m->n_vips, 1);
	CU_ASSERT_EQUAL(m->lstate[0].flags, AG_LF_ACTIVE);
	CU_ASSERT_EQUAL(m->lstate[1].flags, 0);
	first_slot = m->lstate[0].slot;
	CU_ASSERT(first_slot == 0 || first_slot == 1);
	for (i = 0; i < m->ring; i++) {
		uint32_t id = m->lookup[(size_t)first_slot * m->ring + i];

		CU_ASSERT_FATAL(id < 3);
		counts[id]++;
	}
	/* 1:1:2 within 0.1 percentage points. */
	CU_ASSERT(fabs(counts[2] / (double)m->ring - 0.5) < 0.001);
	CU_ASSERT(fabs(counts[0] / (double)m->ring - 0.25) < 0.001);
	CU_ASSERT_EQUAL(m->backends[0].state, AG_BACKEND_UP);
	full = p.stats.slots_written;

	/* A backend goes down: the other slot goes live, only changed entries written. */
	up[1] = false;
	CU_ASSERT_EQUAL(ag_publisher__publish_tables(&p, plan, &view), 0);
	CU_ASSERT_NOT_EQUAL(m->lstate[0].slot, first_slot);
	CU_ASSERT_EQUAL(m->lstate[0].generation, 2);
	CU_ASSERT_EQUAL(m->backends[1].state, AG_BACKEND_DOWN);
	for (i = 0; i < m->ring; i++)
		CU_ASSERT_FATAL(m->lookup[(size_t)m->lstate[0].slot * m->ring + i] != 1);

	/* Back up: the table equals the first one; the spare held it, nothing to write
	 * beyond what differs from the first table (which is exactly nothing). */
	up[1] = true;
	CU_ASSERT_EQUAL(ag_publisher__publish_tables(&p, plan, &view), 0);
	CU_ASSERT_EQUAL(m->lstate[0].slot, first_slot);
	CU_ASSERT_EQUAL(p.stats.slots_written, 0);
	/* The first publish wrote every entry that differed from the zeroed memory. */
	CU_ASSERT_EQUAL(full, m->ring - counts[0]);

	ag_publisher__fini(&p);
	ag_plan__free(plan);
	free(m->lookup);
	free(m);
	free_config(cfg);
}

static void test_publish_removed_listener_deactivated(void)
{
	static const uint8_t w[] = {1};
	struct ag_config *cfg = new_config();
	struct mem_sink *m = calloc(1, sizeof(*m));
	struct ag_publisher p;
	struct ag_plan *plan;

	m->ring = 13;
	cfg->edge.ring_size = 13;
	m->lookup = calloc((size_t)AG_LOOKUP_SLOTS * m->ring, sizeof(uint32_t));
	add_group(listener0(cfg), "eu-west", 100, 1, w);
	m->lstate[5].flags = AG_LF_ACTIVE; /* left by an earlier, larger config */
	plan = ag_plan__new(cfg);
	CU_ASSERT_EQUAL_FATAL(ag_publisher__init(&p, &mem_ops, m, m->ring, 7), 0);
	CU_ASSERT_EQUAL(ag_publisher__publish(&p, plan, NULL), 0);
	CU_ASSERT_EQUAL(m->lstate[5].flags, 0);
	CU_ASSERT_EQUAL(m->lstate[0].flags, AG_LF_ACTIVE);
	ag_publisher__fini(&p);
	ag_plan__free(plan);
	free(m->lookup);
	free(m);
	free_config(cfg);
}

/*
 * Every endpoint down: fail_open publishes the listener's backends as
 * forwarding (UP: pinned flows kept, the nearest group's in the table), drop
 * publishes them DOWN with an empty table.
 */
static void test_publish_fail_open(void)
{
	static const uint8_t w[] = {1, 1};
	struct ag_config *cfg = new_config();
	struct mem_sink *m = calloc(1, sizeof(*m));
	bool up[4] = {false, false, false, false};
	struct ag_view view = {.up = up};
	unsigned int counts[4] = {0}, i;
	struct ag_publisher p;
	struct ag_plan *plan;
	uint32_t slot;

	m->ring = 13;
	cfg->edge.ring_size = 13;
	m->lookup = calloc((size_t)AG_LOOKUP_SLOTS * m->ring, sizeof(uint32_t));
	add_group(listener0(cfg), "eu-west", 100, 2, w);
	add_group(listener0(cfg), "us-east", 100, 2, w);
	plan = ag_plan__new(cfg);
	CU_ASSERT_EQUAL_FATAL(ag_publisher__init(&p, &mem_ops, m, m->ring, 7), 0);
	CU_ASSERT_EQUAL_FATAL(ag_publisher__publish(&p, plan, &view), 0);
	CU_ASSERT_TRUE(p.fail_open[0]);
	for (i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(m->backends[i].state, AG_BACKEND_UP);
	slot = m->lstate[0].slot;
	for (i = 0; i < m->ring; i++) {
		uint32_t id = m->lookup[(size_t)slot * m->ring + i];

		CU_ASSERT_FATAL(id < 4);
		counts[id]++;
	}
	/* The nearest group (config order here) takes every new flow, 1:1. */
	CU_ASSERT(counts[0] > 0 && counts[1] > 0);
	CU_ASSERT_EQUAL(counts[0] + counts[1], m->ring);

	/* One endpoint back: the normal rules, the others DOWN again. */
	up[2] = true;
	CU_ASSERT_EQUAL(ag_publisher__publish_tables(&p, plan, &view), 0);
	CU_ASSERT_FALSE(p.fail_open[0]);
	CU_ASSERT_EQUAL(m->backends[0].state, AG_BACKEND_DOWN);
	CU_ASSERT_EQUAL(m->backends[2].state, AG_BACKEND_UP);
	up[2] = false;

	/* drop: DOWN, and the table has no backend. */
	listener0(cfg)->failure_policy = AG_FAIL_DROP;
	CU_ASSERT_EQUAL(ag_publisher__publish_tables(&p, plan, &view), 0);
	CU_ASSERT_FALSE(p.fail_open[0]);
	slot = m->lstate[0].slot;
	for (i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(m->backends[i].state, AG_BACKEND_DOWN);
	for (i = 0; i < m->ring; i++)
		CU_ASSERT_EQUAL(m->lookup[(size_t)slot * m->ring + i], AG_BACKEND_NONE);

	ag_publisher__fini(&p);
	ag_plan__free(plan);
	free(m->lookup);
	free(m);
	free_config(cfg);
}

/* The edge's rates over the fast path's CPUs: rounded up, never 0 by division. */
static void test_per_cpu_rates(void)
{
	CU_ASSERT_EQUAL(ag_publish__per_cpu(5000, 1), 5000);
	CU_ASSERT_EQUAL(ag_publish__per_cpu(5000, 2), 2500);
	CU_ASSERT_EQUAL(ag_publish__per_cpu(5000, 3), 1667);
	CU_ASSERT_EQUAL(ag_publish__per_cpu(1, 64), 1);
	CU_ASSERT_EQUAL(ag_publish__per_cpu(0, 4), 0); /* no limit stays no limit */
	CU_ASSERT_EQUAL(ag_publish__per_cpu(7, 0), 7); /* unknown CPUs: one */
	CU_ASSERT_EQUAL(ag_publish__per_cpu(UINT32_MAX, 1), UINT32_MAX);
	CU_ASSERT_EQUAL(ag_publish__per_cpu(UINT32_MAX, 2), 2147483648u);
}

/* Settings from a config: timeouts by state, the slowest health check's detection time. */
static void test_settings_from(void)
{
	static const uint8_t w[] = {1};
	struct ag_config *cfg = new_config();
	struct ag_cfg_listener *l = listener0(cfg);
	struct ag_settings st;

	add_group(l, "eu-west", 100, 1, w);
	add_group(l, "us-east", 100, 1, w);
	l->groups[0].health =
	    (struct ag_cfg_health){.interval_ms = 100, .timeout_ms = 50, .unhealthy_threshold = 3};
	l->groups[1].health = (struct ag_cfg_health){
	    .interval_ms = 1000, .timeout_ms = 500, .unhealthy_threshold = 2};
	cfg->edge.tcp_syn_idle_s = 5;
	cfg->edge.tcp_closing_s = 10;
	cfg->edge.syn_auth_rate = 5000;
	cfg->edge.syn_auth_ttl_s = 600;
	cfg->edge.udp_flow_rate = 1001;
	ag_publish__settings_from(cfg, 4, 0x1234, &st);
	CU_ASSERT_EQUAL(st.abi_version, AG_ABI_VERSION);
	CU_ASSERT_EQUAL(st.tcp_idle_ns, 340ull * 1000000000ull);
	CU_ASSERT_EQUAL(st.tcp_syn_idle_ns, 5ull * 1000000000ull);
	CU_ASSERT_EQUAL(st.tcp_closing_ns, 10ull * 1000000000ull);
	CU_ASSERT_EQUAL(st.udp_idle_ns, 30ull * 1000000000ull);
	/* max(100 x 3 + 50, 1000 x 2 + 500) ms */
	CU_ASSERT_EQUAL(st.backend_alive_ns, 2500ull * 1000000ull);
	CU_ASSERT_EQUAL(st.syn_cpu_rate, 1250);
	CU_ASSERT_EQUAL(st.udp_cpu_rate, 251);
	CU_ASSERT_EQUAL(st.syn_auth_secret, 0x1234);
	CU_ASSERT_EQUAL(st.syn_auth_ttl_ns, 600ull * 1000000000ull);
	CU_ASSERT_EQUAL(st.flags, 0);
	free_config(cfg);
}

int main(void)
{
	CU_pSuite s;
	unsigned int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return CU_get_error();
	s = CU_add_suite("plan", NULL, NULL);
	CU_add_test(s, "layout assigns listener, group and backend ids", test_layout_ids);
	CU_add_test(s, "weights share a group 1:1:2", test_weights_within_group);
	CU_add_test(s, "nearest group takes all at dial 100", test_nearest_takes_all_at_dial_100);
	CU_add_test(s, "dial 30 spills 70% to the next group", test_dial_spills_to_next);
	CU_add_test(s, "leftover returns in proportion", test_leftover_goes_back_proportionally);
	CU_add_test(s, "region_order pins the nearest", test_region_order_pins_nearest);
	CU_add_test(s, "zero weight and unhealthy endpoints", test_zero_weight_and_unhealthy);
	CU_add_test(s, "nothing healthy: fail_open and drop", test_nothing_healthy_policies);
	CU_add_test(s, "fail_open applies only with nothing healthy", test_fail_open_applies);
	CU_add_test(s, "publish: fail_open forwards, drop drops", test_publish_fail_open);
	CU_add_test(s, "publish double-buffers and writes only changes",
		    test_publish_double_buffer);
	CU_add_test(s, "publish deactivates removed listeners",
		    test_publish_removed_listener_deactivated);
	CU_add_test(s, "new-flow rates per CPU", test_per_cpu_rates);
	CU_add_test(s, "settings from a config", test_settings_from);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
