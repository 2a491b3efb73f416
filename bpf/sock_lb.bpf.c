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

/* Remembers the frontend the application asked for (for NodePort, the node address it
 * used, not the wildcard the service is keyed by). */
static __always_inline void sock_remember_revnat(struct bpf_sock_addr *ctx,
						 const struct sy_backend *be,
						 const union sy_addr *frontend, __be16 port,
						 const struct sy_svc_value *svc)
{
	struct sy_sock_revnat_key rkey = {};
	struct sy_sock_revnat_value rval = {};

	rkey.cookie = bpf_get_socket_cookie(ctx);
	rkey.addr = be->addr;
	rkey.port = be->port;
	rval.addr = *frontend;
	rval.port = port;
	rval.rev_nat_id = svc->rev_nat_id;
	bpf_map_update_elem(&SY_MAP_SOCK_REVNAT, &rkey, &rval, BPF_ANY);
}

/* The destination of the call as a map address: IPv4 hooks give user_ip4, IPv6 hooks
 * user_ip6 (which may be IPv4-mapped on a dual-stack socket, matching IPv4 services as is). */
static __always_inline void sock_read_addr(const struct bpf_sock_addr *ctx, int v6,
					   union sy_addr *a)
{
	if (v6) {
		/* 4-byte loads: the only size the verifier accepts for user_ip6. */
		a->w[0] = ctx->user_ip6[0];
		a->w[1] = ctx->user_ip6[1];
		a->w[2] = ctx->user_ip6[2];
		a->w[3] = ctx->user_ip6[3];
	} else {
		sy_addr_from_v4(a, ctx->user_ip4);
	}
}

static __always_inline void sock_write_addr(struct bpf_sock_addr *ctx, int v6,
					    const union sy_addr *a, __be16 port)
{
	if (v6) {
		ctx->user_ip6[0] = a->w[0];
		ctx->user_ip6[1] = a->w[1];
		ctx->user_ip6[2] = a->w[2];
		ctx->user_ip6[3] = a->w[3];
	} else {
		ctx->user_ip4 = a->w[3];
	}
	ctx->user_port = (__u32)port;
}

/* Whether the calling task's cgroup, or an ancestor of it, is in sockskip (see abi.h). */
static __always_inline int sock_lb_skipped(void)
{
	__u64 key = 0;
	const struct sy_sock_skip_value *in_use = bpf_map_lookup_elem(&SY_MAP_SOCK_SKIP, &key);
	__u32 levels;
	int level;

	if (!in_use)
		return 0;
	levels = in_use->levels;
	for (level = 1; level < 32; level++) {
		if (!(levels & (1u << level)))
			continue;
		key = bpf_get_current_ancestor_cgroup_id(level);
		if (key && bpf_map_lookup_elem(&SY_MAP_SOCK_SKIP, &key))
			return 1;
	}
	return 0;
}

/* Forward translation: frontend -> backend. Returns SYS_PROCEED or SYS_REJECT. A socket's
 * client is always inside the cluster (a process on this node or one of its pods), so the
 * frontend's internal scope applies. */
static __always_inline int sock_xlate_fwd(struct bpf_sock_addr *ctx, int v6)
{
	struct sy_svc_key key;
	struct sy_affinity_key akey = {};
	const struct sy_svc_value *svc;
	const struct sy_backend *be;
	union sy_addr dst;
	__u32 backend_id = 0;
	__u8 proto = (__u8)ctx->protocol;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP)
		return SYS_PROCEED;
	sock_read_addr(ctx, v6, &dst);
	svc = sy_lookup_service(&key, &dst, sock_dst_port(ctx), proto, 1);
	if (!svc)
		return SYS_PROCEED; /* not a service: untouched */
	if (sock_lb_skipped()) {
		/* Opted out (a service mesh or a mount that needs the ClusterIP): the packets
		 * go out to the ClusterIP and the tc programs translate them. */
		sy_count(SY_REASON_SOCK_SKIPPED, 0);
		return SYS_PROCEED;
	}
	if (svc->count == 0) {
		if (svc->flags & SY_SVC_F_DROP_EMPTY) {
			/* kube-proxy drops these packets (a Local policy without local endpoints);
			 * a socket can only be told: "no route to host". */
			sy_count(SY_REASON_SOCK_DROP_NO_LOCAL, 0);
			bpf_set_retval(-EHOSTUNREACH);
			return SYS_REJECT;
		}
		/* kube-proxy rejects traffic to services without endpoints: the caller sees
		 * ECONNREFUSED, as it would from the ICMP port-unreachable kube-proxy sends. */
		sy_count(SY_REASON_SOCK_NO_BACKEND, 0);
		bpf_set_retval(-ECONNREFUSED);
		return SYS_REJECT;
	}
	/* One pod is one network namespace: its sockets share one affinity entry. */
	akey.netns_cookie = bpf_get_netns_cookie(ctx);
	be = sy_pick_backend(&key, svc, &akey, bpf_ktime_get_ns(), &backend_id);
	if (!be) {
		sy_count(SY_REASON_SOCK_NO_BACKEND, 0);
		bpf_set_retval(-ECONNREFUSED);
		return SYS_REJECT;
	}
	/* An IPv4 hook can only reach an IPv4 backend (translation never mixes families). */
	if (!v6 && !sy_addr_is_v4(&be->addr))
		return SYS_PROCEED;
	sock_remember_revnat(ctx, be, &dst, sock_dst_port(ctx), svc);
	sock_write_addr(ctx, v6, &be->addr, be->port);
	sy_count(SY_REASON_SOCK_XLATE, 0);
	return SYS_PROCEED;
}

/* Reverse translation for recvmsg/getpeername: backend -> frontend. */
static __always_inline void sock_xlate_rev(struct bpf_sock_addr *ctx, int v6)
{
	struct sy_sock_revnat_key rkey = {};
	const struct sy_sock_revnat_value *rval;

	rkey.cookie = bpf_get_socket_cookie(ctx);
	sock_read_addr(ctx, v6, &rkey.addr);
	rkey.port = sock_dst_port(ctx);
	rval = bpf_map_lookup_elem(&SY_MAP_SOCK_REVNAT, &rkey);
	if (!rval)
		return;
	sock_write_addr(ctx, v6, &rval->addr, rval->port);
	sy_count(SY_REASON_SOCK_REVNAT, 0);
}

SEC("cgroup/connect4")
int sy_sock_connect4(struct bpf_sock_addr *ctx)
{
	return sock_xlate_fwd(ctx, 0);
}

SEC("cgroup/sendmsg4")
int sy_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_xlate_fwd(ctx, 0);
}

SEC("cgroup/recvmsg4")
int sy_sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	sock_xlate_rev(ctx, 0);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int sy_sock_getpeername4(struct bpf_sock_addr *ctx)
{
	sock_xlate_rev(ctx, 0);
	return SYS_PROCEED;
}

SEC("cgroup/connect6")
int sy_sock_connect6(struct bpf_sock_addr *ctx)
{
	return sock_xlate_fwd(ctx, 1);
}

SEC("cgroup/sendmsg6")
int sy_sock_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_xlate_fwd(ctx, 1);
}

SEC("cgroup/recvmsg6")
int sy_sock_recvmsg6(struct bpf_sock_addr *ctx)
{
	sock_xlate_rev(ctx, 1);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername6")
int sy_sock_getpeername6(struct bpf_sock_addr *ctx)
{
	sock_xlate_rev(ctx, 1);
	return SYS_PROCEED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
