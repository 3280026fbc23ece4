/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The config key declarations (controlplane/config/keys.c) and what is built
 * from them: docs/config.md's key tables must be exactly what the declarations
 * print (scripts/gen-config-doc.sh rewrites them), the declarations must be
 * complete enough for the parser, and the restart-only keys a reload refuses
 * are the ones flagged there, with the daemon's words.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "cu_main.h"
#include "doc.h"
#include "keys.h"

static char tmpdir[] = "/tmp/ag-test-config-keys-XXXXXX";
static char oldcwd[PATH_MAX];

static int suite_init(void)
{
	if (!getcwd(oldcwd, sizeof(oldcwd)))
		return -1;
	if (!mkdtemp(tmpdir) || chdir(tmpdir) < 0)
		return -1;
	return 0;
}

static int suite_clean(void)
{
	unlink("t.conf");
	if (chdir(oldcwd) < 0)
		return -1;
	return rmdir(tmpdir);
}

/* ------------------------------------------------------------------------ */
/* docs/config.md                                                           */

static char *read_file(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "r"), *m;
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	m = open_memstream(&buf, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	return buf;
}

static char *doc_table(const struct ag_cfg_block *b)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(ag_cfg__doc_table(b, m), 0);
	fclose(m);
	return buf;
}

struct doc_check {
	const char *page;
	unsigned int tables;
	bool same;
};

/* The page's text between a block's markers is what the declarations print. */
static void check_table(const struct ag_cfg_block *b, void *arg)
{
	struct doc_check *dc = arg;
	char begin[64], end[64], *want;
	const char *p, *q;

	if (!b->id)
		return;
	dc->tables++;
	snprintf(begin, sizeof(begin), "<!-- keys:%s begin -->\n", b->id);
	snprintf(end, sizeof(end), "<!-- keys:%s end -->\n", b->id);
	p = strstr(dc->page, begin);
	q = p ? strstr(p, end) : NULL;
	if (!p || !q) {
		fprintf(stderr, "\n  docs/config.md has no %s...%s", begin, end);
		dc->same = false;
		return;
	}
	p += strlen(begin);
	want = doc_table(b);
	if ((size_t)(q - p) != strlen(want) || memcmp(p, want, q - p)) {
		fprintf(stderr, "\n  docs/config.md: the table of %s differs from keys.c:\n%s",
			b->id, want);
		dc->same = false;
	}
	free(want);
}

static void test_doc_tables(void)
{
	const char *dir = getenv("AG_SRCDIR");
	struct doc_check dc = {.same = true};
	char path[PATH_MAX];
	const char *p;
	unsigned int markers = 0;
	char *page;

	if (!dir) {
		fprintf(stderr, "\n  AG_SRCDIR is not set (meson test sets it)\n");
		CU_FAIL_FATAL("AG_SRCDIR unset");
	}
	snprintf(path, sizeof(path), "%s/docs/config.md", dir);
	page = read_file(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(page);
	dc.page = page;
	ag_cfg__walk(&ag_cfg_root, check_table, &dc);
	if (!dc.same)
		fprintf(stderr, "\n  run scripts/gen-config-doc.sh after building\n");
	CU_ASSERT(dc.same);
	/* and no marker of a block that is not declared: two for each table */
	for (p = page; (p = strstr(p, "<!-- keys:")); p++)
		markers++;
	CU_ASSERT_EQUAL(markers, 2 * dc.tables);
	CU_ASSERT_EQUAL(dc.tables, 11);
	free(page);
}

/* ------------------------------------------------------------------------ */
/* The declarations                                                         */

static unsigned int n_bad;

static void bad(const struct ag_cfg_block *b, const struct ag_cfg_key *k, const char *why)
{
	fprintf(stderr, "\n  %s.%s: %s", b->path, k ? k->name : "", why);
	n_bad++;
}

static unsigned int n_words(const char *const *w)
{
	unsigned int n = 0;

	while (w[n])
		n++;
	return n;
}

static void check_key(const struct ag_cfg_block *b, const struct ag_cfg_key *k)
{
	const struct ag_cfg_key *sel = b->selector ? ag_cfg__key(b, b->selector) : NULL;

	if (ag_cfg__key(b, k->name) != k)
		bad(b, k, "declared twice");
	if ((k->type == AG_CFG_ADDRS || k->type == AG_CFG_RANGES || k->type == AG_CFG_PREFIXES) &&
	    !k->parse)
		bad(b, k, "its type needs a parser of its own");
	if (k->type == AG_CFG_LIST && (!k->size || !k->offset2))
		bad(b, k, "a list without its array and count");
	if ((k->type == AG_CFG_GROUP || k->type == AG_CFG_LIST) && !k->sub)
		bad(b, k, "a group or list without the block of its members");
	if (k->type == AG_CFG_RANGES && !k->elem)
		bad(b, k, "an array of ranges without the range of an entry");
	if (k->type == AG_CFG_ENUM &&
	    (!k->words || k->def < 0 || k->def >= (long long)n_words(k->words)))
		bad(b, k, "an enum without words, or a default past them");
	if ((k->flags & AG_CFG_F_RESTART) && k->type == AG_CFG_LIST && !k->same)
		bad(b, k, "restart-only list without a comparison");
	if (k->only && (!sel || sel->type != AG_CFG_ENUM))
		bad(b, k, "`only` in a block without an enum selector");
	if (!(k->flags & AG_CFG_F_REQUIRED) && k->type == AG_CFG_INT && !k->doc.def &&
	    k->min < k->max && (k->def < k->min || k->def > k->max))
		bad(b, k, "a default outside its range");
}

static void check_block(const struct ag_cfg_block *b, void *arg)
{
	unsigned int *ids = arg, i;

	if (b->id)
		(*ids)++;
	/* the parser marks invalid keys in a 64-bit mask */
	if (b->n_keys > 64)
		bad(b, NULL, "more than 64 keys");
	for (i = 0; i < b->n_keys; i++)
		check_key(b, &b->keys[i]);
}

static void test_declarations(void)
{
	unsigned int ids = 0;

	n_bad = 0;
	ag_cfg__walk(&ag_cfg_root, check_block, &ids);
	CU_ASSERT_EQUAL(n_bad, 0);
	CU_ASSERT_EQUAL(ids, 11);
	CU_ASSERT_PTR_NOT_NULL(ag_cfg__key(&ag_cfg_root, "edge"));
	CU_ASSERT_PTR_NULL(ag_cfg__key(&ag_cfg_root, "edges"));
}

/* ------------------------------------------------------------------------ */
/* Restart-only keys                                                        */

/* The edge group at line 1; its interfaces line, then `extra` on line 4. */
static struct ag_config *load(const char *ifaces, const char *extra)
{
	struct ag_errors errs;
	struct ag_config *cfg;
	FILE *f = fopen("t.conf", "w");
	unsigned int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fprintf(f,
		"edge = {\n"
		"  name = \"e\"; nat_addresses = [ \"10.255.0.1\" ];\n"
		"  interfaces = ( %s );\n"
		"  %s\n"
		"};\n"
		"accelerators = ( { name = \"web\"; addresses = [ \"198.51.100.10\" ];\n"
		"  listeners = ( { protocol = \"tcp\"; ports = [ 80 ];\n"
		"    endpoint_groups = ( { region = \"eu\";\n"
		"      endpoints = ( { address = \"10.1.1.11\"; } ); } ); } ); } );\n",
		ifaces, extra);
	CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
	ag_errors__init(&errs);
	cfg = ag_config__load("t.conf", &errs);
	for (i = 0; i < errs.count; i++)
		fprintf(stderr, "\n  %s", errs.msgs[i]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ag_errors__free(&errs);
	return cfg;
}

#define IFACES "{ name = \"e0\"; }, { name = \"e1\"; }"

/* A reload from (IFACES, "") to (ifaces, extra): refused with exactly `expect`. */
static void check_reload_at(int line, const char *ifaces, const char *extra,
			    const char *const *expect)
{
	struct ag_config *old = load(IFACES, ""), *new = load(ifaces, extra);
	struct ag_errors errs;
	unsigned int i, n = 0;
	bool same = true;
	int ret;

	while (expect[n])
		n++;
	ag_errors__init(&errs);
	ag_errors__add(&errs, "earlier.conf", 1, "x", "kept");
	ret = ag_config__check_restart_only(old, new, &errs);
	CU_ASSERT_EQUAL(ret, n ? -EINVAL : 0);
	if (errs.count != n + 1 || strcmp(errs.msgs[0], "earlier.conf:1: x: kept"))
		same = false;
	for (i = 0; same && i < n; i++)
		if (strcmp(errs.msgs[i + 1], expect[i]))
			same = false;
	if (!same) {
		fprintf(stderr, "\n  test at test_config_keys.c:%d", line);
		for (i = 0; i < n; i++)
			fprintf(stderr, "\n    want: %s", expect[i]);
		for (i = 1; i < errs.count; i++)
			fprintf(stderr, "\n    got:  %s", errs.msgs[i]);
	}
	CU_ASSERT(same);
	ag_errors__free(&errs);
	ag_config__free(old);
	ag_config__free(new);
}

#define RELOAD(ifaces, extra, ...)                                                                 \
	check_reload_at(__LINE__, ifaces, extra, (const char *const[]){__VA_ARGS__, NULL})
#define RELOAD_OK(ifaces, extra)                                                                   \
	check_reload_at(__LINE__, ifaces, extra, (const char *const[]){NULL})
#define RESTART(key) "t.conf:1: " key ": changes only with a restart (running: unchanged)"

static void test_restart_only(void)
{
	RELOAD_OK(IFACES, "");
	RELOAD(IFACES, "ring_size = 13;", RESTART("edge.ring_size"));
	RELOAD(IFACES, "max_flows = 1024;", RESTART("edge.max_flows"));
	RELOAD(IFACES, "bpffs_dir = \"/run/x\";", RESTART("edge.bpffs_dir"));
	RELOAD(IFACES, "fastpath = \"dpdk\"; dpdk = { ports = [ \"p0\" ]; };",
	       RESTART("edge.fastpath"));
	RELOAD(IFACES, "control_socket = \"/run/x.sock\";", RESTART("edge.control_socket"));
	RELOAD(IFACES, "metrics = \"\";", RESTART("edge.metrics"));
	RELOAD(IFACES, "dpdk = { shm_name = \"other\"; };", RESTART("edge.dpdk.shm_name"));
	/* the group a name resolves to: gid 0 is "root" on every Linux host */
	RELOAD(IFACES, "admin_group = \"root\";", RESTART("edge.admin_group"));
	RELOAD(IFACES, "control_group = \"root\";", RESTART("edge.control_group"));
	RELOAD("{ name = \"e0\"; }", "", RESTART("edge.interfaces"));
	RELOAD("{ name = \"e1\"; }, { name = \"e0\"; }", "", RESTART("edge.interfaces"));
	/* all of them, in the order of the declarations */
	RELOAD("{ name = \"e9\"; }",
	       "ring_size = 13; max_flows = 1024; metrics = \"\"; fastpath = \"dpdk\";"
	       " dpdk = { ports = [ \"p0\" ]; shm_name = \"other\"; }; admin_group = \"root\";",
	       RESTART("edge.fastpath"), RESTART("edge.interfaces"), RESTART("edge.ring_size"),
	       RESTART("edge.max_flows"), RESTART("edge.admin_group"), RESTART("edge.metrics"),
	       RESTART("edge.dpdk.shm_name"));
	/* an interface's role is written into ag_ifaces when XDP attaches */
	RELOAD("{ name = \"e0\"; role = \"client\"; }, { name = \"e1\"; role = \"backend\"; }", "",
	       RESTART("edge.interfaces"));
	/* what a reload may change */
	RELOAD_OK(IFACES,
		  "hash_seed = 7; tcp_idle_s = 60; udp_idle_s = 5; nat_ports = \"2000-3000\";"
		  " state_file = \"/run/s.json\"; dpdk = { eal_args = [ \"--no-huge\" ]; };");
	/* the flow-state keys are published with the settings: a reload applies them */
	RELOAD_OK(IFACES, "tcp_syn_idle_s = 3; tcp_closing_s = 20; syn_auth_rate = 0;"
			  " syn_auth_ttl_s = 60; udp_flow_rate = 100;");
	RELOAD_OK(IFACES, "ring_size = 65537; metrics = \"127.0.0.1:9464\"; dpdk = { shm_name = "
			  "\"anygate\"; };");
}

int main(void)
{
	static const struct ag_cu_test tests[] = {
	    {"docs/config.md key tables", test_doc_tables},
	    {"declarations complete", test_declarations},
	    {"restart-only keys", test_restart_only},
	};

	return AG_CU_MAIN("config-keys", suite_init, suite_clean, tests);
}
