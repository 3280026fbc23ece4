/* SPDX-License-Identifier: BSD-3-Clause */
#include "xdp.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if_arp.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "anygate.skel.h"
#include "flow.h"
#include "log.h"
#include "loop.h"
#include "xdp_flows.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

/*
 * Every attachment is a bpf_link pinned at <bpffs_dir>/link_<ifname>: the pin,
 * not our fd, keeps the program attached, so the fast path can outlive
 * anygated (restart, upgrade) and a new anygated finds the link again.
 */
#define AG_LINK_PIN_PREFIX "link_"

struct ag_xdp_link {
	int fd;
	int ifindex;
	bool adopted; /* found pinned: our program was swapped in */
	char name[IFNAMSIZ];
	char pin[PATH_MAX];
};

struct ag_xdp {
	struct ag_fastpath fp;
	struct anygate_bpf *skel;
	char dir[PATH_MAX];
	uint32_t ring_size;
	uint32_t *lookup; /* mmap of ag_lookup */
	size_t lookup_len;
	struct ag_listener_state *lstate; /* mmap of ag_lstate */
	size_t lstate_len;
	struct ag_xdp_link links[AG_MAX_IFACES];
	unsigned int n_links;
	int ncpus;
	unsigned int maps_found;  /* compatible maps already pinned at open */
	unsigned int links_found; /* pinned links adopted at attach */
	struct ag_xdp_sweep sweep;
	uint64_t full_seen; /* drop_flow_table_full at the last sweep */
	bool swept_once;
};

static struct ag_xdp *xdp_of(const struct ag_fastpath *fp)
{
	return ag_container_of(fp, struct ag_xdp, fp);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum ag_log_level ours;

	switch (level) {
	case LIBBPF_WARN:
		ours = AG_LOG_INFO;
		break;
	case LIBBPF_INFO:
		ours = AG_LOG_DEBUG;
		break;
	default:
		return 0; /* libbpf debug output is too chatty even for -v */
	}
	ag_log__v(ours, "libbpf: ", fmt, ap);
	return 0;
}

/* libbpf's messages go through our log, one level quieter than our own. */
static void hook_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}

/*
 * The i-th map of the program, NULL past the last: every map it declares,
 * so that a map the program gains is pinned, adopted and removed with the
 * others without a list to keep here.
 */
static struct bpf_map *nth_map(struct bpf_object *obj, unsigned int i)
{
	struct bpf_map *map;
	unsigned int n = 0;

	bpf_object__for_each_map(map, obj)
	{
		if (bpf_map__is_internal(map))
			continue; /* .rodata, .bss: the object's own, never pinned */
		if (n++ == i)
			return map;
	}
	return NULL;
}

static struct bpf_map *all_maps(struct ag_xdp *x, unsigned int i)
{
	return nth_map(x->skel->obj, i);
}

static void *map_mmap(struct bpf_map *map, size_t *len)
{
	long page = sysconf(_SC_PAGESIZE);
	/* The kernel lays elements out round_up(value_size, 8) apart. */
	size_t elem = ((size_t)bpf_map__value_size(map) + 7) / 8 * 8;
	size_t size = elem * bpf_map__max_entries(map);
	void *mem;

	size = (size + page - 1) / page * page;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
	if (mem == MAP_FAILED)
		return NULL;
	*len = size;
	return mem;
}

static int check_bpffs(const char *dir)
{
	struct statfs st;

	if (statfs(dir, &st)) {
		pr_err("bpffs_dir %s: %s (mount a bpffs there: mount -t bpf bpf %s)\n", dir,
		       strerror(errno), dir);
		return -errno;
	}
	if ((unsigned long)st.f_type != BPF_FS_MAGIC) {
		pr_err("bpffs_dir %s is not on a bpf filesystem (mount -t bpf bpf %s)\n", dir, dir);
		return -EINVAL;
	}
	return 0;
}

static const char *map_type_name(__u32 type)
{
	const char *n = libbpf_bpf_map_type_str(type);

	return n ? n : "unknown";
}

/* Why a size could differ: the config key behind it, for the error message. */
static const char *size_hint(const char *map)
{
	if (!strcmp(map, AG_MAP_LOOKUP))
		return " (edge.ring_size changed?)";
	if (!strcmp(map, AG_MAP_FLOWS) || !strcmp(map, AG_MAP_NAT_REV))
		return " (edge.max_flows changed?)";
	return " (pinned by another anygate version?)";
}

/*
 * The ABI version the pinned settings were written by: 0 when there are
 * none (or nothing was published into them), else the version, whatever the
 * layout around it (abi_version is the first field of every version).
 */
static unsigned int pinned_abi(const struct ag_xdp *x)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), zero = 0, abi = 0;
	void *val = NULL;
	int fd;

	fd = bpf_obj_get(bpf_map__pin_path(x->skel->maps.ag_settings));
	if (fd < 0)
		return 0;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.key_size == sizeof(zero) &&
	    info.value_size >= sizeof(abi) && (val = calloc(1, info.value_size)) &&
	    !bpf_map_lookup_elem(fd, &zero, val))
		memcpy(&abi, val, sizeof(abi));
	free(val);
	close(fd);
	return abi;
}

/*
 * Before load: is every map already pinned under bpffs_dir one libbpf can
 * reuse? libbpf would refuse an incompatible one with a terse debug line;
 * here the operator learns which map, which property, and what to do.
 * Counts the compatible pins found into x->maps_found.
 */
static int check_pinned_maps(struct ag_xdp *x)
{
	struct bpf_map *map;
	unsigned int i;
	int err = 0;

	for (i = 0; (map = all_maps(x, i)); i++) {
		const char *name = bpf_map__name(map), *what = NULL;
		struct bpf_map_info info = {};
		__u32 len = sizeof(info), have = 0, want = 0;
		int fd = bpf_obj_get(bpf_map__pin_path(map));

		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			err = -errno;
			pr_err("pinned map %s: %s\n", bpf_map__pin_path(map), strerror(errno));
			break;
		}
		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			err = -errno;
			pr_err("pinned map %s: %s (is it a BPF map?)\n", bpf_map__pin_path(map),
			       strerror(errno));
			close(fd);
			break;
		}
		close(fd);
		if (info.type != bpf_map__type(map)) {
			pr_err("pinned map %s is a %s map, this anygated needs %s\n",
			       bpf_map__pin_path(map), map_type_name(info.type),
			       map_type_name(bpf_map__type(map)));
			err = -EINVAL;
			continue;
		}
		if (info.key_size != bpf_map__key_size(map)) {
			what = "key size", have = info.key_size, want = bpf_map__key_size(map);
		} else if (info.value_size != bpf_map__value_size(map)) {
			what = "value size", have = info.value_size,
			want = bpf_map__value_size(map);
		} else if (info.max_entries != bpf_map__max_entries(map)) {
			what = "max_entries", have = info.max_entries,
			want = bpf_map__max_entries(map);
		} else if (info.map_flags != bpf_map__map_flags(map)) {
			what = "flags", have = info.map_flags, want = bpf_map__map_flags(map);
		}
		if (what) {
			pr_err("pinned map %s: %s %u, this anygated needs %u%s\n",
			       bpf_map__pin_path(map), what, have, want,
			       strcmp(what, "max_entries") ? " (pinned by another anygate version?)"
							   : size_hint(name));
			err = -EINVAL;
			continue;
		}
		x->maps_found++;
	}
	if (err == -EINVAL)
		pr_err("the fast path pinned under %s cannot be adopted: remove it with "
		       "`anygated --detach -c CONFIG` (this stops forwarding and drops its flows), "
		       "or restore the previous config\n",
		       x->dir);
	return err;
}

static void xdp_free(struct ag_xdp *x);

/* Size the maps for edge; each is pinned (or found pinned) under bpffs_dir. */
static int set_pin_paths(struct ag_xdp *x, const struct ag_cfg_edge *edge)
{
	struct bpf_map *map;
	unsigned int i;
	int err;

	bpf_map__set_max_entries(x->skel->maps.ag_lookup, AG_LOOKUP_BUCKETS(edge->ring_size));
	bpf_map__set_max_entries(x->skel->maps.ag_flows, edge->max_flows);
	bpf_map__set_max_entries(x->skel->maps.ag_nat_rev, edge->max_flows);
	for (i = 0; (map = all_maps(x, i)); i++) {
		char path[PATH_MAX];

		if (snprintf(path, sizeof(path), "%s/%s", x->dir, bpf_map__name(map)) >=
		    (int)sizeof(path)) {
			pr_err("bpffs_dir %s: path too long\n", x->dir);
			return -ENAMETOOLONG;
		}
		/* libbpf reuses a compatible pinned map, or pins the new one here. */
		err = bpf_map__set_pin_path(map, path);
		if (err) {
			pr_err("%s: set pin path: %s\n", path, strerror(-err));
			return err;
		}
	}
	return 0;
}

/*
 * Pins written under another ABI version (ABI 2: LRU flow tables of other
 * layouts) hold tables this program cannot read: refused as a whole, with
 * the way out, before each of their maps would be listed as a mismatch.
 */
static int check_pinned_abi(struct ag_xdp *x)
{
	unsigned int abi = pinned_abi(x);

	if (!abi || abi == AG_ABI_VERSION)
		return 0;
	pr_err("pinned maps under %s were written by anygate ABI version %u, this anygated "
	       "speaks %u: their tables (flows included) cannot be adopted. Remove them with "
	       "`anygated --detach -c CONFIG` (stops forwarding, drops the flows), then start "
	       "anygated again\n",
	       x->dir, abi, AG_ABI_VERSION);
	return -EPROTO;
}

static int load_program(struct ag_xdp *x)
{
	int err = check_pinned_abi(x);

	if (!err)
		err = check_pinned_maps(x);
	if (err)
		return err;
	err = anygate_bpf__load(x->skel);
	if (err)
		/* Pinned maps were checked above: what is left is mostly privilege. */
		pr_err("loading the XDP program: %s%s\n", strerror(-err),
		       err == -EPERM || err == -EACCES
			   ? " (anygated needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, or root; "
			     "libbpf's log above says which check failed)"
			   : " (libbpf's log above has the verifier's reason)");
	return err;
}

/* Tables an earlier anygated left in adopted maps: of our ABI and ring size? */
static int check_adopted_settings(struct ag_xdp *x, const struct ag_cfg_edge *edge)
{
	struct ag_settings cur = {0};
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(x->skel->maps.ag_settings), &zero, &cur) ||
	    !cur.abi_version)
		return 0;
	if (cur.abi_version != AG_ABI_VERSION) {
		pr_err("pinned maps under %s were written by ABI version %u, this anygated speaks "
		       "%u: remove them with `anygated --detach -c CONFIG` (stops forwarding)\n",
		       x->dir, cur.abi_version, AG_ABI_VERSION);
		return -EPROTO;
	}
	if (cur.ring_size != edge->ring_size) {
		pr_err("pinned tables under %s use ring_size %u, config says %u\n", x->dir,
		       cur.ring_size, edge->ring_size);
		return -EINVAL;
	}
	return 0;
}

/*
 * Open and load the program, pinning its maps under bpffs_dir, or adopting
 * maps pinned there by an earlier anygated (flows survive a restart). Pins
 * that cannot be adopted are refused with the map, the property and the way
 * out in the log. NULL + errno on failure.
 */
static struct ag_fastpath *xdp_open(const struct ag_cfg_edge *edge)
{
	struct ag_xdp *x;
	int err;

	hook_libbpf();
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->fp.ops = &ag_xdp__ops;
	x->ring_size = edge->ring_size;
	x->ncpus = libbpf_num_possible_cpus();
	snprintf(x->dir, sizeof(x->dir), "%s", edge->bpffs_dir);

	err = check_bpffs(x->dir);
	if (err)
		goto err_free;
	x->skel = anygate_bpf__open();
	if (!x->skel) {
		err = -errno;
		pr_err("opening the embedded XDP object: %s\n", strerror(errno));
		goto err_free;
	}
	err = set_pin_paths(x, edge);
	if (!err)
		err = load_program(x);
	if (!err)
		err = check_adopted_settings(x, edge);
	if (err)
		goto err_destroy;
	x->lookup = map_mmap(x->skel->maps.ag_lookup, &x->lookup_len);
	x->lstate = map_mmap(x->skel->maps.ag_lstate, &x->lstate_len);
	if (!x->lookup || !x->lstate) {
		err = -errno;
		pr_err("mmap of lookup tables: %s\n", strerror(errno));
		goto err_destroy;
	}
	err = ag_xdp_sweep__init(&x->sweep, bpf_map__fd(x->skel->maps.ag_flows),
				 bpf_map__fd(x->skel->maps.ag_nat_rev), edge->max_flows);
	if (err)
		goto err_destroy;
	if (x->maps_found)
		pr_info("XDP program loaded; adopted %u pinned maps under %s (flows kept; lookup "
			"%u x %u, flows %u)\n",
			x->maps_found, x->dir, AG_LOOKUP_SLOTS, edge->ring_size, edge->max_flows);
	else
		pr_info("XDP program loaded, maps pinned under %s (lookup %u x %u, flows %u)\n",
			x->dir, AG_LOOKUP_SLOTS, edge->ring_size, edge->max_flows);
	return &x->fp;

err_destroy:
	xdp_free(x);
	errno = -err;
	return NULL;
err_free:
	free(x);
	errno = -err;
	return NULL;
}

static int link_pin_path(const char *dir, const char *ifname, char *buf, size_t len)
{
	if (snprintf(buf, len, "%s/" AG_LINK_PIN_PREFIX "%s", dir, ifname) >= (int)len) {
		pr_err("bpffs_dir %s: path too long\n", dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * A link pinned for this interface by an earlier anygated: still attached
 * to this very interface? Returns its fd, -ENOENT when there is none (or it
 * is stale: its interface went away; the stale pin is removed), or -errno.
 */
static int find_pinned_link(const char *pin, const char *name, int ifindex)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(pin), err;

	if (fd < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		err = -errno;
		pr_err("pinned link %s: %s\n", pin, strerror(-err));
		return err;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		pr_err("pinned link %s: %s (not a BPF link? remove it)\n", pin, strerror(-err));
		close(fd);
		return err;
	}
	if (info.type != BPF_LINK_TYPE_XDP) {
		pr_err("pinned link %s is not an XDP link (type %u): remove it\n", pin, info.type);
		close(fd);
		return -EINVAL;
	}
	if ((int)info.xdp.ifindex != ifindex) {
		/* ifindex 0: the interface it was attached to is gone. */
		pr_warn("pinned link %s belongs to ifindex %u, %s is ifindex %d now: stale, "
			"replaced\n",
			pin, info.xdp.ifindex, name, ifindex);
		bpf_link_detach(fd);
		close(fd);
		unlink(pin);
		return -ENOENT;
	}
	return fd;
}

/* Links pinned for interfaces no longer configured: detach them, they would forward forever. */
static void drop_unconfigured_links(struct ag_xdp *x, const struct ag_cfg_edge *edge)
{
	DIR *dir = opendir(x->dir);
	struct dirent *de;
	unsigned int i;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		const char *ifname = de->d_name + strlen(AG_LINK_PIN_PREFIX);
		char pin[PATH_MAX];
		int fd;

		if (strncmp(de->d_name, AG_LINK_PIN_PREFIX, strlen(AG_LINK_PIN_PREFIX)))
			continue;
		for (i = 0; i < edge->n_ifaces; i++)
			if (!strcmp(edge->ifaces[i].name, ifname))
				break;
		if (i < edge->n_ifaces || link_pin_path(x->dir, ifname, pin, sizeof(pin)))
			continue;
		fd = bpf_obj_get(pin);
		if (fd >= 0) {
			bpf_link_detach(fd);
			close(fd);
		}
		unlink(pin);
		pr_warn("XDP link of %s (pinned, no longer in edge.interfaces) detached\n", ifname);
	}
	closedir(dir);
}

/* Adopt l's pinned link: one atomic swap, packets see the old program or ours, never none. */
static int adopt_link(struct ag_xdp *x, struct ag_xdp_link *l, int prog_fd)
{
	int err;

	if (bpf_link_update(l->fd, prog_fd, NULL)) {
		err = -errno;
		pr_err("XDP on %s: replacing the program in pinned link %s: %s\n", l->name, l->pin,
		       strerror(-err));
		close(l->fd);
		return err;
	}
	l->adopted = true;
	x->links_found++;
	pr_info("XDP on %s (ifindex %d): adopted pinned link %s, program replaced atomically\n",
		l->name, l->ifindex, l->pin);
	return 0;
}

/* A new link for l in native mode, pinned: the pin, not our fd, keeps it attached. */
static int create_link(struct ag_xdp_link *l, int prog_fd)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
	int err;

	l->fd = bpf_link_create(prog_fd, l->ifindex, BPF_XDP, &opts);
	if (l->fd < 0) {
		err = -errno;
		pr_err("attaching XDP in native mode to %s (ifindex %d): %s%s\n", l->name,
		       l->ifindex, strerror(-err),
		       err == -EBUSY || err == -EEXIST ? " (another XDP program is attached)"
		       : err == -EOPNOTSUPP	       ? " (driver has no native XDP)"
						       : "");
		return err;
	}
	if (bpf_obj_pin(l->fd, l->pin)) {
		err = -errno;
		pr_err("pinning the XDP link of %s at %s: %s\n", l->name, l->pin, strerror(-err));
		close(l->fd); /* unpinned: closing detaches */
		return err;
	}
	pr_info("XDP attached to %s (ifindex %d, native mode), link pinned at %s\n", l->name,
		l->ifindex, l->pin);
	return 0;
}

/*
 * The MAC of Ethernet interface name, from its AF_PACKET address
 * (getifaddrs: netlink underneath). 0, -ENODEV (gone), -EPROTOTYPE (not
 * Ethernet) or -errno.
 */
static int iface_mac(const char *name, uint8_t mac[6])
{
	struct ifaddrs *all, *a;
	int err = -ENODEV;

	if (getifaddrs(&all))
		return -errno;
	for (a = all; a; a = a->ifa_next) {
		const struct sockaddr_ll *ll = (const struct sockaddr_ll *)(void *)a->ifa_addr;

		if (!ll || ll->sll_family != AF_PACKET || strcmp(a->ifa_name, name))
			continue;
		err = -EPROTOTYPE;
		if (ll->sll_hatype == ARPHRD_ETHER && ll->sll_halen == 6) {
			memcpy(mac, ll->sll_addr, 6);
			err = 0;
		}
		break;
	}
	freeifaddrs(all);
	return err;
}

/*
 * Tell the program interface ci (ifindex) before it runs there: its MAC
 * (frames to any other unicast address are not ours) and its role (which
 * way traffic may arrive on it). Rewritten on every start: the config may
 * have changed a role, the host the MAC. 0 or -errno.
 */
static int register_iface(struct ag_xdp *x, const struct ag_cfg_iface *ci, int ifindex)
{
	struct ag_iface v;
	__u32 key = (__u32)ifindex;
	int err;

	if (ifindex >= AG_MAX_IFINDEX) {
		pr_err("interface %s has ifindex %d: anygate's interface table (ag_ifaces) is "
		       "indexed by ifindex and holds ifindexes below %d (AG_MAX_IFINDEX); "
		       "interfaces created and deleted many times get large ones (recreate it, "
		       "or move it to a fresh namespace)\n",
		       ci->name, ifindex, AG_MAX_IFINDEX);
		return -ERANGE;
	}
	memset(&v, 0, sizeof(v));
	err = iface_mac(ci->name, v.mac);
	if (err) {
		pr_err("interface %s: reading its MAC address: %s%s\n", ci->name, strerror(-err),
		       err == -EPROTOTYPE ? " (not an Ethernet interface: XDP forwarding needs one)"
					  : "");
		return err;
	}
	v.roles = ag_cfg__role_bits(ci->role);
	if (bpf_map_update_elem(bpf_map__fd(x->skel->maps.ag_ifaces), &key, &v, BPF_ANY)) {
		err = -errno;
		pr_err("interface %s: registering it in %s: %s\n", ci->name, AG_MAP_IFACES,
		       strerror(errno));
		return err;
	}
	pr_info("interface %s (ifindex %d): MAC %02x:%02x:%02x:%02x:%02x:%02x, role %s\n", ci->name,
		ifindex, v.mac[0], v.mac[1], v.mac[2], v.mac[3], v.mac[4], v.mac[5],
		ag_cfg__roles_name(v.roles));
	return 0;
}

/*
 * Interface ci's link into x->links[x->n_links]: registered in ag_ifaces
 * first, then adopted if pinned, else new.
 */
static int attach_one(struct ag_xdp *x, const struct ag_cfg_iface *ci, int prog_fd)
{
	struct ag_xdp_link *l = &x->links[x->n_links];
	const char *name = ci->name;
	int err;

	memset(l, 0, sizeof(*l));
	l->ifindex = if_nametoindex(name);
	if (!l->ifindex) {
		err = -errno;
		pr_err("interface %s: %s\n", name, strerror(errno));
		return err;
	}
	err = register_iface(x, ci, l->ifindex);
	if (err)
		return err;
	err = link_pin_path(x->dir, name, l->pin, sizeof(l->pin));
	if (err)
		return err;
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->fd = find_pinned_link(l->pin, name, l->ifindex);
	if (l->fd >= 0)
		err = adopt_link(x, l, prog_fd);
	else if (l->fd == -ENOENT)
		err = create_link(l, prog_fd);
	else
		err = l->fd;
	if (!err)
		x->n_links++;
	return err;
}

/* Undo the links from first on that were new; adopted links were forwarding before us. */
static void undo_new_links(struct ag_xdp *x, unsigned int first)
{
	unsigned int i, kept;

	for (i = first, kept = first; i < x->n_links; i++) {
		struct ag_xdp_link *l = &x->links[i];

		if (l->adopted) {
			if (kept != i)
				x->links[kept] = *l;
			kept++;
			continue;
		}
		bpf_link_detach(l->fd);
		unlink(l->pin);
		close(l->fd);
		pr_info("XDP detached from %s\n", l->name);
	}
	x->n_links = kept;
}

/*
 * Attach to every configured interface in native (driver) mode, each as a
 * bpf_link pinned at <bpffs_dir>/link_<ifname>. A link pinned there by an
 * earlier anygated is adopted: our program replaces its program atomically
 * (bpf_link_update), so forwarding never stops. Links pinned for interfaces
 * no longer configured are detached. 0 or -errno (what this call attached
 * anew is undone; adopted links stay).
 */
static int xdp_attach(struct ag_fastpath *fp, const struct ag_cfg_edge *edge)
{
	struct ag_xdp *x = xdp_of(fp);
	int prog_fd = bpf_program__fd(x->skel->progs.anygate_xdp);
	unsigned int i, first = x->n_links;
	int err;

	drop_unconfigured_links(x, edge);
	for (i = 0; i < edge->n_ifaces; i++) {
		err = attach_one(x, &edge->ifaces[i], prog_fd);
		if (err) {
			undo_new_links(x, first);
			return err;
		}
	}
	return 0;
}

/* True when open or attach found a fast path pinned by an earlier anygated. */
static bool xdp_adopted(const struct ag_fastpath *fp)
{
	const struct ag_xdp *x = xdp_of(fp);

	return x->maps_found || x->links_found;
}

/* Detach every link, even one pinned or held elsewhere, and remove the link pins. */
static void detach_links(struct ag_xdp *x)
{
	while (x->n_links) {
		struct ag_xdp_link *l = &x->links[--x->n_links];

		/* Detach whatever else holds the link, then drop the pin that kept it. */
		if (bpf_link_detach(l->fd))
			pr_warn("detaching XDP from %s: %s\n", l->name, strerror(errno));
		if (unlink(l->pin) && errno != ENOENT)
			pr_warn("removing %s: %s\n", l->pin, strerror(errno));
		close(l->fd);
		pr_info("XDP detached from %s\n", l->name);
	}
}

/*
 * Exit leaving the fast path running (upgrade, restart): close our fds only;
 * links and maps stay pinned, forwarding goes on with the last tables. Logs
 * what stays.
 */
static void keep_pinned(struct ag_xdp *x)
{
	unsigned int i;

	for (i = 0; i < x->n_links; i++) {
		pr_info("keeping the fast path: XDP stays attached to %s (link pinned at %s)\n",
			x->links[i].name, x->links[i].pin);
		close(x->links[i].fd);
	}
	x->n_links = 0;
	pr_info("keeping the fast path: maps stay pinned under %s (tables as last published, "
		"flows kept); start anygated with the same config to adopt them, or remove "
		"them with `anygated --detach -c CONFIG`\n",
		x->dir);
}

/* Detach and unpin every link pinned under dir; *removed counts the pins. 0 or -errno. */
static int remove_link_pins(const char *dir, unsigned int *removed)
{
	char path[PATH_MAX];
	struct dirent *de;
	int fd, err = 0;
	DIR *d = opendir(dir);

	if (!d) {
		err = -errno;
		pr_err("%s: %s\n", dir, strerror(errno));
		return err;
	}
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, AG_LINK_PIN_PREFIX, strlen(AG_LINK_PIN_PREFIX)) ||
		    link_pin_path(dir, de->d_name + strlen(AG_LINK_PIN_PREFIX), path, sizeof(path)))
			continue;
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			if (bpf_link_detach(fd)) {
				pr_err("detaching %s: %s\n", path, strerror(errno));
				err = -errno;
			}
			close(fd);
		}
		if (unlink(path)) {
			pr_err("removing %s: %s\n", path, strerror(errno));
			err = -errno;
			continue;
		}
		(*removed)++;
		pr_info("detached XDP from %s, removed %s\n",
			de->d_name + strlen(AG_LINK_PIN_PREFIX), path);
	}
	closedir(d);
	return err;
}

/*
 * Unpin every map of the program under dir, by the names of the embedded
 * object (opened, not loaded): the pins it would have made. 0 or -errno.
 */
static int remove_map_pins(const char *dir, unsigned int *removed)
{
	struct anygate_bpf *skel = anygate_bpf__open();
	char path[PATH_MAX];
	struct bpf_map *map;
	unsigned int i;
	int err = 0;

	if (!skel) {
		err = -errno;
		pr_err("opening the embedded XDP object: %s\n", strerror(errno));
		return err;
	}
	for (i = 0; (map = nth_map(skel->obj, i)); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map)) >=
		    (int)sizeof(path)) {
			err = -ENAMETOOLONG;
			break;
		}
		if (unlink(path)) {
			if (errno == ENOENT)
				continue;
			pr_err("removing %s: %s\n", path, strerror(errno));
			err = -errno;
			continue;
		}
		(*removed)++;
		pr_info("removed pinned map %s\n", path);
	}
	anygate_bpf__destroy(skel);
	return err;
}

/*
 * `anygated --detach`: without loading anything, detach every XDP link
 * pinned under edge->bpffs_dir and remove the links' and anygate's maps'
 * pins (only names anygate uses). 0 (also when nothing was there) or -errno.
 */
static int xdp_remove_kept(const struct ag_cfg_edge *edge)
{
	unsigned int removed = 0;
	int err, err2;

	hook_libbpf();
	err = check_bpffs(edge->bpffs_dir);
	if (err)
		return err;
	/* Links first: traffic stops being forwarded before the tables go. */
	err = remove_link_pins(edge->bpffs_dir, &removed);
	if (err == -ENOENT || err == -ENOTDIR)
		return err;
	err2 = remove_map_pins(edge->bpffs_dir, &removed);
	if (!err)
		err = err2;
	if (!err)
		pr_info("%s: %u pins removed; no anygate fast path left there\n", edge->bpffs_dir,
			removed);
	return err;
}

/* Remove the pinned maps (after detach): nothing of anygate stays in bpffs. */
static void unpin_maps(struct ag_xdp *x)
{
	struct bpf_map *map;
	unsigned int i;

	if (!x->skel)
		return;
	for (i = 0; (map = all_maps(x, i)); i++) {
		int err = bpf_map__unpin(map, NULL);

		if (err && err != -ENOENT)
			pr_warn("unpin %s: %s\n", bpf_map__name(map), strerror(-err));
	}
	pr_info("maps unpinned from %s\n", x->dir);
}

/* Clean exit: detach and unpin; kept: only our fds close, the pins keep it running. */
static void xdp_release(struct ag_fastpath *fp, bool keep)
{
	struct ag_xdp *x = xdp_of(fp);

	if (keep) {
		keep_pinned(x);
		return;
	}
	detach_links(x);
	unpin_maps(x);
}

static void xdp_free(struct ag_xdp *x)
{
	detach_links(x);
	ag_xdp_sweep__fini(&x->sweep);
	if (x->lookup)
		munmap(x->lookup, x->lookup_len);
	if (x->lstate)
		munmap(x->lstate, x->lstate_len);
	anygate_bpf__destroy(x->skel);
	free(x);
}

static void xdp_close(struct ag_fastpath *fp)
{
	xdp_free(xdp_of(fp));
}

/* --- sink: how the publisher writes into the maps --- */

static int sink_settings(void *ctx, const struct ag_settings *s)
{
	struct ag_xdp *x = ctx;
	uint32_t zero = 0;

	return bpf_map_update_elem(bpf_map__fd(x->skel->maps.ag_settings), &zero, s, BPF_ANY)
		   ? -errno
		   : 0;
}

/*
 * Replace a hash map's content: upsert every wanted entry, then delete the
 * keys that are no longer wanted. Readers see every key either old or new.
 */
static int replace_hash(int fd, size_t key_size, const void *keys, const void *vals,
			size_t val_size, unsigned int n, int (*cmp)(const void *, const void *))
{
	unsigned char cur[64], next[64], *stale = NULL;
	unsigned int i, n_stale = 0, cap = 0;
	void *probe;
	int err = 0;

	for (i = 0; i < n; i++) {
		if (bpf_map_update_elem(fd, (const char *)keys + i * key_size,
					(const char *)vals + i * val_size, BPF_ANY))
			return -errno;
	}
	/* Collect keys not in the wanted set (keys are sorted for bsearch). */
	probe = NULL;
	while (!bpf_map_get_next_key(fd, probe, next)) {
		memcpy(cur, next, key_size);
		probe = cur;
		if (bsearch(cur, keys, n, key_size, cmp))
			continue;
		if (n_stale == cap) {
			unsigned char *grown;

			cap = cap ? cap * 2 : 64;
			grown = realloc(stale, (size_t)cap * key_size);
			if (!grown) {
				err = -ENOMEM;
				goto out;
			}
			stale = grown;
		}
		memcpy(stale + (size_t)n_stale++ * key_size, cur, key_size);
	}
	for (i = 0; i < n_stale; i++)
		bpf_map_delete_elem(fd, stale + (size_t)i * key_size);
out:
	free(stale);
	return err;
}

static int cmp_u32(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(uint32_t));
}

static int cmp_lkey(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ag_listener_key));
}

static int cmp_okey(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ag_port_ovr_key));
}

/* Sort keys (with their values) so stale keys can be found by bsearch. */
static int sorted_copy(const void *keys, const void *vals, size_t ks, size_t vs, unsigned int n,
		       int (*cmp)(const void *, const void *), void **okeys, void **ovals)
{
	size_t rec = ks + vs;
	unsigned char *tmp = malloc(rec * (n ? n : 1));
	unsigned char *k = malloc(ks * (n ? n : 1)), *v = malloc(vs * (n ? n : 1));
	unsigned int i;

	if (!tmp || !k || !v) {
		free(tmp);
		free(k);
		free(v);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		memcpy(tmp + i * rec, (const char *)keys + i * ks, ks);
		memcpy(tmp + i * rec + ks, (const char *)vals + i * vs, vs);
	}
	/* Key first in each record: comparing records by key is comparing keys. */
	qsort(tmp, n, rec, cmp);
	for (i = 0; i < n; i++) {
		memcpy(k + i * ks, tmp + i * rec, ks);
		memcpy(v + i * vs, tmp + i * rec + ks, vs);
	}
	free(tmp);
	*okeys = k;
	*ovals = v;
	return 0;
}

static int sink_vips(void *ctx, const uint32_t *vips, unsigned int n)
{
	struct ag_xdp *x = ctx;
	uint32_t *flags = calloc(n ? n : 1, sizeof(*flags));
	void *k, *v;
	int err;

	if (!flags)
		return -ENOMEM;
	err = sorted_copy(vips, flags, 4, 4, n, cmp_u32, &k, &v);
	free(flags);
	if (err)
		return err;
	err = replace_hash(bpf_map__fd(x->skel->maps.ag_vips), 4, k, v, 4, n, cmp_u32);
	free(k);
	free(v);
	return err;
}

static int sink_listener_keys(void *ctx, const struct ag_listener_key *keys, const uint32_t *ids,
			      unsigned int n)
{
	struct ag_xdp *x = ctx;
	void *k, *v;
	int err;

	err = sorted_copy(keys, ids, sizeof(*keys), 4, n, cmp_lkey, &k, &v);
	if (err)
		return err;
	err = replace_hash(bpf_map__fd(x->skel->maps.ag_listeners), sizeof(*keys), k, v, 4, n,
			   cmp_lkey);
	free(k);
	free(v);
	return err;
}

static int sink_port_overrides(void *ctx, const struct ag_port_ovr_key *keys,
			       const struct ag_port_ovr *vals, unsigned int n)
{
	struct ag_xdp *x = ctx;
	void *k, *v;
	int err;

	err = sorted_copy(keys, vals, sizeof(*keys), sizeof(*vals), n, cmp_okey, &k, &v);
	if (err)
		return err;
	err = replace_hash(bpf_map__fd(x->skel->maps.ag_port_ovr), sizeof(*keys), k, v,
			   sizeof(*vals), n, cmp_okey);
	free(k);
	free(v);
	return err;
}

static int sink_backend(void *ctx, uint32_t id, const struct ag_backend *b)
{
	struct ag_xdp *x = ctx;

	return bpf_map_update_elem(bpf_map__fd(x->skel->maps.ag_backends), &id, b, BPF_ANY) ? -errno
											    : 0;
}

static uint32_t *sink_lookup_slot(void *ctx, uint32_t slot)
{
	struct ag_xdp *x = ctx;

	return x->lookup + (size_t)slot * x->ring_size;
}

static struct ag_listener_state *sink_lstate(void *ctx, uint32_t lid)
{
	struct ag_xdp *x = ctx;

	return &x->lstate[lid];
}

static const struct ag_sink_ops xdp_sink_ops = {
    .settings = sink_settings,
    .vips = sink_vips,
    .listener_keys = sink_listener_keys,
    .port_overrides = sink_port_overrides,
    .backend = sink_backend,
    .lookup_slot = sink_lookup_slot,
    .lstate = sink_lstate,
};

static void xdp_sink(struct ag_fastpath *fp, const struct ag_sink_ops **ops, void **ctx)
{
	*ops = &xdp_sink_ops;
	*ctx = xdp_of(fp);
}

/* The program runs on whichever CPU takes the packet: each has its own ag_cpu budgets. */
static unsigned int xdp_cpus(struct ag_fastpath *fp)
{
	int n = xdp_of(fp)->ncpus;

	return n > 0 ? (unsigned int)n : 0;
}

/* --- counters --- */

static int sum_percpu(struct ag_xdp *x, struct bpf_map *map, uint32_t idx, uint64_t *out,
		      unsigned int n_u64)
{
	size_t vs = bpf_map__value_size(map);
	unsigned char *buf = calloc(x->ncpus, vs);
	int cpu, err = 0;
	unsigned int i;

	if (!buf)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(map), &idx, buf)) {
		err = -errno;
		goto out;
	}
	memset(out, 0, n_u64 * sizeof(*out));
	for (cpu = 0; cpu < x->ncpus; cpu++) {
		const uint64_t *v = (const uint64_t *)(buf + (size_t)cpu * vs);

		for (i = 0; i < n_u64; i++)
			out[i] += v[i];
	}
out:
	free(buf);
	return err;
}

static int xdp_listener_stats(struct ag_fastpath *fp, uint32_t lid, struct ag_traffic_stats *out)
{
	struct ag_xdp *x = xdp_of(fp);

	return sum_percpu(x, x->skel->maps.ag_lstats, lid, (uint64_t *)out, sizeof(*out) / 8);
}

static int xdp_backend_stats(struct ag_fastpath *fp, uint32_t id, struct ag_traffic_stats *out)
{
	struct ag_xdp *x = xdp_of(fp);

	return sum_percpu(x, x->skel->maps.ag_bstats, id, (uint64_t *)out, sizeof(*out) / 8);
}

static int xdp_reason_stats(struct ag_fastpath *fp, enum ag_reason r, struct ag_reason_stats *out)
{
	struct ag_xdp *x = xdp_of(fp);

	return sum_percpu(x, x->skel->maps.ag_rstats, r, (uint64_t *)out, sizeof(*out) / 8);
}

/* Entries in the flow table (walks its keys: for operators, not per packet). */
static long xdp_flow_entries(struct ag_fastpath *fp)
{
	int fd = bpf_map__fd(xdp_of(fp)->skel->maps.ag_flows);
	struct ag_flow_key key, next;
	void *probe = NULL;
	long n = 0;

	while (!bpf_map_get_next_key(fd, probe, &next)) {
		key = next;
		probe = &key;
		n++;
	}
	return n;
}

/* --- flows: the walk and the sweeper (xdp_flows.c) --- */

/* The settings the program applies now: 0, or -errno (-EAGAIN: none published yet). */
static int read_settings(struct ag_xdp *x, struct ag_settings *s)
{
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(x->skel->maps.ag_settings), &zero, s))
		return -errno;
	return ag_settings__usable(s) ? 0 : -EAGAIN;
}

static int xdp_walk_flows(struct ag_fastpath *fp, ag_flow_fn fn, void *ctx)
{
	struct ag_xdp *x = xdp_of(fp);
	struct ag_settings s;
	uint32_t zero = 0;

	/* every entry, also before the first publish (then nothing is live) */
	if (bpf_map_lookup_elem(bpf_map__fd(x->skel->maps.ag_settings), &zero, &s))
		return -errno;
	return ag_xdp_flows__walk(bpf_map__fd(x->skel->maps.ag_flows),
				  bpf_map__fd(x->skel->maps.ag_nat_rev), &s, ag_now_ns(), fn, ctx);
}

struct ag_flow_cursor {
	struct ag_xdp_flow_cursor c;
};

static struct ag_flow_cursor *xdp_flow_cursor_open(struct ag_fastpath *fp, unsigned int slice)
{
	struct ag_xdp *x = xdp_of(fp);
	struct ag_flow_cursor *c;
	struct ag_settings s;
	uint32_t zero = 0;
	int err;

	/* every entry, also before the first publish (then nothing is live) */
	if (bpf_map_lookup_elem(bpf_map__fd(x->skel->maps.ag_settings), &zero, &s))
		return NULL;
	c = malloc(sizeof(*c));
	if (!c)
		return NULL;
	err = ag_xdp_flows__cursor_init(&c->c, bpf_map__fd(x->skel->maps.ag_flows),
					bpf_map__fd(x->skel->maps.ag_nat_rev), &s, slice);
	if (err) {
		free(c);
		errno = -err;
		return NULL;
	}
	return c;
}

static int xdp_flow_cursor_step(struct ag_flow_cursor *c, ag_flow_fn fn, void *ctx)
{
	return ag_xdp_flows__cursor_next(&c->c, ag_now_ns(), fn, ctx);
}

static void xdp_flow_cursor_close(struct ag_flow_cursor *c)
{
	if (!c)
		return;
	ag_xdp_flows__cursor_fini(&c->c);
	free(c);
}

/*
 * One sweep. The program's refusals for a full table since the last pass
 * put the table under pressure at once, before the sweeper's own count of
 * it (which needs a whole walk) says so.
 */
static int xdp_sweep(struct ag_fastpath *fp)
{
	struct ag_xdp *x = xdp_of(fp);
	struct ag_reason_stats full = {0};
	struct ag_settings s;
	bool table_full;
	int err;

	err = read_settings(x, &s);
	if (err)
		return err == -EAGAIN ? 0 : err;
	err = sum_percpu(x, x->skel->maps.ag_rstats, AG_R_DROP_FLOW_FULL, (uint64_t *)&full,
			 sizeof(full) / 8);
	if (err)
		return err;
	table_full = x->swept_once && full.packets > x->full_seen;
	x->full_seen = full.packets;
	x->swept_once = true;
	return ag_xdp_sweep__pass(&x->sweep, &s, table_full, ag_now_ns());
}

static int xdp_reclaim_stats(struct ag_fastpath *fp, struct ag_reclaim_stats *out)
{
	*out = xdp_of(fp)->sweep.st;
	return 0;
}

const struct ag_fastpath_ops ag_xdp__ops = {
    .kind = "xdp",
    .open = xdp_open,
    .attach = xdp_attach,
    .adopted = xdp_adopted,
    .release = xdp_release,
    .close = xdp_close,
    .remove_kept = xdp_remove_kept,
    .sink = xdp_sink,
    .cpus = xdp_cpus,
    .listener_stats = xdp_listener_stats,
    .backend_stats = xdp_backend_stats,
    .reason_stats = xdp_reason_stats,
    .flow_entries = xdp_flow_entries,
    .walk_flows = xdp_walk_flows,
    .flow_cursor_open = xdp_flow_cursor_open,
    .flow_cursor_step = xdp_flow_cursor_step,
    .flow_cursor_close = xdp_flow_cursor_close,
    .sweep = xdp_sweep,
    .reclaim_stats = xdp_reclaim_stats,
};
