/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Direct server return (issue 11): the stages of the tc programs that send an external
 * client's flow to a backend on another node with the client's address kept, and that
 * receive such a flow on the backend's node. Included by tc_lb.bpf.c after its parse, NAT,
 * reject and conntrack stages, whose helpers it uses.
 *
 * The frontend's node (from_net, a flow of an external client to a frontend flagged
 * SY_SVC_F_DSR whose backend runs elsewhere):
 *   dsr_forward: DNAT to the backend, the frontend added to the request as an IPv4 option or
 *   an IPv6 destination-options header (abi.h, SY_DSR_OPT*; TCP: SYNs only, the rest: every
 *   packet), with the ipip dispatch also encapsulated (IPIP, IP6IP6) to the backend itself;
 *   then to the stack, which routes it on. A packet that the overhead pushes past the route's
 *   MTU gets ICMP fragmentation needed / packet too big with the MTU that leaves room for it.
 *   Its replies never come back here: the forward entry has no reply entry.
 * The backend's node (from_net, before the stack delivers the request to the pod):
 *   dsr_decap removes the encapsulation of a DSR request addressed to the backend inside it;
 *   dsr_receive reads the frontend and writes the reply entry (backend -> client) that turns
 *   the pod's replies back into the frontend's, on their way out (ct_reply). A SYN-ACK of an
 *   encapsulated flow gets its MSS clamped there (tcp_clamp_mss), so that the client's
 *   segments fit the tunnel.
 */
#pragma once

#ifndef IPPROTO_IPIP
#define IPPROTO_IPIP 4
#endif
#ifndef IPPROTO_IPV6
#define IPPROTO_IPV6 41
#endif
#define IP_DF 0x4000
#define SY_IPV6_MIN_MTU 1280
#define SY_IPV4_MIN_MTU 68

/* Load-time settings (skel->rodata; bpf/datapath.cpp): the outer source of encapsulated DSR
 * requests. A prefix length of 0 uses the client's own address (the fabric must carry it for
 * DSR anyway); a prefix fills the host bits with a hash of the client's address and port, so
 * that receive-side scaling, which sees only the outer addresses of IPIP, spreads flows. */
const volatile __be32 sy_ipip_src4 = 0;
const volatile __u32 sy_ipip_src4_len = 0;    /* 0..32 */
const volatile __be32 sy_ipip_src6[4] = {};
const volatile __u32 sy_ipip_src6_len = 0;    /* 0..128 */

/* dsr_receive's answer when the packet carries no DSR information. */
#define DSR_NONE (-3000)

static __always_inline __u32 dsr_info_len(const struct pkt *p)
{
	return p->v6 ? sizeof(struct sy_dsr_opt6) : sizeof(struct sy_dsr_opt4);
}

static __always_inline __u32 ip_header_len(const struct pkt *p)
{
	return p->v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
}

/* TCP: the frontend travels on SYNs only (the backend's node remembers it in conntrack);
 * the other protocols have no connection start, so every packet carries it. */
static __always_inline int dsr_needs_info(const struct pkt *p)
{
	return p->proto != IPPROTO_TCP || (p->tcp_flags & TCP_FLAG_SYN);
}

/* A flow of an external client to a backend on another node, on a DSR frontend: DSR when the
 * packet can carry the information (a plain packet: no IPv4 options or IPv6 extension
 * headers of its own, whose order and room we would have to respect), else SNAT as before. */
static __always_inline int dsr_choose(struct __sk_buff *skb, const struct pkt *p,
				      const struct sy_svc_value *svc, struct sy_ct_entry *fwd)
{
	if (!(svc->flags & SY_SVC_F_DSR))
		return 0;
	if (!p->plain) {
		sy_count(SY_REASON_TC_DSR_FALLBACK, skb->len);
		return 0;
	}
	fwd->flags |= SY_CT_F_DSR;
	if (svc->flags & SY_SVC_F_DSR_IPIP)
		fwd->flags |= SY_CT_F_DSR_IPIP;
	return 1;
}

/* The largest IP packet this skb will be on the wire: for a GSO skb (a TCP sender's
 * super-packet, which veths and bridges pass whole) one segment, else the packet itself. */
static __always_inline __u32 wire_len(struct __sk_buff *skb, const struct pkt *p)
{
	__u8 doff = 0x50;

	if (!skb->gso_size)
		return p->ip_len;
	if (p->proto == IPPROTO_TCP)
		bpf_skb_load_bytes(skb, p->l4_off + 12, &doff, 1);
	return (p->l4_off - p->l3_off) + (p->proto == IPPROTO_TCP ? (doff >> 4) * 4 : 8) + skb->gso_size;
}

/* The route this node forwards a packet from p->saddr to dst by: 0 when `len` bytes fit its
 * MTU, 1 when they do not, -1 without a route. *mtu is the route's MTU either way (path MTU
 * exceptions and route metrics included). */
__noinline int dsr_route_mtu(struct __sk_buff *skb, const struct pkt *p, const union sy_addr *dst,
			     __u32 len, __u32 *mtu)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	if (!p || !dst || !mtu)
		return -1; /* global function: the verifier checks it alone, NULL included */
	fib.ifindex = skb->ifindex;
	fib.l4_protocol = p->proto;
	fib.sport = p->sport;
	fib.dport = p->dport;
	fib.tot_len = (__u16)(len > 0xffff ? 0xffff : len);
	if (p->v6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, p->saddr.w, 16);
		__builtin_memcpy(fib.ipv6_dst, dst->w, 16);
	} else {
		fib.family = AF_INET;
		fib.ipv4_src = p->saddr.w[3];
		fib.ipv4_dst = dst->w[3];
	}
	/* With tot_len set the helper checks it against the route's MTU and reports the MTU
	 * (mtu_result, a union with tot_len) on success as on failure. */
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH);
	*mtu = fib.mtu_result;
	if (rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	return rc == BPF_FIB_LKUP_RET_FRAG_NEEDED ? 1 : -1;
}

/* A packet too big once the DSR overhead is added: ICMP fragmentation needed (IPv4) or packet
 * too big (IPv6) back to the client, about its packet to the frontend (not yet translated),
 * from the frontend, with the MTU that leaves room for the overhead. */
static __always_inline int dsr_too_big(struct __sk_buff *skb, const struct pkt *p, __u32 mtu, __u32 overhead)
{
	__u32 min = p->v6 ? SY_IPV6_MIN_MTU : SY_IPV4_MIN_MTU;

	/* A path MTU below the family's minimum cannot be advertised: the client would send
	 * packets that still do not fit. Only plain packets are quoted (icmp_reply). */
	if (mtu < overhead + min || !p->plain || icmp_reply(skb, p, ICMP_REPLY_TOO_BIG, mtu - overhead) < 0) {
		sy_count(SY_REASON_TC_MTU_DROP, skb->len);
		return TC_ACT_SHOT;
	}
	sy_count(SY_REASON_TC_MTU_ICMP, skb->len);
	return bpf_redirect(skb->ifindex, 0);
}

/* Adds the frontend (fe, fport) to the request right after its fixed IP header: the IPv4
 * option (header length, total length and header checksum follow) or the IPv6
 * destination-options header (next header and payload length follow). The L4 checksum does
 * not change: neither pseudo-header counts IP options or extension headers. */
__noinline int dsr_push_info(struct __sk_buff *skb, struct pkt *p, const union sy_addr *fe, __be16 fport)
{
	if (!p || !fe)
		return -1; /* global function: the verifier checks it alone, NULL included */
	if (p->v6) {
		struct sy_dsr_opt6 opt = {};
		__u8 fields[3]; /* payload_len, nexthdr */
		__be16 plen;

		if (bpf_skb_load_bytes(skb, p->l3_off + offsetof(struct ipv6hdr, payload_len), fields, 3) < 0)
			return -1;
		opt.nexthdr = fields[2];
		opt.hdrlen = sizeof(opt) / 8 - 1;
		opt.type = SY_DSR_OPT6_TYPE;
		opt.len = sizeof(opt.addr) + sizeof(opt.port);
		opt.addr = *fe;
		opt.port = fport;
		__builtin_memcpy(&plen, fields, 2);
		plen = bpf_htons(bpf_ntohs(plen) + sizeof(opt));
		__builtin_memcpy(fields, &plen, 2);
		fields[2] = IPPROTO_DSTOPTS;
		if (bpf_skb_adjust_room(skb, sizeof(opt), BPF_ADJ_ROOM_NET, 0) < 0 ||
		    bpf_skb_store_bytes(skb, p->l3_off + sizeof(struct ipv6hdr), &opt, sizeof(opt), 0) < 0 ||
		    bpf_skb_store_bytes(skb, p->l3_off + offsetof(struct ipv6hdr, payload_len), fields, 3, 0) < 0)
			return -1;
		p->l4_off += sizeof(opt);
		p->ip_len += sizeof(opt);
	} else {
		struct sy_dsr_opt4 opt = { .type = SY_DSR_OPT4_TYPE, .len = sizeof(opt), .port = fport, .addr = fe->w[3] };
		struct iphdr ip;
		__s64 sum;

		if (bpf_skb_load_bytes(skb, p->l3_off, &ip, sizeof(ip)) < 0)
			return -1;
		ip.ihl += sizeof(opt) / 4;
		ip.tot_len = bpf_htons(bpf_ntohs(ip.tot_len) + sizeof(opt));
		ip.check = 0;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&ip, sizeof(ip), 0);
		if (sum < 0)
			return -1;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&opt, sizeof(opt), (__wsum)sum);
		if (sum < 0)
			return -1;
		ip.check = ~csum_fold((__u64)sum);
		/* Room after the fixed header (BPF_ADJ_ROOM_NET): the option goes first. */
		if (bpf_skb_adjust_room(skb, sizeof(opt), BPF_ADJ_ROOM_NET, 0) < 0 ||
		    bpf_skb_store_bytes(skb, p->l3_off, &ip, sizeof(ip), 0) < 0 ||
		    bpf_skb_store_bytes(skb, p->l3_off + sizeof(ip), &opt, sizeof(opt), 0) < 0)
			return -1;
		p->l4_off += sizeof(opt);
		p->ip_len += sizeof(opt);
	}
	p->plain = 0;
	return 0;
}

/* A 32-bit mix of the client's address and port (murmur3's finaliser). */
static __always_inline __u32 dsr_flow_hash(const struct pkt *p)
{
	__u32 h = p->saddr.w[0] ^ p->saddr.w[1] ^ p->saddr.w[2] ^ p->saddr.w[3] ^
		  ((__u32)p->sport * 0x9e3779b1u);

	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* One 32-bit word of an outer source: the prefix's bits (len of them, counted from this
 * word's first) and the hash in the rest. Host order in, network order out. */
static __always_inline __be32 dsr_src_word(__be32 prefix, __s32 len, __u32 hash)
{
	__u32 mask;

	if (len <= 0)
		return bpf_htonl(hash);
	if (len >= 32)
		return prefix;
	mask = ~(0xffffffffu >> len);
	return bpf_htonl((bpf_ntohl(prefix) & mask) | (hash & ~mask));
}

/* The outer source of an encapsulated request (sy_ipip_src*). */
static __always_inline void dsr_outer_source(const struct pkt *p, union sy_addr *src)
{
	__u32 h = dsr_flow_hash(p);

	if (!p->v6) {
		if (!sy_ipip_src4_len) {
			*src = p->saddr;
			return;
		}
		sy_addr_from_v4(src, dsr_src_word(sy_ipip_src4, (__s32)sy_ipip_src4_len, h));
		return;
	}
	if (!sy_ipip_src6_len) {
		*src = p->saddr;
		return;
	}
	src->w[0] = dsr_src_word(sy_ipip_src6[0], (__s32)sy_ipip_src6_len, h);
	src->w[1] = dsr_src_word(sy_ipip_src6[1], (__s32)sy_ipip_src6_len - 32, h * 0x9e3779b1u);
	src->w[2] = dsr_src_word(sy_ipip_src6[2], (__s32)sy_ipip_src6_len - 64, h ^ 0x5bd1e995u);
	src->w[3] = dsr_src_word(sy_ipip_src6[3], (__s32)sy_ipip_src6_len - 96, h);
}

/* Encapsulates the (translated, marked) request to dst: IPIP or IP6IP6, outer DF set (a
 * fragmented outer packet could not be decapsulated on the way in), TTL 64. The room goes
 * right after the MAC header (BPF_ADJ_ROOM_MAC; the kernel zeroes it) and takes the outer
 * header; the packet as it was follows as the inner one. The ENCAP flags make a GSO skb
 * segment as a tunnel (gso_size shrinks by the overhead, so its segments still fit). */
__noinline int dsr_encap(struct __sk_buff *skb, struct pkt *p, const union sy_addr *dst)
{
	union sy_addr src;

	if (!p || !dst)
		return -1; /* global function: the verifier checks it alone, NULL included */
	dsr_outer_source(p, &src);
	if (p->v6) {
		struct ipv6hdr in, out = {};
		__u32 label = dsr_flow_hash(p) & 0xfffff;

		if (bpf_skb_load_bytes(skb, p->l3_off, &in, sizeof(in)) < 0)
			return -1;
		out.version = 6;
		out.priority = in.priority;
		/* The flow label carries the flow's hash, for ECMP and receive hashing that use it. */
		out.flow_lbl[0] = (in.flow_lbl[0] & 0xf0) | (__u8)(label >> 16);
		out.flow_lbl[1] = (__u8)(label >> 8);
		out.flow_lbl[2] = (__u8)label;
		out.payload_len = bpf_htons(bpf_ntohs(in.payload_len) + sizeof(in));
		out.nexthdr = IPPROTO_IPV6;
		out.hop_limit = 64;
		__builtin_memcpy(&out.saddr, src.b, 16);
		__builtin_memcpy(&out.daddr, dst->b, 16);
		if (bpf_skb_adjust_room(skb, sizeof(out), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6) < 0 ||
		    bpf_skb_store_bytes(skb, p->l3_off, &out, sizeof(out), 0) < 0)
			return -1;
	} else {
		struct iphdr in, out = {};
		__s64 sum;

		if (bpf_skb_load_bytes(skb, p->l3_off, &in, sizeof(in)) < 0)
			return -1;
		out.version = 4;
		out.ihl = 5;
		out.tos = in.tos;
		out.tot_len = bpf_htons(bpf_ntohs(in.tot_len) + sizeof(out));
		out.frag_off = bpf_htons(IP_DF);
		out.ttl = 64;
		out.protocol = IPPROTO_IPIP;
		out.saddr = src.w[3];
		out.daddr = dst->w[3];
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&out, sizeof(out), 0);
		if (sum < 0)
			return -1;
		out.check = ~csum_fold((__u64)sum);
		if (bpf_skb_adjust_room(skb, sizeof(out), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) < 0 ||
		    bpf_skb_store_bytes(skb, p->l3_off, &out, sizeof(out), 0) < 0)
			return -1;
	}
	return 0;
}

/* Whether an IPv4 packet may be fragmented on the way (DF clear). */
static __always_inline int ipv4_may_fragment(struct __sk_buff *skb, const struct pkt *p)
{
	__be16 frag = bpf_htons(IP_DF);

	bpf_skb_load_bytes(skb, p->l3_off + offsetof(struct iphdr, frag_off), &frag, 2);
	return !(frag & bpf_htons(IP_DF));
}

/* A packet of a DSR flow on the frontend's node (new or tracked: ct_apply_forward). The
 * route's MTU is checked first, while the packet is still the client's to the frontend, so
 * that an ICMP answer quotes what the client sent. Then DNAT to the backend (the source
 * stays the client's), the frontend added when the packet carries it, the encapsulation with
 * ipip, and the stack routes it on (its source is not this node's). */
__noinline int dsr_forward(struct __sk_buff *skb, struct pkt *p, const struct sy_ct_entry *e, __u32 reason)
{
	union sy_addr fe, be;
	__be16 fport, bport, sport, dport;
	__u32 overhead = 0, len, mtu = 0;
	int info, ipip, rc;

	if (!p || !e)
		return -1; /* global function: the verifier checks it alone, NULL included */
	fe = p->daddr;
	fport = p->dport;
	sport = p->sport;
	dport = p->dport;
	be = e->nat_addr;
	bport = e->nat_port;
	ipip = (e->flags & SY_CT_F_DSR_IPIP) != 0;
	/* A tracked flow's packet that is not plain (options of its own) goes without the
	 * information: the backend's node has it from the flow's earlier packets. */
	info = p->plain && dsr_needs_info(p);
	if (info)
		overhead += dsr_info_len(p);
	if (ipip)
		overhead += ip_header_len(p);
	/* A GSO skb's segments keep their size: adjust_room lowers its gso_size by the overhead. */
	len = skb->gso_size ? wire_len(skb, p) : p->ip_len + overhead;
	rc = dsr_route_mtu(skb, p, &be, len, &mtu);
	if (rc < 0) {
		sy_count(SY_REASON_TC_FIB_FAILED, skb->len);
		return TC_ACT_SHOT;
	}
	/* Too big. IPv4 without DF and only the option: the stack fragments it on the way out,
	 * the option (copy bit set) in every fragment. Otherwise the client must send smaller
	 * packets (an encapsulated packet is never fragmented: see dsr_encap). */
	if (rc > 0 && (p->v6 || ipip || !ipv4_may_fragment(skb, p)))
		return dsr_too_big(skb, p, mtu, overhead);
	if (nat_rewrite(skb, p, 1, &be, bport) < 0 || sctp_after_rewrite(skb, p, sport, dport) < 0) {
		sy_count(SY_REASON_TC_CSUM_ERROR, skb->len);
		return TC_ACT_SHOT;
	}
	if ((info && dsr_push_info(skb, p, &fe, fport) < 0) || (ipip && dsr_encap(skb, p, &be) < 0)) {
		sy_count(SY_REASON_TC_DSR_FAILED, skb->len);
		return TC_ACT_SHOT;
	}
	sy_count(reason, skb->len);
	sy_count(SY_REASON_TC_DSR_FORWARD, skb->len);
	return TC_ACT_OK;
}

/* ---- the backend's node ---- */

/* A packet of a DSR flow sent by the ipip dispatch (IPIP or IP6IP6 whose inner packet is
 * addressed to the same backend as the outer one, which no ordinary tunnel does; only a TCP
 * SYN's inner packet carries the DSR information, the flow's later packets come encapsulated
 * too): the outer header is removed (the room right after the MAC header; outer and inner
 * are of one family, so no BPF_F_ADJ_ROOM_DECAP_L3_* flag is needed, nor the 6.3 kernel that
 * has them).
 * Returns 1 (decapsulated), 0 (not one: untouched) or -1. What dsr_receive needs later goes
 * in skb->cb[0] (DSR_CB_*), not on handle()'s stack, whose call chains are at the limit:
 * SY_CT_F_DSR_IPIP and the MSS that fits the device it came in on once the tunnel's headers
 * are added (0 if unknown), or 0 when it was not encapsulated. */
#define DSR_CB_FLAGS 0xffffu
#define DSR_CB_MSS_SHIFT 16
__noinline int dsr_decap(struct __sk_buff *skb, __u32 l3_off)
{
	__u32 hdrs, mtu = 0, mss = 0;
	__u8 proto = 0;

	skb->cb[0] = 0;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr out, in;

		/* One byte first: every packet from the network pays this, only IPIP the rest. */
		if (bpf_skb_load_bytes(skb, l3_off + offsetof(struct iphdr, protocol), &proto, 1) < 0 ||
		    proto != IPPROTO_IPIP)
			return 0;
		if (bpf_skb_load_bytes(skb, l3_off, &out, sizeof(out)) < 0 || out.version != 4 || out.ihl != 5 ||
		    (out.frag_off & bpf_htons(IP_MF | IP_OFFSET)) ||
		    bpf_skb_load_bytes(skb, l3_off + sizeof(out), &in, sizeof(in)) < 0 || in.version != 4 ||
		    in.daddr != out.daddr)
			return 0;
		if (bpf_skb_adjust_room(skb, -(__s32)sizeof(out), BPF_ADJ_ROOM_MAC, 0) < 0)
			return -1;
		hdrs = 2 * sizeof(struct iphdr) + sizeof(struct tcphdr);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr out, in;

		if (bpf_skb_load_bytes(skb, l3_off + offsetof(struct ipv6hdr, nexthdr), &proto, 1) < 0 ||
		    proto != IPPROTO_IPV6)
			return 0;
		if (bpf_skb_load_bytes(skb, l3_off, &out, sizeof(out)) < 0 || out.version != 6 ||
		    bpf_skb_load_bytes(skb, l3_off + sizeof(out), &in, sizeof(in)) < 0 || in.version != 6 ||
		    !sy_addr_eq((const union sy_addr *)&in.daddr, (const union sy_addr *)&out.daddr))
			return 0;
		if (bpf_skb_adjust_room(skb, -(__s32)sizeof(out), BPF_ADJ_ROOM_MAC, 0) < 0)
			return -1;
		hdrs = 2 * sizeof(struct ipv6hdr) + sizeof(struct tcphdr);
	} else {
		return 0;
	}
	if (bpf_check_mtu(skb, 0, &mtu, 0, 0) >= 0 && mtu > hdrs)
		mss = mtu - hdrs;
	skb->cb[0] = SY_CT_F_DSR_IPIP | ((mss > 0xffff ? 0 : mss) << DSR_CB_MSS_SHIFT);
	sy_count(SY_REASON_TC_DSR_DECAP, skb->len);
	return 1;
}

/* The DSR information of a request (right after its fixed header), or -1 without one. */
static __always_inline int dsr_read_info(struct __sk_buff *skb, const struct pkt *p, union sy_addr *fe,
					 __be16 *fport)
{
	if (p->v6) {
		struct sy_dsr_opt6 opt;
		__u8 nexthdr = 0;

		if (bpf_skb_load_bytes(skb, p->l3_off + offsetof(struct ipv6hdr, nexthdr), &nexthdr, 1) < 0 ||
		    nexthdr != IPPROTO_DSTOPTS ||
		    bpf_skb_load_bytes(skb, p->l3_off + sizeof(struct ipv6hdr), &opt, sizeof(opt)) < 0 ||
		    opt.hdrlen != sizeof(opt) / 8 - 1 || opt.type != SY_DSR_OPT6_TYPE ||
		    opt.len != sizeof(opt.addr) + sizeof(opt.port))
			return -1;
		*fe = opt.addr;
		*fport = opt.port;
		return 0;
	}
	{
		struct sy_dsr_opt4 opt;

		if (p->l4_off - p->l3_off < sizeof(struct iphdr) + sizeof(opt) ||
		    bpf_skb_load_bytes(skb, p->l3_off + sizeof(struct iphdr), &opt, sizeof(opt)) < 0 ||
		    opt.type != SY_DSR_OPT4_TYPE || opt.len != sizeof(opt))
			return -1;
		sy_addr_from_v4(fe, opt.addr);
		*fport = opt.port;
		return 0;
	}
}

/* A request carrying DSR information, on the backend's node: the reply entry (backend ->
 * client: restore the frontend as the source) is written, or refreshed when it already says
 * so, and the request goes on to the pod untouched (skb->cb[0]: what dsr_decap found).
 * Returns TC_ACT_OK, or DSR_NONE when the packet carries no DSR information. */
__noinline int dsr_receive(struct __sk_buff *skb, const struct pkt *p)
{
	__u32 flags = skb->cb[0] & DSR_CB_FLAGS, mss = skb->cb[0] >> DSR_CB_MSS_SHIFT;
	struct sy_ct_key rk;
	struct sy_ct_entry *e, ne = {};
	union sy_addr fe = {};
	__be16 fport = 0;
	__u64 now;

	if (!p)
		return DSR_NONE; /* global function: the verifier checks it alone, NULL included */
	if ((p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP && p->proto != IPPROTO_SCTP) ||
	    dsr_read_info(skb, p, &fe, &fport) < 0)
		return DSR_NONE;
	now = bpf_ktime_get_ns();
	sy_count(SY_REASON_TC_DSR_RECEIVED, skb->len);
	ct_key(&rk, &p->daddr, &p->saddr, p->dport, p->sport, p->proto);
	e = bpf_map_lookup_elem(&SY_MAP_CT, &rk);
	/* The same flow's entry, live: a stamp (at most once per SY_CT_REFRESH_NS). A SYN on a
	 * closing entry is a new connection on the tuple: written again. */
	if (e && e->dir == SY_CT_REPLY && (e->flags & SY_CT_F_DSR) && sy_addr_eq(&e->nat_addr, &fe) &&
	    e->nat_port == fport && (e->flags & SY_CT_F_DSR_IPIP) == (flags & SY_CT_F_DSR_IPIP) &&
	    sy_fresh(e->last_seen_ns, now, ct_lifetime(e, p->proto)) &&
	    !((e->flags & SY_CT_F_CLOSING) && (p->tcp_flags & TCP_FLAG_SYN))) {
		if (!sy_fresh(e->last_seen_ns, now, SY_CT_REFRESH_NS))
			e->last_seen_ns = now;
		return TC_ACT_OK;
	}
	/* Another flow's reply entry on this tuple (a client reaching this backend from one port
	 * through two frontends at once) is replaced: the backend's node cannot move the client
	 * to another port, as the frontend's node does for SNAT. */
	ne.last_seen_ns = now;
	ne.nat_addr = fe;
	ne.nat_port = fport;
	ne.dir = SY_CT_REPLY;
	ne.flags = SY_CT_F_DSR | (flags & SY_CT_F_DSR_IPIP);
	if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		ne.flags |= SY_CT_F_CLOSING;
	if (flags & SY_CT_F_DSR_IPIP)
		ne.nat2_port = (__u16)mss;
	if (bpf_map_update_elem(&SY_MAP_CT, &rk, &ne, BPF_ANY) != 0)
		sy_count(SY_REASON_TC_CT_CREATE_FAILED, skb->len);
	return TC_ACT_OK;
}

/* TCP options, walked one per bpf_loop step (as the IPv4 options are) for the MSS. */
struct mss_walk {
	__u8 opts[64];
	__u32 i;
	__u32 len;
	__u32 at; /* 1 + offset of the MSS option, 0: none */
};

static long mss_step(__u32 n, struct mss_walk *w)
{
	__u32 i = w->i;
	__u8 kind, olen;

	if (i >= w->len || i >= 40)
		return 1;
	kind = w->opts[i & 63];
	if (kind == 0) /* end of options */
		return 1;
	if (kind == 1) { /* no-op */
		w->i = i + 1;
		return 0;
	}
	if (i + 1 >= w->len)
		return 1;
	olen = w->opts[(i + 1) & 63];
	if (olen < 2)
		return 1;
	if (kind == 2 && olen == 4 && i + 4 <= w->len) {
		w->at = i + 1;
		return 1;
	}
	w->i = i + olen;
	return 0;
}

/* Lowers the MSS option of a TCP SYN (or SYN-ACK) to mss when it is larger, the checksum
 * updated. Returns 1 if it did. */
__noinline int tcp_clamp_mss(struct __sk_buff *skb, const struct pkt *p, __u32 mss)
{
	struct mss_walk w = {};
	__u8 doff = 0;
	__u64 n;
	__u32 field, old_mss;
	__be16 nv;

	if (!p)
		return 0; /* global function: the verifier checks it alone, NULL included */
	if (bpf_skb_load_bytes(skb, p->l4_off + 12, &doff, 1) < 0 || (doff >> 4) <= 5)
		return 0;
	n = (__u64)(doff >> 4) * 4 - sizeof(struct tcphdr);
	w.len = (__u32)n;
	barrier_var(n); /* the load must use the register whose bounds were checked */
	if (n == 0 || n > 40 || bpf_skb_load_bytes(skb, p->l4_off + sizeof(struct tcphdr), w.opts, n) < 0)
		return 0;
	bpf_loop(40, mss_step, &w, 0);
	if (!w.at)
		return 0;
	field = (w.at - 1 + 2) & 63; /* the value, after kind and length */
	old_mss = (__u32)w.opts[field] << 8 | w.opts[(field + 1) & 63];
	if (old_mss <= mss)
		return 0;
	nv = bpf_htons((__u16)mss);
	field += p->l4_off + sizeof(struct tcphdr);
	/* The checksum sums 16-bit words from the L4 header on: an MSS at an odd offset (after
	 * a no-op) straddles two of them, so the difference is taken over the 4 bytes around. */
	if (!((field - p->l4_off) & 1)) {
		__be16 ov = bpf_htons((__u16)old_mss);

		if (bpf_l4_csum_replace(skb, p->l4_off + offsetof(struct tcphdr, check), ov, nv, 2) < 0 ||
		    bpf_skb_store_bytes(skb, field, &nv, 2, 0) < 0)
			return 0;
	} else {
		__u8 before[4], after[4];
		__s64 diff;

		if (bpf_skb_load_bytes(skb, field - 1, before, 4) < 0)
			return 0;
		__builtin_memcpy(after, before, 4);
		__builtin_memcpy(after + 1, &nv, 2);
		diff = bpf_csum_diff((__be32 *)before, 4, (__be32 *)after, 4, 0);
		if (diff < 0 || bpf_l4_csum_replace(skb, p->l4_off + offsetof(struct tcphdr, check), 0, diff, 0) < 0 ||
		    bpf_skb_store_bytes(skb, field, &nv, 2, 0) < 0)
			return 0;
	}
	sy_count(SY_REASON_TC_MSS_CLAMPED, skb->len);
	return 1;
}
