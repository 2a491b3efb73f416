#include "metrics/policy_metrics.h"

#include "bpf/pinned_maps.h"
#include "metrics/conntrack_metrics.h"
#include "metrics/metrics.h"

namespace switchyard::metrics {

PolicyMetrics::PolicyMetrics(prometheus::Registry& r) {
  using namespace prometheus;
  identities_ = &BuildGauge()
                     .Name("switchyard_policy_identities")
                     .Help("NetworkPolicy identities in use, by kind: pod (one per distinct namespace, "
                           "namespace labels and pod labels) and cidr (ipBlock prefixes and the two worlds)")
                     .Register(r);
  identities_->Add({{"kind", "pod"}});
  identities_->Add({{"kind", "cidr"}});
  endpoints_ = &BuildGauge()
                    .Name("switchyard_policy_endpoints")
                    .Help("This node's pods in the policy endpoints map")
                    .Register(r)
                    .Add({});
  rules_ = &BuildGauge()
                .Name("switchyard_policy_rules")
                .Help("Entries of the policy rules map")
                .Register(r)
                .Add({});
  syncs_ = &BuildCounter()
                .Name("switchyard_policy_sync_total")
                .Help("Writes of the policy maps, by result: success, or error (a map refused an entry: "
                      "the previous rules stay in force)")
                .Register(r);
  syncs_->Add({{"result", "success"}});
  syncs_->Add({{"result", "error"}});
  mapErrors_ = &BuildCounter()
                    .Name("switchyard_policy_map_errors_total")
                    .Help("Failed operations on the policy maps, by map (its pin name without the _vN layout suffix)")
                    .Register(r);
  for (const char* map : {bpf::kPinPolIpcache, bpf::kPinPolEndpoints, bpf::kPinPolRules, bpf::kPinPolState}) {
    mapErrors_->Add({{"map", mapLabel(map)}});
  }
  duration_ = &BuildHistogram()
                   .Name("switchyard_policy_sync_duration_seconds")
                   .Help("From a Pod, Namespace or NetworkPolicy change reaching the daemon to the policy "
                         "maps holding it (the oldest change of each sync)")
                   .Register(r)
                   .Add({}, syncDurationBuckets());
}

void PolicyMetrics::setProgrammed(size_t podIdentities, size_t cidrIdentities, size_t endpoints, size_t rules) {
  identities_->Add({{"kind", "pod"}}).Set(static_cast<double>(podIdentities));
  identities_->Add({{"kind", "cidr"}}).Set(static_cast<double>(cidrIdentities));
  endpoints_->Set(static_cast<double>(endpoints));
  rules_->Set(static_cast<double>(rules));
}

void PolicyMetrics::countSync(bool ok) { syncs_->Add({{"result", ok ? "success" : "error"}}).Increment(); }

void PolicyMetrics::observeChangeToWritten(double seconds) { duration_->Observe(seconds); }

void PolicyMetrics::countMapErrors(const std::string& map, size_t n) {
  mapErrors_->Add({{"map", mapLabel(map)}}).Increment(static_cast<double>(n));
}

}  // namespace switchyard::metrics
