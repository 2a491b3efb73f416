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
 *    daemon never reads an old layout as new (libbpf refuses to reuse an incompatible pin),
 *    and registers how an entry of the old layout becomes one of the new (bpf/migrate.cpp,
 *    kPredecessors): a new daemon takes the old maps over under traffic, never by a flush;
 *  - bpf/abi_check.cpp static_asserts sizeof and offsetof of every struct below.
 */
#pragma once

#include <linux/types.h>

#define SY_ABI_VERSION 3 /* 3: ct_v3, a plain hash (was ct_v2, LRU) */
/* The oldest layout this daemon takes over (bpf/migrate.cpp); older pins need a cleanup. */
#define SY_ABI_MIGRATE_FROM 2

/* Map names double as pin names under the pin path (libbpf LIBBPF_PIN_BY_NAME). BPF object
 * names are at most 15 characters. */
#define SY_MAP_SERVICES services_v2
#define SY_MAP_BACKENDS backends_v2
#define SY_MAP_REVNAT revnat_v1
#define SY_MAP_CT_RELEASED ct_v3
#define SY_MAP_SOCK_REVNAT sock_rnat_v1
#define SY_MAP_AFFINITY affinity_v1
#define SY_MAP_SRC_RANGES srcrange_v1
#define SY_MAP_NODE_ADDRS nodeaddr_v1
#define SY_MAP_LOCAL_NETS localnet_v1
#define SY_MAP_COUNTERS counters_v2
#define SY_MAP_META meta_v1
#define SY_MAP_TC_ATTACH tc_attach_v1
#define SY_MAP_SOCK_SKIP sockskip_v1

/* Test builds only (tests/upgrade: SY_TEST_NEXT_LAYOUT): a stand-in for the next release's
 * layout, so the upgrade path is exercised with a real layout change: the conntrack entry
 * grows a field (sy_ct_entry.next_test), its map is renamed, and the daemon migrates the
 * released map into it. */
#ifdef SY_TEST_NEXT_LAYOUT
#undef SY_ABI_VERSION
#define SY_ABI_VERSION 1000
#define SY_MAP_CT ct_vnext
#else
#define SY_MAP_CT SY_MAP_CT_RELEASED
#endif
/* -- Maglev (issue 11 item 3) -- */
#define SY_MAP_MAGLEV maglev_v1
/* -- end Maglev -- */
/* -- XDP fast path (issue 11 item 4) -- */
#define SY_MAP_XDP_DENY xdpdeny_v1
/* -- end XDP -- */

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
#ifndef SY_AFFINITY_MAX
#define SY_AFFINITY_MAX 65536
#endif
#ifndef SY_SRC_RANGES_MAX
#define SY_SRC_RANGES_MAX 16384
#endif
/* -- Maglev (issue 11 item 3): Maglev frontends (one table each) -- */
#ifndef SY_MAGLEV_MAX
#define SY_MAGLEV_MAX 16384
#endif
/* -- end Maglev -- */
#define SY_NODE_ADDRS_MAX 1024
#define SY_LOCAL_NETS_MAX 64
#define SY_TC_ATTACH_MAX 1024
#define SY_SOCK_SKIP_MAX 1024
#define SY_TERM_STALE_MAX 4096

/* Largest backend count of one frontend: bounds the slot loop in the control plane. */
#define SY_MAX_BACKENDS_PER_SERVICE 65535

/* One address of either family. IPv4 lives in w[3] with w[2] = htonl(0x0000ffff). The
 * wildcard of a family (NodePort frontends, reached on every node address) is ::ffff:0.0.0.0
 * for IPv4 and :: for IPv6. */
union sy_addr {
	__u8 b[16];
	__be32 w[4]; /* network order */
};

/* services: (frontend, scope, slot) -> slot value.
 * Slot 0 is the service itself: backend count, flags, kind, reverse NAT ID. Slots 1..count
 * hold backend IDs. Writers fill the slots first and switch slot 0's count last, and shrink
 * by lowering the count before deleting slots, so no packet sees a half-made service.
 *
 * Scope: every frontend has an external-scope entry (scope 0), the one every lookup finds
 * first. A frontend whose traffic policies make in-cluster clients see other backends than
 * external ones (externalTrafficPolicy or internalTrafficPolicy Local) also has an
 * internal-scope entry, flagged SY_SVC_F_TWO_SCOPES on its external one: in-cluster traffic
 * (the socket hooks, pods on tc devices, sources in the cluster's networks) looks it up. */
struct sy_svc_key {
	union sy_addr addr; /* frontend address, network order; a family wildcard for NodePort */
	__be16 port;        /* frontend port, network order */
	__u8 proto;         /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	__u8 scope;         /* SY_SCOPE_* */
	__u16 slot;         /* host order; 0 = the service entry, 1..count = backend slots */
	__u8 pad[2];        /* zero */
};

#define SY_SCOPE_EXTERNAL 0
#define SY_SCOPE_INTERNAL 1

/* Frontend kinds (slot 0 `kind`): how a client reaches the service. */
#define SY_SVC_KIND_CLUSTER_IP 1
#define SY_SVC_KIND_NODE_PORT 2    /* key address is the family wildcard */
#define SY_SVC_KIND_EXTERNAL_IP 3
#define SY_SVC_KIND_LOAD_BALANCER 4

/* Slot 0 flags. */
#define SY_SVC_F_TWO_SCOPES (1u << 0)    /* an internal-scope entry exists (external scope only) */
#define SY_SVC_F_DROP_EMPTY (1u << 1)    /* count 0: drop (a Local policy without local
                                          * endpoints), not reject */
#define SY_SVC_F_SOURCE_RANGES (1u << 2) /* check srcrange (loadBalancerSourceRanges) */
/* Forwarding mode of external traffic (loadBalancer.mode, issue 11): flag bits from the top,
 * so that other stages' flags (from the bottom) merge. No bit set: snat. */
#define SY_SVC_F_DSR (1u << 15)         /* external clients to a backend on another node: direct
                                         * server return, not SNAT */
#define SY_SVC_F_DSR_IPIP (1u << 14)    /* with SY_SVC_F_DSR: dispatch by IPIP/IP6IP6
                                         * encapsulation, else by the DSR IP option */
#define SY_SVC_F_MODE_HYBRID (1u << 13) /* the service's mode is hybrid (status only: the
                                         * datapath follows SY_SVC_F_DSR) */
/* -- Maglev (issue 11 item 3): flags count up from here; DSR's count down from 1u << 15 -- */
#define SY_SVC_F_MAGLEV (1u << 3)        /* new flows of the tc programs: the frontend's table
                                          * in maglev (by rev_nat_id), not a random slot */
/* -- end Maglev -- */

struct sy_svc_value {
	__u32 backend_id;       /* slots 1..n: backend ID (never 0); slot 0: 0 */
	__u32 rev_nat_id;       /* slot 0: ID of this frontend (never 0): revnat, affinity and
	                         * srcrange keys */
	__u32 affinity_timeout; /* slot 0: sessionAffinity ClientIP timeout in seconds; 0 = none */
	__u16 count;            /* slot 0: number of backend slots; 0 = no backends */
	__u16 flags;            /* slot 0: SY_SVC_F_* */
	__u8 kind;              /* slot 0: SY_SVC_KIND_* */
	__u8 pad[7];            /* zero */
};

/* -- Maglev (issue 11 item 3) --
 * maglev: rev NAT ID (__u32) of a frontend flagged SY_SVC_F_MAGLEV -> its lookup table, an
 * inner BPF_MAP_TYPE_ARRAY (map-in-map, flag BPF_F_INNER_MAP so tables of different sizes
 * fit one outer map). A table is a stream of __u32 words packed two to a cell (an array
 * element is 8 bytes whatever its value size, so 4 bytes per word): word 0 is the table size
 * M (a prime), words 1..M are backend IDs, the Maglev permutation's entries. A table
 * carries its own M, so tables built for another M (a changed configuration, adopted from
 * pins) stay consistent until they are replaced. The writer builds a new table completely,
 * then swaps the outer entry in one update; the old table is freed with its last reference.
 *
 * A new flow's entry is 1 + sy_maglev_hash(tuple, seed) % M (bpf/jhash.h) over the tuple
 * below: the client, the frontend as keyed in services (the family wildcard for NodePort,
 * so every node's NodePort agrees), and the ports; the client port is 0 for a frontend
 * with session affinity (the client, not the connection, picks the entry). */
#define SY_MAGLEV_TABLE_DEFAULT 16381 /* M: the table size, a prime (Cilium's default) */
#define SY_MAGLEV_TABLE_MAX 65521     /* the largest prime below 2^16: an affinity entry
                                       * records the table position in its __u16 slot */
#define SY_MAGLEV_SEED_DEFAULT 0x53594d47u /* "SYMG": the same on every node by default */

struct sy_maglev_cell {
	__u32 word[2]; /* host order: words 2k and 2k+1 of the table (cell k) */
};

/* Cells of a table of size m: words 0..m, two to a cell. */
#define SY_MAGLEV_CELLS(m) (((m) + 2) / 2)

struct sy_maglev_tuple {
	union sy_addr client;   /* the packet's source, network order */
	union sy_addr frontend; /* the services key address, network order */
	__be16 sport;           /* the client's port, network order; 0 with session affinity */
	__be16 dport;           /* the frontend port, network order */
	__u8 proto;             /* IPPROTO_* */
	__u8 pad[3];            /* zero */
};
/* -- end Maglev -- */

/* backends: backend ID (__u32, never 0) -> backend. */
#define SY_BACKEND_ACTIVE 0
#define SY_BACKEND_TERMINATING 1

#define SY_BACKEND_F_LOCAL (1u << 0) /* the endpoint runs on this node (its nodeName) */

struct sy_backend {
	union sy_addr addr; /* backend (pod) address, network order */
	__be16 port;        /* backend port, network order */
	__u8 proto;         /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	__u8 state;         /* SY_BACKEND_* */
	__u8 flags;         /* SY_BACKEND_F_* */
	__u8 pad[3];        /* zero */
};

/* revnat: reverse NAT ID (__u32 key, value of sy_svc_value.rev_nat_id) -> frontend. The tc
 * programs keep the frontend in their conntrack entries and the socket hooks in sock_rnat;
 * this map names what an ID stands for (status, conntrack dumps, adoption). */
struct sy_revnat {
	union sy_addr addr; /* frontend address, network order */
	__be16 port;        /* frontend port, network order */
	__u8 pad[2];        /* zero */
};

/* ct: the conntrack table of the tc programs, keyed by a packet's tuple as it is on
 * the wire. A translated flow has two entries that live and die together:
 *  - forward, keyed by the client's tuple (client -> frontend): where to send it (the
 *    backend, and the source to use when the flow is SNATed);
 *  - reply, keyed by the backend's tuple (backend -> client, or -> the SNAT address): what
 *    to restore (the frontend as source, and the client as destination when SNATed).
 * Both directions stamp both entries (at most once per SY_CT_REFRESH_NS), and a forward
 * packet that finds the reply entry gone (deleted alone) writes it again.
 * A plain hash since ct_v3 (ct_v2 was LRU, which evicts live flows when full): a full
 * table refuses new flows (SY_REASON_TC_CT_FULL) and the daemon's GC (bpf/ct_gc.h) removes
 * expired ones. */
#define SY_CT_FORWARD 0
#define SY_CT_REPLY 1

struct sy_ct_key {
	union sy_addr saddr; /* network order */
	union sy_addr daddr; /* network order */
	__be16 sport;        /* network order */
	__be16 dport;        /* network order */
	__u8 proto;          /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	__u8 pad[3];         /* zero */
};

/* ct entry flags */
#define SY_CT_F_CLOSING (1u << 0)  /* FIN or RST seen: short lifetime */
#define SY_CT_F_SNAT (1u << 1)     /* the flow is SNATed (nat2 holds the other side) */
#define SY_CT_F_REDIRECT (1u << 2) /* the translated packet's source is this node's: route it
                                    * with a FIB lookup and redirect, not through the stack
                                    * (which drops packets arriving with a local source) */
#define SY_CT_F_EXTERNAL (1u << 3) /* the flow came from outside the cluster */
#define SY_CT_F_REPLY_REDIRECT (1u << 4) /* forward entries: the reply entry redirects */
/* DSR (issue 11). A frontend node's forward entry with SY_CT_F_DSR sends the flow to a backend
 * on another node by direct server return: no reply entry here, the replies never come back.
 * A backend node's reply entry with SY_CT_F_DSR was written from the DSR information of a
 * request (SY_DSR_OPT*): it restores the frontend as the source of the pod's replies; with
 * SY_CT_F_DSR_IPIP its request came encapsulated and nat2_port holds the MSS (host order)
 * that the SYN-ACK is clamped to, so that the client's segments fit the tunnel. */
#define SY_CT_F_DSR (1u << 5)
#define SY_CT_F_DSR_IPIP (1u << 6)
/* NetworkPolicy (issue 12): an entry made only to remember a flow's policy verdict and to
 * let its replies through (a flow no service translates, e.g. pod to pod). It translates
 * nothing: nat_addr/nat_port are the forward's own destination, so the pair keys derive as
 * for any flow. Only while policy is enabled are such entries made. */
#define SY_CT_F_POLICY (1u << 7)

struct sy_ct_entry {
	__u64 last_seen_ns;     /* bpf_ktime_get_ns() of the last stamp, CLOCK_MONOTONIC */
	union sy_addr nat_addr; /* forward: the backend (new destination); reply: the frontend
	                         * (new source) */
	union sy_addr nat2_addr; /* SNAT only. forward: the node address (new source); reply:
	                          * the client (new destination) */
	__be16 nat_port;         /* forward: backend port; reply: frontend port */
	__be16 nat2_port;        /* SNAT only. forward: the source port used; reply: the client's */
	__u32 backend_id;        /* the chosen backend (forward: checked against backends) */
	__u32 rev_nat_id;        /* the frontend's ID */
	__u8 dir;                /* SY_CT_FORWARD or SY_CT_REPLY */
	__u8 flags;              /* SY_CT_F_* */
	__u16 pol;               /* NetworkPolicy verdict cache (SY_CT_POL_*, policy_abi.h);
	                          * zero: not judged (and in every entry while policy is off) */
#ifdef SY_TEST_NEXT_LAYOUT
	__u64 next_test;         /* the test layout's new field: zero after a migration */
#endif
};

/* Conntrack lifetimes in seconds (Cilium's service defaults), and how often an entry's
 * stamp is refreshed (and its flow re-validated) by the packets of a live flow. */
#define SY_CT_LIFETIME_TCP 21600
#define SY_CT_LIFETIME_TCP_CLOSING 10
#define SY_CT_LIFETIME_NONTCP 60
#define SY_CT_REFRESH_NS 1000000000ULL
/* The longest any conntrack entry may name a backend: a released backend ID is not handed
 * out again before this (lb/id_index.h). */
#define SY_CT_LIFETIME_MAX SY_CT_LIFETIME_TCP

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

/* affinity: sessionAffinity ClientIP (LRU). The client is its address on the tc path and
 * its network namespace cookie on the socket path (where the source address is not known
 * yet at connect time; one pod is one network namespace). */
struct sy_affinity_key {
	union sy_addr client; /* tc: client address; socket hooks: zero */
	__u64 netns_cookie;   /* socket hooks: bpf_get_netns_cookie(); tc: zero */
	__u32 rev_nat_id;     /* the frontend */
	__u32 pad;            /* zero */
};

struct sy_affinity_value {
	__u64 last_used_ns; /* bpf_ktime_get_ns() of the last new flow that used it */
	__u32 backend_id;   /* the backend the client sticks to */
	__u16 slot;         /* its slot when chosen: it counts only while the slot still holds it */
	__u8 pad[2];        /* zero */
};

/* srcrange: loadBalancerSourceRanges (LPM trie): (frontend ID, client prefix) -> 1. The
 * prefix length counts the 32 bits of rev_nat_id plus the address bits (IPv4 prefixes as
 * IPv4-mapped: /24 is 96 + 24). */
struct sy_src_range_key {
	__u32 prefixlen;      /* 32 + 128-bit address prefix length */
	__u32 rev_nat_id;     /* network order, so that it is a prefix of the key */
	union sy_addr addr;   /* network order */
};

/* nodeaddr: this node's addresses (from netlink) -> flags. NodePort frontends are found on
 * the addresses flagged SY_NODE_ADDR_F_NODEPORT (nodePortAddresses). */
#define SY_NODE_ADDR_F_NODEPORT (1u << 0)

struct sy_node_addr_value {
	__u32 flags;   /* SY_NODE_ADDR_F_* */
	__u32 pad;     /* zero */
};

/* sockskip: cgroups whose sockets the socket hooks leave alone (bpf.socketLB.skipCgroups):
 * cgroup ID (the cgroup directory's inode) -> level (its depth below the cgroup v2 root).
 * A socket is skipped when its cgroup or one of its ancestors is here. Key 0 (no cgroup has
 * ID 0) holds in `levels` the set of levels that have an entry (bit n: level n, 1..31), so
 * the hooks ask for the ancestors at those levels only, and an empty map costs one lookup.
 * Skipped traffic reaches the ClusterIP as written, and the tc programs translate it. */
struct sy_sock_skip_value {
	__u32 levels; /* key 0: bit per level in use; else the entry's own level (informative) */
	__u32 pad;    /* zero */
};

/* The socket terminator's input (bpf/sock_term.bpf.c; not pinned): a UDP backend removed
 * from a frontend, whose connected sockets are destroyed. */
struct sy_term_key {
	union sy_addr frontend; /* network order */
	union sy_addr backend;  /* network order */
	__be16 frontend_port;
	__be16 backend_port;
	__u32 pad;              /* zero */
};

/* localnet: the cluster's own networks (LPM trie over addresses): clusterCIDR prefixes.
 * Traffic from them (and from this node) is in-cluster for the traffic policies. */
#define SY_LOCAL_NET_F_CLUSTER (1u << 0)

struct sy_local_net_key {
	__u32 prefixlen;    /* 0..128 (IPv4 prefixes as IPv4-mapped) */
	union sy_addr addr; /* network order */
};

struct sy_local_net_value {
	__u32 flags;   /* SY_LOCAL_NET_F_* */
	__u32 pad;     /* zero */
};

/* counters: per-CPU array indexed by reason. The reasons name the Prometheus label values
 * (metrics/datapath_counters.cpp keeps the table of names, checked against SY_REASON_MAX).
 * The map has SY_REASON_SLOTS entries, more than there are reasons, so a new reason does
 * not change the pinned map. */
enum sy_reason {
	SY_REASON_SOCK_XLATE = 0,        /* socket hook sent a connect/send to a backend */
	SY_REASON_SOCK_NO_BACKEND = 1,   /* socket hook refused: service without backends */
	SY_REASON_SOCK_REVNAT = 2,       /* recvmsg/getpeername restored the frontend */
	SY_REASON_TC_DNAT_NEW = 3,       /* tc: new flow DNATed to a backend */
	SY_REASON_TC_DNAT_CT = 4,        /* tc: packet of a tracked flow DNATed */
	SY_REASON_TC_REVNAT = 5,         /* tc: reply translated back to the frontend */
	SY_REASON_TC_NO_BACKEND = 6,     /* tc: service without backends: rejected (TCP reset,
	                                  * ICMP port unreachable) */
	SY_REASON_TC_BACKEND_GONE = 7,   /* tc: dropped, slot points to a missing backend */
	SY_REASON_TC_CSUM_ERROR = 8,     /* tc: dropped, a checksum or store helper failed */
	SY_REASON_TC_FRAGMENT = 9,       /* tc: passed untouched, IP fragment to a frontend */
	SY_REASON_SOCK_DROP_NO_LOCAL = 10, /* socket hook refused: a Local policy, no local endpoint */
	SY_REASON_TC_DROP_NO_LOCAL = 11, /* tc: dropped, a Local policy without local endpoints */
	SY_REASON_TC_CT_RACE = 12,       /* tc: another CPU created the flow first; its entry used */
	SY_REASON_TC_CT_CREATE_FAILED = 13, /* tc: a conntrack entry could not be created */
	SY_REASON_TC_CT_REPLY_RESTORED = 14, /* tc: a forward packet wrote its lost reply entry */
	SY_REASON_TC_CT_STALE_BACKEND = 15, /* tc: a flow's backend changed or went: chosen again */
	SY_REASON_TC_SRC_RANGE_DENIED = 16, /* tc: dropped, source not in loadBalancerSourceRanges */
	SY_REASON_TC_SNAT_NO_PORT = 17,  /* tc: dropped, no free SNAT source port */
	SY_REASON_TC_FIB_FAILED = 18,    /* tc: dropped, no route for a packet sent from this node */
	SY_REASON_TC_REJECT_FAILED = 19, /* tc: dropped, a reset or ICMP answer could not be built */
	SY_REASON_TC_PASS_HEADERS = 20,  /* tc: passed untouched, source-routed or a header chain
	                                  * too long to walk */
	SY_REASON_TC_ICMP_REVNAT = 21,   /* tc: an ICMP error about a translated flow translated */
	SY_REASON_TC_UPGRADE_HANDOFF = 22, /* tc: during an upgrade, a packet this daemon's
	                                  * conntrack misses handed to the previous daemon's
	                                  * program, whose map still tracks its flow */
	SY_REASON_SOCK_SKIPPED = 23,     /* socket hooks: a service address left untranslated for
	                                  * a cgroup in bpf.socketLB.skipCgroups (tc serves it) */
	SY_REASON_TC_CT_RECLAIMED = 24,  /* tc: no free SNAT port for a new flow's reply tuple;
	                                  * taken from a closed (FIN/RST) or expired flow */
	/* --- conntrack GC and pressure (issue 11 item 5) --- */
	SY_REASON_TC_CT_FULL = 25,       /* tc: dropped, a new flow and the conntrack table full */
	/* --- end conntrack GC --- */
	/* ---- DSR and MTU (issue 11) ---- */
	SY_REASON_TC_DSR_FORWARD = 26,   /* tc: a packet sent to another node's backend by DSR */
	SY_REASON_TC_DSR_RECEIVED = 27,  /* tc: the backend's node read a request's DSR information
	                                  * and wrote (or refreshed) the reply's reverse NAT */
	SY_REASON_TC_DSR_DECAP = 28,     /* tc: a DSR request decapsulated (IPIP, IP6IP6) */
	SY_REASON_TC_DSR_FALLBACK = 29,  /* tc: DSR impossible for this flow (IP options or IPv6
	                                  * extension headers already there): SNATed instead */
	SY_REASON_TC_DSR_FAILED = 30,    /* tc: dropped, the DSR option or encapsulation could not
	                                  * be added */
	SY_REASON_TC_MTU_ICMP = 31,      /* tc: too big for the DSR overhead: answered ICMP
	                                  * fragmentation needed / packet too big, dropped */
	SY_REASON_TC_MTU_DROP = 32,      /* tc: too big for the DSR overhead and no ICMP answer
	                                  * possible (not a plain packet, MTU below the minimum) */
	SY_REASON_TC_MSS_CLAMPED = 33,   /* tc: a SYN-ACK's MSS lowered to fit a DSR tunnel */
	/* -- Maglev (issue 11 item 3) -- */
	SY_REASON_TC_MAGLEV = 34,        /* tc: a new flow's backend chosen by the Maglev table */
	SY_REASON_TC_MAGLEV_FALLBACK = 35, /* tc: a Maglev frontend without a usable table entry
	                                    * (drift): a random backend chosen */
	/* -- end Maglev -- */
	/* -- NetworkPolicy (issue 12; docs/policy.md) -- */
	SY_REASON_POL_ALLOWED = 36,      /* tc: a flow judged (new, or again after a policy change)
	                                  * and allowed by a rule of an isolated pod */
	SY_REASON_POL_DENIED = 37,       /* tc: dropped, the pod is isolated and no rule allows */
	SY_REASON_POL_DENIED_DEFAULT = 38, /* tc: dropped, only policies without rules in this
	                                    * direction select the pod (default deny) */
	SY_REASON_POL_LOG_LOST = 39,     /* tc: a denied flow not logged (rate limit, ring full) */
	/* -- end NetworkPolicy -- */
	/* -- XDP fast path (issue 11 item 4; bpf/xdp_lb.bpf.c) -- */
	SY_REASON_XDP_DENY = 40,         /* xdp: dropped, source in loadBalancer.denyCIDRs */
	SY_REASON_XDP_FORWARD = 41,      /* xdp: a packet of a tracked external flow (SNAT, or DSR
	                                  * TCP after the SYN) rewritten as tc would and sent on
	                                  * (XDP_TX or redirect) */
	SY_REASON_XDP_REVNAT = 42,       /* xdp: a reply of a tracked SNATed flow translated back
	                                  * and sent to the client (XDP_TX or redirect) */
	SY_REASON_XDP_PASS_NEW = 43,     /* xdp: passed to tc, no conntrack entry (a new flow, or
	                                  * not a service) */
	SY_REASON_XDP_PASS_OTHER = 44,   /* xdp: passed to tc, what XDP leaves to it: not IP,
	                                  * fragments, IP options / extension headers, ICMP, SCTP,
	                                  * SYN/FIN/RST, DSR over UDP and ipip, local backends, a flow to
	                                  * re-validate (expired, backend changed, reply entry
	                                  * lost) */
	SY_REASON_XDP_PASS_FIB = 45,     /* xdp: passed to tc, the FIB lookup gave no neighbour
	                                  * (or needs fragmentation): tc's redirect resolves it */
	/* -- end XDP -- */
	SY_REASON_MAX = 46,
};
#define SY_REASON_SLOTS 64

struct sy_counter {
	__u64 packets; /* packets (or socket operations) counted */
	__u64 bytes;   /* bytes of those packets; 0 for socket operations */
};

/* ---- DSR wire formats (issue 11): not in any map; shared with the C++ tests ----
 * The frontend (the service address and port a client used) travels to the backend's node in
 * the request: an IPv4 option right after the fixed header, or an IPv6 destination-options
 * header right after the fixed header (TCP: on SYNs only; other protocols: on every packet).
 * With the ipip dispatch the request so marked is also encapsulated, outer destination the
 * backend itself, so the fabric sees a plain outer header. The type numbers are RFC 4727's
 * experimental ones: IPv4 option 30 with the copy bit (copied into fragments); IPv6 option
 * 0x1e (high bits 00: a node that does not know it skips it; bit 3 clear: not changed on the
 * way). */
#define SY_DSR_OPT4_TYPE 0x9e
#define SY_DSR_OPT6_TYPE 0x1e

struct sy_dsr_opt4 {
	__u8 type;   /* SY_DSR_OPT4_TYPE */
	__u8 len;    /* 8 */
	__be16 port; /* frontend port, network order */
	__be32 addr; /* frontend IPv4 address, network order */
};

struct sy_dsr_opt6 {
	__u8 nexthdr;       /* the header that follows (what followed the IPv6 header) */
	__u8 hdrlen;        /* 2: (2 + 1) * 8 = 24 bytes */
	__u8 type;          /* SY_DSR_OPT6_TYPE */
	__u8 len;           /* 18: addr + port */
	union sy_addr addr; /* frontend IPv6 address, network order */
	__be16 port;        /* frontend port, network order */
	__u8 pad[2];        /* two Pad1 options (zero) */
};

/* -- XDP fast path (issue 11 item 4) --
 * xdpdeny: loadBalancer.denyCIDRs (LPM trie over source addresses, IPv4 as IPv4-mapped: a
 * /24 is prefixlen 120), checked first by the XDP program on host-facing devices: a packet
 * whose source matches is dropped (SY_REASON_XDP_DENY). Value: 1. */
#define SY_XDP_DENY_MAX 16384

struct sy_xdp_deny_key {
	__u32 prefixlen;    /* 0..128 */
	union sy_addr addr; /* network order */
};
/* -- end XDP -- */

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

/* NetworkPolicy (policy/): its own block, defined once there. */
#include "bpf/policy_abi.h"
