/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Admission of new flows, once, for both fast paths: the per-CPU new-flow
 * budgets with the SYN authentication allowlist behind the TCP one, and the
 * rule for a TCP segment that belongs to no flow and is not a SYN. Only the
 * decisions: recording a verified source, answering with a challenge and
 * counting stay with each fast path, whose tables differ.
 *
 * Besides choose.h's accessors (listener, settings), the allowlist is read
 * through one that the including code defines for its own struct ag_tables:
 *
 *   static __always_inline int ag_tables__syn_verified(struct ag_tables *t,
 *                                                      const union ag_addr *a,
 *                                                      __u64 *when);
 *
 * returning 1 with *when the time address a answered a challenge, or 0 when
 * it is not known (never, or forgotten: the allowlist may lose entries).
 */
#ifndef AG_CORE_ADMIT_H
#define AG_CORE_ADMIT_H

#include <linux/types.h>
#include <linux/in.h>

#include "compat.h"
#include "abi.h"
#include "choose.h"
#include "flow.h"
#include "parse.h"

static __always_inline int ag_tables__syn_verified(struct ag_tables *t, const union ag_addr *a,
						   __u64 *when);

/*
 * May new flow k be created now by the CPU (lcore) whose state is cpu, under
 * settings s? Within the CPU's budget for its protocol (ag_bucket__take);
 * past it, TCP only from a source verified within syn_auth_ttl (else
 * AG_FLOW_CHALLENGE: answer the SYN with a challenge), UDP not at all
 * (AG_R_DROP_UDP_BUDGET). AG_CHOICE_OK: admitted. A moved flow is not new:
 * the caller does not ask.
 */
static __always_inline int ag_admit(struct ag_tables *t, const struct ag_flow_key *k,
				    const struct ag_settings *s, struct ag_cpu_state *cpu,
				    __u64 now)
{
	__u64 when;

	if (k->proto != IPPROTO_TCP)
		return ag_bucket__take(&cpu->udp, s->udp_cpu_rate, now) ? AG_CHOICE_OK
									: AG_R_DROP_UDP_BUDGET;
	if (ag_bucket__take(&cpu->syn, s->syn_cpu_rate, now))
		return AG_CHOICE_OK;
	if (ag_tables__syn_verified(t, &k->saddr, &when) &&
	    !ag_flow__is_idle(now, when, s->syn_auth_ttl_ns))
		return AG_CHOICE_OK;
	return AG_FLOW_CHALLENGE;
}

/*
 * A TCP segment p of flow k to a VIP with flags that is not a SYN
 * (ag_tcp__is_syn) and belongs to no flow: nothing is created for it. Not to
 * a listener: AG_R_DROP_VIP_NO_LISTENER. Invalid flags: AG_R_DROP_TCP_FLAGS. A bare RST whose
 * sequence number is the cookie of a challenge we sent k's source within the last window (SYN
 * authentication on): AG_R_SYN_AUTH_PASSED, the caller records k's source as verified at now and
 * drops the RST. Anything else: AG_R_DROP_TCP_NO_FLOW (answering it with a RST would reflect every
 * spoofed segment).
 */
static __always_inline int ag_tcp__not_syn(struct ag_tables *t, const struct ag_pkt *p,
					   const struct ag_flow_key *k, __u8 flags, __u64 now)
{
	const __u8 *th = p->l4;
	const struct ag_settings *s;
	struct ag_listener_key lk;
	__u32 lid, seq;
	int r;

	ag_listener_key__of(&lk, k);
	r = ag_tables__listener(t, &lk, &lid);
	if (r == 0)
		return AG_R_DROP_VIP_NO_LISTENER;
	if (r < 0)
		return AG_R_DROP_BAD_STATE;
	if (!ag_tcp__flags_valid(flags))
		return AG_R_DROP_TCP_FLAGS;
	if ((flags & AG_TCPF_CHECKED) != AG_TCPF_RST || (const void *)(th + 20) > p->data_end)
		return AG_R_DROP_TCP_NO_FLOW;
	s = ag_tables__settings(t);
	if (!s || !s->syn_cpu_rate)
		return AG_R_DROP_TCP_NO_FLOW;
	seq = ((__u32)th[4] << 24) | ((__u32)th[5] << 16) | ((__u32)th[6] << 8) | th[7];
	if (!ag_syn__cookie_ok(k, s->syn_auth_secret, now, seq))
		return AG_R_DROP_TCP_NO_FLOW;
	return AG_R_SYN_AUTH_PASSED;
}

#endif /* AG_CORE_ADMIT_H */
