/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Service lookup and backend selection, shared by the socket hooks and the tc programs.
 * Always inline: the entry points stay thin over this logic. */
#pragma once

#include <linux/in.h>
#include <bpf/bpf_endian.h>

#include "bpf/maps.bpf.h"

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

/* The service entry (slot 0) of a frontend, or NULL when the address:port is no service. */
static __always_inline const struct sy_svc_value *
sy_lookup_service(struct sy_svc_key *key, const union sy_addr *addr, __be16 port, __u8 proto)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->addr = *addr;
	key->port = port;
	key->proto = proto;
	key->scope = SY_SCOPE_EXTERNAL;
	key->slot = 0;
	return bpf_map_lookup_elem(&SY_MAP_SERVICES, key);
}

/* A random backend of a service with count > 0. Returns the backend and its ID, or NULL
 * when a slot or backend is missing (a writer racing us, or drift; counted by callers). */
static __always_inline const struct sy_backend *
sy_select_backend(struct sy_svc_key *key, const struct sy_svc_value *svc, __u32 *backend_id)
{
	const struct sy_svc_value *slot;

	key->slot = (__u16)(bpf_get_prandom_u32() % svc->count) + 1;
	slot = bpf_map_lookup_elem(&SY_MAP_SERVICES, key);
	if (!slot || !slot->backend_id)
		return NULL;
	*backend_id = slot->backend_id;
	return bpf_map_lookup_elem(&SY_MAP_BACKENDS, backend_id);
}
