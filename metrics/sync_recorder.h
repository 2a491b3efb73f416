// What one dataplane sync means for the metrics and /healthz, with kube-proxy's
// semantics: only a sync without errors counts as the last successful one and clears the
// health's pending time; a failed sync leaves the change pending, so /healthz turns 503
// once it has waited longer than the health timeout; network programming latency is
// observed only for changes that reached the maps.
#pragma once

#include <vector>

#include "metrics/health.h"
#include "metrics/metrics.h"

namespace switchyard::metrics {

struct SyncOutcome {
  bool full = false;
  double seconds = 0;   // how long the sync took
  size_t errors = 0;    // failed map operations
  // Per change this sync applied: seconds from the change to now (its programming latency).
  std::vector<double> changeLatencies;
  // Seconds from receiving the oldest change this sync applied to the sync's end; < 0 when
  // it applied none (switchyard_event_to_programmed_seconds).
  double eventLatency = -1;
};

class SyncRecorder {
 public:
  SyncRecorder(ProxyMetrics& metrics, HealthState& health) : metrics_(metrics), health_(health) {}

  // A sync ran and finished at `now`.
  void synced(const SyncOutcome& o, HealthState::Clock::time_point now);

 private:
  ProxyMetrics& metrics_;
  HealthState& health_;
};

}  // namespace switchyard::metrics
