/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Config parser and validator: every bad input is refused with an exact
 * "file:line: key: problem" message, all problems of a file are collected, and
 * good files (including config/lab.conf and config/example.conf) parse to the
 * values and defaults documented in docs/config.md.
 *
 * Each fixture is written into a private temporary directory (the tests chdir
 * there, so messages name "t.conf"). Line numbers in the expectations are
 * counted in the fixture text: the building blocks below say which lines they
 * occupy.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "abi.h"
#include "config.h"

static char tmpdir[] = "/tmp/ag-test-config-XXXXXX";
static char oldcwd[PATH_MAX];

/* ------------------------------------------------------------------------ */
/* Fixture building blocks (line numbers when used in this order)           */

/* lines 1-5 */
#define EDGE_OK                                                                                    \
	"edge = {\n"                                                                               \
	"  name = \"e\";\n"                                                                        \
	"  interfaces = ( { name = \"e0\"; } );\n"                                                 \
	"  nat_addresses = [ \"10.255.0.1\" ];\n"                                                  \
	"};\n"

/* lines 1-6, with line 5 = x (one line, ending in \n) */
#define EDGE_WITH(x)                                                                               \
	"edge = {\n"                                                                               \
	"  name = \"e\";\n"                                                                        \
	"  interfaces = ( { name = \"e0\"; } );\n"                                                 \
	"  nat_addresses = [ \"10.255.0.1\" ];\n" x "};\n"

/* lines 1-5, with line 3 = interfaces line x */
#define EDGE_IFACES(x)                                                                             \
	"edge = {\n"                                                                               \
	"  name = \"e\";\n" x "  nat_addresses = [ \"10.255.0.1\" ];\n"                            \
	"};\n"

/* lines 1-5, with line 4 = nat_addresses line x */
#define EDGE_NAT(x)                                                                                \
	"edge = {\n"                                                                               \
	"  name = \"e\";\n"                                                                        \
	"  interfaces = ( { name = \"e0\"; } );\n" x "};\n"

/* lines 6-9 after EDGE_OK: the listener's body starts at line 10 */
#define ACCEL_HEAD                                                                                 \
	"accelerators = ( {\n"                                                                     \
	"  name = \"web\";\n"                                                                      \
	"  addresses = [ \"198.51.100.10\" ];\n"                                                   \
	"  listeners = ( {\n"

/* lines 10-12: the group's body starts at line 13 */
#define LISTENER_HEAD                                                                              \
	"    protocol = \"tcp\";\n"                                                                \
	"    ports = [ 80 ];\n"                                                                    \
	"    endpoint_groups = ( {\n"

#define REGION_EU     "      region = \"eu\";\n"
#define ENDPOINT_OK   "      endpoints = ( { address = \"10.1.1.11\"; } );\n"
/* closes listener and accelerator lists (2 lines) */
#define LISTENER_TAIL "  } );\n} );\n"
/* closes group, listener and accelerator lists (3 lines) */
#define GROUP_TAIL    "    } );\n" LISTENER_TAIL

/* lines 6-17 after EDGE_OK (a whole valid accelerator) */
#define ACCEL_OK ACCEL_HEAD LISTENER_HEAD REGION_EU ENDPOINT_OK GROUP_TAIL

/* A group body at line 13 (region), the line under test at 14, endpoints at 15. */
#define GROUP_WITH(x) EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU x ENDPOINT_OK GROUP_TAIL

#define L0  "accelerators[0].listeners[0]"
#define G0  L0 ".endpoint_groups[0]"
#define HC0 G0 ".health_check"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static int suite_init(void)
{
	if (!getcwd(oldcwd, sizeof(oldcwd)))
		return -1;
	if (!mkdtemp(tmpdir) || chdir(tmpdir) < 0)
		return -1;
	return mkdir("sub", 0700);
}

static int suite_clean(void)
{
	/* the fixtures this suite writes, then the directory itself */
	static const char *const files[] = {"t.conf",
					    "sub/main.conf",
					    "sub/part.conf",
					    "sub/top.conf",
					    "sub/top2.conf",
					    "sub/mid.conf",
					    NULL};
	const char *const *f;

	for (f = files; *f; f++)
		unlink(*f);
	rmdir("sub");
	if (chdir(oldcwd) < 0)
		return -1;
	return rmdir(tmpdir);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fputs(text, f) >= 0, 1);
	CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
}

static void dump_errors(const char *what, const struct ag_errors *errs)
{
	unsigned int i;

	fprintf(stderr, "\n  %s: %u message(s)\n", what, errs->count);
	for (i = 0; i < errs->count; i++)
		fprintf(stderr, "    got: %s\n", errs->msgs[i]);
}

/* Load `text` from t.conf: it must fail with EINVAL and exactly these messages. */
static void check_bad_at(int line, const char *text, const char *const *expect)
{
	struct ag_errors errs;
	struct ag_config *cfg;
	unsigned int i, n = 0;
	bool same = true;

	while (expect[n])
		n++;
	write_file("t.conf", text);
	ag_errors__init(&errs);
	errno = 0;
	cfg = ag_config__load("t.conf", &errs);
	CU_ASSERT_PTR_NULL(cfg);
	CU_ASSERT_EQUAL(errno, EINVAL);
	if (errs.count != n)
		same = false;
	for (i = 0; same && i < n; i++)
		if (strcmp(errs.msgs[i], expect[i]))
			same = false;
	if (!same) {
		fprintf(stderr, "\n  test at test_config.c:%d", line);
		for (i = 0; i < n; i++)
			fprintf(stderr, "\n    want: %s", expect[i]);
		dump_errors("mismatch", &errs);
	}
	CU_ASSERT(same);
	ag_config__free(cfg);
	ag_errors__free(&errs);
}

#define BAD(text, ...) check_bad_at(__LINE__, text, (const char *const[]){__VA_ARGS__, NULL})

/* Load a good file; the caller frees. */
static struct ag_config *load_good(const char *path)
{
	struct ag_errors errs;
	struct ag_config *cfg;

	ag_errors__init(&errs);
	cfg = ag_config__load(path, &errs);
	if (!cfg || errs.count)
		dump_errors(path, &errs);
	CU_ASSERT_PTR_NOT_NULL(cfg);
	CU_ASSERT_EQUAL(errs.count, 0);
	ag_errors__free(&errs);
	return cfg;
}

static struct ag_config *load_good_text(const char *text)
{
	write_file("t.conf", text);
	return load_good("t.conf");
}

static uint32_t ip(const char *s)
{
	struct in_addr a;

	CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

/* A text built with printf, for the fixtures generated in loops. */
struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_add(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	CU_ASSERT_FATAL(n >= 0);
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		CU_ASSERT_PTR_NOT_NULL_FATAL(b->p);
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += n;
}

/* Lines in text before position p, plus one: the line p is on. */
static int line_of(const char *text, const char *p)
{
	int line = 1;

	for (; text < p; text++)
		line += *text == '\n';
	return line;
}

/* ------------------------------------------------------------------------ */
/* Syntax and structure                                                     */

static void test_syntax_error(void)
{
	BAD("edge = {\n  name = ;\n};\n", "t.conf:2: syntax error: syntax error");
}

static void test_syntax_mixed_array(void)
{
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"tcp\";\n"
			       "    ports = [ 80, \"8000-8009\" ];\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:11: syntax error: mismatched element type in array (an array [ ] holds "
	    "values of one type: use a list ( ) to mix them)");
}

static void test_syntax_duplicate(void)
{
	BAD("edge = {\n  name = \"a\";\n  name = \"b\";\n};\n",
	    "t.conf:3: syntax error: duplicate setting name");
}

static void test_int_truncation(void)
{
	/* libconfig 1.5 would read these as 0 and 0xffffffff: refused instead */
	BAD(EDGE_WITH("  hash_seed = 4294967296;\n") ACCEL_OK,
	    "t.conf:5: syntax error: integer 4294967296 does not fit in 32 bits "
	    "(write 4294967296L for a 64-bit integer)");
	BAD(EDGE_WITH("  hash_seed = 0x1ffffffff;\n") ACCEL_OK,
	    "t.conf:5: syntax error: integer 0x1ffffffff does not fit in 32 bits "
	    "(write 0x1ffffffffL for a 64-bit integer)");
	BAD(EDGE_WITH("  max_flows = 99999999999999999999L;\n") ACCEL_OK,
	    "t.conf:5: syntax error: integer 99999999999999999999L does not fit in 64 bits");
	/* numbers inside strings and comments are not literals */
	ag_config__free(load_good_text(EDGE_WITH("  # 99999999999 \"x\"\n") ACCEL_OK));
}

static void test_unknown_keys(void)
{
	BAD(EDGE_OK ACCEL_OK "foo = 1;\n", "t.conf:18: foo: unknown key");
	BAD(EDGE_WITH("  foo = 1;\n") ACCEL_OK, "t.conf:5: edge.foo: unknown key");
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU
	    "      endpoints = ( { address = \"10.1.1.11\"; wieght = 1; } );\n" GROUP_TAIL,
	    "t.conf:14: " G0 ".endpoints[0].wieght: unknown key");
}

static void test_missing_keys(void)
{
	BAD("edge = {\n"
	    "  interfaces = ( { name = \"e0\"; } );\n"
	    "  nat_addresses = [ \"10.255.0.1\" ];\n"
	    "};\n" ACCEL_OK,
	    "t.conf:1: edge.name: is required");
	BAD(EDGE_OK, "t.conf: accelerators: is required");
	BAD(ACCEL_OK, "t.conf: edge: is required");
	BAD("edge = {\n  name = \"e\";\n};\n" ACCEL_OK, "t.conf:1: edge.interfaces: is required",
	    "t.conf:1: edge.nat_addresses: is required");
	/* listener at line 9 without protocol; group at line 12 without endpoints */
	BAD(EDGE_OK ACCEL_HEAD "    ports = [ 80 ];\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:9: " L0 ".protocol: is required");
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU GROUP_TAIL,
	    "t.conf:12: " G0 ".endpoints: is required");
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD
	    "      endpoints = ( { address = \"10.1.1.11\"; } );\n" GROUP_TAIL,
	    "t.conf:12: " G0 ".region: is required");
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU
	    "      endpoints = ( { weight = 1; } );\n" GROUP_TAIL,
	    "t.conf:14: " G0 ".endpoints[0].address: is required");
	BAD(EDGE_OK "accelerators = ( {\n"
		    "  name = \"web\";\n"
		    "  listeners = ( {\n" LISTENER_HEAD REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:6: accelerators[0].addresses: is required");
}

static void test_wrong_types(void)
{
	BAD("edge = ( );\n" ACCEL_OK, "t.conf:1: edge: must be a group { ... } (got a list)");
	BAD(EDGE_OK "accelerators = { name = \"web\"; };\n",
	    "t.conf:6: accelerators: must be a list ( { ... }, ... ) (got a group)");
	BAD(GROUP_WITH("      traffic_dial = \"full\";\n"),
	    "t.conf:14: " G0 ".traffic_dial: must be an integer (got a string)");
	BAD(EDGE_WITH("  ring_size = 65537.0;\n") ACCEL_OK,
	    "t.conf:5: edge.ring_size: must be an integer (got a float)");
	BAD(EDGE_WITH("  bpffs_dir = 1;\n") ACCEL_OK,
	    "t.conf:5: edge.bpffs_dir: must be a string (got an integer)");
	BAD(EDGE_NAT("  nat_addresses = \"10.255.0.1\";\n") ACCEL_OK,
	    "t.conf:4: edge.nat_addresses: must be an array [ ... ] (got a string)");
}

/* ------------------------------------------------------------------------ */
/* edge                                                                     */

static void test_edge_numbers(void)
{
	BAD(EDGE_WITH("  ring_size = 65536;\n") ACCEL_OK,
	    "t.conf:5: edge.ring_size: must be a prime number (got 65536)");
	BAD(EDGE_WITH("  ring_size = 7;\n") ACCEL_OK,
	    "t.conf:5: edge.ring_size: must be 13-262139 (got 7)");
	BAD(EDGE_WITH("  tcp_idle_s = 0;\n") ACCEL_OK,
	    "t.conf:5: edge.tcp_idle_s: must be 1-86400 (got 0)");
	BAD(EDGE_WITH("  udp_idle_s = 86401;\n") ACCEL_OK,
	    "t.conf:5: edge.udp_idle_s: must be 1-86400 (got 86401)");
	BAD(EDGE_WITH("  max_flows = 100000000;\n") ACCEL_OK,
	    "t.conf:5: edge.max_flows: must be 1024-67108864 (got 100000000)");
	BAD(EDGE_WITH("  hash_seed = 4294967296L;\n") ACCEL_OK,
	    "t.conf:5: edge.hash_seed: must be 0-4294967295 (got 4294967296)");
	BAD(EDGE_WITH("  hash_seed = -1;\n") ACCEL_OK,
	    "t.conf:5: edge.hash_seed: must be 0-4294967295 (got -1)");
}

/* The flow-state keys: short TCP timeouts bounded by tcp_idle_s, new-flow rates. */
static void test_edge_flow_state(void)
{
	BAD(EDGE_WITH("  tcp_syn_idle_s = 20; tcp_idle_s = 10;\n") ACCEL_OK,
	    "t.conf:5: edge.tcp_syn_idle_s: must be 1-10, at most tcp_idle_s (got 20)");
	BAD(EDGE_WITH("  tcp_closing_s = 341;\n") ACCEL_OK,
	    "t.conf:5: edge.tcp_closing_s: must be 1-340, at most tcp_idle_s (got 341)");
	BAD(EDGE_WITH("  tcp_syn_idle_s = 0; tcp_closing_s = 86401;\n") ACCEL_OK,
	    "t.conf:5: edge.tcp_syn_idle_s: must be 1-86400 (got 0)",
	    "t.conf:5: edge.tcp_closing_s: must be 1-86400 (got 86401)");
	/* against an invalid tcp_idle_s only that one is refused */
	BAD(EDGE_WITH("  tcp_idle_s = 0; tcp_syn_idle_s = 400;\n") ACCEL_OK,
	    "t.conf:5: edge.tcp_idle_s: must be 1-86400 (got 0)");
	BAD(EDGE_WITH("  syn_auth_rate = -1; syn_auth_ttl_s = 0; udp_flow_rate = 10000001;\n")
		ACCEL_OK,
	    "t.conf:5: edge.syn_auth_rate: must be 0-10000000 (got -1)",
	    "t.conf:5: edge.syn_auth_ttl_s: must be 1-86400 (got 0)",
	    "t.conf:5: edge.udp_flow_rate: must be 0-10000000 (got 10000001)");
	BAD(EDGE_WITH("  udp_flow_rate = \"auto\";\n") ACCEL_OK,
	    "t.conf:5: edge.udp_flow_rate: must be an integer (got a string)");
}

/* Defaults that follow other keys (edge.c: derived_defaults). */
static void test_edge_flow_state_defaults(void)
{
	struct ag_config *cfg;

	/* a short tcp_idle_s bounds the defaults of the shorter timeouts */
	cfg = load_good_text(EDGE_WITH("  tcp_idle_s = 3;\n") ACCEL_OK);
	if (cfg) {
		CU_ASSERT_EQUAL(cfg->edge.tcp_syn_idle_s, 3);
		CU_ASSERT_EQUAL(cfg->edge.tcp_closing_s, 3);
	}
	ag_config__free(cfg);
	cfg = load_good_text(EDGE_WITH("  tcp_idle_s = 7;\n") ACCEL_OK);
	if (cfg) {
		CU_ASSERT_EQUAL(cfg->edge.tcp_syn_idle_s, AG_TCP_SYN_IDLE_DEFAULT);
		CU_ASSERT_EQUAL(cfg->edge.tcp_closing_s, 7);
	}
	ag_config__free(cfg);
	/* UDP at the default rate fills at most half the table: 65536 / (2 x 20) */
	cfg = load_good_text(EDGE_WITH("  max_flows = 65536; udp_idle_s = 20;\n") ACCEL_OK);
	if (cfg)
		CU_ASSERT_EQUAL(cfg->edge.udp_flow_rate, 1638);
	ag_config__free(cfg);
	/* never 0 (which would mean no limit) */
	cfg = load_good_text(EDGE_WITH("  max_flows = 1024; udp_idle_s = 86400;\n") ACCEL_OK);
	if (cfg)
		CU_ASSERT_EQUAL(cfg->edge.udp_flow_rate, 1);
	ag_config__free(cfg);
	/* written, they are taken as written: 0 = no limit, never challenge */
	cfg = load_good_text(EDGE_WITH("  udp_flow_rate = 0; syn_auth_rate = 0; tcp_idle_s = 3;"
				       " tcp_syn_idle_s = 2; tcp_closing_s = 3;\n") ACCEL_OK);
	if (cfg) {
		CU_ASSERT_EQUAL(cfg->edge.udp_flow_rate, 0);
		CU_ASSERT_EQUAL(cfg->edge.syn_auth_rate, 0);
		CU_ASSERT_EQUAL(cfg->edge.tcp_syn_idle_s, 2);
		CU_ASSERT_EQUAL(cfg->edge.tcp_closing_s, 3);
	}
	ag_config__free(cfg);
}

static void test_edge_fastpath(void)
{
	BAD(EDGE_WITH("  fastpath = \"ebpf\";\n") ACCEL_OK,
	    "t.conf:5: edge.fastpath: must be \"xdp\" or \"dpdk\" (got \"ebpf\")");
	BAD(EDGE_WITH("  fastpath = \"dpdk\";\n") ACCEL_OK,
	    "t.conf:1: edge.dpdk: is required when fastpath = \"dpdk\"");
	BAD(EDGE_WITH("  fastpath = \"dpdk\"; dpdk = { eal_args = [ \"--no-huge\" ]; };\n")
		ACCEL_OK,
	    "t.conf:5: edge.dpdk.ports: is required when fastpath = \"dpdk\"");
	BAD(EDGE_WITH("  fastpath = \"dpdk\"; dpdk = { ports = [ ]; };\n") ACCEL_OK,
	    "t.conf:5: edge.dpdk.ports: must list at least one port when fastpath = \"dpdk\"");
	BAD(EDGE_WITH("  dpdk = { ports = [ \"\" ]; shm_name = \"a/b\"; };\n") ACCEL_OK,
	    "t.conf:5: edge.dpdk.ports[0]: must not be empty",
	    "t.conf:5: edge.dpdk.shm_name: must be 1-63 characters of A-Z a-z 0-9 . _ - "
	    "(got \"a/b\")");
}

/* anygate-dp's ports: addresses, routes, static neighbours, exception path. */
#define DPDK_WITH(x)                                                                               \
	EDGE_WITH("  dpdk = { ports = [ \"p0\", \"p1\" ];\n"                                       \
		  "    port_addresses = [ \"10.0.0.1/24\", \"10.1.0.1/16\" ];\n" x "  };\n")

static void test_edge_dpdk_net(void)
{
	const struct ag_cfg_dpdk *d;
	struct ag_config *cfg;

	BAD(EDGE_WITH(
		"  dpdk = { ports = [ \"p0\", \"p1\" ]; port_addresses = [ \"10.0.0.1/24\" ]; };\n")
		ACCEL_OK,
	    "t.conf:5: edge.dpdk.port_addresses: must have one entry per port, in the order of "
	    "edge.dpdk.ports (2 ports, got 1)");
	BAD(EDGE_WITH("  dpdk = { ports = [ \"p0\" ]; port_addresses = [ \"10.0.0.1\" ]; };\n")
		ACCEL_OK,
	    "t.conf:5: edge.dpdk.port_addresses[0]: must be an IPv4 address with its prefix "
	    "length, \"a.b.c.d/len\" with len 1-32 (got \"10.0.0.1\")");
	BAD(EDGE_WITH("  dpdk = { ports = [ \"p0\", \"p1\" ];\n"
		      "    port_addresses = [ \"10.0.0.1/24\", \"10.0.0.1/33\" ]; };\n") ACCEL_OK,
	    "t.conf:6: edge.dpdk.port_addresses[1]: must be an IPv4 address with its prefix "
	    "length, \"a.b.c.d/len\" with len 1-32 (got \"10.0.0.1/33\")");
	BAD(DPDK_WITH("    routes = ( { to = \"10.9.0.0/16\"; via = \"10.2.0.1\"; } );\n") ACCEL_OK,
	    "t.conf:7: edge.dpdk.routes[0].via: is not inside the subnet of any "
	    "edge.dpdk.port_addresses entry: a next hop must be on a port's link");
	BAD(DPDK_WITH("    routes = ( { to = \"10.9.0.1/16\"; via = \"10.1.0.2\"; } );\n") ACCEL_OK,
	    "t.conf:7: edge.dpdk.routes[0].to: has bits set past the prefix length "
	    "(got \"10.9.0.1/16\")");
	BAD(DPDK_WITH("    routes = ( { to = \"default\"; via = \"10.1.0.2\"; },\n"
		      "               { to = \"0.0.0.0/0\"; via = \"10.0.0.2\"; } );\n") ACCEL_OK,
	    "t.conf:8: edge.dpdk.routes[1].to: duplicate destination \"0.0.0.0/0\" (also line 7)");
	BAD(DPDK_WITH("    routes = ( { to = \"everywhere\"; gw = \"10.1.0.2\"; } );\n") ACCEL_OK,
	    "t.conf:7: edge.dpdk.routes[0].gw: unknown key",
	    "t.conf:7: edge.dpdk.routes[0].to: must be \"a.b.c.d/len\" (len 0-32) or \"default\" "
	    "(got \"everywhere\")",
	    "t.conf:7: edge.dpdk.routes[0].via: is required");
	BAD(DPDK_WITH(
		"    neighbours = ( { address = \"10.0.0.9\"; mac = \"01:00:5e:00:00:01\"; },\n"
		"                   { address = \"10.7.0.9\"; mac = \"02:00:00:00:00:01\"; },\n"
		"                   { address = \"10.0.0.8\"; mac = \"02:00:00:00:0:01\"; } );\n")
		ACCEL_OK,
	    "t.conf:7: edge.dpdk.neighbours[0].mac: must be a unicast MAC address, not zero or "
	    "multicast (got \"01:00:5e:00:00:01\")",
	    "t.conf:8: edge.dpdk.neighbours[1].address: is not inside the subnet of any "
	    "edge.dpdk.port_addresses entry",
	    "t.conf:9: edge.dpdk.neighbours[2].mac: must be a MAC address xx:xx:xx:xx:xx:xx "
	    "(got \"02:00:00:00:0:01\")");
	BAD(DPDK_WITH("    exception_path = \"kni\";\n") ACCEL_OK,
	    "t.conf:7: edge.dpdk.exception_path: must be \"tap\" or \"none\" (got \"kni\")");
	BAD(DPDK_WITH("    port_roles = [ \"client\" ];\n") ACCEL_OK,
	    "t.conf:7: edge.dpdk.port_roles: must have one entry per port, in the order of "
	    "edge.dpdk.ports (2 ports, got 1)");
	BAD(DPDK_WITH("    port_roles = [ \"client\", \"client\" ];\n") ACCEL_OK,
	    "t.conf:7: edge.dpdk.port_roles: no port has role \"backend\" or \"both\": backend "
	    "replies would not be translated back");
	BAD(DPDK_WITH("    port_roles = [ \"client\", \"uplink\" ];\n") ACCEL_OK,
	    "t.conf:7: edge.dpdk.port_roles[1]: must be \"client\", \"backend\" or \"both\" "
	    "(got \"uplink\")");

	cfg =
	    load_good_text(DPDK_WITH("    routes = ( { to = \"default\"; via = \"10.0.0.254\"; },\n"
				     "      { to = \"10.9.0.0/16\"; via = \"10.1.2.3\"; } );\n"
				     "    neighbours = ( { address = \"10.1.2.3\"; "
				     "mac = \"02:aB:00:00:00:07\"; } );\n"
				     "    exception_path = \"none\";\n"
				     "    port_roles = [ \"client\", \"backend\" ];\n") ACCEL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	d = &cfg->edge.dpdk;
	CU_ASSERT_EQUAL_FATAL(d->n_port_addrs, 2);
	CU_ASSERT_EQUAL(d->port_addrs[1].addr, htonl(0x0a010001));
	CU_ASSERT_EQUAL(d->port_addrs[1].len, 16);
	CU_ASSERT_EQUAL_FATAL(d->n_routes, 2);
	CU_ASSERT_EQUAL(d->routes[0].to.addr, 0);
	CU_ASSERT_EQUAL(d->routes[0].to.len, 0);
	CU_ASSERT_EQUAL(d->routes[0].via, htonl(0x0a0000fe));
	CU_ASSERT_EQUAL(d->routes[1].to.addr, htonl(0x0a090000));
	CU_ASSERT_EQUAL(d->routes[1].to.len, 16);
	CU_ASSERT_EQUAL_FATAL(d->n_neighbours, 1);
	CU_ASSERT_EQUAL(d->neighbours[0].mac[1], 0xab);
	CU_ASSERT_EQUAL(d->neighbours[0].mac[5], 7);
	CU_ASSERT_EQUAL(d->exception_path, AG_EXCEPTION_NONE);
	CU_ASSERT_EQUAL_FATAL(d->n_port_roles, 2);
	CU_ASSERT_EQUAL(d->port_roles[0], AG_IFACE_CLIENT);
	CU_ASSERT_EQUAL(d->port_roles[1], AG_IFACE_BACKEND);
	CU_ASSERT_EQUAL(ag_cfg__role_bits(d->port_roles[1]), AG_ROLE_BACKEND);
	CU_ASSERT_EQUAL(ag_cfg__role_bits(AG_IFACE_BOTH), AG_ROLE_CLIENT | AG_ROLE_BACKEND);
	ag_config__free(cfg);

	/* Defaults: no addresses, no routes, the tap exception path. */
	cfg = load_good_text(EDGE_WITH("  dpdk = { ports = [ \"p0\" ]; };\n") ACCEL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->edge.dpdk.n_port_addrs, 0);
	CU_ASSERT_EQUAL(cfg->edge.dpdk.n_routes, 0);
	CU_ASSERT_EQUAL(cfg->edge.dpdk.exception_path, AG_EXCEPTION_TAP);
	CU_ASSERT_EQUAL(cfg->edge.dpdk.n_port_roles, 0); /* every port both */
	ag_config__free(cfg);
}

static void test_edge_interfaces(void)
{
	BAD(EDGE_IFACES("  interfaces = ( );\n") ACCEL_OK,
	    "t.conf:3: edge.interfaces: must list at least one interface when fastpath = \"xdp\"");
	BAD(EDGE_IFACES("  interfaces = ( { name = \"abcdefghijklmnop\"; } );\n") ACCEL_OK,
	    "t.conf:3: edge.interfaces[0].name: must be 1-15 characters (got "
	    "\"abcdefghijklmnop\")");
	BAD(EDGE_IFACES("  interfaces = ( { name = \"e0\"; }, { name = \"e0\"; } );\n") ACCEL_OK,
	    "t.conf:3: edge.interfaces[1].name: duplicate interface \"e0\" (also at line 3)");
	BAD(EDGE_IFACES("  interfaces = ( { name = \"e0\"; role = \"uplink\"; } );\n") ACCEL_OK,
	    "t.conf:3: edge.interfaces[0].role: must be \"client\", \"backend\" or \"both\" "
	    "(got \"uplink\")");
	BAD(EDGE_IFACES("  interfaces = ( { name = \"e0\"; role = \"client\"; } );\n") ACCEL_OK,
	    "t.conf:3: edge.interfaces: no interface has role \"backend\" or \"both\": backend "
	    "replies would not be translated back");
	BAD(EDGE_IFACES("  interfaces = ( { name = \"e/0\"; } );\n") ACCEL_OK,
	    "t.conf:3: edge.interfaces[0].name: must not contain '/', ':', spaces or control "
	    "characters (got \"e/0\")");
	/* a DPDK edge needs no interfaces */
	ag_config__free(load_good_text("edge = {\n"
				       "  name = \"e\"; fastpath = \"dpdk\";\n"
				       "  interfaces = ( );\n"
				       "  nat_addresses = [ \"10.255.0.1\" ];\n"
				       "  dpdk = { ports = [ \"net_null0\" ]; };\n"
				       "};\n" ACCEL_OK));
}

static void test_edge_addresses(void)
{
	BAD(EDGE_NAT("  nat_addresses = [ \"10.255.0\" ];\n") ACCEL_OK,
	    "t.conf:4: edge.nat_addresses[0]: must be an IPv4 address a.b.c.d (got \"10.255.0\")");
	BAD(EDGE_NAT("  nat_addresses = [ \"10.255.0.1\", \"10.255.0.1\" ];\n") ACCEL_OK,
	    "t.conf:4: edge.nat_addresses[1]: duplicate address 10.255.0.1 (also "
	    "edge.nat_addresses[0])");
	BAD(EDGE_NAT("  nat_addresses = [ ];\n") ACCEL_OK,
	    "t.conf:4: edge.nat_addresses: must have 1-16 entries (got 0)");
	BAD(EDGE_NAT("  nat_addresses = [ \"127.0.0.1\" ];\n") ACCEL_OK,
	    "t.conf:4: edge.nat_addresses[0]: must be a unicast IPv4 address, not in 0/8, 127/8 "
	    "or 224/3 (got \"127.0.0.1\")");
	BAD(EDGE_NAT("  nat_addresses = [ \"10.0.0.1\", \"10.0.0.2\", \"10.0.0.3\", \"10.0.0.4\", "
		     "\"10.0.0.5\", \"10.0.0.6\", \"10.0.0.7\", \"10.0.0.8\", \"10.0.0.9\", "
		     "\"10.0.0.10\", \"10.0.0.11\", \"10.0.0.12\", \"10.0.0.13\", \"10.0.0.14\", "
		     "\"10.0.0.15\", \"10.0.0.16\", \"10.0.0.17\" ];\n") ACCEL_OK,
	    "t.conf:4: edge.nat_addresses: must have 1-16 entries (got 17)");
}

static void test_edge_strings(void)
{
	BAD(EDGE_WITH("  nat_ports = \"2000-1000\";\n") ACCEL_OK,
	    "t.conf:5: edge.nat_ports: range must run from low to high (got \"2000-1000\")");
	BAD(EDGE_WITH("  nat_ports = \"0-100\";\n") ACCEL_OK,
	    "t.conf:5: edge.nat_ports: must be a port 1-65535 or a range \"first-last\" within "
	    "it (got \"0-100\")");
	BAD(EDGE_WITH("  bpffs_dir = \"bpf\";\n") ACCEL_OK,
	    "t.conf:5: edge.bpffs_dir: must be an absolute path (got \"bpf\")");
	BAD(EDGE_WITH(
		"  control_socket = \"/run/anygate/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\";\n")
		ACCEL_OK,
	    "t.conf:5: edge.control_socket: must be at most 107 bytes long (got 131)");
	BAD(EDGE_WITH("  metrics = \"localhost:9464\";\n") ACCEL_OK,
	    "t.conf:5: edge.metrics: must be \"a.b.c.d:port\" with port 1-65535, or \"\" to "
	    "disable (got \"localhost:9464\")");
	BAD(EDGE_WITH("  metrics = \"127.0.0.1:0\";\n") ACCEL_OK,
	    "t.conf:5: edge.metrics: must be \"a.b.c.d:port\" with port 1-65535, or \"\" to "
	    "disable (got \"127.0.0.1:0\")");
	BAD(EDGE_WITH("  admin_group = \"\";\n") ACCEL_OK,
	    "t.conf:5: edge.admin_group: must be a group name of 1-32 characters (got \"\")");
	BAD(EDGE_WITH("  admin_group = \"no-such-group-ag\";\n") ACCEL_OK,
	    "t.conf:5: edge.admin_group: no such group (got \"no-such-group-ag\")");
	BAD(EDGE_WITH("  control_group = \"no-such-group-ag\";\n") ACCEL_OK,
	    "t.conf:5: edge.control_group: no such group (got \"no-such-group-ag\")");
	BAD(EDGE_WITH("  control_group = \"a b\";\n") ACCEL_OK,
	    "t.conf:5: edge.control_group: must be a group name of 1-32 characters (got \"a b\")");
	BAD(EDGE_WITH("  control_group = 5;\n") ACCEL_OK,
	    "t.conf:5: edge.control_group: must be a string (got an integer)");
	/* control characters are escaped: one problem stays one line */
	BAD(EDGE_WITH("  state_file = \"var\\n\";\n") ACCEL_OK,
	    "t.conf:5: edge.state_file: must be an absolute path (got \"var\\x0a\")");
}

/* ------------------------------------------------------------------------ */
/* accelerators and listeners                                               */

static void test_vips(void)
{
	BAD(EDGE_OK "accelerators = ( {\n"
		    "  name = \"web\";\n"
		    "  addresses = [ \"224.0.0.1\" ];\n"
		    "  listeners = ( {\n" LISTENER_HEAD REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:8: accelerators[0].addresses[0]: must be a unicast IPv4 address, not in 0/8, "
	    "127/8 or 224/3 (got \"224.0.0.1\")");
	BAD(EDGE_OK "accelerators = ( {\n"
		    "  name = \"web\";\n"
		    "  addresses = [ \"10.255.0.1\" ];\n"
		    "  listeners = ( {\n" LISTENER_HEAD REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:8: accelerators[0].addresses[0]: 10.255.0.1 is also an edge NAT address");
	/* the first accelerator at lines 6-17, the second's name at 18, addresses at 19 */
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU ENDPOINT_OK
	    "    } );\n"
	    "  } );\n"
	    "}, {\n"
	    "  name = \"web\";\n"
	    "  addresses = [ \"198.51.100.11\", \"198.51.100.10\" ];\n"
	    "  listeners = ( {\n" LISTENER_HEAD REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:18: accelerators[1].name: duplicate accelerator name \"web\" (also at line 6)",
	    "t.conf:19: accelerators[1].addresses[1]: 198.51.100.10 is already an address of "
	    "accelerators[0] (line 8)");
}

static void test_listener_fields(void)
{
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"sctp\";\n"
			       "    ports = [ 80 ];\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:10: " L0 ".protocol: must be \"tcp\" or \"udp\" (got \"sctp\")");
	BAD(EDGE_OK ACCEL_HEAD
	    "    protocol = \"tcp\"; client_affinity = \"sticky\"; failure_policy = \"retry\";\n"
	    "    ports = [ 80 ];\n"
	    "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:10: " L0 ".client_affinity: must be \"none\" or \"source_ip\" (got \"sticky\")",
	    "t.conf:10: " L0 ".failure_policy: must be \"fail_open\" or \"drop\" (got \"retry\")");
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"tcp\"; overprovisioning = 0.5;\n"
			       "    ports = [ 80 ];\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:10: " L0 ".overprovisioning: must be 1.0-10.0 (got 0.5)");
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"tcp\"; overprovisioning = 11;\n"
			       "    ports = [ 80 ];\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:10: " L0 ".overprovisioning: must be 1.0-10.0 (got 11)");
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"tcp\"; overprovisioning = \"high\";\n"
			       "    ports = [ 80 ];\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:10: " L0 ".overprovisioning: must be a number (got a string)");
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"tcp\";\n"
			       "    ports = [ 80 ];\n"
			       "    endpoint_groups = ( );\n" LISTENER_TAIL,
	    "t.conf:12: " L0 ".endpoint_groups: must have 1-32 entries (got 0)");
}

static void test_ports(void)
{
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"tcp\";\n"
			       "    ports = [ ];\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:11: " L0 ".ports: must have at least 1 entry (got 0)");
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"tcp\";\n"
			       "    ports = [ 0, 65536 ];\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:11: " L0 ".ports[0]: port must be 1-65535 (got 0)",
	    "t.conf:11: " L0 ".ports[1]: port must be 1-65535 (got 65536)");
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"tcp\";\n"
			       "    ports = [ \"80-\", \"90-80\", \" 80\" ];\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:11: " L0 ".ports[0]: must be a port 1-65535 or a range \"first-last\" within "
	    "it (got \"80-\")",
	    "t.conf:11: " L0 ".ports[1]: range must run from low to high (got \"90-80\")",
	    "t.conf:11: " L0 ".ports[2]: must be a port 1-65535 or a range \"first-last\" within "
	    "it (got \" 80\")");
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"tcp\";\n"
			       "    ports = ( 80, 1.5 );\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:11: " L0 ".ports[1]: must be a port number or a \"first-last\" string (got a "
	    "float)");
}

static void test_port_overlaps(void)
{
	/* within one listener */
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"tcp\";\n"
			       "    ports = ( 80, \"70-90\" );\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:11: " L0 ".ports[1]: tcp ports 70-90 overlap " L0 ".ports[0] (80, line 11)");
	/*
	 * Across two TCP listeners of one accelerator (ports at lines 11 and 18);
	 * the UDP listener (ports at line 25) on the same ports is fine.
	 */
	BAD(EDGE_OK ACCEL_HEAD "    protocol = \"tcp\";\n"
			       "    ports = ( 80, 8005 );\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK "    } );\n"
			       "  }, {\n"
			       "    protocol = \"tcp\";\n"
			       "    ports = [ \"8000-8009\" ];\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK "    } );\n"
			       "  }, {\n"
			       "    protocol = \"udp\";\n"
			       "    ports = ( 80, \"8000-8009\" );\n"
			       "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:18: accelerators[0].listeners[1].ports[0]: tcp ports 8000-8009 overlap "
	    "accelerators[0].listeners[0].ports[1] (8005, line 11)");
}

static void test_region_order(void)
{
	/* group "eu" at lines 12-15, the region_order line is 16 */
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU ENDPOINT_OK
	    "    } );\n"
	    "    region_order = [ \"us\", \"eu\", \"eu\" ];\n" LISTENER_TAIL,
	    "t.conf:16: " L0 ".region_order[0]: \"us\" is not the region of an endpoint group "
	    "of this listener",
	    "t.conf:16: " L0 ".region_order[2]: \"eu\" is listed twice (also " L0
	    ".region_order[1])");
}

/* ------------------------------------------------------------------------ */
/* endpoint groups, endpoints, health checks, port overrides                */

static void test_group_fields(void)
{
	BAD(GROUP_WITH("      traffic_dial = 101;\n"),
	    "t.conf:14: " G0 ".traffic_dial: must be 0-100 (got 101)");
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD "      region = \"eu west\";\n" ENDPOINT_OK GROUP_TAIL,
	    "t.conf:13: " G0 ".region: must be 1-63 characters of A-Z a-z 0-9 . _ - (got \"eu "
	    "west\")");
	/* two groups of region "eu": the first at line 12, the second's region at 16 */
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU ENDPOINT_OK
	    "    }, {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:16: " L0 ".endpoint_groups[1].region: region \"eu\" already has an endpoint "
	    "group in this listener (line 12)");
}

static void test_endpoints(void)
{
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU
	    "      endpoints = ( { address = \"10.1.1.11\"; weight = 256; } );\n" GROUP_TAIL,
	    "t.conf:14: " G0 ".endpoints[0].weight: must be 0-255 (got 256)");
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU
	    "      endpoints = ( { address = \"10.1.1.11\"; weight = -1; } );\n" GROUP_TAIL,
	    "t.conf:14: " G0 ".endpoints[0].weight: must be 0-255 (got -1)");
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU
	    "      endpoints = ( { address = \"10.1.1.11\"; weight = \"heavy\"; } );\n" GROUP_TAIL,
	    "t.conf:14: " G0 ".endpoints[0].weight: must be an integer (got a string)");
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU "      endpoints = ( );\n" GROUP_TAIL,
	    "t.conf:14: " G0 ".endpoints: must have 1-256 entries (got 0)");
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU
	    "      endpoints = ( { address = \"10.1.1.11\"; },\n"
	    "                    { address = \"10.1.1.11\"; } );\n" GROUP_TAIL,
	    "t.conf:15: " G0 ".endpoints[1].address: duplicate endpoint 10.1.1.11 in this group "
	    "(also at line 14)");
	BAD(EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU
	    "      endpoints = ( { address = \"10.1.1.300\"; } );\n" GROUP_TAIL,
	    "t.conf:14: " G0 ".endpoints[0].address: must be an IPv4 address a.b.c.d (got "
	    "\"10.1.1.300\")");
}

static void test_health_checks(void)
{
	BAD(GROUP_WITH("      health_check = { interval_ms = 50; };\n"),
	    "t.conf:14: " HC0 ".interval_ms: must be 100-30000 (got 50)");
	BAD(GROUP_WITH("      health_check = { interval_ms = 100; timeout_ms = 150; };\n"),
	    "t.conf:14: " HC0 ".timeout_ms: must be 1-100, at most interval_ms (got 150)");
	BAD(GROUP_WITH(
		"      health_check = { healthy_threshold = 0; unhealthy_threshold = 11; };\n"),
	    "t.conf:14: " HC0 ".healthy_threshold: must be 1-10 (got 0)",
	    "t.conf:14: " HC0 ".unhealthy_threshold: must be 1-10 (got 11)");
	BAD(GROUP_WITH("      health_check = { protocol = \"udp\"; expect = \"pong\"; };\n"),
	    "t.conf:14: " HC0 ".send: is required when protocol = \"udp\"");
	BAD(GROUP_WITH(
		"      health_check = { protocol = \"tcp\"; path = \"/\"; send = \"x\"; };\n"),
	    "t.conf:14: " HC0 ".path: only valid with protocol = \"http\"",
	    "t.conf:14: " HC0 ".send: only valid with protocol = \"udp\"");
	BAD(GROUP_WITH("      health_check = { protocol = \"http\"; path = \"healthz\"; };\n"),
	    "t.conf:14: " HC0 ".path: must start with '/' and be at most 1024 printable "
	    "characters without spaces (got \"healthz\")");
	BAD(GROUP_WITH("      health_check = { protocol = \"http\"; status = \"600\"; };\n"),
	    "t.conf:14: " HC0 ".status: must be a status 100-599 or a range \"first-last\" within "
	    "it (got \"600\")");
	BAD(GROUP_WITH("      health_check = { protocol = \"icmp\"; path = \"/\"; };\n"),
	    "t.conf:14: " HC0 ".protocol: must be \"tcp\", \"http\" or \"udp\" (got \"icmp\")");
	BAD(GROUP_WITH("      health_check = { port = 0; };\n"),
	    "t.conf:14: " HC0 ".port: must be 1-65535 (got 0)");
	BAD(GROUP_WITH("      health_check = { retries = 3; };\n"),
	    "t.conf:14: " HC0 ".retries: unknown key");
}

static void test_port_overrides(void)
{
	BAD(GROUP_WITH(
		"      port_overrides = ( { listener_port = 81; endpoint_port = 8080; } );\n"),
	    "t.conf:14: " G0 ".port_overrides[0].listener_port: 81 is not a port of this listener");
	BAD(GROUP_WITH("      port_overrides = ( { listener_port = 80; endpoint_port = 8080; },"
		       " { listener_port = 80; endpoint_port = 8081; } );\n"),
	    "t.conf:14: " G0 ".port_overrides[1].listener_port: port 80 is already overridden at "
	    "line 14");
	BAD(GROUP_WITH("      port_overrides = ( { listener_port = 80; } );\n"),
	    "t.conf:14: " G0 ".port_overrides[0].endpoint_port: is required");
	BAD(GROUP_WITH(
		"      port_overrides = ( { listener_port = 80; endpoint_port = 70000; } );\n"),
	    "t.conf:14: " G0 ".port_overrides[0].endpoint_port: must be 1-65535 (got 70000)");
}

/* ------------------------------------------------------------------------ */
/* limits from consts.h                                                     */

static void test_limit_listeners(void)
{
	struct buf b = {0};
	const char *at;
	char want[256];
	unsigned int i;

	buf_add(&b, EDGE_OK "accelerators = ( {\n  name = \"web\";\n"
			    "  addresses = [ \"198.51.100.10\" ];\n  listeners = (\n");
	at = NULL;
	for (i = 0; i <= AG_MAX_LISTENERS; i++) {
		size_t off = b.len;

		buf_add(&b,
			"    { protocol = \"tcp\"; ports = [ %u ];\n"
			"      endpoint_groups = ( { region = \"eu\";\n"
			"        endpoints = ( { address = \"10.1.1.11\"; } ); } ); }%s\n",
			1000 + i, i == AG_MAX_LISTENERS ? "" : ",");
		if (i == AG_MAX_LISTENERS)
			at = b.p + off;
	}
	buf_add(&b, "  );\n} );\n");
	snprintf(want, sizeof(want),
		 "t.conf:%d: accelerators[0].listeners[%d]: exceeds the limit of %d listeners over "
		 "all accelerators",
		 line_of(b.p, at), AG_MAX_LISTENERS, AG_MAX_LISTENERS);
	BAD(b.p, want);
	free(b.p);
}

static void test_limit_endpoints(void)
{
	struct buf b = {0};
	unsigned int i;

	buf_add(&b, EDGE_OK ACCEL_HEAD LISTENER_HEAD REGION_EU "      endpoints = (\n");
	for (i = 0; i <= AG_MAX_ENDPOINTS_PER_GROUP; i++)
		buf_add(&b, "        { address = \"10.1.%u.%u\"; }%s\n", i / 200, 1 + i % 200,
			i == AG_MAX_ENDPOINTS_PER_GROUP ? "" : ",");
	buf_add(&b, "      );\n" GROUP_TAIL);
	BAD(b.p, "t.conf:14: " G0 ".endpoints: must have 1-256 entries (got 257)");
	free(b.p);
}

static void test_limit_vips(void)
{
	struct buf b = {0};
	const char *at = NULL;
	char want[256];
	unsigned int a, i, n[2] = {200, AG_MAX_VIPS + 1 - 200};

	buf_add(&b, EDGE_OK "accelerators = (\n");
	for (a = 0; a < 2; a++) {
		buf_add(&b, "  { name = \"a%u\";\n    addresses = [\n", a);
		for (i = 0; i < n[a]; i++) {
			if (a == 1 && i == n[a] - 1)
				at = b.p + b.len;
			/* "]" on the last address's line: libconfig dates a scalar element by
			 * the token after it */
			buf_add(&b, "      \"198.51.%u.%u\"%s\n", 100 + a, 1 + i,
				i + 1 == n[a] ? " ];" : ",");
		}
		buf_add(&b,
			"    listeners = ( { protocol = \"tcp\"; ports = [ 80 ];\n"
			"      endpoint_groups = ( { region = \"eu\";\n"
			"        endpoints = ( { address = \"10.1.1.11\"; } ); } ); } );\n"
			"  }%s\n",
			a ? "" : ",");
	}
	buf_add(&b, ");\n");
	snprintf(want, sizeof(want),
		 "t.conf:%d: accelerators[1].addresses[%u]: exceeds the limit of %d addresses over "
		 "all accelerators",
		 line_of(b.p, at), n[1] - 1, AG_MAX_VIPS);
	BAD(b.p, want);
	free(b.p);
}

/*
 * One accelerator of n_listeners listeners (listener l on ports from
 * 1000 + 1000 * l), each with `groups` groups of `endpoints` endpoints, the
 * first group with `overrides` port overrides. *line is the first line of
 * group mark_g of listener mark_l.
 */
static char *gen_big(unsigned int n_listeners, unsigned int groups, unsigned int endpoints,
		     unsigned int overrides, unsigned int mark_l, unsigned int mark_g, int *line)
{
	struct buf b = {0};
	const char *at = NULL;
	unsigned int l, g, e, o;
	size_t at_off = 0;

	buf_add(&b, EDGE_OK "accelerators = ( { name = \"web\";\n"
			    "  addresses = [ \"198.51.100.10\" ];\n  listeners = (\n");
	for (l = 0; l < n_listeners; l++) {
		buf_add(&b, "    { protocol = \"tcp\"; ports = [ \"%u-%u\" ];\n", 1000 + l * 1000,
			1000 + l * 1000 + (overrides ? overrides - 1 : 0));
		buf_add(&b, "      endpoint_groups = (\n");
		for (g = 0; g < groups; g++) {
			if (l == mark_l && g == mark_g)
				at_off = b.len;
			buf_add(&b, "        { region = \"r%u\";\n", g);
			if (g == 0 && overrides) {
				buf_add(&b, "          port_overrides = (\n");
				for (o = 0; o < overrides; o++)
					buf_add(&b,
						"            { listener_port = %u; endpoint_port = "
						"80; }%s\n",
						1000 + l * 1000 + o, o + 1 == overrides ? "" : ",");
				buf_add(&b, "          );\n");
			}
			buf_add(&b, "          endpoints = (\n");
			for (e = 0; e < endpoints; e++)
				buf_add(&b, "            { address = \"10.%u.%u.%u\"; }%s\n", 1 + g,
					e / 250, 1 + e % 250, e + 1 == endpoints ? "" : ",");
			buf_add(&b, "          ); }%s\n", g + 1 == groups ? "" : ",");
		}
		buf_add(&b, "      ); }%s\n", l + 1 == n_listeners ? "" : ",");
	}
	buf_add(&b, "  );\n} );\n");
	at = b.p + at_off;
	*line = line_of(b.p, at);
	return b.p;
}

static void test_limit_groups(void)
{
	char want[256], *text;
	int line;

	/* 33 listeners x 32 groups: the 1025th group is listener 32's first */
	text = gen_big(AG_MAX_GROUPS / AG_MAX_GROUPS_PER_LISTENER + 1, AG_MAX_GROUPS_PER_LISTENER,
		       1, 0, AG_MAX_GROUPS / AG_MAX_GROUPS_PER_LISTENER, 0, &line);
	snprintf(
	    want, sizeof(want),
	    "t.conf:%d: accelerators[0].listeners[%d].endpoint_groups[0]: exceeds the limit of "
	    "%d endpoint groups over all listeners",
	    line, AG_MAX_GROUPS / AG_MAX_GROUPS_PER_LISTENER, AG_MAX_GROUPS);
	BAD(text, want);
	free(text);

	/* 33 groups in one listener */
	text = gen_big(1, AG_MAX_GROUPS_PER_LISTENER + 1, 1, 0, 0, 0, &line);
	snprintf(want, sizeof(want),
		 "t.conf:%d: accelerators[0].listeners[0].endpoint_groups: must have 1-%d entries "
		 "(got %d)",
		 line - 1, AG_MAX_GROUPS_PER_LISTENER, AG_MAX_GROUPS_PER_LISTENER + 1);
	BAD(text, want);
	free(text);
}

static void test_limit_backends(void)
{
	unsigned int full = AG_MAX_BACKENDS / AG_MAX_ENDPOINTS_PER_GROUP;
	char want[256], *text;
	int line;

	/* 17 groups of 256: the 17th group's endpoints pass 4096 */
	text = gen_big(1, full + 1, AG_MAX_ENDPOINTS_PER_GROUP, 0, 0, full, &line);
	snprintf(
	    want, sizeof(want),
	    "t.conf:%d: accelerators[0].listeners[0].endpoint_groups[%u].endpoints: exceeds the "
	    "limit of %d endpoints over all groups",
	    line + 1, full, AG_MAX_BACKENDS);
	BAD(text, want);
	free(text);
}

static void test_limit_overrides(void)
{
	char want[256], *text;
	int line;

	/* 4097 overrides in one group */
	text = gen_big(1, 1, 1, AG_MAX_PORT_OVERRIDES + 1, 0, 0, &line);
	snprintf(
	    want, sizeof(want),
	    "t.conf:%d: accelerators[0].listeners[0].endpoint_groups[0].port_overrides: exceeds "
	    "the limit of %d port overrides over all groups",
	    line + 1, AG_MAX_PORT_OVERRIDES);
	BAD(text, want);
	free(text);
}

static void test_limit_listener_keys(void)
{
	/* 5 VIPs x 65535 ports = 327675 keys > 262144 */
	BAD(EDGE_OK "accelerators = ( {\n"
		    "  name = \"web\";\n"
		    "  addresses = [ \"198.51.100.1\", \"198.51.100.2\", \"198.51.100.3\", "
		    "\"198.51.100.4\", "
		    "\"198.51.100.5\" ];\n"
		    "  listeners = ( {\n"
		    "    protocol = \"tcp\";\n"
		    "    ports = [ \"1-65535\" ];\n"
		    "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL,
	    "t.conf:6: accelerators: 327675 listener keys (addresses x ports) exceed the limit of "
	    "262144");
	/* 4 VIPs x 65535 = 262140 fits */
	{
		struct ag_config *cfg = load_good_text(
		    EDGE_OK "accelerators = ( {\n"
			    "  name = \"web\";\n"
			    "  addresses = [ \"198.51.100.1\", \"198.51.100.2\", \"198.51.100.3\", "
			    "\"198.51.100.4\" ];\n"
			    "  listeners = ( {\n"
			    "    protocol = \"tcp\";\n"
			    "    ports = [ \"1-65535\" ];\n"
			    "    endpoint_groups = ( {\n" REGION_EU ENDPOINT_OK GROUP_TAIL);

		if (cfg)
			CU_ASSERT_EQUAL(ag_config__listener_keys(cfg), 4ul * 65535);
		ag_config__free(cfg);
	}
}

/* ------------------------------------------------------------------------ */
/* Collection, files, shared validators                                     */

static void test_multiple_errors(void)
{
	/* three problems in three places: all reported, in file order */
	BAD(EDGE_WITH("  ring_size = 100;\n") "accelerators = ( {\n"
					      "  name = \"web\";\n"
					      "  addresses = [ \"198.51.100.10\" ];\n"
					      "  listeners = ( {\n"
					      "    protocol = \"tcp\";\n"
					      "    ports = [ 80 ];\n"
					      "    endpoint_groups = ( {\n"
					      "      region = \"eu\"; traffic_dial = 200;\n"
					      "      endpoints = ( { address = \"10.1.1.11\"; "
					      "weight = 300; } );\n" GROUP_TAIL,
	    "t.conf:5: edge.ring_size: must be a prime number (got 100)",
	    "t.conf:14: " G0 ".traffic_dial: must be 0-100 (got 200)",
	    "t.conf:15: " G0 ".endpoints[0].weight: must be 0-255 (got 300)");
}

static void test_errors_appended(void)
{
	struct ag_errors errs;
	struct ag_config *cfg;

	/* a load appends to what is there; a good load leaves errs untouched */
	ag_errors__init(&errs);
	ag_errors__add(&errs, "earlier.conf", 3, "x", "problem %d", 1);
	ag_errors__add(&errs, "earlier.conf", 0, NULL, "whole file");
	write_file("t.conf", EDGE_OK ACCEL_OK);
	cfg = ag_config__load("t.conf", &errs);
	CU_ASSERT_PTR_NOT_NULL(cfg);
	ag_config__free(cfg);
	CU_ASSERT_EQUAL_FATAL(errs.count, 2);
	CU_ASSERT_STRING_EQUAL(errs.msgs[0], "earlier.conf:3: x: problem 1");
	CU_ASSERT_STRING_EQUAL(errs.msgs[1], "earlier.conf: whole file");
	write_file("t.conf", EDGE_WITH("  ring_size = 100;\n") ACCEL_OK);
	cfg = ag_config__load("t.conf", &errs);
	CU_ASSERT_PTR_NULL(cfg);
	CU_ASSERT_EQUAL_FATAL(errs.count, 3);
	CU_ASSERT_STRING_EQUAL(errs.msgs[2],
			       "t.conf:5: edge.ring_size: must be a prime number (got 100)");
	CU_ASSERT_FALSE(ag_errors__oom(&errs));
	ag_errors__free(&errs);
	CU_ASSERT_EQUAL(errs.count, 0);
	CU_ASSERT_PTR_NULL(errs.msgs);
}

static void test_unreadable(void)
{
	struct ag_errors errs;

	ag_errors__init(&errs);
	errno = 0;
	CU_ASSERT_PTR_NULL(ag_config__load("missing.conf", &errs));
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_EQUAL_FATAL(errs.count, 1);
	CU_ASSERT_STRING_EQUAL(errs.msgs[0],
			       "missing.conf: cannot read: No such file or directory");
	ag_errors__free(&errs);

	ag_errors__init(&errs);
	errno = 0;
	CU_ASSERT_PTR_NULL(ag_config__load("sub", &errs));
	CU_ASSERT_EQUAL(errno, EISDIR);
	CU_ASSERT_EQUAL_FATAL(errs.count, 1);
	CU_ASSERT_STRING_EQUAL(errs.msgs[0], "sub: cannot read: Is a directory");
	ag_errors__free(&errs);
}

static void test_include(void)
{
	struct ag_errors errs;
	struct ag_config *cfg;

	/* @include is relative to the including file, and messages name the part */
	write_file("sub/part.conf",
		   "accelerators = ( {\n"
		   "  name = \"web\";\n"
		   "  addresses = [ \"198.51.100.10\" ];\n"
		   "  listeners = ( {\n" LISTENER_HEAD REGION_EU ENDPOINT_OK GROUP_TAIL);
	write_file("sub/main.conf", EDGE_OK "@include \"part.conf\"\n");
	cfg = load_good("sub/main.conf");
	if (cfg) {
		CU_ASSERT_EQUAL(cfg->n_accels, 1);
		CU_ASSERT_STRING_EQUAL(cfg->path, "sub/main.conf");
	}
	ag_config__free(cfg);

	write_file("sub/part.conf",
		   "accelerators = ( {\n"
		   "  name = \"web\";\n"
		   "  addresses = [ \"198.51.100.10\" ];\n"
		   "  listeners = ( {\n" LISTENER_HEAD REGION_EU
		   "      endpoints = ( { address = \"10.1.1.11\"; weight = 999; } );\n"
		   "      traffic_dial = 4294967296;\n" GROUP_TAIL);
	ag_errors__init(&errs);
	CU_ASSERT_PTR_NULL(ag_config__load("sub/main.conf", &errs));
	CU_ASSERT_EQUAL_FATAL(errs.count, 1);
	CU_ASSERT_STRING_EQUAL(errs.msgs[0],
			       "part.conf:10: syntax error: integer 4294967296 does not fit in 32 "
			       "bits (write 4294967296L for a 64-bit integer)");
	ag_errors__free(&errs);

	write_file(
	    "sub/part.conf",
	    "accelerators = ( {\n"
	    "  name = \"web\";\n"
	    "  addresses = [ \"198.51.100.10\" ];\n"
	    "  listeners = ( {\n" LISTENER_HEAD REGION_EU
	    "      endpoints = ( { address = \"10.1.1.11\"; weight = 999; } );\n" GROUP_TAIL);
	ag_errors__init(&errs);
	CU_ASSERT_PTR_NULL(ag_config__load("sub/main.conf", &errs));
	CU_ASSERT_EQUAL_FATAL(errs.count, 1);
	CU_ASSERT_STRING_EQUAL(errs.msgs[0], "part.conf:9: " G0 ".endpoints[0].weight: must be "
					     "0-255 (got 999)");
	ag_errors__free(&errs);
}

/* Line of the next text after EDGE_OK: its lines, plus one. */
static int line_after(const char *text)
{
	int n = 1;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

/*
 * An @include naming a FIFO or a directory, at the top or one file down, is
 * refused before libconfig's blocking fopen() could hang on it (the alarm
 * ends the test run instead of letting it hang).
 */
static void test_include_not_regular(void)
{
	char want[160];
	struct ag_errors errs;

	CU_ASSERT_EQUAL_FATAL(mkfifo("sub/fifo", 0600), 0);
	CU_ASSERT_EQUAL_FATAL(mkdir("sub/adir", 0700), 0);
	write_file("sub/top.conf", EDGE_OK "@include \"fifo\"\n");
	write_file("sub/mid.conf", "  @include \"adir\"\n");
	write_file("sub/top2.conf", EDGE_OK "@include \"mid.conf\"\n");

	alarm(60);
	ag_errors__init(&errs);
	CU_ASSERT_PTR_NULL(ag_config__load("sub/top.conf", &errs));
	CU_ASSERT_EQUAL_FATAL(errs.count, 1);
	snprintf(want, sizeof(want),
		 "sub/top.conf:%d: @include: fifo: a FIFO, not a regular file: not read",
		 line_after(EDGE_OK));
	CU_ASSERT_STRING_EQUAL(errs.msgs[0], want);
	ag_errors__free(&errs);

	ag_errors__init(&errs);
	CU_ASSERT_PTR_NULL(ag_config__load("sub/top2.conf", &errs));
	CU_ASSERT_EQUAL_FATAL(errs.count, 1);
	CU_ASSERT_STRING_EQUAL(
	    errs.msgs[0], "mid.conf:1: @include: adir: a directory, not a regular file: not read");
	ag_errors__free(&errs);
	alarm(0);
	unlink("sub/fifo");
	rmdir("sub/adir");
}

static void test_shared_validators(void)
{
	CU_ASSERT_PTR_NULL(ag_config__check_weight(0));
	CU_ASSERT_PTR_NULL(ag_config__check_weight(255));
	CU_ASSERT_STRING_EQUAL(ag_config__check_weight(256), "must be 0-255");
	CU_ASSERT_STRING_EQUAL(ag_config__check_weight(-1), "must be 0-255");
	CU_ASSERT_PTR_NULL(ag_config__check_dial(0));
	CU_ASSERT_PTR_NULL(ag_config__check_dial(100));
	CU_ASSERT_STRING_EQUAL(ag_config__check_dial(101), "must be 0-100");
	CU_ASSERT_STRING_EQUAL(ag_config__check_dial(-5), "must be 0-100");
	CU_ASSERT_PTR_NULL(ag_config__check_name("eu-west_1.a"));
	CU_ASSERT_PTR_NOT_NULL(ag_config__check_name(""));
	CU_ASSERT_PTR_NOT_NULL(ag_config__check_name("eu west"));
	CU_ASSERT_PTR_NULL(ag_config__check_name(
	    "a23456789012345678901234567890123456789012345678901234567890123")); /* 63 */
	CU_ASSERT_PTR_NOT_NULL(ag_config__check_name(
	    "a234567890123456789012345678901234567890123456789012345678901234")); /* 64 */
}

/* ------------------------------------------------------------------------ */
/* Good configs                                                             */

static void test_defaults(void)
{
	struct ag_config *cfg = load_good_text(EDGE_OK ACCEL_OK);
	const struct ag_cfg_edge *e;
	const struct ag_cfg_listener *l;
	const struct ag_cfg_group *g;

	if (!cfg)
		return;
	e = &cfg->edge;
	CU_ASSERT_STRING_EQUAL(e->name, "e");
	CU_ASSERT_EQUAL(e->line, 1);
	CU_ASSERT_EQUAL(e->hash_seed, 0);
	CU_ASSERT_EQUAL(e->fastpath, AG_FASTPATH_XDP);
	CU_ASSERT_EQUAL_FATAL(e->n_ifaces, 1);
	CU_ASSERT_STRING_EQUAL(e->ifaces[0].name, "e0");
	CU_ASSERT_EQUAL(e->ifaces[0].role, AG_IFACE_BOTH);
	CU_ASSERT_EQUAL(e->ifaces[0].line, 3);
	CU_ASSERT_EQUAL_FATAL(e->n_nat_addrs, 1);
	CU_ASSERT_EQUAL(e->nat_addrs[0], ip("10.255.0.1"));
	CU_ASSERT_EQUAL(e->nat_port_min, AG_NAT_PORT_MIN_DEFAULT);
	CU_ASSERT_EQUAL(e->nat_port_max, AG_NAT_PORT_MAX_DEFAULT);
	CU_ASSERT_STRING_EQUAL(e->bpffs_dir, "/sys/fs/bpf/anygate");
	CU_ASSERT_EQUAL(e->tcp_idle_s, AG_TCP_IDLE_DEFAULT);
	CU_ASSERT_EQUAL(e->udp_idle_s, AG_UDP_IDLE_DEFAULT);
	CU_ASSERT_EQUAL(e->ring_size, AG_RING_SIZE_DEFAULT);
	CU_ASSERT_EQUAL(e->max_flows, AG_FLOWS_DEFAULT);
	CU_ASSERT_EQUAL(e->tcp_syn_idle_s, AG_TCP_SYN_IDLE_DEFAULT);
	CU_ASSERT_EQUAL(e->tcp_closing_s, AG_TCP_CLOSING_DEFAULT);
	CU_ASSERT_EQUAL(e->syn_auth_rate, AG_SYN_AUTH_RATE_DEFAULT);
	CU_ASSERT_EQUAL(e->syn_auth_ttl_s, AG_SYN_AUTH_TTL_DEFAULT);
	CU_ASSERT_EQUAL(e->udp_flow_rate, AG_FLOWS_DEFAULT / (2 * AG_UDP_IDLE_DEFAULT));
	CU_ASSERT_STRING_EQUAL(e->control_socket, "/run/anygate/anygated.sock");
	CU_ASSERT_PTR_NULL(e->admin_group);
	CU_ASSERT_PTR_NULL(e->control_group);
	CU_ASSERT_EQUAL(e->admin_gid, (gid_t)-1);
	CU_ASSERT_EQUAL(e->control_gid, (gid_t)-1);
	CU_ASSERT_STRING_EQUAL(e->state_file, "/var/lib/anygate/state.json");
	CU_ASSERT_STRING_EQUAL(e->metrics_addr, "127.0.0.1:9464");
	CU_ASSERT_EQUAL(e->metrics_ip, ip("127.0.0.1"));
	CU_ASSERT_EQUAL(e->metrics_port, 9464);
	CU_ASSERT_EQUAL(e->dpdk.n_eal_args, 0);
	CU_ASSERT_EQUAL(e->dpdk.n_ports, 0);
	CU_ASSERT_STRING_EQUAL(e->dpdk.shm_name, "anygate");

	CU_ASSERT_EQUAL_FATAL(cfg->n_accels, 1);
	CU_ASSERT_STRING_EQUAL(cfg->accels[0].name, "web");
	CU_ASSERT_EQUAL(cfg->accels[0].line, 6);
	CU_ASSERT_EQUAL_FATAL(cfg->accels[0].n_addrs, 1);
	CU_ASSERT_EQUAL(cfg->accels[0].addrs[0], ip("198.51.100.10"));
	CU_ASSERT_EQUAL_FATAL(cfg->accels[0].n_listeners, 1);
	l = &cfg->accels[0].listeners[0];
	CU_ASSERT_EQUAL(l->line, 9);
	CU_ASSERT_EQUAL(l->proto, IPPROTO_TCP);
	CU_ASSERT_EQUAL_FATAL(l->n_ranges, 1);
	CU_ASSERT_EQUAL(l->ranges[0].first, 80);
	CU_ASSERT_EQUAL(l->ranges[0].last, 80);
	CU_ASSERT_EQUAL(l->ranges[0].line, 11);
	CU_ASSERT_EQUAL(l->affinity, AG_AFFINITY_NONE);
	CU_ASSERT_EQUAL(l->failure_policy, AG_FAIL_OPEN);
	CU_ASSERT_DOUBLE_EQUAL(l->overprovisioning, 1.4, 1e-9);
	CU_ASSERT_PTR_NULL(l->region_order);
	CU_ASSERT_EQUAL(l->n_region_order, 0);
	CU_ASSERT_EQUAL_FATAL(l->n_groups, 1);
	g = &l->groups[0];
	CU_ASSERT_STRING_EQUAL(g->region, "eu");
	CU_ASSERT_EQUAL(g->line, 12);
	CU_ASSERT_EQUAL(g->traffic_dial, 100);
	CU_ASSERT_EQUAL(g->n_overrides, 0);
	CU_ASSERT_EQUAL(g->health.proto, AG_HC_TCP);
	CU_ASSERT_EQUAL(g->health.port, 0);
	CU_ASSERT_EQUAL(g->health.interval_ms, 1000);
	CU_ASSERT_EQUAL(g->health.timeout_ms, 500);
	CU_ASSERT_EQUAL(g->health.healthy_threshold, 2);
	CU_ASSERT_EQUAL(g->health.unhealthy_threshold, 2);
	CU_ASSERT_PTR_NULL(g->health.path);
	CU_ASSERT_PTR_NULL(g->health.host);
	CU_ASSERT_PTR_NULL(g->health.send);
	CU_ASSERT_PTR_NULL(g->health.expect);
	CU_ASSERT_EQUAL_FATAL(g->n_endpoints, 1);
	CU_ASSERT_EQUAL(g->endpoints[0].addr, ip("10.1.1.11"));
	CU_ASSERT_EQUAL(g->endpoints[0].weight, 128);
	CU_ASSERT_EQUAL(g->endpoints[0].line, 14);
	CU_ASSERT_EQUAL(ag_config__listener_keys(cfg), 1);
	ag_config__free(cfg);
}

static void test_full_values(void)
{
	struct ag_config *cfg = load_good_text(
	    "edge = {\n"
	    "  name = \"edge-1\"; hash_seed = 0xdeadbeef; fastpath = \"xdp\";\n"
	    "  interfaces = ( { name = \"up0\"; role = \"client\"; },\n"
	    "                 { name = \"dn0\"; role = \"backend\"; } );\n"
	    "  nat_addresses = [ \"10.255.0.1\", \"10.255.0.2\" ];\n"
	    "  nat_ports = \"20000-29999\"; bpffs_dir = \"/run/ag/bpf\";\n"
	    "  tcp_idle_s = 600; udp_idle_s = 15; ring_size = 13; max_flows = 1024;\n"
	    "  control_socket = \"/run/ag/s.sock\"; state_file = \"/run/ag/state.json\";\n"
	    "  admin_group = \"root\"; control_group = \"root\"; metrics = \"\";\n"
	    "  dpdk = { eal_args = [ \"--no-huge\", \"-m\", \"512\" ];\n"
	    "           ports = [ \"net_af_xdp0,iface=e0\" ]; shm_name = \"ag2\"; };\n"
	    "};\n"
	    "accelerators = ( {\n"
	    "  name = \"web\"; addresses = [ \"198.51.100.10\", \"203.0.113.5\" ];\n"
	    "  listeners = ( {\n"
	    "    protocol = \"tcp\"; ports = ( 80, \"8000-8009\", \"443\" );\n"
	    "    client_affinity = \"source_ip\"; failure_policy = \"drop\"; overprovisioning = "
	    "2;\n"
	    "    region_order = [ \"us\", \"eu\" ];\n"
	    "    endpoint_groups = ( {\n"
	    "      region = \"eu\"; traffic_dial = 0;\n"
	    "      health_check = { protocol = \"http\"; port = 8080; path = \"/healthz\";\n"
	    "                       status = 204; host = \"www.example.com\";\n"
	    "                       interval_ms = 200; healthy_threshold = 3;\n"
	    "                       unhealthy_threshold = 1; };\n"
	    "      port_overrides = ( { listener_port = 8005; endpoint_port = 9005; },\n"
	    "                         { listener_port = 443; endpoint_port = 8443; } );\n"
	    "      endpoints = ( { address = \"10.1.1.11\"; weight = 0; },\n"
	    "                    { address = \"10.1.1.12\"; weight = 255; } );\n"
	    "    }, {\n"
	    "      region = \"us\";\n"
	    "      health_check = { protocol = \"http\"; status = \"200-204\"; interval_ms = "
	    "30000; };\n"
	    "      endpoints = ( { address = \"192.0.2.1\"; } );\n"
	    "    } );\n"
	    "  }, {\n"
	    "    protocol = \"udp\"; ports = [ 80, 53 ]; overprovisioning = 10.0;\n"
	    "    endpoint_groups = ( {\n"
	    "      region = \"eu\";\n"
	    "      health_check = { protocol = \"udp\"; port = 53; send = \"ping\"; expect = "
	    "\"pong\";\n"
	    "                       interval_ms = 100; timeout_ms = 100; };\n"
	    "      endpoints = ( { address = \"10.1.1.11\"; } );\n"
	    "    } );\n"
	    "  } );\n"
	    "} );\n");
	const struct ag_cfg_edge *e;
	const struct ag_cfg_listener *l;
	const struct ag_cfg_group *g;

	if (!cfg)
		return;
	e = &cfg->edge;
	CU_ASSERT_STRING_EQUAL(e->name, "edge-1");
	CU_ASSERT_EQUAL(e->hash_seed, 0xdeadbeefu); /* a 32-bit hex pattern, not negative */
	CU_ASSERT_EQUAL_FATAL(e->n_ifaces, 2);
	CU_ASSERT_EQUAL(e->ifaces[0].role, AG_IFACE_CLIENT);
	CU_ASSERT_EQUAL(e->ifaces[1].role, AG_IFACE_BACKEND);
	CU_ASSERT_EQUAL(e->ifaces[1].line, 4);
	CU_ASSERT_EQUAL_FATAL(e->n_nat_addrs, 2);
	CU_ASSERT_EQUAL(e->nat_addrs[1], ip("10.255.0.2"));
	CU_ASSERT_EQUAL(e->nat_port_min, 20000);
	CU_ASSERT_EQUAL(e->nat_port_max, 29999);
	CU_ASSERT_STRING_EQUAL(e->bpffs_dir, "/run/ag/bpf");
	CU_ASSERT_EQUAL(e->tcp_idle_s, 600);
	CU_ASSERT_EQUAL(e->udp_idle_s, 15);
	CU_ASSERT_EQUAL(e->ring_size, 13);
	CU_ASSERT_EQUAL(e->max_flows, 1024);
	CU_ASSERT_STRING_EQUAL(e->control_socket, "/run/ag/s.sock");
	/* Group names are resolved at load: gid 0 is "root" on every Linux host. */
	CU_ASSERT_STRING_EQUAL(e->admin_group, "root");
	CU_ASSERT_EQUAL(e->admin_gid, 0);
	CU_ASSERT_STRING_EQUAL(e->control_group, "root");
	CU_ASSERT_EQUAL(e->control_gid, 0);
	CU_ASSERT_STRING_EQUAL(e->state_file, "/run/ag/state.json");
	CU_ASSERT_STRING_EQUAL(e->metrics_addr, "");
	CU_ASSERT_EQUAL(e->metrics_ip, 0);
	CU_ASSERT_EQUAL(e->metrics_port, 0);
	CU_ASSERT_EQUAL_FATAL(e->dpdk.n_eal_args, 3);
	CU_ASSERT_STRING_EQUAL(e->dpdk.eal_args[0], "--no-huge");
	CU_ASSERT_STRING_EQUAL(e->dpdk.eal_args[2], "512");
	CU_ASSERT_EQUAL_FATAL(e->dpdk.n_ports, 1);
	CU_ASSERT_STRING_EQUAL(e->dpdk.ports[0], "net_af_xdp0,iface=e0");
	CU_ASSERT_STRING_EQUAL(e->dpdk.shm_name, "ag2");

	CU_ASSERT_EQUAL_FATAL(cfg->n_accels, 1);
	CU_ASSERT_EQUAL_FATAL(cfg->accels[0].n_addrs, 2);
	CU_ASSERT_EQUAL(cfg->accels[0].addrs[1], ip("203.0.113.5"));
	CU_ASSERT_EQUAL_FATAL(cfg->accels[0].n_listeners, 2);

	l = &cfg->accels[0].listeners[0];
	CU_ASSERT_EQUAL_FATAL(l->n_ranges, 3);
	CU_ASSERT_EQUAL(l->ranges[0].first, 80);
	CU_ASSERT_EQUAL(l->ranges[0].last, 80);
	CU_ASSERT_EQUAL(l->ranges[1].first, 8000);
	CU_ASSERT_EQUAL(l->ranges[1].last, 8009);
	CU_ASSERT_EQUAL(l->ranges[2].first, 443);
	CU_ASSERT_EQUAL(l->ranges[2].last, 443);
	CU_ASSERT_EQUAL(l->affinity, AG_AFFINITY_SOURCE_IP);
	CU_ASSERT_EQUAL(l->failure_policy, AG_FAIL_DROP);
	CU_ASSERT_DOUBLE_EQUAL(l->overprovisioning, 2.0, 1e-9);
	CU_ASSERT_EQUAL_FATAL(l->n_region_order, 2);
	CU_ASSERT_STRING_EQUAL(l->region_order[0], "us");
	CU_ASSERT_STRING_EQUAL(l->region_order[1], "eu");
	CU_ASSERT_EQUAL_FATAL(l->n_groups, 2);
	g = &l->groups[0];
	CU_ASSERT_EQUAL(g->traffic_dial, 0);
	CU_ASSERT_EQUAL(g->health.proto, AG_HC_HTTP);
	CU_ASSERT_EQUAL(g->health.port, 8080);
	CU_ASSERT_STRING_EQUAL(g->health.path, "/healthz");
	CU_ASSERT_STRING_EQUAL(g->health.host, "www.example.com");
	CU_ASSERT_EQUAL(g->health.status_min, 204);
	CU_ASSERT_EQUAL(g->health.status_max, 204);
	CU_ASSERT_EQUAL(g->health.interval_ms, 200);
	CU_ASSERT_EQUAL(g->health.timeout_ms, 100); /* default: half the interval */
	CU_ASSERT_EQUAL(g->health.healthy_threshold, 3);
	CU_ASSERT_EQUAL(g->health.unhealthy_threshold, 1);
	CU_ASSERT_EQUAL(g->health.line, 21);
	CU_ASSERT_EQUAL_FATAL(g->n_overrides, 2);
	CU_ASSERT_EQUAL(g->overrides[0].listener_port, 8005);
	CU_ASSERT_EQUAL(g->overrides[0].endpoint_port, 9005);
	CU_ASSERT_EQUAL(g->overrides[1].listener_port, 443);
	CU_ASSERT_EQUAL(g->overrides[1].endpoint_port, 8443);
	CU_ASSERT_EQUAL(g->overrides[1].line, 26);
	CU_ASSERT_EQUAL_FATAL(g->n_endpoints, 2);
	CU_ASSERT_EQUAL(g->endpoints[0].weight, 0);
	CU_ASSERT_EQUAL(g->endpoints[1].weight, 255);
	CU_ASSERT_EQUAL(g->endpoints[1].line, 28);
	g = &l->groups[1];
	CU_ASSERT_STRING_EQUAL(g->region, "us");
	CU_ASSERT_STRING_EQUAL(g->health.path, "/"); /* http default */
	CU_ASSERT_PTR_NULL(g->health.host);
	CU_ASSERT_EQUAL(g->health.status_min, 200);
	CU_ASSERT_EQUAL(g->health.status_max, 204);
	CU_ASSERT_EQUAL(g->health.interval_ms, 30000);
	CU_ASSERT_EQUAL(g->health.timeout_ms, 1000); /* default: min(interval, 2 s) / 2 */

	l = &cfg->accels[0].listeners[1];
	CU_ASSERT_EQUAL(l->proto, IPPROTO_UDP);
	CU_ASSERT_DOUBLE_EQUAL(l->overprovisioning, 10.0, 1e-9);
	CU_ASSERT_EQUAL_FATAL(l->n_groups, 1);
	g = &l->groups[0];
	CU_ASSERT_EQUAL(g->health.proto, AG_HC_UDP);
	CU_ASSERT_EQUAL(g->health.port, 53);
	CU_ASSERT_STRING_EQUAL(g->health.send, "ping");
	CU_ASSERT_STRING_EQUAL(g->health.expect, "pong");
	CU_ASSERT_PTR_NULL(g->health.path);
	CU_ASSERT_EQUAL(g->health.timeout_ms, 100);
	/* TCP 80 and UDP 80 on one VIP do not overlap; keys: 2 VIPs x (12 + 2) */
	CU_ASSERT_EQUAL(ag_config__listener_keys(cfg), 28);
	ag_config__free(cfg);
}

static void test_int64_seed(void)
{
	struct ag_config *cfg = load_good_text(EDGE_WITH("  hash_seed = 4294967295L;\n") ACCEL_OK);

	if (cfg)
		CU_ASSERT_EQUAL(cfg->edge.hash_seed, 4294967295u);
	ag_config__free(cfg);
}

static char *src_path(const char *rel)
{
	const char *dir = getenv("AG_SRCDIR");
	char *p;

	if (!dir) {
		fprintf(stderr, "\n  AG_SRCDIR is not set (meson test sets it)\n");
		CU_FAIL_FATAL("AG_SRCDIR unset");
	}
	CU_ASSERT_FATAL(asprintf(&p, "%s/%s", dir, rel) > 0);
	return p;
}

static void test_lab_conf(void)
{
	char *path = src_path("config/lab.conf");
	struct ag_config *cfg = load_good(path);
	static const char *const regions[] = {"eu-west", "us-east", "ap-south"};
	const struct ag_cfg_accelerator *a;
	unsigned int l, g;

	free(path);
	if (!cfg)
		return;
	CU_ASSERT_STRING_EQUAL(cfg->edge.name, "edge-lab");
	CU_ASSERT_EQUAL(cfg->edge.fastpath, AG_FASTPATH_XDP);
	CU_ASSERT_EQUAL_FATAL(cfg->edge.n_ifaces, 4);
	CU_ASSERT_STRING_EQUAL(cfg->edge.ifaces[0].name, "e0");
	CU_ASSERT_EQUAL(cfg->edge.ifaces[0].role, AG_IFACE_CLIENT);
	CU_ASSERT_STRING_EQUAL(cfg->edge.ifaces[3].name, "e3");
	CU_ASSERT_EQUAL(cfg->edge.ifaces[3].role, AG_IFACE_BACKEND);
	CU_ASSERT_EQUAL_FATAL(cfg->edge.n_nat_addrs, 1);
	CU_ASSERT_EQUAL(cfg->edge.nat_addrs[0], ip("10.255.0.1"));
	CU_ASSERT_STRING_EQUAL(cfg->edge.bpffs_dir, "/run/anygate/lab/bpf");
	CU_ASSERT_STRING_EQUAL(cfg->edge.control_socket, "/run/anygate/lab/anygated.sock");
	CU_ASSERT_STRING_EQUAL(cfg->edge.state_file, "/run/anygate/lab/state.json");
	CU_ASSERT_STRING_EQUAL(cfg->edge.metrics_addr, "127.0.0.1:9464");
	CU_ASSERT_EQUAL_FATAL(cfg->n_accels, 1);
	a = &cfg->accels[0];
	CU_ASSERT_STRING_EQUAL(a->name, "web");
	CU_ASSERT_EQUAL_FATAL(a->n_addrs, 1);
	CU_ASSERT_EQUAL(a->addrs[0], ip("198.51.100.10"));
	CU_ASSERT_EQUAL_FATAL(a->n_listeners, 2);
	CU_ASSERT_EQUAL(a->listeners[0].proto, IPPROTO_TCP);
	CU_ASSERT_EQUAL_FATAL(a->listeners[0].n_ranges, 2);
	CU_ASSERT_EQUAL(a->listeners[0].ranges[1].first, 8000);
	CU_ASSERT_EQUAL(a->listeners[0].ranges[1].last, 8009);
	CU_ASSERT_EQUAL(a->listeners[1].proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL_FATAL(a->listeners[1].n_ranges, 1);
	CU_ASSERT_EQUAL(a->listeners[1].ranges[0].first, 5000);
	for (l = 0; l < 2; l++) {
		CU_ASSERT_EQUAL_FATAL(a->listeners[l].n_groups, 3);
		for (g = 0; g < 3; g++) {
			const struct ag_cfg_group *grp = &a->listeners[l].groups[g];
			char b1[16], b2[16];

			CU_ASSERT_STRING_EQUAL(grp->region, regions[g]);
			CU_ASSERT_EQUAL_FATAL(grp->n_endpoints, 2);
			snprintf(b1, sizeof(b1), "10.%u.1.11", g + 1);
			snprintf(b2, sizeof(b2), "10.%u.1.12", g + 1);
			CU_ASSERT_EQUAL(grp->endpoints[0].addr, ip(b1));
			CU_ASSERT_EQUAL(grp->endpoints[1].addr, ip(b2));
			CU_ASSERT_EQUAL(grp->endpoints[0].weight, 100);
			CU_ASSERT_EQUAL(grp->endpoints[1].weight, 100);
			/* Timeouts fit each region's RTT; ap-south's HTTP needs two 60 ms trips. */
			if (l == 0 && g == 2) {
				CU_ASSERT_EQUAL(grp->health.interval_ms, 250);
				CU_ASSERT_EQUAL(grp->health.timeout_ms, 200);
			} else {
				CU_ASSERT_EQUAL(grp->health.interval_ms, 100);
				CU_ASSERT_EQUAL(grp->health.timeout_ms, g == 2 ? 95 : 90);
			}
			CU_ASSERT_EQUAL(grp->health.healthy_threshold, 2);
			CU_ASSERT_EQUAL(grp->health.unhealthy_threshold, 2);
			if (l == 0) {
				CU_ASSERT_EQUAL(grp->health.proto, AG_HC_HTTP);
				CU_ASSERT_EQUAL(grp->health.port, 80);
				CU_ASSERT_STRING_EQUAL(grp->health.path, "/");
			} else {
				CU_ASSERT_EQUAL(grp->health.proto, AG_HC_UDP);
				CU_ASSERT_STRING_EQUAL(grp->health.send, "ping");
				CU_ASSERT_STRING_EQUAL(grp->health.expect, "r");
			}
		}
	}
	CU_ASSERT_EQUAL(ag_config__listener_keys(cfg), 12);
	ag_config__free(cfg);
}

static void test_example_conf(void)
{
	char *path = src_path("config/example.conf");
	struct ag_config *cfg = load_good(path);

	free(path);
	if (!cfg)
		return;
	CU_ASSERT_EQUAL(cfg->n_accels, 2);
	/* Commented out there: a group must exist on the host that loads the file. */
	CU_ASSERT_PTR_NULL(cfg->edge.admin_group);
	ag_config__free(cfg);
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"syntax error", test_syntax_error},
	    {"syntax: mixed array", test_syntax_mixed_array},
	    {"syntax: duplicate key", test_syntax_duplicate},
	    {"integers libconfig would truncate", test_int_truncation},
	    {"unknown keys", test_unknown_keys},
	    {"missing required keys", test_missing_keys},
	    {"wrong types", test_wrong_types},
	    {"edge numbers", test_edge_numbers},
	    {"edge flow state and admission", test_edge_flow_state},
	    {"edge flow state derived defaults", test_edge_flow_state_defaults},
	    {"edge fastpath and dpdk", test_edge_fastpath},
	    {"edge dpdk addresses, routes, neighbours", test_edge_dpdk_net},
	    {"edge interfaces", test_edge_interfaces},
	    {"edge NAT addresses", test_edge_addresses},
	    {"edge strings", test_edge_strings},
	    {"VIPs", test_vips},
	    {"listener fields", test_listener_fields},
	    {"ports", test_ports},
	    {"port overlaps", test_port_overlaps},
	    {"region_order", test_region_order},
	    {"group fields", test_group_fields},
	    {"endpoints", test_endpoints},
	    {"health checks", test_health_checks},
	    {"port overrides", test_port_overrides},
	    {"limit: listeners", test_limit_listeners},
	    {"limit: endpoints per group", test_limit_endpoints},
	    {"limit: listener keys", test_limit_listener_keys},
	    {"limit: VIPs", test_limit_vips},
	    {"limit: endpoint groups", test_limit_groups},
	    {"limit: endpoints", test_limit_backends},
	    {"limit: port overrides", test_limit_overrides},
	    {"all errors collected", test_multiple_errors},
	    {"errors appended, untouched on success", test_errors_appended},
	    {"unreadable files", test_unreadable},
	    {"@include", test_include},
	    {"@include of a FIFO or directory", test_include_not_regular},
	    {"shared validators", test_shared_validators},
	    {"defaults", test_defaults},
	    {"every value", test_full_values},
	    {"64-bit hash seed", test_int64_seed},
	    {"config/lab.conf", test_lab_conf},
	    {"config/example.conf", test_example_conf},
	};
	CU_pSuite suite;
	unsigned int i, failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return CU_get_error();
	suite = CU_add_suite("config", suite_init, suite_clean);
	if (!suite)
		goto cleanup;
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			goto cleanup;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
cleanup:
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
