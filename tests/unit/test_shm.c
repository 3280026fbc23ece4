/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK shared-memory segment: created and adopted by the publisher,
 * attached by the fast path, refused when its layout, ABI or ring size
 * differ, locked to one publisher and one fast path; tables published with
 * the real ag_publisher from a real config file and read back through the
 * lock-free readers of abi_shm.h; double buffering and the sequence lock;
 * counters summed over lanes.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi_shm.h"
#include "config.h"
#include "log.h"
#include "plan.h"
#include "publish.h"
#include "shm.h"
#include "shm_layout.h"

#define RING 251

static char tmpdir[64];
static char conf_path[128];
static char shm_name[64];
static char shm_path[256];

static const char conf_fmt[] =
    "edge = {\n"
    "  name = \"t\"; hash_seed = 77; fastpath = \"dpdk\";\n"
    "  interfaces = ( );\n"
    "  nat_addresses = [ \"10.255.0.1\", \"10.255.0.2\" ];\n"
    "  nat_ports = \"2000-3000\";\n"
    "  ring_size = %u; max_flows = 4096; metrics = \"\";\n"
    "  dpdk = { ports = [ \"net_null0\" ]; shm_name = \"%s\"; };\n"
    "};\n"
    "accelerators = ( {\n"
    "  name = \"web\"; addresses = [ \"198.51.100.10\", \"198.51.100.11\" ];\n"
    "  listeners = (\n"
    "    { protocol = \"tcp\"; ports = ( 80, \"8000-8009\" );\n"
    "      endpoint_groups = (\n"
    "        { region = \"eu\"; port_overrides = ( { listener_port = 8000; endpoint_port = 8080; } "
    ");\n"
    "          endpoints = ( { address = \"10.1.1.11\"; }, { address = \"10.1.1.12\"; } ); },\n"
    "        { region = \"us\"; endpoints = ( { address = \"10.2.1.11\"; } ); } ); },\n"
    "    { protocol = \"udp\"; ports = [ 5000 ];\n"
    "      endpoint_groups = ( { region = \"eu\"; endpoints = ( { address = \"10.1.1.11\"; } ); } "
    "); }\n"
    "  );\n"
    "} );\n";

static struct ag_config *load_conf(uint32_t ring)
{
	struct ag_errors errs;
	struct ag_config *cfg;
	unsigned int i;
	FILE *f = fopen(conf_path, "w");

	if (!f)
		return NULL;
	fprintf(f, conf_fmt, ring, shm_name);
	fclose(f);
	ag_errors__init(&errs);
	cfg = ag_config__load(conf_path, &errs);
	for (i = 0; i < errs.count; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	ag_errors__free(&errs);
	return cfg;
}

static int suite_init(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ag-test-shm.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/t.conf", tmpdir);
	snprintf(shm_name, sizeof(shm_name), "ag-unit-shm-%d", (int)getpid());
	snprintf(shm_path, sizeof(shm_path), "%s/%s", AG_SHM_DIR, shm_name);
	ag_log__set_level(AG_LOG_ERR);
	return 0;
}

static int suite_fini(void)
{
	unlink(conf_path);
	rmdir(tmpdir);
	ag_shm__unlink(shm_name);
	return 0;
}

/* Fresh segment for each test. */
static void fresh(void)
{
	ag_shm__unlink(shm_name);
}

static void test_create_and_adopt(void)
{
	struct ag_config *cfg;
	struct ag_shm *m, *m2;
	struct ag_shm_hdr *h;
	struct stat st;

	fresh();
	cfg = load_conf(RING);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	h = ag_shm__hdr(m);
	CU_ASSERT_EQUAL(h->ident.magic, AG_SHM_MAGIC);
	CU_ASSERT_EQUAL(h->ident.layout_version, AG_SHM_LAYOUT_VERSION);
	CU_ASSERT_EQUAL(h->ident.abi_version, AG_ABI_VERSION);
	CU_ASSERT_EQUAL(h->ident.ring_size, RING);
	CU_ASSERT_EQUAL(h->ident.lookup_buckets, AG_LOOKUP_BUCKETS(RING));
	CU_ASSERT_EQUAL(h->pub.publisher_pid, (uint32_t)getpid());
	CU_ASSERT_STRING_EQUAL(ag_shm__path(m), shm_path);
	CU_ASSERT_EQUAL_FATAL(stat(shm_path, &st), 0);
	CU_ASSERT_EQUAL((uint64_t)st.st_size, h->ident.total_size);
	/* Regions in order, inside the file, page-aligned. */
	CU_ASSERT(h->ident.off_lookup % AG_SHM_ALIGN == 0);
	CU_ASSERT(h->ident.off_lanes + (uint64_t)h->ident.lanes * h->ident.lane_size <=
		  h->ident.total_size);
	CU_ASSERT(h->ident.off_backends >=
		  h->ident.off_lookup +
		      (uint64_t)h->ident.lookup_buckets * sizeof(struct ag_lookup_bucket));

	/* A second publisher is refused while the first holds it. */
	m2 = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NULL(m2);
	CU_ASSERT_EQUAL(errno, EBUSY);
	ag_shm__close(m2);

	/* The marks of the first stay when it closes and another adopts it. */
	h->pub.generation = 12345;
	ag_shm__close(m);
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(ag_shm__hdr(m)->pub.generation, 12345);
	ag_shm__close(m);
	ag_config__free(cfg);
}

static void test_attach_rules(void)
{
	struct ag_config *cfg = load_conf(RING);
	struct ag_shm *pub, *dp, *dp2;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	fresh();
	dp = ag_shm__attach(shm_name, RING);
	CU_ASSERT_PTR_NULL(dp);
	CU_ASSERT_EQUAL(errno, ENOENT);

	pub = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
	/* Publisher and fast path at once: yes. Two fast paths: no. */
	dp = ag_shm__attach(shm_name, RING);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	dp2 = ag_shm__attach(shm_name, 0);
	CU_ASSERT_PTR_NULL(dp2);
	CU_ASSERT_EQUAL(errno, EBUSY);
	/* Both see the same memory; so does an observer, beside both, without a lock. */
	ag_shm__hdr(pub)->pub.generation = 99;
	CU_ASSERT_EQUAL(ag_shm__hdr(dp)->pub.generation, 99);
	{
		struct ag_shm *obs = ag_shm__observe(shm_name);
		struct ag_traffic_stats ts;

		CU_ASSERT_PTR_NOT_NULL_FATAL(obs);
		CU_ASSERT_EQUAL(ag_shm__hdr(obs)->pub.generation, 99);
		ag_shm__lane(ag_shm__view(dp), 2)->lstats[1].packets = 3;
		CU_ASSERT_EQUAL(ag_shm__listener_stats(obs, 1, &ts), 0);
		CU_ASSERT_EQUAL(ts.packets, 3);
		ag_shm__close(obs);
	}
	ag_shm__close(dp);
	dp = ag_shm__attach(shm_name, 0);
	CU_ASSERT_PTR_NOT_NULL(dp);
	ag_shm__close(dp);
	/* Another ring size: the config cannot be served by these tables. */
	dp = ag_shm__attach(shm_name, 13);
	CU_ASSERT_PTR_NULL(dp);
	CU_ASSERT_EQUAL(errno, EINVAL);
	ag_shm__close(pub);
	ag_config__free(cfg);

	cfg = load_conf(13);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	pub = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NULL(pub);
	CU_ASSERT_EQUAL(errno, EINVAL);
	ag_config__free(cfg);

	CU_ASSERT_EQUAL(ag_shm__unlink("a/b"), -EINVAL);
	dp = ag_shm__attach("", 0);
	CU_ASSERT_PTR_NULL(dp);
	CU_ASSERT_EQUAL(errno, EINVAL);
}

/* Overwrite bytes of the segment file at off. */
static void poke(uint64_t off, const void *p, size_t len)
{
	int fd = open(shm_path, O_RDWR);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pwrite(fd, p, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void test_version_mismatch(void)
{
	struct ag_config *cfg = load_conf(RING);
	struct ag_shm *m;
	uint32_t v;
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	fresh();
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	ag_shm__close(m);

	v = AG_ABI_VERSION + 1;
	poke(offsetof(struct ag_shm_ident, abi_version), &v, sizeof(v));
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(errno, EPROTO);
	m = ag_shm__attach(shm_name, RING);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(errno, EPROTO);

	v = AG_ABI_VERSION;
	poke(offsetof(struct ag_shm_ident, abi_version), &v, sizeof(v));
	v = AG_SHM_LAYOUT_VERSION + 7;
	poke(offsetof(struct ag_shm_ident, layout_version), &v, sizeof(v));
	m = ag_shm__attach(shm_name, 0);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(errno, EPROTO);

	v = AG_SHM_LAYOUT_VERSION;
	poke(offsetof(struct ag_shm_ident, layout_version), &v, sizeof(v));
	/* Same versions, another offset: a build that laid it out differently. */
	v = 4096 * 3;
	poke(offsetof(struct ag_shm_ident, off_lstate), &v, sizeof(v));
	m = ag_shm__attach(shm_name, 0);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(errno, EPROTO);

	/* Not a segment at all. */
	fresh();
	fd = open(shm_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(ftruncate(fd, 8192), 0);
	close(fd);
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(errno, EPROTO);
	/* Too small to hold a header. */
	CU_ASSERT_EQUAL(truncate(shm_path, 100), 0);
	m = ag_shm__attach(shm_name, 0);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(errno, EPROTO);
	fresh();
	ag_config__free(cfg);
}

static int lkey_id(const struct ag_shm_view *h, const char *vip, uint8_t proto, uint16_t port,
		   uint32_t *id)
{
	struct ag_listener_key k = {.proto = proto, .port = htons(port)};

	inet_pton(AF_INET, vip, &k.vip);
	return ag_shm__lkey_get(h, &k, id);
}

static void test_publish_and_read(void)
{
	struct ag_config *cfg = load_conf(RING);
	struct ag_publisher pub;
	struct ag_settings s;
	struct ag_plan *plan;
	const struct ag_shm_view *h;
	struct ag_shm *m, *dp;
	struct ag_port_ovr_key ok;
	const struct ag_backend *be;
	uint32_t id, vip, lid, i, port, slot0, gen0, *tab;
	bool up[8];
	__be16 op;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	fresh();
	plan = ag_plan__new(cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(plan);
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(ag_publisher__init(&pub, ag_shm__sink_ops(), m, RING, 77), 0);
	CU_ASSERT_EQUAL_FATAL(ag_publisher__publish(&pub, plan, NULL), 0);

	/* Read as anygate-dp does: through its own mapping. */
	dp = ag_shm__attach(shm_name, RING);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	h = ag_shm__view(dp);

	CU_ASSERT_EQUAL(ag_shm__settings_get(h, &s), 1);
	CU_ASSERT_EQUAL(s.abi_version, AG_ABI_VERSION);
	CU_ASSERT_EQUAL(s.hash_seed, 77);
	CU_ASSERT_EQUAL(s.ring_size, RING);
	CU_ASSERT_EQUAL(s.nat_addr_count, 2);
	CU_ASSERT_EQUAL(s.nat_addrs[1], htonl(0x0aff0002));
	CU_ASSERT_EQUAL(s.nat_port_min, 2000);
	CU_ASSERT_EQUAL(s.nat_port_max, 3000);
	CU_ASSERT_EQUAL(s.udp_idle_ns, (uint64_t)AG_UDP_IDLE_DEFAULT * 1000000000ull);

	inet_pton(AF_INET, "198.51.100.11", &vip);
	CU_ASSERT_EQUAL(ag_shm__vip_get(h, vip), 1);
	inet_pton(AF_INET, "198.51.100.12", &vip);
	CU_ASSERT_EQUAL(ag_shm__vip_get(h, vip), 0);

	/* Every expanded key of both VIPs, and nothing else. */
	for (port = 8000; port <= 8009; port++) {
		id = 99;
		CU_ASSERT_EQUAL(lkey_id(h, "198.51.100.11", IPPROTO_TCP, port, &id), 1);
		CU_ASSERT_EQUAL(id, 0);
	}
	CU_ASSERT_EQUAL(lkey_id(h, "198.51.100.10", IPPROTO_TCP, 80, &id), 1);
	CU_ASSERT_EQUAL(id, 0);
	CU_ASSERT_EQUAL(lkey_id(h, "198.51.100.10", IPPROTO_UDP, 5000, &id), 1);
	CU_ASSERT_EQUAL(id, 1);
	CU_ASSERT_EQUAL(lkey_id(h, "198.51.100.10", IPPROTO_TCP, 5000, &id), 0);
	CU_ASSERT_EQUAL(lkey_id(h, "198.51.100.10", IPPROTO_UDP, 80, &id), 0);
	CU_ASSERT_EQUAL(lkey_id(h, "198.51.100.10", IPPROTO_TCP, 8010, &id), 0);
	CU_ASSERT_EQUAL(lkey_id(h, "198.51.100.12", IPPROTO_TCP, 80, &id), 0);
	CU_ASSERT_EQUAL(ag_shm__table(h, h->lay.off_lkeys[h->hdr->pub.lkeys_live])->count,
			2 * 11 + 2 * 1);

	/* Group of backend 0 (eu of listener 0) rewrites 8000 to 8080. */
	be = &ag_shm__backends(h)[0];
	ok.group_id = be->group_id;
	ok.port = htons(8000);
	ok.pad = 0;
	CU_ASSERT_EQUAL(ag_shm__ovr_get(h, &ok, &op), 1);
	CU_ASSERT_EQUAL(op, htons(8080));
	ok.port = htons(8001);
	CU_ASSERT_EQUAL(ag_shm__ovr_get(h, &ok, &op), 0);

	/* Backends as the plan numbers them, all up. */
	for (i = 0; i < plan->n_backends; i++) {
		be = &ag_shm__backends(h)[i];
		CU_ASSERT_EQUAL(be->addr, plan->backends[i].addr);
		CU_ASSERT_EQUAL(be->group_id, plan->backends[i].group_id);
		CU_ASSERT_EQUAL(be->state, AG_BACKEND_UP);
		CU_ASSERT_EQUAL(be->mode, AG_MODE_NAT);
	}
	CU_ASSERT_EQUAL(ag_shm__backends(h)[plan->n_backends].state, AG_BACKEND_UNUSED);

	/*
	 * Each live table names only its listener's backends, and every backend
	 * of the nearest group (all healthy at dial 100: it takes every flow).
	 */
	for (lid = 0; lid < plan->n_listeners; lid++) {
		const struct ag_listener_state *ls = &ag_shm__lstate(h)[lid];
		const struct ag_plan_listener *pl = &plan->listeners[lid];
		const struct ag_plan_group *g0 = &plan->groups[pl->first_group];
		const struct ag_plan_group *gl = &plan->groups[pl->first_group + pl->n_groups - 1];
		uint32_t lo = g0->first_backend, hi = gl->first_backend + gl->n_backends, seen = 0;

		CU_ASSERT_EQUAL(ls->flags, AG_LF_ACTIVE);
		CU_ASSERT(ls->slot == 2 * lid || ls->slot == 2 * lid + 1);
		tab = ag_shm__lookup(h) + (size_t)ls->slot * RING;
		for (i = 0; i < RING; i++) {
			CU_ASSERT_FATAL(tab[i] >= lo && tab[i] < hi);
			seen |= 1u << (tab[i] - lo);
		}
		CU_ASSERT_EQUAL(seen & ((1u << g0->n_backends) - 1), (1u << g0->n_backends) - 1);
	}
	CU_ASSERT_EQUAL(ag_shm__lstate(h)[2].flags, 0);

	/* Health moves: backend 0 down, tables switch slots, it disappears from them. */
	slot0 = ag_shm__lstate(h)[0].slot;
	gen0 = ag_shm__lstate(h)[0].generation;
	memset(up, 1, sizeof(up));
	up[0] = false;
	{
		struct ag_view view = {.up = up};

		CU_ASSERT_EQUAL_FATAL(ag_publisher__publish_tables(&pub, plan, &view), 0);
	}
	CU_ASSERT_EQUAL(ag_shm__backends(h)[0].state, AG_BACKEND_DOWN);
	CU_ASSERT_NOT_EQUAL(ag_shm__lstate(h)[0].slot, slot0);
	CU_ASSERT_EQUAL(ag_shm__lstate(h)[0].generation, gen0 + 1);
	tab = ag_shm__lookup(h) + (size_t)ag_shm__lstate(h)[0].slot * RING;
	for (i = 0; i < RING; i++)
		CU_ASSERT_NOT_EQUAL_FATAL(tab[i], 0);

	ag_publisher__fini(&pub);
	ag_shm__close(dp);
	ag_shm__close(m);
	ag_plan__free(plan);
	ag_config__free(cfg);
}

/*
 * A reader in the middle of a copy: one publish writes the other copy (the
 * reader's stays valid); the next rewrites the reader's copy, and the
 * reader's sequence check says so.
 */
static void test_double_buffer_seqlock(void)
{
	struct ag_config *cfg = load_conf(RING);
	struct ag_publisher pub;
	struct ag_shm_table *t;
	const struct ag_shm_view *v;
	struct ag_shm_hdr *h;
	struct ag_plan *plan;
	struct ag_shm *m;
	uint32_t live, seq, gen;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	fresh();
	plan = ag_plan__new(cfg);
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	h = ag_shm__hdr(m);
	v = ag_shm__view(m);
	CU_ASSERT_EQUAL_FATAL(ag_publisher__init(&pub, ag_shm__sink_ops(), m, RING, 77), 0);
	CU_ASSERT_EQUAL_FATAL(ag_publisher__publish_config(&pub, plan), 0);

	live = h->pub.lkeys_live;
	t = ag_shm__table(v, v->lay.off_lkeys[live]);
	seq = ag_shm__read_begin(t);
	CU_ASSERT_EQUAL(seq & 1, 0);
	gen = h->pub.generation;

	CU_ASSERT_EQUAL_FATAL(ag_publisher__publish_config(&pub, plan), 0);
	CU_ASSERT_EQUAL(h->pub.lkeys_live, live ^ 1);
	CU_ASSERT_EQUAL(ag_shm__read_retry(t, seq), 0);
	/* settings, vips, overrides, keys: four switches */
	CU_ASSERT_EQUAL(h->pub.generation, gen + 4);

	CU_ASSERT_EQUAL_FATAL(ag_publisher__publish_config(&pub, plan), 0);
	CU_ASSERT_EQUAL(h->pub.lkeys_live, live);
	CU_ASSERT_EQUAL(ag_shm__read_retry(t, seq), 1);

	/* A copy caught mid-write (odd seq) is never read: the reader gives up, bounded. */
	t = ag_shm__table(v, v->lay.off_settings[h->pub.settings_live]);
	t->seq++;
	{
		struct ag_settings s;

		CU_ASSERT_EQUAL(ag_shm__settings_get(v, &s), -1);
	}
	t->seq++;

	ag_publisher__fini(&pub);
	ag_shm__close(m);
	ag_plan__free(plan);
	ag_config__free(cfg);
}

/* The open-addressing tables at their limits: every key found, no false hit. */
static void test_tables_full(void)
{
	struct ag_config *cfg = load_conf(RING);
	const struct ag_sink_ops *ops = ag_shm__sink_ops();
	struct ag_listener_key *keys;
	struct ag_port_ovr_key *okeys;
	struct ag_port_ovr *ovals;
	uint32_t *ids, *vips, i, id;
	const struct ag_shm_view *h;
	struct ag_shm *m;
	unsigned int bad = 0;
	__be16 p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	fresh();
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	h = ag_shm__view(m);

	keys = calloc(AG_MAX_LISTENER_KEYS + 1, sizeof(*keys));
	ids = calloc(AG_MAX_LISTENER_KEYS + 1, sizeof(*ids));
	CU_ASSERT_FATAL(keys && ids);
	/* 4 VIPs x 65535 ports, TCP, plus UDP 1-4: the config limit exactly. */
	for (i = 0; i < AG_MAX_LISTENER_KEYS; i++) {
		keys[i].vip = htonl(0xc6336400 + (i < 4 * 65535 ? i / 65535 : 9));
		keys[i].port = htons(i < 4 * 65535 ? i % 65535 + 1 : i - 4 * 65535 + 1);
		keys[i].proto = i < 4 * 65535 ? IPPROTO_TCP : IPPROTO_UDP;
		ids[i] = i % AG_MAX_LISTENERS;
	}
	CU_ASSERT_EQUAL_FATAL(ops->listener_keys(m, keys, ids, AG_MAX_LISTENER_KEYS), 0);
	for (i = 0; i < AG_MAX_LISTENER_KEYS; i++)
		if (ag_shm__lkey_get(h, &keys[i], &id) != 1 || id != ids[i])
			bad++;
	CU_ASSERT_EQUAL(bad, 0);
	/* Misses: other VIP, other protocol. */
	for (i = 0; i < 1000; i++) {
		struct ag_listener_key k = keys[i];

		k.vip = htonl(0xc6336480);
		if (ag_shm__lkey_get(h, &k, &id) != 0)
			bad++;
		k = keys[i];
		k.proto = IPPROTO_UDP;
		if (ag_shm__lkey_get(h, &k, &id) != 0)
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* Beyond the capacity's half: refused, the live copy unchanged. */
	keys[AG_MAX_LISTENER_KEYS] = keys[0];
	keys[AG_MAX_LISTENER_KEYS].vip = htonl(0xc6336481);
	CU_ASSERT_EQUAL(ops->listener_keys(m, keys, ids, AG_SHM_LKEY_CAP / 2 + 1), -E2BIG);
	CU_ASSERT_EQUAL(ag_shm__lkey_get(h, &keys[7], &id), 1);
	/* A key the fast path could never match (proto 0) is refused. */
	keys[0].proto = 0;
	CU_ASSERT_EQUAL(ops->listener_keys(m, keys, ids, 1), -EINVAL);
	/* Replacing with a smaller set removes the rest. */
	keys[0].proto = IPPROTO_TCP;
	CU_ASSERT_EQUAL(ops->listener_keys(m, keys, ids, 1), 0);
	CU_ASSERT_EQUAL(ag_shm__lkey_get(h, &keys[0], &id), 1);
	CU_ASSERT_EQUAL(ag_shm__lkey_get(h, &keys[1], &id), 0);

	vips = calloc(AG_MAX_VIPS, sizeof(*vips));
	for (i = 0; i < AG_MAX_VIPS; i++)
		vips[i] = htonl(0xc6336400 + i);
	CU_ASSERT_EQUAL(ops->vips(m, vips, AG_MAX_VIPS), 0);
	for (i = 0; i < AG_MAX_VIPS; i++)
		if (ag_shm__vip_get(h, vips[i]) != 1)
			bad++;
	CU_ASSERT_EQUAL(ag_shm__vip_get(h, htonl(0xc6336400 + AG_MAX_VIPS)), 0);
	vips[3] = 0;
	CU_ASSERT_EQUAL(ops->vips(m, vips, AG_MAX_VIPS), -EINVAL);

	okeys = calloc(AG_MAX_PORT_OVERRIDES, sizeof(*okeys));
	ovals = calloc(AG_MAX_PORT_OVERRIDES, sizeof(*ovals));
	for (i = 0; i < AG_MAX_PORT_OVERRIDES; i++) {
		okeys[i].group_id = i % AG_MAX_GROUPS;
		okeys[i].port = htons(i / AG_MAX_GROUPS + 1);
		ovals[i].port = htons(10000 + i);
	}
	CU_ASSERT_EQUAL(ops->port_overrides(m, okeys, ovals, AG_MAX_PORT_OVERRIDES), 0);
	for (i = 0; i < AG_MAX_PORT_OVERRIDES; i++)
		if (ag_shm__ovr_get(h, &okeys[i], &p) != 1 || p != htons(10000 + i))
			bad++;
	CU_ASSERT_EQUAL(bad, 0);

	free(keys);
	free(ids);
	free(vips);
	free(okeys);
	free(ovals);
	ag_shm__close(m);
	ag_config__free(cfg);
}

static void test_counters_and_fastpath(void)
{
	struct ag_config *cfg = load_conf(RING);
	struct ag_traffic_stats ts;
	struct ag_reason_stats rs;
	struct ag_shm_dp st;
	const struct ag_shm_view *v;
	struct ag_shm_hdr *h;
	struct ag_shm *m;
	uint64_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	fresh();
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	h = ag_shm__hdr(m);
	v = ag_shm__view(m);

	ag_shm__lane(v, 0)->lstats[3].packets = 5;
	ag_shm__lane(v, AG_SHM_LANES - 1)->lstats[3].packets = 7;
	ag_shm__lane(v, 2)->lstats[3].ret_bytes = 1000;
	ag_shm__lane(v, 1)->bstats[AG_MAX_BACKENDS - 1].new_flows = 2;
	ag_shm__lane(v, 5)->bstats[AG_MAX_BACKENDS - 1].new_flows = 3;
	ag_shm__lane(v, 4)->rstats[AG_R_DROP_BAD_IP].bytes = 60;
	ag_shm__lane(v, 4)->dp[AG_DPC_TX_DROPPED] = 4;
	ag_shm__lane(v, 9)->dp[AG_DPC_TX_DROPPED] = 6;

	CU_ASSERT_EQUAL(ag_shm__listener_stats(m, 3, &ts), 0);
	CU_ASSERT_EQUAL(ts.packets, 12);
	CU_ASSERT_EQUAL(ts.ret_bytes, 1000);
	CU_ASSERT_EQUAL(ts.new_flows, 0);
	CU_ASSERT_EQUAL(ag_shm__backend_stats(m, AG_MAX_BACKENDS - 1, &ts), 0);
	CU_ASSERT_EQUAL(ts.new_flows, 5);
	CU_ASSERT_EQUAL(ag_shm__reason_stats(m, AG_R_DROP_BAD_IP, &rs), 0);
	CU_ASSERT_EQUAL(rs.bytes, 60);
	CU_ASSERT_EQUAL(rs.packets, 0);
	CU_ASSERT_EQUAL(ag_shm__dp_counter(m, AG_DPC_TX_DROPPED, &n), 0);
	CU_ASSERT_EQUAL(n, 10);
	CU_ASSERT_EQUAL(ag_shm__listener_stats(m, AG_MAX_LISTENERS, &ts), -EINVAL);
	CU_ASSERT_EQUAL(ag_shm__backend_stats(m, AG_MAX_BACKENDS, &ts), -EINVAL);
	CU_ASSERT_EQUAL(ag_shm__reason_stats(m, AG_R__MAX, &rs), -EINVAL);
	CU_ASSERT_STRING_EQUAL(ag_dp_counter__name(AG_DPC_TX_DROPPED), "tx_dropped");

	/* No fast path, then a live one, then a silent one. */
	CU_ASSERT_EQUAL(ag_shm__fastpath(m, 1000000000ull, &st), -ESRCH);
	CU_ASSERT_EQUAL(ag_shm__flow_count(m), -ESRCH);
	h->dp.flows = 42;
	h->dp.heartbeat_ns = ag_shm__now_ns();
	h->dp.pid = 1;
	CU_ASSERT_EQUAL(ag_shm__fastpath(m, 1000000000ull, &st), 0);
	CU_ASSERT_EQUAL(st.flows, 42);
	CU_ASSERT_EQUAL(ag_shm__flow_count(m), 42);
	h->dp.heartbeat_ns -= 3000000000ull;
	CU_ASSERT_EQUAL(ag_shm__fastpath(m, 1000000000ull, &st), -ESRCH);

	ag_shm__close(m);
	ag_config__free(cfg);
}

/* ------------------------------------------------------------------------ */
/* Crafted headers and files that are not ours: each refused, nothing used */

/* Run fn with stderr going to a file; the messages it logged, in buf. */
static void capture(void (*fn)(void *), void *arg, char *buf, size_t len)
{
	char path[160];
	int fd, saved;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/stderr", tmpdir);
	fflush(stderr);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	saved = dup(2);
	CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
	dup2(fd, 2);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
}

/* The first page of the segment file, as it is now. */
static void read_page(void *buf)
{
	int fd = open(shm_path, O_RDONLY);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pread(fd, buf, AG_SHM_ALIGN, 0), AG_SHM_ALIGN);
	close(fd);
}

struct refusal {
	struct ag_config *cfg;
	int open_err, attach_err, observe_err;
};

static void try_all(void *arg)
{
	struct refusal *r = arg;
	struct ag_shm *m;

	m = ag_shm__open(&r->cfg->edge);
	r->open_err = m ? 0 : errno;
	ag_shm__close(m);
	m = ag_shm__attach(shm_name, 0);
	r->attach_err = m ? 0 : errno;
	ag_shm__close(m);
	m = ag_shm__observe(shm_name);
	r->observe_err = m ? 0 : errno;
	ag_shm__close(m);
}

/*
 * Publisher, fast path and observer all refuse the segment as it is now, with
 * error err and a message containing each of want[] (NULL-terminated); the
 * file's header is left as it was (nothing adopted: not even the
 * publisher's pid is written).
 */
static void expect_refused(struct ag_config *cfg, int err, const char *const *want)
{
	struct refusal r = {.cfg = cfg};
	static char before[AG_SHM_ALIGN], after[AG_SHM_ALIGN];
	char msgs[4096];
	struct stat st;
	/* Compare the header before and after, where there is a file to read (not a FIFO). */
	bool have_file = lstat(shm_path, &st) == 0 && S_ISREG(st.st_mode);

	if (have_file)
		read_page(before);
	capture(try_all, &r, msgs, sizeof(msgs));
	CU_ASSERT_EQUAL(r.open_err, err);
	CU_ASSERT_EQUAL(r.attach_err, err);
	CU_ASSERT_EQUAL(r.observe_err, err);
	if (r.open_err != err || r.attach_err != err || r.observe_err != err)
		fprintf(stderr, "want %d, got open %d attach %d observe %d:\n%s\n", err, r.open_err,
			r.attach_err, r.observe_err, msgs);
	for (; *want; want++) {
		CU_ASSERT_PTR_NOT_NULL(strstr(msgs, *want));
		if (!strstr(msgs, *want))
			fprintf(stderr, "expected '%s' in:\n%s\n", *want, msgs);
	}
	if (have_file) {
		read_page(after);
		CU_ASSERT_EQUAL(memcmp(before, after, sizeof(before)), 0);
	}
}

/* One crafted identity: the field poked, its new value, the words the refusal must say. */
struct crafted {
	const char *what;
	size_t off;
	size_t len; /* 4 or 8 */
	uint64_t (*value)(const struct ag_shm_ident *good);
	const char *want[3];
};

static uint64_t past_end(const struct ag_shm_ident *g)
{
	return g->total_size;
}
static uint64_t huge_offset(const struct ag_shm_ident *g)
{
	return 0xfffffffffffff000ull;
}
static uint64_t huge_lane(const struct ag_shm_ident *g)
{
	return 1ull << 62;
}
static uint64_t huge_cap(const struct ag_shm_ident *g)
{
	return 0x80000000u;
}
static uint64_t overlap(const struct ag_shm_ident *g)
{
	return g->off_vips[0];
}
static uint64_t misaligned(const struct ag_shm_ident *g)
{
	return g->off_backends + 8;
}
static uint64_t one_page_more(const struct ag_shm_ident *g)
{
	return g->total_size + AG_SHM_ALIGN;
}
static uint64_t wrong_lkey_size(const struct ag_shm_ident *g)
{
	return g->lkey_size - 1;
}
static uint64_t small_cap(const struct ag_shm_ident *g)
{
	return g->ovr_cap / 2;
}
static uint64_t odd_cap(const struct ag_shm_ident *g)
{
	return g->vip_cap - 1;
}
static uint64_t zero(const struct ag_shm_ident *g)
{
	return 0;
}
static uint64_t more_buckets(const struct ag_shm_ident *g)
{
	return g->lookup_buckets + 1;
}

#define FIELD(f) offsetof(struct ag_shm_ident, f), sizeof(((struct ag_shm_ident *)0)->f)
static const struct crafted crafted[] = {
    {"offset past the end", FIELD(off_vips[1]), past_end, {"off_vips[1]", "past the segment"}},
    {"offset + size overflow", FIELD(off_lanes), huge_offset, {"off_lanes", "past the segment"}},
    {"count x entry size overflow", FIELD(lane_size), huge_lane, {"off_lanes", "overflow"}},
    {"capacity past the end", FIELD(vip_cap), huge_cap, {"off_vips[0]", "past the segment"}},
    {"overlapping regions", FIELD(off_lkeys[0]), overlap, {"off_lkeys[0]", "overlaps"}},
    {"misaligned region", FIELD(off_backends), misaligned, {"off_backends", "boundary"}},
    {"size other than the file's", FIELD(total_size), one_page_more, {"total_size", "truncated"}},
    {"wrong entry size", FIELD(lkey_size), wrong_lkey_size, {"lkey_size 11", "12 bytes"}},
    {"capacity below this build's", FIELD(ovr_cap), small_cap, {"ovr_cap", "at least"}},
    {"capacity not a power of two", FIELD(vip_cap), odd_cap, {"vip_cap", "power of two"}},
    {"ring size 0", FIELD(ring_size), zero, {"ring_size 0"}},
    {"lookup buckets past the ring", FIELD(lookup_buckets), more_buckets, {"lookup_buckets"}},
    {"header size", FIELD(hdr_size), zero, {"hdr_size 0"}},
};

static void poke_value(size_t off, size_t len, uint64_t v)
{
	uint32_t v32 = (uint32_t)v;

	if (len == 4)
		poke(off, &v32, 4);
	else
		poke(off, &v, 8);
}

/*
 * Each field of the identity crafted on its own: ag_shm__layout_check()
 * refuses it naming the field, and so do publisher, fast path and observer
 * (the same check), leaving the file as it was. The good identity passes.
 */
static void test_crafted_headers(void)
{
	struct ag_config *cfg = load_conf(RING);
	struct ag_shm_layout lay;
	struct ag_shm_ident good, id;
	struct ag_shm *m;
	char why[256];
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	fresh();
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	good = ag_shm__hdr(m)->ident;
	ag_shm__close(m);
	CU_ASSERT_EQUAL(ag_shm__layout_check(&good, good.total_size, &lay, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(lay.map_size, good.total_size);
	CU_ASSERT_EQUAL(lay.off_lanes, good.off_lanes);
	CU_ASSERT_EQUAL(lay.vip_cap, AG_SHM_VIP_CAP);
	/* A mapping shorter than the header: refused before a byte is read. */
	CU_ASSERT_EQUAL(ag_shm__layout_check(NULL, 100, &lay, why, sizeof(why)), -EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "too small"));

	for (i = 0; i < sizeof(crafted) / sizeof(crafted[0]); i++) {
		const struct crafted *c = &crafted[i];
		uint64_t v = c->value(&good);
		const char *want[4] = {c->want[0], c->want[1], c->want[2], NULL};

		id = good;
		memcpy((char *)&id + c->off, &v, c->len); /* little endian: the low bytes */
		memset(why, 0, sizeof(why));
		CU_ASSERT_EQUAL(ag_shm__layout_check(&id, good.total_size, &lay, why, sizeof(why)),
				-EPROTO);
		if (!strstr(why, c->want[0]))
			fprintf(stderr, "%s: '%s' does not name %s\n", c->what, why, c->want[0]);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, c->want[0]));
		poke_value(c->off, c->len, v);
		expect_refused(cfg, EPROTO, want);
		poke(0, &good, sizeof(good));
	}
	/* Back to the good identity: adopted again. */
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL(m);
	ag_shm__close(m);
	fresh();
	ag_config__free(cfg);
}

/*
 * The two ASan findings on ad55e81, as regressions: a table head whose cap
 * and entry_size say 2^31 x 2^20 drove the publisher's memset (64 GiB) and
 * the fast path's probe (a wild read). Heads are the file's word: only the
 * validated layout sizes anything, so publishing and reading stay inside.
 */
static void test_crafted_table_heads(void)
{
	struct ag_config *cfg = load_conf(RING);
	const struct ag_sink_ops *ops = ag_shm__sink_ops();
	const struct ag_shm_view *v;
	struct ag_shm *m, *dp;
	uint32_t vips[2], i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	fresh();
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	v = ag_shm__view(m);
	for (i = 0; i < 2; i++) {
		struct ag_shm_table *t = ag_shm__table(v, v->lay.off_vips[i]);

		t->cap = 0x80000000u;
		t->entry_size = 1u << 20;
	}
	vips[0] = htonl(0xc6336401);
	vips[1] = htonl(0xc6336402);
	CU_ASSERT_EQUAL(ops->vips(m, vips, 2), 0);
	CU_ASSERT_EQUAL(ops->vips(m, vips, 1), 0);
	dp = ag_shm__attach(shm_name, RING);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	CU_ASSERT_EQUAL(ag_shm__vip_get(ag_shm__view(dp), vips[0]), 1);
	CU_ASSERT_EQUAL(ag_shm__vip_get(ag_shm__view(dp), vips[1]), 0);
	CU_ASSERT_EQUAL(ag_shm__vip_get(ag_shm__view(dp), htonl(0x0a000001)), 0);
	ag_shm__close(dp);
	ag_shm__close(m);
	fresh();
	ag_config__free(cfg);
}

/* A directory of our own for the ownership tests (they change its mode and owner). */
static char own_dir[160];

static void use_own_dir(void)
{
	snprintf(own_dir, sizeof(own_dir), "%s/segments", tmpdir);
	CU_ASSERT_EQUAL_FATAL(ag_shm__set_dir(own_dir), 0);
	snprintf(shm_path, sizeof(shm_path), "%s/%s", own_dir, shm_name);
}

static void back_to_default_dir(void)
{
	ag_shm__unlink(shm_name);
	rmdir(own_dir);
	CU_ASSERT_EQUAL(ag_shm__set_dir(AG_SHM_DIR), 0);
	snprintf(shm_path, sizeof(shm_path), "%s/%s", AG_SHM_DIR, shm_name);
}

/*
 * The directory and the segment as anygate makes them: a missing directory
 * is created 0700, a segment 0600 whatever the umask, both the euid's.
 */
static void test_created_private(void)
{
	struct ag_config *cfg = load_conf(RING);
	struct ag_shm *m;
	struct stat st;
	mode_t old;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	use_own_dir();
	CU_ASSERT_NOT_EQUAL(access(own_dir, F_OK), 0);
	/* Attach and observe never create. */
	CU_ASSERT_PTR_NULL(ag_shm__attach(shm_name, 0));
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_NOT_EQUAL(access(own_dir, F_OK), 0);
	old = umask(0);
	m = ag_shm__open(&cfg->edge);
	umask(old);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(ag_shm__path(m), shm_path);
	CU_ASSERT_EQUAL(stat(own_dir, &st), 0);
	CU_ASSERT(S_ISDIR(st.st_mode));
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0700);
	CU_ASSERT_EQUAL(st.st_uid, geteuid());
	CU_ASSERT_EQUAL(stat(shm_path, &st), 0);
	CU_ASSERT(S_ISREG(st.st_mode));
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
	CU_ASSERT_EQUAL(st.st_uid, geteuid());
	CU_ASSERT_EQUAL(st.st_nlink, 1); /* the temporary name is gone */
	ag_shm__close(m);
	back_to_default_dir();
	ag_config__free(cfg);
}

/* A segment that is not ours, or not a segment file: refused, nothing adopted. */
static void test_segment_ownership(void)
{
	struct ag_config *cfg = load_conf(RING);
	const char *other_uid[] = {"owned by uid 65534 with mode 0600", "must belong to uid 0",
				   shm_path, NULL};
	const char *group_read[] = {"owned by uid 0 with mode 0640", shm_path, NULL};
	const char *other_read[] = {"with mode 0604", "no group or other access", NULL};
	const char *symlink_msg[] = {"is a symbolic link", shm_path, NULL};
	const char *fifo_msg[] = {"is a FIFO", shm_path, NULL};
	const char *dir_msg[] = {"is a directory", shm_path, NULL};
	char real[300];
	struct ag_shm *m;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	use_own_dir();
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	ag_shm__close(m);

	CU_ASSERT_EQUAL(chown(shm_path, 65534, 65534), 0);
	expect_refused(cfg, EPERM, other_uid);
	CU_ASSERT_EQUAL(chown(shm_path, 0, 0), 0);
	CU_ASSERT_EQUAL(chmod(shm_path, 0640), 0);
	expect_refused(cfg, EPERM, group_read);
	CU_ASSERT_EQUAL(chmod(shm_path, 0604), 0);
	expect_refused(cfg, EPERM, other_read);
	CU_ASSERT_EQUAL(chmod(shm_path, 0600), 0);
	m = ag_shm__attach(shm_name, 0);
	CU_ASSERT_PTR_NOT_NULL(m);
	ag_shm__close(m);

	/* A link to a good segment: refused all the same (O_NOFOLLOW), the target untouched. */
	snprintf(real, sizeof(real), "%s.real", shm_path);
	CU_ASSERT_EQUAL(rename(shm_path, real), 0);
	CU_ASSERT_EQUAL(symlink(real, shm_path), 0);
	expect_refused(cfg, ELOOP, symlink_msg);
	unlink(shm_path);
	unlink(real);

	/* A FIFO: no open blocks on it (the observer opens read-only). */
	CU_ASSERT_EQUAL(mkfifo(shm_path, 0600), 0);
	expect_refused(cfg, EPERM, fifo_msg);
	unlink(shm_path);
	CU_ASSERT_EQUAL(mkdir(shm_path, 0700), 0);
	expect_refused(cfg, EPERM, dir_msg);
	rmdir(shm_path);
	back_to_default_dir();
	ag_config__free(cfg);
}

/* The directory: another owner, group/other access, a link in its place: refused. */
static void test_directory_ownership(void)
{
	struct ag_config *cfg = load_conf(RING);
	const char *mode_msg[] = {"with mode 0755", "segment directory must belong to uid 0",
				  own_dir, NULL};
	const char *owner_msg[] = {"owned by uid 65534", own_dir, NULL};
	const char *link_msg[] = {"is not a directory", own_dir, NULL};
	char real[300];
	struct ag_shm *m;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	use_own_dir();
	m = ag_shm__open(&cfg->edge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	ag_shm__close(m);

	CU_ASSERT_EQUAL(chmod(own_dir, 0755), 0);
	expect_refused(cfg, EPERM, mode_msg);
	/* Not "fixed" behind the operator's back either. */
	{
		struct stat st;

		CU_ASSERT_EQUAL(stat(own_dir, &st), 0);
		CU_ASSERT_EQUAL(st.st_mode & 07777, 0755);
	}
	CU_ASSERT_EQUAL(chmod(own_dir, 0700), 0);
	CU_ASSERT_EQUAL(chown(own_dir, 65534, 65534), 0);
	expect_refused(cfg, EPERM, owner_msg);
	CU_ASSERT_EQUAL(chown(own_dir, 0, 0), 0);

	/* A link to a good directory in its place. */
	snprintf(real, sizeof(real), "%s.real", own_dir);
	CU_ASSERT_EQUAL(rename(own_dir, real), 0);
	CU_ASSERT_EQUAL(symlink(real, own_dir), 0);
	expect_refused(cfg, ENOTDIR, link_msg);
	unlink(own_dir);
	CU_ASSERT_EQUAL(rename(real, own_dir), 0);
	m = ag_shm__attach(shm_name, 0);
	CU_ASSERT_PTR_NOT_NULL(m);
	ag_shm__close(m);
	back_to_default_dir();
	ag_config__free(cfg);
}

int main(void)
{
	CU_pSuite s;
	unsigned int failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("shm", suite_init, suite_fini);
	CU_add_test(s, "create and adopt", test_create_and_adopt);
	CU_add_test(s, "attach rules and locks", test_attach_rules);
	CU_add_test(s, "layout/ABI version mismatch", test_version_mismatch);
	CU_add_test(s, "publish and read back", test_publish_and_read);
	CU_add_test(s, "double buffer and sequence lock", test_double_buffer_seqlock);
	CU_add_test(s, "tables at their limits", test_tables_full);
	CU_add_test(s, "counters and fast path status", test_counters_and_fastpath);
	CU_add_test(s, "crafted headers refused, field by field", test_crafted_headers);
	CU_add_test(s, "crafted table heads size nothing", test_crafted_table_heads);
	CU_add_test(s, "directory and segment created private", test_created_private);
	CU_add_test(s, "segments not ours refused", test_segment_ownership);
	CU_add_test(s, "directories not ours refused", test_directory_ownership);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
