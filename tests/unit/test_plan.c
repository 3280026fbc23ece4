/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Plan layout, weight compiler and table publisher: pure functions, tested
 * with configs built in memory and a publisher sink backed by plain arrays.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
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
	unsigned int g, i;

	for (i = 0; i < cfg->accels[0].n_listeners; i++) {
		struct ag_cfg_listener *l = &cfg->accels[0].listeners[i];

		for (g = 0; g < l->n_groups; g++) {
			free(l->groups[g].endpoints);
			free(l->groups[g].overrides);
		}
		free(l->groups);
		free(l->ranges);
	}
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

/* Insert a listener on TCP port `port` at position `at` of accelerator 0. */
static struct ag_cfg_listener *insert_listener(struct ag_config *cfg, unsigned int at,
					       uint16_t port)
{
	struct ag_cfg_accelerator *a = &cfg->accels[0];
	struct ag_cfg_listener *l;

	a->listeners = realloc(a->listeners, (a->n_listeners + 1) * sizeof(*a->listeners));
	memmove(&a->listeners[at + 1], &a->listeners[at],
		(a->n_listeners - at) * sizeof(*a->listeners));
	a->n_listeners++;
	l = &a->listeners[at];
	memset(l, 0, sizeof(*l));
	l->proto = IPPROTO_TCP;
	l->ranges = calloc(1, sizeof(*l->ranges));
	l->ranges[0].first = port;
	l->ranges[0].last = port;
	l->n_ranges = 1;
	l->overprovisioning = 1.4;
	return l;
}

/* Insert endpoint addr (dotted) at position `at` of group g. */
static void insert_endpoint(struct ag_cfg_group *g, unsigned int at, const char *addr)
{
	g->endpoints = realloc(g->endpoints, (g->n_endpoints + 1) * sizeof(*g->endpoints));
	memmove(&g->endpoints[at + 1], &g->endpoints[at],
		(g->n_endpoints - at) * sizeof(*g->endpoints));
	g->n_endpoints++;
	memset(&g->endpoints[at], 0, sizeof(g->endpoints[at]));
	inet_pton(AF_INET, addr, &g->endpoints[at].addr);
	g->endpoints[at].weight = 1;
}

static void remove_endpoint(struct ag_cfg_group *g, unsigned int at)
{
	memmove(&g->endpoints[at], &g->endpoints[at + 1],
		(g->n_endpoints - at - 1) * sizeof(*g->endpoints));
	g->n_endpoints--;
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
	/* Order of the writes: a sequence number of the last of each kind ... */
	unsigned int seq, seq_ovr, seq_backend, seq_keys;
	/* ... and listener watch's table generation when it happened. */
	uint32_t watch, gen_at_backend, gen_at_keys;
	uint32_t ovr_groups[16];
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
	m->seq_keys = ++m->seq;
	m->gen_at_keys = m->lstate[m->watch].generation;
	return 0;
}

static int m_ovr(void *ctx, const struct ag_port_ovr_key *k, const struct ag_port_ovr *v,
		 unsigned int n)
{
	struct mem_sink *m = ctx;
	unsigned int i;

	m->n_ovr = n;
	for (i = 0; i < n && i < 16; i++)
		m->ovr_groups[i] = k[i].group_id;
	m->seq_ovr = ++m->seq;
	return 0;
}

static int m_backend(void *ctx, uint32_t id, const struct ag_backend *b)
{
	struct mem_sink *m = ctx;

	m->backends[id] = *b;
	m->seq_backend = ++m->seq;
	m->gen_at_backend = m->lstate[m->watch].generation;
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

/* --- stable ids (ids.h) --- */

/* fpid of the backend at addr in the listener on `port`, or AG_PLAN_NO_ID. */
static uint32_t backend_fpid(const struct ag_plan *plan, uint16_t port, const char *addr)
{
	uint32_t a;
	unsigned int i;

	inet_pton(AF_INET, addr, &a);
	for (i = 0; i < plan->n_backends; i++) {
		const struct ag_plan_backend *pb = &plan->backends[i];

		if (pb->addr == a && plan->listeners[pb->listener_id].cfg->ranges[0].first == port)
			return pb->fpid;
	}
	return AG_PLAN_NO_ID;
}

static uint32_t listener_fpid(const struct ag_plan *plan, uint16_t port)
{
	unsigned int i;

	for (i = 0; i < plan->n_listeners; i++)
		if (plan->listeners[i].cfg->ranges[0].first == port)
			return plan->listeners[i].fpid;
	return AG_PLAN_NO_ID;
}

/* Lay cfg out, number it against ids and commit it (at now): the running plan. */
static struct ag_plan *go_live(struct ag_ids *ids, const struct ag_config *cfg, uint64_t now)
{
	struct ag_plan *plan = ag_plan__new(cfg);
	char why[256];

	CU_ASSERT_PTR_NOT_NULL_FATAL(plan);
	CU_ASSERT_EQUAL_FATAL(ag_ids__number(ids, plan, why, sizeof(why)), 0);
	ag_ids__commit(ids, plan, now);
	return plan;
}

/* Counters for ag_ids__reap: activity[kind][id], moved by the test. */
static uint64_t activity[AG_ID__KINDS][AG_MAX_BACKENDS];

static int read_activity(void *ctx, enum ag_id_kind k, uint32_t id, uint64_t *a)
{
	(void)ctx;
	*a = activity[k][id];
	return 0;
}

/* Two regions of two endpoints on web/tcp:80. */
static struct ag_config *two_regions(void)
{
	static const uint8_t w[] = {1, 1};
	struct ag_config *cfg = new_config();

	add_group(listener0(cfg), "eu-west", 100, 2, w); /* 10.1.1.11, 10.1.1.12 */
	add_group(listener0(cfg), "us-east", 100, 2, w); /* 10.2.1.11, 10.2.1.12 */
	return cfg;
}

/* Fresh ids number in config order: what ag_plan__new gives, what anygated always gave. */
static void test_ids_fresh_is_config_order(void)
{
	struct ag_config *cfg = two_regions();
	struct ag_plan *plan;
	struct ag_ids ids;
	unsigned int i;

	CU_ASSERT_EQUAL_FATAL(ag_ids__init(&ids), 0);
	plan = go_live(&ids, cfg, 1);
	for (i = 0; i < plan->n_backends; i++)
		CU_ASSERT_EQUAL(plan->backends[i].fpid, i);
	for (i = 0; i < plan->n_groups; i++)
		CU_ASSERT_EQUAL(plan->groups[i].fpid, i);
	CU_ASSERT_EQUAL(plan->listeners[0].fpid, 0);
	CU_ASSERT_STRING_EQUAL(plan->listeners[0].key, "web/tcp:80");
	CU_ASSERT_EQUAL(ag_ids__count(&ids, AG_ID_BACKEND, AG_ID_LIVE), 4);
	CU_ASSERT_PTR_EQUAL(ag_plan__backend_by_fpid(plan, 2), &plan->backends[2]);
	CU_ASSERT_PTR_NULL(ag_plan__backend_by_fpid(plan, 4));
	ag_plan__free(plan);
	ag_ids__fini(&ids);
	free_config(cfg);
}

/*
 * Inserting, removing and reordering endpoints and groups: every endpoint that
 * stays keeps its id, a new one takes a free id, a removed one's id is held.
 */
static void test_ids_endpoints_keep_their_ids(void)
{
	struct ag_config *cfg = two_regions();
	struct ag_cfg_listener *l = listener0(cfg);
	struct ag_plan *plan;
	struct ag_ids ids;
	struct ag_cfg_group tmp;

	CU_ASSERT_EQUAL_FATAL(ag_ids__init(&ids), 0);
	ag_plan__free(go_live(&ids, cfg, 1));

	/* An endpoint inserted first: the others keep 0..3, it takes 4. */
	insert_endpoint(&l->groups[0], 0, "10.1.1.10");
	plan = go_live(&ids, cfg, 2);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.1.1.11"), 0);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.1.1.12"), 1);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.2.1.11"), 2);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.2.1.12"), 3);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.1.1.10"), 4);
	ag_plan__free(plan);

	/* Groups swapped: nothing moves. */
	tmp = l->groups[0];
	l->groups[0] = l->groups[1];
	l->groups[1] = tmp;
	plan = go_live(&ids, cfg, 3);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.2.1.11"), 2);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.1.1.10"), 4);
	CU_ASSERT_EQUAL(plan->groups[0].fpid, 1); /* us-east */
	ag_plan__free(plan);

	/* 10.1.1.11 removed: its id 0 is held, the next new endpoint takes 5. */
	remove_endpoint(&l->groups[1], 1);
	plan = go_live(&ids, cfg, 4);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.1.1.11"), AG_PLAN_NO_ID);
	CU_ASSERT_EQUAL(ag_ids__count(&ids, AG_ID_BACKEND, AG_ID_RETIRED), 1);
	CU_ASSERT_EQUAL(ids.e[AG_ID_BACKEND][0].state, AG_ID_RETIRED);
	ag_plan__free(plan);
	insert_endpoint(&l->groups[1], 0, "10.1.1.20");
	plan = go_live(&ids, cfg, 5);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.1.1.20"), 5);
	ag_plan__free(plan);

	/* It comes back while held: it gets its own id back. */
	insert_endpoint(&l->groups[1], 0, "10.1.1.11");
	plan = go_live(&ids, cfg, 6);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.1.1.11"), 0);
	CU_ASSERT_EQUAL(ag_ids__count(&ids, AG_ID_BACKEND, AG_ID_RETIRED), 0);
	ag_plan__free(plan);
	ag_ids__fini(&ids);
	free_config(cfg);
}

/* A removed endpoint's id is freed only once its counters stood still for quiet_ns. */
static void test_ids_quarantine(void)
{
	struct ag_config *cfg = two_regions();
	struct ag_cfg_listener *l = listener0(cfg);
	const uint64_t q = 1000;
	uint32_t freed[AG_MAX_BACKENDS];
	struct ag_plan *plan;
	struct ag_ids ids;

	memset(activity, 0, sizeof(activity));
	CU_ASSERT_EQUAL_FATAL(ag_ids__init(&ids), 0);
	ag_plan__free(go_live(&ids, cfg, 1));
	remove_endpoint(&l->groups[0], 0); /* 10.1.1.11, id 0 */
	ag_plan__free(go_live(&ids, cfg, 100));

	activity[AG_ID_BACKEND][0] = 7; /* its flows still carry packets */
	CU_ASSERT_EQUAL(ag_ids__reap(&ids, 200, q, read_activity, NULL, freed), 0);
	CU_ASSERT_EQUAL(ag_ids__reap(&ids, 1100, q, read_activity, NULL, freed), 0);
	activity[AG_ID_BACKEND][0] = 9;
	CU_ASSERT_EQUAL(ag_ids__reap(&ids, 1150, q, read_activity, NULL, freed), 0);
	/* Quiet since 1150: still held just before 2150. */
	CU_ASSERT_EQUAL(ag_ids__reap(&ids, 2149, q, read_activity, NULL, freed), 0);
	CU_ASSERT_EQUAL(ids.e[AG_ID_BACKEND][0].state, AG_ID_RETIRED);
	/* A new endpoint meanwhile does not get it. */
	insert_endpoint(&l->groups[0], 0, "10.1.1.30");
	plan = go_live(&ids, cfg, 2149);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.1.1.30"), 4);
	ag_plan__free(plan);
	CU_ASSERT_EQUAL(ag_ids__reap(&ids, 2150, q, read_activity, NULL, freed), 1);
	CU_ASSERT_EQUAL(freed[0], 0);
	CU_ASSERT_EQUAL(ids.e[AG_ID_BACKEND][0].state, AG_ID_FREE);
	/* Now a new endpoint takes it. */
	insert_endpoint(&l->groups[0], 0, "10.1.1.31");
	plan = go_live(&ids, cfg, 3000);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.1.1.31"), 0);
	ag_plan__free(plan);
	ag_ids__fini(&ids);
	free_config(cfg);
}

/*
 * Listeners: one added before web/tcp:80 does not renumber it; one removed
 * holds its id, its groups' and its backends' until its counters stand still.
 */
static void test_ids_listeners(void)
{
	static const uint8_t w[] = {1};
	struct ag_config *cfg = two_regions();
	uint32_t freed[AG_MAX_BACKENDS];
	struct ag_cfg_listener *l;
	struct ag_plan *plan;
	struct ag_ids ids;

	memset(activity, 0, sizeof(activity));
	CU_ASSERT_EQUAL_FATAL(ag_ids__init(&ids), 0);
	ag_plan__free(go_live(&ids, cfg, 1));
	l = insert_listener(cfg, 0, 443);
	add_group(l, "eu-west", 100, 1, w);
	plan = go_live(&ids, cfg, 2);
	CU_ASSERT_EQUAL(listener_fpid(plan, 80), 0);
	CU_ASSERT_EQUAL(listener_fpid(plan, 443), 1);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.1.1.11"), 0);
	CU_ASSERT_EQUAL(backend_fpid(plan, 443, "10.1.1.11"), 4); /* same address, other listener */
	CU_ASSERT_EQUAL(plan->groups[0].fpid, 2);
	CU_ASSERT_PTR_EQUAL(ag_plan__listener_by_fpid(plan, 1), &plan->listeners[0]);
	ag_plan__free(plan);

	/* web/tcp:80 removed: held (listener, 2 groups, 4 backends), 443 keeps 1. */
	free(cfg->accels[0].listeners[1].groups[0].endpoints);
	free(cfg->accels[0].listeners[1].groups[1].endpoints);
	free(cfg->accels[0].listeners[1].groups);
	free(cfg->accels[0].listeners[1].ranges);
	cfg->accels[0].n_listeners = 1;
	plan = go_live(&ids, cfg, 10);
	CU_ASSERT_EQUAL(listener_fpid(plan, 443), 1);
	CU_ASSERT_EQUAL(ag_ids__count(&ids, AG_ID_LISTENER, AG_ID_RETIRED), 1);
	CU_ASSERT_EQUAL(ag_ids__count(&ids, AG_ID_GROUP, AG_ID_RETIRED), 2);
	CU_ASSERT_EQUAL(ag_ids__count(&ids, AG_ID_BACKEND, AG_ID_RETIRED), 4);
	ag_plan__free(plan);

	activity[AG_ID_BACKEND][3] = 1;
	CU_ASSERT_EQUAL(ag_ids__reap(&ids, 10, 100, read_activity, NULL, freed), 0);
	activity[AG_ID_BACKEND][3] = 2; /* one backend still busy */
	CU_ASSERT_EQUAL(ag_ids__reap(&ids, 200, 100, read_activity, NULL, freed), 3);
	CU_ASSERT_EQUAL(ag_ids__count(&ids, AG_ID_LISTENER, AG_ID_RETIRED), 0);
	CU_ASSERT_EQUAL(ag_ids__count(&ids, AG_ID_GROUP, AG_ID_RETIRED), 1); /* us-east: 3 */
	CU_ASSERT_EQUAL(ag_ids__reap(&ids, 300, 100, read_activity, NULL, freed), 1);
	CU_ASSERT_EQUAL(freed[0], 3);
	CU_ASSERT_EQUAL(ag_ids__count(&ids, AG_ID_GROUP, AG_ID_RETIRED), 0);
	ag_ids__fini(&ids);
	free_config(cfg);
}

/* A group's port overrides are part of its identity: new overrides, new ids. */
static void test_ids_overrides_are_identity(void)
{
	struct ag_config *cfg = two_regions();
	struct ag_cfg_group *g = &listener0(cfg)->groups[0];
	struct ag_plan *plan;
	struct ag_ids ids;

	CU_ASSERT_EQUAL_FATAL(ag_ids__init(&ids), 0);
	ag_plan__free(go_live(&ids, cfg, 1));
	g->overrides = calloc(1, sizeof(*g->overrides));
	g->overrides[0] = (struct ag_cfg_port_override){.listener_port = 80, .endpoint_port = 8080};
	g->n_overrides = 1;
	plan = go_live(&ids, cfg, 2);
	CU_ASSERT_EQUAL(plan->groups[0].fpid, 2);
	CU_ASSERT_EQUAL(plan->groups[1].fpid, 1);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.1.1.11"), 4);
	CU_ASSERT_EQUAL(backend_fpid(plan, 80, "10.2.1.11"), 2);
	ag_plan__free(plan);
	ag_ids__fini(&ids);
	free_config(cfg);
}

/*
 * A reload that inserts an endpoint first, removes one and adds a listener
 * first: kept ids keep their entries, the new ones are written before any
 * table switches, the tables name only the new plan's ids, the removed
 * endpoint's entry is left for its flows, and web/tcp:80 keeps its slots.
 */
static void test_publish_reload_by_identity(void)
{
	static const uint8_t w[] = {1};
	struct ag_config *a = two_regions(), *b = two_regions();
	struct mem_sink *m = calloc(1, sizeof(*m));
	struct ag_backend removed, kept;
	struct ag_plan *pa, *pb;
	struct ag_cfg_listener *l;
	struct ag_publisher p;
	uint32_t gen, i, slot, fp;
	struct ag_ids ids;

	m->ring = 13;
	a->edge.ring_size = b->edge.ring_size = 13;
	m->lookup = calloc((size_t)AG_LOOKUP_SLOTS * m->ring, sizeof(uint32_t));
	CU_ASSERT_EQUAL_FATAL(ag_ids__init(&ids), 0);
	CU_ASSERT_EQUAL_FATAL(ag_publisher__init(&p, &mem_ops, m, m->ring, 7), 0);
	pa = go_live(&ids, a, 1);
	CU_ASSERT_EQUAL_FATAL(ag_publisher__publish(&p, pa, NULL), 0);
	removed = m->backends[backend_fpid(pa, 80, "10.1.1.12")];
	kept = m->backends[backend_fpid(pa, 80, "10.2.1.12")];

	insert_endpoint(&listener0(b)->groups[0], 0, "10.1.1.10");
	remove_endpoint(&listener0(b)->groups[0], 2); /* 10.1.1.12 */
	l = insert_listener(b, 0, 443);
	add_group(l, "eu-west", 100, 1, w);
	l->groups[0].overrides = calloc(1, sizeof(*l->groups[0].overrides));
	l->groups[0].overrides[0] =
	    (struct ag_cfg_port_override){.listener_port = 443, .endpoint_port = 8443};
	l->groups[0].n_overrides = 1;
	pb = ag_plan__new(b);
	CU_ASSERT_EQUAL_FATAL(ag_ids__number(&ids, pb, (char[64]){0}, 64), 0);
	CU_ASSERT_EQUAL(listener_fpid(pb, 80), 0);
	m->watch = 0;
	gen = m->lstate[0].generation;
	CU_ASSERT_EQUAL_FATAL(ag_publisher__publish_reload(&p, pa, pb, NULL), 0);
	ag_ids__commit(&ids, pb, 2);

	/* Overrides, then backends (no table switched yet), then listener keys. */
	CU_ASSERT(m->seq_ovr < m->seq_backend && m->seq_backend < m->seq_keys);
	CU_ASSERT_EQUAL(m->gen_at_backend, gen);
	CU_ASSERT_EQUAL(m->gen_at_keys, gen + 1);
	CU_ASSERT_EQUAL(m->n_ovr, 1);
	CU_ASSERT_EQUAL(m->ovr_groups[0], pb->groups[0].fpid);
	/* Entries: kept unchanged, new written into free ids, removed left as it was. */
	CU_ASSERT_EQUAL(
	    memcmp(&m->backends[backend_fpid(pb, 80, "10.2.1.12")], &kept, sizeof(kept)), 0);
	CU_ASSERT_EQUAL(
	    memcmp(&m->backends[backend_fpid(pa, 80, "10.1.1.12")], &removed, sizeof(removed)), 0);
	fp = backend_fpid(pb, 80, "10.1.1.10");
	CU_ASSERT_EQUAL(fp, 5); /* 4 went to web/tcp:443's endpoint, first in the file */
	CU_ASSERT_EQUAL(m->backends[fp].state, AG_BACKEND_UP);
	CU_ASSERT_EQUAL(m->backends[backend_fpid(pb, 443, "10.1.1.11")].group_id,
			pb->groups[0].fpid);
	/* Each listener's live table names only its own backends of the new plan. */
	for (i = 0; i < pb->n_listeners; i++) {
		slot = m->lstate[pb->listeners[i].fpid].slot;
		CU_ASSERT(slot / 2 == pb->listeners[i].fpid);
		CU_ASSERT_EQUAL(m->lstate[pb->listeners[i].fpid].flags, AG_LF_ACTIVE);
	}
	slot = m->lstate[0].slot;
	for (i = 0; i < m->ring; i++) {
		const struct ag_plan_backend *x =
		    ag_plan__backend_by_fpid(pb, m->lookup[(size_t)slot * m->ring + i]);

		CU_ASSERT_FATAL(x != NULL);
		CU_ASSERT_EQUAL(x->listener_id, pb->listener_at[0]);
	}
	ag_publisher__fini(&p);
	ag_plan__free(pa);
	ag_plan__free(pb);
	ag_ids__fini(&ids);
	free(m->lookup);
	free(m);
	free_config(a);
	free_config(b);
}

/* Every id of a kind held by removed items: the reload is refused with a reason. */
static void test_ids_exhausted(void)
{
	static const uint8_t w[] = {1};
	struct ag_config *cfg = new_config();
	struct ag_plan *plan;
	struct ag_ids ids;
	char why[256] = "";
	unsigned int i;

	CU_ASSERT_EQUAL_FATAL(ag_ids__init(&ids), 0);
	add_group(listener0(cfg), "eu-west", 100, 1, w);
	for (i = 1; i < AG_MAX_LISTENERS; i++)
		add_group(insert_listener(cfg, i, (uint16_t)(1000 + i)), "eu-west", 100, 1, w);
	ag_plan__free(go_live(&ids, cfg, 1));
	/* Every listener on another port: 64 new identities, 64 held. */
	for (i = 0; i < AG_MAX_LISTENERS; i++)
		cfg->accels[0].listeners[i].ranges[0].first += 5000;
	plan = ag_plan__new(cfg);
	CU_ASSERT_EQUAL(ag_ids__number(&ids, plan, why, sizeof(why)), -ENOSPC);
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(why, "no free listener id for web/tcp:5080: 64 of 64 are held"));
	if (!strstr(why, "no free listener id for web/tcp:5080: 64 of 64 are held"))
		printf("\n    why: %s\n", why);
	ag_plan__free(plan);
	ag_ids__fini(&ids);
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
	CU_add_test(s, "ids: fresh ids are config order", test_ids_fresh_is_config_order);
	CU_add_test(s, "ids: endpoints keep their ids (insert, reorder, remove, return)",
		    test_ids_endpoints_keep_their_ids);
	CU_add_test(s, "ids: a removed endpoint's id is held until quiet", test_ids_quarantine);
	CU_add_test(s, "ids: adding a listener renumbers nothing; removing holds",
		    test_ids_listeners);
	CU_add_test(s, "ids: port overrides are part of a group's identity",
		    test_ids_overrides_are_identity);
	CU_add_test(s, "ids: all held: reload refused with a reason", test_ids_exhausted);
	CU_add_test(s, "publish: a reload keeps ids by identity, backends before tables",
		    test_publish_reload_by_identity);
	CU_add_test(s, "new-flow rates per CPU", test_per_cpu_rates);
	CU_add_test(s, "settings from a config", test_settings_from);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
