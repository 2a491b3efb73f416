/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tests/e2e/xdp_test.sh: an XDP program that passes everything, for the fabric-side peer of a
 * node's veth. A veth delivers the frames its XDP program sends (XDP_TX, redirect) only when
 * its peer runs XDP too; a NIC's wire has no such condition. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int sy_test_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
