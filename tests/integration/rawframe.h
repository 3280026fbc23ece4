/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the lab's raw-frame tools (ag-flood, ag-badframes) share: the Internet
 * checksum, computed here independently of dataplane/core (a test must not
 * check the fast path with the fast path's own arithmetic), MAC parsing, and
 * the guard that keeps crafted frames inside namespaces a test created.
 */
#ifndef AG_RAWFRAME_H
#define AG_RAWFRAME_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <linux/if_ether.h>

/* init_net's nsfs inode, fixed since Linux 6.18 (PROC_NET_INIT_INO) */
#define AG_PROC_NET_INIT_INO 0xEFFFFFF9u

/* Internet checksum (RFC 1071): the 32-bit sum of len bytes of p, big-endian words. */
static inline uint32_t ag_raw__csum_partial(const uint8_t *p, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

static inline uint16_t ag_raw__csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline void ag_raw__put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t ag_raw__get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* "aa:bb:cc:dd:ee:ff" -> mac; anything else is a usage error (exit 2), as in cli.h. */
static inline void ag_raw__parse_mac(const char *s, uint8_t *mac)
{
	unsigned int b[ETH_ALEN];
	char tail;
	int i;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != ETH_ALEN) {
		fprintf(stderr, "%s: bad MAC address '%s'\n", program_invocation_short_name, s);
		exit(2);
	}
	for (i = 0; i < ETH_ALEN; i++)
		mac[i] = (uint8_t)b[i];
}

/* A namespace made by `ip netns add` (bind-mounted under /run/netns)? */
static inline bool ag_raw__named_netns(const struct stat *self)
{
	struct dirent *e;
	struct stat st;
	char path[PATH_MAX];
	bool found = false;
	DIR *d = opendir("/run/netns");

	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		snprintf(path, sizeof(path), "/run/netns/%s", e->d_name);
		found = e->d_name[0] != '.' && !stat(path, &st) && st.st_dev == self->st_dev &&
			st.st_ino == self->st_ino;
	}
	closedir(d);
	return found;
}

/*
 * Crafted frames go only into namespaces a test made. -EPERM: this is the
 * host's initial network namespace (PID 1's, or the kernel's fixed init_net
 * inode). -ENOENT: PID 1's namespace is hidden from us (a sandbox) and this
 * one is not a named `ip netns` namespace either, so it cannot be told apart.
 */
static inline int ag_raw__check_netns(void)
{
	struct stat self, init;

	if (stat("/proc/self/ns/net", &self))
		return -errno;
	if (self.st_ino == AG_PROC_NET_INIT_INO)
		return -EPERM;
	if (!stat("/proc/1/ns/net", &init))
		return self.st_dev == init.st_dev && self.st_ino == init.st_ino ? -EPERM : 0;
	return ag_raw__named_netns(&self) ? 0 : -ENOENT;
}

/* ag_raw__check_netns()'s refusal, said the same way by every tool. */
static inline const char *ag_raw__netns_refusal(int err)
{
	return err == -EPERM ? "in the host's initial network namespace"
	       : err == -ENOENT
		   ? "in a network namespace that is neither PID 1's (hidden from us) nor a "
		     "named one under /run/netns"
		   : "where /proc/self/ns/net cannot be read";
}

#endif /* AG_RAWFRAME_H */
