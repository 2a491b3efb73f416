/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Conntrack keys and lifetimes shared by the tc programs and the XDP fast path (no skb-only
 * helpers here). The lifetimes are load-time settings of each object that includes this
 * (skel->rodata before load; bpf/datapath.cpp sets them alike for tc and XDP). */
#pragma once

#include <linux/in.h>

#include "bpf/lb.bpf.h"

/* Conntrack idle lifetimes in ns (config conntrack.*; the daemon's GC uses the same). */
const volatile __u64 sy_ct_life_tcp_ns = SY_CT_LIFETIME_TCP * SY_NSEC_PER_SEC;
const volatile __u64 sy_ct_life_closing_ns = SY_CT_LIFETIME_TCP_CLOSING * SY_NSEC_PER_SEC;
const volatile __u64 sy_ct_life_other_ns = SY_CT_LIFETIME_NONTCP * SY_NSEC_PER_SEC;

static __always_inline void ct_key(struct sy_ct_key *k, const union sy_addr *saddr,
				   const union sy_addr *daddr, __be16 sport, __be16 dport,
				   __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = *saddr;
	k->daddr = *daddr;
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
}

static __always_inline __u64 ct_lifetime(const struct sy_ct_entry *e, __u8 proto)
{
	if (proto == IPPROTO_TCP)
		return (e->flags & SY_CT_F_CLOSING) ? sy_ct_life_closing_ns : sy_ct_life_tcp_ns;
	return sy_ct_life_other_ns;
}

/* The reply key of a forward entry: the backend's packets to the client (or to the SNAT
 * source). */
static __always_inline void ct_reply_key_of(struct sy_ct_key *rk, const struct sy_ct_key *fk,
					    const struct sy_ct_entry *fwd)
{
	if (fwd->flags & SY_CT_F_SNAT)
		ct_key(rk, &fwd->nat_addr, &fwd->nat2_addr, fwd->nat_port, fwd->nat2_port, fk->proto);
	else
		ct_key(rk, &fwd->nat_addr, &fk->saddr, fwd->nat_port, fk->sport, fk->proto);
}

/* The forward key of a reply entry: the client's packets to the frontend. */
static __always_inline void ct_forward_key_of(struct sy_ct_key *fk, const struct sy_ct_key *rk,
					      const struct sy_ct_entry *rep)
{
	if (rep->flags & SY_CT_F_SNAT)
		ct_key(fk, &rep->nat2_addr, &rep->nat_addr, rep->nat2_port, rep->nat_port, rk->proto);
	else
		ct_key(fk, &rk->daddr, &rep->nat_addr, rk->dport, rep->nat_port, rk->proto);
}
