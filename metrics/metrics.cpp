#include "metrics/metrics.h"

#include <chrono>

#include "bpf/pinned_maps.h"

namespace switchyard::metrics {
namespace {

}  // namespace

// kube-proxy's SyncProxyRulesLatency: ExponentialBuckets(0.001, 2, 15), 1 ms to 16.384 s.
prometheus::Histogram::BucketBoundaries syncDurationBuckets() {
  prometheus::Histogram::BucketBoundaries b;
  double v = 0.001;
  for (int i = 0; i < 15; ++i, v *= 2) {
    b.push_back(v);
  }
  return b;
}

// kube-proxy's NetworkProgrammingLatency (pkg/proxy/metrics/metrics.go):
//   merge(LinearBuckets(0.25, 0.25, 2), LinearBuckets(1, 1, 59), LinearBuckets(60, 5, 12),
//         LinearBuckets(120, 30, 7))
// whose merge() starts from make([]float64, 1), so a bucket at 0 comes first. Dashboards
// and SLO queries (the SIG scalability network programming SLI) use these `le` values.
prometheus::Histogram::BucketBoundaries programmingDurationBuckets() {
  prometheus::Histogram::BucketBoundaries b = {0, 0.25, 0.5};
  for (int s = 1; s <= 59; ++s) {
    b.push_back(s);
  }
  for (int s = 60; s <= 115; s += 5) {
    b.push_back(s);
  }
  for (int s = 120; s <= 300; s += 30) {
    b.push_back(s);
  }
  return b;
}

namespace {

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> mapOperations() {
  // What bpf::MapWriter reports: updates and deletes of the maps the control plane writes
  // (reads of the dataplane state are not counted as operations).
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* map : {bpf::kPinServices, bpf::kPinBackends, bpf::kPinRevNat, bpf::kPinSrcRanges,
                          bpf::kPinMaglev}) {
    for (const char* op : {"update", "delete"}) {
      out.emplace_back(map, op);
    }
  }
  return out;
}

ProxyMetrics::ProxyMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  auto& r = *registry_;
  syncDuration_ = &BuildHistogram()
                       .Name("kubeproxy_sync_proxy_rules_duration_seconds")
                       .Help("SyncProxyRules latency in seconds")
                       .Register(r)
                       .Add({}, syncDurationBuckets());
  fullSyncDuration_ = &BuildHistogram()
                           .Name("kubeproxy_sync_full_proxy_rules_duration_seconds")
                           .Help("SyncProxyRules latency in seconds for full resyncs")
                           .Register(r)
                           .Add({}, syncDurationBuckets());
  partialSyncDuration_ = &BuildHistogram()
                              .Name("kubeproxy_sync_partial_proxy_rules_duration_seconds")
                              .Help("SyncProxyRules latency in seconds for partial resyncs")
                              .Register(r)
                              .Add({}, syncDurationBuckets());
  programmingDuration_ = &BuildHistogram()
                              .Name("kubeproxy_network_programming_duration_seconds")
                              .Help("In Cluster Network Programming Latency in seconds")
                              .Register(r)
                              .Add({}, programmingDurationBuckets());
  // switchyard's own: how long a change waited in the daemon, from the event (a watch
  // event, or the file poll that found it) to the end of the sync that wrote it. kube-proxy
  // has no such histogram; its programming latency starts where the change was made.
  eventProgrammingDuration_ = &BuildHistogram()
                                   .Name("switchyard_event_to_programmed_seconds")
                                   .Help("Seconds from receiving a change (watch event or file poll) "
                                         "to the end of the partial sync that wrote it into the maps")
                                   .Register(r)
                                   .Add({}, prometheus::Histogram::BucketBoundaries{
                                                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
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
  // Every series exists from the start at 0, so rate() and increase() see the first error.
  for (const auto& [map, op] : mapOperations()) {
    mapErrors_->Add({{"map", map}, {"op", op}});
  }
  tcAttachRefused_ = &BuildCounter()
                          .Name("switchyard_tc_attach_refused_total")
                          .Help("Attaches of the tc programs refused because a filter that is not this "
                                "daemon's holds switchyard's handle and priority on the device, by device")
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
  udpSocketsTerminated_ = &BuildCounter()
                               .Name("switchyard_udp_sockets_terminated_total")
                               .Help("Connected UDP sockets socket LB had sent to a backend that left its service, destroyed")
                               .Register(r)
                               .Add({});
  // kube-proxy reports these as FailedToStartServiceHealthcheck events; switchyard has no
  // event recorder, so a counter (and a warning naming the Service and port).
  serviceHealthBindErrors_ = &BuildCounter()
                                  .Name("switchyard_service_health_bind_errors_total")
                                  .Help("Attempts to open a Service's healthCheckNodePort listener that failed "
                                        "(port in use, address gone); retried until it opens")
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
  // Both answers exist from 0, so alerts on rate(...{code="503"}) see the first failure
  // (a family without series is not exported at all).
  for (const char* code : {"200", "503"}) {
    healthz_->Add({{"code", code}});
    livez_->Add({{"code", code}});
  }
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
  // -- Maglev (issue 11 item 3) --
  maglevTables_ = &BuildGauge()
                       .Name("switchyard_maglev_tables")
                       .Help("Frontends with a Maglev lookup table in the maps (4 bytes per entry each)")
                       .Register(r)
                       .Add({});
  maglevTableWrites_ = &BuildCounter()
                            .Name("switchyard_maglev_table_writes_total")
                            .Help("Maglev tables built and swapped in (a new frontend, or a change of its "
                                  "backends or weights)")
                            .Register(r)
                            .Add({});
  // -- end Maglev --
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
}

void ProxyMetrics::setLastSuccessfulSync(double unixSeconds) { lastSync_->Set(unixSeconds); }

void ProxyMetrics::countTcAttachRefused(const std::string& device) {
  tcAttachRefused_->Add({{"device", device}}).Increment();
}

void ProxyMetrics::observeProgramming(double seconds) { programmingDuration_->Observe(seconds); }
void ProxyMetrics::observeEventToProgrammed(double seconds) { eventProgrammingDuration_->Observe(seconds); }

void ProxyMetrics::setProgrammed(size_t services, size_t backends) {
  servicesProgrammed_->Set(static_cast<double>(services));
  backendsProgrammed_->Set(static_cast<double>(backends));
}

void ProxyMetrics::setQueued() { lastQueued_->Set(nowSeconds()); }

void ProxyMetrics::countMapError(const std::string& map, const std::string& op) {
  mapErrors_->Add({{"map", map}, {"op", op}}).Increment();
}

void ProxyMetrics::countSyncError() { syncErrors_->Increment(); }

void ProxyMetrics::declareSource(const std::string& source) {
  for (const char* kind : {"Service", "EndpointSlice"}) {
    sourceErrors_->Add({{"source", source}, {"kind", kind}});
  }
}

void ProxyMetrics::declareTcDevice(const std::string& device) { tcAttachRefused_->Add({{"device", device}}); }

void ProxyMetrics::countSourceError(const std::string& source, const std::string& kind) {
  sourceErrors_->Add({{"source", source}, {"kind", kind}}).Increment();
}

void ProxyMetrics::countTranslationWarning() { translationWarnings_->Increment(); }

void ProxyMetrics::countUdpSocketsTerminated(uint64_t n) { udpSocketsTerminated_->Increment(static_cast<double>(n)); }

void ProxyMetrics::countServiceHealthBindError() { serviceHealthBindErrors_->Increment(); }

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

// -- Maglev (issue 11 item 3) --
void ProxyMetrics::setMaglevTables(size_t tables, size_t written) {
  maglevTables_->Set(static_cast<double>(tables));
  maglevTableWrites_->Increment(static_cast<double>(written));
}
// -- end Maglev --

void ProxyMetrics::countSourceEvent(const std::string& kind, const std::string& type) {
  sourceEvents_->Add({{"kind", kind}, {"type", type}}).Increment();
}

}  // namespace switchyard::metrics
