/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testnet.h"

static const uint8_t mac_c[6] = {0x02, 0x00, 0x00, 0x00, 0xc0, 0x01};
static const uint8_t mac_b[6] = {0x02, 0x00, 0x00, 0x00, 0xb0, 0x01};
static const uint8_t mac_client[6] = {0x02, 0x00, 0x00, 0x00, 0xc0, 0x02};
static const uint8_t mac_client_gw[6] = {0x02, 0x00, 0x00, 0x00, 0xc0, 0xfe};
static const uint8_t mac_router[6] = {0x02, 0x00, 0x00, 0x00, 0xb0, 0x02};
static const uint8_t mac_peer[6] = {0x02, 0x00, 0x00, 0x00, 0xee, 0x01};

/* iproute2 commands run in our (already unshared) namespace. */
static const char *const setup_cmds[] = {
    "ip link set lo up",
    "ip addr add 10.255.0.1/32 dev lo",
    "ip link add agc0 address 02:00:00:00:c0:01 type veth peer name agc1",
    "ip link add agb0 address 02:00:00:00:b0:01 type veth peer name agb1",
    "ip link set agc1 up",
    "ip link set agb1 up",
    "ip link set agc0 up",
    "ip link set agb0 up",
    "ip addr add 10.0.0.1/24 dev agc0",
    "ip addr add 10.1.0.1/24 dev agb0",
    "ip addr add 10.3.0.1/24 dev agb0",
    "ip neigh replace 10.0.0.2 lladdr 02:00:00:00:c0:02 nud permanent dev agc0",
    "ip neigh replace 10.0.0.254 lladdr 02:00:00:00:c0:fe nud permanent dev agc0",
    "ip neigh replace 10.1.0.2 lladdr 02:00:00:00:b0:02 nud permanent dev agb0",
    "ip route add 10.20.0.0/16 via 10.0.0.254 dev agc0",
    "ip route add 10.1.1.0/24 via 10.1.0.2 dev agb0",
};

static int run(const char *cmd)
{
	char buf[512];
	int st;

	snprintf(buf, sizeof(buf), "%s 2>&1", cmd);
	st = system(buf);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "testnet: '%s' failed (status %d)\n", cmd, st);
		return -EIO;
	}
	return 0;
}

static int write_file(const char *path, const char *val)
{
	int fd, err = 0;

	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

int ag_testnet__check_privileges(void)
{
	if (geteuid() != 0)
		return -EPERM;
	return 0;
}

int ag_testnet__setup(struct ag_testnet *tn)
{
	size_t i;
	int err;

	memset(tn, 0, sizeof(*tn));
	if (unshare(CLONE_NEWNET)) {
		err = -errno;
		fprintf(stderr, "testnet: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return err;
	}
	for (i = 0; i < sizeof(setup_cmds) / sizeof(setup_cmds[0]); i++) {
		err = run(setup_cmds[i]);
		if (err)
			return err;
	}
	/* /proc/sys/net follows the opener's namespace: this is ours. */
	err = write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1");
	if (!err)
		err = write_file("/proc/sys/net/ipv4/conf/agc0/forwarding", "1");
	if (!err)
		err = write_file("/proc/sys/net/ipv4/conf/agb0/forwarding", "1");
	if (err) {
		fprintf(stderr, "testnet: enabling forwarding: %s\n", strerror(-err));
		return err;
	}
	tn->ifindex_c = (int)if_nametoindex("agc0");
	tn->ifindex_b = (int)if_nametoindex("agb0");
	if (!tn->ifindex_c || !tn->ifindex_b) {
		fprintf(stderr, "testnet: interfaces missing after setup\n");
		return -ENODEV;
	}
	memcpy(tn->mac_c, mac_c, 6);
	memcpy(tn->mac_b, mac_b, 6);
	memcpy(tn->mac_client, mac_client, 6);
	memcpy(tn->mac_client_gw, mac_client_gw, 6);
	memcpy(tn->mac_router, mac_router, 6);
	memcpy(tn->mac_peer, mac_peer, 6);
	return 0;
}
