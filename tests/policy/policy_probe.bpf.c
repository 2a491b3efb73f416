/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The policy stage alone (bpf/policy.bpf.h) behind two tc programs that tests/policy runs
 * with BPF_PROG_RUN on crafted Ethernet + IPv4/IPv6 + TCP/UDP packets: probe_egress judges
 * the packet at its source pod, probe_ingress at its destination pod; each returns the
 * sy_pol_verdict. Maps unpinned: each loaded object is one node. */
#define SY_POL_UNPINNED 1
#include "bpf/policy.bpf.h"

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

struct flow {
	__u8 src[16], dst[16];
	__u8 proto;
	__u16 dport;
};

static __always_inline int parse(struct __sk_buff *skb, struct flow *f)
{
	__u16 eth_proto;
	if (bpf_skb_load_bytes(skb, 12, &eth_proto, 2))
		return -1;
	__u32 l4;
	__builtin_memset(f, 0, sizeof(*f));
	if (eth_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
			return -1;
		f->src[10] = f->src[11] = f->dst[10] = f->dst[11] = 0xff;
		__builtin_memcpy(&f->src[12], &ip.saddr, 4);
		__builtin_memcpy(&f->dst[12], &ip.daddr, 4);
		f->proto = ip.protocol;
		l4 = ETH_HLEN + ip.ihl * 4;
	} else if (eth_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)))
			return -1;
		__builtin_memcpy(f->src, &ip6.saddr, 16);
		__builtin_memcpy(f->dst, &ip6.daddr, 16);
		f->proto = ip6.nexthdr;
		l4 = ETH_HLEN + sizeof(ip6);
	} else {
		return -1;
	}
	if (f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP) {
		__be16 ports[2];
		if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)))
			return -1;
		f->dport = bpf_ntohs(ports[1]);
	}
	return 0;
}

SEC("tc")
int probe_egress(struct __sk_buff *skb)
{
	struct flow f;
	if (parse(skb, &f))
		return -1;
	return sy_policy_verdict(f.src, f.dst, SY_POL_EGRESS, f.proto, f.dport);
}

SEC("tc")
int probe_ingress(struct __sk_buff *skb)
{
	struct flow f;
	if (parse(skb, &f))
		return -1;
	return sy_policy_verdict(f.dst, f.src, SY_POL_INGRESS, f.proto, f.dport);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
