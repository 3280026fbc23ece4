/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Runtime overrides (controlplane/daemon/overrides.c): selectors, values validated by
 * the config's own validators, "later wins" application onto a view, tidying,
 * clearing, the JSON state and its atomic file.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "view.h"
#include "overrides.h"
#include "plan.h"

/*
 * Two accelerators. web: TCP 80 and UDP 5000, regions eu-west (10.1.1.11,
 * 10.1.1.12) and us-east (10.2.1.11); api: TCP 443, eu-west (10.1.1.11,
 * 10.1.1.13). So 10.1.1.11 is three endpoints, eu-west three groups.
 */
static const char *const conf_text =
    "edge = {\n"
    "  name = \"e1\"; interfaces = ( { name = \"e0\"; role = \"both\"; } );\n"
    "  nat_addresses = [ \"10.255.0.1\" ];\n"
    "};\n"
    "accelerators = (\n"
    "  { name = \"web\"; addresses = [ \"198.51.100.10\" ];\n"
    "    listeners = (\n"
    "      { protocol = \"tcp\"; ports = [ 80 ];\n"
    "        endpoint_groups = (\n"
    "          { region = \"eu-west\"; health_check = { protocol = \"tcp\"; };\n"
    "            endpoints = ( { address = \"10.1.1.11\"; weight = 100; },\n"
    "                          { address = \"10.1.1.12\"; weight = 100; } ); },\n"
    "          { region = \"us-east\"; health_check = { protocol = \"tcp\"; };\n"
    "            endpoints = ( { address = \"10.2.1.11\"; } ); } ); },\n"
    "      { protocol = \"udp\"; ports = [ 5000 ];\n"
    "        endpoint_groups = (\n"
    "          { region = \"eu-west\";\n"
    "            health_check = { protocol = \"udp\"; send = \"p\"; };\n"
    "            endpoints = ( { address = \"10.1.1.11\"; },\n"
    "                          { address = \"10.1.1.12\"; } ); },\n"
    "          { region = \"us-east\";\n"
    "            health_check = { protocol = \"udp\"; send = \"p\"; };\n"
    "            endpoints = ( { address = \"10.2.1.11\"; } ); } ); } ); },\n"
    "  { name = \"api\"; addresses = [ \"198.51.100.20\" ];\n"
    "    listeners = (\n"
    "      { protocol = \"tcp\"; ports = [ 443 ];\n"
    "        endpoint_groups = (\n"
    "          { region = \"eu-west\"; health_check = { protocol = \"tcp\"; };\n"
    "            endpoints = ( { address = \"10.1.1.11\"; },\n"
    "                          { address = \"10.1.1.13\"; } ); } ); } ); }\n"
    ");\n";

static char tmpdir[] = "/tmp/ag-test-ovr-XXXXXX";
static struct ag_config *cfg;
static struct ag_plan *plan;

static char *write_file(const char *name, const char *text)
{
	char *path;
	FILE *f;

	if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
		return NULL;
	f = fopen(path, "w");
	if (!f) {
		free(path);
		return NULL;
	}
	fputs(text, f);
	fclose(f);
	return path;
}

static int suite_init(void)
{
	struct ag_errors errs;
	char *path;
	unsigned int i;

	if (!mkdtemp(tmpdir))
		return -1;
	path = write_file("t.conf", conf_text);
	if (!path)
		return -1;
	ag_errors__init(&errs);
	cfg = ag_config__load(path, &errs);
	for (i = 0; i < errs.count; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	ag_errors__free(&errs);
	free(path);
	plan = cfg ? ag_plan__new(cfg) : NULL;
	if (!plan) {
		/* CUnit runs no cleanup after a failed init. */
		char cmd[sizeof(tmpdir) + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd))
			fprintf(stderr, "could not remove %s\n", tmpdir);
		return -1;
	}
	return 0;
}

static int suite_fini(void)
{
	char cmd[sizeof(tmpdir) + 16];

	ag_plan__free(plan);
	ag_config__free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct ag_override ov_make(enum ag_ovr_kind k, const char *sel, int value)
{
	struct ag_override ov;
	const char *problem = NULL;

	memset(&ov, 0, sizeof(ov));
	ov.kind = k;
	ov.value = value;
	CU_ASSERT_EQUAL(ag_ovr_sel__parse(&ov.sel, sel, ag_ovr_kind__endpoint(k), &problem), 0);
	snprintf(ov.by, sizeof(ov.by), "uid 0");
	ov.set_at = 1700000000;
	return ov;
}

static void must_set(struct ag_overrides *o, enum ag_ovr_kind k, const char *sel, int value)
{
	struct ag_override ov = ov_make(k, sel, value);

	CU_ASSERT_EQUAL(ag_overrides__set(o, &ov, plan), 0);
}

/* Backend id of ADDRESS in listener lid (-1: none). */
static int backend(unsigned int lid, const char *addr)
{
	uint32_t a;
	unsigned int i;

	inet_pton(AF_INET, addr, &a);
	for (i = 0; i < plan->n_backends; i++)
		if (plan->backends[i].listener_id == lid && plan->backends[i].addr == a)
			return (int)i;
	return -1;
}

/* Group id of REGION in listener lid. */
static int group(unsigned int lid, const char *region)
{
	unsigned int i;

	for (i = 0; i < plan->n_groups; i++)
		if (plan->groups[i].listener_id == lid &&
		    !strcmp(plan->groups[i].cfg->region, region))
			return (int)i;
	return -1;
}

struct vs_arrays {
	struct ag_view_state vs;
	struct ag_view view;
};

static void vs_init(struct vs_arrays *a)
{
	unsigned int i;

	memset(a, 0, sizeof(*a));
	a->vs.up = calloc(plan->n_backends, sizeof(bool));
	a->vs.weight = calloc(plan->n_backends, sizeof(int16_t));
	a->vs.drained = calloc(plan->n_backends, sizeof(bool));
	a->vs.dial = calloc(plan->n_groups, sizeof(int16_t));
	a->vs.drilled = calloc(plan->n_groups, sizeof(bool));
	for (i = 0; i < plan->n_backends; i++) {
		a->vs.up[i] = true;
		a->vs.weight[i] = 77; /* garbage apply must reset */
		a->vs.drained[i] = true;
	}
	for (i = 0; i < plan->n_groups; i++) {
		a->vs.dial[i] = 33;
		a->vs.drilled[i] = true;
	}
	a->view.up = a->vs.up;
	a->view.weight = a->vs.weight;
	a->view.drained = a->vs.drained;
	a->view.dial = a->vs.dial;
	a->view.drilled = a->vs.drilled;
}

static void vs_free(struct vs_arrays *a)
{
	free(a->vs.up);
	free(a->vs.weight);
	free(a->vs.drained);
	free(a->vs.dial);
	free(a->vs.drilled);
}

/* ------------------------------------------------------------------------ */

static void test_plan_shape(void)
{
	/* The fixture the other tests count on. */
	CU_ASSERT_EQUAL_FATAL(plan->n_listeners, 3);
	CU_ASSERT_EQUAL(plan->n_groups, 5);
	CU_ASSERT_EQUAL(plan->n_backends, 8);
}

static void test_selector_parse(void)
{
	static const struct {
		const char *in;
		bool endpoint;
		const char *canon; /* NULL: refused */
	} cases[] = {
	    {"10.1.1.11", true, "10.1.1.11"},
	    {"eu-west/10.1.1.11", true, "eu-west/10.1.1.11"},
	    {"web/10.1.1.11", true, "web/10.1.1.11"},
	    {"web/eu-west/10.1.1.11", true, "web/eu-west/10.1.1.11"},
	    {"eu-west", false, "eu-west"},
	    {"web/eu-west", false, "web/eu-west"},
	    {"", true, NULL},
	    {"10.1.1", true, NULL},
	    {"10.1.1.256", true, NULL},
	    {"0x0a.1.1.1", true, NULL},
	    {"eu-west", true, NULL},
	    {"web/eu-west/", true, NULL},
	    {"a/b/c/10.1.1.1", true, NULL},
	    {"we b/10.1.1.1", true, NULL},
	    {"/10.1.1.1", true, NULL},
	    {"", false, NULL},
	    {"a/b/c", false, NULL},
	    {"eu west", false, NULL},
	    {"web/", false, NULL},
	};
	struct ag_ovr_sel sel;
	const char *problem;
	unsigned int i;
	char long_sel[300];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		problem = NULL;
		rc = ag_ovr_sel__parse(&sel, cases[i].in, cases[i].endpoint, &problem);
		if (cases[i].canon) {
			CU_ASSERT_EQUAL(rc, 0);
			CU_ASSERT_STRING_EQUAL(sel.text, cases[i].canon);
			CU_ASSERT_EQUAL(sel.endpoint, cases[i].endpoint);
		} else {
			CU_ASSERT_EQUAL(rc, -EINVAL);
			CU_ASSERT_PTR_NOT_NULL(problem);
			if (rc != -EINVAL)
				fprintf(stderr, "accepted: \"%s\"\n", cases[i].in);
		}
	}
	memset(long_sel, 'a', sizeof(long_sel) - 1);
	long_sel[sizeof(long_sel) - 1] = '\0';
	CU_ASSERT_EQUAL(ag_ovr_sel__parse(&sel, long_sel, false, &problem), -EINVAL);
	CU_ASSERT_STRING_EQUAL(problem, "selector too long");
}

static void test_selector_match(void)
{
	static const struct {
		const char *sel;
		bool endpoint;
		unsigned int n;
	} cases[] = {
	    {"10.1.1.11", true, 3},	    /* web tcp, web udp, api tcp */
	    {"web/10.1.1.11", true, 2},	    /* X = accelerator */
	    {"eu-west/10.1.1.11", true, 3}, /* X = region */
	    {"us-east/10.1.1.11", true, 0},
	    {"api/eu-west/10.1.1.11", true, 1},
	    {"api/us-east/10.1.1.11", true, 0},
	    {"10.1.1.13", true, 1},
	    {"10.9.9.9", true, 0},
	    {"eu-west", false, 3},
	    {"web/eu-west", false, 2},
	    {"api/us-east", false, 0},
	    {"us-east", false, 2},
	    {"nowhere", false, 0},
	    {"10.1.1.11", false, 0}, /* a group selector never matches an address */
	};
	struct ag_ovr_sel sel;
	const char *problem;
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(
		    ag_ovr_sel__parse(&sel, cases[i].sel, cases[i].endpoint, &problem), 0);
		CU_ASSERT_EQUAL(ag_ovr_sel__count(&sel, plan), cases[i].n);
		if (ag_ovr_sel__count(&sel, plan) != cases[i].n)
			fprintf(stderr, "%s: %u matches, want %u\n", cases[i].sel,
				ag_ovr_sel__count(&sel, plan), cases[i].n);
	}
}

/* The config file's words for a value: what follows "KEY: " in its error line. */
static char *config_words(const char *key_suffix, const char *from, const char *to)
{
	struct ag_errors errs;
	struct ag_config *bad;
	char *text, *path, *p, *out = NULL;
	const char *at = strstr(conf_text, from);

	if (!at)
		return NULL;
	text = malloc(strlen(conf_text) + strlen(to) + 1);
	memcpy(text, conf_text, at - conf_text);
	strcpy(text + (at - conf_text), to);
	strcat(text, at + strlen(from));
	path = write_file("bad.conf", text);
	free(text);
	ag_errors__init(&errs);
	bad = ag_config__load(path, &errs);
	CU_ASSERT_PTR_NULL(bad);
	ag_config__free(bad);
	CU_ASSERT_EQUAL(errs.count, 1);
	if (errs.count == 1 && (p = strstr(errs.msgs[0], key_suffix)))
		out = strdup(p + 1); /* from the last key element: "weight: must be ..." */
	ag_errors__free(&errs);
	free(path);
	return out;
}

static void test_values(void)
{
	char msg[160], *words;
	int v = -1;

	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_WEIGHT, "0", &v, msg, sizeof(msg)), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_WEIGHT, "255", &v, msg, sizeof(msg)), 0);
	CU_ASSERT_EQUAL(v, 255);
	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_DIAL, "100", &v, msg, sizeof(msg)), 0);
	CU_ASSERT_EQUAL(v, 100);
	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_DRAIN, NULL, &v, msg, sizeof(msg)), 0);
	CU_ASSERT_EQUAL(v, 1);

	v = 42;
	/* weight 256: the very words a config file gets. */
	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_WEIGHT, "256", &v, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(msg, "weight: must be 0-255 (got 256)");
	words =
	    config_words(".weight", "\"10.1.1.12\"; weight = 100;", "\"10.1.1.12\"; weight = 256;");
	CU_ASSERT_PTR_NOT_NULL_FATAL(words);
	CU_ASSERT_STRING_EQUAL(words, msg);
	free(words);

	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_DIAL, "101", &v, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(msg, "traffic_dial: must be 0-100 (got 101)");
	words = config_words(".traffic_dial",
			     "region = \"us-east\"; health_check = { protocol = "
			     "\"tcp\"; };",
			     "region = \"us-east\"; traffic_dial = 101; health_check = { protocol "
			     "= \"tcp\"; };");
	CU_ASSERT_PTR_NOT_NULL_FATAL(words);
	CU_ASSERT_STRING_EQUAL(words, msg);
	free(words);

	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_WEIGHT, "-1", &v, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(msg, "weight: must be 0-255 (got -1)");
	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_WEIGHT, "ten", &v, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(msg, "weight: must be an integer (got \"ten\")");
	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_WEIGHT, "", &v, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_WEIGHT, "12x", &v, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_WEIGHT, "+5", &v, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT_EQUAL(ag_ovr__value(AG_OVR_WEIGHT, "99999999999999999999", &v, msg, sizeof(msg)),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(msg, "weight: must be 0-255 (got 99999999999999999999)");
	CU_ASSERT_EQUAL(v, 42); /* untouched by refusals */
}

static void test_set_apply_later_wins(void)
{
	struct ag_overrides o;
	struct vs_arrays a;
	int web80 = backend(0, "10.1.1.11"), udp = backend(1, "10.1.1.11");
	int api = backend(2, "10.1.1.11"), other = backend(0, "10.1.1.12");
	struct ag_override ov;

	ag_overrides__init(&o);
	vs_init(&a);
	must_set(&o, AG_OVR_WEIGHT, "10.1.1.11", 5);
	must_set(&o, AG_OVR_WEIGHT, "web/10.1.1.11", 7);
	CU_ASSERT_EQUAL(o.n, 2);
	ag_overrides__apply(&o, plan, &a.vs);
	CU_ASSERT_EQUAL(a.vs.weight[web80], 7);
	CU_ASSERT_EQUAL(a.vs.weight[udp], 7);
	CU_ASSERT_EQUAL(a.vs.weight[api], 5);
	CU_ASSERT_EQUAL(a.vs.weight[other], -1);
	CU_ASSERT_FALSE(a.vs.drained[other]); /* reset by apply */
	CU_ASSERT_EQUAL(a.vs.dial[0], -1);
	CU_ASSERT_FALSE(a.vs.drilled[0]);

	/* A broader one later replaces both: the older ones go. */
	must_set(&o, AG_OVR_WEIGHT, "eu-west/10.1.1.11", 9);
	CU_ASSERT_EQUAL_FATAL(o.n, 1);
	CU_ASSERT_STRING_EQUAL(o.v[0].sel.text, "eu-west/10.1.1.11");
	CU_ASSERT_EQUAL(o.v[0].value, 9);

	/* Nothing matches: refused, list unchanged. */
	ov = ov_make(AG_OVR_WEIGHT, "10.9.9.9", 1);
	CU_ASSERT_EQUAL(ag_overrides__set(&o, &ov, plan), -ENOENT);
	ov = ov_make(AG_OVR_DIAL, "nowhere", 1);
	CU_ASSERT_EQUAL(ag_overrides__set(&o, &ov, plan), -ENOENT);
	/* Kind and selector must agree. */
	ov = ov_make(AG_OVR_DIAL, "eu-west", 1);
	ov.kind = AG_OVR_WEIGHT;
	CU_ASSERT_EQUAL(ag_overrides__set(&o, &ov, plan), -EINVAL);
	CU_ASSERT_EQUAL(o.n, 1);

	/* Kinds do not replace each other. */
	must_set(&o, AG_OVR_DRAIN, "10.1.1.11", 1);
	must_set(&o, AG_OVR_DIAL, "web/eu-west", 40);
	must_set(&o, AG_OVR_DRILL, "us-east", 1);
	CU_ASSERT_EQUAL(o.n, 4);
	ag_overrides__apply(&o, plan, &a.vs);
	CU_ASSERT_EQUAL(a.vs.weight[api], 9);
	CU_ASSERT_TRUE(a.vs.drained[api]);
	CU_ASSERT_TRUE(a.vs.drained[web80]);
	CU_ASSERT_FALSE(a.vs.drained[other]);
	CU_ASSERT_EQUAL(a.vs.dial[group(0, "eu-west")], 40);
	CU_ASSERT_EQUAL(a.vs.dial[group(1, "eu-west")], 40);
	CU_ASSERT_EQUAL(a.vs.dial[group(2, "eu-west")], -1);
	CU_ASSERT_TRUE(a.vs.drilled[group(0, "us-east")]);
	CU_ASSERT_TRUE(a.vs.drilled[group(1, "us-east")]);
	CU_ASSERT_FALSE(a.vs.drilled[group(0, "eu-west")]);

	ag_overrides__free(&o);
	vs_free(&a);
}

static void test_drain_undrain_tidy(void)
{
	struct ag_overrides o;
	struct vs_arrays a;
	int api = backend(2, "10.1.1.11"), web = backend(0, "10.1.1.11");

	ag_overrides__init(&o);
	vs_init(&a);
	/* drain then undrain of the same endpoint: nothing left. */
	must_set(&o, AG_OVR_DRAIN, "10.1.1.11", 1);
	must_set(&o, AG_OVR_DRAIN, "10.1.1.11", 0);
	CU_ASSERT_EQUAL(o.n, 0);
	/* drain a narrower selector, undrain a broader one: nothing left. */
	must_set(&o, AG_OVR_DRAIN, "api/eu-west/10.1.1.11", 1);
	must_set(&o, AG_OVR_DRAIN, "10.1.1.11", 0);
	CU_ASSERT_EQUAL(o.n, 0);
	/* undrain of what nothing drained: a no-op, not kept. */
	must_set(&o, AG_OVR_DRAIN, "10.1.1.12", 0);
	CU_ASSERT_EQUAL(o.n, 0);
	/* drain broad, undrain part: both kept, later wins where they overlap. */
	must_set(&o, AG_OVR_DRAIN, "10.1.1.11", 1);
	must_set(&o, AG_OVR_DRAIN, "web/10.1.1.11", 0);
	CU_ASSERT_EQUAL(o.n, 2);
	ag_overrides__apply(&o, plan, &a.vs);
	CU_ASSERT_TRUE(a.vs.drained[api]);
	CU_ASSERT_FALSE(a.vs.drained[web]);
	/* Same for drills. */
	must_set(&o, AG_OVR_DRILL, "eu-west", 1);
	must_set(&o, AG_OVR_DRILL, "eu-west", 0);
	CU_ASSERT_EQUAL(o.n, 2);
	/* Equal values stay pinned: a weight equal to the config's is still an override. */
	must_set(&o, AG_OVR_WEIGHT, "10.1.1.12", 100);
	CU_ASSERT_EQUAL(o.n, 3);
	ag_overrides__free(&o);
	vs_free(&a);
}

static void test_clear(void)
{
	struct ag_overrides o;
	struct ag_ovr_sel sel;
	const char *problem;

	ag_overrides__init(&o);
	must_set(&o, AG_OVR_WEIGHT, "web/eu-west/10.1.1.11", 3);
	must_set(&o, AG_OVR_DRAIN, "10.1.1.12", 1);
	must_set(&o, AG_OVR_DIAL, "us-east", 50);
	must_set(&o, AG_OVR_WEIGHT, "10.2.1.11", 4);
	CU_ASSERT_EQUAL_FATAL(o.n, 4);

	/* An endpoint selector takes the endpoint overrides that overlap it. */
	ag_ovr_sel__parse(&sel, "10.1.1.11", true, &problem);
	CU_ASSERT_EQUAL(ag_overrides__clear(&o, &sel, plan), 1);
	CU_ASSERT_EQUAL(o.n, 3);
	/* A group selector takes its dial and the endpoint overrides inside it. */
	ag_ovr_sel__parse(&sel, "us-east", false, &problem);
	CU_ASSERT_EQUAL(ag_overrides__clear(&o, &sel, plan), 2);
	CU_ASSERT_EQUAL_FATAL(o.n, 1);
	CU_ASSERT_STRING_EQUAL(o.v[0].sel.text, "10.1.1.12");
	/* Nothing there: nothing removed. */
	ag_ovr_sel__parse(&sel, "api/eu-west", false, &problem);
	CU_ASSERT_EQUAL(ag_overrides__clear(&o, &sel, plan), 0);
	/* All. */
	CU_ASSERT_EQUAL(ag_overrides__clear(&o, NULL, plan), 1);
	CU_ASSERT_EQUAL(o.n, 0);

	/* An override a reload left matching nothing: kept by tidy, cleared by its text. */
	{
		struct ag_override stale = ov_make(AG_OVR_WEIGHT, "10.7.7.7", 1);

		must_set(&o, AG_OVR_WEIGHT, "10.1.1.13", 1);
		o.v[o.n++] = stale; /* as loaded from a state file */
		must_set(&o, AG_OVR_WEIGHT, "10.1.1.12", 2);
		CU_ASSERT_EQUAL(o.n, 3);
		CU_ASSERT_EQUAL(ag_overrides__matches(&o, 1, plan), 0);
		ag_ovr_sel__parse(&sel, "10.7.7.7", true, &problem);
		CU_ASSERT_EQUAL(ag_overrides__clear(&o, &sel, plan), 1);
		CU_ASSERT_EQUAL(o.n, 2);
	}
	ag_overrides__free(&o);
}

static void test_compile_with_overrides(void)
{
	struct ag_overrides o;
	struct vs_arrays a;
	double share[8], gshare[5];
	int b11 = backend(0, "10.1.1.11"), b12 = backend(0, "10.1.1.12");
	int us = backend(0, "10.2.1.11");

	ag_overrides__init(&o);
	vs_init(&a);
	ag_overrides__apply(&o, plan, &a.vs);
	CU_ASSERT_EQUAL(ag_plan__compile(plan, 0, &a.view, share, gshare), 0);
	CU_ASSERT_DOUBLE_EQUAL(share[b11], 0.5, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(share[b12], 0.5, 1e-9);

	/* Drained: no new flows; its group-mate takes them. */
	must_set(&o, AG_OVR_DRAIN, "10.1.1.11", 1);
	ag_overrides__apply(&o, plan, &a.vs);
	CU_ASSERT_EQUAL(ag_plan__compile(plan, 0, &a.view, share, gshare), 0);
	CU_ASSERT_DOUBLE_EQUAL(share[b11], 0.0, 1e-9);
	CU_ASSERT(share[b12] > 0.0);
	/* Region drill: eu-west takes nothing, us-east everything. */
	must_set(&o, AG_OVR_DRILL, "web/eu-west", 1);
	ag_overrides__apply(&o, plan, &a.vs);
	CU_ASSERT_EQUAL(ag_plan__compile(plan, 0, &a.view, share, gshare), 0);
	CU_ASSERT_DOUBLE_EQUAL(share[b12], 0.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(share[us], 1.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(gshare[group(0, "eu-west")], 0.0, 1e-9);
	/* Restored. */
	must_set(&o, AG_OVR_DRILL, "web/eu-west", 0);
	must_set(&o, AG_OVR_DRAIN, "10.1.1.11", 0);
	CU_ASSERT_EQUAL(o.n, 0);
	ag_overrides__apply(&o, plan, &a.vs);
	CU_ASSERT_EQUAL(ag_plan__compile(plan, 0, &a.view, share, gshare), 0);
	CU_ASSERT_DOUBLE_EQUAL(share[b11], 0.5, 1e-9);
	ag_overrides__free(&o);
	vs_free(&a);
}

static void fill_state(struct ag_ovr_state *s)
{
	ag_ovr_state__init(s);
	must_set(&s->cur, AG_OVR_WEIGHT, "web/eu-west/10.1.1.11", 0);
	must_set(&s->cur, AG_OVR_DRAIN, "10.1.1.12", 1);
	must_set(&s->cur, AG_OVR_DIAL, "api/eu-west", 25);
	must_set(&s->cur, AG_OVR_DRILL, "us-east", 1);
	must_set(&s->rollback, AG_OVR_DRAIN, "10.1.1.12", 1);
	s->pending = true;
	s->deadline_ms = 1700000123456ll;
	snprintf(s->change, sizeof(s->change), "set weight web/eu-west/10.1.1.11 0");
}

static void test_json_roundtrip(void)
{
	struct ag_ovr_state s, back;
	char msg[256];
	json_t *j;

	fill_state(&s);
	j = ag_ovr_state__to_json(&s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	ag_ovr_state__init(&back);
	CU_ASSERT_EQUAL(ag_ovr_state__from_json(&back, j, msg, sizeof(msg)), 0);
	CU_ASSERT_TRUE(ag_overrides__equal(&s.cur, &back.cur));
	CU_ASSERT_TRUE(ag_overrides__equal(&s.rollback, &back.rollback));
	CU_ASSERT_TRUE(back.pending);
	CU_ASSERT_EQUAL(back.deadline_ms, s.deadline_ms);
	CU_ASSERT_STRING_EQUAL(back.change, s.change);
	CU_ASSERT_STRING_EQUAL(back.cur.v[1].by, "uid 0");
	CU_ASSERT_EQUAL(back.cur.v[1].set_at, 1700000000);
	json_decref(j);
	ag_ovr_state__free(&back);
	ag_ovr_state__free(&s);
}

static void bad_json(const char *text, const char *want)
{
	struct ag_ovr_state s;
	json_error_t jerr;
	char msg[256] = "";
	json_t *j = json_loads(text, 0, &jerr);

	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	ag_ovr_state__init(&s);
	CU_ASSERT_EQUAL(ag_ovr_state__from_json(&s, j, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(msg, want);
	if (strcmp(msg, want))
		fprintf(stderr, "\n  got:  %s\n  want: %s\n", msg, want);
	CU_ASSERT_EQUAL(s.cur.n, 0);
	CU_ASSERT_FALSE(s.pending);
	json_decref(j);
	ag_ovr_state__free(&s);
}

static void test_json_refused(void)
{
	bad_json("[]", "not a JSON object");
	bad_json("{\"anygate_state\":2,\"overrides\":[]}",
		 "anygate_state: must be 1 (the state format this anygated reads)");
	bad_json("{\"anygate_state\":1}", "overrides: must be an array");
	bad_json("{\"anygate_state\":1,\"overrides\":[{\"kind\":\"weight\",\"selector\":"
		 "\"10.1.1.11\",\"value\":300}]}",
		 "overrides[0].value: must be 0-255 (got 300)");
	bad_json("{\"anygate_state\":1,\"overrides\":[{\"kind\":\"dial\",\"selector\":"
		 "\"eu-west\",\"value\":101}]}",
		 "overrides[0].value: must be 0-100 (got 101)");
	bad_json("{\"anygate_state\":1,\"overrides\":[{\"kind\":\"speed\",\"selector\":"
		 "\"10.1.1.11\",\"value\":1}]}",
		 "overrides[0].kind: must be weight, drain, dial or drill (got \"speed\")");
	bad_json("{\"anygate_state\":1,\"overrides\":[{\"kind\":\"drain\",\"selector\":"
		 "\"eu-west\",\"value\":true}]}",
		 "overrides[0].selector: want [ACCELERATOR/][REGION/]ADDRESS with an IPv4 address "
		 "(got \"eu-west\")");
	bad_json("{\"anygate_state\":1,\"overrides\":[{\"kind\":\"drain\",\"selector\":"
		 "\"10.1.1.11\",\"value\":1}]}",
		 "overrides[0].value: must be true or false");
	bad_json("{\"anygate_state\":1,\"overrides\":[{\"kind\":\"weight\",\"selector\":"
		 "\"10.1.1.11\",\"value\":\"1\"}]}",
		 "overrides[0].value: must be an integer");
	bad_json("{\"anygate_state\":1,\"overrides\":[{\"kind\":\"weight\"}]}",
		 "overrides[0]: want {\"kind\", \"selector\", \"value\"}");
	bad_json("{\"anygate_state\":1,\"overrides\":[],\"pending\":{\"change\":\"x\"}}",
		 "pending: want {\"deadline_ms\", \"change\", \"rollback\"}");
	bad_json("{\"anygate_state\":1,\"overrides\":[],\"pending\":{\"deadline_ms\":1,"
		 "\"change\":\"x\",\"rollback\":[{\"kind\":\"weight\",\"selector\":\"1.2.3.4\","
		 "\"value\":999}]}}",
		 "pending.rollback[0].value: must be 0-255 (got 999)");
}

static unsigned int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void test_file(void)
{
	struct ag_ovr_state s, back;
	char path[300], dir[256], msg[512];
	struct stat st;
	char *garbage;

	snprintf(dir, sizeof(dir), "%s/var/lib/anygate", tmpdir);
	snprintf(path, sizeof(path), "%s/state.json", dir);
	fill_state(&s);
	ag_ovr_state__init(&back);

	/* No file: ENOENT, nothing loaded. */
	CU_ASSERT_EQUAL(ag_ovr_state__load(&back, path, msg, sizeof(msg)), -ENOENT);

	/* Saved into a directory that did not exist; only the file is left there. */
	CU_ASSERT_EQUAL(ag_ovr_state__save(&s, path, msg, sizeof(msg)), 0);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0640);
	CU_ASSERT_EQUAL(dir_entries(dir), 1);
	CU_ASSERT_EQUAL(ag_ovr_state__load(&back, path, msg, sizeof(msg)), 0);
	CU_ASSERT_TRUE(ag_overrides__equal(&s.cur, &back.cur));
	CU_ASSERT_TRUE(back.pending);

	/* Overwritten whole by the next save. */
	ag_overrides__clear(&s.cur, NULL, plan);
	s.pending = false;
	CU_ASSERT_EQUAL(ag_ovr_state__save(&s, path, msg, sizeof(msg)), 0);
	CU_ASSERT_EQUAL(ag_ovr_state__load(&back, path, msg, sizeof(msg)), 0);
	CU_ASSERT_EQUAL(back.cur.n, 0);
	CU_ASSERT_FALSE(back.pending);
	CU_ASSERT_EQUAL(dir_entries(dir), 1);

	/* Garbage: -EINVAL naming the file and the line. */
	garbage = write_file("garbage.json", "{\n\"anygate_state\": 1,\n oops\n");
	CU_ASSERT_EQUAL(ag_ovr_state__load(&back, garbage, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, garbage));
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, ":3: not valid JSON"));
	free(garbage);
	garbage = write_file("valid-but-wrong.json", "{\"anygate_state\":1,\"overrides\":5}");
	CU_ASSERT_EQUAL(ag_ovr_state__load(&back, garbage, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "overrides: must be an array"));
	free(garbage);

	/* A directory that cannot be made: the error says which step. */
	snprintf(path, sizeof(path), "%s/t.conf/state.json", tmpdir);
	CU_ASSERT(ag_ovr_state__save(&s, path, msg, sizeof(msg)) < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "creating its directory"));

	ag_ovr_state__free(&back);
	ag_ovr_state__free(&s);
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"fixture plan", test_plan_shape},
	    {"selector syntax", test_selector_parse},
	    {"selector matching", test_selector_match},
	    {"values: the config's validators and words", test_values},
	    {"set and apply: later wins", test_set_apply_later_wins},
	    {"drain/undrain tidy", test_drain_undrain_tidy},
	    {"clear", test_clear},
	    {"compiled shares under overrides", test_compile_with_overrides},
	    {"state JSON round trip", test_json_roundtrip},
	    {"state JSON refused", test_json_refused},
	    {"state file", test_file},
	};
	CU_pSuite s;
	unsigned int i, failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("overrides", suite_init, suite_fini);
	for (i = 0; s && i < sizeof(tests) / sizeof(tests[0]); i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
