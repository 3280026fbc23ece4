/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "anygate.skel.h"
#include "xdp_env.h"

const struct ag_te_listener ag_te_listeners[AG_TE_NLISTENERS] = {
    [AG_TE_L_TCP80] = {AG_TE_L_TCP80, IPPROTO_TCP, 80, 1, AG_AFFINITY_NONE, AG_LF_ACTIVE},
    [AG_TE_L_UDP5000] = {AG_TE_L_UDP5000, IPPROTO_UDP, 5000, 2, AG_AFFINITY_NONE, AG_LF_ACTIVE},
    [AG_TE_L_TCP8000] = {AG_TE_L_TCP8000, IPPROTO_TCP, 8000, 4, AG_AFFINITY_NONE, AG_LF_ACTIVE},
    [AG_TE_L_TCP8001] = {AG_TE_L_TCP8001, IPPROTO_TCP, 8001, 6, AG_AFFINITY_NONE, AG_LF_ACTIVE},
    [AG_TE_L_TCP8002] = {AG_TE_L_TCP8002, IPPROTO_TCP, 8002, 9, AG_AFFINITY_SOURCE_IP,
			 AG_LF_ACTIVE},
    [AG_TE_L_UDP5001] = {AG_TE_L_UDP5001, IPPROTO_UDP, 5001, 10, AG_AFFINITY_NONE, AG_LF_ACTIVE},
    [AG_TE_L_TCP8003] = {AG_TE_L_TCP8003, IPPROTO_TCP, 8003, 12, AG_AFFINITY_NONE, 0},
    [AG_TE_L_TCP8004] = {AG_TE_L_TCP8004, IPPROTO_TCP, 8004, 14, AG_AFFINITY_NONE, AG_LF_ACTIVE},
};

static const struct {
	uint32_t id;
	uint32_t addr;
	uint32_t group;
	uint8_t state;
} backends[] = {
    {AG_TE_B1, AG_TN_BACKEND1, 1, AG_BACKEND_UP},
    {AG_TE_B2, AG_TN_BACKEND2, 1, AG_BACKEND_UP},
    {AG_TE_B3, AG_IP4(10, 1, 1, 13), 2, AG_BACKEND_UP},
    {AG_TE_B4, AG_TN_NONEIGH, 3, AG_BACKEND_UP},
    {AG_TE_B5, AG_IP4(10, 1, 1, 15), 1, AG_BACKEND_UP},
    {AG_TE_B6, AG_IP4(10, 1, 1, 16), 1, AG_BACKEND_DOWN},
};

uint32_t ag_xdp_env__backend_addr(uint32_t bid)
{
	size_t i;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (backends[i].id == bid)
			return backends[i].addr;
	return 0;
}

/*
 * The live table of each listener: fixed patterns with uneven shares, so a
 * wrong index (slot, modulo, hash) lands on a different backend somewhere.
 */
static uint32_t table_pattern(uint32_t listener, uint32_t i)
{
	switch (listener) {
	case AG_TE_L_TCP80:
		return (i * 7) % 3 == 0 ? AG_TE_B2 : AG_TE_B1;
	case AG_TE_L_UDP5000:
		return i % 2 ? AG_TE_B1 : AG_TE_B2;
	case AG_TE_L_TCP8000:
		return AG_TE_B3;
	case AG_TE_L_TCP8001:
		return AG_BACKEND_NONE;
	case AG_TE_L_TCP8002:
		return i % 5 < 2 ? AG_TE_B1 : AG_TE_B2;
	case AG_TE_L_UDP5001:
		return AG_TE_B4;
	case AG_TE_L_TCP8003:
		return AG_TE_B1;
	case AG_TE_L_TCP8004:
		return AG_TE_B6;
	}
	return AG_BACKEND_NONE;
}

/*
 * ag_lookup is an array of 64-byte buckets of AG_LOOKUP_LANES ids (abi.h):
 * dense in the mmap, so the mapping is the flat __u32 table.
 */
static uint32_t *lookup_at(const struct ag_xdp_env *env, size_t i)
{
	return &env->lookup[i];
}

uint32_t ag_xdp_env__table_entry(const struct ag_xdp_env *env, uint32_t listener, uint32_t i)
{
	return *lookup_at(env, (size_t)ag_te_listeners[listener].slot * AG_TE_RING + i);
}

void ag_xdp_env__set_table_entry(const struct ag_xdp_env *env, uint32_t listener, uint32_t i,
				 uint32_t bid)
{
	*lookup_at(env, (size_t)ag_te_listeners[listener].slot * AG_TE_RING + i) = bid;
}

static int update(struct bpf_map *map, const void *key, const void *val, const char *what)
{
	int err = bpf_map_update_elem(bpf_map__fd(map), key, val, BPF_ANY);

	if (err)
		fprintf(stderr, "xdp_env: update %s: %s\n", what, strerror(-err));
	return err;
}

/* The mmap view and the syscall view of ag_lookup must agree, entry by entry. */
static int check_lookup_layout(const struct ag_xdp_env *env)
{
	int fd = bpf_map__fd(env->skel->maps.ag_lookup);
	struct ag_lookup_bucket b;
	__u32 i, bucket;
	int err;

	for (i = 0; i < AG_LOOKUP_SLOTS * AG_TE_RING; i += 97) {
		bucket = i / AG_LOOKUP_LANES;
		err = bpf_map_lookup_elem(fd, &bucket, &b);
		if (err || b.backend[i % AG_LOOKUP_LANES] != *lookup_at(env, i)) {
			fprintf(stderr, "xdp_env: ag_lookup[%u] is %u by syscall, %u by mmap\n", i,
				err ? 0 : b.backend[i % AG_LOOKUP_LANES], *lookup_at(env, i));
			return err ? err : -EINVAL;
		}
	}
	return 0;
}

int ag_xdp_env__write_settings(const struct ag_xdp_env *env)
{
	__u32 zero = 0;

	return update(env->skel->maps.ag_settings, &zero, &env->settings, "ag_settings");
}

int ag_xdp_env__set_backend(const struct ag_xdp_env *env, uint32_t id, uint32_t addr,
			    uint32_t group, uint8_t state)
{
	struct ag_backend b;

	memset(&b, 0, sizeof(b));
	b.addr = htonl(addr);
	b.group_id = group;
	b.state = state;
	b.mode = AG_MODE_NAT;
	return update(env->skel->maps.ag_backends, &id, &b, "ag_backends");
}

int ag_xdp_env__set_backend_state(const struct ag_xdp_env *env, uint32_t id, uint8_t state)
{
	int fd = bpf_map__fd(env->skel->maps.ag_backends);
	struct ag_backend b;
	int err;

	err = bpf_map_lookup_elem(fd, &id, &b);
	if (err) {
		fprintf(stderr, "xdp_env: read ag_backends[%u]: %s\n", id, strerror(-err));
		return err;
	}
	b.state = state;
	return update(env->skel->maps.ag_backends, &id, &b, "ag_backends");
}

int ag_xdp_env__set_iface(const struct ag_xdp_env *env, int ifindex, const uint8_t *mac,
			  uint8_t roles)
{
	struct ag_iface v;
	__u32 key = (__u32)ifindex;

	memset(&v, 0, sizeof(v));
	if (mac)
		memcpy(v.mac, mac, 6);
	v.roles = roles;
	return update(env->skel->maps.ag_ifaces, &key, &v, "ag_ifaces");
}

int ag_xdp_env__set_ifaces(const struct ag_xdp_env *env)
{
	int err = ag_xdp_env__set_iface(env, env->tn.ifindex_c, env->tn.mac_c, AG_ROLE_CLIENT);

	return err ? err
		   : ag_xdp_env__set_iface(env, env->tn.ifindex_b, env->tn.mac_b, AG_ROLE_BACKEND);
}

static int fill_maps(struct ag_xdp_env *env)
{
	struct anygate_bpf *skel = env->skel;
	struct ag_settings *s = &env->settings;
	struct ag_port_ovr_key ok;
	struct ag_port_ovr ov;
	__u32 one = 1;
	__be32 vip;
	size_t i, j;
	int err;

	memset(s, 0, sizeof(*s));
	s->abi_version = AG_ABI_VERSION;
	s->hash_seed = AG_TE_SEED;
	s->ring_size = AG_TE_RING;
	s->nat_addr_count = 1;
	s->nat_addrs[0] = htonl(AG_TN_NAT);
	s->tcp_idle_ns = AG_TE_TCP_IDLE_NS;
	s->udp_idle_ns = AG_TE_UDP_IDLE_NS;
	s->tcp_syn_idle_ns = AG_TE_SYN_IDLE_NS;
	s->tcp_closing_ns = AG_TE_CLOSING_NS;
	s->syn_auth_secret = 0x0123456789abcdefULL;
	s->syn_auth_ttl_ns = AG_TE_AUTH_TTL_NS;
	s->nat_port_min = AG_TE_NAT_PORT_MIN;
	s->nat_port_max = AG_TE_NAT_PORT_MAX;
	err = ag_xdp_env__write_settings(env);
	if (err)
		return err;

	/* As anygated registers the interfaces it attaches to: agc0 client, agb0 backend. */
	err = ag_xdp_env__set_ifaces(env);
	if (err)
		return err;

	vip = htonl(AG_TN_VIP);
	err = update(skel->maps.ag_vips, &vip, &one, "ag_vips");
	if (err)
		return err;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		err = ag_xdp_env__set_backend(env, backends[i].id, backends[i].addr,
					      backends[i].group, backends[i].state);
		if (err)
			return err;
	}

	/* Group 2 listens on 8080 for port 8000; group 1's entry for 8000 is a decoy. */
	memset(&ok, 0, sizeof(ok));
	memset(&ov, 0, sizeof(ov));
	ok.group_id = 2;
	ok.port = htons(8000);
	ov.port = htons(8080);
	err = update(skel->maps.ag_port_ovr, &ok, &ov, "ag_port_ovr");
	if (err)
		return err;
	ok.group_id = 1;
	ov.port = htons(9999);
	err = update(skel->maps.ag_port_ovr, &ok, &ov, "ag_port_ovr");
	if (err)
		return err;

	for (i = 0; i < AG_TE_NLISTENERS; i++) {
		const struct ag_te_listener *l = &ag_te_listeners[i];
		struct ag_listener_state st;
		struct ag_listener_key lk;
		__u32 id = l->id, spare;

		memset(&lk, 0, sizeof(lk));
		lk.vip = htonl(AG_TN_VIP);
		lk.port = htons(l->port);
		lk.proto = l->proto;
		err = update(skel->maps.ag_listeners, &lk, &id, "ag_listeners");
		if (err)
			return err;
		memset(&st, 0, sizeof(st));
		st.slot = l->slot;
		st.generation = 1;
		st.affinity = l->affinity;
		st.flags = l->flags;
		err = update(skel->maps.ag_lstate, &id, &st, "ag_lstate");
		if (err)
			return err;
		/* The spare slot of the pair holds a decoy backend: reading it is a bug. */
		spare = l->slot ^ 1;
		for (j = 0; j < AG_TE_RING; j++) {
			*lookup_at(env, (size_t)l->slot * AG_TE_RING + j) =
			    table_pattern(l->id, (uint32_t)j);
			*lookup_at(env, (size_t)spare * AG_TE_RING + j) = AG_TE_B5;
		}
	}
	return check_lookup_layout(env);
}

int ag_xdp_env__open(struct ag_xdp_env *env, uint32_t flows)
{
	long page = sysconf(_SC_PAGESIZE);
	int err;

	env->skel = NULL;
	env->lookup = MAP_FAILED;
	env->ncpus = libbpf_num_possible_cpus();
	if (env->ncpus < 1) {
		fprintf(stderr, "xdp_env: cannot count possible CPUs\n");
		return -EINVAL;
	}
	env->skel = anygate_bpf__open();
	if (!env->skel) {
		err = -errno;
		fprintf(stderr, "xdp_env: open skeleton: %s\n", strerror(errno));
		return err;
	}
	err = bpf_map__set_max_entries(env->skel->maps.ag_lookup, AG_LOOKUP_BUCKETS(AG_TE_RING));
	if (!err)
		err = bpf_map__set_max_entries(env->skel->maps.ag_flows, flows);
	if (!err)
		err = bpf_map__set_max_entries(env->skel->maps.ag_nat_rev, flows);
	/* Listener keys are preallocated: the default 256k keys would cost ~20 MiB. */
	if (!err)
		err = bpf_map__set_max_entries(env->skel->maps.ag_listeners, 1024);
	if (err) {
		fprintf(stderr, "xdp_env: set_max_entries: %s\n", strerror(-err));
		goto fail;
	}
	err = anygate_bpf__load(env->skel);
	if (err) {
		fprintf(stderr, "xdp_env: load: %s\n", strerror(-err));
		goto fail;
	}
	env->prog_fd = bpf_program__fd(env->skel->progs.anygate_xdp);
	env->lookup_len =
	    ((size_t)AG_LOOKUP_BUCKETS(AG_TE_RING) * sizeof(struct ag_lookup_bucket) + page - 1) /
	    page * page;
	env->lookup = mmap(NULL, env->lookup_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			   bpf_map__fd(env->skel->maps.ag_lookup), 0);
	if (env->lookup == MAP_FAILED) {
		err = -errno;
		fprintf(stderr, "xdp_env: mmap ag_lookup: %s\n", strerror(errno));
		goto fail;
	}
	err = fill_maps(env);
	if (err)
		goto fail;
	return 0;
fail:
	ag_xdp_env__close(env);
	return err;
}

void ag_xdp_env__close(struct ag_xdp_env *env)
{
	if (env->lookup != MAP_FAILED && env->lookup)
		munmap(env->lookup, env->lookup_len);
	env->lookup = MAP_FAILED;
	anygate_bpf__destroy(env->skel);
	env->skel = NULL;
}

int ag_xdp_env__run(const struct ag_xdp_env *env, int ifindex, const uint8_t *in, int len, int meta,
		    uint8_t *out, int *out_len, uint32_t *verdict)
{
	struct xdp_md ctx = {
	    .data = (__u32)meta,
	    .data_end = (__u32)len,
	    .ingress_ifindex = (__u32)ifindex,
	};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = (__u32)len,
		    .data_out = out, .data_size_out = AG_PKT_MAX, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1, );
	int err;

	err = bpf_prog_test_run_opts(env->prog_fd, &opts);
	if (err)
		return err;
	*out_len = (int)opts.data_size_out;
	*verdict = opts.retval;
	return 0;
}

int ag_xdp_env__rstats(const struct ag_xdp_env *env, struct ag_reason_stats out[AG_R__MAX])
{
	struct ag_reason_stats *v;
	__u32 r;
	int c, err = 0;

	v = calloc((size_t)env->ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (r = 0; r < AG_R__MAX; r++) {
		err = bpf_map_lookup_elem(bpf_map__fd(env->skel->maps.ag_rstats), &r, v);
		if (err)
			break;
		memset(&out[r], 0, sizeof(out[r]));
		for (c = 0; c < env->ncpus; c++) {
			out[r].packets += v[c].packets;
			out[r].bytes += v[c].bytes;
		}
	}
	free(v);
	return err;
}

int ag_xdp_env__tstats(const struct ag_xdp_env *env, bool backend, uint32_t id,
		       struct ag_traffic_stats *out)
{
	struct bpf_map *map = backend ? env->skel->maps.ag_bstats : env->skel->maps.ag_lstats;
	struct ag_traffic_stats *v;
	int c, err;

	v = calloc((size_t)env->ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	err = bpf_map_lookup_elem(bpf_map__fd(map), &id, v);
	memset(out, 0, sizeof(*out));
	for (c = 0; !err && c < env->ncpus; c++) {
		out->packets += v[c].packets;
		out->bytes += v[c].bytes;
		out->new_flows += v[c].new_flows;
		out->ret_packets += v[c].ret_packets;
		out->ret_bytes += v[c].ret_bytes;
	}
	free(v);
	return err;
}

int ag_xdp_env__probe(const struct ag_xdp_env *env)
{
	/* An ARP request: passed, and counted under pass_not_ipv4 (tests compare deltas). */
	uint8_t frame[60], out[AG_PKT_MAX];
	uint32_t verdict;
	int out_len;

	memset(frame, 0, sizeof(frame));
	memset(frame, 0xff, 6);
	memcpy(frame + 6, env->tn.mac_peer, 6);
	frame[12] = ETH_P_ARP >> 8;
	frame[13] = ETH_P_ARP & 0xff;
	return ag_xdp_env__run(env, env->tn.ifindex_c, frame, sizeof(frame), 0, out, &out_len,
			       &verdict);
}
