/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map definitions, BPF side only. Every map is pinned by name under the pin root the
 * loader passes to libbpf, so the socket and tc objects share one set and a restarted
 * daemon reuses them. Key/value types come from abi.h, the contract with the C++ side. */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sy_svc_key);
	__type(value, struct sy_svc_value);
	__uint(max_entries, SY_SERVICES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_SERVICES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sy_backend);
	__uint(max_entries, SY_BACKENDS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_BACKENDS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sy_revnat);
	__uint(max_entries, SY_REVNAT_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_REVNAT SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH); /* not LRU: full refuses new flows, never evicts live ones */
	__type(key, struct sy_ct_key);
	__type(value, struct sy_ct_entry);
	__uint(max_entries, SY_CT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_CT SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sy_sock_revnat_key);
	__type(value, struct sy_sock_revnat_value);
	__uint(max_entries, SY_SOCK_REVNAT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_SOCK_REVNAT SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct sy_sock_skip_value);
	__uint(max_entries, SY_SOCK_SKIP_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_SOCK_SKIP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sy_affinity_key);
	__type(value, struct sy_affinity_value);
	__uint(max_entries, SY_AFFINITY_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_AFFINITY SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sy_src_range_key);
	__type(value, __u8);
	__uint(max_entries, SY_SRC_RANGES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_SRC_RANGES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, union sy_addr);
	__type(value, struct sy_node_addr_value);
	__uint(max_entries, SY_NODE_ADDRS_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_NODE_ADDRS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sy_local_net_key);
	__type(value, struct sy_local_net_value);
	__uint(max_entries, SY_LOCAL_NETS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_LOCAL_NETS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sy_counter);
	__uint(max_entries, SY_REASON_SLOTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_COUNTERS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sy_meta);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_META SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sy_tc_attach_key);
	__type(value, struct sy_tc_attach_value);
	__uint(max_entries, SY_TC_ATTACH_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SY_MAP_TC_ATTACH SEC(".maps");

/* -- Maglev (issue 11 item 3) -- */
/* The template of a Maglev table (abi.h): tables are created by the control plane, each with
 * its own size; BPF_F_INNER_MAP lets the outer map hold arrays of any max_entries. */
struct sy_maglev_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(key_size, sizeof(__u32)); /* sizes, not BTF types: libbpf cannot size an */
	__uint(value_size, sizeof(struct sy_maglev_cell)); /* inner map's typed value */
	__uint(max_entries, SY_MAGLEV_CELLS(SY_MAGLEV_TABLE_DEFAULT));
	__uint(map_flags, BPF_F_INNER_MAP);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, SY_MAGLEV_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct sy_maglev_table);
} SY_MAP_MAGLEV SEC(".maps");
/* -- end Maglev -- */
