/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * THE contract between anygated and the fast paths (XDP maps, DPDK shared
 * memory). Every structure that crosses the BPF/user or process boundary is
 * defined here and nowhere else. Byte order is in the field type: __be* fields
 * are network order, everything else is host order. Padding is explicit and
 * must be zero (keys are hashed and compared as bytes).
 *
 * Bump AG_ABI_VERSION on any layout or meaning change: anygated refuses to
 * adopt pinned maps or a segment written under another version.
 */
#ifndef AG_CORE_ABI_H
#define AG_CORE_ABI_H

#include <linux/types.h>
#include "consts.h"

#define AG_ABI_VERSION 4

/* --- map names (BPF object names, and pin file names under bpffs_dir) --- */
#define AG_MAP_SETTINGS	 "ag_settings"
#define AG_MAP_LISTENERS "ag_listeners"
#define AG_MAP_LSTATE	 "ag_lstate"
#define AG_MAP_LOOKUP	 "ag_lookup"
#define AG_MAP_BACKENDS	 "ag_backends"
#define AG_MAP_PORT_OVR	 "ag_port_ovr"
#define AG_MAP_VIPS	 "ag_vips"
#define AG_MAP_FLOWS	 "ag_flows"
#define AG_MAP_NAT_REV	 "ag_nat_rev"
#define AG_MAP_LSTATS	 "ag_lstats"
#define AG_MAP_BSTATS	 "ag_bstats"
#define AG_MAP_RSTATS	 "ag_rstats"
#define AG_MAP_NEXTHOPS	 "ag_nexthops"
#define AG_MAP_CPU	 "ag_cpu"
#define AG_MAP_SYN_AUTH	 "ag_syn_auth"
#define AG_MAP_IFACES	 "ag_ifaces"

/* --- ag_settings: ARRAY, one entry, written by anygated before traffic --- */
struct ag_settings {
	__u32 abi_version;    /* AG_ABI_VERSION of the writer */
	__u32 hash_seed;      /* same on every edge: same flow -> same slot */
	__u32 ring_size;      /* M, prime; lookup index = slot * M + hash % M */
	__u32 nat_addr_count; /* valid entries of nat_addrs, >= 1 for NAT */
	__be32 nat_addrs[AG_MAX_NAT_ADDRS];
	__u64 tcp_idle_ns; /* an established TCP flow idle longer than this is over */
	__u64 udp_idle_ns;
	__u16 nat_port_min; /* inclusive NAT source port range */
	__u16 nat_port_max;
	__u32 flags; /* reserved, zero */
	/* A TCP flow whose handshake has not completed (half-open) lives this long idle. */
	__u64 tcp_syn_idle_ns;
	/* A TCP flow that saw a RST, or a FIN from both sides, lives this long idle. */
	__u64 tcp_closing_ns;
	/*
	 * A flow on a backend marked DOWN whose replies are this recent is kept:
	 * the backend is overloaded (probes time out), not gone. 0: never kept.
	 */
	__u64 backend_alive_ns;
	/*
	 * New-flow budgets, per CPU (anygate-dp: per lcore) per second; 0 = no
	 * limit. syn_cpu_rate: new TCP flows from sources not yet verified, past
	 * which a SYN is answered with a SYN authentication challenge (flow.h).
	 * udp_cpu_rate: new UDP flows, past which they are dropped.
	 */
	__u32 syn_cpu_rate;
	__u32 udp_cpu_rate;
	__u64 syn_auth_secret; /* keys the SYN challenge cookies; random per start */
	__u64 syn_auth_ttl_ns; /* a verified source stays verified this long */
};
_Static_assert(sizeof(struct ag_settings) == 152, "ag_settings layout");

/* --- ag_vips: HASH __be32 vip -> __u32 flags; marks VIPs (what no listener takes drops) --- */

/*
 * --- ag_ifaces: ARRAY [AG_MAX_IFINDEX] keyed by ifindex, written by anygated
 * for each interface before it attaches the program there (anygate-dp keeps
 * one per port). Roles say which way a packet may arrive on it (the forward
 * path on client, the reverse path on backend); mac is its own unicast
 * address (an IPv4 frame to any other unicast address is not ours). roles 0:
 * not registered (no role; its frames are not checked at L2). Entry 0 is
 * never written (no interface has ifindex 0): the program reads it for an
 * ifindex past the table.
 */
#define AG_ROLE_CLIENT	0x1 /* clients reach VIPs through it */
#define AG_ROLE_BACKEND 0x2 /* backends' replies to NAT addresses arrive on it */

struct ag_iface {
	__u8 mac[6];
	__u8 roles; /* AG_ROLE_* */
	__u8 pad;
};
_Static_assert(sizeof(struct ag_iface) == 8, "ag_iface layout");

/* --- ag_listeners: HASH, one key per (vip, proto, port); port ranges expanded --- */
struct ag_listener_key {
	__be32 vip;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};
_Static_assert(sizeof(struct ag_listener_key) == 8, "ag_listener_key layout");
/* value: __u32 listener id, index into ag_lstate */

enum ag_affinity {
	AG_AFFINITY_NONE = 0,	   /* hash of the 5-tuple */
	AG_AFFINITY_SOURCE_IP = 1, /* hash of (client address, vip, proto) */
};

#define AG_LF_ACTIVE 0x1 /* listener takes new flows */

/*
 * --- ag_lstate: ARRAY [AG_MAX_LISTENERS], BPF_F_MMAPABLE ---
 * slot is the live lookup slot. anygated writes a new table into the other
 * slot of the pair, then switches `slot` with one aligned 32-bit store.
 */
struct ag_listener_state {
	__u32 slot;	  /* live lookup slot, 2 * id or 2 * id + 1 */
	__u32 generation; /* bumped on every publish, for observers */
	__u8 affinity;	  /* enum ag_affinity */
	__u8 flags;	  /* AG_LF_* */
	__u16 pad;
	__u32 pad2;
};
_Static_assert(sizeof(struct ag_listener_state) == 16, "ag_listener_state layout");

/*
 * --- ag_lookup: ARRAY [AG_LOOKUP_BUCKETS(ring_size)] of ag_lookup_bucket,
 * BPF_F_MMAPABLE. Logically one flat __u32 array of AG_LOOKUP_SLOTS * ring_size
 * backend ids (slot s owns entries [s * ring_size, (s + 1) * ring_size)); entry i
 * lives in bucket i / AG_LOOKUP_LANES, lane i % AG_LOOKUP_LANES.
 * Why buckets: an ARRAY map stores each element in round_up(value_size, 8)
 * bytes, so __u32 elements would sit 8 bytes apart in the mmap (twice the
 * memory, and no flat view). 64-byte buckets are dense: the mmap IS the flat
 * __u32 array, and one lookup touches one cache line.
 * AG_BACKEND_NONE in an entry: no backend (policy drop).
 */
#define AG_LOOKUP_LANES 16
#define AG_LOOKUP_BUCKETS(ring_size)                                                               \
	((AG_LOOKUP_SLOTS * (ring_size) + AG_LOOKUP_LANES - 1) / AG_LOOKUP_LANES)

struct ag_lookup_bucket {
	__u32 backend[AG_LOOKUP_LANES];
};
_Static_assert(sizeof(struct ag_lookup_bucket) == 64, "ag_lookup_bucket layout");

/* --- ag_backends: ARRAY [AG_MAX_BACKENDS] --- */
enum ag_backend_state {
	AG_BACKEND_UNUSED = 0,
	AG_BACKEND_UP = 1,
	AG_BACKEND_DRAINING = 2, /* no new flows; pinned flows continue */
	AG_BACKEND_DOWN = 3,	 /* pinned flows: TCP gets RST, UDP re-steered (a flow
				  * whose backend_addr is not this entry's addr is left
				  * alone: the id was reused by a reload) */
};

enum ag_fwd_mode {
	AG_MODE_NAT = 0, /* DNAT + SNAT: unmodified backends */
};

struct ag_backend {
	__be32 addr;
	__u32 group_id; /* key of ag_port_ovr */
	__u8 state;	/* enum ag_backend_state */
	__u8 mode;	/* enum ag_fwd_mode */
	__u16 pad;
	__u32 pad2;
};
_Static_assert(sizeof(struct ag_backend) == 16, "ag_backend layout");

/* --- ag_port_ovr: HASH (group, listener port) -> endpoint port --- */
struct ag_port_ovr_key {
	__u32 group_id;
	__be16 port; /* listener (client-visible) port */
	__u16 pad;
};
_Static_assert(sizeof(struct ag_port_ovr_key) == 8, "ag_port_ovr_key layout");
/* value: __be16 endpoint port in a __u32 (low half of the bytes, rest zero) */
struct ag_port_ovr {
	__be16 port;
	__u16 pad;
};
_Static_assert(sizeof(struct ag_port_ovr) == 4, "ag_port_ovr layout");

/*
 * An address of either family, so that flow keys and entries take IPv6 without
 * another layout change: IPv4 in v4 (the first word), the other 12 bytes zero.
 */
union ag_addr {
	__be32 v4;
	__be32 w[4];
	__u8 b[16];
};
_Static_assert(sizeof(union ag_addr) == 16, "ag_addr layout");

#define AG_FAMILY_IPV4 4
#define AG_FAMILY_IPV6 6

/*
 * --- ag_flows: HASH key = 5-tuple of the client packet -> ag_flow ---
 * --- ag_nat_rev: HASH key = 5-tuple of the backend's reply -> ag_nat_rev ---
 * Preallocated, not LRU: nothing is evicted behind the fast path's back. A
 * flow and its reverse entry are created and removed together; a full table
 * refuses new flows (drop_flow_table_full). Expired pairs are removed by the
 * packet that finds them and by a sweeper (anygated for XDP, anygate-dp).
 */
struct ag_flow_key {
	union ag_addr saddr;
	union ag_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family; /* AG_FAMILY_* */
	__u8 pad[2];
};
_Static_assert(sizeof(struct ag_flow_key) == 40, "ag_flow_key layout");

/*
 * Next hop of a flow direction, cached from bpf_fib_lookup() so that a packet
 * of an established flow skips the lookup (about half its cost in XDP). It is
 * filled when the flow is created (the reverse entry: on the first reply),
 * looked up again whenever last_seen is refreshed, i.e. at most once per
 * AG_LAST_SEEN_GRANULARITY_NS: a route or neighbour change reaches established
 * flows within a second. A packet longer than max_len (IPv4 total length)
 * also looks up again, so the route's MTU is still checked by the kernel.
 * ifindex 0: nothing cached. The DPDK fast path may ignore it.
 */
struct ag_nexthop {
	__u32 ifindex; /* egress interface; 0 = look the route up */
	__u16 max_len; /* largest IPv4 total length checked against the route */
	__u8 dmac[6];
	__u8 smac[6];
	__u16 pad;
};
_Static_assert(sizeof(struct ag_nexthop) == 20, "ag_nexthop layout");

/*
 * TCP state of a flow: the events seen so far, as bits that are only ever
 * added (atomically: both directions of a flow may be on different CPUs). The
 * state and its idle timeout follow from them (flow.h). UDP flows keep 0.
 */
#define AG_TCP_SYN_C	0x01 /* the client's SYN: every TCP flow starts with it */
#define AG_TCP_SYNACK_B 0x02 /* the backend's SYN-ACK */
#define AG_TCP_EST	0x04 /* the client's ACK after the SYN-ACK: established */
#define AG_TCP_FIN_C	0x08 /* FIN from the client */
#define AG_TCP_FIN_B	0x10 /* FIN from the backend */
#define AG_TCP_RST	0x20 /* RST from either side */

struct ag_flow {
	__u64 last_seen_ns;	    /* bpf_ktime_get_ns(), refreshed at most once per second */
	union ag_addr backend_addr; /* copied at creation: a pinned flow keeps its target */
	union ag_addr nat_addr;
	__u32 backend_id;
	__u16 listener_id;
	__be16 nat_port;
	__be16 backend_port;
	__u16 pad;
	__u32 tcp;	      /* AG_TCP_* */
	struct ag_nexthop nh; /* towards the backend */
	__u32 pad2;
};
_Static_assert(sizeof(struct ag_flow) == 80, "ag_flow layout");

/*
 * The backend has replied at least once: last_seen_ns is then the time of a
 * reply, not of the flow's creation (which it also stamps, so that a claim in
 * progress is never taken for an orphan).
 */
#define AG_REV_REPLIED 0x01

struct ag_nat_rev {
	__u64 last_seen_ns; /* replies (creation until the first), refreshed every 100 ms at most */
	union ag_addr client_addr;
	union ag_addr vip;
	__be16 client_port;
	__be16 vip_port;
	__u32 backend_id;
	__u16 listener_id;
	__u8 family;	      /* AG_FAMILY_* of the client side */
	__u8 flags;	      /* AG_REV_* */
	struct ag_nexthop nh; /* towards the client */
};
_Static_assert(sizeof(struct ag_nat_rev) == 72, "ag_nat_rev layout");

/*
 * --- ag_nexthops: ARRAY [AG_MAX_BACKENDS * AG_MAX_NAT_ADDRS], written by the
 * XDP program: the next hop from NAT address n to backend b at index
 * b * AG_MAX_NAT_ADDRS + n, so that a new flow needs no route lookup. Looked
 * up again when older than AG_LAST_SEEN_GRANULARITY_NS.
 */
struct ag_nexthop_cache {
	__u64 stamp_ns;	     /* when nh was looked up; 0: never */
	__be32 backend_addr; /* what nh was looked up for (an id may be reused) */
	__be32 nat_addr;
	struct ag_nexthop nh;
	__u32 pad;
};
_Static_assert(sizeof(struct ag_nexthop_cache) == 40, "ag_nexthop_cache layout");

/*
 * --- ag_cpu: PERCPU_ARRAY, one entry: what each CPU (anygate-dp: lcore) keeps
 * for new flows of its own: the new-flow budgets (token buckets) and where
 * its NAT port cursor stands.
 */
struct ag_bucket {
	__u64 stamp_ns;	    /* tokens were counted up to this time; 0: never */
	__u64 tokens_milli; /* thousandths of a new flow, at most one second's worth */
};

struct ag_cpu_state {
	struct ag_bucket syn; /* new TCP flows from unverified sources (syn_cpu_rate) */
	struct ag_bucket udp; /* new UDP flows (udp_cpu_rate) */
	__u32 nat_cursor;     /* offset into the NAT port range of the next claim */
	__u32 pad;
	__u64 pad2;
};
_Static_assert(sizeof(struct ag_cpu_state) == 48, "ag_cpu_state layout");

/*
 * --- ag_syn_auth: LRU_HASH union ag_addr (client address) -> __u64 time it
 * proved itself (answered a SYN challenge). LRU on purpose: losing an entry
 * only costs that client one more challenge.
 */

/* --- stats: PERCPU_ARRAY, summed by anygated --- */
/* ag_lstats [AG_MAX_LISTENERS], ag_bstats [AG_MAX_BACKENDS] */
struct ag_traffic_stats {
	__u64 packets; /* client -> backend */
	__u64 bytes;
	__u64 new_flows;
	__u64 ret_packets; /* backend -> client */
	__u64 ret_bytes;
	__u64 pad[3];
};
_Static_assert(sizeof(struct ag_traffic_stats) == 64, "ag_traffic_stats layout");

/*
 * ag_rstats [AG_R__MAX]: one counter per reason a packet was not simply
 * forwarded. X(name, "metric label"), in three groups, in this order:
 * PASS_* (handed to the kernel), DROP_* (dropped), then AG_REASONS_ACT: the
 * fast path acted on the packet itself (answered it, or moved its flow and
 * forwarded it).
 */
#define AG_REASONS_PASS(X)                                                                         \
	X(PASS_NOT_IPV4, "pass_not_ipv4")	/* ARP, IPv6, other ethertypes */                  \
	X(PASS_NOT_L4, "pass_not_tcp_udp")	/* ICMP and other protocols */                     \
	X(PASS_NO_LISTENER, "pass_no_listener") /* not a VIP / port we serve */                    \
	X(PASS_FRAGMENT, "pass_fragment")	/* fragment not for a VIP */                       \
	X(PASS_NO_NEIGH, "pass_no_neigh")	/* kernel resolves the next hop */                 \
	X(PASS_NO_ROUTE, "pass_no_route")	/* fib lookup failed otherwise */                  \
	/* XDP: broadcast or multicast IPv4 frame, the kernel's link-local business */             \
	X(PASS_L2_MULTICAST, "pass_l2_multicast")                                                  \
	/* XDP: 802.1Q/802.1ad tagged frame, for the kernel's VLAN device (or its drop) */         \
	X(PASS_VLAN_TAGGED, "pass_vlan_tagged")

#define AG_REASONS_DROP(X)                                                                         \
	X(DROP_TRUNC_ETH, "drop_truncated_eth")                                                    \
	X(DROP_TRUNC_VLAN, "drop_truncated_vlan")                                                  \
	X(DROP_TRUNC_IP, "drop_truncated_ipv4")                                                    \
	X(DROP_BAD_IP, "drop_bad_ipv4") /* version, ihl, total length */                           \
	X(DROP_TRUNC_L4, "drop_truncated_l4")                                                      \
	X(DROP_FRAGMENT, "drop_vip_fragment") /* no reassembly in the fast path */                 \
	X(DROP_NO_BACKEND, "drop_no_backend") /* no live backend for the packet */                 \
	X(DROP_NAT_PORTS, "drop_nat_ports_exhausted")                                              \
	X(DROP_FLOW_INSERT, "drop_flow_insert_failed")                                             \
	X(DROP_BAD_STATE, "drop_bad_state")	  /* settings/listener not usable */               \
	X(DROP_TCP_FLAGS, "drop_tcp_bad_flags")	  /* SYN+FIN, no flags, FIN without ACK, ... */    \
	X(DROP_TCP_NO_FLOW, "drop_tcp_no_flow")	  /* not a SYN, and no flow it belongs to */       \
	X(DROP_FLOW_FULL, "drop_flow_table_full") /* no room, and no live flow is evicted */       \
	X(DROP_UDP_BUDGET, "drop_udp_budget")	  /* new UDP flows past udp_cpu_rate */            \
	/* Ingress hygiene (hygiene.h, docs/hygiene.md) */                                         \
	X(DROP_L2_OTHER_HOST, "drop_l2_other_host") /* unicast to another MAC */                   \
	X(DROP_L2_MULTICAST, "drop_l2_multicast")   /* anygate-dp: broadcast, multicast IPv4 */    \
	X(DROP_VLAN_TAGGED, "drop_vlan_tagged")	    /* anygate-dp: a tagged frame */               \
	X(DROP_IP_CSUM, "drop_ipv4_checksum")	    /* IPv4 header checksum wrong */               \
	X(DROP_MARTIAN, "drop_martian_source")	    /* 0/8, 127/8, 169.254/16, 224/4, 240/4 */     \
	X(DROP_SOURCE_OURS, "drop_source_is_ours")  /* a VIP or NAT address as client source */    \
	X(DROP_IP_OPTIONS, "drop_ipv4_options")	    /* malformed IPv4 options */                   \
	X(DROP_SOURCE_ROUTE, "drop_source_route")   /* LSRR or SSRR option */                      \
	X(DROP_PORT_ZERO, "drop_port_zero")	    /* TCP/UDP port 0 on either side */            \
	X(DROP_TTL, "drop_ttl_expired")		    /* TTL <= 1 on a packet we would forward */    \
	X(DROP_WRONG_ROLE, "drop_wrong_interface_role") /* forward/reverse on the wrong side */    \
	X(DROP_VIP_NO_LISTENER, "drop_vip_no_listener") /* to a VIP, port no listener takes */     \
	X(DROP_VIP_NOT_L4, "drop_vip_not_tcp_udp")	/* to a VIP, neither TCP nor UDP */

#define AG_REASONS_ACT(X)                                                                          \
	/* TCP flow on a DOWN backend: the client gets a RST (XDP_TX), flow deleted */             \
	X(TX_RST_BACKEND_DOWN, "tcp_rst_backend_down")                                             \
	/* UDP flow on a DOWN backend: moved to a live one, this packet forwarded */               \
	X(UDP_RESTEER, "udp_resteer")                                                              \
	/* Unverified SYN past syn_cpu_rate: answered with a challenge SYN-ACK (XDP_TX) */         \
	X(TX_SYN_CHALLENGE, "tcp_syn_challenge")                                                   \
	/* The client's RST proved its address: it is verified, the RST goes no further */         \
	X(SYN_AUTH_PASSED, "tcp_syn_auth_passed")                                                  \
	/* Flow on a DOWN backend that still replies (overloaded, not gone): forwarded */          \
	X(KEPT_BACKEND_REPLYING, "flow_kept_backend_replying")                                     \
	/* New flow took over the NAT port of an expired or closed flow (then removed) */          \
	X(NAT_TAKEOVER, "nat_port_takeover")

#define AG_REASONS(X) AG_REASONS_PASS(X) AG_REASONS_DROP(X) AG_REASONS_ACT(X)

/* Kept as written: clang-format would indent AG_R__MAX as a continuation of the list. */
/* clang-format off */
enum ag_reason {
#define AG_REASON_ENUM(name, label) AG_R_##name,
	AG_REASONS(AG_REASON_ENUM)
#undef AG_REASON_ENUM
	AG_R__MAX
};
/* clang-format on */

/* Where the groups start: the drop reasons are [AG_R__DROP_FIRST, AG_R__ACT_FIRST). */
enum {
#define AG_REASON_ONE(name, label) +1
	AG_R__DROP_FIRST = 0 AG_REASONS_PASS(AG_REASON_ONE),
	AG_R__ACT_FIRST = AG_R__DROP_FIRST AG_REASONS_DROP(AG_REASON_ONE),
#undef AG_REASON_ONE
};

struct ag_reason_stats {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct ag_reason_stats) == 16, "ag_reason_stats layout");

#endif /* AG_CORE_ABI_H */
