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
#include <rte_rcu_qsbr.h>

#include "dp.h"
#include "flow.h"
#include "flowlife.h"
#include "flows.h"
#include "log.h"
#include "natclaim.h"
#include "route.h"
#include "select.h"

static void value_free(void *pool, void *value)
{
	rte_mempool_put(pool, value);
}

static struct rte_mempool *make_pool(const char *name, unsigned int n)
{
	struct rte_mempool *mp;

	mp = rte_mempool_create(name, n, 64, 256, 0, NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
	if (!mp)
		pr_err("%s: mempool of %u values: %s\n", name, n, rte_strerror(rte_errno));
	return mp;
}

static struct rte_hash *make_hash(struct ag_dp *dp, const char *name, unsigned int entries,
				  struct rte_mempool *vals)
{
	struct rte_hash_parameters p = {
	    .name = name,
	    .entries = entries,
	    .key_len = sizeof(struct ag_flow_key),
	    .hash_func = rte_hash_crc,
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
	return h;
}

int ag_dp_flows__init(struct ag_dp *dp)
{
	unsigned int n = dp->cfg->edge.max_flows;
	/* Values held in lcore caches and the defer queue on top of the table's own. */
	unsigned int slack = (dp->n_fwd + 2) * 512 + n / 8;
	size_t sz;

	rte_spinlock_init(&dp->wlock);
	sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
	dp->qsbr = rte_zmalloc("ag_qsbr", sz, RTE_CACHE_LINE_SIZE);
	if (!dp->qsbr || rte_rcu_qsbr_init(dp->qsbr, RTE_MAX_LCORE)) {
		pr_err("RCU state: %s\n", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	dp->flow_vals = make_pool("ag_flow_vals", n + slack);
	dp->rev_vals = make_pool("ag_rev_vals", n + slack);
	if (!dp->flow_vals || !dp->rev_vals)
		return -ENOMEM;
	dp->flows = make_hash(dp, "ag_flows", n, dp->flow_vals);
	dp->revs = make_hash(dp, "ag_nat_rev", n, dp->rev_vals);
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
	dp->flows = dp->revs = NULL;
	dp->flow_vals = dp->rev_vals = NULL;
	dp->qsbr = NULL;
}

/*
 * Every change of the tables goes through these, under wlock: they keep the
 * live entry counts (rte_hash_count() still counts a deleted key until its
 * deferred free, which may wait for the next change).
 */
static bool add(struct ag_dp *dp, struct rte_hash *h, const struct ag_flow_key *k, void *v)
{
	if (rte_hash_add_key_data(h, k, v) < 0)
		return false;
	if (h == dp->flows)
		dp->n_flows++;
	else
		dp->n_revs++;
	return true;
}

static void del(struct ag_dp *dp, struct rte_hash *h, const struct ag_flow_key *k)
{
	if (rte_hash_del_key(h, k) < 0)
		return;
	if (h == dp->flows)
		dp->n_flows--;
	else
		dp->n_revs--;
}

static void *lookup(const struct rte_hash *h, const struct ag_flow_key *k)
{
	void *d;

	return rte_hash_lookup_data(h, k, &d) >= 0 ? d : NULL;
}

/* What dataplane/core reads: the segment, settings s, and our two tables. */
static inline struct ag_tables tables_of(const struct ag_dp *dp, const struct ag_settings *s)
{
	return (struct ag_tables){
	    .hdr = dp->hdr, .settings = s, .flows = dp->flows, .revs = dp->revs};
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

/*
 * Under wlock: claim NAT reverse key rk for rv. Free: take it. Held by an
 * entry that lets go (natclaim.h): take it over, deleting its idle flow.
 */
static bool rev_claim(struct ag_dp *dp, struct ag_tables *t, const struct ag_flow_key *rk,
		      struct ag_dp_rev *rv, uint64_t now)
{
	const struct ag_dp_rev *old = lookup(dp->revs, rk);
	struct ag_flow_key owner;
	int hold;

	if (!old)
		return add(dp, dp->revs, rk, rv);
	hold = ag_nat_rev__hold(t, rk, &old->r, t->settings, now, &owner);
	if (hold == AG_NAT_HOLD_BUSY)
		return false;
	if (hold == AG_NAT_HOLD_IDLE)
		del(dp, dp->flows, &owner);
	del(dp, dp->revs, rk);
	return add(dp, dp->revs, rk, rv);
}

/* Under wlock: a NAT port for choice c of flow k (moving: its entry), its reverse key in *rk. */
static bool nat_claim_locked(struct ag_dp *dp, struct ag_tables *t, const struct ag_flow_key *k,
			     const struct ag_choice *c, struct ag_dp_rev *rv,
			     const struct ag_dp_flow *moving, uint64_t now, struct ag_flow_key *rk)
{
	__be16 own = moving ? moving->f.nat_port : 0;
	unsigned int i;

	for (i = 0; i < AG_NAT_PORT_RETRIES; i++) {
		ag_choice__rev_key(rk, c, k, ag_choice__nat_port(c, i, moving != NULL, own));
		if (rev_claim(dp, t, rk, rv, now))
			return true;
	}
	return false;
}

/*
 * Under wlock: pin flow k (fv, reverse key rk claimed). A moved flow is
 * replaced whole: delete, then add (a reader in between misses the flow,
 * takes this lock to create it, and then finds the new one); the dead
 * backend's late replies find no flow any more.
 */
static int pin_locked(struct ag_dp *dp, struct ag_tables *t, const struct ag_flow_key *k,
		      struct ag_dp_flow *fv, const struct ag_flow_key *rk,
		      const struct ag_dp_flow *moving)
{
	struct ag_flow_key ork;

	if (moving) {
		bool stale = ag_flow__stale_rev(t, k, &moving->f, rk, &ork);

		del(dp, dp->flows, k);
		if (stale)
			del(dp, dp->revs, &ork);
	}
	if (!add(dp, dp->flows, k, fv)) {
		/* The reverse entry goes back to its pool through the defer queue. */
		del(dp, dp->revs, rk);
		return AG_R_DROP_FLOW_INSERT;
	}
	return moving ? AG_FLOW_RESTEERED : AG_FLOW_CREATED;
}

int ag_dp_flows__create(struct ag_dp_lcore *lc, const struct ag_flow_key *k, uint8_t ttl,
			uint64_t now, struct ag_dp_flow *moving, struct ag_dp_flow **out)
{
	struct ag_dp *dp = lc->dp;
	struct ag_tables t = tables_of(dp, lc->settings_ok ? &lc->settings : NULL);
	struct ag_dp_flow *fv, *cur;
	struct ag_flow_key rk;
	struct ag_choice c;
	struct ag_dp_rev *rv;
	int r;

	r = ag_choose(&t, k, ttl, &c);
	if (r != AG_CHOICE_OK)
		return r;
	if (rte_mempool_get(dp->flow_vals, (void **)&fv))
		return AG_R_DROP_FLOW_INSERT;
	if (rte_mempool_get(dp->rev_vals, (void **)&rv)) {
		rte_mempool_put(dp->flow_vals, fv);
		return AG_R_DROP_FLOW_INSERT;
	}
	ag_choice__rev(&rv->r, &c, k, now);
	/* Replies go to the client, forwarded packets to the backend: route both once. */
	ag_dp_route__lookup(dp, k->saddr, &rv->nh);
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
	r = AG_R_DROP_NAT_PORTS;
	if (nat_claim_locked(dp, &t, k, &c, rv, moving, now, &rk)) {
		ag_choice__flow(&fv->f, &c, &rk, now);
		r = pin_locked(dp, &t, k, fv, &rk, moving);
	}
	rte_spinlock_unlock(&dp->wlock);
	if (r == AG_R_DROP_NAT_PORTS) /* else it is in the table, or on its way back */
		rte_mempool_put(dp->rev_vals, rv);
	if (r < AG_R__MAX) {
		rte_mempool_put(dp->flow_vals, fv);
		return r;
	}
	*out = fv;
	return r;
}

/* A slice of the flow table: remove the flows that are not live. Returns how many. */
static uint64_t sweep_flows(struct ag_dp *dp, const struct ag_settings *s, uint64_t now)
{
	uint64_t expired = 0;
	unsigned int n;

	for (n = 0; !dp->sweep_flows_done && n < AG_DP_SWEEP_PER_TICK; n++) {
		const void *key;
		void *data;

		if (rte_hash_iterate(dp->flows, &key, &data, &dp->sweep_next_flow) < 0) {
			dp->sweep_flows_done = true;
			break;
		}
		if (ag_dp_flows__live(dp, key, &((struct ag_dp_flow *)data)->f, s, now))
			continue;
		ag_dp_flows__expire(dp, key, data);
		expired++;
	}
	return expired;
}

/*
 * A slice of the reverse table: remove the entries that are idle and
 * orphaned (their flow is gone or uses another port). A flow's own entry
 * goes with its flow.
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
		/* The cheap test first, without the lock. */
		if (!ag_flow__is_idle(now, rv->r.last_seen_ns, ag_settings__idle_ns(s, rk->proto)))
			continue;
		rte_spinlock_lock(&dp->wlock);
		if (lookup(dp->revs, rk) == rv &&
		    ag_nat_rev__hold(&t, rk, &rv->r, s, now, &owner) == AG_NAT_HOLD_ORPHAN)
			del(dp, dp->revs, rk);
		rte_spinlock_unlock(&dp->wlock);
	}
}

/*
 * Main lcore, every tick: visit a slice of both tables and remove what has
 * been idle past its timeout (the BPF tables are LRU instead; here an entry
 * that nobody touches again is found by this sweep).
 */
void ag_dp_flows__sweep(struct ag_dp *dp, uint64_t now)
{
	struct ag_settings s;
	uint64_t expired;

	if (dp->sweep_flows_done && dp->sweep_revs_done) {
		if (now < dp->next_sweep_ns)
			return;
		/* A new pass over both tables. */
		dp->next_sweep_ns = now + AG_DP_SWEEP_PERIOD_NS;
		dp->sweep_flows_done = dp->sweep_revs_done = false;
		dp->sweep_next_flow = dp->sweep_next_rev = 0;
	}
	if (ag_shm__settings_get(dp->hdr, &s) != 1 || !ag_settings__usable(&s))
		return;
	expired = sweep_flows(dp, &s, now);
	sweep_revs(dp, &s, now);
	ag_dp__count(dp->main_lane, AG_DPC_FLOWS_EXPIRED, expired);
}
