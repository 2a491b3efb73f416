/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy stage of the tc programs (docs/policy.md "Enforcement"), included by tc_lb.bpf.c
 * after its conntrack helpers. NetworkPolicy is judged on pod-facing devices only: egress as
 * a pod's packet leaves it (sy_tc_from_pod), after the service translation, so the peer is
 * the backend; ingress as a packet is delivered to a pod (sy_tc_to_pod), after whatever
 * translated it on the way (socket LB, tc DNAT, NodePort, DSR).
 *
 * The verdict lives in the flow's conntrack entry (sy_ct_entry.pol): a service flow's own
 * entries, or, for a flow nothing translates, a pair made for policy alone (SY_CT_F_POLICY).
 * An established packet finds its entry with the conntrack lookup it pays anyway and reads
 * the cached verdict; it is judged again only when pol_state_v1's revision moved (a policy,
 * label or pod change). Replies of an allowed flow pass on their reply entry. Denied packets
 * are dropped and leave no entry behind.
 *
 * Not judged: ICMP, fragments after the first (the first carries the ports and is judged),
 * and ingress from this node's own addresses (a pod cannot block its node, as Kubernetes
 * documents: kubelet probes).
 */
#pragma once

#include "bpf/policy.bpf.h"

/* What a judgement is about: `local` is the pod of this node the policy is about. */
struct pol_query {
	union sy_addr local;
	union sy_addr peer;
	__u16 port; /* destination port, host order */
	__u8 proto;
	__u8 dir;   /* SY_POL_INGRESS or SY_POL_EGRESS */
};

/* pol_state_v1 while policy is enabled, NULL otherwise (then nothing here runs). */
static __always_inline const struct sy_pol_state *pol_state(void)
{
	__u32 zero = 0;
	const struct sy_pol_state *st = bpf_map_lookup_elem(&SY_MAP_POL_STATE, &zero);

	return st && (st->flags & SY_POL_STATE_ENABLED) ? st : NULL;
}

static __always_inline __u16 pol_tag(__u32 revision)
{
	return (__u16)((revision & SY_POL_REV_MASK) << SY_CT_POL_REV_SHIFT);
}

static __always_inline __u16 pol_bit(__u8 dir)
{
	return dir == SY_POL_INGRESS ? SY_CT_POL_INGRESS_OK : SY_CT_POL_EGRESS_OK;
}

/* The entry holds an allow for `dir` taken at this revision. */
static __always_inline int pol_cached(const struct sy_ct_entry *e, __u32 revision, __u8 dir)
{
	__u16 v = e->pol;

	return (v & ~(__u16)(SY_CT_POL_EGRESS_OK | SY_CT_POL_INGRESS_OK)) == pol_tag(revision) &&
	       (v & pol_bit(dir));
}

/* Remembers an allow (a verdict of an older revision is forgotten first). Several CPUs may
 * write it at once: each writes a verdict of the current revision. */
static __always_inline void pol_remember(struct sy_ct_entry *e, __u32 revision, __u8 dir)
{
	__u16 tag = pol_tag(revision);
	__u16 v = e->pol;

	if ((v & ~(__u16)(SY_CT_POL_EGRESS_OK | SY_CT_POL_INGRESS_OK)) != tag)
		v = tag;
	e->pol = v | pol_bit(dir);
}

struct pol_log_window {
	__u64 start_ns;
	__u32 sent;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct pol_log_window);
	__uint(max_entries, 1);
} pol_log_rate SEC(".maps");

static __always_inline void pol_log(struct __sk_buff *skb, const struct pol_query *q, __u32 reason)
{
	__u32 zero = 0;
	struct pol_log_window *w = bpf_map_lookup_elem(&pol_log_rate, &zero);
	struct sy_pol_event *ev;
	__u64 now = bpf_ktime_get_ns();

	if (!w)
		return;
	if (now - w->start_ns >= SY_NSEC_PER_SEC) {
		w->start_ns = now;
		w->sent = 0;
	}
	if (w->sent >= SY_POL_LOG_PER_SEC) {
		sy_count(SY_REASON_POL_LOG_LOST, skb->len);
		return;
	}
	ev = bpf_ringbuf_reserve(&SY_MAP_POL_EVENTS, sizeof(*ev), 0);
	if (!ev) {
		sy_count(SY_REASON_POL_LOG_LOST, skb->len);
		return;
	}
	w->sent++;
	__builtin_memcpy(ev->local, q->local.b, 16);
	__builtin_memcpy(ev->peer, q->peer.b, 16);
	ev->ifindex = skb->ifindex;
	ev->port = q->port;
	ev->proto = q->proto;
	ev->dir = q->dir;
	ev->reason = reason;
	ev->pad = 0;
	bpf_ringbuf_submit(ev, 0);
}

/* Judges a flow: TC_ACT_OK when allowed, TC_ACT_SHOT (counted, maybe logged) when denied.
 * A global function: verified once, and its lookups' stack is not on the caller's. */
__noinline int pol_judge(struct __sk_buff *skb, const struct pol_query *q, __u32 state_flags)
{
	const struct sy_pol_endpoint *ep;
	__u32 reason, has_rules;
	int v;

	if (!skb || !q)
		return TC_ACT_SHOT; /* global function: the verifier checks it alone, NULL included */
	/* A pod cannot block access to itself (Kubernetes): through its own Service, its
	 * egress names itself as the backend (hairpin; the packet reaches it from this node's
	 * address). Egress only: a packet arriving with the pod's own source is no such flow. */
	if (q->dir == SY_POL_EGRESS && sy_addr_eq(&q->local, &q->peer))
		return TC_ACT_OK;
	/* A pod cannot block its own node (Kubernetes: kubelet probes and host traffic). */
	if (q->dir == SY_POL_INGRESS && bpf_map_lookup_elem(&SY_MAP_NODE_ADDRS, &q->peer))
		return TC_ACT_OK;
	v = sy_policy_verdict(q->local.b, q->peer.b, q->dir, q->proto, q->port);
	if (v == SY_POL_ALLOWED)
		sy_count(SY_REASON_POL_ALLOWED, skb->len);
	if (v != SY_POL_DENIED)
		return TC_ACT_OK;
	ep = bpf_map_lookup_elem(&SY_MAP_POL_ENDPOINTS, q->local.b);
	has_rules = ep ? ep->flags & (q->dir == SY_POL_INGRESS ? SY_POL_EP_INGRESS_RULES
							     : SY_POL_EP_EGRESS_RULES)
		       : 0;
	reason = has_rules ? SY_REASON_POL_DENIED : SY_REASON_POL_DENIED_DEFAULT;
	sy_count(reason, skb->len);
	if (state_flags & SY_POL_STATE_LOG_DENIED)
		pol_log(skb, q, reason);
	return TC_ACT_SHOT;
}

#ifdef SY_TEST_RACE
/* Tests only (the race object, tests/bpf): the daemon moves the revision on between a
 * judgement and its caching, as a policy change landing meanwhile on another CPU would. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} pol_race_revision SEC(".maps");

static __always_inline void pol_test_race(const struct sy_pol_state *st)
{
	__u32 zero = 0;
	__u32 *r = bpf_map_lookup_elem(&pol_race_revision, &zero);

	if (r && *r) {
		((struct sy_pol_state *)st)->revision = *r;
		*r = 0;
	}
}
#else
#define pol_test_race(st) ((void)0)
#endif

/* The query of a packet as it is (no translation between here and the pod). */
static __always_inline void pol_query_of(struct pol_query *q, const struct pkt *p, __u8 dir)
{
	if (dir == SY_POL_INGRESS) {
		q->local = p->daddr;
		q->peer = p->saddr;
	} else {
		q->local = p->saddr;
		q->peer = p->daddr;
	}
	q->port = bpf_ntohs(p->dport);
	q->proto = p->proto;
	q->dir = dir;
}

/* An entry's verdict for `dir`: cached, or judged now and remembered. */
static __always_inline int pol_check_entry(struct __sk_buff *skb, struct sy_ct_entry *e,
					   const struct pol_query *q,
					   const struct sy_pol_state *st)
{
	__u32 revision = st->revision;

	if (pol_cached(e, revision, q->dir))
		return TC_ACT_OK;
	if (pol_judge(skb, q, st->flags) != TC_ACT_OK)
		return TC_ACT_SHOT;
	pol_remember(e, revision, q->dir);
	return TC_ACT_OK;
}

#define POL_UNTRACKED (-3000) /* the entry is gone (expired, or to be balanced again): a new flow */

/* What pol_check_ct judges. */
#define POL_INGRESS 0            /* the packet as it is, towards the pod */
#define POL_EGRESS_TRANSLATED 1  /* the pod's packet, to the backend the entry names */

/* Whether ct_forward would balance the flow of forward entry e again (CT_RESELECT): it
 * expired, a SYN reuses a closed one's tuple, or its backend is gone or renamed. */
static __always_inline int pol_would_reselect(const struct pkt *p, const struct sy_ct_entry *e)
{
	__u32 id = e->backend_id;
	const struct sy_backend *be;

	if (!sy_fresh(e->last_seen_ns, bpf_ktime_get_ns(), ct_lifetime(e, p->proto)) ||
	    ((e->flags & SY_CT_F_CLOSING) && (p->tcp_flags & TCP_FLAG_SYN)))
		return 1;
	be = bpf_map_lookup_elem(&SY_MAP_BACKENDS, &id);
	return !be || !sy_addr_eq(&be->addr, &e->nat_addr) || be->port != e->nat_port;
}

/* The verdict of a tracked flow's entry (cached, or judged now and remembered). Egress of a
 * translated flow that ct_forward would balance again is not judged against the backend it
 * is leaving: its pair goes and POL_UNTRACKED is returned, so that the flow is balanced
 * and judged as a new one (new_flow, pol_new_translated). */
__noinline int pol_check_ct(struct __sk_buff *skb, const struct pkt *p, const struct sy_ct_key *k,
			    struct sy_ct_entry *e, __u32 how)
{
	const struct sy_pol_state *st = pol_state();
	struct pol_query q;

	if (!skb || !p || !k || !e)
		return TC_ACT_SHOT; /* global function: the verifier checks it alone, NULL included */
	if (!st)
		return TC_ACT_OK;
	if (how == POL_EGRESS_TRANSLATED) {
		if (!pol_cached(e, st->revision, SY_POL_EGRESS) && pol_would_reselect(p, e)) {
			ct_forget_pair(k, e);
			return POL_UNTRACKED;
		}
		q.local = p->saddr;
		q.peer = e->nat_addr;
		q.port = bpf_ntohs(e->nat_port);
		q.proto = p->proto;
		q.dir = SY_POL_EGRESS;
	} else {
		pol_query_of(&q, p, SY_POL_INGRESS);
	}
	return pol_check_entry(skb, e, &q, st);
}

/* Egress policy of a pod's new flow that new_flow translated (its entries are written:
 * `entry` is the forward one, ours when `mine`). Denied: the pair goes again. */
__noinline int pol_new_translated(struct __sk_buff *skb, const struct pkt *p,
				  const struct sy_ct_key *k, struct sy_ct_entry *entry, __u32 mine)
{
	struct sy_ct_entry *e;

	if (!skb || !p || !k || !entry)
		return TC_ACT_SHOT; /* global function: the verifier checks it alone, NULL included */
	e = bpf_map_lookup_elem(&SY_MAP_CT, k);
	if (pol_check_ct(skb, p, k, e ? e : entry, POL_EGRESS_TRANSLATED) == TC_ACT_OK)
		return TC_ACT_OK;
	if (mine)
		ct_forget_pair(k, entry);
	return TC_ACT_SHOT;
}


/* Whether the packet's destination is a frontend (any scope). */
static __noinline int pol_is_frontend(const struct pkt *p)
{
	struct sy_svc_key skey;

	return p && sy_lookup_service(&skey, &p->daddr, p->dport, p->proto, 0) != NULL;
}

/* A packet whose conntrack entry is a policy-only one (SY_CT_F_POLICY), on any device:
 * lifetime and stamps as for translated flows, the verdict checked on pod-facing devices for
 * forward packets (replies of an allowed flow pass). Never translates. */
__noinline int pol_tracked(struct __sk_buff *skb, const struct pkt *p, const struct sy_ct_key *k,
			   struct sy_ct_entry *e, __u32 role)
{
	const struct sy_pol_state *st = pol_state();
	__u64 now = bpf_ktime_get_ns();
	struct pol_query q;
	struct sy_ct_key other;
	struct sy_ct_entry *o;

	if (!skb || !p || !k || !e)
		return TC_ACT_SHOT; /* global function: the verifier checks it alone, NULL included */
	if (!sy_fresh(e->last_seen_ns, now, ct_lifetime(e, p->proto)) ||
	    ((e->flags & SY_CT_F_CLOSING) &&
	     (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)) {
		/* Over, or a new connection reusing a closed one's tuple (in either direction:
		 * a SYN without ACK is never a reply). */
		ct_forget_pair(k, e);
		return POL_UNTRACKED;
	}
	if (st && e->dir == SY_CT_FORWARD && (role == ROLE_FROM_POD || role == ROLE_TO_POD)) {
		pol_query_of(&q, p, role == ROLE_TO_POD ? SY_POL_INGRESS : SY_POL_EGRESS);
		if (pol_check_entry(skb, e, &q, st) != TC_ACT_OK)
			return TC_ACT_SHOT;
	}
	if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		ct_mark_closing(k, e);
	if (!sy_fresh(e->last_seen_ns, now, SY_CT_REFRESH_NS)) {
		/* At most once per refresh: the destination became a frontend (a Service made
		 * or given this port since): the flow is translated from now on, as it would
		 * be without the pair (whether policy is on or off). */
		if (e->dir == SY_CT_FORWARD && (role == ROLE_FROM_POD || role == ROLE_FROM_NET) &&
		    pol_is_frontend(p)) {
			ct_forget_pair(k, e);
			return POL_UNTRACKED;
		}
		e->last_seen_ns = now;
		if (e->dir == SY_CT_FORWARD)
			ct_reply_key_of(&other, k, e);
		else
			ct_forward_key_of(&other, k, e);
		o = bpf_map_lookup_elem(&SY_MAP_CT, &other);
		if (o)
			o->last_seen_ns = now;
	}
	return TC_ACT_OK;
}

/* A packet of a pod-facing device with no conntrack entry of its own. `dir`: egress on
 * sy_tc_from_pod (a flow no service translated: the destination is the real peer), ingress
 * on sy_tc_to_pod. When its reverse tuple is tracked the packet belongs to a known flow: a
 * reply of it (forward entry found), or, on ingress, the request of a flow translated before
 * the pod's device (NodePort, DSR, tc ClusterIP on this node), whose verdict lives in its
 * reply entry. Otherwise the flow is judged and, allowed, gets a policy-only pair. */
__noinline int pol_new_flow(struct __sk_buff *skb, const struct pkt *p,
			    const struct sy_ct_key *fk, __u32 dir)
{
	const struct sy_pol_state *st = pol_state();
	struct pol_query q;
	struct sy_ct_key rk;
	struct sy_ct_entry e;
	struct sy_ct_entry *r;
	__u32 revision;
	long err;
	int mine;

	if (!p || !fk)
		return TC_ACT_SHOT; /* global function: the verifier checks it alone, NULL included */
	if (!st)
		return TC_ACT_OK;
	/* Read before the judgement: a revision that moves on meanwhile judges the flow again. */
	revision = st->revision;
	pol_query_of(&q, p, (__u8)dir);
	ct_key(&rk, &p->daddr, &p->saddr, p->dport, p->sport, p->proto);
	r = bpf_map_lookup_elem(&SY_MAP_CT, &rk);
	if (r && r->dir == SY_CT_FORWARD)
		return TC_ACT_OK; /* a reply of a tracked flow (its reply entry is missing) */
	if (r && !(r->flags & SY_CT_F_POLICY) && dir == SY_POL_INGRESS)
		return pol_check_entry(skb, r, &q, st);
	if (pol_judge(skb, &q, st->flags) != TC_ACT_OK)
		return TC_ACT_SHOT;
	pol_test_race(st);

	/* The pair: both entries "translate" to the forward's own destination (ct_reply_of
	 * of such a forward is the same entry in the other direction), one stack copy. */
	__builtin_memset(&e, 0, sizeof(e));
	e.last_seen_ns = bpf_ktime_get_ns();
	e.nat_addr = p->daddr;
	e.nat_port = p->dport;
	e.flags = SY_CT_F_POLICY;
	if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		e.flags |= SY_CT_F_CLOSING;
	/* The reply first, never over another flow's entry (a translated flow's reply). */
	e.dir = SY_CT_REPLY;
	err = bpf_map_update_elem(&SY_MAP_CT, &rk, &e, BPF_NOEXIST);
	if (err == -E2BIG)
		return ct_full(skb, 0);
	mine = err == 0;
	e.dir = SY_CT_FORWARD;
	pol_remember(&e, revision, (__u8)dir);
	err = bpf_map_update_elem(&SY_MAP_CT, fk, &e, BPF_NOEXIST);
	if (err == -E2BIG) {
		if (mine)
			bpf_map_delete_elem(&SY_MAP_CT, &rk);
		return ct_full(skb, 0);
	}
	return TC_ACT_OK; /* -EEXIST: another CPU tracked it first */
}

/* The first fragment of a datagram on a pod-facing device (it carries the ports; later ones
 * carry none and are never reassembled without it): judged as a packet of its flow, so that
 * fragmenting does not carry a denied flow past policy. The service stage does not translate
 * fragments, so nothing is translated here either. k: the packet's key. POL_UNTRACKED: no
 * entry, the caller judges it as a new flow (pol_new_flow, one call level less). */
__noinline int pol_fragment(struct __sk_buff *skb, const struct pkt *p, const struct sy_ct_key *k,
			    __u32 role)
{
	const struct sy_pol_state *st = pol_state();
	struct pol_query q;
	struct sy_ct_entry *e;

	if (!skb || !p || !k)
		return TC_ACT_SHOT; /* global function: the verifier checks it alone, NULL included */
	if (!st)
		return TC_ACT_OK;
	e = bpf_map_lookup_elem(&SY_MAP_CT, k);
	if (!e) {
		/* To a frontend: untranslated as before, and no policy-only pair, which would
		 * keep the flow's next packets from translation. */
		if (role == ROLE_FROM_POD && pol_is_frontend(p))
			return TC_ACT_OK;
		return POL_UNTRACKED;
	}
	if (e->dir == SY_CT_REPLY || !(e->flags & SY_CT_F_POLICY))
		return TC_ACT_OK; /* a reply; or a service flow's, left untranslated as before */
	pol_query_of(&q, p, role == ROLE_TO_POD ? SY_POL_INGRESS : SY_POL_EGRESS);
	return pol_check_entry(skb, e, &q, st);
}
