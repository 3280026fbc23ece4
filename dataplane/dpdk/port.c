/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ports: one RX and one TX queue per forwarding lcore on every port (l3fwd's
 * model: an lcore owns its queues, nothing is shared on the way through), and
 * the exception path: a tap per port, with the port's MAC and address, that
 * carries the host's own traffic to and from the kernel.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>

#include "dp.h"
#include "log.h"
#include "port.h"

static int port_start(struct ag_dp *dp, uint16_t pid, const char *what, uint16_t nq)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t nb_rxd = AG_DP_RX_DESC, nb_txd = AG_DP_TX_DESC, q;
	int err, socket = rte_eth_dev_socket_id(pid);

	memset(&conf, 0, sizeof(conf));
	err = rte_eth_dev_info_get(pid, &info);
	if (err) {
		pr_err("%s: device info: %s\n", what, rte_strerror(-err));
		return err;
	}
	if (info.max_rx_queues < nq || info.max_tx_queues < nq) {
		pr_err("%s (%s) has %u RX / %u TX queues, anygate-dp needs %u of each (one per "
		       "forwarding lcore): give the device more queues (net_af_packet: "
		       "qpairs=%u; net_af_xdp: queue_count=%u) or use fewer lcores\n",
		       what, info.driver_name, info.max_rx_queues, info.max_tx_queues, nq, nq, nq);
		return -EINVAL;
	}
	if (nq > 1) {
		/* Spread flows over the lcores; any lcore can serve any flow anyway. */
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
		    (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
		    info.flow_type_rss_offloads;
		if (!conf.rx_adv_conf.rss_conf.rss_hf)
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
	}
	err = rte_eth_dev_configure(pid, nq, nq, &conf);
	if (!err)
		err = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nb_rxd, &nb_txd);
	if (err) {
		pr_err("%s: configure %u queues: %s\n", what, nq, rte_strerror(-err));
		return err;
	}
	for (q = 0; q < nq; q++) {
		err = rte_eth_rx_queue_setup(pid, q, nb_rxd, socket < 0 ? SOCKET_ID_ANY : socket,
					     NULL, dp->pool);
		if (!err)
			err = rte_eth_tx_queue_setup(pid, q, nb_txd,
						     socket < 0 ? SOCKET_ID_ANY : socket, NULL);
		if (err) {
			pr_err("%s: queue %u: %s\n", what, q, rte_strerror(-err));
			return err;
		}
	}
	err = rte_eth_dev_start(pid);
	if (err) {
		pr_err("%s: start: %s\n", what, rte_strerror(-err));
		return err;
	}
	return 0;
}

/* "0000:3b:00.0", "3b:00.0" (with or without ",args"): a PCI device; else a vdev spec. */
bool ag_dp__is_pci(const char *spec)
{
	unsigned int d, b, s, f;
	int n = -1;

	if (sscanf(spec, "%x:%x:%x.%x%n", &d, &b, &s, &f, &n) == 4 && n > 0 &&
	    (spec[n] == '\0' || spec[n] == ','))
		return true;
	n = -1;
	return sscanf(spec, "%x:%x.%x%n", &b, &s, &f, &n) == 3 && n > 0 &&
	       (spec[n] == '\0' || spec[n] == ',');
}

/* The DPDK name of a configured port: the spec up to its arguments, PCI with a domain. */
static void port_name(const char *spec, char *out, size_t len)
{
	size_t n = strcspn(spec, ",");
	char base[48];

	snprintf(base, sizeof(base), "%.*s", (int)(n < sizeof(base) ? n : sizeof(base) - 1), spec);
	if (ag_dp__is_pci(base) && strchr(base, ':') == strrchr(base, ':'))
		snprintf(out, len, "0000:%s", base);
	else
		snprintf(out, len, "%s", base);
}

int ag_dp_ports__setup(struct ag_dp *dp)
{
	const struct ag_cfg_dpdk *c = &dp->cfg->edge.dpdk;
	unsigned int i;
	int err;

	for (i = 0; i < c->n_ports; i++) {
		struct ag_dp_port *pt = &dp->ports[i];
		char name[64];
		uint16_t pid;

		port_name(c->ports[i], name, sizeof(name));
		snprintf(pt->name, sizeof(pt->name), "%s", name);
		if (rte_eth_dev_get_port_by_name(name, &pid)) {
			pr_err("port %s (edge.dpdk.ports[%u] \"%s\"): no such DPDK port: is the "
			       "device bound to a DPDK driver (PCI), or the vdev spec right (does "
			       "its interface exist)? EAL messages above say more\n",
			       name, i, c->ports[i]);
			return -ENODEV;
		}
		pt->id = pid;
		pt->tap = AG_DP_NO_PORT;
		pt->addr = c->port_addrs[i].addr;
		pt->mask =
		    c->port_addrs[i].len ? rte_cpu_to_be_32(~0u << (32 - c->port_addrs[i].len)) : 0;
		err = port_start(dp, pid, name, (uint16_t)dp->n_fwd);
		if (err)
			return err;
		dp->n_ports = i + 1;
		rte_eth_macaddr_get(pid, &pt->mac);
		/* What hygiene.h checks: frames to this MAC only, traffic of its role only. */
		memset(&pt->iface, 0, sizeof(pt->iface));
		memcpy(pt->iface.mac, pt->mac.addr_bytes, RTE_ETHER_ADDR_LEN);
		pt->iface.roles = i < c->n_port_roles ? ag_cfg__role_bits(c->port_roles[i])
						      : AG_ROLE_CLIENT | AG_ROLE_BACKEND;
		pr_info("port %u: %s (%s), MAC " RTE_ETHER_ADDR_PRT_FMT
			", role %s, %u queue pair%s\n",
			i, name, c->ports[i], RTE_ETHER_ADDR_BYTES(&pt->mac),
			ag_cfg__roles_name(pt->iface.roles), dp->n_fwd, dp->n_fwd == 1 ? "" : "s");
	}
	return 0;
}

int ag_dp_ports__of_addr(const struct ag_dp *dp, uint32_t addr)
{
	unsigned int i;

	for (i = 0; i < dp->n_ports; i++)
		if ((addr & dp->ports[i].mask) == (dp->ports[i].addr & dp->ports[i].mask))
			return (int)i;
	return -1;
}

/* Give the kernel side of a tap the port's address. */
static int tap_addr(const char *ifname, uint32_t addr, uint32_t mask)
{
	struct sockaddr_in *sin;
	struct ifreq ifr;
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = addr;
	if (ioctl(fd, SIOCSIFADDR, &ifr) && errno != EEXIST)
		err = -errno;
	sin->sin_addr.s_addr = mask;
	if (!err && ioctl(fd, SIOCSIFNETMASK, &ifr))
		err = -errno;
	close(fd);
	return err;
}

int ag_dp_ports__taps(struct ag_dp *dp)
{
	unsigned int i;
	int err;

	if (dp->cfg->edge.dpdk.exception_path != AG_EXCEPTION_TAP) {
		pr_info("exception path: none (traffic for the host is dropped and counted)\n");
		return 0;
	}
	for (i = 0; i < dp->n_ports; i++) {
		struct ag_dp_port *pt = &dp->ports[i];
		char name[32], args[96], ifname[IFNAMSIZ];
		uint16_t tid;

		snprintf(name, sizeof(name), "net_tap_agdp%u", i);
		snprintf(ifname, sizeof(ifname), "agdp%u", i);
		snprintf(args, sizeof(args), "iface=%s,mac=" RTE_ETHER_ADDR_PRT_FMT, ifname,
			 RTE_ETHER_ADDR_BYTES(&pt->mac));
		err = rte_eal_hotplug_add("vdev", name, args);
		if (err) {
			pr_err(
			    "exception path: creating tap %s for port %u: %s (needs /dev/net/tun "
			    "and CAP_NET_ADMIN; or set edge.dpdk.exception_path = \"none\")\n",
			    ifname, i, rte_strerror(-err));
			return err;
		}
		if (rte_eth_dev_get_port_by_name(name, &tid)) {
			pr_err("exception path: tap %s: no port\n", ifname);
			return -ENODEV;
		}
		err = port_start(dp, tid, ifname, 1);
		if (err)
			return err;
		pt->tap = tid;
		err = tap_addr(ifname, pt->addr, pt->mask);
		if (err) {
			pr_err("exception path: setting the address of %s: %s\n", ifname,
			       strerror(-err));
			return err;
		}
		pr_info("exception path: port %u <-> kernel interface %s\n", i, ifname);
	}
	return 0;
}

void ag_dp_ports__close(struct ag_dp *dp)
{
	unsigned int i;

	for (i = 0; i < dp->n_ports; i++) {
		struct ag_dp_port *pt = &dp->ports[i];

		if (pt->tap != AG_DP_NO_PORT) {
			rte_eth_dev_stop(pt->tap);
			rte_eth_dev_close(pt->tap);
			pt->tap = AG_DP_NO_PORT;
		}
		rte_eth_dev_stop(pt->id);
		rte_eth_dev_close(pt->id);
	}
	dp->n_ports = 0;
}
