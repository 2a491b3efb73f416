// Prometheus metrics. kube-proxy's names and labels where the meaning is the same (so
// existing dashboards and alerts keep working), switchyard_* for the rest.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace switchyard::metrics {

class ProxyMetrics {
 public:
  ProxyMetrics();

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // One sync of the dataplane: its duration, whether it was full, and the timestamp.
  void observeSync(double seconds, bool full);
  // From a change's arrival to the dataplane having it.
  void observeProgramming(double seconds);
  void setProgrammed(size_t services, size_t backends);
  void setQueued();  // a change arrived and waits for a sync
  void countMapError(const std::string& map, const std::string& op);
  void countSyncError();
  void countSourceError(const std::string& source, const std::string& kind);
  void countTranslationWarning();
  void countHealthz(int code);
  void countLivez(int code);
  void countSourceEvent(const std::string& kind, const std::string& type);
  // kube-proxy's change counters: a Service or EndpointSlice change received (total) and
  // not yet applied (pending; cleared by a sync that ran).
  void countServiceChange();
  void countEndpointChange();
  void clearPendingChanges();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram* syncDuration_;
  prometheus::Histogram* fullSyncDuration_;
  prometheus::Histogram* partialSyncDuration_;
  prometheus::Histogram* programmingDuration_;
  prometheus::Gauge* lastSync_;
  prometheus::Gauge* lastQueued_;
  prometheus::Gauge* servicesProgrammed_;
  prometheus::Gauge* backendsProgrammed_;
  prometheus::Family<prometheus::Counter>* mapErrors_;
  prometheus::Counter* syncErrors_;
  prometheus::Family<prometheus::Counter>* sourceErrors_;
  prometheus::Counter* translationWarnings_;
  prometheus::Family<prometheus::Counter>* healthz_;
  prometheus::Family<prometheus::Counter>* livez_;
  prometheus::Family<prometheus::Counter>* sourceEvents_;
  prometheus::Counter* serviceChanges_;
  prometheus::Counter* endpointChanges_;
  prometheus::Gauge* serviceChangesPending_;
  prometheus::Gauge* endpointChangesPending_;
};

}  // namespace switchyard::metrics
