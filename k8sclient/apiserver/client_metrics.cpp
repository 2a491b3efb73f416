#include "k8sclient/apiserver/client_metrics.h"

namespace switchyard::k8s::apiserver {
namespace {

// client-go's rest_client_request_duration_seconds buckets: watches report the time to
// their response headers, lists the time to the last byte.
const prometheus::Histogram::BucketBoundaries kRequestBuckets = {
    0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60};

}  // namespace

ClientMetrics::ClientMetrics(prometheus::Registry& registry)
    : watchRestarts_(prometheus::BuildCounter()
                         .Name("switchyard_k8s_watch_restarts_total")
                         .Help("Watches of the API server that ended and were started again, by kind")
                         .Register(registry)),
      relists_(prometheus::BuildCounter()
                   .Name("switchyard_k8s_relists_total")
                   .Help("Full lists after the first one (410 Gone or an ERROR event), by kind")
                   .Register(registry)),
      events_(prometheus::BuildCounter()
                  .Name("switchyard_k8s_events_total")
                  .Help("Watch events received from the API server, by kind and type")
                  .Register(registry)),
      decodeErrors_(prometheus::BuildCounter()
                        .Name("switchyard_k8s_decode_errors_total")
                        .Help("What the API server sent that could not be decoded, by kind: objects "
                              "and events skipped as malformed, watch streams ended by an event "
                              "cut off, bytes that are not JSON or an event over "
                              "maxEventBytes, and lists over their bound")
                        .Register(registry)),
      lastSync_(prometheus::BuildGauge()
                    .Name("switchyard_k8s_last_sync_timestamp_seconds")
                    .Help("When the client last had a complete, current picture of the kind "
                          "(a list or an event), by kind")
                    .Register(registry)),
      requestDuration_(prometheus::BuildHistogram()
                           .Name("switchyard_k8s_request_duration_seconds")
                           .Help("API server request latency by verb and HTTP code")
                           .Register(registry)) {
  // The kinds the source watches have their error and restart series from 0, so alerts on
  // increase() see the first one (a family without series is not exported at all).
  for (const char* kind : {"Service", "EndpointSlice", "Node"}) {
    watchRestarts_.Add({{"kind", kind}});
    relists_.Add({{"kind", kind}});
    decodeErrors_.Add({{"kind", kind}});
  }
}

void ClientMetrics::countWatchRestart(const std::string& kind) {
  watchRestarts_.Add({{"kind", kind}}).Increment();
}

void ClientMetrics::countRelist(const std::string& kind) { relists_.Add({{"kind", kind}}).Increment(); }

void ClientMetrics::countEvent(const std::string& kind, const std::string& type) {
  events_.Add({{"kind", kind}, {"type", type}}).Increment();
}

void ClientMetrics::countDecodeError(const std::string& kind) {
  decodeErrors_.Add({{"kind", kind}}).Increment();
}

void ClientMetrics::setLastSync(const std::string& kind, double unixSeconds) {
  lastSync_.Add({{"kind", kind}}).Set(unixSeconds);
}

void ClientMetrics::observeRequest(const std::string& verb, const std::string& code,
                                   double seconds) {
  requestDuration_.Add({{"verb", verb}, {"code", code}}, kRequestBuckets).Observe(seconds);
}

double ClientMetrics::watchRestarts(const std::string& kind) const {
  return watchRestarts_.Add({{"kind", kind}}).Value();
}

double ClientMetrics::relists(const std::string& kind) const {
  return relists_.Add({{"kind", kind}}).Value();
}

double ClientMetrics::events(const std::string& kind, const std::string& type) const {
  return events_.Add({{"kind", kind}, {"type", type}}).Value();
}

double ClientMetrics::decodeErrors(const std::string& kind) const {
  return decodeErrors_.Add({{"kind", kind}}).Value();
}

double ClientMetrics::lastSync(const std::string& kind) const {
  return lastSync_.Add({{"kind", kind}}).Value();
}

uint64_t ClientMetrics::requests(const std::string& verb, const std::string& code) const {
  auto m = requestDuration_.Add({{"verb", verb}, {"code", code}}, kRequestBuckets).Collect();
  return m.histogram.sample_count;
}

}  // namespace switchyard::k8s::apiserver
