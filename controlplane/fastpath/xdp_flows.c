/* SPDX-License-Identifier: BSD-3-Clause */
#include "xdp_flows.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "flowlife.h"
#include "log.h"
#include "loop.h"
#include "natclaim.h"
#include "sweep.h"

/*
 * dataplane/core reads the tables through these accessors: here, the pinned
 * maps by bpf(2). The reverse entry last read is kept, so that judging a flow
 * (liveness, then its own reverse entry) costs one lookup, not two.
 */
struct ag_tables {
	int flows_fd, revs_fd;
	bool cached; /* ck, found, cr hold the last reverse lookup */
	bool found;  /* ... and it found cr */
	struct ag_flow_key ck;
	struct ag_nat_rev cr;
};

static bool same_key(const struct ag_flow_key *a, const struct ag_flow_key *b)
{
	return ag_addr__equal(&a->saddr, &b->saddr) && ag_addr__equal(&a->daddr, &b->daddr) &&
	       a->sport == b->sport && a->dport == b->dport && a->proto == b->proto &&
	       a->family == b->family;
}

static __always_inline int ag_tables__nat_rev(struct ag_tables *t, const struct ag_flow_key *rk,
					      struct ag_nat_rev *out)
{
	if (!t->cached || !same_key(&t->ck, rk)) {
		t->ck = *rk;
		t->found = !bpf_map_lookup_elem(t->revs_fd, rk, &t->cr);
		t->cached = true;
	}
	if (t->found)
		*out = t->cr;
	return t->found;
}

static __always_inline int ag_tables__flow(struct ag_tables *t, const struct ag_flow_key *k,
					   struct ag_flow *out)
{
	return bpf_map_lookup_elem(t->flows_fd, k, out) ? 0 : 1;
}

/*
 * The next batch of w into its buffers: 1 with *count entries and more to
 * come, 0 with the last *count entries of the walk (the next call starts a
 * new walk), or -errno.
 */
static int batch_next(struct ag_batch_walk *w, __u32 *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u64 next = 0;
	int ret;

	*count = w->cap;
	ret = bpf_map_lookup_batch(w->fd, w->resume ? &w->cursor : NULL, &next, w->keys, w->vals,
				   count, &opts);
	if (ret == -ENOENT) {
		w->resume = false;
		return 0;
	}
	if (ret < 0) {
		w->resume = false;
		*count = 0;
		return ret;
	}
	w->cursor = next;
	w->resume = true;
	return 1;
}

static int batch_alloc(struct ag_batch_walk *w, int fd, size_t vsize, unsigned int cap)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->cap = cap;
	w->keys = calloc(cap, sizeof(struct ag_flow_key));
	w->vals = calloc(cap, vsize);
	return w->keys && w->vals ? 0 : -ENOMEM;
}

static void batch_free(struct ag_batch_walk *w)
{
	free(w->keys);
	free(w->vals);
	w->keys = NULL;
	w->vals = NULL;
}

/* --- the walk: every entry with its liveness, as the program decides it --- */

static void visit(struct ag_xdp_flow_cursor *c, const struct ag_flow_key *k,
		  const struct ag_flow *f, uint64_t now, ag_flow_fn fn, void *ctx)
{
	bool live;

	c->tables->cached = false;
	live = ag_flow__live(c->tables, k, f, &c->settings, now);
	fn(ctx, k, f, live, ag_flow__age(now, f->last_seen_ns));
}

/*
 * Key by key, where the kernel has no batch lookup for the map: up to a
 * batch's worth from the last key seen. A key removed meanwhile makes the
 * kernel start over; the walk ends after twice the map's size at most.
 */
static int next_one_by_one(struct ag_xdp_flow_cursor *c, uint64_t now, ag_flow_fn fn, void *ctx)
{
	struct ag_flow_key next;
	struct ag_flow val;
	unsigned int n;

	for (n = 0; n < c->batch.cap; n++) {
		if (c->visited >= c->bound ||
		    bpf_map_get_next_key(c->tables->flows_fd, c->have_last ? &c->last : NULL,
					 &next))
			return 0;
		c->last = next;
		c->have_last = true;
		c->visited++;
		/* An entry removed between the two calls is simply gone. */
		if (!bpf_map_lookup_elem(c->tables->flows_fd, &next, &val))
			visit(c, &next, &val, now, fn, ctx);
	}
	return 1;
}

int ag_xdp_flows__cursor_init(struct ag_xdp_flow_cursor *c, int flows_fd, int revs_fd,
			      const struct ag_settings *s, unsigned int batch)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(c, 0, sizeof(*c));
	c->settings = *s;
	c->tables = calloc(1, sizeof(*c->tables));
	if (!c->tables || batch_alloc(&c->batch, flows_fd, sizeof(struct ag_flow), batch)) {
		ag_xdp_flows__cursor_fini(c);
		return -ENOMEM;
	}
	c->tables->flows_fd = flows_fd;
	c->tables->revs_fd = revs_fd;
	memset(&info, 0, sizeof(info));
	c->bound =
	    bpf_obj_get_info_by_fd(flows_fd, &info, &len) ? UINT64_MAX : 2ull * info.max_entries;
	return 0;
}

void ag_xdp_flows__cursor_fini(struct ag_xdp_flow_cursor *c)
{
	batch_free(&c->batch);
	free(c->tables);
	c->tables = NULL;
}

int ag_xdp_flows__cursor_next(struct ag_xdp_flow_cursor *c, uint64_t now, ag_flow_fn fn, void *ctx)
{
	const struct ag_flow_key *keys = c->batch.keys;
	const struct ag_flow *vals = c->batch.vals;
	__u32 count = 0, i;
	int more;

	if (c->done)
		return 0;
	if (c->one_by_one)
		more = next_one_by_one(c, now, fn, ctx);
	else
		more = batch_next(&c->batch, &count);
	/* one syscall per batch where possible, not two per entry */
	if (more < 0 && !c->started && (more == -EINVAL || more == -ENOTSUP || more == -524)) {
		c->one_by_one = true;
		more = next_one_by_one(c, now, fn, ctx);
	} else if (!c->one_by_one && more >= 0) {
		for (i = 0; i < count; i++)
			visit(c, &keys[i], &vals[i], now, fn, ctx);
	}
	c->started = true;
	c->done = more <= 0;
	return more;
}

int ag_xdp_flows__walk(int flows_fd, int revs_fd, const struct ag_settings *s, uint64_t now,
		       ag_flow_fn fn, void *ctx)
{
	struct ag_xdp_flow_cursor c;
	int err;

	err = ag_xdp_flows__cursor_init(&c, flows_fd, revs_fd, s, AG_SWEEP_BATCH);
	if (!err) {
		do
			err = ag_xdp_flows__cursor_next(&c, now, fn, ctx);
		while (err > 0);
	}
	ag_xdp_flows__cursor_fini(&c);
	return err;
}

/* --- the sweeper --- */

int ag_xdp_sweep__init(struct ag_xdp_sweep *sw, int flows_fd, int revs_fd, uint32_t max_flows)
{
	int err;

	memset(sw, 0, sizeof(*sw));
	sw->max_flows = max_flows;
	sw->pass_flows = AG_SWEEP_PASS_FLOWS;
	sw->pass_revs = AG_SWEEP_PASS_REVS;
	err = batch_alloc(&sw->flows, flows_fd, sizeof(struct ag_flow), AG_SWEEP_BATCH);
	if (!err)
		err = batch_alloc(&sw->revs, revs_fd, sizeof(struct ag_nat_rev), AG_SWEEP_BATCH);
	sw->del_flows = calloc(AG_SWEEP_BATCH, sizeof(*sw->del_flows));
	sw->del_revs = calloc(AG_SWEEP_BATCH, sizeof(*sw->del_revs));
	sw->del_state = calloc(AG_SWEEP_BATCH, sizeof(*sw->del_state));
	sw->del_evicted = calloc(AG_SWEEP_BATCH, sizeof(*sw->del_evicted));
	sw->gone = calloc(AG_SWEEP_BATCH, sizeof(*sw->gone));
	if (err || !sw->del_flows || !sw->del_revs || !sw->del_state || !sw->del_evicted ||
	    !sw->gone) {
		ag_xdp_sweep__fini(sw);
		return -ENOMEM;
	}
	return 0;
}

void ag_xdp_sweep__fini(struct ag_xdp_sweep *sw)
{
	batch_free(&sw->flows);
	batch_free(&sw->revs);
	free(sw->del_flows);
	free(sw->del_revs);
	free(sw->del_state);
	free(sw->del_evicted);
	free(sw->gone);
	sw->del_flows = sw->del_revs = NULL;
	sw->del_state = sw->del_evicted = NULL;
	sw->gone = NULL;
}

/*
 * Delete keys[0, n) from fd, one syscall per run of keys that are there:
 * gone[i] marks a key that was not (the program removed it first). Returns
 * how many this call deleted.
 */
static unsigned int delete_keys(int fd, const struct ag_flow_key *keys, unsigned int n, bool *gone)
{
	unsigned int i = 0, done = 0;
	__u32 count;
	int ret;

	memset(gone, 0, n * sizeof(*gone));
	while (i < n) {
		count = n - i;
		ret = bpf_map_delete_batch(fd, &keys[i], &count, NULL);
		done += count;
		i += count;
		if (!ret || i >= n)
			break;
		/* keys[i] stopped the batch: gone already, or (old kernel) no batch delete */
		if (ret != -ENOENT && !bpf_map_delete_elem(fd, &keys[i]))
			done++;
		else
			gone[i] = true;
		i++;
	}
	return done;
}

/* One pass: the settings the program applies, its clock, and whether the table is near full. */
struct pass {
	const struct ag_settings *s;
	uint64_t now;	   /* the program's clock, for the entries' stamps */
	uint64_t deadline; /* CLOCK_MONOTONIC: the pass stops after the batch that passes it */
	bool pressure;
};

/*
 * What becomes of flow f (key k): dataplane/core/sweep.h decides, for
 * anygate-dp's sweep as well. Not live (the program's own rule) it has
 * expired; live, under pressure, half-open or closing and quiet on both
 * sides for AG_SWEEP_EVICT_QUIET_NS, it is evicted. An established or UDP
 * flow within its timeout is never touched.
 */
static int judge(struct ag_tables *t, const struct pass *p, const struct ag_flow_key *k,
		 const struct ag_flow *f)
{
	t->cached = false;
	return ag_sweep__verdict(t, k, f, p->s, p->now, p->pressure);
}

/*
 * One batch of flows: each victim goes with its own reverse entry (reverse
 * entries first: a reply then finds no client rather than a flow without a
 * way back). Returns how many flows it removed.
 */
static unsigned int sweep_flow_batch(struct ag_xdp_sweep *sw, const struct pass *p, __u32 count)
{
	struct ag_tables t = {.flows_fd = sw->flows.fd, .revs_fd = sw->revs.fd};
	const struct ag_flow_key *keys = sw->flows.keys;
	const struct ag_flow *vals = sw->flows.vals;
	unsigned int nf = 0, nr = 0, removed = 0, i;
	struct ag_flow_key rk;
	struct ag_nat_rev r;
	int v;

	for (i = 0; i < count; i++) {
		v = judge(&t, p, &keys[i], &vals[i]);
		if (v == AG_SWEEP_KEEP)
			continue;
		/* the lookup judge made: cached */
		if (ag_flow__own_rev(&t, &keys[i], &vals[i], &rk, &r))
			sw->del_revs[nr++] = rk;
		sw->del_flows[nf] = keys[i];
		sw->del_state[nf] = (uint8_t)ag_flow__state(keys[i].proto, vals[i].tcp);
		sw->del_evicted[nf++] = v == AG_SWEEP_EVICTED;
	}
	delete_keys(sw->revs.fd, sw->del_revs, nr, sw->gone);
	delete_keys(sw->flows.fd, sw->del_flows, nf, sw->gone);
	for (i = 0; i < nf; i++) {
		if (sw->gone[i])
			continue;
		if (sw->del_evicted[i])
			sw->st.evicted[sw->del_state[i]]++;
		else
			sw->st.expired[sw->del_state[i]]++;
		removed++;
	}
	return removed;
}

/* Reverse entries of one batch that no flow owns and that are quiet (natclaim.h): removed. */
static unsigned int sweep_rev_batch(struct ag_xdp_sweep *sw, const struct pass *p, __u32 count)
{
	struct ag_tables t = {.flows_fd = sw->flows.fd, .revs_fd = sw->revs.fd};
	const struct ag_flow_key *keys = sw->revs.keys;
	const struct ag_nat_rev *vals = sw->revs.vals;
	struct ag_flow_key owner;
	unsigned int n = 0, removed, i;

	for (i = 0; i < count; i++) {
		/* a reverse entry with recent replies is busy: no need to look for its flow */
		if (!ag_flow__is_idle(p->now, vals[i].last_seen_ns, AG_NAT_CLOSED_REUSE_NS))
			continue;
		if (ag_nat_rev__hold(&t, &keys[i], &vals[i], p->s, p->now, &owner) ==
		    AG_NAT_HOLD_ORPHAN)
			sw->del_revs[n++] = keys[i];
	}
	removed = delete_keys(sw->revs.fd, sw->del_revs, n, sw->gone);
	sw->st.orphans += removed;
	return removed;
}

/*
 * Walk w from where it stopped, each batch through fn (which returns how
 * many of its entries it removed), until budget entries were seen or the
 * pass's time is up (one batch at least); *left counts the entries left by
 * the walk under way, and *total gets it when the walk ends. 1 when the walk
 * ended, 0 when it goes on next time, or -errno.
 */
static int sweep_walk(struct ag_xdp_sweep *sw, const struct pass *p, struct ag_batch_walk *w,
		      uint64_t budget, uint64_t *left, uint64_t *total,
		      unsigned int (*fn)(struct ag_xdp_sweep *sw, const struct pass *p,
					 __u32 count))
{
	uint64_t seen = 0;
	__u32 count;
	int more;

	do {
		more = batch_next(w, &count);
		if (more < 0) {
			*left = 0;
			return more;
		}
		*left += count - fn(sw, p, count);
		seen += count;
	} while (more > 0 && seen < budget && ag_now_ns() < p->deadline);
	if (more)
		return 0;
	*total = *left;
	*left = 0;
	return 1;
}

int ag_xdp_sweep__pass(struct ag_xdp_sweep *sw, const struct ag_settings *s, bool table_full,
		       uint64_t now)
{
	uint64_t start = ag_now_ns();
	struct pass p = {
	    .s = s,
	    .now = now,
	    .pressure = ag_sweep__pressure(sw->st.flows, sw->max_flows, table_full),
	};
	int ended;

	if (p.pressure != sw->st.pressure) {
		if (p.pressure)
			pr_warn("flow table near full (%llu of %u entries%s): removing half-open "
				"and closing flows quiet for %llu ms before their timeout\n",
				(unsigned long long)sw->st.flows, sw->max_flows,
				table_full ? ", new flows refused" : "",
				AG_SWEEP_EVICT_QUIET_NS / 1000000);
		else
			pr_info("flow table below %u%% full again (%llu of %u entries)\n",
				AG_SWEEP_PRESSURE_PCT, (unsigned long long)sw->st.flows,
				sw->max_flows);
	}
	sw->st.passes++;
	sw->st.pressure = p.pressure;
	/* Under pressure a longer slice, and no cap on entries: room is needed now. */
	p.deadline = start + (p.pressure ? AG_SWEEP_PRESSURE_SLICE_NS : AG_SWEEP_SLICE_NS);
	ended = sweep_walk(sw, &p, &sw->flows, p.pressure ? sw->max_flows : sw->pass_flows,
			   &sw->cycle_flows, &sw->st.flows, sweep_flow_batch);
	/* Orphans are rare (races only): their walk goes on once per walk of the flows. */
	if (ended == 1)
		ended = sweep_walk(sw, &p, &sw->revs, sw->pass_revs, &sw->cycle_revs,
				   &sw->st.nat_revs, sweep_rev_batch);
	sw->st.last_pass_ns = ag_now_ns() - start;
	return ended < 0 ? ended : 0;
}
