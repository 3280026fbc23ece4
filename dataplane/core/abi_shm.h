/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK fast path's tables: one shared-memory segment (a file in the
 * root-only directory AG_SHM_DIR) that anygated writes and anygate-dp reads. Its regions hold the
 * same abi.h structures as the BPF maps; only the containers differ:
 *
 *   settings       ag_settings, double-buffered (two copies, one live)
 *   vips           open-addressing table of ag_shm_vip, double-buffered
 *   listener keys  open-addressing table of ag_shm_lkey, double-buffered
 *   port overrides open-addressing table of ag_shm_ovr, double-buffered
 *   listener state ag_listener_state[AG_MAX_LISTENERS] (as ag_lstate)
 *   lookup         ag_lookup_bucket[AG_LOOKUP_BUCKETS(ring_size)] (as ag_lookup)
 *   backends       ag_backend[AG_MAX_BACKENDS] (as ag_backends)
 *   lanes          per-lcore counters: ag_traffic_stats / ag_reason_stats as
 *                  the per-CPU BPF stats maps, plus anygate-dp's own counters
 *
 * Lookup tables and listener state are written exactly as the BPF mmaps are
 * (publish.c: spare slot, then one store of `slot`). A double-buffered table
 * is rewritten whole into the copy that is not live, inside a sequence lock
 * (seq odd while writing), and then made live with one store of its index.
 * A reader loads the live index, reads under the copy's seq and retries when
 * seq moved: it never blocks and never sees a half-written table (it would
 * only retry if it stalled across two publishes).
 *
 * The probe sequence of the open-addressing tables is part of the contract:
 * writer (controlplane/fastpath/shm.c) and reader (anygate-dp) both use the functions
 * below. Capacities are twice the limits of consts.h, so a probe always
 * meets an empty entry within a few steps.
 *
 * Bump AG_SHM_LAYOUT_VERSION on any change of this file's layouts; both sides
 * refuse a segment of another layout or of another AG_ABI_VERSION.
 *
 * Trust: the segment is a file, and what a file says is checked before it is
 * believed. Its identity (sizes, capacities, entry sizes, offsets) is copied
 * out of the file once and validated (ag_shm__layout_check, shm_layout.h):
 * every region inside the mapping, in order, without overlap, with overflow-
 * safe arithmetic. Every access after that goes through the private copy
 * (struct ag_shm_view): nothing read from the mapping later (a table head's
 * cap, an offset) ever sizes a read or a write.
 */
#ifndef AG_CORE_ABI_SHM_H
#define AG_CORE_ABI_SHM_H

#include <linux/types.h>

#include "abi.h"
#include "compat.h"
#include "consts.h"
#include "hash.h"

#define AG_SHM_MAGIC	      0x4d534741u /* "AGSM" in memory on little endian */
/*
 * 2: entry sizes in the identity, 32 counter slots per lane (exception path),
 * 64 reason slots (ingress hygiene).
 */
#define AG_SHM_LAYOUT_VERSION 2
/*
 * Directory of the segment files: AG_SHM_DIR/<edge.dpdk.shm_name>. The euid's
 * (root's) alone, mode 0700: /dev/shm itself is writable by everyone, so a
 * segment directly in it could be created first by anyone.
 */
#define AG_SHM_DIR	      "/dev/shm/anygate.d"

/* Capacities of the open-addressing tables: powers of two, load <= 1/2. */
#define AG_SHM_LKEY_CAP (2 * AG_MAX_LISTENER_KEYS)
#define AG_SHM_VIP_CAP	(2 * AG_MAX_VIPS)
#define AG_SHM_OVR_CAP	(2 * AG_MAX_PORT_OVERRIDES)
_Static_assert((AG_SHM_LKEY_CAP & (AG_SHM_LKEY_CAP - 1)) == 0, "lkey cap power of two");
_Static_assert((AG_SHM_VIP_CAP & (AG_SHM_VIP_CAP - 1)) == 0, "vip cap power of two");
_Static_assert((AG_SHM_OVR_CAP & (AG_SHM_OVR_CAP - 1)) == 0, "ovr cap power of two");

/* Seed of the tables' own hash (any constant; not the flow hash seed). */
#define AG_SHM_TABLE_SEED 0x61677368u

/* Regions start on page boundaries. */
#define AG_SHM_ALIGN 4096

/*
 * --- one copy of a double-buffered table: this head, then cap entries ---
 * cap and entry_size are written at creation for whoever inspects a segment;
 * readers and the writer size everything from the validated identity.
 */
struct ag_shm_table {
	__u32 seq;	  /* odd while the writer rewrites this copy */
	__u32 count;	  /* entries in use */
	__u32 cap;	  /* entries of room; power of two (settings: 1); informative */
	__u32 entry_size; /* sizeof the entry type; informative */
	__u32 pad[12];
};
_Static_assert(sizeof(struct ag_shm_table) == 64, "ag_shm_table layout");

/* vips: empty entry has vip == 0 (0.0.0.0/8 is never a VIP). */
struct ag_shm_vip {
	__be32 vip;
	__u32 flags; /* as the ag_vips value: reserved, zero */
};
_Static_assert(sizeof(struct ag_shm_vip) == 8, "ag_shm_vip layout");

/* listener keys: empty entry has key.proto == 0 (keys are TCP or UDP). */
struct ag_shm_lkey {
	struct ag_listener_key key;
	__u32 id; /* listener id, index into listener state */
};
_Static_assert(sizeof(struct ag_shm_lkey) == 12, "ag_shm_lkey layout");

/* port overrides: empty entry has key.port == 0 (listener ports are 1-65535). */
struct ag_shm_ovr {
	struct ag_port_ovr_key key;
	struct ag_port_ovr val;
};
_Static_assert(sizeof(struct ag_shm_ovr) == 12, "ag_shm_ovr layout");

/*
 * anygate-dp's own counters, per lane: what the XDP path leaves to the kernel
 * (transmit queues, ARP, the exception path). X(name, "metric label").
 */
#define AG_DP_COUNTERS(X)                                                                          \
	X(RX_PACKETS, "rx_packets")		/* received on ports */                            \
	X(TX_PACKETS, "tx_packets")		/* handed to ports */                              \
	X(TX_DROPPED, "tx_dropped")		/* port transmit queue full */                     \
	X(SLOW_QUEUED, "slow_queued")		/* handed to the main lcore */                     \
	X(SLOW_DROPPED, "slow_dropped")		/* main lcore's queue full */                      \
	X(ARP_IN, "arp_in")			/* ARP packets received */                         \
	X(ARP_REPLIES, "arp_replies_sent")	/* answers for our addresses */                    \
	X(ARP_REQUESTS, "arp_requests_sent")	/* next-hop resolution */                          \
	X(NEIGH_HELD, "neigh_held")		/* queued until resolved */                        \
	X(NEIGH_DROPPED, "neigh_dropped")	/* unresolved: queue full or failed */             \
	X(TO_KERNEL, "to_kernel")		/* exception path: into the tap */                 \
	X(FROM_KERNEL, "from_kernel")		/* exception path: out of the tap */               \
	X(KERNEL_DROPPED, "kernel_dropped")	/* no tap, or tap queue full */                    \
	X(FLOWS_EXPIRED, "flows_expired")	/* removed by the idle sweep */                    \
	X(NO_ROUTE_DROPPED, "no_route_dropped") /* slow path: no route either */                   \
	X(FLOWS_EVICTED, "flows_evicted") /* half-open/closing, removed early: table near full */  \
	X(ARP_QUEUED, "arp_queued")	  /* handed to the main lcore (own ring) */                \
	X(ARP_DROPPED, "arp_dropped")	  /* ARP ring to the main lcore full */                    \
	X(ARP_UNSOLICITED, "arp_unsolicited") /* replies we did not ask for: ignored */            \
	X(ARP_REVERIFY, "arp_reverify") /* a known neighbour's MAC contradicted: asked again */    \
	X(SLOW_RATE_DROPPED, "slow_rate_dropped") /* exception path over its rate */

enum ag_dp_counter {
#define AG_DP_COUNTER_ENUM(name, label) AG_DPC_##name,
	AG_DP_COUNTERS(AG_DP_COUNTER_ENUM)
#undef AG_DP_COUNTER_ENUM
	    AG_DPC__MAX
};

#define AG_SHM_REASON_SLOTS	64
#define AG_SHM_DP_COUNTER_SLOTS 32
_Static_assert(AG_R__MAX <= AG_SHM_REASON_SLOTS, "reasons fit a lane");
_Static_assert(AG_DPC__MAX <= AG_SHM_DP_COUNTER_SLOTS, "dp counters fit a lane");

/*
 * One lcore's counters. Only that lcore writes its lane (plain increments, as
 * a per-CPU BPF map); readers sum the lanes, as they sum CPUs.
 */
struct ag_shm_lane {
	struct ag_traffic_stats lstats[AG_MAX_LISTENERS];
	struct ag_traffic_stats bstats[AG_MAX_BACKENDS];
	struct ag_reason_stats rstats[AG_SHM_REASON_SLOTS];
	__u64 dp[AG_SHM_DP_COUNTER_SLOTS];
};
_Static_assert(sizeof(struct ag_shm_lane) % 64 == 0, "lanes are whole cache lines");

/*
 * --- the segment header (first page) ---
 * ident: written once by the creator before the file gets its final name.
 * pub: anygated's live indexes. dp: anygate-dp's status.
 */
struct ag_shm_ident {
	__u32 magic;	      /* AG_SHM_MAGIC */
	__u32 layout_version; /* AG_SHM_LAYOUT_VERSION */
	__u32 abi_version;    /* AG_ABI_VERSION */
	__u32 hdr_size;	      /* sizeof(struct ag_shm_hdr) */
	__u64 total_size;     /* bytes of the segment */
	__u32 ring_size;      /* M of the lookup tables */
	__u32 lanes;	      /* AG_SHM_LANES */
	__u32 lkey_cap;
	__u32 vip_cap;
	__u32 ovr_cap;
	__u32 lookup_buckets; /* AG_LOOKUP_BUCKETS(ring_size) */
	__u64 lane_size;      /* sizeof(struct ag_shm_lane) */
	/* Byte offsets from the start of the segment. */
	__u64 off_settings[2]; /* ag_shm_table + one ag_settings */
	__u64 off_vips[2];     /* ag_shm_table + vip_cap ag_shm_vip */
	__u64 off_lkeys[2];    /* ag_shm_table + lkey_cap ag_shm_lkey */
	__u64 off_ovr[2];      /* ag_shm_table + ovr_cap ag_shm_ovr */
	__u64 off_lstate;      /* ag_listener_state[AG_MAX_LISTENERS] */
	__u64 off_lookup;      /* ag_lookup_bucket[lookup_buckets] */
	__u64 off_backends;    /* ag_backend[AG_MAX_BACKENDS] */
	__u64 off_lanes;       /* ag_shm_lane[lanes] */
	/* Entry sizes, as this build's sizeof: a reader of other entries refuses the segment. */
	__u32 settings_size; /* struct ag_settings */
	__u32 vip_size;	     /* struct ag_shm_vip */
	__u32 lkey_size;     /* struct ag_shm_lkey */
	__u32 ovr_size;	     /* struct ag_shm_ovr */
	__u32 lstate_size;   /* struct ag_listener_state */
	__u32 bucket_size;   /* struct ag_lookup_bucket */
	__u32 backend_size;  /* struct ag_backend */
	__u32 table_size;    /* struct ag_shm_table (the head of a table copy) */
	__u64 pad;
};
_Static_assert(sizeof(struct ag_shm_ident) == 192, "ag_shm_ident layout");

struct ag_shm_pub {
	/* Live copy (0 or 1) of each double-buffered table. */
	__u32 settings_live;
	__u32 vips_live;
	__u32 lkeys_live;
	__u32 ovr_live;
	__u64 generation;    /* bumped after every completed table write */
	__u32 publisher_pid; /* last anygated to open the segment */
	__u32 pad;
	__u64 pad2[4];
};
_Static_assert(sizeof(struct ag_shm_pub) == 64, "ag_shm_pub layout");

struct ag_shm_dp {
	__u32 pid;	    /* anygate-dp attached, 0 when none */
	__u32 lanes_used;   /* lanes anygate-dp counts into */
	__u64 started_ns;   /* CLOCK_MONOTONIC when it attached */
	__u64 heartbeat_ns; /* CLOCK_MONOTONIC, refreshed every few ms while it runs */
	__u64 flows;	    /* entries of the flow table, at the last heartbeat */
	__u64 nat_rev;	    /* entries of the NAT reverse table */
	__u64 neighbours;   /* resolved next hops */
	__u64 pad[2];
};
_Static_assert(sizeof(struct ag_shm_dp) == 64, "ag_shm_dp layout");

struct ag_shm_hdr {
	struct ag_shm_ident ident;
	struct ag_shm_pub pub;
	struct ag_shm_dp dp;
	__u8 pad[AG_SHM_ALIGN - 192 - 64 - 64];
};
_Static_assert(sizeof(struct ag_shm_hdr) == AG_SHM_ALIGN, "ag_shm_hdr layout");

/*
 * --- the validated identity: the private copy every access goes through ---
 * Filled by ag_shm__layout_check() (controlplane/fastpath/shm_layout.h) from
 * a copy of ag_shm_ident, only once every region below is known to lie inside
 * map_size bytes: [off, off + head + cap * entry size) for each table copy,
 * lstate, lookup (lookup_buckets), backends and lanes (lanes * lane_size).
 */
struct ag_shm_layout {
	__u64 map_size; /* bytes mapped (the file's size) */
	__u32 ring_size;
	__u32 lanes;
	__u32 lkey_cap;
	__u32 vip_cap;
	__u32 ovr_cap;
	__u32 lookup_buckets;
	__u64 lane_size;
	__u64 off_settings[2];
	__u64 off_vips[2];
	__u64 off_lkeys[2];
	__u64 off_ovr[2];
	__u64 off_lstate;
	__u64 off_lookup;
	__u64 off_backends;
	__u64 off_lanes;
};

/*
 * A mapped segment as its users reach it: the mapping (its pub and dp parts
 * are read and written there, live) and the private layout (its ident never
 * read again).
 */
struct ag_shm_view {
	struct ag_shm_hdr *hdr;
	struct ag_shm_layout lay;
};

/* --- access --- */

static __always_inline void *ag_shm__at(const struct ag_shm_view *v, __u64 off)
{
	return (char *)v->hdr + off;
}

static __always_inline struct ag_shm_table *ag_shm__table(const struct ag_shm_view *v, __u64 off)
{
	return (struct ag_shm_table *)ag_shm__at(v, off);
}

/* Entries of a table copy follow its head. */
static __always_inline void *ag_shm__entries(struct ag_shm_table *t)
{
	return t + 1;
}

/*
 * Sequence lock, reader side: begin returns the copy's seq (odd: being
 * written, retry); retry is true when the copy changed while it was read.
 */
static __always_inline __u32 ag_shm__read_begin(const struct ag_shm_table *t)
{
	return __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
}

static __always_inline int ag_shm__read_retry(const struct ag_shm_table *t, __u32 seq)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&t->seq, __ATOMIC_RELAXED) != seq;
}

/* Bounded retries of a reader: a writer never holds a live copy, so two are plenty. */
#define AG_SHM_READ_TRIES 4

/* Hashes of the open-addressing tables (independent of the flow hash seed). */
static __always_inline __u32 ag_shm__vip_hash(__be32 vip)
{
	return ag_hash__mix32(ag_ntohl(vip) ^ AG_SHM_TABLE_SEED);
}

static __always_inline __u32 ag_shm__lkey_hash(const struct ag_listener_key *k)
{
	return ag_jhash_3words(ag_ntohl(k->vip), ((__u32)ag_ntohs(k->port) << 8) | k->proto, 0,
			       AG_SHM_TABLE_SEED);
}

static __always_inline __u32 ag_shm__ovr_hash(const struct ag_port_ovr_key *k)
{
	return ag_jhash_3words(k->group_id, ag_ntohs(k->port), 1, AG_SHM_TABLE_SEED);
}

/*
 * Lookups in one copy of cap entries (cap: the validated layout's, a power of
 * two; linear probing from hash & (cap - 1), stopping at an empty entry;
 * bounded by cap even on a torn read). Return the entry or NULL. Callers
 * hold the copy's sequence (see ag_shm__*_get below).
 */
static __always_inline const struct ag_shm_vip *ag_shm__vip_find(struct ag_shm_table *t, __u32 cap,
								 __be32 vip)
{
	const struct ag_shm_vip *e = (const struct ag_shm_vip *)ag_shm__entries(t);
	__u32 mask = cap - 1, i = ag_shm__vip_hash(vip), n;

	for (n = 0; n <= mask; n++, i++) {
		__be32 v = AG_READ_ONCE(e[i & mask].vip);

		if (v == vip)
			return &e[i & mask];
		if (!v)
			return 0;
	}
	return 0;
}

static __always_inline const struct ag_shm_lkey *
ag_shm__lkey_find(struct ag_shm_table *t, __u32 cap, const struct ag_listener_key *k)
{
	const struct ag_shm_lkey *e = (const struct ag_shm_lkey *)ag_shm__entries(t);
	__u32 mask = cap - 1, i = ag_shm__lkey_hash(k), n;

	for (n = 0; n <= mask; n++, i++) {
		const struct ag_shm_lkey *c = &e[i & mask];
		__u8 proto = AG_READ_ONCE(c->key.proto);

		if (!proto)
			return 0;
		if (proto == k->proto && AG_READ_ONCE(c->key.vip) == k->vip &&
		    AG_READ_ONCE(c->key.port) == k->port)
			return c;
	}
	return 0;
}

static __always_inline const struct ag_shm_ovr *ag_shm__ovr_find(struct ag_shm_table *t, __u32 cap,
								 const struct ag_port_ovr_key *k)
{
	const struct ag_shm_ovr *e = (const struct ag_shm_ovr *)ag_shm__entries(t);
	__u32 mask = cap - 1, i = ag_shm__ovr_hash(k), n;

	for (n = 0; n <= mask; n++, i++) {
		const struct ag_shm_ovr *c = &e[i & mask];
		__be16 port = AG_READ_ONCE(c->key.port);

		if (!port)
			return 0;
		if (port == k->port && AG_READ_ONCE(c->key.group_id) == k->group_id)
			return c;
	}
	return 0;
}

/* The live copy of a double-buffered table (index loaded once; off: the layout's pair). */
static __always_inline struct ag_shm_table *ag_shm__live(const struct ag_shm_view *v,
							 const __u64 *off, const __u32 *live)
{
	return ag_shm__table(v, off[__atomic_load_n(live, __ATOMIC_ACQUIRE) & 1]);
}

/*
 * Consistent reads of the live tables. Each returns 1 (found, *out filled),
 * 0 (not there) or -1 (no consistent read within AG_SHM_READ_TRIES: a writer
 * raced twice; the caller treats it as a table it cannot use).
 */
static __always_inline int ag_shm__vip_get(const struct ag_shm_view *v, __be32 vip)
{
	int tries;

	for (tries = 0; tries < AG_SHM_READ_TRIES; tries++) {
		struct ag_shm_table *t = ag_shm__live(v, v->lay.off_vips, &v->hdr->pub.vips_live);
		__u32 seq = ag_shm__read_begin(t);
		int found;

		if (seq & 1)
			continue;
		found = ag_shm__vip_find(t, v->lay.vip_cap, vip) != 0;
		if (!ag_shm__read_retry(t, seq))
			return found;
	}
	return -1;
}

static __always_inline int ag_shm__lkey_get(const struct ag_shm_view *v,
					    const struct ag_listener_key *k, __u32 *id)
{
	int tries;

	for (tries = 0; tries < AG_SHM_READ_TRIES; tries++) {
		struct ag_shm_table *t = ag_shm__live(v, v->lay.off_lkeys, &v->hdr->pub.lkeys_live);
		__u32 seq = ag_shm__read_begin(t);
		const struct ag_shm_lkey *e;
		__u32 val = 0;

		if (seq & 1)
			continue;
		e = ag_shm__lkey_find(t, v->lay.lkey_cap, k);
		if (e)
			val = AG_READ_ONCE(e->id);
		if (!ag_shm__read_retry(t, seq)) {
			*id = val;
			return e != 0;
		}
	}
	return -1;
}

static __always_inline int ag_shm__ovr_get(const struct ag_shm_view *v,
					   const struct ag_port_ovr_key *k, __be16 *port)
{
	int tries;

	for (tries = 0; tries < AG_SHM_READ_TRIES; tries++) {
		struct ag_shm_table *t = ag_shm__live(v, v->lay.off_ovr, &v->hdr->pub.ovr_live);
		__u32 seq = ag_shm__read_begin(t);
		const struct ag_shm_ovr *e;
		__be16 val = 0;

		if (seq & 1)
			continue;
		e = ag_shm__ovr_find(t, v->lay.ovr_cap, k);
		if (e)
			val = AG_READ_ONCE(e->val.port);
		if (!ag_shm__read_retry(t, seq)) {
			*port = val;
			return e != 0;
		}
	}
	return -1;
}

/* A consistent copy of the live settings: 1, or -1 (see above). */
static __always_inline int ag_shm__settings_get(const struct ag_shm_view *v,
						struct ag_settings *out)
{
	int tries;

	for (tries = 0; tries < AG_SHM_READ_TRIES; tries++) {
		struct ag_shm_table *t =
		    ag_shm__live(v, v->lay.off_settings, &v->hdr->pub.settings_live);
		__u32 seq = ag_shm__read_begin(t);

		if (seq & 1)
			continue;
		__builtin_memcpy(out, ag_shm__entries(t), sizeof(*out));
		if (!ag_shm__read_retry(t, seq))
			return 1;
	}
	return -1;
}

/* ag_listener_state[AG_MAX_LISTENERS]. */
static __always_inline struct ag_listener_state *ag_shm__lstate(const struct ag_shm_view *v)
{
	return (struct ag_listener_state *)ag_shm__at(v, v->lay.off_lstate);
}

/*
 * The flat lookup table (abi.h): entry i of slot s is at [s * ring_size + i],
 * within lay.lookup_buckets buckets (callers check the bucket, as the XDP
 * path's ARRAY lookup does).
 */
static __always_inline __u32 *ag_shm__lookup(const struct ag_shm_view *v)
{
	return (__u32 *)ag_shm__at(v, v->lay.off_lookup);
}

/* ag_backend[AG_MAX_BACKENDS]. */
static __always_inline struct ag_backend *ag_shm__backends(const struct ag_shm_view *v)
{
	return (struct ag_backend *)ag_shm__at(v, v->lay.off_backends);
}

/* Lane `lane` (< lay.lanes: the caller's bound). */
static __always_inline struct ag_shm_lane *ag_shm__lane(const struct ag_shm_view *v, __u32 lane)
{
	return (struct ag_shm_lane *)ag_shm__at(v,
						v->lay.off_lanes + (__u64)lane * v->lay.lane_size);
}

#endif /* AG_CORE_ABI_SHM_H */
