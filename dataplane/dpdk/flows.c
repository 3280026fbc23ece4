/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow and NAT reverse tables: rte_hash with lock-free readers, so any lcore
 * finds any flow (the forward and return packets of one flow may arrive on
 * different lcores). Values are 64-byte objects from mempools, published with
 * the key (rte_hash_add_key_data); a deleted key's value goes back to its
 * pool only after every lcore has passed a quiescent state (rte_rcu_qsbr, the
 * hash's integrated defer queue), so a reader never sees it reused.
 *
 * Changes (new flows, expiry, NAT port take-over) are serialised by one
 * spinlock: rte_hash has no insert-if-absent, and a NAT port must be claimed
 * by exactly one flow. Only new flows and expiry take it, never a packet of
 * an established flow.
 *
 * The semantics are the XDP program's, from the same dataplane/core code: the
 * backend choice (choose.h, on the segment: select.h), when a flow is live
 * and whose a reverse entry is (flowlife.h), when a NAT port may be taken
 * over (natclaim.h). This file gives them the rte_hash tables to read.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_random.h>
#include <rte_rcu_qsbr.h>

#include "dp.h"
#include "flow.h"
#include "flowlife.h"
#include "flows.h"
#include "log.h"
#include "natclaim.h"
#include "route.h"
#include "select.h"
#include "sweep.h"
#include "synauth.h"

static void value_free(void *pool, void *value)
{
	rte_mempool_put(pool, value);
}

static struct rte_mempool *make_pool(const char *name, unsigned int n, unsigned int size)
{
	struct rte_mempool *mp;

	mp = rte_mempool_create(name, n, size, 256, 0, NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
	if (!mp)
		pr_err("%s: mempool of %u values: %s\n", name, n, rte_strerror(rte_errno));
	return mp;
}

/*
 * The flow tables' hash and key compare. Keys are 40 bytes since ABI v3
 * (16-byte addresses), and rte_hash's own choices for that size, CRC32 over
 * all of it and memcmp() (its vector compares take multiples of 16), cost
 * established packets about 5% of their rate against the 16-byte keys
 * before. The hash folds each address to one word first (an IPv4 key's
 * other 12 bytes are zero), then is CRC32 over 16 bytes as before; the
 * compare is five words XORed.
 */
_Static_assert(sizeof(struct ag_flow_key) == 5 * sizeof(uint64_t), "a key is five words");
_Static_assert(offsetof(struct ag_flow_key, sport) == 32, "ports, protocol, family: word 4");

static inline uint32_t addr_fold(const union ag_addr *a)
{
	return a->w[0] ^ a->w[1] ^ a->w[2] ^ a->w[3];
}

static uint32_t key_hash(const void *key, uint32_t len, uint32_t seed)
{
	const struct ag_flow_key *k = key;
	uint64_t tail;

	memcpy(&tail, &k->sport, sizeof(tail));
	seed =
	    rte_hash_crc_8byte((uint64_t)addr_fold(&k->saddr) << 32 | addr_fold(&k->daddr), seed);
	return rte_hash_crc_8byte(tail, seed);
}

static int key_cmp(const void *a, const void *b, size_t len)
{
	uint64_t x[5], y[5];

	memcpy(x, a, sizeof(x));
	memcpy(y, b, sizeof(y));
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) != 0;
}

static struct rte_hash *make_hash(struct ag_dp *dp, const char *name, unsigned int entries,
				  struct rte_mempool *vals)
{
	struct rte_hash_parameters p = {
	    .name = name,
	    .entries = entries,
	    .key_len = sizeof(struct ag_flow_key),
	    .hash_func = key_hash,
	    .hash_func_init_val = 0x61676470,
	    .socket_id = (int)rte_socket_id(),
	    /* Lock-free readers; the extendable table keeps every entry insertable. */
	    .extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct rte_hash_rcu_config rcu = {
	    .v = dp->qsbr,
	    .mode = RTE_HASH_QSBR_MODE_DQ,
	    .key_data_ptr = vals,
	    .free_key_data_func = value_free,
	};
	struct rte_hash *h;

	h = rte_hash_create(&p);
	if (!h) {
		pr_err("%s: hash table of %u entries: %s\n", name, entries,
		       rte_strerror(rte_errno));
		return NULL;
	}
	if (rte_hash_rcu_qsbr_add(h, &rcu)) {
		pr_err("%s: RCU for the hash table: %s\n", name, rte_strerror(rte_errno));
		rte_hash_free(h);
		return NULL;
	}
	rte_hash_set_cmp_func(h, key_cmp);
	return h;
}

int ag_dp_flows__init(struct ag_dp *dp)
{
	unsigned int n = dp->cfg->edge.max_flows;
	/* Values held in lcore caches and the defer queue on top of the table's own. */
	unsigned int slack = (dp->n_fwd + 2) * 512 + n / 8 + AG_DP_TABLE_SLACK(n);
	size_t sz;

	rte_spinlock_init(&dp->wlock);
	sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
	dp->qsbr = rte_zmalloc("ag_qsbr", sz, RTE_CACHE_LINE_SIZE);
	if (!dp->qsbr || rte_rcu_qsbr_init(dp->qsbr, RTE_MAX_LCORE)) {
		pr_err("RCU state: %s\n", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	dp->flow_vals = make_pool("ag_flow_vals", n + slack, sizeof(struct ag_dp_flow));
	dp->rev_vals = make_pool("ag_rev_vals", n + slack, sizeof(struct ag_dp_rev));
	if (!dp->flow_vals || !dp->rev_vals)
		return -ENOMEM;
	dp->syn = rte_zmalloc("ag_syn_auth", sizeof(*dp->syn), RTE_CACHE_LINE_SIZE);
	if (!dp->syn) {
		pr_err("SYN authentication allowlist (%zu MiB): %s\n", sizeof(*dp->syn) >> 20,
		       rte_strerror(rte_errno));
		return -ENOMEM;
	}
	dp->syn->seed = (uint32_t)rte_rand();
	dp->max_entries = n;
	dp->flows = make_hash(dp, "ag_flows", n + AG_DP_TABLE_SLACK(n), dp->flow_vals);
	dp->revs = make_hash(dp, "ag_nat_rev", n + AG_DP_TABLE_SLACK(n), dp->rev_vals);
	if (!dp->flows || !dp->revs)
		return -ENOMEM;
	pr_info("flow tables: %u flows, %u NAT reverse entries\n", n, n);
	return 0;
}

void ag_dp_flows__fini(struct ag_dp *dp)
{
	rte_hash_free(dp->flows);
	rte_hash_free(dp->revs);
	rte_mempool_free(dp->flow_vals);
	rte_mempool_free(dp->rev_vals);
	rte_free(dp->qsbr);
	rte_free(dp->syn);
	dp->syn = NULL;
	dp->flows = dp->revs = NULL;
	dp->flow_vals = dp->rev_vals = NULL;
	dp->qsbr = NULL;
}

/*
 * Every change of the tables goes through these, under wlock: they keep the
 * live entry counts (rte_hash_count() still counts a deleted key until its
 * deferred free, which may wait for the next change). add() returns
 * AG_CHOICE_OK, or the AG_R_* reason the entry is refused: max_flows live
 * entries (or, past them, no key slot: AG_DP_TABLE_SLACK) is
 * drop_flow_table_full, and nothing live is evicted to make room.
 */
static int add(struct ag_dp *dp, struct rte_hash *h, const struct ag_flow_key *k, void *v)
{
	uint64_t *n = h == dp->flows ? &dp->n_flows : &dp->n_revs;
	int rc;

	if (*n >= dp->max_entries)
		return AG_R_DROP_FLOW_FULL;
	rc = rte_hash_add_key_data(h, k, v);
	if (rc < 0)
		return rc == -ENOSPC ? AG_R_DROP_FLOW_FULL : AG_R_DROP_FLOW_INSERT;
	__atomic_store_n(n, *n + 1, __ATOMIC_RELAXED);
	return AG_CHOICE_OK;
}

static void del(struct ag_dp *dp, struct rte_hash *h, const struct ag_flow_key *k)
{
	uint64_t *n = h == dp->flows ? &dp->n_flows : &dp->n_revs;

	if (rte_hash_del_key(h, k) < 0)
		return;
	/* Read by the main lcore's heartbeat without the lock. */
	__atomic_store_n(n, *n - 1, __ATOMIC_RELAXED);
}

static void *lookup(const struct rte_hash *h, const struct ag_flow_key *k)
{
	void *d;

	return rte_hash_lookup_data(h, k, &d) >= 0 ? d : NULL;
}

/* What dataplane/core reads: the segment, settings s, and our tables. */
static inline struct ag_tables tables_of(const struct ag_dp *dp, const struct ag_settings *s)
{
	return (struct ag_tables){
	    .seg = &dp->seg, .settings = s, .flows = dp->flows, .revs = dp->revs, .syn = dp->syn};
}

/* The ABI part of the value at k (it leads ours): 1 with a copy of size bytes, or 0. */
_Static_assert(offsetof(struct ag_dp_flow, f) == 0 && offsetof(struct ag_dp_rev, r) == 0,
	       "the ABI struct first");
static inline int lookup_copy(const struct rte_hash *h, const struct ag_flow_key *k, void *out,
			      size_t size)
{
	const void *v = lookup(h, k);

	if (!v)
		return 0;
	memcpy(out, v, size);
	return 1;
}

static __always_inline int ag_tables__nat_rev(struct ag_tables *t, const struct ag_flow_key *rk,
					      struct ag_nat_rev *out)
{
	return lookup_copy(t->revs, rk, out, sizeof(*out));
}

static __always_inline int ag_tables__flow(struct ag_tables *t, const struct ag_flow_key *k,
					   struct ag_flow *out)
{
	return lookup_copy(t->flows, k, out, sizeof(*out));
}

bool ag_dp_flows__live(struct ag_dp *dp, const struct ag_flow_key *k, const struct ag_flow *f,
		       const struct ag_settings *s, uint64_t now)
{
	struct ag_tables t = tables_of(dp, s);

	return ag_flow__live(&t, k, f, s, now);
}

int ag_dp_flows__on_backend(struct ag_dp *dp, const struct ag_flow_key *k, const struct ag_flow *f,
			    const struct ag_backend *b, const struct ag_settings *s, uint64_t now)
{
	static const int reason[] = {
	    [AG_HIT_FORWARD] = AG_CHOICE_OK,
	    [AG_HIT_RESET] = AG_R_TX_RST_BACKEND_DOWN,
	    [AG_HIT_RESTEER] = AG_R_UDP_RESTEER,
	    [AG_HIT_KEPT] = AG_R_KEPT_BACKEND_REPLYING,
	};
	struct ag_tables t = tables_of(dp, s);

	return reason[ag_flow__on_backend(&t, k, f, b, s, now)];
}

void ag_dp_flows__reply_state(struct ag_dp *dp, const struct ag_flow_key *rk,
			      const struct ag_nat_rev *r, uint8_t flags)
{
	struct ag_flow_key ck;
	struct ag_dp_flow *fv;
	uint32_t bits;

	ag_flow_key__client_of(&ck, r, IPPROTO_TCP);
	fv = lookup(dp->flows, &ck);
	if (!fv || !ag_nat_rev__belongs(rk, r, &ck, &fv->f))
		return;
	/* Bits are only ever added, from either direction, on any lcore. */
	bits = ag_tcp__backend_bits(__atomic_load_n(&fv->f.tcp, __ATOMIC_RELAXED), flags);
	if (bits)
		__atomic_fetch_or(&fv->f.tcp, bits, __ATOMIC_RELAXED);
}

/* Under wlock: remove flow k (when it is still fv) and its reverse entry (when still its). */
static void expire_locked(struct ag_dp *dp, const struct ag_flow_key *k, struct ag_dp_flow *fv)
{
	struct ag_tables t = tables_of(dp, NULL);
	struct ag_flow_key rk;
	struct ag_nat_rev r;

	if (lookup(dp->flows, k) != fv)
		return;
	if (ag_flow__own_rev(&t, k, &fv->f, &rk, &r))
		del(dp, dp->revs, &rk);
	del(dp, dp->flows, k);
}

void ag_dp_flows__expire(struct ag_dp *dp, const struct ag_flow_key *k, struct ag_dp_flow *fv)
{
	rte_spinlock_lock(&dp->wlock);
	expire_locked(dp, k, fv);
	rte_spinlock_unlock(&dp->wlock);
}

/* rev_claim(): the port is held, try the next one. */
#define AG_DP_PORT_HELD (-1)

/*
 * Under wlock: claim NAT reverse key rk for rv. Free: take it. Held by an
 * entry that lets go (natclaim.h): take it over (counted nat_port_takeover),
 * with its flow when that flow is over: the pair goes together. Returns
 * AG_CHOICE_OK (rv is in the table), AG_DP_PORT_HELD, or the AG_R_* reason
 * no port can be claimed (a full table).
 */
static int rev_claim(struct ag_dp_lcore *lc, struct ag_tables *t, const struct ag_flow_key *rk,
		     struct ag_dp_rev *rv, uint64_t now, uint32_t bytes)
{
	struct ag_dp *dp = lc->dp;
	const struct ag_dp_rev *old = lookup(dp->revs, rk);
	struct ag_flow_key owner;
	int hold, r;

	if (!old)
		return add(dp, dp->revs, rk, rv);
	hold = ag_nat_rev__hold(t, rk, &old->r, t->settings, now, &owner);
	if (hold == AG_NAT_HOLD_BUSY)
		return AG_DP_PORT_HELD;
	if (hold == AG_NAT_HOLD_IDLE)
		del(dp, dp->flows, &owner);
	del(dp, dp->revs, rk);
	r = add(dp, dp->revs, rk, rv);
	if (r == AG_CHOICE_OK)
		ag_dp__reason(lc->lane, AG_R_NAT_TAKEOVER, bytes);
	return r;
}

/*
 * Under wlock: a NAT port for choice c of flow k (moving: its entry), as
 * ag_claim() in XDP: from this lcore's cursor on (flow.h:
 * ag_nat__claim_base), the first port that is free or whose holder lets go,
 * at most AG_NAT_PORT_RETRIES tries. A moved flow tries its own port first. AG_CHOICE_OK with *rk
 * the reverse key and rv in the table there, or the AG_R_* reason.
 */
static int nat_claim_locked(struct ag_dp_lcore *lc, struct ag_tables *t,
			    const struct ag_flow_key *k, const struct ag_choice *c,
			    struct ag_dp_rev *rv, const struct ag_dp_flow *moving, uint64_t now,
			    uint32_t bytes, struct ag_flow_key *rk)
{
	struct ag_cpu_state *cpu = &lc->cpu;
	uint16_t min = c->s->nat_port_min, max = c->s->nat_port_max;
	__be16 own = moving ? moving->f.nat_port : 0;
	uint32_t cursor, base, rnd = 0, i;
	int r = AG_DP_PORT_HELD;

	if (!cpu->nat_cursor)
		cpu->nat_cursor = ag_nat__cursor_start(lc->index);
	cursor = cpu->nat_cursor;
	base = cursor;
	for (i = 0; i < AG_NAT_PORT_RETRIES; i++) {
		/* AG_NAT_PORT_RUN ports on from the cursor, then from a random offset. */
		if (i == AG_NAT_PORT_RUN)
			rnd = (uint32_t)rte_rand();
		base = ag_nat__claim_base(cursor, rnd, i, min, max);
		ag_choice__rev_key(rk, c, k, ag_choice__nat_port(c, base, i, moving != NULL, own));
		r = rev_claim(lc, t, rk, rv, now, bytes);
		if (r != AG_DP_PORT_HELD)
			break;
	}
	/* The next claim starts after the last port tried; a refused one tried none. */
	if (r == AG_DP_PORT_HELD)
		cpu->nat_cursor = ag_nat__cursor_next(base, i, min, max);
	else if (r == AG_CHOICE_OK)
		cpu->nat_cursor = ag_nat__cursor_next(base, i + 1, min, max);
	return r == AG_DP_PORT_HELD ? AG_R_DROP_NAT_PORTS : r;
}

/*
 * Under wlock: pin flow k (fv, reverse key rk claimed). A moved flow is
 * replaced whole: delete, then add (a reader in between misses the flow,
 * takes this lock to create it, and then finds the new one). A flow that
 * cannot be added gives its reverse entry back: the pair exists whole or
 * not at all.
 */
static int pin_locked(struct ag_dp *dp, const struct ag_flow_key *k, struct ag_dp_flow *fv,
		      const struct ag_flow_key *rk, const struct ag_dp_flow *moving)
{
	int r;

	if (moving)
		del(dp, dp->flows, k);
	r = add(dp, dp->flows, k, fv);
	if (r != AG_CHOICE_OK) {
		/* The reverse entry goes back to its pool through the defer queue. */
		del(dp, dp->revs, rk);
		return r;
	}
	return moving ? AG_FLOW_RESTEERED : AG_FLOW_CREATED;
}

/*
 * Under wlock: flow k (moving) leaves its backend. Its reverse entry goes
 * first (the dead backend's late replies find no flow), so that the move
 * needs no room, even in a full table.
 */
static void unpin_rev_locked(struct ag_dp *dp, struct ag_tables *t, const struct ag_flow_key *k,
			     const struct ag_dp_flow *moving)
{
	struct ag_flow_key ork;
	struct ag_nat_rev r;

	if (ag_flow__own_rev(t, k, &moving->f, &ork, &r))
		del(dp, dp->revs, &ork);
}

/* Values for a new flow and its reverse entry, or AG_R_DROP_FLOW_INSERT. */
static int values_get(struct ag_dp *dp, struct ag_dp_flow **fv, struct ag_dp_rev **rv)
{
	if (rte_mempool_get(dp->flow_vals, (void **)fv))
		return AG_R_DROP_FLOW_INSERT;
	if (rte_mempool_get(dp->rev_vals, (void **)rv)) {
		rte_mempool_put(dp->flow_vals, *fv);
		return AG_R_DROP_FLOW_INSERT;
	}
	return AG_CHOICE_OK;
}

int ag_dp_flows__create(struct ag_dp_lcore *lc, const struct ag_flow_key *k, uint8_t ttl,
			uint64_t now, uint32_t bytes, struct ag_dp_flow *moving,
			struct ag_dp_flow **out)
{
	struct ag_dp *dp = lc->dp;
	struct ag_tables t = tables_of(dp, lc->settings_ok ? &lc->settings : NULL);
	struct ag_dp_flow *fv, *cur;
	struct ag_flow_key rk;
	struct ag_choice c;
	struct ag_dp_rev *rv;
	bool claimed;
	int r;

	r = ag_choose(&t, k, ttl, &c);
	if (r == AG_CHOICE_OK && !moving)
		r = ag_admit(&t, k, c.s, &lc->cpu, now);
	if (r == AG_CHOICE_OK)
		r = values_get(dp, &fv, &rv);
	if (r != AG_CHOICE_OK)
		return r;
	ag_choice__rev(&rv->r, &c, k, now);
	/* Replies go to the client, forwarded packets to the backend: route both once. */
	ag_dp_route__lookup(dp, k->saddr.v4, &rv->nh);
	ag_dp_route__lookup(dp, c.backend_addr, &fv->nh);

	rte_spinlock_lock(&dp->wlock);
	cur = lookup(dp->flows, k);
	/*
	 * Another lcore created this flow since our lookup (two packets of one
	 * new flow at once), or moved it since we saw it: follow its choice.
	 */
	if (cur && cur != moving) {
		rte_spinlock_unlock(&dp->wlock);
		rte_mempool_put(dp->flow_vals, fv);
		rte_mempool_put(dp->rev_vals, rv);
		*out = cur;
		return AG_FLOW_JOINED;
	}
	if (!cur) /* (moving) expired and removed meanwhile: a new flow after all */
		moving = NULL;
	if (moving)
		unpin_rev_locked(dp, &t, k, moving);
	r = nat_claim_locked(lc, &t, k, &c, rv, moving, now, bytes, &rk);
	/* Not claimed: rv is ours to give back. Claimed, it is the table's from now on. */
	claimed = r == AG_CHOICE_OK;
	if (claimed) {
		ag_choice__flow(&fv->f, &c, &rk, now);
		r = pin_locked(dp, k, fv, &rk, moving);
	}
	rte_spinlock_unlock(&dp->wlock);
	if (r < AG_R__MAX) {
		rte_mempool_put(dp->flow_vals, fv);
		if (!claimed)
			rte_mempool_put(dp->rev_vals, rv);
		return r;
	}
	*out = fv;
	return r;
}

/*
 * A slice of the flow table: remove the flows that are over (ag_flow__live),
 * and under pressure half-open and closing ones quiet for a second (sweep.h),
 * counted flows_expired and flows_evicted.
 */
static void sweep_flows(struct ag_dp *dp, const struct ag_settings *s, uint64_t now)
{
	struct ag_tables t = tables_of(dp, s);
	uint64_t n_by[AG_SWEEP_EVICTED + 1] = {0};
	unsigned int n;
	int v;

	for (n = 0; !dp->sweep_flows_done && n < AG_DP_SWEEP_PER_TICK; n++) {
		const void *key;
		void *data;

		if (rte_hash_iterate(dp->flows, &key, &data, &dp->sweep_next_flow) < 0) {
			dp->sweep_flows_done = true;
			break;
		}
		v = ag_sweep__verdict(&t, key, &((struct ag_dp_flow *)data)->f, s, now,
				      dp->sweep_pressure);
		if (v == AG_SWEEP_KEEP)
			continue;
		ag_dp_flows__expire(dp, key, data);
		n_by[v]++;
	}
	ag_dp__count(dp->main_lane, AG_DPC_FLOWS_EXPIRED, n_by[AG_SWEEP_EXPIRED]);
	ag_dp__count(dp->main_lane, AG_DPC_FLOWS_EVICTED, n_by[AG_SWEEP_EVICTED]);
}

/*
 * A slice of the reverse table: remove the entries no flow owns (natclaim.h:
 * orphans, quiet for AG_NAT_CLOSED_REUSE_NS). A flow's own entry goes with
 * its flow; an orphan is left only by a change that failed half-way.
 */
static void sweep_revs(struct ag_dp *dp, const struct ag_settings *s, uint64_t now)
{
	struct ag_tables t = tables_of(dp, s);
	unsigned int n;

	for (n = 0; !dp->sweep_revs_done && n < AG_DP_SWEEP_PER_TICK; n++) {
		const struct ag_flow_key *rk;
		struct ag_flow_key owner;
		struct ag_dp_rev *rv;
		const void *key;
		void *data;

		if (rte_hash_iterate(dp->revs, &key, &data, &dp->sweep_next_rev) < 0) {
			dp->sweep_revs_done = true;
			break;
		}
		rk = key;
		rv = data;
		/* The cheap tests first, without the lock (readers are lock-free). */
		if (!ag_flow__is_idle(now, rv->r.last_seen_ns, AG_NAT_CLOSED_REUSE_NS) ||
		    ag_nat_rev__hold(&t, rk, &rv->r, s, now, &owner) != AG_NAT_HOLD_ORPHAN)
			continue;
		rte_spinlock_lock(&dp->wlock);
		if (lookup(dp->revs, rk) == rv &&
		    ag_nat_rev__hold(&t, rk, &rv->r, s, now, &owner) == AG_NAT_HOLD_ORPHAN)
			del(dp, dp->revs, rk);
		rte_spinlock_unlock(&dp->wlock);
	}
}

/* Flows refused for a full table so far, over every lane. */
static uint64_t full_refusals(const struct ag_dp *dp)
{
	uint64_t n = 0;
	unsigned int l;

	for (l = 0; l < AG_SHM_LANES; l++)
		n +=
		    __atomic_load_n(&ag_shm__lane(&dp->seg, l)->rstats[AG_R_DROP_FLOW_FULL].packets,
				    __ATOMIC_RELAXED);
	return n;
}

/*
 * Main lcore, every tick: visit a slice of both tables and remove what is
 * over under the timeouts of its state (flowlife.h). A pass starts once a
 * second, or at once when the last one ended under pressure (sweep.h: the
 * table 90% full, or a flow refused for a full table during it). A flow that
 * nobody touches again is found here; one that gets a packet is removed by
 * that packet (and not counted: it starts afresh).
 */
void ag_dp_flows__sweep(struct ag_dp *dp, uint64_t now)
{
	struct ag_settings s;
	uint64_t refused;

	if (dp->sweep_flows_done && dp->sweep_revs_done) {
		if (now < dp->next_sweep_ns && !dp->sweep_pressure)
			return;
		/* A new pass over both tables. */
		refused = full_refusals(dp);
		dp->sweep_pressure =
		    ag_sweep__pressure(__atomic_load_n(&dp->n_flows, __ATOMIC_RELAXED),
				       dp->max_entries, refused != dp->sweep_refused);
		dp->sweep_refused = refused;
		dp->next_sweep_ns = now + AG_DP_SWEEP_PERIOD_NS;
		dp->sweep_flows_done = dp->sweep_revs_done = false;
		dp->sweep_next_flow = dp->sweep_next_rev = 0;
	}
	if (ag_shm__settings_get(&dp->seg, &s) != 1 || !ag_settings__usable(&s))
		return;
	sweep_flows(dp, &s, now);
	sweep_revs(dp, &s, now);
}
