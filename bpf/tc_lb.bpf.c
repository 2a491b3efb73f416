/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tc programs: service translation with conntrack for traffic the socket hooks do not see.
 *
 * Two kinds of device, each with an ingress and an egress program:
 *  - pod-facing (the host side of a pod's veth, a CNI bridge): from_pod translates new flows
 *    of pods to any frontend (ClusterIP, NodePort on a node address, LB IP, external IP) as
 *    in-cluster traffic, and the replies of local backends; to_pod translates replies.
 *  - host-facing (the node's uplink, the fabric): from_net translates NodePort, LB IP,
 *    external IP (and ClusterIP) traffic of clients outside the node, SNATing to this
 *    node's address when the backend is on another node, and the replies that come back
 *    from other nodes; to_net translates replies.
 * Each program runs the same stages: parse (L2 or L3 device, IPv4 options, IPv6 extension
 * headers) -> conntrack (one lookup; a hit translates) -> service lookup and backend choice
 * (traffic policy scope, source ranges, session affinity, Maglev or random) -> NAT, reject or
 * drop -> exit
 * (the stack, or a FIB lookup and redirect when the new source is this node's own).
 * One code path serves IPv4 and IPv6: the maps hold 16-byte addresses, IPv4 as
 * IPv4-mapped. Replies are translated wherever their reply entry is met first; once
 * translated, a packet matches no reply entry, so nothing is translated twice. */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/errno.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>

#include "bpf/jhash.h"
#include "bpf/lb.bpf.h"
#include "bpf/ct.bpf.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef BPF_FIB_LOOKUP_SRC
#define BPF_FIB_LOOKUP_SRC (1U << 4) /* Linux 6.7: fill in the route's preferred source */
#endif

/* ICMP numbers (linux/icmp.h and icmpv6.h pull in libc headers). */
#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4
#define ICMPV6_PORT_UNREACH 4
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#ifndef IPPROTO_HOPOPTS
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_DSTOPTS 60
#endif

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* Program roles (the device kind and direction). */
#define ROLE_FROM_POD 0
#define ROLE_TO_POD 1
#define ROLE_FROM_NET 2
#define ROLE_TO_NET 3

/* Load-time settings (skel->rodata before load; bpf/datapath.cpp). */
const volatile __u16 sy_snat_port_min = 20000; /* SNAT source ports, host order */
const volatile __u16 sy_snat_port_max = 29999;
/* Conntrack idle lifetimes: bpf/ct.bpf.h (shared with the XDP fast path). */
/* -- Maglev (issue 11 item 3) -- */
const volatile __u32 sy_maglev_seed = SY_MAGLEV_SEED_DEFAULT; /* loadBalancer.maglev.hashSeed */
/* -- end Maglev -- */

#define SY_SNAT_TRIES 16
#define SY_IPV6_MAX_EXT 8
#define SY_IPV4_MAX_OPT_BYTES 40

enum { FRAG_NONE = 0, FRAG_FIRST = 1, FRAG_LATER = 2 };
enum { PARSE_PASS = 0, PARSE_L4 = 1 };

struct pkt {
	union sy_addr saddr;
	union sy_addr daddr;
	__u32 l3_off;  /* 0 on an L3 device, ETH_HLEN on Ethernet */
	__u32 l4_off;
	__u32 ip_len;  /* the IP packet's length by its header (a frame may carry padding) */
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 v6;
	__u8 frag;     /* FRAG_* */
	__u8 plain;    /* no IPv4 options or IPv6 extension headers */
	__u8 pad[3];
};

static __always_inline __u32 l4_csum_off(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return offsetof(struct tcphdr, check);
	case IPPROTO_UDP:
		return offsetof(struct udphdr, check);
	default:
		return 8; /* SCTP: the CRC32c after ports and verification tag */
	}
}

/* ---- parse ---- */

/* The larger stages are global functions (not static): the verifier checks each once, on
 * its own, instead of once per call site and path; it also makes them check their pointer
 * arguments for NULL. */

/* IPv4 options: walked so that a source-routed packet (LSRR/SSRR, whose destination is not
 * its final one) is left alone. One option per bpf_loop step (a plain loop over 40 bytes
 * makes the verifier walk every path through every option). */
struct opt_walk {
	__u8 opts[64];
	__u32 i;
	__u32 len;
	int bad;
};

static long opt_step(__u32 n, struct opt_walk *w)
{
	__u32 i = w->i;
	__u8 type, olen;

	if (i >= w->len || i >= SY_IPV4_MAX_OPT_BYTES)
		return 1;
	type = w->opts[i & 63];
	if (type == 0) /* end of options */
		return 1;
	if (type == 1) { /* no-op */
		w->i = i + 1;
		return 0;
	}
	olen = w->opts[(i + 1) & 63];
	if (type == 0x83 || type == 0x89 || i + 1 >= w->len || olen < 2) {
		w->bad = 1; /* LSRR, SSRR, or a malformed list */
		return 1;
	}
	w->i = i + olen;
	return 0;
}

__noinline int walk_ipv4_options(struct __sk_buff *skb, __u32 off, __u32 len)
{
	struct opt_walk w = { .len = len };
	__u64 n = len;

	barrier_var(n); /* the load must use the register whose bounds were checked */
	if (n == 0)
		return 0;
	if (n > SY_IPV4_MAX_OPT_BYTES || bpf_skb_load_bytes(skb, off, w.opts, n) < 0)
		return -1;
	bpf_loop(SY_IPV4_MAX_OPT_BYTES, opt_step, &w, 0);
	return w.bad ? -1 : 0;
}

/* Parses L3 and the L4 ports. PARSE_L4 for a TCP, UDP, SCTP or ICMP packet we may look at,
 * PARSE_PASS for anything else (other protocols, source routing, AH, a header chain too
 * long to walk). bpf_skb_load_bytes copes with non-linear skbs. */
static __always_inline int parse(struct __sk_buff *skb, __u32 l3_off, struct pkt *p)
{
	__u32 off;

	p->l3_off = l3_off;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		__u16 frag;

		if (bpf_skb_load_bytes(skb, l3_off, &ip, sizeof(ip)) < 0)
			return PARSE_PASS;
		if (ip.version != 4 || ip.ihl < 5)
			return PARSE_PASS;
		p->proto = ip.protocol;
		sy_addr_from_v4(&p->saddr, ip.saddr);
		sy_addr_from_v4(&p->daddr, ip.daddr);
		p->l4_off = l3_off + ip.ihl * 4;
		p->ip_len = bpf_ntohs(ip.tot_len);
		p->plain = ip.ihl == 5;
		if (!p->plain && walk_ipv4_options(skb, l3_off + sizeof(ip), ip.ihl * 4 - sizeof(ip)) < 0) {
			sy_count(SY_REASON_TC_PASS_HEADERS, skb->len);
			return PARSE_PASS;
		}
		frag = bpf_ntohs(ip.frag_off);
		if (frag & IP_OFFSET)
			p->frag = FRAG_LATER;
		else if (frag & IP_MF)
			p->frag = FRAG_FIRST;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		__u8 nexthdr;

		if (bpf_skb_load_bytes(skb, l3_off, &ip6, sizeof(ip6)) < 0)
			return PARSE_PASS;
		if (ip6.version != 6)
			return PARSE_PASS;
		p->v6 = 1;
		__builtin_memcpy(p->saddr.b, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr.b, &ip6.daddr, 16);
		p->ip_len = sizeof(ip6) + bpf_ntohs(ip6.payload_len);
		nexthdr = ip6.nexthdr;
		off = l3_off + sizeof(ip6);
		p->plain = 1;
		for (int i = 0; i < SY_IPV6_MAX_EXT; i++) {
			__u8 h[8];

			if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_ROUTING &&
			    nexthdr != IPPROTO_DSTOPTS && nexthdr != IPPROTO_FRAGMENT)
				break;
			if (bpf_skb_load_bytes(skb, off, h, sizeof(h)) < 0)
				return PARSE_PASS;
			p->plain = 0;
			if (nexthdr == IPPROTO_FRAGMENT) {
				__u16 fo = (__u16)(h[2] << 8 | h[3]);

				if (fo & 0xfff8)
					p->frag = FRAG_LATER;
				else if (fo & 1)
					p->frag = FRAG_FIRST;
				off += 8;
			} else {
				/* A routing header with segments left: the destination is not the final
				 * one, and the L4 checksum covers the final one. */
				if (nexthdr == IPPROTO_ROUTING && h[3] != 0) {
					sy_count(SY_REASON_TC_PASS_HEADERS, skb->len);
					return PARSE_PASS;
				}
				off += ((__u32)h[1] + 1) * 8;
			}
			nexthdr = h[0];
		}
		if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
		    nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_FRAGMENT) {
			sy_count(SY_REASON_TC_PASS_HEADERS, skb->len); /* longer than we walk */
			return PARSE_PASS;
		}
		/* AH authenticates the addresses we would rewrite: not ours to touch. */
		p->proto = nexthdr;
		p->l4_off = off;
	} else {
		return PARSE_PASS;
	}
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP && p->proto != IPPROTO_SCTP &&
	    p->proto != (p->v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP))
		return PARSE_PASS;
	if (p->frag == FRAG_LATER)
		return PARSE_L4; /* no L4 header: the caller passes it untouched */
	{
		__u8 l4[14] = {};
		__u32 n = p->proto == IPPROTO_TCP ? 14 : 4;

		if (bpf_skb_load_bytes(skb, p->l4_off, l4, n) < 0)
			return PARSE_PASS;
		__builtin_memcpy(&p->sport, &l4[0], 2);
		__builtin_memcpy(&p->dport, &l4[2], 2);
		p->tcp_flags = p->proto == IPPROTO_TCP ? l4[13] : 0;
	}
	return PARSE_L4;
}

/* ---- checksums and rewriting ---- */

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* The reflected CRC32c table (Castagnoli, polynomial 0x82F63B78), for SCTP. */
static const __u32 crc32c_table[256] = {
	0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
	0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
	0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
	0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
	0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
	0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
	0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
	0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
	0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
	0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
	0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
	0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
	0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
	0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
	0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
	0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
	0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
	0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
	0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
	0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
	0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
	0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
	0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
	0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
	0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
	0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
	0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
	0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
	0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
	0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
	0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
	0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
	0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
	0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
	0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
	0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
	0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
	0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
	0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
	0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
	0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
	0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
	0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

#define SCTP_CHUNK 32
struct crc_ctx {
	struct __sk_buff *skb;
	__u32 off;  /* next byte to sum */
	__u32 end;  /* one past the last */
	__u32 crc;
	int err;
};

static long crc_chunk(__u32 i, struct crc_ctx *c)
{
	__u8 buf[SCTP_CHUNK];
	__u64 n; /* 64-bit: a 32-bit length reaches the helper with its upper half unknown */

	if (c->off >= c->end)
		return 1;
	n = (__u64)c->end - c->off;
	if (n > SCTP_CHUNK)
		n = SCTP_CHUNK;
	barrier_var(n); /* the verifier must see the bound on the register the load uses */
	if (n == 0 || n > SCTP_CHUNK || bpf_skb_load_bytes(c->skb, c->off, buf, n) < 0) {
		c->err = 1;
		return 1;
	}
	for (__u32 j = 0; j < SCTP_CHUNK; j++) {
		if (j >= n)
			break;
		c->crc = crc32c_table[(c->crc ^ buf[j]) & 0xff] ^ (c->crc >> 8);
	}
	c->off += n;
	return 0;
}

/* SCTP's CRC32c covers the common header and chunks but no pseudo-header: an address change
 * leaves it valid, a port change needs it computed again over the whole packet. */
__noinline int sctp_fix_crc(struct __sk_buff *skb, __u32 l4_off, __u32 end)
{
	struct crc_ctx c = { .skb = skb, .off = l4_off, .end = end, .crc = 0xffffffff };
	__u32 zero = 0, crc;

	if (end <= l4_off + 12 || end > skb->len || end - l4_off > 16384)
		return -1;
	if (bpf_skb_store_bytes(skb, l4_off + 8, &zero, 4, 0) < 0)
		return -1;
	bpf_loop((end - l4_off + SCTP_CHUNK - 1) / SCTP_CHUNK, crc_chunk, &c, 0);
	if (c.err)
		return -1;
	crc = ~c.crc; /* stored least significant byte first, as Linux stores it */
	return bpf_skb_store_bytes(skb, l4_off + 8, &crc, 4, 0) < 0 ? -1 : 0;
}

/* Rewrites the source (dst = 0) or destination (dst = 1) address and port of a packet whose
 * header is at l3_off and L4 at l4_off, fixing the L4 checksum (pseudo-header included; SCTP:
 * not its CRC32c: sctp_after_rewrite) and, for IPv4, the header checksum. p describes the
 * packet before the change; on return it describes it after. */
__noinline int nat_rewrite(struct __sk_buff *skb, struct pkt *p, int dst,
				  const union sy_addr *new_addr, __be16 new_port)
{
	__u32 port_off, csum_off;
	__u64 l4_flags;
	union sy_addr *old_addr;
	__be16 *old_port;
	int sctp;

	if (!p || !new_addr)
		return -1; /* global function: the verifier checks it alone, NULL included */
	port_off = p->l4_off + (dst ? 2 : 0);
	csum_off = p->l4_off + l4_csum_off(p->proto);
	/* UDP checksum 0 means "none" (IPv4): MARK_MANGLED_0 leaves it so and avoids making 0. */
	l4_flags = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	old_addr = dst ? &p->daddr : &p->saddr;
	old_port = dst ? &p->dport : &p->sport;
	sctp = p->proto == IPPROTO_SCTP;

	if (p->v6) {
		__u32 addr_off = p->l3_off + (dst ? offsetof(struct ipv6hdr, daddr)
						  : offsetof(struct ipv6hdr, saddr));

		if (!sy_addr_eq(old_addr, new_addr)) {
			if (!sctp) {
				__s64 diff = bpf_csum_diff((__be32 *)old_addr->w, 16,
							   (__be32 *)new_addr->w, 16, 0);

				if (diff < 0)
					return -1;
				if (bpf_l4_csum_replace(skb, csum_off, 0, diff,
							BPF_F_PSEUDO_HDR | l4_flags) < 0)
					return -1;
			}
			if (bpf_skb_store_bytes(skb, addr_off, new_addr->b, 16, 0) < 0)
				return -1;
		}
	} else if (old_addr->w[3] != new_addr->w[3]) {
		__u32 addr_off = p->l3_off + (dst ? offsetof(struct iphdr, daddr)
						  : offsetof(struct iphdr, saddr));
		__be32 o = old_addr->w[3], n = new_addr->w[3];

		if (!sctp && bpf_l4_csum_replace(skb, csum_off, o, n,
						 BPF_F_PSEUDO_HDR | sizeof(n) | l4_flags) < 0)
			return -1;
		if (bpf_l3_csum_replace(skb, p->l3_off + offsetof(struct iphdr, check), o, n,
					sizeof(n)) < 0)
			return -1;
		if (bpf_skb_store_bytes(skb, addr_off, &n, sizeof(n), 0) < 0)
			return -1;
	}
	*old_addr = *new_addr;
	if (*old_port != new_port) {
		if (!sctp && bpf_l4_csum_replace(skb, csum_off, *old_port, new_port,
						 sizeof(new_port) | l4_flags) < 0)
			return -1;
		if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0) < 0)
			return -1;
		*old_port = new_port;
	}
	return 0;
}

/* After the rewrites of one packet: SCTP's CRC32c, computed again when a port changed. */
static __always_inline int sctp_after_rewrite(struct __sk_buff *skb, const struct pkt *p,
					      __be16 sport, __be16 dport)
{
	if (p->proto != IPPROTO_SCTP || (p->sport == sport && p->dport == dport))
		return 0;
	return sctp_fix_crc(skb, p->l4_off, p->l3_off + p->ip_len);
}

/* ---- exit: the stack, or a FIB lookup and redirect ---- */

/* Sends a translated packet towards its (new) destination itself. Needed when the new
 * source is one of this node's addresses: the stack drops a packet that arrives with a
 * local source address ("martian"). */
__noinline int fib_redirect(struct __sk_buff *skb, const struct pkt *p)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	long rc;

	if (!p)
		return -1; /* global function: the verifier checks it alone, NULL included */

	fib.ifindex = skb->ifindex;
	fib.l4_protocol = p->proto;
	fib.sport = p->sport;
	fib.dport = p->dport;
	/* tot_len stays 0: the helper then checks the skb itself against the egress device's MTU
	 * (is_skb_forwardable), which knows GSO/GRO super-packets fit once segmented. With
	 * tot_len = the IP header's length, a 64 kB GRO packet of a bulk TCP flow failed the
	 * MTU check (FRAG_NEEDED) and was dropped: every full-size burst lost, the flow stalled. */
	if (p->v6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, p->saddr.w, 16);
		__builtin_memcpy(fib.ipv6_dst, p->daddr.w, 16);
	} else {
		fib.family = AF_INET;
		fib.ipv4_src = p->saddr.w[3];
		fib.ipv4_dst = p->daddr.w[3];
	}
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		sy_count(SY_REASON_TC_FIB_FAILED, skb->len);
		return TC_ACT_SHOT;
	}
	if (p->v6) {
		nh.nh_family = AF_INET6;
		__builtin_memcpy(nh.ipv6_nh, fib.ipv6_dst, 16);
	} else {
		nh.nh_family = AF_INET;
		nh.ipv4_nh = fib.ipv4_dst;
	}
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
}

/* The address this node sends from towards dst (the route's preferred source), for SNAT. */
__noinline int fib_source(struct __sk_buff *skb, const struct pkt *p,
				 const union sy_addr *dst, union sy_addr *src)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	if (!p || !dst || !src)
		return -1; /* global function: the verifier checks it alone, NULL included */

	fib.ifindex = skb->ifindex;
	fib.l4_protocol = p->proto;
	if (p->v6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_dst, dst->w, 16);
	} else {
		fib.family = AF_INET;
		fib.ipv4_dst = dst->w[3];
	}
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT | BPF_FIB_LOOKUP_SRC |
						      BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return -1;
	if (p->v6)
		__builtin_memcpy(src->w, fib.ipv6_src, 16);
	else
		sy_addr_from_v4(src, fib.ipv4_src);
	return src->w[3] || src->w[2] || src->w[1] || src->w[0] ? 0 : -1;
}

/* ---- reject: a TCP reset or an ICMP port unreachable back to the client ---- */

static __always_inline int swap_macs(struct __sk_buff *skb, __u32 l3_off)
{
	__u8 macs[12], swapped[12];

	if (l3_off == 0)
		return 0;
	if (bpf_skb_load_bytes(skb, 0, macs, 12) < 0)
		return -1;
	__builtin_memcpy(swapped, macs + 6, 6);
	__builtin_memcpy(swapped + 6, macs, 6);
	return bpf_skb_store_bytes(skb, 0, swapped, 12, 0);
}

/* A fresh IP header from `src` to `dst` carrying `payload` bytes of protocol `proto`. */
static __always_inline int write_ip_header(struct __sk_buff *skb, const struct pkt *p, __u8 proto,
					   const union sy_addr *src, const union sy_addr *dst,
					   __u16 payload)
{
	if (p->v6) {
		struct ipv6hdr h = {};

		h.version = 6;
		h.payload_len = bpf_htons(payload);
		h.nexthdr = proto;
		h.hop_limit = 64;
		__builtin_memcpy(&h.saddr, src->b, 16);
		__builtin_memcpy(&h.daddr, dst->b, 16);
		return bpf_skb_store_bytes(skb, p->l3_off, &h, sizeof(h), 0);
	} else {
		struct iphdr h = {};
		__s64 sum;

		h.version = 4;
		h.ihl = 5;
		h.tot_len = bpf_htons(payload + sizeof(h));
		h.frag_off = bpf_htons(0x4000); /* DF */
		h.ttl = 64;
		h.protocol = proto;
		h.saddr = src->w[3];
		h.daddr = dst->w[3];
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&h, sizeof(h), 0);
		if (sum < 0)
			return -1;
		h.check = ~csum_fold((__u64)sum);
		return bpf_skb_store_bytes(skb, p->l3_off, &h, sizeof(h), 0);
	}
}

/* The one's-complement sum of the pseudo-header of a `len`-byte L4 payload. */
static __always_inline __s64 pseudo_sum(const struct pkt *p, const union sy_addr *src,
					const union sy_addr *dst, __u8 proto, __u32 len)
{
	__be32 tail[2];

	if (p->v6) {
		__s64 s = bpf_csum_diff(NULL, 0, (__be32 *)src->w, 16, 0);

		if (s < 0)
			return s;
		s = bpf_csum_diff(NULL, 0, (__be32 *)dst->w, 16, (__wsum)s);
		if (s < 0)
			return s;
		tail[0] = bpf_htonl(len);
		tail[1] = bpf_htonl(proto);
		return bpf_csum_diff(NULL, 0, tail, 8, (__wsum)s);
	}
	tail[0] = src->w[3];
	tail[1] = dst->w[3];
	__s64 s = bpf_csum_diff(NULL, 0, tail, 8, 0);
	if (s < 0)
		return s;
	tail[0] = bpf_htonl((__u32)proto << 16 | len);
	return bpf_csum_diff(NULL, 0, tail, 4, (__wsum)s);
}

/* A TCP reset answering the packet, as the kernel answers a closed port (RFC 9293 3.10.7.1),
 * sent back out of the device it came in on. */
__noinline int reject_tcp(struct __sk_buff *skb, const struct pkt *p)
{
	struct tcphdr in = {}, rst = {};
	__u32 hlen, seglen;
	__s64 sum;

	if (!p)
		return -1; /* global function: the verifier checks it alone, NULL included */
	hlen = p->v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);

	if (bpf_skb_load_bytes(skb, p->l4_off, &in, sizeof(in)) < 0)
		return -1;
	if (in.rst)
		return -1; /* never answer a reset */
	if (p->ip_len < (p->l4_off - p->l3_off) + in.doff * 4)
		return -1;
	seglen = p->ip_len - (p->l4_off - p->l3_off) - in.doff * 4 + in.syn + in.fin;
	rst.source = p->dport;
	rst.dest = p->sport;
	rst.doff = 5;
	rst.rst = 1;
	if (in.ack) {
		rst.seq = in.ack_seq;
	} else {
		rst.ack = 1;
		rst.ack_seq = bpf_htonl(bpf_ntohl(in.seq) + seglen);
	}
	sum = pseudo_sum(p, &p->daddr, &p->saddr, IPPROTO_TCP, sizeof(rst));
	if (sum < 0)
		return -1;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&rst, sizeof(rst), (__wsum)sum);
	if (sum < 0)
		return -1;
	rst.check = ~csum_fold((__u64)sum);
	if (bpf_skb_change_tail(skb, p->l3_off + hlen + sizeof(rst), 0) < 0)
		return -1;
	if (write_ip_header(skb, p, IPPROTO_TCP, &p->daddr, &p->saddr, sizeof(rst)) < 0 ||
	    bpf_skb_store_bytes(skb, p->l3_off + hlen, &rst, sizeof(rst), 0) < 0 ||
	    swap_macs(skb, p->l3_off) < 0)
		return -1;
	return 0;
}

/* What icmp_reply answers. */
#define ICMP_REPLY_PORT_UNREACH 0 /* destination (port) unreachable */
#define ICMP_REPLY_TOO_BIG 1      /* fragmentation needed (IPv4) / packet too big (IPv6) */

/* An ICMP (ICMPv6) error quoting the packet's IP header and first 8 L4 bytes, sent back out
 * of the device it came in on: a port unreachable, as the kernel answers a closed UDP port,
 * or a fragmentation needed / packet too big carrying `info` (the MTU, host order) in its
 * second word, as a router answers a packet too big for the next hop. */
__noinline int icmp_reply(struct __sk_buff *skb, const struct pkt *p, __u32 what, __u32 info)
{
	__u8 buf[sizeof(struct ipv6hdr) + 8 + 8] = {}; /* ICMP header + quoted packet */
	__u32 hlen, quoted, icmplen;
	__be32 word = bpf_htonl(info);
	__s64 sum;

	if (!p)
		return -1; /* global function: the verifier checks it alone, NULL included */
	hlen = p->v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	quoted = hlen + 8;
	icmplen = 8 + quoted;

	if (bpf_skb_load_bytes(skb, p->l3_off, buf + 8, quoted & 0x3f) < 0)
		return -1;
	if (what == ICMP_REPLY_TOO_BIG)
		__builtin_memcpy(buf + 4, &word, 4); /* IPv4: unused, next-hop MTU; IPv6: MTU */
	if (p->v6) {
		buf[0] = what == ICMP_REPLY_TOO_BIG ? ICMPV6_PKT_TOOBIG : ICMPV6_DEST_UNREACH;
		buf[1] = what == ICMP_REPLY_TOO_BIG ? 0 : ICMPV6_PORT_UNREACH;
		sum = pseudo_sum(p, &p->daddr, &p->saddr, IPPROTO_ICMPV6, icmplen);
		if (sum < 0)
			return -1;
	} else {
		buf[0] = ICMP_DEST_UNREACH;
		buf[1] = what == ICMP_REPLY_TOO_BIG ? ICMP_FRAG_NEEDED : ICMP_PORT_UNREACH;
		sum = 0;
	}
	sum = bpf_csum_diff(NULL, 0, (__be32 *)buf, (icmplen & 0x3c), (__wsum)sum);
	if (sum < 0)
		return -1;
	{
		__u16 c = ~csum_fold((__u64)sum);

		__builtin_memcpy(buf + 2, &c, 2);
	}
	/* Keep the quoted part, then make room for the new IP and ICMP headers in front. */
	if (bpf_skb_change_tail(skb, p->l3_off + quoted, 0) < 0 ||
	    bpf_skb_adjust_room(skb, (__s32)(hlen + 8), BPF_ADJ_ROOM_MAC, 0) < 0)
		return -1;
	if (write_ip_header(skb, p, p->v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP, &p->daddr, &p->saddr,
			    (__u16)icmplen) < 0 ||
	    bpf_skb_store_bytes(skb, p->l3_off + hlen, buf, icmplen & 0x3f, 0) < 0 ||
	    swap_macs(skb, p->l3_off) < 0)
		return -1;
	return 0;
}

/* kube-proxy rejects traffic to a service without endpoints: TCP gets a reset, UDP and SCTP
 * an ICMP port unreachable. Only plain packets (no IP options or extension headers) are
 * answered; the others are dropped. */
static __always_inline int reject(struct __sk_buff *skb, const struct pkt *p)
{
	int err = -1;

	if (p->plain)
		err = p->proto == IPPROTO_TCP ? reject_tcp(skb, p) : icmp_reply(skb, p, ICMP_REPLY_PORT_UNREACH, 0);
	if (err < 0) {
		sy_count(SY_REASON_TC_REJECT_FAILED, skb->len);
		return TC_ACT_SHOT;
	}
	sy_count(SY_REASON_TC_NO_BACKEND, skb->len);
	return bpf_redirect(skb->ifindex, 0);
}

/* ---- conntrack ---- */

/* Stages of tc_dsr.bpf.h (included below) that the conntrack stage calls. */
__noinline int tcp_clamp_mss(struct __sk_buff *skb, const struct pkt *p, __u32 mss);

/* ct_key, ct_lifetime, ct_reply_key_of, ct_forward_key_of: bpf/ct.bpf.h. */

/* The reply entry matching a forward entry. */
static __always_inline void ct_reply_of(struct sy_ct_entry *r, const struct sy_ct_key *fk,
					const struct sy_ct_entry *fwd)
{
	*r = *fwd;
	r->dir = SY_CT_REPLY;
	r->flags &= ~(SY_CT_F_REDIRECT | SY_CT_F_REPLY_REDIRECT);
	if (fwd->flags & SY_CT_F_REPLY_REDIRECT)
		r->flags |= SY_CT_F_REDIRECT;
	r->nat_addr = fk->daddr;
	r->nat_port = fk->dport;
	if (fwd->flags & SY_CT_F_SNAT) {
		r->nat2_addr = fk->saddr;
		r->nat2_port = fk->sport;
	}
}

static __always_inline int ct_key_eq(const struct sy_ct_key *a, const struct sy_ct_key *b)
{
	return sy_addr_eq(&a->saddr, &b->saddr) && sy_addr_eq(&a->daddr, &b->daddr) &&
	       a->sport == b->sport && a->dport == b->dport && a->proto == b->proto;
}

static __always_inline void ct_forget_pair(const struct sy_ct_key *k, const struct sy_ct_entry *e)
{
	struct sy_ct_key other;

	if (e->dir == SY_CT_FORWARD)
		ct_reply_key_of(&other, k, e);
	else
		ct_forward_key_of(&other, k, e);
	bpf_map_delete_elem(&SY_MAP_CT, &other);
	bpf_map_delete_elem(&SY_MAP_CT, k);
}

/* FIN or RST: both entries of the flow get the short lifetime. */
static __always_inline void ct_mark_closing(const struct sy_ct_key *k, struct sy_ct_entry *e)
{
	struct sy_ct_key other;
	struct sy_ct_entry *o;

	if (e->flags & SY_CT_F_CLOSING)
		return;
	e->flags |= SY_CT_F_CLOSING;
	if (e->dir == SY_CT_FORWARD)
		ct_reply_key_of(&other, k, e);
	else
		ct_forward_key_of(&other, k, e);
	o = bpf_map_lookup_elem(&SY_MAP_CT, &other);
	if (o)
		o->flags |= SY_CT_F_CLOSING;
}

/* A new TCP connection (SYN without ACK) straight to an address that is no frontend, e.g.
 * client -> pod IP. If an earlier translated flow used the same four-tuple, its reply entry
 * would rewrite this connection's replies to the frontend: forget it. */
static __always_inline void ct_forget_stale_reply(const struct pkt *p)
{
	struct sy_ct_key rkey;

	if (p->proto != IPPROTO_TCP || (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		return;
	ct_key(&rkey, &p->daddr, &p->saddr, p->dport, p->sport, p->proto);
	bpf_map_delete_elem(&SY_MAP_CT, &rkey);
}

/* Applies a forward entry: destination -> backend, and source -> SNAT address if any. */
__noinline int ct_apply_forward(struct __sk_buff *skb, struct pkt *p,
				       const struct sy_ct_entry *e, __u32 reason)
{
	union sy_addr a, a2;
	__be16 port, port2, sport, dport;
	__u8 flags;

	if (!p || !e)
		return -1; /* global function: the verifier checks it alone, NULL included */
	a = e->nat_addr;
	a2 = e->nat2_addr;
	port = e->nat_port;
	port2 = e->nat2_port;
	sport = p->sport;
	dport = p->dport;
	flags = e->flags;

	if (nat_rewrite(skb, p, 1, &a, port) < 0 ||
	    ((flags & SY_CT_F_SNAT) && nat_rewrite(skb, p, 0, &a2, port2) < 0) ||
	    sctp_after_rewrite(skb, p, sport, dport) < 0) {
		sy_count(SY_REASON_TC_CSUM_ERROR, skb->len);
		return TC_ACT_SHOT;
	}
	sy_count(reason, skb->len);
	if (flags & SY_CT_F_REDIRECT)
		return fib_redirect(skb, p);
	return TC_ACT_OK;
}

/* A packet of a tracked flow in the reply direction: source -> frontend, and destination ->
 * client if the flow is SNATed. */
__noinline int ct_reply(struct __sk_buff *skb, struct pkt *p, struct sy_ct_key *k,
			       struct sy_ct_entry *e, __u64 now)
{
	union sy_addr a, a2;
	__be16 port, port2, sport, dport;
	__u8 flags;

	if (!p || !k || !e)
		return -1; /* global function: the verifier checks it alone, NULL included */

	if (!sy_fresh(e->last_seen_ns, now, ct_lifetime(e, p->proto))) {
		/* The translated flow is over; this tuple now belongs to someone else. */
		ct_forget_pair(k, e);
		return TC_ACT_OK;
	}
	if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		ct_mark_closing(k, e);
	if (!sy_fresh(e->last_seen_ns, now, SY_CT_REFRESH_NS)) {
		/* Both entries live and die together: the reply direction stamps the forward one
		 * too (a one-way flow of replies keeps its forward entry). */
		struct sy_ct_key fk;
		struct sy_ct_entry *f;

		e->last_seen_ns = now;
		ct_forward_key_of(&fk, k, e);
		f = bpf_map_lookup_elem(&SY_MAP_CT, &fk);
		if (f)
			f->last_seen_ns = now;
	}
	/* A DSR tunnel's SYN-ACK: the client's segments must fit it (tc_dsr.bpf.h). */
	if ((e->flags & SY_CT_F_DSR_IPIP) && e->nat2_port && (p->tcp_flags & TCP_FLAG_SYN))
		tcp_clamp_mss(skb, p, e->nat2_port);
	a = e->nat_addr;
	a2 = e->nat2_addr;
	port = e->nat_port;
	port2 = e->nat2_port;
	flags = e->flags;
	sport = p->sport;
	dport = p->dport;
	if (nat_rewrite(skb, p, 0, &a, port) < 0 ||
	    ((flags & SY_CT_F_SNAT) && nat_rewrite(skb, p, 1, &a2, port2) < 0) ||
	    sctp_after_rewrite(skb, p, sport, dport) < 0) {
		sy_count(SY_REASON_TC_CSUM_ERROR, skb->len);
		return TC_ACT_SHOT;
	}
	sy_count(SY_REASON_TC_REVNAT, skb->len);
	if (flags & SY_CT_F_REDIRECT)
		return fib_redirect(skb, p);
	return TC_ACT_OK;
}

#define CT_RESELECT (-1000)
#define CT_DSR (-1001) /* a tracked DSR flow: the caller sends it on with dsr_forward */

/* A packet of a tracked flow in the forward direction. At most once per SY_CT_REFRESH_NS
 * (and on SYN, FIN, RST) the flow is checked: its backend must still exist with the address
 * the flow uses (else the flow is balanced again), and its reply entry must exist (else it
 * is written again: LRU may evict it alone). Returns a verdict, or CT_RESELECT. */
__noinline int ct_forward(struct __sk_buff *skb, struct pkt *p, struct sy_ct_key *k,
				 struct sy_ct_entry *e, __u64 now)
{
	if (!p || !k || !e)
		return -1; /* global function: the verifier checks it alone, NULL included */
	if (!sy_fresh(e->last_seen_ns, now, ct_lifetime(e, p->proto)) ||
	    ((e->flags & SY_CT_F_CLOSING) && (p->tcp_flags & TCP_FLAG_SYN))) {
		/* Expired, or a new connection reusing a closed one's tuple. */
		ct_forget_pair(k, e);
		return CT_RESELECT;
	}
	if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		ct_mark_closing(k, e);
	if (!sy_fresh(e->last_seen_ns, now, SY_CT_REFRESH_NS) ||
	    (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST))) {
		struct sy_ct_key rk;
		struct sy_ct_entry *r;
		__u32 id = e->backend_id;
		const struct sy_backend *be = bpf_map_lookup_elem(&SY_MAP_BACKENDS, &id);

		if (!be || !sy_addr_eq(&be->addr, &e->nat_addr) || be->port != e->nat_port) {
			/* The backend went away, or its ID now names another one. */
			sy_count(SY_REASON_TC_CT_STALE_BACKEND, skb->len);
			ct_forget_pair(k, e);
			return CT_RESELECT;
		}
		e->last_seen_ns = now;
		ct_reply_key_of(&rk, k, e);
		r = bpf_map_lookup_elem(&SY_MAP_CT, &rk);
		if (r || (e->flags & SY_CT_F_DSR)) {
			/* A DSR flow's replies go from the backend's node straight to the client:
			 * it has no reply entry here. */
			if (r)
				r->last_seen_ns = now;
		} else {
			struct sy_ct_entry nr;

			ct_reply_of(&nr, k, e);
			if (bpf_map_update_elem(&SY_MAP_CT, &rk, &nr, BPF_ANY) == 0)
				sy_count(SY_REASON_TC_CT_REPLY_RESTORED, skb->len);
			else
				sy_count(SY_REASON_TC_CT_CREATE_FAILED, skb->len);
		}
	}
	/* A DSR flow: handle() calls dsr_forward itself (tc_dsr.bpf.h), one call level up,
	 * because of the 512-byte stack of the call chain. */
	if (e->flags & SY_CT_F_DSR)
		return CT_DSR;
	return ct_apply_forward(skb, p, e, SY_REASON_TC_DNAT_CT);
}


/* ---- ICMP errors about translated flows ---- */

/* Rewrites one address of a header inside or outside an ICMP error, fixing what covers it.
 * IPv4: the header checksum at l3csum (the quoted header's own, or the outer one); the ICMP
 * checksum does not move, since the quoted header's checksum moves by the opposite amount.
 * IPv6: the ICMPv6 checksum at icmpcsum, through its pseudo-header for the outer addresses
 * (pseudo). */
static __always_inline int icmp_store_addr(struct __sk_buff *skb, __u32 off, const union sy_addr *old,
					   const union sy_addr *new, int v6, __u32 l3csum, __u32 icmpcsum,
					   int pseudo)
{
	if (sy_addr_eq(old, new))
		return 0;
	if (v6) {
		__s64 diff = bpf_csum_diff((__be32 *)old->w, 16, (__be32 *)new->w, 16, 0);

		if (diff < 0 || bpf_l4_csum_replace(skb, icmpcsum, 0, diff, pseudo ? BPF_F_PSEUDO_HDR : 0) < 0)
			return -1;
		return bpf_skb_store_bytes(skb, off, new->b, 16, 0);
	}
	if (bpf_l3_csum_replace(skb, l3csum, old->w[3], new->w[3], 4) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &new->w[3], 4, 0);
}

static __always_inline int icmp_store_port(struct __sk_buff *skb, __u32 off, __be16 old, __be16 new,
					   __u32 icmpcsum)
{
	if (old == new)
		return 0;
	if (bpf_l4_csum_replace(skb, icmpcsum, old, new, 2) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &new, 2, 0);
}

/* An ICMP error (destination or port unreachable, fragmentation needed / packet too big,
 * time exceeded, parameter problem) quoting a packet of a translated flow: the quoted
 * packet and the error's own addresses are translated as the flow's packets are, so the
 * client sees an error about its connection to the frontend (and a backend one about its
 * connection to the client). The flow's entry is found with the quoted tuple reversed:
 *  - a reply entry: the error is about a forward packet (the backend or a router on its way
 *    answered): the quoted destination becomes the frontend again, the error's source too
 *    when the backend sent it, and with SNAT the client's address comes back;
 *  - a forward entry: the error is about a reply (the client's side answered): the quoted
 *    source becomes the backend, the error goes to the backend. */
__noinline int icmp_error(struct __sk_buff *skb, struct pkt *p)
{
	struct sy_ct_key k;
	struct sy_ct_entry *ct;
	union sy_addr isrc = {}, idst = {}, nsrc, ndst, osrc, odst;
	__be16 isport, idport, nsport, ndport;
	__u32 inner, iaddr, il4, icmpcsum, l3csum, il3csum = 0;
	__u8 hdr[8], iproto, flags;
	int v6, reply;

	if (!p)
		return TC_ACT_OK; /* global function: the verifier checks it alone, NULL included */
	v6 = p->v6;
	if (bpf_skb_load_bytes(skb, p->l4_off, hdr, sizeof(hdr)) < 0)
		return TC_ACT_OK;
	if (v6 ? (hdr[0] < ICMPV6_DEST_UNREACH || hdr[0] > ICMPV6_PARAMPROB)
	       : (hdr[0] != ICMP_DEST_UNREACH && hdr[0] != ICMP_TIME_EXCEEDED && hdr[0] != ICMP_PARAMETERPROB))
		return TC_ACT_OK; /* not an error (echo, neighbour discovery, ...) */
	icmpcsum = p->l4_off + 2;
	inner = p->l4_off + 8;
	if (v6) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, inner, &ip6, sizeof(ip6)) < 0)
			return TC_ACT_OK;
		iproto = ip6.nexthdr;
		__builtin_memcpy(isrc.b, &ip6.saddr, 16);
		__builtin_memcpy(idst.b, &ip6.daddr, 16);
		iaddr = inner + offsetof(struct ipv6hdr, saddr);
		il4 = inner + sizeof(ip6);
	} else {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, inner, &ip, sizeof(ip)) < 0 || ip.ihl < 5)
			return TC_ACT_OK;
		iproto = ip.protocol;
		sy_addr_from_v4(&isrc, ip.saddr);
		sy_addr_from_v4(&idst, ip.daddr);
		iaddr = inner + offsetof(struct iphdr, saddr);
		il3csum = inner + offsetof(struct iphdr, check);
		il4 = inner + ip.ihl * 4;
	}
	if (iproto != IPPROTO_TCP && iproto != IPPROTO_UDP && iproto != IPPROTO_SCTP)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, il4, &isport, 2) < 0 || bpf_skb_load_bytes(skb, il4 + 2, &idport, 2) < 0)
		return TC_ACT_OK;
	ct_key(&k, &idst, &isrc, idport, isport, iproto);
	ct = bpf_map_lookup_elem(&SY_MAP_CT, &k);
	if (!ct)
		return TC_ACT_OK; /* not about a flow we translated */
	reply = ct->dir == SY_CT_REPLY;
	flags = ct->flags;
	nsrc = isrc;
	ndst = idst;
	nsport = isport;
	ndport = idport;
	osrc = p->saddr;
	odst = p->daddr;
	if (reply) {
		ndst = ct->nat_addr;
		ndport = ct->nat_port;
		if (sy_addr_eq(&p->saddr, &idst))
			osrc = ct->nat_addr; /* the backend itself answered */
		if (flags & SY_CT_F_SNAT) {
			nsrc = ct->nat2_addr;
			nsport = ct->nat2_port;
			odst = ct->nat2_addr;
		}
	} else {
		nsrc = ct->nat_addr;
		nsport = ct->nat_port;
		odst = ct->nat_addr;
		if (flags & SY_CT_F_SNAT) {
			ndst = ct->nat2_addr;
			ndport = ct->nat2_port;
			if (sy_addr_eq(&p->saddr, &idst))
				osrc = ct->nat2_addr;
		}
	}
	l3csum = v6 ? 0 : p->l3_off + offsetof(struct iphdr, check);
	if (icmp_store_addr(skb, iaddr, &isrc, &nsrc, v6, il3csum, icmpcsum, 0) < 0 ||
	    icmp_store_addr(skb, iaddr + (v6 ? 16 : 4), &idst, &ndst, v6, il3csum, icmpcsum, 0) < 0 ||
	    icmp_store_port(skb, il4, isport, nsport, icmpcsum) < 0 ||
	    icmp_store_port(skb, il4 + 2, idport, ndport, icmpcsum) < 0 ||
	    icmp_store_addr(skb, p->l3_off + (v6 ? offsetof(struct ipv6hdr, saddr) : offsetof(struct iphdr, saddr)),
			    &p->saddr, &osrc, v6, l3csum, icmpcsum, 1) < 0 ||
	    icmp_store_addr(skb, p->l3_off + (v6 ? offsetof(struct ipv6hdr, daddr) : offsetof(struct iphdr, daddr)),
			    &p->daddr, &odst, v6, l3csum, icmpcsum, 1) < 0) {
		sy_count(SY_REASON_TC_CSUM_ERROR, skb->len);
		return TC_ACT_SHOT;
	}
	sy_count(SY_REASON_TC_ICMP_REVNAT, skb->len);
	if (flags & SY_CT_F_REDIRECT) {
		p->saddr = osrc;
		p->daddr = odst;
		return fib_redirect(skb, p);
	}
	return TC_ACT_OK;
}

/* ---- direct server return: its own stages (issue 11) ---- */
#include "bpf/tc_dsr.bpf.h"

/* ---- new flows ---- */

/* Room for what does not fit the 512-byte stack of a call chain (per CPU; not pinned: its
 * contents never outlive one packet). */
struct scratch {
	struct sy_ct_entry entry;
	struct sy_ct_key key;
	struct sy_ct_key other; /* ct_evict_stale_holder's */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct scratch);
	__uint(max_entries, 1);
} scratch SEC(".maps");

static __always_inline int in_cluster_source(const union sy_addr *a)
{
	struct sy_local_net_key k = { .prefixlen = 128, .addr = *a };
	const struct sy_local_net_value *v = bpf_map_lookup_elem(&SY_MAP_LOCAL_NETS, &k);

	return (v && (v->flags & SY_LOCAL_NET_F_CLUSTER)) || bpf_map_lookup_elem(&SY_MAP_NODE_ADDRS, a);
}

static __always_inline int source_allowed(__u32 rev_nat_id, const union sy_addr *a)
{
	struct sy_src_range_key k = { .prefixlen = 32 + 128, .rev_nat_id = bpf_htonl(rev_nat_id),
				      .addr = *a };

	return bpf_map_lookup_elem(&SY_MAP_SRC_RANGES, &k) != NULL;
}

/* Whether the flow holding reply key rk may give it up to a new flow: its entries expired
 * (LRU keeps them until it needs the room), or it is a TCP flow that saw FIN or RST and the
 * new packet is a SYN. The latter is what Linux NAT does in its last attempts to find a
 * free port for a SYN (nf_nat_used_tuple_harder evicts a colliding connection in TIME_WAIT
 * or CLOSE; it also checks that the sequence advanced, which this conntrack does not track):
 * the backend's stack accepts a SYN on its TIME_WAIT socket when the SYN's sequence or
 * timestamp is newer, and otherwise the client's retransmission succeeds. Without it the
 * closing lifetime times the connection rate fills the port range at high rates of short
 * connections, so new connections' SYNs find no free SNAT port and are dropped. If so,
 * the old flow's entries are deleted and 1 is returned. */
static __always_inline int ct_evict_stale_holder(const struct pkt *p, const struct sy_ct_key *rk,
						  struct scratch *sc)
{
	const struct sy_ct_entry *old = bpf_map_lookup_elem(&SY_MAP_CT, rk);
	__u64 now = bpf_ktime_get_ns();

	if (!old)
		return 1; /* gone meanwhile: free */
	if (old->dir != SY_CT_REPLY)
		return 0;
	if (sy_fresh(old->last_seen_ns, now, ct_lifetime(old, rk->proto)) &&
	    !(rk->proto == IPPROTO_TCP && (old->flags & SY_CT_F_CLOSING) &&
	      (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN))
		return 0;
	/* As ct_forget_pair, with the other key off the stack (this runs three calls deep). */
	ct_forward_key_of(&sc->other, rk, old);
	bpf_map_delete_elem(&SY_MAP_CT, &sc->other);
	bpf_map_delete_elem(&SY_MAP_CT, rk);
	sy_count(SY_REASON_TC_CT_RECLAIMED, 0);
	return 1;
}

/* ct is a plain hash (abi.h): an insert into a full table fails with E2BIG, and the new flow
 * is refused rather than translated untracked (its replies would leave untranslated). */
#define CT_FULL (-3)

/* Writes the reply entry of a new flow with BPF_NOEXIST, so that two flows never share one
 * (a client reaching one backend through two frontends from one port would, cilium#11810).
 * The natural tuple first; if another flow holds it, the client's source port is SNATed
 * (address kept) to a free port of the SNAT range. With snat, the source is snat_addr and
 * only SNAT-range ports are tried. Sets fwd's SNAT fields. Returns 1 if the reply key is
 * new (ours to undo), 0 if it already was this flow's (its forward entry was lost), -1 on
 * failure, -2 when no SNAT port is free, -3 when the table is full (CT_FULL). */
__noinline int ct_reserve_reply(const struct pkt *p, struct sy_ct_entry *fwd,
				       const struct sy_ct_key *fk, int snat,
				       const union sy_addr *snat_addr)
{
	__u32 span = (__u32)sy_snat_port_max - sy_snat_port_min + 1;
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&scratch, &zero);
	struct sy_ct_entry *rep;
	struct sy_ct_key *rk;
	long err;

	if (!p || !fwd || !fk || !snat_addr)
		return -1; /* global function: the verifier checks it alone, NULL included */

	if (!sc)
		return -1;
	rep = &sc->entry;
	rk = &sc->key;

	if (!snat) {
		ct_reply_of(rep, fk, fwd);
		ct_key(rk, &fwd->nat_addr, &p->saddr, fwd->nat_port, p->sport, p->proto);
		err = bpf_map_update_elem(&SY_MAP_CT, rk, rep, BPF_NOEXIST);
		if (err == 0)
			return 1;
		if (err == -E2BIG)
			return CT_FULL;
		if (err != -EEXIST)
			return -1;
		{
			const struct sy_ct_entry *old = bpf_map_lookup_elem(&SY_MAP_CT, rk);

			if (old && old->dir == SY_CT_REPLY && !(old->flags & SY_CT_F_SNAT) &&
			    sy_addr_eq(&old->nat_addr, &p->daddr) && old->nat_port == p->dport) {
				/* The same flow's (its forward entry was lost): take it over. */
				bpf_map_update_elem(&SY_MAP_CT, rk, rep, BPF_ANY);
				return 0;
			}
		}
		snat_addr = &p->saddr; /* port SNAT only: the address stays the client's */
	}
	fwd->flags |= SY_CT_F_SNAT;
	fwd->nat2_addr = *snat_addr;
	for (int i = 0; i < SY_SNAT_TRIES; i++) {
		__u16 port = sy_snat_port_min + (__u16)(bpf_get_prandom_u32() % span);

		fwd->nat2_port = bpf_htons(port);
		ct_reply_of(rep, fk, fwd);
		ct_key(rk, &fwd->nat_addr, &fwd->nat2_addr, fwd->nat_port, fwd->nat2_port, p->proto);
		err = bpf_map_update_elem(&SY_MAP_CT, rk, rep, BPF_NOEXIST);
		/* The last try takes the port from a closed or expired flow rather than drop
		 * the SYN: a free port is better (the backend holds no TIME_WAIT socket for it). */
		if (err == -EEXIST && i == SY_SNAT_TRIES - 1 && ct_evict_stale_holder(p, rk, sc))
			err = bpf_map_update_elem(&SY_MAP_CT, rk, rep, BPF_NOEXIST);
		if (err == 0)
			return 1;
		if (err == -E2BIG) {
			fwd->flags &= ~SY_CT_F_SNAT;
			return CT_FULL;
		}
		if (err != -EEXIST)
			return -1;
	}
	fwd->flags &= ~SY_CT_F_SNAT;
	return -2;
}

#ifdef SY_TEST_RACE
/* Tests only (tests/bpf, a separate object): another CPU's forward entry for this flow
 * appears between our lookup and our insert, as when the first two packets of one flow run
 * on two CPUs at once. The test arms race_inject with the winner's entry. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sy_ct_entry);
	__uint(max_entries, 1);
} race_inject SEC(".maps");

static __always_inline void test_race(const struct sy_ct_key *fk)
{
	__u32 zero = 0;
	struct sy_ct_entry *e = bpf_map_lookup_elem(&race_inject, &zero);

	if (e && e->backend_id) {
		bpf_map_update_elem(&SY_MAP_CT, fk, e, BPF_NOEXIST);
		e->backend_id = 0;
	}
}
#else
#define test_race(fk) ((void)0)
#endif

/* ---- backend choice: session affinity, Maglev, random ---- */

/* -- Maglev (issue 11 item 3) -- */
/* Word `pos` (0..M) of a Maglev table (abi.h: two words a cell), 0 when there is none. */
static __always_inline __u32 maglev_word(void *table, __u32 pos)
{
	__u32 cell = pos / 2;
	const struct sy_maglev_cell *c = bpf_map_lookup_elem(table, &cell);

	return c ? c->word[pos & 1] : 0;
}

/* The backend ID the frontend's Maglev table gives a new flow, 0 when it has no usable table
 * (the writer swaps whole tables, so a table seen is complete; a miss is drift). Session
 * affinity still comes first: the client's entry while it is fresh and the table position
 * it was chosen at still names its backend; else the position of the flow's tuple hash,
 * remembered for the client. The client port is left out of the hash under affinity, so
 * that every node sends one client to the same backend. */
__noinline int maglev_choose(const struct pkt *p, const struct sy_svc_key *skey,
			     const struct sy_svc_value *svc, struct sy_affinity_key *akey, __u64 now)
{
	struct sy_maglev_tuple t = {};
	__u32 rev, m, pos, id;
	void *table;

	if (!p || !skey || !svc || !akey)
		return 0; /* global function: the verifier checks it alone, NULL included */
	rev = svc->rev_nat_id;
	table = bpf_map_lookup_elem(&SY_MAP_MAGLEV, &rev);
	if (!table)
		return 0;
	m = maglev_word(table, 0);
	if (m == 0 || m > SY_MAGLEV_TABLE_MAX)
		return 0;
	if (svc->affinity_timeout) {
		struct sy_affinity_value *av;

		akey->rev_nat_id = rev;
		av = bpf_map_lookup_elem(&SY_MAP_AFFINITY, akey);
		if (av && av->backend_id && av->slot >= 1 && av->slot <= m &&
		    sy_fresh(av->last_used_ns, now, (__u64)svc->affinity_timeout * SY_NSEC_PER_SEC) &&
		    maglev_word(table, av->slot) == av->backend_id) {
			av->last_used_ns = now;
			return (int)av->backend_id;
		}
	}
	t.client = p->saddr;
	t.frontend = skey->addr;
	t.sport = svc->affinity_timeout ? 0 : p->sport;
	t.dport = skey->port;
	t.proto = p->proto;
	pos = 1 + sy_maglev_hash(&t, sy_maglev_seed) % m;
	id = maglev_word(table, pos);
	if (id && svc->affinity_timeout) {
		struct sy_affinity_value nav = { .last_used_ns = now, .backend_id = id, .slot = (__u16)pos };

		bpf_map_update_elem(&SY_MAP_AFFINITY, akey, &nav, BPF_ANY);
	}
	return (int)id;
}
/* -- end Maglev -- */

/* The backend of a new flow of a service with count > 0, and its ID: a Maglev frontend's
 * table, else (and when its table fails it) a random slot, session affinity first either way. */
static __always_inline const struct sy_backend *
choose_backend(struct __sk_buff *skb, const struct pkt *p, struct sy_svc_key *skey,
	       const struct sy_svc_value *svc, struct sy_affinity_key *akey, __u64 now, __u32 *backend_id)
{
	if (svc->flags & SY_SVC_F_MAGLEV) {
		__u32 id = (__u32)maglev_choose(p, skey, svc, akey, now);
		const struct sy_backend *be = id ? bpf_map_lookup_elem(&SY_MAP_BACKENDS, &id) : NULL;

		if (be) {
			*backend_id = id;
			sy_count(SY_REASON_TC_MAGLEV, skb->len);
			return be;
		}
		sy_count(SY_REASON_TC_MAGLEV_FALLBACK, skb->len);
	}
	return sy_pick_backend(skey, svc, akey, now, backend_id);
}

/* new_flow's outcomes besides a verdict: apply the entry it wrote (or the winner's) to the
 * packet, or reject it. Applying and rejecting happen in the caller, so that their stack
 * frames are not on top of this one. */
#define NEW_APPLY (-2000)
#define NEW_APPLY_RACE (-2001)
#define NEW_REJECT (-2002)

/* Another CPU created this flow's forward entry between our lookup and our insert: follow
 * its choice (copied into fwd), and undo the reply entry we reserved unless it is the
 * winner's too. */
__noinline int ct_lost_race(struct __sk_buff *skb, const struct sy_ct_key *fk,
				   struct sy_ct_entry *fwd, int mine)
{
	struct sy_ct_entry *won;
	struct sy_ct_key wk, rk;

	if (!fk || !fwd)
		return -1; /* global function: the verifier checks it alone, NULL included */
	won = bpf_map_lookup_elem(&SY_MAP_CT, fk);

	if (!won || won->dir != SY_CT_FORWARD) {
		sy_count(SY_REASON_TC_CT_CREATE_FAILED, skb->len);
		return NEW_APPLY;
	}
	if (mine == 1) {
		ct_reply_key_of(&wk, fk, won);
		ct_reply_key_of(&rk, fk, fwd);
		if (!ct_key_eq(&wk, &rk))
			bpf_map_delete_elem(&SY_MAP_CT, &rk);
	}
	*fwd = *won;
	sy_count(SY_REASON_TC_CT_RACE, skb->len);
	return NEW_APPLY_RACE;
}

/* A full table refuses the new flow: counted, dropped (TCP retransmits its SYN, by when the
 * GC may have made room). undo_reply: the reply entry this flow reserved (ct_reserve_reply
 * left its key in the scratch map) goes, so no half pair is left. */
static __always_inline int ct_full(struct __sk_buff *skb, int undo_reply)
{
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&scratch, &zero);

	if (undo_reply && sc)
		bpf_map_delete_elem(&SY_MAP_CT, &sc->key);
	sy_count(SY_REASON_TC_CT_FULL, skb->len);
	return TC_ACT_SHOT;
}

__noinline int new_flow(struct __sk_buff *skb, const struct pkt *p,
			       const struct sy_ct_key *fk, __u32 role, struct sy_ct_entry *fwd)
{
	__u64 now = bpf_ktime_get_ns();
	struct sy_svc_key skey;
	struct sy_affinity_key akey = {};
	const struct sy_svc_value *svc;
	const struct sy_backend *be;
	union sy_addr snat_addr = {};
	__u32 backend_id = 0;
	int internal, snat, mine;
	long err;

	if (!p || !fk || !fwd)
		return -1; /* global function: the verifier checks it alone, NULL included */
	internal = role == ROLE_FROM_POD || in_cluster_source(&p->saddr);

	svc = sy_lookup_service(&skey, &p->daddr, p->dport, p->proto, internal);
	if (!svc) {
		ct_forget_stale_reply(p);
		return TC_ACT_OK; /* not a service: untouched */
	}
	if ((svc->flags & SY_SVC_F_SOURCE_RANGES) && !source_allowed(svc->rev_nat_id, &p->saddr)) {
		sy_count(SY_REASON_TC_SRC_RANGE_DENIED, skb->len);
		return TC_ACT_SHOT;
	}
	if (svc->count == 0) {
		if (svc->flags & SY_SVC_F_DROP_EMPTY) {
			/* kube-proxy drops here (a Local policy without local endpoints). */
			sy_count(SY_REASON_TC_DROP_NO_LOCAL, skb->len);
			return TC_ACT_SHOT;
		}
		return NEW_REJECT;
	}
	akey.client = p->saddr;
	be = choose_backend(skb, p, &skey, svc, &akey, now, &backend_id);
	if (!be || sy_addr_is_v4(&be->addr) == p->v6) {
		sy_count(SY_REASON_TC_BACKEND_GONE, skb->len);
		return TC_ACT_SHOT;
	}

	__builtin_memset(fwd, 0, sizeof(*fwd));
	fwd->last_seen_ns = now;
	fwd->nat_addr = be->addr;
	fwd->nat_port = be->port;
	fwd->backend_id = backend_id;
	fwd->rev_nat_id = svc->rev_nat_id;
	fwd->dir = SY_CT_FORWARD;
	if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		fwd->flags |= SY_CT_F_CLOSING;
	if (!internal)
		fwd->flags |= SY_CT_F_EXTERNAL;
	/* From the network to another node's backend: the reply must come back through this
	 * node, so the source becomes this node's address (kube-proxy's masquerade; to a
	 * local backend the client's address is kept). The new source is local: redirect. */
	snat = role == ROLE_FROM_NET && !(be->flags & SY_BACKEND_F_LOCAL);
	/* Hairpin: a pod reaching itself through a service would get a packet from its own
	 * address, which its stack drops. As kube-proxy masquerades it, the source becomes this
	 * node's address towards the pod. */
	if (sy_addr_eq(&be->addr, &p->saddr))
		snat = 1;
	/* DSR frontends (tc_dsr.bpf.h): an external client's flow to another node's backend
	 * keeps its address, the reply goes from there straight to the client. */
	else if (snat && !internal && dsr_choose(skb, p, svc, fwd))
		snat = 0;
	if (snat) {
		if (fib_source(skb, p, &fwd->nat_addr, &snat_addr) < 0) {
			sy_count(SY_REASON_TC_FIB_FAILED, skb->len);
			return TC_ACT_SHOT;
		}
		fwd->flags |= SY_CT_F_REDIRECT | SY_CT_F_REPLY_REDIRECT;
	} else if (bpf_map_lookup_elem(&SY_MAP_NODE_ADDRS, &p->daddr)) {
		/* The reply's new source will be this node's address (NodePort). */
		fwd->flags |= SY_CT_F_REPLY_REDIRECT;
	}
	/* A DSR flow's replies never pass here: no reply entry to reserve. */
	mine = (fwd->flags & SY_CT_F_DSR) ? 0 : ct_reserve_reply(p, fwd, fk, snat, &snat_addr);
	if (mine == -2) {
		sy_count(SY_REASON_TC_SNAT_NO_PORT, skb->len);
		return TC_ACT_SHOT;
	}
	if (mine == CT_FULL)
		return ct_full(skb, 0);
	if (mine < 0)
		sy_count(SY_REASON_TC_CT_CREATE_FAILED, skb->len);
	/* The forward entry decides: on two CPUs, the first packets of one flow may both get
	 * here; one creates it, the other follows the winner's choice. */
	test_race(fk);
	err = bpf_map_update_elem(&SY_MAP_CT, fk, fwd, BPF_NOEXIST);
	if (err == -E2BIG)
		return ct_full(skb, mine == 1);
	if (err != 0)
		return ct_lost_race(skb, fk, fwd, mine);
	return NEW_APPLY;
}

/* ---- upgrades: handing tracked flows to the programs this daemon replaced ----
 * A daemon that takes over from one with another conntrack layout or size starts on a new
 * map, filled by copying (bpf/migrate.h). Until the copy has caught up, a packet that this
 * conntrack misses may belong to a flow the old map tracks: such a packet is handed, with a
 * tail call, to the program it replaced (the slot of its role and link type), which still
 * finds its flow there. The first packet of a TCP connection (a SYN without ACK) is new for
 * certain and stays here. The daemon sets sy_handoff_active and fills sy_prev_progs while it
 * attaches, and clears both once the copy is complete; an empty slot falls through. */
__u32 sy_handoff_active; /* .bss, written by the daemon */

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8); /* role (ROLE_*) + 4 on an L3 device */
	__type(key, __u32);
	__type(value, __u32);
} sy_prev_progs SEC(".maps");

static __always_inline void handoff_to_previous(struct __sk_buff *skb, const struct pkt *p,
						 __u32 role, __u32 l3_off)
{
	if (!sy_handoff_active)
		return;
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		return;
	sy_count(SY_REASON_TC_UPGRADE_HANDOFF, skb->len);
	bpf_tail_call(skb, &sy_prev_progs, role + (l3_off ? 0 : 4));
	/* no previous program in this slot: this daemon's programs carry on */
}

/* ---- the stages together ---- */

static __noinline void count_fragment(struct __sk_buff *skb, const struct pkt *p)
{
	struct sy_svc_key skey;

	if (sy_lookup_service(&skey, &p->daddr, p->dport, p->proto, 1))
		sy_count(SY_REASON_TC_FRAGMENT, skb->len);
}

#include "bpf/tc_policy.bpf.h"

static __always_inline int handle(struct __sk_buff *skb, __u32 role, __u32 l3_off)
{
	struct sy_ct_key key;
	struct sy_ct_entry entry;
	struct sy_ct_entry *ct;
	struct pkt p = {};
	__u64 now;
	int v;

	/* The backend's node of a DSR flow (tc_dsr.bpf.h): an encapsulated request is
	 * decapsulated first, then parsed as the request it carries. */
	if (role == ROLE_FROM_NET) {
		if (dsr_decap(skb, l3_off) < 0) {
			sy_count(SY_REASON_TC_DSR_FAILED, skb->len);
			return TC_ACT_SHOT;
		}
	}
	if (parse(skb, l3_off, &p) != PARSE_L4)
		return TC_ACT_OK;
	if (p.proto == IPPROTO_ICMP || p.proto == IPPROTO_ICMPV6)
		return p.frag ? TC_ACT_OK : icmp_error(skb, &p);
	/* A request carrying DSR information (never plain: it has an option or an extension
	 * header) to a pod of this node. */
	if (role == ROLE_FROM_NET && !p.plain && p.frag != FRAG_LATER) {
		v = dsr_receive(skb, &p);
		if (v != DSR_NONE)
			return v;
	}
	if (p.frag) {
		/* Fragments are not translated yet: pass them untouched, and count the first one
		 * of a datagram to a frontend (later ones carry no port to match). */
		if (p.frag == FRAG_FIRST) {
			count_fragment(skb, &p);
			/* NetworkPolicy: the first fragment is judged like its flow. */
			if (role == ROLE_FROM_POD || role == ROLE_TO_POD) {
				ct_key(&key, &p.saddr, &p.daddr, p.sport, p.dport, p.proto);
				v = pol_fragment(skb, &p, &key, role);
				if (v != POL_UNTRACKED)
					return v;
				return pol_new_flow(skb, &p, &key, role == ROLE_TO_POD ? SY_POL_INGRESS
										: SY_POL_EGRESS);
			}
		}
		return TC_ACT_OK;
	}
	now = bpf_ktime_get_ns();
	ct_key(&key, &p.saddr, &p.daddr, p.sport, p.dport, p.proto);
	/* NetworkPolicy (tc_policy.bpf.h) is judged on pod-facing devices while it is on; its
	 * functions return TC_ACT_OK at once while it is off. No locals for it here: this
	 * frame is on every call chain's stack. */
	ct = bpf_map_lookup_elem(&SY_MAP_CT, &key);
	if (ct && (ct->flags & SY_CT_F_POLICY)) {
		v = pol_tracked(skb, &p, &key, ct, role);
		if (v != POL_UNTRACKED)
			return v;
		ct = NULL;
	}
	if (!ct)
		handoff_to_previous(skb, &p, role, l3_off);
	if (ct) {
		if (ct->dir == SY_CT_REPLY)
			return ct_reply(skb, &p, &key, ct, now); /* replies of an allowed flow pass */
		if (role == ROLE_FROM_POD || role == ROLE_FROM_NET) {
			/* POL_UNTRACKED: the flow is to be balanced again, its pair is gone. */
			v = role == ROLE_FROM_POD
				    ? pol_check_ct(skb, &p, &key, ct, POL_EGRESS_TRANSLATED)
				    : TC_ACT_OK;
			if (v == TC_ACT_SHOT)
				return TC_ACT_SHOT;
			if (v != POL_UNTRACKED) {
				v = ct_forward(skb, &p, &key, ct, now);
				if (v == CT_DSR)
					return dsr_forward(skb, &p, ct, SY_REASON_TC_DNAT_CT);
				if (v != CT_RESELECT)
					return v;
			}
		} else {
			/* A tracked flow's request towards a pod (its entry's destination is
			 * this packet's own). */
			if (role == ROLE_TO_POD)
				return pol_check_ct(skb, &p, &key, ct, POL_INGRESS);
			return TC_ACT_OK;
		}
	}
	if (role == ROLE_TO_POD)
		return pol_new_flow(skb, &p, &key, SY_POL_INGRESS);
	if (role != ROLE_FROM_POD && role != ROLE_FROM_NET)
		return TC_ACT_OK; /* egress: only replies are translated */
	v = new_flow(skb, &p, &key, role, &entry);
	if (role == ROLE_FROM_POD) {
		/* Egress policy of a pod's new flow: against the backend when translated. */
		if (v == TC_ACT_OK)
			return pol_new_flow(skb, &p, &key, SY_POL_EGRESS);
		if ((v == NEW_APPLY || v == NEW_APPLY_RACE) &&
		    pol_new_translated(skb, &p, &key, &entry, v == NEW_APPLY) != TC_ACT_OK)
			return TC_ACT_SHOT;
	}
	if ((v == NEW_APPLY || v == NEW_APPLY_RACE) && (entry.flags & SY_CT_F_DSR))
		return dsr_forward(skb, &p, &entry, v == NEW_APPLY ? SY_REASON_TC_DNAT_NEW : SY_REASON_TC_DNAT_CT);
	if (v == NEW_APPLY)
		return ct_apply_forward(skb, &p, &entry, SY_REASON_TC_DNAT_NEW);
	if (v == NEW_APPLY_RACE)
		return ct_apply_forward(skb, &p, &entry, SY_REASON_TC_DNAT_CT);
	if (v == NEW_REJECT)
		return reject(skb, &p);
	return v;
}

SEC("tc")
int sy_tc_from_pod(struct __sk_buff *skb)
{
	return handle(skb, ROLE_FROM_POD, ETH_HLEN);
}

SEC("tc")
int sy_tc_to_pod(struct __sk_buff *skb)
{
	return handle(skb, ROLE_TO_POD, ETH_HLEN);
}

SEC("tc")
int sy_tc_from_net(struct __sk_buff *skb)
{
	return handle(skb, ROLE_FROM_NET, ETH_HLEN);
}

SEC("tc")
int sy_tc_to_net(struct __sk_buff *skb)
{
	return handle(skb, ROLE_TO_NET, ETH_HLEN);
}

/* Devices without a link-layer header (tun, wireguard, ipip): the same with L3 at 0. */
SEC("tc")
int sy_tc_from_pod3(struct __sk_buff *skb)
{
	return handle(skb, ROLE_FROM_POD, 0);
}

SEC("tc")
int sy_tc_to_pod3(struct __sk_buff *skb)
{
	return handle(skb, ROLE_TO_POD, 0);
}

SEC("tc")
int sy_tc_from_net3(struct __sk_buff *skb)
{
	return handle(skb, ROLE_FROM_NET, 0);
}

SEC("tc")
int sy_tc_to_net3(struct __sk_buff *skb)
{
	return handle(skb, ROLE_TO_NET, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
