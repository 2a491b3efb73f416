// The C++ side of the map contract: abi.h is included verbatim, and every size and offset
// the BPF programs rely on is asserted here, so a layout change breaks the build instead
// of the datapath.
#include <cstddef>

#include "bpf/abi.h"
#include "lb/syncer.h"
#include "lb/types.h"

#define SY_CHECK_SIZE(T, n) static_assert(sizeof(T) == (n), #T " size changed: bump SY_ABI_VERSION")
#define SY_CHECK_OFF(T, f, n) static_assert(offsetof(T, f) == (n), #T "." #f " moved")

SY_CHECK_SIZE(union sy_addr, 16);

SY_CHECK_SIZE(struct sy_svc_key, 24);
SY_CHECK_OFF(struct sy_svc_key, addr, 0);
SY_CHECK_OFF(struct sy_svc_key, port, 16);
SY_CHECK_OFF(struct sy_svc_key, proto, 18);
SY_CHECK_OFF(struct sy_svc_key, scope, 19);
SY_CHECK_OFF(struct sy_svc_key, slot, 20);
SY_CHECK_OFF(struct sy_svc_key, pad, 22);

SY_CHECK_SIZE(struct sy_svc_value, 24);
SY_CHECK_OFF(struct sy_svc_value, backend_id, 0);
SY_CHECK_OFF(struct sy_svc_value, rev_nat_id, 4);
SY_CHECK_OFF(struct sy_svc_value, affinity_timeout, 8);
SY_CHECK_OFF(struct sy_svc_value, count, 12);
SY_CHECK_OFF(struct sy_svc_value, flags, 14);
SY_CHECK_OFF(struct sy_svc_value, kind, 16);
SY_CHECK_OFF(struct sy_svc_value, pad, 17);

SY_CHECK_SIZE(struct sy_backend, 24);
SY_CHECK_OFF(struct sy_backend, addr, 0);
SY_CHECK_OFF(struct sy_backend, port, 16);
SY_CHECK_OFF(struct sy_backend, proto, 18);
SY_CHECK_OFF(struct sy_backend, state, 19);
SY_CHECK_OFF(struct sy_backend, flags, 20);
SY_CHECK_OFF(struct sy_backend, pad, 21);

SY_CHECK_SIZE(struct sy_revnat, 20);
SY_CHECK_OFF(struct sy_revnat, addr, 0);
SY_CHECK_OFF(struct sy_revnat, port, 16);
SY_CHECK_OFF(struct sy_revnat, pad, 18);

SY_CHECK_SIZE(struct sy_ct_key, 40);
SY_CHECK_OFF(struct sy_ct_key, saddr, 0);
SY_CHECK_OFF(struct sy_ct_key, daddr, 16);
SY_CHECK_OFF(struct sy_ct_key, sport, 32);
SY_CHECK_OFF(struct sy_ct_key, dport, 34);
SY_CHECK_OFF(struct sy_ct_key, proto, 36);
SY_CHECK_OFF(struct sy_ct_key, pad, 37);

#ifdef SY_TEST_NEXT_LAYOUT
SY_CHECK_SIZE(struct sy_ct_entry, 64);
#else
SY_CHECK_SIZE(struct sy_ct_entry, 56);
#endif
SY_CHECK_OFF(struct sy_ct_entry, last_seen_ns, 0);
SY_CHECK_OFF(struct sy_ct_entry, nat_addr, 8);
SY_CHECK_OFF(struct sy_ct_entry, nat2_addr, 24);
SY_CHECK_OFF(struct sy_ct_entry, nat_port, 40);
SY_CHECK_OFF(struct sy_ct_entry, nat2_port, 42);
SY_CHECK_OFF(struct sy_ct_entry, backend_id, 44);
SY_CHECK_OFF(struct sy_ct_entry, rev_nat_id, 48);
SY_CHECK_OFF(struct sy_ct_entry, dir, 52);
SY_CHECK_OFF(struct sy_ct_entry, flags, 53);
SY_CHECK_OFF(struct sy_ct_entry, pol, 54);

SY_CHECK_SIZE(struct sy_sock_revnat_key, 32);
SY_CHECK_OFF(struct sy_sock_revnat_key, cookie, 0);
SY_CHECK_OFF(struct sy_sock_revnat_key, addr, 8);
SY_CHECK_OFF(struct sy_sock_revnat_key, port, 24);
SY_CHECK_OFF(struct sy_sock_revnat_key, pad, 26);

SY_CHECK_SIZE(struct sy_sock_revnat_value, 24);
SY_CHECK_OFF(struct sy_sock_revnat_value, addr, 0);
SY_CHECK_OFF(struct sy_sock_revnat_value, port, 16);
SY_CHECK_OFF(struct sy_sock_revnat_value, pad, 18);
SY_CHECK_OFF(struct sy_sock_revnat_value, rev_nat_id, 20);

SY_CHECK_SIZE(struct sy_affinity_key, 32);
SY_CHECK_OFF(struct sy_affinity_key, client, 0);
SY_CHECK_OFF(struct sy_affinity_key, netns_cookie, 16);
SY_CHECK_OFF(struct sy_affinity_key, rev_nat_id, 24);
SY_CHECK_OFF(struct sy_affinity_key, pad, 28);

SY_CHECK_SIZE(struct sy_affinity_value, 16);
SY_CHECK_OFF(struct sy_affinity_value, last_used_ns, 0);
SY_CHECK_OFF(struct sy_affinity_value, backend_id, 8);
SY_CHECK_OFF(struct sy_affinity_value, slot, 12);
SY_CHECK_OFF(struct sy_affinity_value, pad, 14);

SY_CHECK_SIZE(struct sy_src_range_key, 24);
SY_CHECK_OFF(struct sy_src_range_key, prefixlen, 0);
SY_CHECK_OFF(struct sy_src_range_key, rev_nat_id, 4);
SY_CHECK_OFF(struct sy_src_range_key, addr, 8);

SY_CHECK_SIZE(struct sy_node_addr_value, 8);
SY_CHECK_SIZE(struct sy_sock_skip_value, 8);
SY_CHECK_SIZE(struct sy_term_key, 40);
SY_CHECK_SIZE(struct sy_local_net_key, 20);
SY_CHECK_OFF(struct sy_local_net_key, prefixlen, 0);
SY_CHECK_OFF(struct sy_local_net_key, addr, 4);
SY_CHECK_SIZE(struct sy_xdp_deny_key, 20);  // XDP fast path (issue 11 item 4)
SY_CHECK_OFF(struct sy_xdp_deny_key, prefixlen, 0);
SY_CHECK_OFF(struct sy_xdp_deny_key, addr, 4);
SY_CHECK_SIZE(struct sy_local_net_value, 8);

SY_CHECK_SIZE(struct sy_counter, 16);
SY_CHECK_OFF(struct sy_counter, packets, 0);
SY_CHECK_OFF(struct sy_counter, bytes, 8);
static_assert(SY_REASON_MAX <= SY_REASON_SLOTS, "the counters map has no slot for every reason");

// DSR wire formats (issue 11).
SY_CHECK_SIZE(struct sy_dsr_opt4, 8);
SY_CHECK_OFF(struct sy_dsr_opt4, port, 2);
SY_CHECK_OFF(struct sy_dsr_opt4, addr, 4);
SY_CHECK_SIZE(struct sy_dsr_opt6, 24);
SY_CHECK_OFF(struct sy_dsr_opt6, type, 2);
SY_CHECK_OFF(struct sy_dsr_opt6, addr, 4);
SY_CHECK_OFF(struct sy_dsr_opt6, port, 20);
SY_CHECK_OFF(struct sy_dsr_opt6, pad, 22);

SY_CHECK_SIZE(struct sy_meta, 8);
SY_CHECK_SIZE(struct sy_tc_attach_key, 8);
SY_CHECK_SIZE(struct sy_tc_attach_value, 32);
SY_CHECK_OFF(struct sy_tc_attach_value, created_qdisc, 8);
SY_CHECK_OFF(struct sy_tc_attach_value, ifname, 16);

namespace lb = switchyard::lb;
static_assert(lb::kFrontendTwoScopes == SY_SVC_F_TWO_SCOPES, "lb/types.h and bpf/abi.h disagree");
static_assert(lb::kFrontendDropEmpty == SY_SVC_F_DROP_EMPTY, "lb/types.h and bpf/abi.h disagree");
static_assert(lb::kFrontendSourceRanges == SY_SVC_F_SOURCE_RANGES, "lb/types.h and bpf/abi.h disagree");
static_assert(lb::kFrontendDsr == SY_SVC_F_DSR && lb::kFrontendDsrIpip == SY_SVC_F_DSR_IPIP &&
                  lb::kFrontendModeHybrid == SY_SVC_F_MODE_HYBRID,
              "lb/types.h and bpf/abi.h disagree");
static_assert(lb::kFrontendMaglev == SY_SVC_F_MAGLEV, "lb/types.h and bpf/abi.h disagree");  // Maglev (issue 11 item 3)
static_assert(static_cast<int>(lb::Scope::External) == SY_SCOPE_EXTERNAL &&
              static_cast<int>(lb::Scope::Internal) == SY_SCOPE_INTERNAL, "scopes disagree");
static_assert(static_cast<int>(lb::FrontendKind::ClusterIP) == SY_SVC_KIND_CLUSTER_IP &&
              static_cast<int>(lb::FrontendKind::NodePort) == SY_SVC_KIND_NODE_PORT &&
              static_cast<int>(lb::FrontendKind::ExternalIP) == SY_SVC_KIND_EXTERNAL_IP &&
              static_cast<int>(lb::FrontendKind::LoadBalancer) == SY_SVC_KIND_LOAD_BALANCER,
              "frontend kinds disagree");
static_assert(lb::kBackendIdQuarantine.count() >= SY_CT_LIFETIME_MAX,
              "a backend ID may be reused while conntrack still names it");
static_assert(lb::kProtoSCTP == 132, "IPPROTO_SCTP");
static_assert(SY_MAX_BACKENDS_PER_SERVICE == 65535, "slot numbers are __u16");
