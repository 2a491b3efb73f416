/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Socket-level load balancing: cgroup sock_addr hooks. A TCP connect() or UDP send to a
 * ClusterIP:port is rewritten to a backend before the packet exists, so ClusterIP traffic
 * pays no per-packet NAT. recvmsg and getpeername translate the backend back, so the
 * application only ever sees the ClusterIP. */
#include <linux/bpf.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lb.bpf.h"

#define SYS_REJECT 0
#define SYS_PROCEED 1

static __always_inline __be16 sock_dst_port(const struct bpf_sock_addr *ctx)
{
	/* user_port holds the port in network order in its low 16 bits. volatile: the verifier
	 * accepts only 4-byte loads of this field. */
	volatile __u32 port = ctx->user_port;

	return (__be16)port;
}

static __always_inline void sock_remember_revnat(struct bpf_sock_addr *ctx,
						 const struct sy_backend *be,
						 const struct sy_svc_key *svc_key,
						 const struct sy_svc_value *svc)
{
	struct sy_sock_revnat_key rkey = {};
	struct sy_sock_revnat_value rval = {};

	rkey.cookie = bpf_get_socket_cookie(ctx);
	rkey.addr = be->addr;
	rkey.port = be->port;
	rval.addr = svc_key->addr;
	rval.port = svc_key->port;
	rval.rev_nat_id = svc->rev_nat_id;
	bpf_map_update_elem(&SY_MAP_SOCK_REVNAT, &rkey, &rval, BPF_ANY);
}

/* Forward translation: frontend -> backend. Returns SYS_PROCEED or SYS_REJECT. */
static __always_inline int sock4_xlate_fwd(struct bpf_sock_addr *ctx)
{
	struct sy_svc_key key;
	const struct sy_svc_value *svc;
	const struct sy_backend *be;
	union sy_addr dst;
	__u32 backend_id = 0;
	__u8 proto = (__u8)ctx->protocol;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return SYS_PROCEED;
	sy_addr_from_v4(&dst, ctx->user_ip4);
	svc = sy_lookup_service(&key, &dst, sock_dst_port(ctx), proto);
	if (!svc)
		return SYS_PROCEED; /* not a service: untouched */
	if (svc->count == 0) {
		/* kube-proxy rejects traffic to services without endpoints: the caller sees
		 * ECONNREFUSED, as it would from the ICMP port-unreachable kube-proxy sends. */
		sy_count(SY_REASON_SOCK_NO_BACKEND, 0);
		bpf_set_retval(-ECONNREFUSED);
		return SYS_REJECT;
	}
	be = sy_select_backend(&key, svc, &backend_id);
	if (!be) {
		sy_count(SY_REASON_SOCK_NO_BACKEND, 0);
		bpf_set_retval(-ECONNREFUSED);
		return SYS_REJECT;
	}
	sock_remember_revnat(ctx, be, &key, svc);
	ctx->user_ip4 = be->addr.w[3];
	ctx->user_port = (__u32)be->port;
	sy_count(SY_REASON_SOCK_XLATE, 0);
	return SYS_PROCEED;
}

/* Reverse translation for recvmsg/getpeername: backend -> frontend. */
static __always_inline void sock4_xlate_rev(struct bpf_sock_addr *ctx)
{
	struct sy_sock_revnat_key rkey = {};
	const struct sy_sock_revnat_value *rval;

	rkey.cookie = bpf_get_socket_cookie(ctx);
	sy_addr_from_v4(&rkey.addr, ctx->user_ip4);
	rkey.port = sock_dst_port(ctx);
	rval = bpf_map_lookup_elem(&SY_MAP_SOCK_REVNAT, &rkey);
	if (!rval)
		return;
	ctx->user_ip4 = rval->addr.w[3];
	ctx->user_port = (__u32)rval->port;
	sy_count(SY_REASON_SOCK_REVNAT, 0);
}

SEC("cgroup/connect4")
int sy_sock_connect4(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_fwd(ctx);
}

SEC("cgroup/sendmsg4")
int sy_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_fwd(ctx);
}

SEC("cgroup/recvmsg4")
int sy_sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int sy_sock_getpeername4(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
