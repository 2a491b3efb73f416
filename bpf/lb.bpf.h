/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Service lookup and backend selection, shared by the socket hooks and the tc programs
 * (no skb-only helpers here, so XDP can use it too). Always inline: the entry points stay
 * thin over this logic. */
#pragma once

#include <linux/in.h>
#include <bpf/bpf_endian.h>

#include "bpf/maps.bpf.h"

#define SY_NSEC_PER_SEC 1000000000ULL

static __always_inline void sy_count(__u32 reason, __u64 bytes)
{
	struct sy_counter *c = bpf_map_lookup_elem(&SY_MAP_COUNTERS, &reason);

	if (c) {
		/* Per-CPU value: no atomics needed. */
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline void sy_addr_from_v4(union sy_addr *a, __be32 v4)
{
	a->w[0] = 0;
	a->w[1] = 0;
	a->w[2] = bpf_htonl(0x0000ffff);
	a->w[3] = v4;
}

static __always_inline int sy_addr_is_v4(const union sy_addr *a)
{
	return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == bpf_htonl(0x0000ffff);
}

static __always_inline int sy_addr_eq(const union sy_addr *a, const union sy_addr *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

/* The wildcard of a's family: the address NodePort frontends are keyed by. */
static __always_inline void sy_addr_wildcard(union sy_addr *out, const union sy_addr *a)
{
	int v4 = sy_addr_is_v4(a);

	out->w[0] = 0;
	out->w[1] = 0;
	out->w[2] = v4 ? bpf_htonl(0x0000ffff) : 0;
	out->w[3] = 0;
}

/* Whether `stamp` (a bpf_ktime_get_ns() reading of some CPU) is less than `life` ns before
 * `now`. Another CPU may have written a stamp after this one read the clock: a stamp later
 * than now is fresh, not 584 years old (unsigned now - stamp would wrap). */
static __always_inline int sy_fresh(__u64 stamp, __u64 now, __u64 life)
{
	return stamp >= now || now - stamp < life;
}

/* Whether addr is one of this node's NodePort addresses (nodePortAddresses). */
static __always_inline int sy_is_nodeport_addr(const union sy_addr *addr)
{
	const struct sy_node_addr_value *na = bpf_map_lookup_elem(&SY_MAP_NODE_ADDRS, addr);

	return na && (na->flags & SY_NODE_ADDR_F_NODEPORT);
}

/* The service entry (slot 0) that a client reaches at addr:port, or NULL when that is no
 * service: the frontend of that address, else, on one of this node's NodePort addresses,
 * the NodePort frontend of that port (keyed by the family's wildcard). An in-cluster client
 * (internal) gets the frontend's internal scope where it has one. On return key names the
 * entry found (scope included, slot 0). */
static __always_inline const struct sy_svc_value *
sy_lookup_service(struct sy_svc_key *key, const union sy_addr *addr, __be16 port, __u8 proto,
		  int internal)
{
	const struct sy_svc_value *svc, *scoped;

	__builtin_memset(key, 0, sizeof(*key));
	key->addr = *addr;
	key->port = port;
	key->proto = proto;
	key->scope = SY_SCOPE_EXTERNAL;
	key->slot = 0;
	svc = bpf_map_lookup_elem(&SY_MAP_SERVICES, key);
	if (!svc) {
		if (!sy_is_nodeport_addr(addr))
			return NULL;
		sy_addr_wildcard(&key->addr, addr);
		svc = bpf_map_lookup_elem(&SY_MAP_SERVICES, key);
		if (!svc || svc->kind != SY_SVC_KIND_NODE_PORT)
			return NULL;
	}
	if (internal && (svc->flags & SY_SVC_F_TWO_SCOPES)) {
		key->scope = SY_SCOPE_INTERNAL;
		scoped = bpf_map_lookup_elem(&SY_MAP_SERVICES, key);
		if (scoped)
			return scoped;
		/* The writer adds the internal entry before it sets the flag and clears the flag
		 * before it deletes the entry; a miss here is drift: use the external one. */
		key->scope = SY_SCOPE_EXTERNAL;
	}
	return svc;
}

/* The backend in `slot` (1..count) of the service at key, or NULL (a writer racing us, or
 * drift; callers count it). */
static __always_inline const struct sy_backend *
sy_backend_in_slot(struct sy_svc_key *key, __u16 slot, __u32 *backend_id)
{
	const struct sy_svc_value *sv;

	key->slot = slot;
	sv = bpf_map_lookup_elem(&SY_MAP_SERVICES, key);
	key->slot = 0;
	if (!sv || !sv->backend_id)
		return NULL;
	*backend_id = sv->backend_id;
	return bpf_map_lookup_elem(&SY_MAP_BACKENDS, backend_id);
}

/* A backend for a new flow of a service with count > 0. With sessionAffinity ClientIP and
 * an affinity key (the client), the client's backend while its entry is fresh and its slot
 * still holds that backend (so it survives churn of the other backends), else a random one,
 * remembered for the client. Returns the backend with its ID, or NULL. */
static __always_inline const struct sy_backend *
sy_pick_backend(struct sy_svc_key *key, const struct sy_svc_value *svc,
		struct sy_affinity_key *akey, __u64 now, __u32 *backend_id)
{
	const struct sy_backend *be;
	struct sy_affinity_value *av;
	struct sy_affinity_value nav = {};
	__u16 slot;

	if (svc->affinity_timeout && akey) {
		akey->rev_nat_id = svc->rev_nat_id;
		av = bpf_map_lookup_elem(&SY_MAP_AFFINITY, akey);
		if (av && av->slot >= 1 && av->slot <= svc->count &&
		    sy_fresh(av->last_used_ns, now, (__u64)svc->affinity_timeout * SY_NSEC_PER_SEC)) {
			be = sy_backend_in_slot(key, av->slot, backend_id);
			if (be && *backend_id == av->backend_id) {
				av->last_used_ns = now;
				return be;
			}
		}
	}
	slot = (__u16)(bpf_get_prandom_u32() % svc->count) + 1;
	be = sy_backend_in_slot(key, slot, backend_id);
	if (be && svc->affinity_timeout && akey) {
		nav.last_used_ns = now;
		nav.backend_id = *backend_id;
		nav.slot = slot;
		bpf_map_update_elem(&SY_MAP_AFFINITY, akey, &nav, BPF_ANY);
	}
	return be;
}
