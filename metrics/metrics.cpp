#include "metrics/metrics.h"

#include <chrono>

namespace switchyard::metrics {
namespace {

// kube-proxy's buckets: exponential from 1 ms, factor 2, 15 buckets.
prometheus::Histogram::BucketBoundaries syncBuckets() {
  prometheus::Histogram::BucketBoundaries b;
  double v = 0.001;
  for (int i = 0; i < 15; ++i, v *= 2) {
    b.push_back(v);
  }
  return b;
}

// kube-proxy's network programming buckets: 0.25 s steps to 5 s, then coarser.
prometheus::Histogram::BucketBoundaries programmingBuckets() {
  prometheus::Histogram::BucketBoundaries b = {0.001, 0.005, 0.01, 0.05, 0.1};
  for (double v = 0.25; v <= 5.0; v += 0.25) {
    b.push_back(v);
  }
  for (double v : {6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 45.0, 60.0, 120.0, 300.0}) {
    b.push_back(v);
  }
  return b;
}

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

ProxyMetrics::ProxyMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  auto& r = *registry_;
  syncDuration_ = &BuildHistogram()
                       .Name("kubeproxy_sync_proxy_rules_duration_seconds")
                       .Help("SyncProxyRules latency in seconds")
                       .Register(r)
                       .Add({}, syncBuckets());
  fullSyncDuration_ = &BuildHistogram()
                           .Name("kubeproxy_sync_full_proxy_rules_duration_seconds")
                           .Help("SyncProxyRules latency in seconds for full resyncs")
                           .Register(r)
                           .Add({}, syncBuckets());
  partialSyncDuration_ = &BuildHistogram()
                              .Name("kubeproxy_sync_partial_proxy_rules_duration_seconds")
                              .Help("SyncProxyRules latency in seconds for partial resyncs")
                              .Register(r)
                              .Add({}, syncBuckets());
  programmingDuration_ = &BuildHistogram()
                              .Name("kubeproxy_network_programming_duration_seconds")
                              .Help("In Cluster Network Programming Latency in seconds")
                              .Register(r)
                              .Add({}, programmingBuckets());
  lastSync_ = &BuildGauge()
                   .Name("kubeproxy_sync_proxy_rules_last_timestamp_seconds")
                   .Help("The last time proxy rules were successfully synced")
                   .Register(r)
                   .Add({});
  lastQueued_ = &BuildGauge()
                     .Name("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds")
                     .Help("The last time a sync of proxy rules was queued")
                     .Register(r)
                     .Add({});
  servicesProgrammed_ = &BuildGauge()
                             .Name("switchyard_services_programmed")
                             .Help("Service frontends (address, port, protocol) in the services map")
                             .Register(r)
                             .Add({});
  backendsProgrammed_ = &BuildGauge()
                             .Name("switchyard_backends_programmed")
                             .Help("Backends in the backends map")
                             .Register(r)
                             .Add({});
  mapErrors_ = &BuildCounter()
                    .Name("switchyard_bpf_map_operation_errors_total")
                    .Help("Failed BPF map operations, by map and operation")
                    .Register(r);
  syncErrors_ = &BuildCounter()
                     .Name("switchyard_sync_errors_total")
                     .Help("Syncs that left the maps and the desired state apart (repaired by a full sync)")
                     .Register(r)
                     .Add({});
  sourceErrors_ = &BuildCounter()
                       .Name("switchyard_source_errors_total")
                       .Help("Invalid objects or documents from the source, skipped, by source and kind")
                       .Register(r);
  translationWarnings_ = &BuildCounter()
                              .Name("switchyard_translation_warnings_total")
                              .Help("Parts of Services or EndpointSlices that could not be programmed")
                              .Register(r)
                              .Add({});
  healthz_ = &BuildCounter()
                  .Name("kubeproxy_proxy_healthz_total")
                  .Help("Cumulative proxy healthz HTTP status")
                  .Register(r);
  livez_ = &BuildCounter()
                .Name("kubeproxy_proxy_livez_total")
                .Help("Cumulative proxy livez HTTP status")
                .Register(r);
  sourceEvents_ = &BuildCounter()
                       .Name("switchyard_source_events_total")
                       .Help("Object events delivered by the source, by kind and type")
                       .Register(r);
  serviceChanges_ = &BuildCounter()
                         .Name("kubeproxy_sync_proxy_rules_service_changes_total")
                         .Help("Cumulative proxy rules Service changes")
                         .Register(r)
                         .Add({});
  endpointChanges_ = &BuildCounter()
                          .Name("kubeproxy_sync_proxy_rules_endpoint_changes_total")
                          .Help("Cumulative proxy rules Endpoint changes")
                          .Register(r)
                          .Add({});
  serviceChangesPending_ = &BuildGauge()
                                .Name("kubeproxy_sync_proxy_rules_service_changes_pending")
                                .Help("Pending proxy rules Service changes")
                                .Register(r)
                                .Add({});
  endpointChangesPending_ = &BuildGauge()
                                 .Name("kubeproxy_sync_proxy_rules_endpoint_changes_pending")
                                 .Help("Pending proxy rules Endpoint changes")
                                 .Register(r)
                                 .Add({});
  BuildGauge()
      .Name("switchyard_build_info")
      .Help("switchyard build information")
      .Register(r)
      .Add({{"version", SY_VERSION}})
      .Set(1);
}

void ProxyMetrics::observeSync(double seconds, bool full) {
  syncDuration_->Observe(seconds);
  (full ? fullSyncDuration_ : partialSyncDuration_)->Observe(seconds);
  lastSync_->Set(nowSeconds());
}

void ProxyMetrics::observeProgramming(double seconds) { programmingDuration_->Observe(seconds); }

void ProxyMetrics::setProgrammed(size_t services, size_t backends) {
  servicesProgrammed_->Set(static_cast<double>(services));
  backendsProgrammed_->Set(static_cast<double>(backends));
}

void ProxyMetrics::setQueued() { lastQueued_->Set(nowSeconds()); }

void ProxyMetrics::countMapError(const std::string& map, const std::string& op) {
  mapErrors_->Add({{"map", map}, {"op", op}}).Increment();
}

void ProxyMetrics::countSyncError() { syncErrors_->Increment(); }

void ProxyMetrics::countSourceError(const std::string& source, const std::string& kind) {
  sourceErrors_->Add({{"source", source}, {"kind", kind}}).Increment();
}

void ProxyMetrics::countTranslationWarning() { translationWarnings_->Increment(); }

void ProxyMetrics::countHealthz(int code) { healthz_->Add({{"code", std::to_string(code)}}).Increment(); }

void ProxyMetrics::countLivez(int code) { livez_->Add({{"code", std::to_string(code)}}).Increment(); }

void ProxyMetrics::countServiceChange() {
  serviceChanges_->Increment();
  serviceChangesPending_->Increment();
}

void ProxyMetrics::countEndpointChange() {
  endpointChanges_->Increment();
  endpointChangesPending_->Increment();
}

void ProxyMetrics::clearPendingChanges() {
  serviceChangesPending_->Set(0);
  endpointChangesPending_->Set(0);
}

void ProxyMetrics::countSourceEvent(const std::string& kind, const std::string& type) {
  sourceEvents_->Add({{"kind", kind}, {"type", type}}).Increment();
}

}  // namespace switchyard::metrics
