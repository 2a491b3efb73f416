/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy stage's lookups (docs/policy.md "Lookups"): is a flow that starts at `local`
 * (a pod of this node) towards or from `peer` allowed in direction `dir`? Maps and one
 * function, for the tc programs (and the policy probe of tests/policy); the verdict is
 * meant to be taken once per flow and kept in its conntrack entry.
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/policy_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sy_pol_ipcache_key);
	__type(value, struct sy_pol_peer);
	__uint(max_entries, SY_POL_IPCACHE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
#ifndef SY_POL_UNPINNED
	__uint(pinning, LIBBPF_PIN_BY_NAME);
#endif
} SY_MAP_POL_IPCACHE SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u8[16]);
	__type(value, struct sy_pol_endpoint);
	__uint(max_entries, SY_POL_ENDPOINTS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
#ifndef SY_POL_UNPINNED
	__uint(pinning, LIBBPF_PIN_BY_NAME);
#endif
} SY_MAP_POL_ENDPOINTS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sy_pol_rule_key);
	__type(value, struct sy_pol_rule_value);
	__uint(max_entries, SY_POL_RULES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
#ifndef SY_POL_UNPINNED
	__uint(pinning, LIBBPF_PIN_BY_NAME);
#endif
} SY_MAP_POL_RULES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sy_pol_state);
	__uint(max_entries, 1);
#ifndef SY_POL_UNPINNED
	__uint(pinning, LIBBPF_PIN_BY_NAME);
#endif
} SY_MAP_POL_STATE SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SY_POL_EVENTS_BYTES);
#ifndef SY_POL_UNPINNED
	__uint(pinning, LIBBPF_PIN_BY_NAME);
#endif
} SY_MAP_POL_EVENTS SEC(".maps");

enum sy_pol_verdict {
	SY_POL_NOT_ENDPOINT = 0, /* local is no pod of this node: not ours to judge */
	SY_POL_OPEN = 1,         /* no policy isolates it in this direction */
	SY_POL_ALLOWED = 2,      /* a rule allows the peer, protocol and port */
	SY_POL_DENIED = 3,       /* isolated and no rule allows it */
};

static __always_inline int sy_pol_rule_hit(__u32 endpoint, __u32 identity, __u8 dir, __u8 proto,
					   __u16 port)
{
	struct sy_pol_rule_key k = {
		.prefixlen = SY_POL_RULE_BITS_ALL,
		.endpoint = bpf_htonl(endpoint),
		.identity = bpf_htonl(identity),
		.dir = dir,
		.proto = proto,
		.port = bpf_htons(port),
	};
	return bpf_map_lookup_elem(&SY_MAP_POL_RULES, &k) != NULL;
}

/* `local` and `peer` are 16-byte addresses (IPv4-mapped for IPv4); `port` is the
 * destination port of the flow in host order (0 for protocols without ports). */
static __always_inline int sy_policy_verdict(const __u8 *local, const __u8 *peer, __u8 dir,
					     __u8 proto, __u16 port)
{
	struct sy_pol_endpoint *ep = bpf_map_lookup_elem(&SY_MAP_POL_ENDPOINTS, local);
	if (!ep)
		return SY_POL_NOT_ENDPOINT;
	__u32 isolated = dir == SY_POL_INGRESS ? SY_POL_EP_INGRESS_ISOLATED : SY_POL_EP_EGRESS_ISOLATED;
	if (!(ep->flags & isolated))
		return SY_POL_OPEN;
	struct sy_pol_ipcache_key ik = { .prefixlen = 128 };
	__builtin_memcpy(ik.addr, peer, 16);
	struct sy_pol_peer *p = bpf_map_lookup_elem(&SY_MAP_POL_IPCACHE, &ik);
	__u32 pod = p ? p->pod_identity : SY_POL_IDENTITY_WORLD;
	__u32 cidr = p ? p->cidr_identity : 0;
	__u32 endpoint = ep->endpoint;
	if (sy_pol_rule_hit(endpoint, pod, dir, proto, port) ||
	    (cidr && sy_pol_rule_hit(endpoint, cidr, dir, proto, port)) ||
	    sy_pol_rule_hit(endpoint, SY_POL_IDENTITY_ANY, dir, proto, port))
		return SY_POL_ALLOWED;
	return SY_POL_DENIED;
}
