// SPDX-License-Identifier: BSD-3-Clause
/*
 * Every key of the config file, declared once: where it is, its type, its
 * range or rule, its default, whether a reload may change it, and what it
 * means. The parser (block.c) reads and checks the file by these tables, and
 * the key tables of docs/config.md are printed from them (doc.c,
 * scripts/gen-config-doc.sh), so the documentation cannot drift from the code.
 *
 * A table lists its keys in the order they are parsed, which is the order
 * their problems are reported in and the order of the docs' rows. Limits come
 * from consts.h, the same names the BPF maps and DPDK tables are sized with.
 */
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "abi.h"
#include "parse.h"

#define FIELD(type, member)  .offset = offsetof(type, member), .size = sizeof(((type *)0)->member)
#define FIELD2(type, member) .offset2 = offsetof(type, member)
/* A LIST's array of `size`-byte elements and its count. */
#define LIST_FIELD(type, array, count)                                                             \
	.offset = offsetof(type, array), .offset2 = offsetof(type, count),                         \
	.size = sizeof(*((type *)0)->array)
/* An entry count bounded by a consts.h limit, named in the docs. */
#define ENTRIES(lo, hi)	   .min = (lo), .max = (hi), .limit = #hi
#define AT_LEAST(n)	   .min = (n), .max = UINT_MAX
/* Entries over the whole file ("over all groups"), bounded by a consts.h limit. */
#define TOTAL(limit, over) .total = (limit), .total_limit = #limit, .total_over = over
#define LINE(type)	   .has_line = true, .line_offset = offsetof(type, line)
#define KEYS(table)	   .keys = table, .n_keys = sizeof(table) / sizeof(table[0])

#define PORT_MIN	 1
#define PORT_MAX	 65535
/* Unix socket paths must fit sun_path with its terminating NUL. */
#define SOCK_PATH_MAX	 (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
/* Health check probe timing and thresholds. */
#define HC_INTERVAL_MIN	 100
#define HC_INTERVAL_MAX	 30000
#define HC_THRESHOLD_MIN 1
#define HC_THRESHOLD_MAX 10
/* Bounds on free-form health check strings: they go into one probe packet. */
#define HC_PATH_MAX	 1024
#define HC_HOST_MAX	 255
#define HC_PAYLOAD_MAX	 512

/* ENUM words are in the order of the C enum they are stored as. */
static const char *const fastpath_words[] = {"xdp", "dpdk", NULL};
static const char *const role_words[] = {"client", "backend", "both", NULL};
static const char *const exception_words[] = {"tap", "none", NULL};
static const char *const hc_proto_words[] = {"tcp", "http", "udp", NULL};
static const char *const proto_words[] = {"tcp", "udp", NULL};
static const int proto_values[] = {IPPROTO_TCP, IPPROTO_UDP};
static const char *const affinity_words[] = {"none", "source_ip", NULL};
static const int affinity_values[] = {AG_AFFINITY_NONE, AG_AFFINITY_SOURCE_IP};
static const char *const failure_words[] = {"fail_open", "drop", NULL};

_Static_assert(AG_FASTPATH_DPDK == 1 && AG_IFACE_BOTH == 2 && AG_EXCEPTION_NONE == 1 &&
		   AG_HC_UDP == 2 && AG_FAIL_DROP == 1,
	       "ENUM words follow the C enums");

/* ------------------------------------------------------------------------- */
/* edge                                                                       */

static const struct ag_cfg_key iface_keys[] = {
    {
	.name = "name",
	.type = AG_CFG_STRING,
	.flags = AG_CFG_F_REQUIRED,
	.min = 1,
	.max = IFNAMSIZ - 1,
	.unit = "characters",
	.parse = ag_cfg__parse_ifname,
	FIELD(struct ag_cfg_iface, name),
	.doc.rule = "no `/`, `:`, spaces or control characters; unique",
	.doc.help = "Linux interface name",
    },
    {
	.name = "role",
	.type = AG_CFG_ENUM,
	.words = role_words,
	.def = AG_IFACE_BOTH,
	FIELD(struct ag_cfg_iface, role),
	.doc.help = "`client`: VIP traffic arrives here; `backend`: backends' replies arrive here; "
		    "`both`: one interface does both",
    },
};

static const struct ag_cfg_block iface_block = {
    .id = "interfaces",
    .path = "edge.interfaces[]",
    KEYS(iface_keys),
    LINE(struct ag_cfg_iface),
};

static const struct ag_cfg_key route_keys[] = {
    {
	.name = "to",
	.type = AG_CFG_STRING,
	.flags = AG_CFG_F_REQUIRED,
	.parse = ag_cfg__parse_route_to,
	FIELD(struct ag_cfg_route, to),
	.doc.rule = "`\"a.b.c.d/len\"` (len 0-32, no bits past the length) or `\"default\"` "
		    "(= `0.0.0.0/0`); unique",
	.doc.help = "destination prefix",
    },
    {
	.name = "via",
	.type = AG_CFG_ADDR,
	.flags = AG_CFG_F_REQUIRED,
	.parse = ag_cfg__parse_route_via,
	FIELD(struct ag_cfg_route, via),
	.doc.rule = "inside the subnet of a `port_addresses` entry",
	.doc.help = "next hop, resolved by ARP on that port",
    },
};

static const struct ag_cfg_block route_block = {
    .id = "routes",
    .path = "edge.dpdk.routes[]",
    KEYS(route_keys),
    LINE(struct ag_cfg_route),
};

static const struct ag_cfg_key neigh_keys[] = {
    {
	.name = "address",
	.type = AG_CFG_ADDR,
	.flags = AG_CFG_F_REQUIRED,
	.parse = ag_cfg__parse_neigh_addr,
	FIELD(struct ag_cfg_neigh, addr),
	.doc.rule = "inside a port's subnet; unique",
    },
    {
	.name = "mac",
	.type = AG_CFG_STRING,
	.flags = AG_CFG_F_REQUIRED,
	.parse = ag_cfg__parse_neigh_mac,
	FIELD(struct ag_cfg_neigh, mac),
	.doc.rule = "`\"xx:xx:xx:xx:xx:xx\"`, unicast, not zero",
    },
};

static const struct ag_cfg_block neigh_block = {
    .id = "neighbours",
    .path = "edge.dpdk.neighbours[]",
    KEYS(neigh_keys),
    LINE(struct ag_cfg_neigh),
};

static const struct ag_cfg_key dpdk_keys[] = {
    {
	.name = "eal_args",
	.type = AG_CFG_STRINGS,
	FIELD(struct ag_cfg_dpdk, eal_args),
	FIELD2(struct ag_cfg_dpdk, n_eal_args),
	.doc.help =
	    "extra EAL arguments (`\"--no-huge\"`, `\"-m\"`, `\"512\"`, `\"-l\"`, `\"2-5\"` ...)",
    },
    {
	.name = "ports",
	.type = AG_CFG_STRINGS,
	FIELD(struct ag_cfg_dpdk, ports),
	FIELD2(struct ag_cfg_dpdk, n_ports),
	.doc.rule = "≥ 1 when `fastpath = \"dpdk\"`",
	.doc.help = "PCI addresses or vdev specs (`\"net_af_xdp0,iface=e0\"`)",
    },
    {
	.name = "shm_name",
	.type = AG_CFG_NAME,
	.flags = AG_CFG_F_RESTART,
	.sdef = "anygate",
	FIELD(struct ag_cfg_dpdk, shm_name),
	.doc.help = "shared-memory segment holding the tables (`/dev/shm/anygate.d/<shm_name>`, a "
		    "root-only directory)",
    },
    {
	.name = "port_addresses",
	.type = AG_CFG_PREFIXES,
	ENTRIES(1, AG_MAX_IFACES),
	.parse = ag_cfg__parse_port_addrs,
	.doc.rule = "one per port, in the order of `ports`; unique, unicast, len 1-32",
	.doc.help = "each port's own address and subnet: anygate-dp answers ARP for it, sources "
		    "its ARP requests from it, and a next hop is on the port whose subnet holds it",
    },
    {
	.name = "port_roles",
	.type = AG_CFG_STRINGS,
	ENTRIES(1, AG_MAX_IFACES),
	.words = role_words,
	.parse = ag_cfg__parse_port_roles,
	.doc.def = "every port `\"both\"`",
	.doc.rule = "one per port, in the order of `ports`; `\"client\"`, `\"backend\"` or "
		    "`\"both\"`; at least one takes clients and one backends",
	.doc.help = "as `edge.interfaces[].role`: the forward path is taken only from `client` "
		    "(or `both`) ports, the reverse path only from `backend` (or `both`) ports "
		    "(docs/hygiene.md)",
    },
    {
	.name = "routes",
	.type = AG_CFG_LIST,
	ENTRIES(0, AG_MAX_ROUTES),
	LIST_FIELD(struct ag_cfg_dpdk, routes, n_routes),
	.sub = &route_block,
	.doc.help = "where anygate-dp sends what it forwards (backends, clients); longest prefix "
		    "wins; destinations inside a port's subnet need no route",
    },
    {
	.name = "neighbours",
	.type = AG_CFG_LIST,
	ENTRIES(0, AG_MAX_STATIC_NEIGH),
	LIST_FIELD(struct ag_cfg_dpdk, neighbours, n_neighbours),
	.sub = &neigh_block,
	.doc.help = "static ARP entries (never expire, never resolved)",
    },
    {
	.name = "exception_path",
	.type = AG_CFG_ENUM,
	.words = exception_words,
	.def = AG_EXCEPTION_TAP,
	FIELD(struct ag_cfg_dpdk, exception_path),
	.doc.help =
	    "what anygate-dp does with traffic it does not forward (ARP not for its "
	    "addresses, ICMP, traffic for the host): `tap` hands it to the kernel through a "
	    "tap interface per port (`agdp<N>`, the port's MAC and address), `none` drops "
	    "it (counted)",
    },
};

static const struct ag_cfg_block dpdk_block = {
    .id = "dpdk",
    .path = "edge.dpdk",
    KEYS(dpdk_keys),
    LINE(struct ag_cfg_dpdk),
};

static const struct ag_cfg_key edge_keys[] = {
    {
	.name = "name",
	.type = AG_CFG_NAME,
	.flags = AG_CFG_F_REQUIRED | AG_CFG_F_INLINE,
	FIELD(struct ag_cfg_edge, name),
	.doc.help = "this edge, in logs and metrics",
    },
    {
	.name = "hash_seed",
	.type = AG_CFG_INT,
	.min = 0,
	.max = UINT32_MAX,
	.def = 0,
	FIELD(struct ag_cfg_edge, hash_seed),
	.doc.help = "flow hash seed; set the same on every edge so the same flow picks the same "
		    "backend on any edge",
    },
    {
	.name = "fastpath",
	.type = AG_CFG_ENUM,
	.flags = AG_CFG_F_RESTART,
	.words = fastpath_words,
	.def = AG_FASTPATH_XDP,
	FIELD(struct ag_cfg_edge, fastpath),
	.doc.help = "which fast path forwards packets",
    },
    {
	.name = "interfaces",
	.type = AG_CFG_LIST,
	.flags = AG_CFG_F_REQUIRED | AG_CFG_F_RESTART,
	ENTRIES(0, AG_MAX_IFACES),
	LIST_FIELD(struct ag_cfg_edge, ifaces, n_ifaces),
	.sub = &iface_block,
	.parse = ag_cfg__parse_ifaces,
	.same = ag_cfg__same_ifaces,
	.doc.rule = "with `xdp` at least one",
	.doc.help = "where the XDP program attaches",
    },
    {
	.name = "nat_addresses",
	.type = AG_CFG_ADDRS,
	.flags = AG_CFG_F_REQUIRED,
	ENTRIES(1, AG_MAX_NAT_ADDRS),
	.parse = ag_cfg__parse_nat_addrs,
	.doc.rule = "unique, not a VIP",
	.doc.help = "source addresses of translated flows; backends route them back to this edge",
    },
    {
	.name = "nat_ports",
	.type = AG_CFG_RANGE,
	.min = PORT_MIN,
	.max = PORT_MAX,
	.unit = "port",
	.def = AG_NAT_PORT_MIN_DEFAULT,
	.def_hi = AG_NAT_PORT_MAX_DEFAULT,
	FIELD(struct ag_cfg_edge, nat_port_min),
	FIELD2(struct ag_cfg_edge, nat_port_max),
	.doc.help = "NAT source ports",
    },
    {
	.name = "bpffs_dir",
	.type = AG_CFG_PATH,
	.flags = AG_CFG_F_RESTART,
	.sdef = "/sys/fs/bpf/anygate",
	FIELD(struct ag_cfg_edge, bpffs_dir),
	.doc.help = "where the BPF maps are pinned (a bpffs mount)",
    },
    {
	.name = "tcp_idle_s",
	.type = AG_CFG_INT,
	.min = AG_IDLE_MIN,
	.max = AG_IDLE_MAX,
	.def = AG_TCP_IDLE_DEFAULT,
	FIELD(struct ag_cfg_edge, tcp_idle_s),
	.doc.help = "an established TCP flow idle this long is forgotten, and its NAT port free",
    },
    {
	.name = "udp_idle_s",
	.type = AG_CFG_INT,
	.min = AG_IDLE_MIN,
	.max = AG_IDLE_MAX,
	.def = AG_UDP_IDLE_DEFAULT,
	FIELD(struct ag_cfg_edge, udp_idle_s),
	.doc.help = "same for UDP",
    },
    {
	/* after tcp_idle_s: bounded by it */
	.name = "tcp_syn_idle_s",
	.type = AG_CFG_INT,
	.min = AG_IDLE_MIN,
	.max = AG_IDLE_MAX,
	.def = AG_TCP_SYN_IDLE_DEFAULT,
	.parse = ag_cfg__parse_tcp_short,
	FIELD(struct ag_cfg_edge, tcp_syn_idle_s),
	.doc.def = "min(5, tcp_idle_s)",
	.doc.range = "1-tcp_idle_s",
	.doc.help = "a half-open TCP flow (handshake not completed: what a spoofed SYN leaves) "
		    "idle this long is forgotten (docs/flows.md)",
    },
    {
	.name = "tcp_closing_s",
	.type = AG_CFG_INT,
	.min = AG_IDLE_MIN,
	.max = AG_IDLE_MAX,
	.def = AG_TCP_CLOSING_DEFAULT,
	.parse = ag_cfg__parse_tcp_short,
	FIELD(struct ag_cfg_edge, tcp_closing_s),
	.doc.def = "min(10, tcp_idle_s)",
	.doc.range = "1-tcp_idle_s",
	.doc.help = "a TCP flow that saw a RST, or a FIN from both sides, idle this long is "
		    "forgotten; late segments pass until then, its NAT port may serve a new flow "
		    "once the pair is quiet for 2 s",
    },
    {
	.name = "ring_size",
	.type = AG_CFG_INT,
	.flags = AG_CFG_F_RESTART,
	.min = AG_RING_SIZE_MIN,
	.max = AG_RING_SIZE_MAX,
	.check = ag_cfg__check_prime,
	.def = AG_RING_SIZE_DEFAULT,
	FIELD(struct ag_cfg_edge, ring_size),
	.doc.help = "Maglev lookup table size M per listener",
    },
    {
	.name = "max_flows",
	.type = AG_CFG_INT,
	.flags = AG_CFG_F_RESTART,
	.min = AG_FLOWS_MIN,
	.max = AG_FLOWS_MAX,
	.def = AG_FLOWS_DEFAULT,
	FIELD(struct ag_cfg_edge, max_flows),
	.doc.help = "flow table entries (preallocated; the NAT reverse table has as many): a full "
		    "table refuses new flows (drop_flow_table_full), it never evicts a live one",
    },
    {
	.name = "syn_auth_rate",
	.type = AG_CFG_INT,
	.min = 0,
	.max = AG_NEW_FLOW_RATE_MAX,
	.def = AG_SYN_AUTH_RATE_DEFAULT,
	FIELD(struct ag_cfg_edge, syn_auth_rate),
	.doc.help =
	    "new TCP flows per second (per edge, divided over the fast path's CPUs) from "
	    "sources not yet verified; past it the fast path answers a SYN with a challenge "
	    "a real client answers with a RST, which verifies its address (docs/flows.md); "
	    "0 = never challenge. Each such flow holds a NAT port half-open for "
	    "tcp_syn_idle_s: 5000 × 5 s is 25,000 ports at most, under the 64,512 of one "
	    "NAT address towards one backend port",
    },
    {
	.name = "syn_auth_ttl_s",
	.type = AG_CFG_INT,
	.min = AG_IDLE_MIN,
	.max = AG_IDLE_MAX,
	.def = AG_SYN_AUTH_TTL_DEFAULT,
	FIELD(struct ag_cfg_edge, syn_auth_ttl_s),
	.doc.help = "a source that answered a challenge opens new flows without one for this long",
    },
    {
	.name = "udp_flow_rate",
	.type = AG_CFG_INT,
	.min = 0,
	.max = AG_NEW_FLOW_RATE_MAX,
	FIELD(struct ag_cfg_edge, udp_flow_rate),
	.doc.def = "max_flows / (2 × udp_idle_s)",
	.doc.help = "new UDP flows per second (per edge, divided over the fast path's CPUs); past "
		    "it new UDP flows are dropped (drop_udp_budget), established flows never are; "
		    "0 = no limit. Each lives udp_idle_s at least: the default lets UDP alone fill "
		    "at most half the flow table",
    },
    {
	.name = "control_socket",
	.type = AG_CFG_PATH,
	.flags = AG_CFG_F_RESTART,
	.max = SOCK_PATH_MAX,
	.sdef = "/run/anygate/anygated.sock",
	FIELD(struct ag_cfg_edge, control_socket),
	.doc.rule = "the unix socket limit",
	.doc.help = "anygatectl's socket",
    },
    {
	.name = "admin_group",
	.type = AG_CFG_UNIX_GROUP,
	.flags = AG_CFG_F_RESTART,
	.min = 1,
	.max = 32,
	FIELD(struct ag_cfg_edge, admin_group),
	FIELD2(struct ag_cfg_edge, admin_gid),
	.doc.def = "none (root only)",
	.doc.help = "group whose members may change state through the socket",
    },
    {
	.name = "control_group",
	.type = AG_CFG_UNIX_GROUP,
	.flags = AG_CFG_F_RESTART,
	.min = 1,
	.max = 32,
	FIELD(struct ag_cfg_edge, control_group),
	FIELD2(struct ag_cfg_edge, control_gid),
	.doc.def = "none (the daemon's group)",
	.doc.help = "group of the socket file (mode 0660): its members may run read-only commands",
    },
    {
	.name = "state_file",
	.type = AG_CFG_PATH,
	.sdef = "/var/lib/anygate/state.json",
	FIELD(struct ag_cfg_edge, state_file),
	.doc.help = "runtime overrides (weights, dials, drains, drills) kept across restarts; "
		    "written atomically, its directory created if missing (docs/control.md)",
    },
    {
	.name = "metrics",
	.type = AG_CFG_STRING,
	.flags = AG_CFG_F_RESTART,
	.sdef = "127.0.0.1:9464",
	.parse = ag_cfg__parse_metrics,
	FIELD(struct ag_cfg_edge, metrics_addr),
	.doc.rule = "`\"a.b.c.d:port\"`, port 1-65535, or `\"\"`",
	.doc.help = "Prometheus endpoint; `\"\"` disables it",
    },
    {
	.name = "dpdk",
	.type = AG_CFG_GROUP,
	.sub = &dpdk_block,
	FIELD(struct ag_cfg_edge, dpdk),
	.doc.rule = "required when `fastpath = \"dpdk\"`",
	.doc.help = "see below",
    },
};

static const struct ag_cfg_block edge_block = {
    .id = "edge",
    .path = "edge",
    KEYS(edge_keys),
    LINE(struct ag_cfg_edge),
    .finish = ag_cfg__edge_finish,
};

/* ------------------------------------------------------------------------- */
/* accelerators                                                               */

static const struct ag_cfg_key health_keys[] = {
    {
	.name = "protocol",
	.type = AG_CFG_ENUM,
	.words = hc_proto_words,
	.def = AG_HC_TCP,
	FIELD(struct ag_cfg_health, proto),
	.doc.help =
	    "`tcp`: connect succeeds; `http`: GET `path` answers with a status in `status`; "
	    "`udp`: the reply to `send` starts with `expect`",
    },
    {
	.name = "port",
	.type = AG_CFG_INT,
	.min = PORT_MIN,
	.max = PORT_MAX,
	FIELD(struct ag_cfg_health, port),
	.doc.def = "the traffic port",
	.doc.help = "probe port; by default the endpoint's traffic port (the listener's first "
		    "port, after a port override)",
    },
    {
	.name = "path",
	.type = AG_CFG_STRING,
	.only = "http",
	.max = HC_PATH_MAX,
	.unit = "characters",
	.sdef = "/",
	.parse = ag_cfg__parse_http_path,
	FIELD(struct ag_cfg_health, path),
	.doc.rule = "starts with `/`, printable, no spaces",
	.doc.help = "the request path",
    },
    {
	.name = "status",
	.type = AG_CFG_RANGE,
	.only = "http",
	.min = 100,
	.max = 599,
	.unit = "status",
	.def = 200,
	.def_hi = 399,
	FIELD(struct ag_cfg_health, status_min),
	FIELD2(struct ag_cfg_health, status_max),
	.doc.type = "int or range string",
	.doc.help = "expected HTTP status",
    },
    {
	.name = "host",
	.type = AG_CFG_STRING,
	.only = "http",
	.min = 1,
	.max = HC_HOST_MAX,
	.unit = "characters",
	.parse = ag_cfg__parse_http_host,
	FIELD(struct ag_cfg_health, host),
	.doc.def = "the endpoint address",
	.doc.rule = "printable, no spaces",
	.doc.help = "HTTP Host header",
    },
    {
	.name = "send",
	.type = AG_CFG_STRING,
	.flags = AG_CFG_F_REQUIRED,
	.only = "udp",
	.min = 1,
	.max = HC_PAYLOAD_MAX,
	.parse = ag_cfg__parse_payload,
	FIELD(struct ag_cfg_health, send),
	.doc.help = "request payload",
    },
    {
	.name = "expect",
	.type = AG_CFG_STRING,
	.only = "udp",
	.min = 1,
	.max = HC_PAYLOAD_MAX,
	.parse = ag_cfg__parse_payload,
	FIELD(struct ag_cfg_health, expect),
	.doc.def = "any reply",
	.doc.help = "the reply must start with it",
    },
    {
	.name = "interval_ms",
	.type = AG_CFG_INT,
	.min = HC_INTERVAL_MIN,
	.max = HC_INTERVAL_MAX,
	.def = 1000,
	FIELD(struct ag_cfg_health, interval_ms),
	.doc.help = "time between probes of one endpoint",
    },
    {
	.name = "timeout_ms",
	.type = AG_CFG_INT,
	.min = 1,
	.max = HC_INTERVAL_MAX,
	.parse = ag_cfg__parse_timeout,
	FIELD(struct ag_cfg_health, timeout_ms),
	.doc.def = "min(interval_ms, 2000) / 2",
	.doc.range = "1-interval_ms",
	.doc.help = "a probe without an answer by then failed",
    },
    {
	.name = "healthy_threshold",
	.type = AG_CFG_INT,
	.min = HC_THRESHOLD_MIN,
	.max = HC_THRESHOLD_MAX,
	.def = 2,
	FIELD(struct ag_cfg_health, healthy_threshold),
	.doc.help = "consecutive successes to go up",
    },
    {
	.name = "unhealthy_threshold",
	.type = AG_CFG_INT,
	.min = HC_THRESHOLD_MIN,
	.max = HC_THRESHOLD_MAX,
	.def = 2,
	FIELD(struct ag_cfg_health, unhealthy_threshold),
	.doc.help = "consecutive failures to go down",
    },
};

static const struct ag_cfg_block health_block = {
    .id = "health_check",
    .path = "...health_check",
    .selector = "protocol",
    KEYS(health_keys),
    LINE(struct ag_cfg_health),
    .finish = ag_cfg__health_finish,
};

static const struct ag_cfg_key override_keys[] = {
    {
	.name = "listener_port",
	.type = AG_CFG_INT,
	.flags = AG_CFG_F_REQUIRED,
	.min = PORT_MIN,
	.max = PORT_MAX,
	FIELD(struct ag_cfg_port_override, listener_port),
	.doc.rule = "one of the listener's ports; once per group",
	.doc.help = "the port clients connect to",
    },
    {
	.name = "endpoint_port",
	.type = AG_CFG_INT,
	.flags = AG_CFG_F_REQUIRED,
	.min = PORT_MIN,
	.max = PORT_MAX,
	FIELD(struct ag_cfg_port_override, endpoint_port),
	.doc.help = "the port the endpoints of this group listen on",
    },
};

static const struct ag_cfg_block override_block = {
    .id = "port_overrides",
    .path = "...port_overrides[]",
    KEYS(override_keys),
    LINE(struct ag_cfg_port_override),
};

static const struct ag_cfg_key endpoint_keys[] = {
    {
	.name = "address",
	.type = AG_CFG_ADDR,
	.flags = AG_CFG_F_REQUIRED,
	FIELD(struct ag_cfg_endpoint, addr),
	.doc.rule = "unique within the group",
    },
    {
	.name = "weight",
	.type = AG_CFG_INT,
	.check = ag_config__check_weight,
	.def = 128,
	FIELD(struct ag_cfg_endpoint, weight),
	.doc.help = "share within the group; 0 = no new flows (pinned flows continue)",
    },
};

static const struct ag_cfg_block endpoint_block = {
    .id = "endpoints",
    .path = "...endpoints[]",
    KEYS(endpoint_keys),
    LINE(struct ag_cfg_endpoint),
};

static const struct ag_cfg_key group_keys[] = {
    {
	.name = "region",
	.type = AG_CFG_NAME,
	.flags = AG_CFG_F_REQUIRED | AG_CFG_F_INLINE,
	FIELD(struct ag_cfg_group, region),
	.doc.rule = "unique within the listener",
    },
    {
	.name = "traffic_dial",
	.type = AG_CFG_INT,
	.check = ag_config__check_dial,
	.def = 100,
	FIELD(struct ag_cfg_group, traffic_dial),
	.doc.help = "percent of the new flows this group is nearest for that it takes; the rest "
		    "spills to the next nearest group",
    },
    {
	.name = "health_check",
	.type = AG_CFG_GROUP,
	.sub = &health_block,
	FIELD(struct ag_cfg_group, health),
	.doc.def = "TCP connect",
	.doc.rule = "see below",
    },
    {
	.name = "port_overrides",
	.type = AG_CFG_LIST,
	LIST_FIELD(struct ag_cfg_group, overrides, n_overrides),
	.sub = &override_block,
	.parse = ag_cfg__parse_overrides,
	TOTAL(AG_MAX_PORT_OVERRIDES, "groups"),
	.doc.help = "rewrite a listener port to another port at the endpoints",
    },
    {
	.name = "endpoints",
	.type = AG_CFG_LIST,
	.flags = AG_CFG_F_REQUIRED,
	ENTRIES(1, AG_MAX_ENDPOINTS_PER_GROUP),
	LIST_FIELD(struct ag_cfg_group, endpoints, n_endpoints),
	.sub = &endpoint_block,
	.parse = ag_cfg__parse_endpoints,
	TOTAL(AG_MAX_BACKENDS, "groups"),
    },
};

static const struct ag_cfg_block group_block = {
    .id = "endpoint_groups",
    .path = "...endpoint_groups[]",
    KEYS(group_keys),
    LINE(struct ag_cfg_group),
    .finish = ag_cfg__group_finish,
};

/* A listener's ports: each entry a port or a range of ports. */
static const struct ag_cfg_key port_range = {
    .name = "port",
    .type = AG_CFG_RANGE,
    .min = PORT_MIN,
    .max = PORT_MAX,
    .unit = "port",
};

static const struct ag_cfg_key listener_keys[] = {
    {
	.name = "protocol",
	.type = AG_CFG_ENUM,
	.flags = AG_CFG_F_REQUIRED,
	.words = proto_words,
	.values = proto_values,
	FIELD(struct ag_cfg_listener, proto),
    },
    {
	.name = "ports",
	.type = AG_CFG_RANGES,
	.flags = AG_CFG_F_REQUIRED,
	AT_LEAST(1),
	.elem = &port_range,
	.parse = ag_cfg__parse_ports,
	.doc.help = "client-visible ports. Two listeners of one accelerator with the same "
		    "protocol may not share a port; TCP 80 and UDP 80 are fine",
    },
    {
	.name = "client_affinity",
	.type = AG_CFG_ENUM,
	.words = affinity_words,
	.values = affinity_values,
	.def = 0,
	FIELD(struct ag_cfg_listener, affinity),
	.doc.help = "`none`: each flow is balanced on its own (5-tuple hash); `source_ip`: every "
		    "flow of a client address goes to the same backend",
    },
    {
	.name = "failure_policy",
	.type = AG_CFG_ENUM,
	.words = failure_words,
	.def = AG_FAIL_OPEN,
	FIELD(struct ag_cfg_listener, failure_policy),
	.doc.help = "when no endpoint of the listener is healthy: `fail_open` forwards anyway "
		    "(new flows spread by weight over the nearest group not drilled, flows on "
		    "its endpoints kept; shown as `failing_open`, counted as "
		    "`fail_open_new_flows`), `drop` drops new flows (`drop_no_backend`)",
    },
    {
	.name = "overprovisioning",
	.type = AG_CFG_FLOAT,
	.min = 1,
	.max = 10,
	.fdef = 1.4,
	FIELD(struct ag_cfg_listener, overprovisioning),
	.doc.help = "a group's capacity is its healthy share × this factor: a partly healthy "
		    "group spills gradually to the next",
    },
    {
	.name = "endpoint_groups",
	.type = AG_CFG_LIST,
	.flags = AG_CFG_F_REQUIRED,
	ENTRIES(1, AG_MAX_GROUPS_PER_LISTENER),
	LIST_FIELD(struct ag_cfg_listener, groups, n_groups),
	.sub = &group_block,
	.parse = ag_cfg__parse_groups,
	TOTAL(AG_MAX_GROUPS, "listeners"),
	.doc.help = "one per region",
    },
    {
	/* after the groups: it names their regions */
	.name = "region_order",
	.type = AG_CFG_STRINGS,
	.parse = ag_cfg__parse_region_order,
	.doc.def = "none (by RTT)",
	.doc.rule = "each the region of one of this listener's groups, no repeats",
	.doc.help = "pins the order of regions instead of the measured probe RTT; regions not "
		    "listed come after the listed ones",
    },
};

static const struct ag_cfg_block listener_block = {
    .id = "listeners",
    .path = "accelerators[].listeners[]",
    KEYS(listener_keys),
    LINE(struct ag_cfg_listener),
};

static const struct ag_cfg_key accel_keys[] = {
    {
	.name = "name",
	.type = AG_CFG_NAME,
	.flags = AG_CFG_F_REQUIRED | AG_CFG_F_INLINE,
	.parse = ag_cfg__parse_accel_name,
	FIELD(struct ag_cfg_accelerator, name),
	.doc.rule = "unique",
	.doc.help = "the service, in logs, metrics and anygatectl",
    },
    {
	.name = "addresses",
	.type = AG_CFG_ADDRS,
	.flags = AG_CFG_F_REQUIRED,
	ENTRIES(1, AG_MAX_VIPS),
	.parse = ag_cfg__parse_vips,
	TOTAL(AG_MAX_VIPS, "accelerators"),
	.doc.rule = "unique; a VIP may belong to one accelerator only and may not be a NAT "
		    "address",
	.doc.help = "the static entry addresses (VIPs)",
    },
    {
	.name = "listeners",
	.type = AG_CFG_LIST,
	.flags = AG_CFG_F_REQUIRED,
	AT_LEAST(1),
	LIST_FIELD(struct ag_cfg_accelerator, listeners, n_listeners),
	.sub = &listener_block,
	.parse = ag_cfg__parse_listeners,
	TOTAL(AG_MAX_LISTENERS, "accelerators"),
    },
};

static const struct ag_cfg_block accel_block = {
    .id = "accelerators",
    .path = "accelerators[]",
    KEYS(accel_keys),
    LINE(struct ag_cfg_accelerator),
};

/* ------------------------------------------------------------------------- */
/* the file                                                                   */

static const struct ag_cfg_key root_keys[] = {
    {
	.name = "edge",
	.type = AG_CFG_GROUP,
	.flags = AG_CFG_F_REQUIRED,
	.sub = &edge_block,
	FIELD(struct ag_config, edge),
    },
    {
	.name = "accelerators",
	.type = AG_CFG_LIST,
	.flags = AG_CFG_F_REQUIRED,
	AT_LEAST(1),
	LIST_FIELD(struct ag_config, accels, n_accels),
	.sub = &accel_block,
	.parse = ag_cfg__parse_accels,
    },
};

const struct ag_cfg_block ag_cfg_root = {
    .path = "",
    KEYS(root_keys),
};
