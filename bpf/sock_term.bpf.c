/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Terminating connected UDP sockets that socket LB sent to a backend the service no longer
 * has: kube-proxy flushes the conntrack entries of a removed UDP endpoint so that clients
 * stop sending to a dead pod; a connected UDP socket that connect4/6 pointed at that pod
 * would keep sending there for ever (send() runs no hook). A BPF iterator over the UDP
 * sockets of one network namespace destroys (bpf_sock_destroy, Linux 6.5+; the socket's
 * next call fails with ECONNABORTED and it is no longer connected) each connected socket
 * whose socket-LB translation (sock_rnat, by cookie and backend) is in sy_term_stale: the
 * (frontend, backend) pairs the daemon just removed. Sockets that reached the backend's
 * address on their own, or through a frontend that keeps it, are left alone.
 *
 * The kernel types are declared with only the fields used, for CO-RE: libbpf relocates
 * each access against the running kernel's BTF. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "bpf/abi.h"

#define SY_AF_INET 2
#define SY_AF_INET6 10
#define SY_TCP_ESTABLISHED 1 /* a connected UDP socket's sk_state */

struct in6_addr___sy {
	__u32 s6_addr32[4];
};

struct sock_common {
	__be32 skc_daddr;
	__be16 skc_dport;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr___sy skc_v6_daddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct inet_sock {
	struct sock sk;
} __attribute__((preserve_access_index));

struct udp_sock {
	struct inet_sock inet;
} __attribute__((preserve_access_index));

struct bpf_iter_meta;

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
} __attribute__((preserve_access_index));

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

/* The loader points this at the pinned sock_rnat map (bpf_map__reuse_fd). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sy_sock_revnat_key);
	__type(value, struct sy_sock_revnat_value);
	__uint(max_entries, 1);
} sy_term_rnat SEC(".maps");

/* The (frontend, backend) pairs to terminate, written by the daemon before each run. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sy_term_key);
	__type(value, __u32);
	__uint(max_entries, SY_TERM_STALE_MAX);
} sy_term_stale SEC(".maps");

__u64 sy_term_destroyed = 0;

SEC("iter/udp")
int sy_sock_term_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *udp = ctx->udp_sk;
	struct sock_common *sk;
	struct sy_sock_revnat_key rkey = {};
	struct sy_term_key tkey = {};
	const struct sy_sock_revnat_value *fe;
	unsigned short family;

	if (!udp)
		return 0;
	sk = &udp->inet.sk.__sk_common;
	if (sk->skc_state != SY_TCP_ESTABLISHED)
		return 0; /* not connected: each send is translated afresh */
	family = sk->skc_family;
	if (family == SY_AF_INET) {
		rkey.addr.w[2] = bpf_htonl(0xffff);
		rkey.addr.w[3] = sk->skc_daddr;
	} else if (family == SY_AF_INET6) {
		rkey.addr.w[0] = sk->skc_v6_daddr.s6_addr32[0];
		rkey.addr.w[1] = sk->skc_v6_daddr.s6_addr32[1];
		rkey.addr.w[2] = sk->skc_v6_daddr.s6_addr32[2];
		rkey.addr.w[3] = sk->skc_v6_daddr.s6_addr32[3];
	} else {
		return 0;
	}
	rkey.port = sk->skc_dport;
	rkey.cookie = bpf_get_socket_cookie(sk);
	fe = bpf_map_lookup_elem(&sy_term_rnat, &rkey);
	if (!fe)
		return 0; /* socket LB did not send it there */
	tkey.frontend = fe->addr;
	tkey.frontend_port = fe->port;
	tkey.backend = rkey.addr;
	tkey.backend_port = rkey.port;
	if (!bpf_map_lookup_elem(&sy_term_stale, &tkey))
		return 0;
	if (bpf_sock_destroy(sk) == 0)
		__sync_fetch_and_add(&sy_term_destroyed, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
