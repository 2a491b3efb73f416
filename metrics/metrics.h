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
#include <utility>
#include <vector>

namespace switchyard::metrics {

// Bucket boundaries of kube-proxy's histograms (exposed for tests).
prometheus::Histogram::BucketBoundaries syncDurationBuckets();
prometheus::Histogram::BucketBoundaries programmingDurationBuckets();
// The (map, op) label pairs of switchyard_bpf_map_operation_errors_total, all created at 0.
std::vector<std::pair<std::string, std::string>> mapOperations();

class ProxyMetrics {
 public:
  ProxyMetrics();

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // One sync of the dataplane that ran: its duration and whether it was full.
  void observeSync(double seconds, bool full);
  // kubeproxy_sync_proxy_rules_last_timestamp_seconds: set only by a sync without errors,
  // as kube-proxy does.
  void setLastSuccessfulSync(double unixSeconds);
  void countTcAttachRefused(const std::string& device);
  // From a change's arrival to the dataplane having it.
  void observeProgramming(double seconds);
  void observeEventToProgrammed(double seconds);
  void setProgrammed(size_t services, size_t backends);
  void setQueued();  // a change arrived and waits for a sync
  void countMapError(const std::string& map, const std::string& op);
  void countSyncError();
  void countSourceError(const std::string& source, const std::string& kind);
  // Series at 0 before the first event, so rate() and increase() in alerts see the first
  // one: the source's error counters for Services and EndpointSlices, a device's refused
  // attaches (once it is attached or refused).
  void declareSource(const std::string& source);
  void declareTcDevice(const std::string& device);
  void countTranslationWarning();
  void countUdpSocketsTerminated(uint64_t n);
  void countHealthz(int code);
  // A healthCheckNodePort listener that could not be opened (service_health.h).
  void countServiceHealthBindError();
  void countLivez(int code);
  void countSourceEvent(const std::string& kind, const std::string& type);
  // kube-proxy's change counters: a Service or EndpointSlice change received (total) and
  // not yet applied (pending; cleared by a sync that ran).
  void countServiceChange();
  void countEndpointChange();
  void clearPendingChanges();
  // -- Maglev (issue 11 item 3): tables in the maps now, and `written` more built --
  void setMaglevTables(size_t tables, size_t written);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram* syncDuration_;
  prometheus::Histogram* fullSyncDuration_;
  prometheus::Histogram* partialSyncDuration_;
  prometheus::Histogram* programmingDuration_;
  prometheus::Histogram* eventProgrammingDuration_;
  prometheus::Gauge* lastSync_;
  prometheus::Gauge* lastQueued_;
  prometheus::Gauge* servicesProgrammed_;
  prometheus::Gauge* backendsProgrammed_;
  prometheus::Family<prometheus::Counter>* mapErrors_;
  prometheus::Family<prometheus::Counter>* tcAttachRefused_;
  prometheus::Counter* syncErrors_;
  prometheus::Family<prometheus::Counter>* sourceErrors_;
  prometheus::Counter* translationWarnings_;
  prometheus::Counter* udpSocketsTerminated_;
  prometheus::Counter* serviceHealthBindErrors_;
  prometheus::Family<prometheus::Counter>* healthz_;
  prometheus::Family<prometheus::Counter>* livez_;
  prometheus::Family<prometheus::Counter>* sourceEvents_;
  prometheus::Counter* serviceChanges_;
  prometheus::Counter* endpointChanges_;
  prometheus::Gauge* serviceChangesPending_;
  prometheus::Gauge* endpointChangesPending_;
  prometheus::Gauge* maglevTables_;            // Maglev (issue 11 item 3)
  prometheus::Counter* maglevTableWrites_;     // Maglev (issue 11 item 3)
};

}  // namespace switchyard::metrics
