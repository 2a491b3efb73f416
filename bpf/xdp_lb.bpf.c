/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The XDP fast path (issue 11 item 4; docs/acceleration.md), attached to host-facing devices
 * when loadBalancer.acceleration is native or best-effort, in front of the tc programs of
 * those devices (bpf/tc_lb.bpf.c, ROLE_FROM_NET), with the same pinned maps:
 *
 *  1. loadBalancer.denyCIDRs first: a source in the xdpdeny LPM trie is dropped.
 *  2. A packet of a flow that tc already tracks (ct_v3) and sends to another node gets the
 *     rewrite tc would make, a FIB lookup, and leaves by XDP_TX or a redirect: an external
 *     client's flow SNATed to another node's backend (the entry's SY_CT_F_REDIRECT, the same
 *     bytes as tc's from the IP header on), that flow's replies coming back to the SNAT
 *     address, and a TCP flow by DSR with the option dispatch after its SYN (DNAT only, the
 *     TTL decremented as the stack that forwards tc's packet does).
 *     The entry is stamped and re-validated as tc's ct_forward / ct_reply do.
 *  3. Everything else goes to tc untouched (XDP_PASS), counted: new flows (tc chooses the
 *     backend and writes the entries), and what this program does not handle: not IPv4/IPv6
 *     on Ethernet, fragments, IP options and IPv6 extension headers, ICMP, SCTP, TCP
 *     SYN/FIN/RST (tc keeps the closing state and re-checks the backend), DSR over UDP (the
 *     option on every packet) and DSR/ipip (encapsulation), flows
 *     to local backends (the stack delivers them, and policy applies on the pod's device),
 *     NetworkPolicy's own entries (SY_CT_F_POLICY: never translated), a
 *     flow tc must look at again (expired, its backend changed, its reply entry lost), and a
 *     FIB lookup without a neighbour.
 *
 * Direct packet access only; checksums are fixed incrementally (bpf_csum_diff).
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bpf/ct.bpf.h"
#include "bpf/lb.bpf.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#define SY_TCP_SYN_FIN_RST 0x07
#define SY_IP_MF_OFFSET 0x3fff

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sy_xdp_deny_key);
	__type(value, __u8);
	__uint(max_entries, SY_XDP_DENY_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_XDP_DENY SEC(".maps");

/* What the parse found: the addresses as ct keys them, where the fields to rewrite are. */
struct xpkt {
	union sy_addr saddr;
	union sy_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 v6;
	__u8 tcp_flags;
	__u8 pad;
	__u32 ip_len;
};

static __always_inline __u16 xdp_csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* A checksum field after its covered words moved by `diff` (a bpf_csum_diff result). */
static __always_inline __u16 csum_apply(__u16 check, __s64 diff)
{
	return ~xdp_csum_fold((__u64)(__u16)~check + (__u64)(__u32)diff);
}

/* The packet's new addresses and ports, and how the checksums move (RFC 1624). The IPv4
 * header checksum covers the addresses; TCP's and UDP's cover them (pseudo-header) and the
 * ports. UDP over IPv4 with checksum 0 carries none: left 0, as tc's BPF_F_MARK_MANGLED_0. */
struct words {
	__be32 w[9]; /* saddr, daddr (4 words each for IPv6, w[3] and w[7] for IPv4), ports */
};

static __always_inline int rewrite(void *data, void *data_end, const struct xpkt *p,
				   const union sy_addr *ns, __be16 nsport,
				   const union sy_addr *nd, __be16 ndport)
{
	struct words o = {}, n = {};
	__s64 diff;
	__u16 *l4check;
	void *l4;

	if (p->v6) {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		l4 = ip6 + 1;
		__builtin_memcpy(o.w, p->saddr.w, 16);
		__builtin_memcpy(o.w + 4, p->daddr.w, 16);
		__builtin_memcpy(n.w, ns->w, 16);
		__builtin_memcpy(n.w + 4, nd->w, 16);
		__builtin_memcpy(&ip6->saddr, ns->b, 16);
		__builtin_memcpy(&ip6->daddr, nd->b, 16);
	} else {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		__s64 d3;

		if ((void *)(ip + 1) > data_end)
			return -1;
		l4 = ip + 1;
		o.w[3] = p->saddr.w[3];
		o.w[7] = p->daddr.w[3];
		n.w[3] = ns->w[3];
		n.w[7] = nd->w[3];
		d3 = bpf_csum_diff(&o.w[3], 4, &n.w[3], 4, 0);
		if (d3 < 0)
			return -1;
		d3 = bpf_csum_diff(&o.w[7], 4, &n.w[7], 4, (__wsum)d3);
		if (d3 < 0)
			return -1;
		ip->check = csum_apply(ip->check, d3);
		ip->saddr = ns->w[3];
		ip->daddr = nd->w[3];
	}
	o.w[8] = (__be32)p->sport | ((__be32)p->dport << 16);
	n.w[8] = (__be32)nsport | ((__be32)ndport << 16);
	diff = bpf_csum_diff(o.w, sizeof(o.w), n.w, sizeof(n.w), 0);
	if (diff < 0)
		return -1;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return -1;
		th->source = nsport;
		th->dest = ndport;
		l4check = &th->check;
		*l4check = csum_apply(*l4check, diff);
	} else {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return -1;
		uh->source = nsport;
		uh->dest = ndport;
		if (uh->check || p->v6) {
			__u16 c = csum_apply(uh->check, diff);

			uh->check = c ? c : 0xffff;
		}
	}
	return 0;
}

/* Parses Ethernet, a plain IPv4 or IPv6 header (no options, no extension headers) and TCP
 * or UDP ports. 1: ours to look at; 0: pass to tc; -1: not IP at all. The source address is
 * filled in whenever there is an IP header (the deny list applies to anything). */
static __always_inline int parse(void *data, void *data_end, struct xpkt *p, int *plain)
{
	struct ethhdr *eth = data;
	void *l4;

	*plain = 0;
	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->version != 4)
			return -1;
		sy_addr_from_v4(&p->saddr, ip->saddr);
		sy_addr_from_v4(&p->daddr, ip->daddr);
		p->proto = ip->protocol;
		p->ip_len = bpf_ntohs(ip->tot_len);
		if (ip->ihl != 5 || (ip->frag_off & bpf_htons(SY_IP_MF_OFFSET)))
			return 0; /* options (tc walks them), fragments */
		l4 = ip + 1;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return -1;
		p->v6 = 1;
		__builtin_memcpy(p->saddr.b, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr.b, &ip6->daddr, 16);
		p->proto = ip6->nexthdr; /* an extension header: not TCP or UDP below */
		p->ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		l4 = ip6 + 1;
	} else {
		return -1;
	}
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return 0;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
	} else if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return 0;
		p->sport = uh->source;
		p->dport = uh->dest;
	} else {
		return 0; /* ICMP (tc translates errors about flows), SCTP (its CRC), others */
	}
	*plain = 1;
	return 1;
}

static __always_inline int denied(const union sy_addr *src)
{
	struct sy_xdp_deny_key k = { .prefixlen = 128, .addr = *src };

	return bpf_map_lookup_elem(&SY_MAP_XDP_DENY, &k) != NULL;
}

/* Whether tc must see this packet of a tracked flow, as its ct_forward / ct_reply would
 * act: an expired entry (tc forgets the pair), a closing one (tc's closing rules), a
 * forward entry whose backend changed (tc chooses again) or whose reply entry was lost (tc
 * writes it again). Otherwise the entries are stamped as tc stamps them (both, at most once
 * per SY_CT_REFRESH_NS) and 0 is returned. */
static __always_inline int needs_tc(const struct sy_ct_key *k, struct sy_ct_entry *e, __u64 now)
{
	struct sy_ct_key other;
	struct sy_ct_entry *o;

	if (!sy_fresh(e->last_seen_ns, now, ct_lifetime(e, k->proto)) || (e->flags & SY_CT_F_CLOSING))
		return 1;
	if (sy_fresh(e->last_seen_ns, now, SY_CT_REFRESH_NS))
		return 0;
	if (e->dir == SY_CT_FORWARD) {
		__u32 id = e->backend_id;
		const struct sy_backend *be = bpf_map_lookup_elem(&SY_MAP_BACKENDS, &id);

		if (!be || !sy_addr_eq(&be->addr, &e->nat_addr) || be->port != e->nat_port)
			return 1;
		ct_reply_key_of(&other, k, e);
		o = bpf_map_lookup_elem(&SY_MAP_CT, &other);
		/* A DSR flow has no reply entry here: its replies never pass this node. */
		if (!o && !(e->flags & SY_CT_F_DSR))
			return 1;
	} else {
		ct_forward_key_of(&other, k, e);
		o = bpf_map_lookup_elem(&SY_MAP_CT, &other);
	}
	e->last_seen_ns = now;
	if (o)
		o->last_seen_ns = now;
	return 0;
}

static __always_inline int ttl_left(void *data, void *data_end, int v6)
{
	if (v6) {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

		return (void *)(ip6 + 1) > data_end ? 0 : ip6->hop_limit;
	} else {
		struct iphdr *ip = data + sizeof(struct ethhdr);

		return (void *)(ip + 1) > data_end ? 0 : ip->ttl;
	}
}

/* What a router does to a packet it forwards (the stack, for tc's DSR packets). */
static __always_inline int ttl_decrement(void *data, void *data_end, int v6)
{
	if (v6) {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		ip6->hop_limit--;
	} else {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		__be32 o, n;
		__s64 d;

		if ((void *)(ip + 1) > data_end)
			return -1;
		o = (__be32)*(__be16 *)&ip->ttl; /* ttl and protocol, one 16-bit word */
		ip->ttl--;
		n = (__be32)*(__be16 *)&ip->ttl;
		d = bpf_csum_diff(&o, 4, &n, 4, 0);
		if (d < 0)
			return -1;
		ip->check = csum_apply(ip->check, d);
	}
	return 0;
}

static __always_inline int fib_send(struct xdp_md *ctx, const union sy_addr *src,
				    const union sy_addr *dst, const struct xpkt *p, __u64 len)
{
	struct bpf_fib_lookup fib = {};
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	long rc;

	fib.ifindex = ctx->ingress_ifindex;
	fib.l4_protocol = p->proto;
	fib.tot_len = (__u16)p->ip_len;
	if (p->v6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, src->w, 16);
		__builtin_memcpy(fib.ipv6_dst, dst->w, 16);
	} else {
		fib.family = AF_INET;
		fib.ipv4_src = src->w[3];
		fib.ipv4_dst = dst->w[3];
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return (int)bpf_redirect(fib.ifindex, 0);
}

SEC("xdp")
int sy_xdp_from_net(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = (__u64)(data_end - data);
	struct xpkt p = {};
	struct sy_ct_key key;
	struct sy_ct_entry *e;
	union sy_addr ns, nd;
	__be16 nsport, ndport;
	__u32 reason;
	int plain, r, v, dsr;

	r = parse(data, data_end, &p, &plain);
	if (r < 0) {
		sy_count(SY_REASON_XDP_PASS_OTHER, len);
		return XDP_PASS;
	}
	if (denied(&p.saddr)) {
		sy_count(SY_REASON_XDP_DENY, len);
		return XDP_DROP;
	}
	if (r == 0) {
		sy_count(SY_REASON_XDP_PASS_OTHER, len);
		return XDP_PASS;
	}
	ct_key(&key, &p.saddr, &p.daddr, p.sport, p.dport, p.proto);
	e = bpf_map_lookup_elem(&SY_MAP_CT, &key);
	if (!e) {
		sy_count(SY_REASON_XDP_PASS_NEW, len);
		return XDP_PASS;
	}
	if (p.tcp_flags & SY_TCP_SYN_FIN_RST) {
		sy_count(SY_REASON_XDP_PASS_OTHER, len); /* tc keeps the flow's state */
		return XDP_PASS;
	}
	/* Only flows tc sends to another node: SNATed ones (tc redirects them itself, both
	 * directions), and TCP flows by DSR with the IP option dispatch, whose packets after the
	 * SYN carry no option (tc DNATs them and the stack forwards them). A local backend's flow
	 * has neither; DSR over UDP adds the option to every packet and DSR/ipip encapsulates:
	 * tc's. */
	dsr = e->dir == SY_CT_FORWARD && p.proto == IPPROTO_TCP &&
	      (e->flags & (SY_CT_F_DSR | SY_CT_F_DSR_IPIP | SY_CT_F_SNAT)) == SY_CT_F_DSR;
	if ((!dsr && (e->flags & (SY_CT_F_REDIRECT | SY_CT_F_SNAT | SY_CT_F_DSR)) != (SY_CT_F_REDIRECT | SY_CT_F_SNAT)) ||
	    (e->flags & SY_CT_F_POLICY) || needs_tc(&key, e, bpf_ktime_get_ns())) {
		sy_count(SY_REASON_XDP_PASS_OTHER, len);
		return XDP_PASS;
	}
	if (dsr) {
		/* client -> frontend becomes client -> backend, forwarded as the stack would
		 * forward it (TTL / hop limit decremented) */
		nd = e->nat_addr;
		ndport = e->nat_port;
		ns = p.saddr;
		nsport = p.sport;
		reason = SY_REASON_XDP_FORWARD;
	} else if (e->dir == SY_CT_FORWARD) {
		/* client -> frontend becomes node (SNAT) -> backend */
		nd = e->nat_addr;
		ndport = e->nat_port;
		ns = e->nat2_addr;
		nsport = e->nat2_port;
		reason = SY_REASON_XDP_FORWARD;
	} else {
		/* backend -> node (SNAT) becomes frontend -> client */
		ns = e->nat_addr;
		nsport = e->nat_port;
		nd = e->nat2_addr;
		ndport = e->nat2_port;
		reason = SY_REASON_XDP_REVNAT;
	}
	if (sy_addr_is_v4(&ns) == p.v6 || sy_addr_is_v4(&nd) == p.v6) {
		sy_count(SY_REASON_XDP_PASS_OTHER, len);
		return XDP_PASS;
	}
	/* The route first: a packet that cannot be sent from here goes to tc unchanged (with a
	 * TTL that would expire: the stack answers it). */
	if (dsr && ttl_left(data, data_end, p.v6) <= 1) {
		sy_count(SY_REASON_XDP_PASS_OTHER, len);
		return XDP_PASS;
	}
	v = fib_send(ctx, &ns, &nd, &p, len);
	if (v < 0) {
		sy_count(SY_REASON_XDP_PASS_FIB, len);
		return XDP_PASS;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (rewrite(data, data_end, &p, &ns, nsport, &nd, ndport) < 0 || (dsr && ttl_decrement(data, data_end, p.v6) < 0))
		return XDP_ABORTED; /* cannot happen: parse checked these bounds */
	sy_count(reason, len);
	return v;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
