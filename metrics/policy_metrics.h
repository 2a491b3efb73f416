// NetworkPolicy's control-plane metrics (policy.enabled): what the policy maps hold, how
// each sync of them went, and how long a change took to reach them (cmd/policy_sync.h).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstddef>
#include <string>

namespace switchyard::metrics {

class PolicyMetrics {
 public:
  // Registers every series in `registry`, at 0: sync results success and error, map errors
  // of the four policy maps.
  explicit PolicyMetrics(prometheus::Registry& registry);

  // What the maps hold after a sync: pod identities, CIDR identities (ipBlock prefixes and
  // the two worlds), this node's pods, rule entries.
  void setProgrammed(size_t podIdentities, size_t cidrIdentities, size_t endpoints, size_t rules);
  // One sync that wrote the maps: ok or not, and (when ok and a change was waiting) the
  // seconds from the oldest change it applied to the maps written.
  void countSync(bool ok);
  void observeChangeToWritten(double seconds);
  // `map` is the pin name (pol_rules_v1); the label drops the layout suffix (pol_rules).
  void countMapErrors(const std::string& map, size_t n);

 private:
  prometheus::Family<prometheus::Gauge>* identities_;
  prometheus::Gauge* endpoints_;
  prometheus::Gauge* rules_;
  prometheus::Family<prometheus::Counter>* syncs_;
  prometheus::Family<prometheus::Counter>* mapErrors_;
  prometheus::Histogram* duration_;
};

}  // namespace switchyard::metrics
