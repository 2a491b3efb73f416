// The C++ side of the map contract: abi.h is included verbatim, and every size and offset
// the BPF programs rely on is asserted here, so a layout change breaks the build instead
// of the datapath.
#include <cstddef>

#include "bpf/abi.h"
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

SY_CHECK_SIZE(struct sy_svc_value, 16);
SY_CHECK_OFF(struct sy_svc_value, backend_id, 0);
SY_CHECK_OFF(struct sy_svc_value, rev_nat_id, 4);
SY_CHECK_OFF(struct sy_svc_value, count, 8);
SY_CHECK_OFF(struct sy_svc_value, flags, 10);
SY_CHECK_OFF(struct sy_svc_value, pad, 12);

SY_CHECK_SIZE(struct sy_backend, 24);
SY_CHECK_OFF(struct sy_backend, addr, 0);
SY_CHECK_OFF(struct sy_backend, port, 16);
SY_CHECK_OFF(struct sy_backend, proto, 18);
SY_CHECK_OFF(struct sy_backend, state, 19);
SY_CHECK_OFF(struct sy_backend, pad, 20);

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
SY_CHECK_OFF(struct sy_ct_key, dir, 37);
SY_CHECK_OFF(struct sy_ct_key, pad, 38);

SY_CHECK_SIZE(struct sy_ct_entry, 24);
SY_CHECK_OFF(struct sy_ct_entry, last_seen_ns, 0);
SY_CHECK_OFF(struct sy_ct_entry, backend_id, 8);
SY_CHECK_OFF(struct sy_ct_entry, rev_nat_id, 12);
SY_CHECK_OFF(struct sy_ct_entry, flags, 16);
SY_CHECK_OFF(struct sy_ct_entry, pad, 17);

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

SY_CHECK_SIZE(struct sy_counter, 16);
SY_CHECK_OFF(struct sy_counter, packets, 0);
SY_CHECK_OFF(struct sy_counter, bytes, 8);

SY_CHECK_SIZE(struct sy_meta, 8);
SY_CHECK_SIZE(struct sy_tc_attach_key, 8);
SY_CHECK_SIZE(struct sy_tc_attach_value, 32);
SY_CHECK_OFF(struct sy_tc_attach_value, created_qdisc, 8);
SY_CHECK_OFF(struct sy_tc_attach_value, ifname, 16);

static_assert(switchyard::lb::kFrontendClusterIP == SY_SVC_F_CLUSTER_IP,
              "lb/types.h and bpf/abi.h disagree on the ClusterIP flag");
static_assert(SY_MAX_BACKENDS_PER_SERVICE == 65535, "slot numbers are __u16");
