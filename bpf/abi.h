/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The map contract: every key and value shared by the BPF programs and the C++ control
 * plane, defined once. Types and constants only; map definitions live in maps.bpf.h.
 *
 * Rules (see docs/architecture.md, "The maps are the contract"):
 *  - fixed-width fields, padding written out, no bitfields;
 *  - addresses are 16 bytes for both families, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d),
 *    so one map and one code path serve both families;
 *  - a layout change bumps SY_ABI_VERSION and the _vN suffix of the map's name, so a new
 *    daemon never reads an old layout as new (libbpf refuses to reuse an incompatible pin);
 *  - bpf/abi_check.cpp static_asserts sizeof and offsetof of every struct below.
 */
#pragma once

#include <linux/types.h>

#define SY_ABI_VERSION 1

/* Map names double as pin names under the pin path (libbpf LIBBPF_PIN_BY_NAME). BPF object
 * names are at most 15 characters. */
#define SY_MAP_SERVICES services_v1
#define SY_MAP_BACKENDS backends_v1
#define SY_MAP_REVNAT revnat_v1
#define SY_MAP_CT ct_v1
#define SY_MAP_SOCK_REVNAT sock_rnat_v1
#define SY_MAP_COUNTERS counters_v1
#define SY_MAP_META meta_v1
#define SY_MAP_TC_ATTACH tc_attach_v1

#define SY_STRINGIFY_(x) #x
#define SY_STRINGIFY(x) SY_STRINGIFY_(x)

/* Map sizes, overridable at build time (-DSY_SERVICES_MAX=...) and at run time through the
 * bpf.mapSizes block of the configuration (set before load). */
#ifndef SY_SERVICES_MAX
#define SY_SERVICES_MAX 262144 /* service entries: frontends x (1 + backends) */
#endif
#ifndef SY_BACKENDS_MAX
#define SY_BACKENDS_MAX 131072
#endif
#ifndef SY_REVNAT_MAX
#define SY_REVNAT_MAX 262144
#endif
#ifndef SY_CT_MAX
#define SY_CT_MAX 262144
#endif
#ifndef SY_SOCK_REVNAT_MAX
#define SY_SOCK_REVNAT_MAX 131072
#endif
#define SY_TC_ATTACH_MAX 1024

/* Largest backend count of one frontend: bounds the slot loop in the control plane. */
#define SY_MAX_BACKENDS_PER_SERVICE 65535

/* One address of either family. IPv4 lives in w[3] with w[2] = htonl(0x0000ffff). */
union sy_addr {
	__u8 b[16];
	__be32 w[4]; /* network order */
};

/* services: (frontend, slot) -> slot value.
 * Slot 0 is the service itself: backend count, flags, reverse NAT ID. Slots 1..count hold
 * backend IDs. Writers fill the slots first and switch slot 0's count last, and shrink by
 * lowering the count before deleting slots, so no packet sees a half-made service. */
struct sy_svc_key {
	union sy_addr addr; /* frontend address (ClusterIP), network order */
	__be16 port;        /* frontend port, network order */
	__u8 proto;         /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 scope;         /* SY_SCOPE_*; 0 = the only scope until traffic policies land */
	__u16 slot;         /* host order; 0 = the service entry, 1..count = backend slots */
	__u8 pad[2];        /* zero */
};

#define SY_SCOPE_EXTERNAL 0
#define SY_SCOPE_INTERNAL 1

/* Slot 0 flags. */
#define SY_SVC_F_CLUSTER_IP (1u << 0) /* a ClusterIP frontend */

struct sy_svc_value {
	__u32 backend_id; /* slots 1..n: backend ID (never 0); slot 0: 0 */
	__u32 rev_nat_id; /* slot 0: reverse NAT ID of this frontend (never 0) */
	__u16 count;      /* slot 0: number of backend slots, 0 = no backends (reject) */
	__u16 flags;      /* slot 0: SY_SVC_F_* */
	__u8 pad[4];      /* zero */
};

/* backends: backend ID (__u32, never 0) -> backend. */
#define SY_BACKEND_ACTIVE 0
#define SY_BACKEND_TERMINATING 1

struct sy_backend {
	union sy_addr addr; /* backend (pod) address, network order */
	__be16 port;        /* backend port, network order */
	__u8 proto;         /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 state;         /* SY_BACKEND_* */
	__u8 pad[4];        /* zero */
};

/* revnat: reverse NAT ID (__u32 key, value of sy_svc_value.rev_nat_id) -> frontend. */
struct sy_revnat {
	union sy_addr addr; /* frontend address, network order */
	__be16 port;        /* frontend port, network order */
	__u8 pad[2];        /* zero */
};

/* ct: the conntrack table of the tc path (LRU). A DNATed flow has two entries: the
 * forward one keyed by the client's original tuple (client -> frontend) holding the
 * backend, and the reply one keyed by the backend's tuple (backend -> client) holding the
 * reverse NAT ID. */
#define SY_CT_FORWARD 0
#define SY_CT_REPLY 1

struct sy_ct_key {
	union sy_addr saddr; /* network order */
	union sy_addr daddr; /* network order */
	__be16 sport;        /* network order */
	__be16 dport;        /* network order */
	__u8 proto;          /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 dir;            /* SY_CT_FORWARD or SY_CT_REPLY */
	__u8 pad[2];         /* zero */
};

/* ct entry flags */
#define SY_CT_F_CLOSING (1u << 0) /* FIN or RST seen: short lifetime */

struct sy_ct_entry {
	__u64 last_seen_ns; /* bpf_ktime_get_ns() of the last packet, CLOCK_MONOTONIC */
	__u32 backend_id;   /* forward: chosen backend; reply: the same backend */
	__u32 rev_nat_id;   /* frontend to restore on replies */
	__u8 flags;         /* SY_CT_F_* */
	__u8 pad[7];        /* zero */
};

/* Conntrack lifetimes in seconds (Cilium's service defaults). */
#define SY_CT_LIFETIME_TCP 21600
#define SY_CT_LIFETIME_TCP_CLOSING 10
#define SY_CT_LIFETIME_NONTCP 60

/* sock_rnat: what the socket hooks translated, so recvmsg and getpeername can show the
 * frontend again: (socket cookie, backend address, backend port) -> frontend. LRU. */
struct sy_sock_revnat_key {
	__u64 cookie;       /* bpf_get_socket_cookie() */
	union sy_addr addr; /* backend address, network order */
	__be16 port;        /* backend port, network order */
	__u8 pad[6];        /* zero */
};

struct sy_sock_revnat_value {
	union sy_addr addr; /* frontend address, network order */
	__be16 port;        /* frontend port, network order */
	__u8 pad[2];        /* zero */
	__u32 rev_nat_id;   /* host order */
};

/* counters: per-CPU array indexed by reason. The reasons name the Prometheus label values
 * (metrics/datapath_counters.cpp keeps the table of names, checked against SY_REASON_MAX). */
enum sy_reason {
	SY_REASON_SOCK_XLATE = 0,       /* socket hook sent a connect/send to a backend */
	SY_REASON_SOCK_NO_BACKEND = 1,  /* socket hook refused: service without backends */
	SY_REASON_SOCK_REVNAT = 2,      /* recvmsg/getpeername restored the frontend */
	SY_REASON_TC_DNAT_NEW = 3,      /* tc: new flow DNATed to a backend */
	SY_REASON_TC_DNAT_CT = 4,       /* tc: packet of a tracked flow DNATed */
	SY_REASON_TC_REVNAT = 5,        /* tc: reply translated back to the frontend */
	SY_REASON_TC_NO_BACKEND = 6,    /* tc: dropped, service without backends */
	SY_REASON_TC_BACKEND_GONE = 7,  /* tc: dropped, slot points to a missing backend */
	SY_REASON_TC_CSUM_ERROR = 8,    /* tc: dropped, a checksum or store helper failed */
	SY_REASON_TC_FRAGMENT = 9,      /* tc: passed untouched, IP fragment to a frontend */
	SY_REASON_MAX = 10,
};

struct sy_counter {
	__u64 packets; /* packets (or socket operations) counted */
	__u64 bytes;   /* bytes of those packets; 0 for socket operations */
};

/* meta: a one-entry array describing the pinned layout. */
struct sy_meta {
	__u32 abi_version; /* SY_ABI_VERSION of the daemon that created the maps */
	__u32 pad;         /* zero */
};

/* tc_attach: which tc hooks this daemon made, so `switchyard cleanup` can find them
 * without a config. Key: ifindex and direction, in the daemon's network namespace. */
#define SY_TC_INGRESS 0
#define SY_TC_EGRESS 1

struct sy_tc_attach_key {
	__u32 ifindex;   /* host order */
	__u32 direction; /* SY_TC_INGRESS or SY_TC_EGRESS */
};

struct sy_tc_attach_value {
	__u32 handle;         /* tc filter handle */
	__u32 priority;       /* tc filter priority */
	__u8 created_qdisc;   /* 1: switchyard created the clsact qdisc and may remove it */
	__u8 pad[7];          /* zero */
	char ifname[16];      /* device name when attached, NUL-terminated */
};
