/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygate configuration: parsed from a libconfig file into a fresh struct,
 * validated whole (every error collected as "file:line: key: problem"), and only
 * then handed to the caller. `anygated --check FILE` runs exactly this code.
 */
#ifndef AG_CONFIG_H
#define AG_CONFIG_H

#include <net/if.h> /* IFNAMSIZ; the libc header, so users may include it too */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h> /* gid_t */

#include "abi.h" /* AG_ROLE_* */
#include "consts.h"

/* Collected problems: each message is complete ("file:line: key: problem"). */
struct ag_errors {
	char **msgs;
	unsigned int count;
	unsigned int cap;
};

void ag_errors__init(struct ag_errors *errs);
void ag_errors__free(struct ag_errors *errs);
/* line <= 0 prints "file: key: problem". Allocation failure is recorded as a last message. */
/* key NULL prints "file:line: problem" (a problem of the whole file, e.g. cannot read it). */
void ag_errors__add(struct ag_errors *errs, const char *file, int line, const char *key,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* True when the last message says memory ran out and later problems were dropped. */
bool ag_errors__oom(const struct ag_errors *errs);

enum ag_fastpath_kind {
	AG_FASTPATH_XDP = 0,
	AG_FASTPATH_DPDK = 1,
};

enum ag_iface_role {
	AG_IFACE_CLIENT = 0,  /* clients reach VIPs through it */
	AG_IFACE_BACKEND = 1, /* backends are reached through it */
	AG_IFACE_BOTH = 2,
};

struct ag_cfg_iface {
	char name[IFNAMSIZ];
	enum ag_iface_role role;
	int line;
};

/* What a fast path is told of a configured role: AG_ROLE_* bits (abi.h). */
static inline uint8_t ag_cfg__role_bits(enum ag_iface_role role)
{
	if (role == AG_IFACE_CLIENT)
		return AG_ROLE_CLIENT;
	if (role == AG_IFACE_BACKEND)
		return AG_ROLE_BACKEND;
	return AG_ROLE_CLIENT | AG_ROLE_BACKEND;
}

/* The config word of AG_ROLE_* bits, for logs. */
static inline const char *ag_cfg__roles_name(uint8_t bits)
{
	if (bits == AG_ROLE_CLIENT)
		return "client";
	if (bits == AG_ROLE_BACKEND)
		return "backend";
	return bits ? "both" : "none";
}

enum ag_hc_proto {
	AG_HC_TCP = 0,	/* connect() succeeds */
	AG_HC_HTTP = 1, /* GET path, status within [status_min, status_max] */
	AG_HC_UDP = 2,	/* send `send`, reply must start with `expect` */
};

struct ag_cfg_health {
	enum ag_hc_proto proto;
	uint16_t port; /* 0: the endpoint's traffic port (first listener port, after overrides) */
	char *path;    /* HTTP only; default "/" */
	char *host;    /* HTTP Host header; default: endpoint address */
	uint16_t status_min; /* HTTP expected status range, default 200-399 */
	uint16_t status_max;
	char *send;		     /* UDP request payload */
	char *expect;		     /* UDP expected reply prefix */
	uint32_t interval_ms;	     /* 100 ms - 30 s, default 1000 */
	uint32_t timeout_ms;	     /* 1 ms - interval_ms, default min(interval, 2000)/2 */
	uint8_t healthy_threshold;   /* consecutive successes to go up (rise), 1-10, default 2 */
	uint8_t unhealthy_threshold; /* consecutive failures to go down (fall), 1-10, default 2 */
	int line;
};

struct ag_cfg_endpoint {
	uint32_t addr;	/* network order */
	uint8_t weight; /* 0-255, default 128; 0 = no new flows */
	int line;
};

struct ag_cfg_port_override {
	uint16_t listener_port; /* host order */
	uint16_t endpoint_port;
	int line;
};

struct ag_cfg_group {
	char region[AG_NAME_MAX];
	uint8_t traffic_dial; /* 0-100, default 100 */
	struct ag_cfg_health health;
	struct ag_cfg_port_override *overrides;
	unsigned int n_overrides;
	struct ag_cfg_endpoint *endpoints;
	unsigned int n_endpoints;
	int line;
};

struct ag_cfg_port_range {
	uint16_t first; /* host order, inclusive */
	uint16_t last;
	int line;
};

enum ag_failure_policy {
	AG_FAIL_OPEN = 0, /* nothing healthy: spread over the nearest group's endpoints */
	AG_FAIL_DROP = 1, /* nothing healthy: drop new flows */
};

struct ag_cfg_listener {
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
	struct ag_cfg_port_range *ranges;
	unsigned int n_ranges;
	uint8_t affinity;		       /* enum ag_affinity (abi.h) */
	enum ag_failure_policy failure_policy; /* default fail_open */
	double overprovisioning;	       /* 1.0-10.0, default 1.4 */
	char **region_order;		       /* operator-pinned order of regions, NULL = by RTT */
	unsigned int n_region_order;
	struct ag_cfg_group *groups;
	unsigned int n_groups;
	int line;
};

struct ag_cfg_accelerator {
	char name[AG_NAME_MAX];
	uint32_t *addrs; /* network order */
	unsigned int n_addrs;
	struct ag_cfg_listener *listeners;
	unsigned int n_listeners;
	int line;
};

/* An IPv4 address with a prefix length: a port's address and subnet, a route's destination. */
struct ag_cfg_prefix {
	uint32_t addr; /* network order */
	uint8_t len;   /* 0-32 */
	int line;
};

struct ag_cfg_route {
	struct ag_cfg_prefix to; /* host bits zero; 0.0.0.0/0 = default */
	uint32_t via;		 /* next hop, network order, inside a port's subnet */
	int line;
};

struct ag_cfg_neigh {
	uint32_t addr; /* network order, inside a port's subnet */
	uint8_t mac[6];
	int line;
};

enum ag_exception_path {
	AG_EXCEPTION_TAP = 0,  /* traffic for the host goes to a tap per port (default) */
	AG_EXCEPTION_NONE = 1, /* and is dropped (counted) */
};

struct ag_cfg_dpdk {
	char **eal_args; /* extra EAL arguments */
	unsigned int n_eal_args;
	char **ports; /* PCI addresses or vdev specs, e.g. "net_af_xdp0,iface=e0" */
	unsigned int n_ports;
	char *shm_name; /* shared-memory segment name, default "anygate" */
	/* port_addrs[i] is port i's own address and subnet (ARP, next hops); 0 or n_ports */
	struct ag_cfg_prefix *port_addrs;
	unsigned int n_port_addrs;
	struct ag_cfg_route *routes; /* up to AG_MAX_ROUTES */
	unsigned int n_routes;
	struct ag_cfg_neigh *neighbours; /* static ARP entries, up to AG_MAX_STATIC_NEIGH */
	unsigned int n_neighbours;
	enum ag_exception_path exception_path;
	/* port_roles[i]: which way traffic may arrive on port i; NULL: every port both */
	enum ag_iface_role *port_roles;
	unsigned int n_port_roles;
	int line;
};

struct ag_cfg_edge {
	char name[AG_NAME_MAX];
	uint32_t hash_seed;		/* same on every edge */
	enum ag_fastpath_kind fastpath; /* "xdp" (default) or "dpdk" */
	struct ag_cfg_iface *ifaces;
	unsigned int n_ifaces;
	uint32_t *nat_addrs; /* network order, 1..AG_MAX_NAT_ADDRS */
	unsigned int n_nat_addrs;
	uint16_t nat_port_min; /* host order, default 1024-65535 */
	uint16_t nat_port_max;
	char *bpffs_dir;	 /* default "/sys/fs/bpf/anygate" */
	uint32_t tcp_idle_s;	 /* default 340 */
	uint32_t udp_idle_s;	 /* default 30 */
	uint32_t tcp_syn_idle_s; /* half-open TCP; default min(5, tcp_idle_s) */
	uint32_t tcp_closing_s;	 /* RST, or FIN both ways; default min(10, tcp_idle_s) */
	uint32_t ring_size;	 /* lookup table size M, prime, default 65537 */
	uint32_t max_flows;	 /* flow table entries, default AG_FLOWS_DEFAULT */
	uint32_t syn_auth_rate;	 /* unverified new TCP flows/s before the SYN challenge; 0 never */
	uint32_t syn_auth_ttl_s; /* a verified source stays verified this long */
	uint32_t
	    udp_flow_rate;     /* new UDP flows/s; 0 no limit; default max_flows / (2 udp_idle_s) */
	char *control_socket;  /* default "/run/anygate/anygated.sock" */
	char *admin_group;     /* group allowed to change state, NULL = root only */
	char *control_group;   /* group of the control socket file, NULL = the daemon's */
	gid_t admin_gid;       /* admin_group resolved at load; (gid_t)-1 none */
	gid_t control_gid;     /* control_group resolved at load; (gid_t)-1 none */
	char *state_file;      /* runtime overrides, default "/var/lib/anygate/state.json" */
	char *metrics_addr;    /* "127.0.0.1:9464" (default); "" disables */
	uint32_t metrics_ip;   /* parsed from metrics_addr, network order */
	uint16_t metrics_port; /* host order */
	struct ag_cfg_dpdk dpdk;
	int line;
};

struct ag_config {
	char *path;
	struct ag_cfg_edge edge;
	struct ag_cfg_accelerator *accels;
	unsigned int n_accels;
};

/*
 * Parse and validate `path`. On success returns the config (errs untouched).
 * On any error returns NULL with errno = EINVAL (or ENOENT/ENOMEM ...) and every
 * problem in errs; nothing partial is returned.
 */
struct ag_config *ag_config__load(const char *path, struct ag_errors *errs);
void ag_config__free(struct ag_config *cfg);

/*
 * ag_config__load for command-line programs: every problem printed on stderr,
 * one "file:line: key: problem" a line (or "file: reason"). NULL on failure.
 */
struct ag_config *ag_config__load_or_report(const char *path);

/*
 * What a file of mode m is, when not a regular file, for "PATH: a FIFO, not a
 * regular file: not read": the loader's and `check FILE`'s refusals.
 */
const char *ag_config__file_kind(mode_t m);

/*
 * The keys a reload cannot change (marked "restart only" in docs/config.md:
 * edge.ring_size, edge.interfaces, ...): 0 when new keeps every one of them as
 * old has it, else -EINVAL with "file:line: key: changes only with a restart
 * (running: unchanged)" added to errs for each (file and line: new's edge).
 */
int ag_config__check_restart_only(const struct ag_config *old, const struct ag_config *new,
				  struct ag_errors *errs);

/*
 * Single-field validators shared by the config file and the control socket, so
 * the same value is refused with the same words either way. Each returns NULL
 * when valid, else a static problem string such as "must be 0-255".
 */
const char *ag_config__check_weight(long long v);
const char *ag_config__check_dial(long long v);
/* Accelerator, region, edge and shm names: 1-63 characters of A-Z a-z 0-9 . _ - */
const char *ag_config__check_name(const char *s);

/* Total expanded listener keys (VIPs x ports) of a config: must be <= AG_MAX_LISTENER_KEYS. */
unsigned long ag_config__listener_keys(const struct ag_config *cfg);

#endif /* AG_CONFIG_H */
