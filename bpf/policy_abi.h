/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy block of the map contract (included by abi.h; same rules). policy/ computes
 * the entries (policy/compiler.h: identities, ipcache, endpoints, rules), bpf/policy_maps.cpp
 * writes them, bpf/policy.bpf.h reads them (docs/policy.md).
 */
#pragma once

#include <linux/types.h>

#define SY_MAP_POL_IPCACHE pol_ipcache_v1
#define SY_MAP_POL_ENDPOINTS pol_ep_v1
#define SY_MAP_POL_RULES pol_rules_v1
#define SY_MAP_POL_STATE pol_state_v1
#define SY_MAP_POL_EVENTS pol_events_v1

#ifndef SY_POL_IPCACHE_MAX
#define SY_POL_IPCACHE_MAX 131072 /* pod addresses of the cluster + ipBlock prefixes */
#endif
#ifndef SY_POL_ENDPOINTS_MAX
#define SY_POL_ENDPOINTS_MAX 4096 /* addresses of this node's pods */
#endif
#ifndef SY_POL_RULES_MAX
#define SY_POL_RULES_MAX 262144
#endif

#define SY_POL_INGRESS 0
#define SY_POL_EGRESS 1

#define SY_POL_IDENTITY_ANY 0   /* in rule keys: every peer */
#define SY_POL_IDENTITY_WORLD 1 /* the pod identity of an address no pod holds */

/* ipcache: LPM trie, address prefix -> who the address is. IPv4 as IPv4-mapped, so an IPv4
 * /24 has prefixlen 120. */
struct sy_pol_ipcache_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct sy_pol_peer {
	__u32 pod_identity;  /* SY_POL_IDENTITY_WORLD for a prefix that is no pod */
	__u32 cidr_identity; /* the identity of the longest ipBlock prefix holding the address */
};

/* endpoints: hash, local pod address (16 bytes) -> its endpoint. */
#define SY_POL_EP_INGRESS_ISOLATED (1u << 0) /* some policy selects it for Ingress */
#define SY_POL_EP_EGRESS_ISOLATED (1u << 1)  /* some policy selects it for Egress */
/* Some rule allows something in that direction: a denial is then "by policy" (no rule
 * matched), without it "by default" (only default-deny policies select the pod). Counts
 * only; the verdict does not depend on them. */
#define SY_POL_EP_INGRESS_RULES (1u << 2)
#define SY_POL_EP_EGRESS_RULES (1u << 3)

struct sy_pol_endpoint {
	__u32 endpoint; /* number the rules are keyed by */
	__u32 identity; /* the pod's own identity */
	__u32 flags;    /* SY_POL_EP_* */
	__u32 pad;      /* zero */
};

/* rules: LPM trie over (endpoint, peer identity, direction, protocol, port), all network
 * order, so a rule for every protocol stops after the direction (SY_POL_RULE_BITS_PEER), one
 * for every port of a protocol after the protocol, and a port range is a set of port
 * prefixes. A lookup uses the full length (SY_POL_RULE_BITS_ALL); any hit allows. */
#define SY_POL_RULE_BITS_PEER 72
#define SY_POL_RULE_BITS_PROTO 80
#define SY_POL_RULE_BITS_ALL 96

struct sy_pol_rule_key {
	__u32 prefixlen;
	__be32 endpoint;
	__be32 identity;
	__u8 dir;   /* SY_POL_INGRESS or SY_POL_EGRESS */
	__u8 proto; /* IPPROTO_*; 0 with prefixlen SY_POL_RULE_BITS_PEER */
	__be16 port;
};

struct sy_pol_rule_value {
	__u32 flags; /* zero; reserved (deny rules, logging) */
};

/* state: array of one, written by the daemon. Without SY_POL_STATE_ENABLED (policy.enabled
 * false, the default) the tc programs judge nothing and track no flow for policy alone. `revision`
 * grows with every write of the policy maps; a conntrack entry's cached verdict
 * (sy_ct_entry.pol) holds the revision it was taken at, and one taken at another revision
 * is taken again, so a policy change reaches established flows without touching conntrack.
 * Only its low SY_POL_REV_BITS are compared: the daemon skips revisions whose low bits are
 * zero (the value of an entry that was never judged). */
#define SY_POL_STATE_ENABLED (1u << 0)
#define SY_POL_STATE_LOG_DENIED (1u << 1) /* denied flows go to pol_events_v1 */
struct sy_pol_state {
	__u32 revision;
	__u32 flags; /* SY_POL_STATE_* */
};

#define SY_POL_REV_BITS 14
#define SY_POL_REV_MASK ((1u << SY_POL_REV_BITS) - 1)
/* sy_ct_entry.pol: bits 0-1 the directions judged and allowed at revision pol >> 2. */
#define SY_CT_POL_EGRESS_OK (1u << 0)
#define SY_CT_POL_INGRESS_OK (1u << 1)
#define SY_CT_POL_REV_SHIFT 2

/* events: ring buffer of denied flows, written while SY_POL_STATE_LOG_DENIED is set, at most
 * SY_POL_LOG_PER_SEC per CPU per second (the rest counted as SY_REASON_POL_LOG_LOST). The
 * daemon logs them with pod names. */
#define SY_POL_EVENTS_BYTES (256 * 1024)
#define SY_POL_LOG_PER_SEC 64
struct sy_pol_event {
	__u8 local[16]; /* the judged pod's address (IPv4-mapped) */
	__u8 peer[16];  /* the other side: the backend for a translated egress flow */
	__u32 ifindex;  /* the pod-facing device */
	__u16 port;     /* the destination port judged, host order */
	__u8 proto;
	__u8 dir;       /* SY_POL_INGRESS or SY_POL_EGRESS */
	__u32 reason;   /* SY_REASON_POL_DENIED or SY_REASON_POL_DENIED_DEFAULT */
	__u32 pad;      /* zero */
};
