/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tc programs for pod-facing devices: ClusterIP DNAT for traffic that did not go through
 * the socket hooks (socket LB off, or a client outside the cgroup), with conntrack, and
 * reverse NAT of the replies.
 *
 *  ingress (packets from the pod): client -> frontend becomes client -> backend; the flow
 *          gets a forward and a reply conntrack entry.
 *  egress  (packets to the pod):   backend -> client becomes frontend -> client when the
 *          reply entry exists.
 * Doing the reverse NAT at the client's egress means only the clients' devices need the
 * programs; the backends' devices may be anything. One code path serves IPv4 and IPv6: the
 * maps hold 16-byte addresses, IPv4 as IPv4-mapped. */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lb.bpf.h"

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10
#define IP_FRAG_MASK 0x3fff /* MF | fragment offset */
#define NSEC_PER_SEC 1000000000ULL

struct pkt {
	__u32 l3_off;
	__u32 l4_off;
	union sy_addr saddr;
	union sy_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 v6;
	__u8 fragment;       /* 1: any fragment (first or later) */
	__u8 first_fragment; /* 1: the fragment that carries the L4 header */
};

static __always_inline int parse_l4(struct __sk_buff *skb, struct pkt *p)
{
	__u8 l4[14];

	if (bpf_skb_load_bytes(skb, p->l4_off, l4, p->proto == IPPROTO_TCP ? 14 : 4) < 0)
		return -1;
	__builtin_memcpy(&p->sport, &l4[0], 2);
	__builtin_memcpy(&p->dport, &l4[2], 2);
	p->tcp_flags = p->proto == IPPROTO_TCP ? l4[13] : 0;
	return 0;
}

/* Parses Ethernet + IPv4/IPv6 + TCP/UDP. Returns 0 when the packet is one we may
 * translate, -1 when it is not ours to touch. bpf_skb_load_bytes copes with non-linear
 * skbs. IPv6 extension headers (fragments included) are not walked: such packets pass. */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	p->l3_off = ETH_HLEN;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, p->l3_off, &ip, sizeof(ip)) < 0)
			return -1;
		if (ip.version != 4 || ip.ihl < 5)
			return -1;
		p->proto = ip.protocol;
		sy_addr_from_v4(&p->saddr, ip.saddr);
		sy_addr_from_v4(&p->daddr, ip.daddr);
		p->l4_off = p->l3_off + ip.ihl * 4;
		p->fragment = (ip.frag_off & bpf_htons(IP_FRAG_MASK)) != 0;
		p->first_fragment = p->fragment && (ip.frag_off & bpf_htons(0x1fff)) == 0;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, p->l3_off, &ip6, sizeof(ip6)) < 0)
			return -1;
		if (ip6.version != 6)
			return -1;
		p->v6 = 1;
		p->proto = ip6.nexthdr;
		__builtin_memcpy(p->saddr.b, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr.b, &ip6.daddr, 16);
		p->l4_off = p->l3_off + sizeof(ip6);
	} else {
		return -1;
	}
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return -1;
	if (p->fragment && !p->first_fragment)
		return 0; /* no L4 header: the caller passes it untouched */
	return parse_l4(skb, p);
}

/* Rewrites the source (dst = 0) or destination (dst = 1) address and port, fixing the
 * TCP/UDP checksum (pseudo-header included) and, for IPv4, the header checksum. */
static __always_inline int nat_rewrite(struct __sk_buff *skb, const struct pkt *p, int dst,
				       const union sy_addr *new_addr, __be16 new_port)
{
	__u32 port_off = p->l4_off + (dst ? 2 : 0);
	__u32 csum_off = p->l4_off + (p->proto == IPPROTO_TCP ? offsetof(struct tcphdr, check)
							       : offsetof(struct udphdr, check));
	/* UDP checksum 0 means "none" (IPv4): MARK_MANGLED_0 leaves it so and avoids making 0. */
	__u64 l4_flags = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	const union sy_addr *old_addr = dst ? &p->daddr : &p->saddr;
	__be16 old_port = dst ? p->dport : p->sport;

	if (p->v6) {
		__u32 addr_off = p->l3_off + (dst ? offsetof(struct ipv6hdr, daddr)
						  : offsetof(struct ipv6hdr, saddr));
		__s64 diff = bpf_csum_diff((__be32 *)old_addr->w, 16, (__be32 *)new_addr->w, 16, 0);

		if (diff < 0)
			return -1;
		if (bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR | l4_flags) < 0)
			return -1;
		if (bpf_skb_store_bytes(skb, addr_off, new_addr->b, 16, 0) < 0)
			return -1;
	} else if (old_addr->w[3] != new_addr->w[3]) {
		__u32 addr_off = p->l3_off + (dst ? offsetof(struct iphdr, daddr)
						  : offsetof(struct iphdr, saddr));
		__be32 o = old_addr->w[3], n = new_addr->w[3];

		if (bpf_l4_csum_replace(skb, csum_off, o, n,
					BPF_F_PSEUDO_HDR | sizeof(n) | l4_flags) < 0)
			return -1;
		if (bpf_l3_csum_replace(skb, p->l3_off + offsetof(struct iphdr, check), o, n,
					sizeof(n)) < 0)
			return -1;
		if (bpf_skb_store_bytes(skb, addr_off, &n, sizeof(n), 0) < 0)
			return -1;
	}
	if (old_port != new_port) {
		if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port,
					sizeof(new_port) | l4_flags) < 0)
			return -1;
		if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0) < 0)
			return -1;
	}
	return 0;
}

static __always_inline void ct_key(struct sy_ct_key *k, const union sy_addr *saddr,
				   const union sy_addr *daddr, __be16 sport, __be16 dport,
				   __u8 proto, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = *saddr;
	k->daddr = *daddr;
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->dir = dir;
}

/* Both directions of a flow touch its entries, often on different CPUs at once: another
 * CPU may stamp an entry after this packet read the clock. A stamp later than `now` is
 * fresh, not 584 years old (an unsigned now - seen would wrap, and the egress would delete
 * the reply entry of a live flow: its next replies would reach the client untranslated). */
static __always_inline int ct_alive(const struct sy_ct_entry *e, __u8 proto, __u64 now)
{
	__u64 seen = e->last_seen_ns;
	__u64 life = SY_CT_LIFETIME_NONTCP;

	if (seen >= now)
		return 1;
	if (proto == IPPROTO_TCP)
		life = (e->flags & SY_CT_F_CLOSING) ? SY_CT_LIFETIME_TCP_CLOSING : SY_CT_LIFETIME_TCP;
	return now - seen < life * NSEC_PER_SEC;
}

static __always_inline void ct_touch(struct sy_ct_entry *e, const struct pkt *p, __u64 now)
{
	e->last_seen_ns = now;
	if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		e->flags |= SY_CT_F_CLOSING;
}

/* A new TCP connection (SYN without ACK) straight to an address that is no frontend, e.g.
 * client -> pod IP. If an earlier translated flow used the same four-tuple, its reply entry
 * would rewrite this connection's replies to the frontend: forget it. */
static __always_inline void ct_forget_stale_reply(const struct pkt *p)
{
	struct sy_ct_key rkey;

	if (p->proto != IPPROTO_TCP || (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		return;
	ct_key(&rkey, &p->daddr, &p->saddr, p->dport, p->sport, p->proto, SY_CT_REPLY);
	bpf_map_delete_elem(&SY_MAP_CT, &rkey);
}

SEC("tc")
int sy_tc_ingress(struct __sk_buff *skb)
{
	struct sy_ct_key fkey, rkey;
	struct sy_ct_entry entry = {};
	struct sy_ct_entry *ct;
	struct sy_svc_key skey;
	const struct sy_svc_value *svc;
	const struct sy_backend *be;
	struct pkt p = {};
	__u32 backend_id = 0;
	__u64 now;

	if (parse(skb, &p) < 0)
		return TC_ACT_OK;
	if (p.fragment) {
		/* Fragments are not translated yet: pass them untouched, and count the first one
		 * of a datagram to a frontend (later ones carry no port to match). */
		if (p.first_fragment && sy_lookup_service(&skey, &p.daddr, p.dport, p.proto))
			sy_count(SY_REASON_TC_FRAGMENT, skb->len);
		return TC_ACT_OK;
	}

	now = bpf_ktime_get_ns();
	ct_key(&fkey, &p.saddr, &p.daddr, p.sport, p.dport, p.proto, SY_CT_FORWARD);
	ct = bpf_map_lookup_elem(&SY_MAP_CT, &fkey);
	if (ct && ct_alive(ct, p.proto, now) &&
	    !((ct->flags & SY_CT_F_CLOSING) && (p.tcp_flags & TCP_FLAG_SYN))) {
		backend_id = ct->backend_id;
		be = bpf_map_lookup_elem(&SY_MAP_BACKENDS, &backend_id);
		if (be) {
			ct_touch(ct, &p, now);
			if (nat_rewrite(skb, &p, 1, &be->addr, be->port) < 0) {
				sy_count(SY_REASON_TC_CSUM_ERROR, skb->len);
				return TC_ACT_SHOT;
			}
			sy_count(SY_REASON_TC_DNAT_CT, skb->len);
			return TC_ACT_OK;
		}
		/* The backend went away: choose again below. */
	}

	svc = sy_lookup_service(&skey, &p.daddr, p.dport, p.proto);
	if (!svc) {
		ct_forget_stale_reply(&p);
		return TC_ACT_OK; /* not a service: untouched */
	}
	if (svc->count == 0) {
		sy_count(SY_REASON_TC_NO_BACKEND, skb->len);
		return TC_ACT_SHOT;
	}
	be = sy_select_backend(&skey, svc, &backend_id);
	if (!be || sy_addr_is_v4(&be->addr) == p.v6) {
		sy_count(SY_REASON_TC_BACKEND_GONE, skb->len);
		return TC_ACT_SHOT;
	}

	entry.last_seen_ns = now;
	entry.backend_id = backend_id;
	entry.rev_nat_id = svc->rev_nat_id;
	if (p.tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		entry.flags |= SY_CT_F_CLOSING;
	/* Reply entry first: once the forward entry exists, a reply may come back. */
	ct_key(&rkey, &be->addr, &p.saddr, be->port, p.sport, p.proto, SY_CT_REPLY);
	bpf_map_update_elem(&SY_MAP_CT, &rkey, &entry, BPF_ANY);
	bpf_map_update_elem(&SY_MAP_CT, &fkey, &entry, BPF_ANY);

	if (nat_rewrite(skb, &p, 1, &be->addr, be->port) < 0) {
		sy_count(SY_REASON_TC_CSUM_ERROR, skb->len);
		return TC_ACT_SHOT;
	}
	sy_count(SY_REASON_TC_DNAT_NEW, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int sy_tc_egress(struct __sk_buff *skb)
{
	struct sy_ct_key rkey;
	struct sy_ct_entry *ct;
	const struct sy_revnat *rn;
	struct pkt p = {};
	__u32 rev_nat_id;
	__u64 now;

	if (parse(skb, &p) < 0 || p.fragment)
		return TC_ACT_OK;
	ct_key(&rkey, &p.saddr, &p.daddr, p.sport, p.dport, p.proto, SY_CT_REPLY);
	ct = bpf_map_lookup_elem(&SY_MAP_CT, &rkey);
	if (!ct)
		return TC_ACT_OK;
	now = bpf_ktime_get_ns();
	if (!ct_alive(ct, p.proto, now)) {
		/* The translated flow is over; this tuple now belongs to someone else. */
		bpf_map_delete_elem(&SY_MAP_CT, &rkey);
		return TC_ACT_OK;
	}
	rev_nat_id = ct->rev_nat_id;
	rn = bpf_map_lookup_elem(&SY_MAP_REVNAT, &rev_nat_id);
	if (!rn)
		return TC_ACT_OK;
	ct_touch(ct, &p, now);
	if (nat_rewrite(skb, &p, 0, &rn->addr, rn->port) < 0) {
		sy_count(SY_REASON_TC_CSUM_ERROR, skb->len);
		return TC_ACT_SHOT;
	}
	sy_count(SY_REASON_TC_REVNAT, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
