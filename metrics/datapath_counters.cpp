#include "metrics/datapath_counters.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/abi.h"

namespace switchyard::metrics {

const std::vector<std::string>& reasonNames() {
  static const std::vector<std::string> names = {
      "sock_xlate",        // SY_REASON_SOCK_XLATE
      "sock_no_backend",   // SY_REASON_SOCK_NO_BACKEND
      "sock_revnat",       // SY_REASON_SOCK_REVNAT
      "tc_dnat_new",       // SY_REASON_TC_DNAT_NEW
      "tc_dnat_ct",        // SY_REASON_TC_DNAT_CT
      "tc_revnat",         // SY_REASON_TC_REVNAT
      "tc_no_backend",     // SY_REASON_TC_NO_BACKEND
      "tc_backend_gone",   // SY_REASON_TC_BACKEND_GONE
      "tc_csum_error",     // SY_REASON_TC_CSUM_ERROR
      "tc_fragment",       // SY_REASON_TC_FRAGMENT
      "sock_drop_no_local_endpoints",  // SY_REASON_SOCK_DROP_NO_LOCAL
      "tc_drop_no_local_endpoints",    // SY_REASON_TC_DROP_NO_LOCAL
      "tc_ct_race",                    // SY_REASON_TC_CT_RACE
      "tc_ct_create_failed",           // SY_REASON_TC_CT_CREATE_FAILED
      "tc_ct_reply_restored",          // SY_REASON_TC_CT_REPLY_RESTORED
      "tc_ct_stale_backend",           // SY_REASON_TC_CT_STALE_BACKEND
      "tc_source_range_denied",        // SY_REASON_TC_SRC_RANGE_DENIED
      "tc_snat_no_port",               // SY_REASON_TC_SNAT_NO_PORT
      "tc_fib_failed",                 // SY_REASON_TC_FIB_FAILED
      "tc_reject_failed",              // SY_REASON_TC_REJECT_FAILED
      "tc_pass_headers",               // SY_REASON_TC_PASS_HEADERS
      "tc_icmp_revnat",                // SY_REASON_TC_ICMP_REVNAT
      "tc_upgrade_handoff",            // SY_REASON_TC_UPGRADE_HANDOFF
      "sock_skipped",                  // SY_REASON_SOCK_SKIPPED
      "tc_ct_reclaimed",               // SY_REASON_TC_CT_RECLAIMED
      // --- conntrack GC and pressure (issue 11 item 5) ---
      "tc_ct_full",                    // SY_REASON_TC_CT_FULL
      // DSR and MTU (issue 11)
      "tc_dsr_forward",                // SY_REASON_TC_DSR_FORWARD
      "tc_dsr_received",               // SY_REASON_TC_DSR_RECEIVED
      "tc_dsr_decap",                  // SY_REASON_TC_DSR_DECAP
      "tc_dsr_fallback_snat",          // SY_REASON_TC_DSR_FALLBACK
      "tc_dsr_failed",                 // SY_REASON_TC_DSR_FAILED
      "tc_mtu_icmp",                   // SY_REASON_TC_MTU_ICMP
      "tc_mtu_drop",                   // SY_REASON_TC_MTU_DROP
      "tc_mss_clamped",                // SY_REASON_TC_MSS_CLAMPED
      // -- Maglev (issue 11 item 3) --
      "tc_maglev",                     // SY_REASON_TC_MAGLEV
      "tc_maglev_fallback",            // SY_REASON_TC_MAGLEV_FALLBACK
      "policy_allowed",                // SY_REASON_POL_ALLOWED
      "policy_denied",                 // SY_REASON_POL_DENIED
      "policy_denied_default",         // SY_REASON_POL_DENIED_DEFAULT
      "policy_log_lost",               // SY_REASON_POL_LOG_LOST
      // -- end Maglev --
      // -- XDP fast path (issue 11 item 4) --
      "xdp_deny",        // SY_REASON_XDP_DENY
      "xdp_forward",     // SY_REASON_XDP_FORWARD
      "xdp_revnat",      // SY_REASON_XDP_REVNAT
      "xdp_pass_new",    // SY_REASON_XDP_PASS_NEW
      "xdp_pass_other",  // SY_REASON_XDP_PASS_OTHER
      "xdp_pass_fib",    // SY_REASON_XDP_PASS_FIB
      // -- end XDP --
  };
  return names;
}

bool DatapathCounters::read(int fd, Totals& out) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) {
    return false;
  }
  out.packets.assign(SY_REASON_MAX, 0);
  out.bytes.assign(SY_REASON_MAX, 0);
  std::vector<struct sy_counter> values(static_cast<size_t>(cpus));
  for (uint32_t r = 0; r < SY_REASON_MAX; ++r) {
    if (bpf_map_lookup_elem(fd, &r, values.data()) != 0) {
      return false;
    }
    for (const auto& v : values) {
      out.packets[r] += v.packets;
      out.bytes[r] += v.bytes;
    }
  }
  return true;
}

std::vector<prometheus::MetricFamily> DatapathCounters::Collect() const {
  static_assert(SY_REASON_MAX == 46, "add the new reason's name to reasonNames()");
  Totals t;
  if (!read(fd_, t)) {
    return {};
  }
  prometheus::MetricFamily packets{"switchyard_datapath_packets_total",
                                   "Packets (or socket operations) the datapath handled, by reason",
                                   prometheus::MetricType::Counter, {}};
  prometheus::MetricFamily bytes{"switchyard_datapath_bytes_total",
                                 "Bytes of the packets the datapath handled, by reason",
                                 prometheus::MetricType::Counter, {}};
  for (uint32_t r = 0; r < SY_REASON_MAX; ++r) {
    prometheus::ClientMetric p;
    p.label = {{"reason", reasonNames()[r]}};
    p.counter.value = static_cast<double>(t.packets[r]);
    packets.metric.push_back(p);
    prometheus::ClientMetric b;
    b.label = {{"reason", reasonNames()[r]}};
    b.counter.value = static_cast<double>(t.bytes[r]);
    bytes.metric.push_back(b);
  }
  return {packets, bytes};
}

}  // namespace switchyard::metrics
