#include "metrics/sync_recorder.h"

#include <chrono>

namespace switchyard::metrics {

void SyncRecorder::synced(const SyncOutcome& o, HealthState::Clock::time_point now) {
  metrics_.observeSync(o.seconds, o.full);
  if (o.errors > 0) {
    // The maps and the desired state are apart until a repair sync succeeds. kube-proxy
    // neither records the timestamp nor the programming latency of a failed sync; its
    // health stays "queued" from the first unapplied change. A failed sync that no change
    // queued (the periodic forced full sync, a repair) queues one here, so /healthz says
    // 503 once the repair has failed for longer than the health timeout.
    health_.queued(now);
    return;
  }
  metrics_.setLastSuccessfulSync(std::chrono::duration<double>(now.time_since_epoch()).count());
  for (double s : o.changeLatencies) {
    metrics_.observeProgramming(s);
  }
  if (o.eventLatency >= 0) {
    metrics_.observeEventToProgrammed(o.eventLatency);
  }
  health_.updated(now);
}

}  // namespace switchyard::metrics
