/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygate limits: one place for every size the control plane, the BPF maps and
 * the DPDK tables agree on. The config validator refuses values past these
 * limits with the same names, so a limit can never be hit silently at run time.
 */
#ifndef AG_CORE_CONSTS_H
#define AG_CORE_CONSTS_H

/* Listener ids index listener_state and own two lookup slots each (live + spare). */
#define AG_MAX_LISTENERS 64
/* Two slots per listener: the live table and the spare one a publish writes into. */
#define AG_LOOKUP_SLOTS	 (2 * AG_MAX_LISTENERS)

/* Backend ids index the backends array: 4096 endpoints per edge is a large fleet. */
#define AG_MAX_BACKENDS		   4096
/* Endpoint groups (one per region per listener) across all listeners. */
#define AG_MAX_GROUPS		   1024
/* Endpoints in one endpoint group. */
#define AG_MAX_ENDPOINTS_PER_GROUP 256
/* Endpoint groups of one listener (regions it can reach). */
#define AG_MAX_GROUPS_PER_LISTENER 32

/* Static entry addresses over all accelerators. */
#define AG_MAX_VIPS	      256
/*
 * Expanded (vip, proto, port) keys in the listener map: a port range becomes one
 * key per port, so 1-65535 on two protocols of two VIPs still fits.
 */
#define AG_MAX_LISTENER_KEYS  262144
/* (group, listener port) -> endpoint port rewrites. */
#define AG_MAX_PORT_OVERRIDES 4096

/* NAT source addresses of one edge. */
#define AG_MAX_NAT_ADDRS	16
/*
 * Ports a new flow tries, in order from its CPU's cursor, before it is dropped
 * (counted): the cursor walks the range, so ports are reused oldest first.
 */
#define AG_NAT_PORT_RETRIES	16
/* Of those, tried in order from the cursor before the claim jumps to a random offset. */
#define AG_NAT_PORT_RUN		8
/*
 * A closed TCP flow (RST, or FIN both ways) keeps its entry for tcp_closing_s
 * to carry late packets, but its NAT port may go to a new flow once the pair
 * has been quiet this long.
 */
#define AG_NAT_CLOSED_REUSE_NS	2000000000ULL
/* Default NAT source port range (inclusive). */
#define AG_NAT_PORT_MIN_DEFAULT 1024
#define AG_NAT_PORT_MAX_DEFAULT 65535

/* Lookup table size M: a prime. 65537 gives < 1% imbalance with hundreds of backends. */
#define AG_RING_SIZE_DEFAULT 65537
#define AG_RING_SIZE_MIN     13
/* 128 slots x 262139 x 4 bytes = 128 MiB of lookup tables at most. */
#define AG_RING_SIZE_MAX     262139

/* Flow table size (each of ag_flows, ag_nat_rev): preallocated, so configurable per edge. */
#define AG_FLOWS_DEFAULT 1048576
#define AG_FLOWS_MIN	 1024
#define AG_FLOWS_MAX	 67108864

/* Idle timeouts, seconds (as Global Accelerator: TCP 340 s, UDP 30 s). */
#define AG_TCP_IDLE_DEFAULT	    340
#define AG_UDP_IDLE_DEFAULT	    30
/* Half-open TCP flows (handshake not completed), and closed ones (RST or FIN both ways). */
#define AG_TCP_SYN_IDLE_DEFAULT	    5
#define AG_TCP_CLOSING_DEFAULT	    10
#define AG_IDLE_MIN		    1
#define AG_IDLE_MAX		    86400
/*
 * last_seen is rewritten only when it is older than this: an established flow
 * does not dirty its cache line on every packet.
 */
#define AG_LAST_SEEN_GRANULARITY_NS 1000000000ULL
/*
 * The reverse entry's last_seen (replies) is rewritten at most this often: it
 * tells an overloaded backend (still replying) from a dead one within the
 * health checks' detection time.
 */
#define AG_REPLY_GRANULARITY_NS	    100000000ULL

/*
 * New TCP flows per second per edge from unverified sources before SYNs are
 * answered with the challenge (edge.syn_auth_rate). Each lives as a half-open
 * flow for tcp_syn_idle_s holding a NAT port: 5000/s x 5 s = 25,000 ports at
 * most, well under the 64,512 of one NAT address towards one backend port.
 */
#define AG_SYN_AUTH_RATE_DEFAULT 5000
/* New-flow rates per edge (syn_auth_rate, udp_flow_rate): far past any machine. */
#define AG_NEW_FLOW_RATE_MAX	 10000000

/* Verified client addresses remembered by the SYN authentication (LRU). */
#define AG_SYN_AUTH_ENTRIES	262144
/* How long a verified address stays verified, seconds. */
#define AG_SYN_AUTH_TTL_DEFAULT 600
/* The challenge cookie is valid for the window it was made in and the one before: 2^32 ns. */
#define AG_SYN_COOKIE_SHIFT	32

/* Interfaces the fast path attaches to. */
#define AG_MAX_IFACES  32
/*
 * ag_ifaces is an ARRAY indexed by ifindex (the cheapest lookup per packet:
 * the verifier inlines it): interfaces with an ifindex at or past this are
 * refused at attach. 65536 entries of 8 bytes: 512 KiB.
 */
#define AG_MAX_IFINDEX 65536

/*
 * Counter lanes of the DPDK segment: one per anygate-dp forwarding lcore plus
 * one for its main lcore (as per-CPU BPF maps have one value per CPU).
 */
#define AG_SHM_LANES	    16
/* anygate-dp routes (linear, longest prefix first: looked up once per flow) and static ARP entries.
 */
#define AG_MAX_ROUTES	    256
#define AG_MAX_STATIC_NEIGH 256

/* Lookup-table entry meaning "no backend": the policy is drop. */
#define AG_BACKEND_NONE 0xffffffffu

/* Names: accelerator, region, edge. */
#define AG_NAME_MAX 64

#endif /* AG_CORE_CONSTS_H */
